//! Identifiers.
//!
//! A task id is the hash of the task's configuration, so every party that holds the
//! same `task.toml` derives the same id.
//! Report ids are 16 random bytes chosen by the client; they name a report for
//! anti-replay and bind its sealed shares (HPKE associated data) and its PRG streams.
//! Job ids name an aggregation job between the leader and the helpers, so that a
//! retried job is recognised and not counted twice.
//! Clients are identified by [`crate::auth::ClientId`]s and authenticated with
//! per-client credentials ([`crate::auth`]).

use core::fmt;

use cairn_mpc::codec::{CodecError, Decode, Encode, Reader};
use rand_core::CryptoRng;

/// A task's identifier: SHA-256 over the canonical encoding of its parameters
/// ([`crate::config::TaskConfig::id`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub [u8; 32]);

impl TaskId {
    /// Lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.to_hex())
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Bytes in a report id.
pub const REPORT_ID_LEN: usize = cairn_mpc::prg::REPORT_ID_LEN;

/// A report's identifier: 16 bytes drawn at random by the client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub [u8; REPORT_ID_LEN]);

impl ReportId {
    /// A fresh random id.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; REPORT_ID_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReportId({})", self.to_hex())
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An aggregation job's identifier, chosen by the leader.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub [u8; 16]);

impl JobId {
    /// A fresh random id.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.to_hex())
    }
}

macro_rules! impl_codec_id {
    ($t:ident, $len:expr) => {
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }

            fn encoded_len(&self) -> Option<usize> {
                Some($len)
            }
        }

        impl Decode for $t {
            const MIN_ENCODED_LEN: usize = $len;

            fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
                Ok(Self(reader.read_array()?))
            }
        }
    };
}

impl_codec_id!(ReportId, REPORT_ID_LEN);
impl_codec_id!(JobId, 16);

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn ids_roundtrip() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let id = ReportId::random(&mut rng);
        assert_eq!(ReportId::decode(&id.to_bytes()), Ok(id));
        assert!(ReportId::decode(&[0u8; 15]).is_err());
        assert!(ReportId::decode(&[0u8; 17]).is_err());
    }
}
