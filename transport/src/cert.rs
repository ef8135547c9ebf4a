//! Self-signed certificates, their fingerprints, and private keys.
//!
//! Cairn uses no certificate authority. Every aggregator (and the collector, when it
//! authenticates to the aggregators) has one self-signed certificate, and its peers pin
//! the **SHA-256 fingerprint of the DER-encoded certificate** ([`fingerprint`]), the
//! value `tls_cert_sha256` of `task.toml`. Names and validity dates in the certificate are
//! not checked by peers (the pin is the whole trust decision); the subject alternative
//! names are filled in for tools that display them.
//!
//! Keys are Ed25519, generated from an injected CSPRNG ([`Identity::generate`]): the
//! 32-byte seed becomes a PKCS#8 v1 document (RFC 8410 §7) and `rcgen` signs the
//! certificate with it. Ed25519 signatures are deterministic and `rcgen` derives the
//! serial number from the public key, so the same seed and names give the same
//! certificate (and fingerprint).
//!
//! Private keys are [`PrivateKey`]: no `Clone`, zeroized on drop, redacted `Debug`,
//! constant-time equality. Copies made inside `rcgen` (while signing) and inside
//! `rustls`/`ring` (the loaded signing key) are outside this type's control.

use core::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rand_core::CryptoRng;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use crate::error::TransportError;

/// Bytes of a certificate fingerprint (SHA-256).
pub const FINGERPRINT_LEN: usize = 32;

/// SHA-256 of a DER-encoded certificate: what peers pin.
pub type Fingerprint = [u8; FINGERPRINT_LEN];

/// The fingerprint of a DER-encoded certificate: `SHA-256(der)`.
pub fn fingerprint(cert_der: &[u8]) -> Fingerprint {
    Sha256::digest(cert_der).into()
}

/// Parses the first `CERTIFICATE` block of a PEM document into DER bytes.
pub fn certificate_der_from_pem(pem: &[u8]) -> Result<Vec<u8>, TransportError> {
    let der = CertificateDer::from_pem_slice(pem)
        .map_err(|e| TransportError::Certificate(format!("certificate PEM: {e}")))?;
    Ok(der.as_ref().to_vec())
}

/// Encodes a DER certificate as a PEM `CERTIFICATE` block.
pub fn certificate_pem(cert_der: &[u8]) -> String {
    let mut out = String::with_capacity(pem_len("CERTIFICATE", cert_der.len()));
    write_pem("CERTIFICATE", cert_der, &mut out);
    out
}

/// A PKCS#8 private key (Ed25519 or ECDSA). Secret: no `Clone`, zeroized on drop,
/// redacted `Debug`, compared in constant time.
pub struct PrivateKey {
    der: PrivatePkcs8KeyDer<'static>,
}

impl PrivateKey {
    /// Wraps PKCS#8 DER bytes, checking that `ring` can load them as a signing key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TransportError> {
        let key = Self {
            der: PrivatePkcs8KeyDer::from(der.to_vec()),
        };
        key.signing_key()?;
        Ok(key)
    }

    /// Parses the first `PRIVATE KEY` (PKCS#8) block of a PEM document.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TransportError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| TransportError::Certificate(format!("private key PEM: {e}")))?;
        let key = Self { der };
        key.signing_key()?;
        Ok(key)
    }

    /// The PKCS#8 DER bytes. Secret: do not log or copy them.
    pub fn expose_pkcs8_der(&self) -> &[u8] {
        self.der.secret_pkcs8_der()
    }

    /// The key as a PEM `PRIVATE KEY` block, in a buffer zeroized on drop.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let der = self.expose_pkcs8_der();
        let mut out = Zeroizing::new(String::with_capacity(pem_len("PRIVATE KEY", der.len())));
        write_pem("PRIVATE KEY", der, &mut out);
        out
    }

    /// Loads the key into a `rustls` signing key (ring provider), without copying it
    /// into an unzeroized buffer on our side.
    pub(crate) fn signing_key(&self) -> Result<Arc<dyn rustls::sign::SigningKey>, TransportError> {
        let borrowed = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.expose_pkcs8_der()));
        rustls::crypto::ring::sign::any_supported_type(&borrowed)
            .map_err(|e| TransportError::Certificate(format!("unsupported private key: {e}")))
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.der.zeroize();
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

impl ConstantTimeEq for PrivateKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.expose_pkcs8_der().ct_eq(other.expose_pkcs8_der())
    }
}

/// A certificate with its private key: what a node (or the collector) presents.
pub struct Identity {
    cert_der: CertificateDer<'static>,
    key: PrivateKey,
    fingerprint: Fingerprint,
}

