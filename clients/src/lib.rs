//! `cairn-client`: the Cairn client SDK and the network transport it shares with the
//! aggregator node.
//!
//! - [`transport`]: QUIC (quinn) with TLS 1.3 (rustls, ring), pinned self-signed
//!   certificates, length-prefixed request/response frames with size limits, bounded
//!   concurrency, and retry with backoff.

pub mod transport;
