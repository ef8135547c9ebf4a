//! Identifiers and the client token.
//!
//! Report ids are 16 random bytes chosen by the client; they name a report for
//! anti-replay and bind its sealed shares (HPKE associated data) and its PRG streams.
//! Job ids name an aggregation job between the leader and the helpers, so that a
//! retried job is recognised and not counted twice.
//!
//! A [`ClientToken`] authenticates clients to the leader. It is a 32-byte secret; the
//! leader stores only its SHA-256 hash ([`TokenHash`]) and compares hashes in constant
//! time, so a stolen node database does not reveal tokens.

use core::fmt;

use cairn_mpc::codec::{CodecError, Decode, Encode, Reader};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

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

/// Bytes in a client token.
pub const TOKEN_LEN: usize = 32;

/// A client's bearer token for one task: secret, zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ClientToken([u8; TOKEN_LEN]);

impl ClientToken {
    /// A fresh random token.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; TOKEN_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hexadecimal digits (the form in a client's token file).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; TOKEN_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// Hexadecimal of the secret, for writing the token file; keep it out of logs.
    pub fn dangerous_to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0))
    }

    /// A copy for one more request. Crate-internal on purpose: secrets have no
    /// `Clone`, and only the client state machine needs to send its token repeatedly.
    pub(crate) fn copy_for_request(&self) -> Self {
        Self(self.0)
    }

    /// The hash the leader stores.
    pub fn hash(&self) -> TokenHash {
        let mut h = Sha256::new();
        h.update(b"cairn/1 client token");
        h.update(self.0);
        TokenHash(h.finalize().into())
    }
}

impl fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientToken(<redacted>)")
    }
}

impl Encode for ClientToken {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(TOKEN_LEN)
    }
}

impl Decode for ClientToken {
    const MIN_ENCODED_LEN: usize = TOKEN_LEN;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut bytes: [u8; TOKEN_LEN] = reader.read_array()?;
        let token = Self(bytes);
        bytes.zeroize();
        Ok(token)
    }
}

/// SHA-256 of a client token, as the leader stores it.
#[derive(Clone, Copy)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Whether `token` hashes to this value (constant time in the hash bytes).
    pub fn verify(&self, token: &ClientToken) -> bool {
        token.hash().0.ct_eq(&self.0).into()
    }

    /// Lower-case hexadecimal, for the leader's configuration.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
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
    fn token_hash_verifies_only_its_token() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let token = ClientToken::generate(&mut rng);
        let other = ClientToken::generate(&mut rng);
        let hash = token.hash();
        assert!(hash.verify(&token));
        assert!(!hash.verify(&other));
        let parsed = ClientToken::from_hex(&token.dangerous_to_hex()).unwrap();
        assert!(hash.verify(&parsed));
        assert!(TokenHash::from_hex(&hash.to_hex()).unwrap().verify(&token));
        assert_eq!(format!("{token:?}"), "ClientToken(<redacted>)");
    }

    #[test]
    fn ids_roundtrip() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let id = ReportId::random(&mut rng);
        assert_eq!(ReportId::decode(&id.to_bytes()), Ok(id));
        assert!(ReportId::decode(&[0u8; 15]).is_err());
        assert!(ReportId::decode(&[0u8; 17]).is_err());
    }
}