impl Identity {
    /// Generates an Ed25519 key from `rng` and a self-signed certificate for the given
    /// subject alternative names (DNS names such as `"localhost"`, or IP addresses such
    /// as `"127.0.0.1"`). Deterministic in the RNG output and the names.
    pub fn generate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        subject_alt_names: &[&str],
    ) -> Result<Self, TransportError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + 32));
        pkcs8.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
        pkcs8.extend_from_slice(seed.as_ref());

        let cert_err = |e: rcgen::Error| TransportError::Certificate(e.to_string());
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_ED25519,
        )
        .map_err(cert_err)?;
        let names: Vec<String> = subject_alt_names.iter().map(|s| (*s).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .map_err(cert_err)?
            .self_signed(&key_pair)
            .map_err(cert_err)?;
        drop(key_pair);
        let key = PrivateKey::from_pkcs8_der(&pkcs8)?;
        Self::from_parts(cert.der().as_ref(), key)
    }

    /// Assembles an identity from a DER certificate and its private key, checking that
    /// the key matches the certificate's public key.
    pub fn from_parts(cert_der: &[u8], key: PrivateKey) -> Result<Self, TransportError> {
        let cert_der = CertificateDer::from(cert_der.to_vec());
        let certified = rustls::sign::CertifiedKey::new(vec![cert_der.clone()], key.signing_key()?);
        certified.keys_match().map_err(|e| {
            TransportError::Certificate(format!("key does not match certificate: {e}"))
        })?;
        let fingerprint = fingerprint(cert_der.as_ref());
        Ok(Self {
            cert_der,
            key,
            fingerprint,
        })
    }

    /// Parses a PEM certificate and a PEM PKCS#8 private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TransportError> {
        let cert_der = certificate_der_from_pem(cert_pem)?;
        Self::from_parts(&cert_der, PrivateKey::from_pem(key_pem)?)
    }

    /// Reads a certificate and a key from PEM files.
    pub fn read_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, TransportError> {
        let cert_pem = fs::read(cert_path)?;
        let key_pem = Zeroizing::new(fs::read(key_path)?);
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Writes the certificate and the key as PEM files. The key file is created new
    /// (an existing file is an error, so a key is never silently replaced) and, on Unix,
    /// readable by its owner only (mode 0600).
    pub fn write_pem_files(&self, cert_path: &Path, key_path: &Path) -> Result<(), TransportError> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut key_file = options.open(key_path)?;
        key_file.write_all(self.key.to_pem().as_bytes())?;
        key_file.sync_all()?;
        fs::write(cert_path, self.certificate_pem())?;
        Ok(())
    }

    /// The DER-encoded certificate.
    pub fn certificate_der(&self) -> &[u8] {
        self.cert_der.as_ref()
    }

    /// The certificate as a PEM `CERTIFICATE` block.
    pub fn certificate_pem(&self) -> String {
        certificate_pem(self.certificate_der())
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The certificate's fingerprint: what peers pin.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The certificate and loaded signing key, as TLS presents them.
    pub(crate) fn certified_key(&self) -> Result<Arc<rustls::sign::CertifiedKey>, TransportError> {
        Ok(Arc::new(rustls::sign::CertifiedKey::new(
            vec![self.cert_der.clone()],
            self.key.signing_key()?,
        )))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &hex::encode(self.fingerprint))
            .field("key", &self.key)
            .finish()
    }
}

/// DER prefix of a PKCS#8 v1 Ed25519 private key (RFC 8410 §7): `SEQUENCE { INTEGER 0,
/// SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32 bytes) } }`; the 32-byte
/// seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Characters per PEM body line (RFC 7468 §2).
const PEM_LINE: usize = 64;

/// Exact length of the PEM document [`write_pem`] produces, so the output buffer never
/// reallocates (a reallocation would leave an unzeroized copy of a key behind).
fn pem_len(label: &str, der_len: usize) -> usize {
    let b64 = der_len.div_ceil(3) * 4;
    let lines = b64.div_ceil(PEM_LINE);
    let header = "-----BEGIN ".len() + label.len() + "-----\n".len();
    let footer = "-----END ".len() + label.len() + "-----\n".len();
    header + b64 + lines + footer
}

