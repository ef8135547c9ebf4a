//! The 41-feature KDD Cup '99 connection record, shared by every loader.
//!
//! A record lists 41 features in a fixed order (the KDD Cup 1999 task description; the
//! same order is used by the KEEL `.dat` files, `Atr-0 … Atr-40`, and by NSL-KDD's
//! `KDDTrain+.txt`). Three are categorical: `protocol_type` (column 1), `service` (2) and
//! `flag` (3); they are parsed into indices of the fixed vocabularies below, so an unknown
//! category is an error at load time rather than a silently dropped one-hot bit. The other
//! 38 are non-negative numbers (counts, byte totals, 0/1 indicators and rates in [0, 1]);
//! a negative, non-finite or unparsable value is an error too.

use thiserror::Error;

/// Number of features in a KDD connection record.
pub const NUM_FEATURES: usize = 41;

/// Number of numeric (non-categorical) features.
pub const NUM_NUMERIC: usize = NUM_FEATURES - 3;

/// Column of `protocol_type` among the 41 features.
pub const PROTOCOL_COLUMN: usize = 1;
/// Column of `service` among the 41 features.
pub const SERVICE_COLUMN: usize = 2;
/// Column of `flag` among the 41 features.
pub const FLAG_COLUMN: usize = 3;

/// The 41 feature names in record order (KDD Cup 1999 task description).
pub const FEATURE_NAMES: [&str; NUM_FEATURES] = [
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
];

/// Vocabulary of `protocol_type`.
pub const PROTOCOLS: [&str; 3] = ["icmp", "tcp", "udp"];

/// Vocabulary of `service`: the 70 services of the full KDD Cup '99 / NSL-KDD data (the
/// KEEL headers list a 66-name subset of it).
pub const SERVICES: [&str; 70] = [
    "aol",
    "auth",
    "bgp",
    "courier",
    "csnet_ns",
    "ctf",
    "daytime",
    "discard",
    "domain",
    "domain_u",
    "echo",
    "eco_i",
    "ecr_i",
    "efs",
    "exec",
    "finger",
    "ftp",
    "ftp_data",
    "gopher",
    "harvest",
    "hostnames",
    "http",
    "http_2784",
    "http_443",
    "http_8001",
    "imap4",
    "IRC",
    "iso_tsap",
    "klogin",
    "kshell",
    "ldap",
    "link",
    "login",
    "mtp",
    "name",
    "netbios_dgm",
    "netbios_ns",
    "netbios_ssn",
    "netstat",
    "nnsp",
    "nntp",
    "ntp_u",
    "other",
    "pm_dump",
    "pop_2",
    "pop_3",
    "printer",
    "private",
    "red_i",
    "remote_job",
    "rje",
    "shell",
    "smtp",
    "sql_net",
    "ssh",
    "sunrpc",
    "supdup",
    "systat",
    "telnet",
    "tftp_u",
    "tim_i",
    "time",
    "urh_i",
    "urp_i",
    "uucp",
    "uucp_path",
    "vmnet",
    "whois",
    "X11",
    "Z39_50",
];

/// Vocabulary of `flag` (the TCP connection status).
pub const FLAGS: [&str; 11] = [
    "OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF", "SH",
];

/// Why a row's 41 feature fields could not be read.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SchemaError {
    /// The row does not have 41 feature fields.
    #[error("expected {NUM_FEATURES} feature fields, found {found}")]
    FieldCount {
        /// Number of feature fields found.
        found: usize,
    },
    /// A numeric field is not a number.
    #[error("feature {column} ({name}): {value:?} is not a number")]
    NotANumber {
        /// Column index (0-based).
        column: usize,
        /// Feature name.
        name: &'static str,
        /// The offending text.
        value: String,
    },
    /// A numeric field is negative, infinite or NaN (every KDD feature is a finite count,
    /// byte total, indicator or rate, hence ≥ 0).
    #[error("feature {column} ({name}): {value} is not a finite non-negative number")]
    OutOfRange {
        /// Column index (0-based).
        column: usize,
        /// Feature name.
        name: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A categorical field holds a value outside its vocabulary.
    #[error("feature {column} ({name}): unknown category {value:?}")]
    UnknownCategory {
        /// Column index (0-based).
        column: usize,
        /// Feature name.
        name: &'static str,
        /// The offending text.
        value: String,
    },
}

/// One connection record: the 38 numeric features in record order and the three
/// categorical ones as vocabulary indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The numeric features, in record order with columns 1–3 left out.
    pub numeric: [f64; NUM_NUMERIC],
    /// Index into [`PROTOCOLS`].
    pub protocol: u8,
    /// Index into [`SERVICES`].
    pub service: u8,
    /// Index into [`FLAGS`].
    pub flag: u8,
}

