//! Loader for the NSL-KDD text format (`KDDTrain+.txt`, `KDDTest+.txt`).
//!
//! NSL-KDD (Tavallaee et al., "A detailed analysis of the KDD CUP 99 data set", IEEE
//! CISDA 2009) is not shipped by any public package, so it is read from a user-given
//! path. Each line is comma-separated, without a header: the 41 KDD features, the label
//! (`normal` or an attack name such as `neptune`), then a difficulty level (an integer,
//! the number of the authors' 21 learners that classified the record correctly).
//!
//! For training, attack names are grouped into the five usual categories (normal, DoS,
//! probe, R2L, U2R) of the KDD Cup 1999 task description.

use thiserror::Error;

use super::dataset::{Dataset, Organisation, Record};
use super::schema::{Connection, NUM_FEATURES, SchemaError};

/// One NSL-KDD record.
#[derive(Debug, Clone, PartialEq)]
pub struct NslRecord {
    /// The 41 features.
    pub connection: Connection,
    /// The label as written (`normal` or an attack name).
    pub label: String,
    /// The difficulty level (0–21).
    pub difficulty: u8,
}

/// The five traffic categories of the KDD Cup 1999 task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Normal traffic.
    Normal,
    /// Denial of service.
    Dos,
    /// Probing / surveillance.
    Probe,
    /// Remote to local (unauthorised access from a remote machine).
    R2l,
    /// User to root (privilege escalation).
    U2r,
}

impl Category {
    /// All categories in label order.
    pub const ALL: [Self; 5] = [Self::Normal, Self::Dos, Self::Probe, Self::R2l, Self::U2r];

    /// The label index of this category.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The category name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Dos => "dos",
            Self::Probe => "probe",
            Self::R2l => "r2l",
            Self::U2r => "u2r",
        }
    }

    /// The category of an NSL-KDD label (KDD'99 training attacks plus the extra attacks
    /// of the NSL-KDD / DARPA 1999 test set), or `None` for an unknown name.
    pub fn of_label(label: &str) -> Option<Self> {
        let category = match label {
            "normal" => Self::Normal,
            "back" | "land" | "neptune" | "pod" | "smurf" | "teardrop" | "apache2" | "udpstorm"
            | "processtable" | "mailbomb" => Self::Dos,
            "satan" | "ipsweep" | "nmap" | "portsweep" | "mscan" | "saint" => Self::Probe,
            "guess_passwd" | "ftp_write" | "imap" | "phf" | "multihop" | "warezmaster"
            | "warezclient" | "spy" | "xlock" | "xsnoop" | "snmpguess" | "snmpgetattack"
            | "httptunnel" | "sendmail" | "named" | "worm" => Self::R2l,
            "buffer_overflow" | "loadmodule" | "rootkit" | "perl" | "sqlattack" | "xterm"
            | "ps" => Self::U2r,
            _ => return None,
        };
        Some(category)
    }
}

/// Why an NSL-KDD file could not be parsed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum NslKddError {
    /// A row does not have 41 features, a label and a difficulty.
    #[error("line {line}: expected {} fields, found {found}", NUM_FEATURES + 2)]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// Number of fields found.
        found: usize,
    },
    /// A feature field is malformed.
    #[error("line {line}: {source}")]
    Feature {
        /// 1-based line number.
        line: usize,
        /// What is wrong with the field.
        source: SchemaError,
    },
    /// The label is empty or not a known NSL-KDD label.
    #[error("line {line}: unknown label {value:?}")]
    Label {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        value: String,
    },
    /// The difficulty is not an integer in 0..=21.
    #[error("line {line}: difficulty {value:?} is not an integer in 0..=21")]
    Difficulty {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        value: String,
    },
    /// The file has no data rows.
    #[error("no data rows")]
    Empty,
    /// More organisations were asked for than there are records, or none.
    #[error("cannot split {records} records into {organisations} organisations")]
    Organisations {
        /// Number of records.
        records: usize,
        /// Number of organisations asked for.
        organisations: usize,
    },
}

/// Highest NSL-KDD difficulty level (21 learners).
const MAX_DIFFICULTY: u8 = 21;

/// Parses NSL-KDD text (blank lines are skipped; every other line must be a record).
pub fn parse_nsl_kdd(text: &str) -> Result<Vec<NslRecord>, NslKddError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != NUM_FEATURES + 2 {
            return Err(NslKddError::FieldCount {
                line: line_no,
                found: fields.len(),
            });
        }
        let connection = Connection::parse_fields(&fields[..NUM_FEATURES]).map_err(|source| {
            NslKddError::Feature {
                line: line_no,
                source,
            }
        })?;
        let label = fields[NUM_FEATURES].trim();
        if Category::of_label(label).is_none() {
            return Err(NslKddError::Label {
                line: line_no,
                value: label.to_owned(),
            });
        }
        let raw_difficulty = fields[NUM_FEATURES + 1].trim();
        let difficulty = raw_difficulty
            .parse::<u8>()
            .ok()
            .filter(|d| *d <= MAX_DIFFICULTY)
            .ok_or_else(|| NslKddError::Difficulty {
                line: line_no,
                value: raw_difficulty.to_owned(),
            })?;
        records.push(NslRecord {
            connection,
            label: label.to_owned(),
            difficulty,
        });
    }
    if records.is_empty() {
        return Err(NslKddError::Empty);
    }
    Ok(records)
}

/// Builds a five-category [`Dataset`] from NSL-KDD records, dealt round-robin in file
/// order to `organisations` organisations (NSL-KDD has no natural silos).
pub fn nsl_kdd_dataset(
    records: Vec<NslRecord>,
    organisations: usize,
) -> Result<Dataset, NslKddError> {
    if organisations == 0 || organisations > records.len() {
        return Err(NslKddError::Organisations {
            records: records.len(),
            organisations,
        });
    }
    let mut orgs: Vec<Organisation> = (0..organisations)
        .map(|i| Organisation {
            name: format!("org-{i}"),
            records: Vec::new(),
        })
        .collect();
    for (i, record) in records.into_iter().enumerate() {
        // parse_nsl_kdd only returns known labels; a record built by hand with an unknown
        // label is reported with its 1-based position.
        let category = Category::of_label(&record.label).ok_or(NslKddError::Label {
            line: i + 1,
            value: record.label.clone(),
        })?;
        orgs[i % organisations].records.push(Record {
            connection: record.connection,
            label: category.index(),
        });
    }
    Ok(Dataset {
        class_names: Category::ALL.iter().map(|c| c.name().to_owned()).collect(),
        organisations: orgs,
    })
}
