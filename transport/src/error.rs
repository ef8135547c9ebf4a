//! The transport's error type.
//!
//! Every failure of the transport layer is one [`TransportError`] variant, so callers can
//! tell an authentication failure (never retried) from a lost connection or a timeout
//! (retried with backoff, see [`crate::retry`]).

use std::io;
use std::time::Duration;

use crate::cert::Fingerprint;

/// What timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The QUIC/TLS handshake did not complete in time.
    Handshake,
    /// Reading a frame (its length prefix or its body) took too long.
    Read,
    /// Writing a frame took too long (the peer does not grant flow-control credit).
    Write,
}

/// Errors of the transport layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A certificate or private key could not be generated, parsed or encoded.
    #[error("certificate error: {0}")]
    Certificate(String),
    /// A TLS configuration could not be built, or the TLS handshake failed (including a
    /// peer that refused our certificate).
    #[error("TLS error: {0}")]
    Tls(String),
    /// The server presented a certificate whose SHA-256 fingerprint is not the pinned one.
    #[error(
        "peer certificate is not pinned (presented fingerprint {})",
        hex_fingerprint(presented)
    )]
    PeerNotPinned {
        /// The fingerprint of the certificate the peer presented.
        presented: Fingerprint,
    },
    /// A connection could not be started (bad address, endpoint stopping).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// An operation did not finish in time.
    #[error("{kind:?} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        kind: TimeoutKind,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// A frame's length prefix is above the limit; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The length the prefix announced (or the caller tried to send).
        len: u64,
        /// The largest length accepted.
        max: usize,
    },
    /// The stream ended before a whole frame arrived.
    #[error("stream ended inside a frame")]
    UnexpectedEof,
    /// The stream carried bytes after the frame (one frame per stream direction).
    #[error("bytes after the frame on a one-frame stream")]
    TrailingBytes,
    /// The peer refused this request's stream (QUIC `RESET_STREAM`/`STOP_SENDING` with an
    /// application code, see [`crate::server`]): a malformed or oversize
    /// request, not a transient failure.
    #[error("stream refused by the peer (code {code})")]
    StreamRefused {
        /// The application error code the peer gave.
        code: u64,
    },
    /// The connection or stream was closed or lost (by the peer, an idle timeout or a
    /// reset).
    #[error("connection closed: {0}")]
    Closed(String),
    /// A transport parameter is out of range (for example an idle timeout QUIC cannot
    /// encode).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// A socket or file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl TransportError {
    /// Whether retrying the same request later may succeed: lost or closed connections,
    /// timeouts, truncated streams and I/O errors are transient; authentication,
    /// configuration, addressing, refused streams and size errors are not.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. }
                | TransportError::UnexpectedEof
                | TransportError::Closed(_)
                | TransportError::Io(_)
        )
    }
}

fn hex_fingerprint(fp: &Fingerprint) -> String {
    hex::encode(fp)
}

/// Maps a quinn connection error to a transport error: TLS alerts (QUIC crypto error
/// codes 0x100–0x1ff, RFC 9001 §4.8) become [`TransportError::Tls`], the rest
/// [`TransportError::Closed`].
pub(crate) fn from_connection_error(err: quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as E;
    let is_crypto = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
    match &err {
        E::TransportError(e) if is_crypto(e.code) => TransportError::Tls(err.to_string()),
        E::ConnectionClosed(c) if is_crypto(c.error_code) => TransportError::Tls(err.to_string()),
        _ => TransportError::Closed(err.to_string()),
    }
}