impl Connection {
    /// Parses the 41 feature fields of one row (already split on commas; surrounding
    /// whitespace is ignored).
    pub fn parse_fields(fields: &[&str]) -> Result<Self, SchemaError> {
        if fields.len() != NUM_FEATURES {
            return Err(SchemaError::FieldCount {
                found: fields.len(),
            });
        }
        let mut numeric = [0.0; NUM_NUMERIC];
        let mut next = 0;
        for (column, raw) in fields.iter().enumerate() {
            if matches!(column, PROTOCOL_COLUMN | SERVICE_COLUMN | FLAG_COLUMN) {
                continue;
            }
            let name = FEATURE_NAMES[column];
            let text = raw.trim();
            let value: f64 = text.parse().map_err(|_| SchemaError::NotANumber {
                column,
                name,
                value: text.to_owned(),
            })?;
            if !value.is_finite() || value < 0.0 {
                return Err(SchemaError::OutOfRange {
                    column,
                    name,
                    value,
                });
            }
            numeric[next] = value;
            next += 1;
        }
        Ok(Self {
            numeric,
            protocol: category(fields, PROTOCOL_COLUMN, &PROTOCOLS)?,
            service: category(fields, SERVICE_COLUMN, &SERVICES)?,
            flag: category(fields, FLAG_COLUMN, &FLAGS)?,
        })
    }

    /// The value of record column `column` (0..41) as the model sees it before encoding:
    /// numeric columns as parsed, categorical columns as their vocabulary index.
    pub fn column_value(&self, column: usize) -> Option<f64> {
        match column {
            PROTOCOL_COLUMN => Some(f64::from(self.protocol)),
            SERVICE_COLUMN => Some(f64::from(self.service)),
            FLAG_COLUMN => Some(f64::from(self.flag)),
            0 => Some(self.numeric[0]),
            c if c < NUM_FEATURES => Some(self.numeric[c - 3]),
            _ => None,
        }
    }
}

/// Index of the numeric feature at record column `column`, or `None` for the
/// categorical columns and out-of-range columns.
pub fn numeric_index(column: usize) -> Option<usize> {
    match column {
        0 => Some(0),
        PROTOCOL_COLUMN | SERVICE_COLUMN | FLAG_COLUMN => None,
        c if c < NUM_FEATURES => Some(c - 3),
        _ => None,
    }
}

fn category(fields: &[&str], column: usize, vocabulary: &[&str]) -> Result<u8, SchemaError> {
    let text = fields[column].trim();
    vocabulary
        .iter()
        .position(|v| *v == text)
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| SchemaError::UnknownCategory {
            column,
            name: FEATURE_NAMES[column],
            value: text.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "0,tcp,http,SF,54540,8314,0,0,0,2,0,1,1,0,0,0,0,0,0,0,0,0,1,2,\
                       0.00,0.00,0.00,0.50,1.00,0.00,1.00,1,1,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00";

    fn fields(row: &str) -> Vec<&str> {
        row.split(',').collect()
    }

    #[test]
    fn parses_a_real_row() {
        let c = Connection::parse_fields(&fields(ROW)).unwrap();
        assert_eq!(PROTOCOLS[usize::from(c.protocol)], "tcp");
        assert_eq!(SERVICES[usize::from(c.service)], "http");
        assert_eq!(FLAGS[usize::from(c.flag)], "SF");
        assert_eq!(c.column_value(4), Some(54540.0));
        assert_eq!(c.column_value(5), Some(8314.0));
        assert_eq!(c.column_value(27), Some(0.5));
        assert_eq!(c.column_value(40), Some(0.0));
        assert_eq!(c.column_value(41), None);
        assert_eq!(numeric_index(4), Some(1));
        assert_eq!(numeric_index(2), None);
    }

    #[test]
    fn vocabularies_have_no_duplicates() {
        for vocab in [&PROTOCOLS[..], &SERVICES[..], &FLAGS[..]] {
            let mut v = vocab.to_vec();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), vocab.len());
        }
    }

    #[test]
    fn rejects_bad_fields() {
        let short = fields(ROW);
        assert_eq!(
            Connection::parse_fields(&short[..40]),
            Err(SchemaError::FieldCount { found: 40 })
        );
        let bad_number = ROW.replacen("54540", "5x", 1);
        assert!(matches!(
            Connection::parse_fields(&fields(&bad_number)),
            Err(SchemaError::NotANumber { column: 4, .. })
        ));
        let negative = ROW.replacen("54540", "-3", 1);
        assert!(matches!(
            Connection::parse_fields(&fields(&negative)),
            Err(SchemaError::OutOfRange { column: 4, .. })
        ));
        let nan = ROW.replacen("54540", "NaN", 1);
        assert!(matches!(
            Connection::parse_fields(&fields(&nan)),
            Err(SchemaError::OutOfRange { column: 4, .. })
        ));
        let unknown = ROW.replacen("http", "gopherz", 1);
        assert!(matches!(
            Connection::parse_fields(&fields(&unknown)),
            Err(SchemaError::UnknownCategory { column: 2, .. })
        ));
    }
}
