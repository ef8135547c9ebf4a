//! Hybrid public-key encryption of shares (RFC 9180).
//!
//! Helper shares travel through the leader, and aggregate shares travel to the
//! collector; both are sealed to the recipient's static key with HPKE in base mode,
//! using the suite **DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305**
//! (RFC 9180 §7.1, KEM id 0x0020, KDF id 0x0001, AEAD id 0x0003).
//!
//! Every seal binds its context twice:
//! - the HPKE `info` string names *what* is sealed ([`SealPurpose`]) and the protocol
//!   version, so a helper share can never be opened as an aggregate share;
//! - the AEAD associated data carries the task id and report id (or round), so a
//!   ciphertext cut from one report and pasted into another fails to open.
//!
//! Secret keys are [`HpkeSecretKey`]: no `Clone`, zeroized on drop, redacted `Debug`.

use core::fmt;

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Bytes of an X25519 public key, secret key and encapsulated key.
pub const HPKE_KEY_LEN: usize = 32;
/// Bytes the AEAD adds to every plaintext (the Poly1305 tag).
pub const HPKE_TAG_LEN: usize = 16;

/// Errors from sealing and opening.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HpkeError {
    /// A key or encapsulated key is not 32 bytes or is not a valid point.
    #[error("malformed HPKE key")]
    MalformedKey,
    /// The ciphertext does not open under this key, info and associated data
    /// (tampered, misdirected, or bound to another report).
    #[error("HPKE ciphertext failed to open")]
    OpenFailed,
    /// Encapsulation or encryption failed (an invalid recipient key).
    #[error("HPKE seal failed")]
    SealFailed,
}

/// What a ciphertext carries; part of the HPKE `info` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealPurpose {
    /// A client's input share for one helper aggregator.
    HelperInputShare,
    /// An aggregator's aggregate share for the collector.
    AggregateShare,
}

impl SealPurpose {
    fn info(self) -> &'static [u8] {
        match self {
            SealPurpose::HelperInputShare => b"cairn/1 helper input share",
            SealPurpose::AggregateShare => b"cairn/1 aggregate share",
        }
    }
}

/// A recipient's public key (X25519). Public: freely copied, printed and configured.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HpkePublicKey([u8; HPKE_KEY_LEN]);

impl HpkePublicKey {
    /// Wraps 32 bytes, checking that they decode as an X25519 public key.
    pub fn from_bytes(bytes: [u8; HPKE_KEY_LEN]) -> Result<Self, HpkeError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&bytes).map_err(|_| HpkeError::MalformedKey)?;
        Ok(Self(bytes))
    }

    /// Parses 64 hexadecimal digits (the form used in configuration files).
    pub fn from_hex(hex_str: &str) -> Result<Self, HpkeError> {
        let mut bytes = [0u8; HPKE_KEY_LEN];
        hex::decode_to_slice(hex_str.trim(), &mut bytes).map_err(|_| HpkeError::MalformedKey)?;
        Self::from_bytes(bytes)
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; HPKE_KEY_LEN] {
        &self.0
    }

    /// Lower-case hexadecimal, as written to configuration files.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkePublicKey({})", self.to_hex())
    }
}

/// A recipient's secret key (X25519): never cloned, zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct HpkeSecretKey([u8; HPKE_KEY_LEN]);

impl HpkeSecretKey {
    /// Wraps 32 secret bytes (any 32 bytes are a valid X25519 secret after clamping).
    pub fn from_bytes(bytes: [u8; HPKE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hexadecimal digits (the form stored in a node's key file).
    pub fn from_hex(hex_str: &str) -> Result<Self, HpkeError> {
        let mut bytes = Zeroizing::new([0u8; HPKE_KEY_LEN]);
        hex::decode_to_slice(hex_str.trim(), bytes.as_mut())
            .map_err(|_| HpkeError::MalformedKey)?;
        Ok(Self(*bytes))
    }

    /// Hexadecimal of the secret, for writing the node's key file. The name says what
    /// it does: the caller must keep the result out of logs.
    pub fn dangerous_to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// The matching public key.
    pub fn public_key(&self) -> HpkePublicKey {
        let sk = self.to_hpke();
        let pk = <Kem as hpke::Kem>::sk_to_pk(&sk);
        let mut bytes = [0u8; HPKE_KEY_LEN];
        bytes.copy_from_slice(&pk.to_bytes());
        HpkePublicKey(bytes)
    }

    fn to_hpke(&self) -> <Kem as hpke::Kem>::PrivateKey {
        // Invariant: X25519 secret keys are any 32 bytes, so decoding cannot fail.
        #[allow(clippy::expect_used)]
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.0)
            .expect("every 32-byte string is an X25519 secret key")
    }
}

impl ConstantTimeEq for HpkeSecretKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl fmt::Debug for HpkeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HpkeSecretKey(<redacted>)")
    }
}

/// A fresh key pair.
pub fn generate_keypair<R: CryptoRng + ?Sized>(rng: &mut R) -> (HpkeSecretKey, HpkePublicKey) {
    let mut secret = Zeroizing::new([0u8; HPKE_KEY_LEN]);
    rng.fill_bytes(secret.as_mut());
    let sk = HpkeSecretKey::from_bytes(*secret);
    let pk = sk.public_key();
    (sk, pk)
}