/// Appends `der` as a PEM block (RFC 7468) to `out`, base64-encoding in constant time.
fn write_pem(label: &str, der: &[u8], out: &mut String) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut column = 0;
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let sextets = [
            b[0] >> 2,
            ((b[0] & 0x03) << 4) | (b[1] >> 4),
            ((b[1] & 0x0f) << 2) | (b[2] >> 6),
            b[2] & 0x3f,
        ];
        // A chunk of n bytes yields n + 1 characters, padded with '=' to four.
        for (i, &s) in sextets.iter().enumerate() {
            out.push(if i <= chunk.len() {
                char::from(base64_char(s))
            } else {
                '='
            });
            column += 1;
            if column == PEM_LINE {
                out.push('\n');
                column = 0;
            }
        }
    }
    if column != 0 {
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// The standard base64 alphabet (RFC 4648 §4) without table lookups or branches on the
/// value, so encoding a key leaks nothing through timing or cache.
fn base64_char(sextet: u8) -> u8 {
    let v = i16::from(sextet & 0x3f);
    let mut c = v + i16::from(b'A');
    // (k - v) >> 8 is all ones exactly when v > k (arithmetic shift of a small negative).
    c += ((25 - v) >> 8) & 6; // 26..=51 → 'a'..='z'
    c += ((51 - v) >> 8) & -75; // 52..=61 → '0'..='9'
    c += ((61 - v) >> 8) & -15; // 62 → '+'
    c += ((62 - v) >> 8) & 3; // 63 → '/'
    // In 0..=127 by construction of the offsets above.
    c as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    #[test]
    fn base64_alphabet_matches_rfc4648() {
        for (v, &expected) in ALPHABET.iter().enumerate() {
            assert_eq!(base64_char(v as u8), expected, "sextet {v}");
        }
    }

    #[test]
    fn pem_roundtrips_through_pki_types_parser_for_every_padding() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 50, 100] {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let pem = certificate_pem(&der);
            assert_eq!(pem.len(), pem_len("CERTIFICATE", len));
            assert!(
                pem.lines()
                    .all(|l| l.len() <= PEM_LINE || l.starts_with("-----"))
            );
            if len > 0 {
                assert_eq!(certificate_der_from_pem(pem.as_bytes()).unwrap(), der);
            }
        }
    }

    #[test]
    fn generation_is_deterministic_in_the_rng_and_keys_roundtrip_pem() {
        let a = Identity::generate(&mut ChaCha20Rng::from_seed([7; 32]), &["localhost"]).unwrap();
        let b = Identity::generate(&mut ChaCha20Rng::from_seed([7; 32]), &["localhost"]).unwrap();
        let c = Identity::generate(&mut ChaCha20Rng::from_seed([8; 32]), &["localhost"]).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(*a.fingerprint(), fingerprint(a.certificate_der()));

        let again = Identity::from_pem(
            a.certificate_pem().as_bytes(),
            a.private_key().to_pem().as_bytes(),
        )
        .unwrap();
        assert_eq!(again.fingerprint(), a.fingerprint());
        assert!(bool::from(again.private_key().ct_eq(a.private_key())));
        assert!(!bool::from(c.private_key().ct_eq(a.private_key())));
    }

    #[test]
    fn mismatched_key_and_certificate_are_refused() {
        let a = Identity::generate(&mut ChaCha20Rng::from_seed([1; 32]), &["a"]).unwrap();
        let b = Identity::generate(&mut ChaCha20Rng::from_seed([2; 32]), &["b"]).unwrap();
        let key = PrivateKey::from_pkcs8_der(b.private_key().expose_pkcs8_der()).unwrap();
        assert!(matches!(
            Identity::from_parts(a.certificate_der(), key),
            Err(TransportError::Certificate(_))
        ));
    }

    #[test]
    fn garbage_keys_and_pem_are_typed_errors() {
        assert!(matches!(
            PrivateKey::from_pkcs8_der(&[0x30, 0x00]),
            Err(TransportError::Certificate(_))
        ));
        assert!(matches!(
            PrivateKey::from_pem(b"not pem"),
            Err(TransportError::Certificate(_))
        ));
        assert!(matches!(
            certificate_der_from_pem(b""),
            Err(TransportError::Certificate(_))
        ));
    }

    #[test]
    fn debug_output_is_redacted() {
        let id = Identity::generate(&mut ChaCha20Rng::from_seed([3; 32]), &["x"]).unwrap();
        let key_hex = hex::encode(id.private_key().expose_pkcs8_der());
        let shown = format!("{id:?} {:?}", id.private_key());
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&key_hex[key_hex.len() - 16..]));
    }

    #[test]
    fn pem_files_are_written_new_and_read_back() {
        let dir = std::env::temp_dir().join(format!("cairn-cert-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("node.crt"), dir.join("node.key"));
        let _ = fs::remove_file(&cert);
        let _ = fs::remove_file(&key);
        let id = Identity::generate(&mut ChaCha20Rng::from_seed([4; 32]), &["127.0.0.1"]).unwrap();
        id.write_pem_files(&cert, &key).unwrap();
        assert!(matches!(
            id.write_pem_files(&cert, &key),
            Err(TransportError::Io(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let back = Identity::read_pem_files(&cert, &key).unwrap();
        assert_eq!(back.fingerprint(), id.fingerprint());
        fs::remove_dir_all(&dir).unwrap();
    }
}
