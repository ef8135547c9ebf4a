//! TLS 1.3 configurations with pinned certificates.
//!
//! There is no certificate authority: a peer is trusted iff the SHA-256 fingerprint of
//! the end-entity certificate it presents is pinned ([`crate::cert`]). The
//! custom verifiers below make exactly that decision and then still check the TLS 1.3
//! `CertificateVerify` signature with the ring provider's algorithms
//! (`rustls::crypto::verify_tls13_signature`), which proves that the peer holds the
//! pinned certificate's private key. Names, validity dates and intermediates are not
//! consulted. Only TLS 1.3 is enabled (the `tls12` feature of rustls is off), and every
//! configuration offers exactly the ALPN protocol [`ALPN`].
//!
//! Server side ([`server_tls_config`]), by [`ClientAuth`]:
//! - [`ClientAuth::Anonymous`]: no client certificate is requested (the leader's
//!   client-facing side; clients authenticate with their task token at the protocol
//!   level).
//! - [`ClientAuth::Optional`]: a client may connect without a certificate (then it is
//!   anonymous), but a certificate it presents must be pinned (a leader that serves both
//!   clients and the collector).
//! - [`ClientAuth::Required`]: mutual TLS; only pinned certificates connect (helpers,
//!   which accept only the leader and the collector).
//!
//! Client side ([`client_tls_config`]): the server must present the one pinned
//! certificate named in the task configuration; the client presents its own certificate
//! if it has one (leader → helper, collector → aggregators).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, PeerIncompatible, SignatureScheme,
};

use crate::cert::{Fingerprint, Identity, fingerprint};
use crate::error::TransportError;

/// The ALPN protocol identifier of Cairn's wire protocol, version 1.
pub const ALPN: &[u8] = b"cairn/1";

/// A set of pinned certificate fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinSet(BTreeSet<Fingerprint>);

impl PinSet {
    /// An empty set (pins nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fingerprint; returns whether it was new.
    pub fn insert(&mut self, fingerprint: Fingerprint) -> bool {
        self.0.insert(fingerprint)
    }

    /// Whether `fingerprint` is pinned.
    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.0.contains(fingerprint)
    }

    /// Number of pinned fingerprints.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set pins nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Fingerprint> for PinSet {
    fn from_iter<I: IntoIterator<Item = Fingerprint>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// How a server authenticates its clients at the TLS level.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is requested; every client is anonymous.
    Anonymous,
    /// Clients without a certificate are anonymous; a presented certificate must be
    /// pinned, else the handshake fails.
    Optional(PinSet),
    /// Every client must present a pinned certificate (mutual TLS).
    Required(PinSet),
}

/// The ring provider restricted to what Cairn uses (all its TLS 1.3 suites).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS 1.3 server configuration presenting `identity`, with ALPN [`ALPN`].
///
/// Errors: [`TransportError::Config`] for [`ClientAuth::Required`] with an empty pin set
/// (no client could ever connect), [`TransportError::Certificate`] if the key cannot be
/// loaded.
pub fn server_tls_config(
    identity: &Identity,
    client_auth: &ClientAuth,
) -> Result<rustls::ServerConfig, TransportError> {
    if matches!(client_auth, ClientAuth::Required(pins) if pins.is_empty()) {
        return Err(TransportError::Config(
            "client authentication is required but no client certificate is pinned".into(),
        ));
    }
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?;
    let builder = match client_auth {
        ClientAuth::Anonymous => builder.with_no_client_auth(),
        ClientAuth::Optional(pins) => {
            builder.with_client_cert_verifier(Arc::new(PinnedClientVerifier {
                pins: pins.clone(),
                mandatory: false,
                algorithms,
            }))
        }
        ClientAuth::Required(pins) => {
            builder.with_client_cert_verifier(Arc::new(PinnedClientVerifier {
                pins: pins.clone(),
                mandatory: true,
                algorithms,
            }))
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCert(identity.certified_key()?)));
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A TLS 1.3 client configuration that accepts only the server certificate whose
/// fingerprint is `pinned_server`, presenting `identity` if given.
pub fn client_tls_config(
    pinned_server: Fingerprint,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TransportError> {
    let key = identity.map(Identity::certified_key).transpose()?;
    Ok(pinned_client_config(pinned_server, key)?.0)
}

/// [`client_tls_config`] with an already loaded key, also returning the verifier so the
/// caller can tell a pin mismatch from other handshake failures.
pub(crate) fn pinned_client_config(
    pinned_server: Fingerprint,
    key: Option<Arc<CertifiedKey>>,
) -> Result<(rustls::ClientConfig, Arc<PinnedServerVerifier>), TransportError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServerVerifier {
        pinned: pinned_server,
        algorithms: provider.signature_verification_algorithms,
        rejected: Mutex::new(None),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let mut config = match key {
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCert(key))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok((config, verifier))
}

/// Accepts a server certificate iff its fingerprint is the pinned one.
#[derive(Debug)]
pub(crate) struct PinnedServerVerifier {
    pinned: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
    /// The fingerprint of the last certificate refused, for a typed error.
    rejected: Mutex<Option<Fingerprint>>,
}

impl PinnedServerVerifier {
    /// The fingerprint of a certificate this verifier refused, if any.
    pub(crate) fn rejected(&self) -> Option<Fingerprint> {
        // A poisoned lock only means another handshake panicked; the value is still valid.
        *self.rejected.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity.as_ref());
        if presented == self.pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            *self.rejected.lock().unwrap_or_else(|p| p.into_inner()) = Some(presented);
            tracing::debug!(presented = %hex::encode(presented), "server certificate not pinned");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOfferedOrEnabled,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts a client certificate iff its fingerprint is pinned.
#[derive(Debug)]
struct PinnedClientVerifier {
    pins: PinSet,
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity.as_ref());
        if self.pins.contains(&presented) {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::info!(presented = %hex::encode(presented), "client certificate not pinned: refused");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOfferedOrEnabled,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Always presents the same certificate and key (as server or as client).
#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for SingleCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for SingleCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn tls_err(e: rustls::Error) -> TransportError {
    TransportError::Tls(e.to_string())
}