/// A sealed message: the encapsulated key and the AEAD ciphertext (with its tag).
#[derive(Clone, PartialEq, Eq)]
pub struct HpkeCiphertext {
    /// The sender's ephemeral X25519 public key.
    pub encapsulated_key: [u8; HPKE_KEY_LEN],
    /// The ciphertext, [`HPKE_TAG_LEN`] bytes longer than the plaintext.
    pub payload: Vec<u8>,
}

impl fmt::Debug for HpkeCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HpkeCiphertext")
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// Seals `plaintext` to `recipient`, bound to `purpose` and `aad` (RFC 9180 §6.1,
/// single-shot base mode).
pub fn seal<R: CryptoRng + ?Sized>(
    recipient: &HpkePublicKey,
    purpose: SealPurpose,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<HpkeCiphertext, HpkeError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.0)
        .map_err(|_| HpkeError::MalformedKey)?;
    let mut rng = RngRef(rng);
    let (encapped, payload) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk,
        purpose.info(),
        plaintext,
        aad,
        &mut rng,
    )
    .map_err(|_| HpkeError::SealFailed)?;
    let mut encapsulated_key = [0u8; HPKE_KEY_LEN];
    encapsulated_key.copy_from_slice(&encapped.to_bytes());
    Ok(HpkeCiphertext {
        encapsulated_key,
        payload,
    })
}

/// Opens a ciphertext sealed by [`seal`] with the same `purpose` and `aad`. The
/// plaintext is returned in a zeroizing buffer, since it is usually a secret share.
pub fn open(
    secret_key: &HpkeSecretKey,
    purpose: SealPurpose,
    aad: &[u8],
    ciphertext: &HpkeCiphertext,
) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
    let sk = secret_key.to_hpke();
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&ciphertext.encapsulated_key)
        .map_err(|_| HpkeError::MalformedKey)?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &sk,
        &encapped,
        purpose.info(),
        &ciphertext.payload,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| HpkeError::OpenFailed)
}

/// Adapts `&mut R` (possibly unsized) to the sized `impl CryptoRng` that `hpke` takes.
struct RngRef<'a, R: ?Sized>(&'a mut R);

impl<R: CryptoRng + ?Sized> rand_core::TryRng for RngRef<'_, R> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: CryptoRng + ?Sized> rand_core::TryCryptoRng for RngRef<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([7; 32])
    }

    #[test]
    fn seal_open_roundtrip() {
        let mut rng = rng();
        let (sk, pk) = generate_keypair(&mut rng);
        let ct = seal(
            &pk,
            SealPurpose::HelperInputShare,
            b"aad",
            b"secret seed",
            &mut rng,
        )
        .unwrap();
        assert_eq!(ct.payload.len(), b"secret seed".len() + HPKE_TAG_LEN);
        let pt = open(&sk, SealPurpose::HelperInputShare, b"aad", &ct).unwrap();
        assert_eq!(pt.as_slice(), b"secret seed");
    }

    #[test]
    fn binding_to_purpose_aad_key_and_payload() {
        let mut rng = rng();
        let (sk, pk) = generate_keypair(&mut rng);
        let (other_sk, _) = generate_keypair(&mut rng);
        let ct = seal(
            &pk,
            SealPurpose::HelperInputShare,
            b"task|report-1",
            b"x",
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            open(&sk, SealPurpose::AggregateShare, b"task|report-1", &ct),
            Err(HpkeError::OpenFailed)
        );
        assert_eq!(
            open(&sk, SealPurpose::HelperInputShare, b"task|report-2", &ct),
            Err(HpkeError::OpenFailed)
        );
        assert_eq!(
            open(
                &other_sk,
                SealPurpose::HelperInputShare,
                b"task|report-1",
                &ct
            ),
            Err(HpkeError::OpenFailed)
        );
        let mut tampered = ct.clone();
        tampered.payload[0] ^= 1;
        assert_eq!(
            open(
                &sk,
                SealPurpose::HelperInputShare,
                b"task|report-1",
                &tampered
            ),
            Err(HpkeError::OpenFailed)
        );
        let mut truncated = ct;
        truncated.payload.truncate(3);
        assert_eq!(
            open(
                &sk,
                SealPurpose::HelperInputShare,
                b"task|report-1",
                &truncated
            ),
            Err(HpkeError::OpenFailed)
        );
    }

    #[test]
    fn keys_roundtrip_through_hex_and_stay_redacted() {
        let mut rng = rng();
        let (sk, pk) = generate_keypair(&mut rng);
        assert_eq!(HpkePublicKey::from_hex(&pk.to_hex()), Ok(pk));
        let sk2 = HpkeSecretKey::from_hex(&sk.dangerous_to_hex()).unwrap();
        assert!(bool::from(sk.ct_eq(&sk2)));
        assert_eq!(sk2.public_key(), pk);
        let printed = format!("{sk:?}");
        assert!(!printed.contains(&sk.dangerous_to_hex()[..8]));
        assert!(printed.contains("redacted"));
        assert_eq!(HpkePublicKey::from_hex("zz"), Err(HpkeError::MalformedKey));
        assert!(HpkeSecretKey::from_hex("00").is_err());
    }
}
