//! `cairn-protocol`: everything about the Cairn protocol that is not I/O.
//!
//! No sockets, no async runtime, no clock reads: time comes through [`clock::Clock`]
//! and randomness through `R: rand_core::CryptoRng`. The node and the SDK move the
//! messages defined here.
//!
//! - [`clock`]: the injected notion of time.
//! - [`config`]: the task configuration (`task.toml`), validated, and the task id.
//! - [`hpke`]: sealing helper shares and aggregate shares (RFC 9180).
//! - [`ids`]: report and job ids, client tokens.
//! - [`ledger`]: the hash-chained privacy-budget ledger each aggregator enforces.
//! - [`messages`]: the wire messages and their size limits.

pub mod clock;
pub mod config;
pub mod hpke;
pub mod ids;
pub mod ledger;
pub mod messages;
