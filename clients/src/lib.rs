//! `cairn-client`: the Cairn client SDK and the network transport it shares with the
//! aggregator node.
//!
//! - [`os_rng`]: a CSPRNG seeded from the operating system.
//! - [`sdk`]: [`sdk::Client`] (submit updates) and [`sdk::Collector`] (release sums).
//! - [`transport`]: QUIC (quinn) with TLS 1.3 (rustls, ring), pinned self-signed
//!   certificates, length-prefixed request/response frames with size limits, bounded
//!   concurrency, and retry with backoff.

pub mod os_rng;
pub mod sdk;
pub mod transport;

pub use os_rng::os_rng;
