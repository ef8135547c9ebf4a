//! `cairn-transport`: the network transport shared by the SDK and the aggregator node:
//! QUIC (quinn) with
//! TLS 1.3 (rustls, ring provider), ALPN `cairn/1`, pinned self-signed certificates, one
//! length-prefixed request/response per stream, bounded sizes, times and concurrency.
//!
//! # Who is authenticated, and how (DESIGN §2, §7)
//!
//! The network is an active attacker. Every connection is TLS 1.3 inside QUIC; there is
//! no certificate authority. Each aggregator has one self-signed certificate
//! ([`Identity`], made with `rcgen`), and every party pins the **SHA-256 fingerprint of
//! its DER encoding** ([`fingerprint`]), which `task.toml` lists per aggregator
//! (`TaskConfig::aggregator_fingerprint(i)`).
//!
//! | connection | server proves | client proves |
//! |---|---|---|
//! | client → leader | pinned certificate | nothing at TLS level ([`ClientAuth::Anonymous`] or [`ClientAuth::Optional`]); the per-task token inside the upload |
//! | collector → leader | pinned certificate | its pinned certificate ([`ClientAuth::Optional`]: the leader tells it from clients by it) |
//! | leader → helper | pinned certificate | its pinned certificate ([`ClientAuth::Required`]: mutual TLS) |
//!
//! A client accepts a server iff the end-entity certificate's fingerprint equals the pin
//! ([`ClientEndpoint::connect`] fails with [`TransportError::PeerNotPinned`] otherwise),
//! and a server accepts a client certificate iff its fingerprint is in the [`PinSet`];
//! both then verify the TLS 1.3 handshake signature, so the peer holds the pinned key.
//! The server hands each request to its handler with the peer's [`PeerIdentity`] (the
//! fingerprint, or anonymous): authorisation — "job requests only from the leader",
//! "uploads only with a valid token" — is the node's decision, made per request.
//!
//! Confidentiality of shares does not rest on this layer alone: helper shares travel
//! through the leader sealed with HPKE to each helper (`cairn_protocol::hpke`).
//!
//! # Framing and limits
//!
//! One request and one response per bidirectional stream, each a `u32` little-endian
//! length prefix and the frame bytes, then end of stream ([`frame`]). Readers refuse a
//! length above the limit (set it from the task's `Limits::max_frame_len()`) before
//! allocating. [`TransportOptions`] bounds the handshake, idle and request times, the
//! streams per connection (fewer for anonymous peers, whom anyone can impersonate), the
//! requests handled at once, and the connections kept; a server asks new connection
//! attempts to prove their source address (QUIC Retry) while many handshakes are in
//! progress, so half-open handshakes from spoofed addresses cannot hold its slots, and
//! bounds what one source address may hold: connections, request slots and request
//! memory (`address`).
//!
//! # Modules
//!
//! - [`cert`]: certificates, fingerprints, private keys, PEM.
//! - [`tls`]: rustls configurations with pinned verifiers, ALPN.
//! - [`endpoint`]: quinn endpoints, [`Connection::request`], options, peer identity.
//! - [`peer`]: a pinned server with a reused, reconnecting connection ([`Peer`]).
//! - [`server`]: the accept loop [`serve`] with bounded concurrency.
//! - `address`: what one source address may hold of a server (connections, requests,
//!   memory).
//! - [`frame`]: length-prefixed frames with limits and timeouts.
//! - [`retry`]: retry with exponential backoff and jitter.
//! - [`error`]: the error type, [`TransportError`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), cairn_transport::TransportError> {
//! use cairn_transport::*;
//! # let mut rng = rand_chacha::ChaCha20Rng::from_seed([0; 32]);
//! # use rand_core::SeedableRng;
//! let node = Identity::generate(&mut rng, &["localhost"])?;
//! let server = ServerEndpoint::bind(
//!     "127.0.0.1:7100".parse().unwrap(),
//!     &node,
//!     &ClientAuth::Anonymous,
//!     TransportOptions::default(),
//! )?;
//! let serving = server.clone();
//! tokio::spawn(async move { serving.serve(|_peer, request| async move { request }).await });
//!
//! let client = ClientEndpoint::bind("127.0.0.1:0".parse().unwrap(), None, TransportOptions::default())?;
//! let conn = client.connect(server.local_addr()?, node.fingerprint()).await?;
//! assert_eq!(conn.request(b"ping").await?, b"ping");
//! # Ok(()) }
//! ```

mod address;
pub mod cert;
pub mod endpoint;
pub mod error;
pub mod frame;
pub mod peer;
pub mod retry;
pub mod server;
pub mod tls;
mod udp;

pub use cert::{Fingerprint, Identity, PrivateKey, fingerprint};
pub use endpoint::{
    ClientEndpoint, Connection, PINNED_FULL_CONNECTIONS, PINNED_RESERVED_MEMORY_KIB,
    PINNED_RESERVED_REQUESTS, PeerIdentity, ServerEndpoint, TransportOptions,
};
pub use error::{TimeoutKind, TransportError};
pub use frame::{read_frame, write_frame};
/// How many times a request's frame length a server counts against its
/// `request_memory` ([`TransportOptions`]): the frame read off the wire, the message
/// decoded from it, and the record stored from that.
pub const REQUEST_COPIES: u32 = 3;
pub use peer::{ConnectionUsed, Peer};
pub use retry::{Retriable, RetryPolicy, retry_with_backoff};
pub use server::{CONNECTION_LIMIT, STREAM_BAD_REQUEST, serve};
pub use tls::{ALPN, ClientAuth, PinSet};
