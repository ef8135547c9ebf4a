//! `cairn-protocol`: everything about the Cairn protocol that is not I/O.
//!
//! No sockets, no async runtime, no clock reads: time comes through [`clock::Clock`],
//! randomness through `R: rand_core::CryptoRng`, and durable state through
//! [`store::TaskStore`]. The node (`cairn-aggregator`) and the SDK (`cairn-client`)
//! move the messages defined here.
//!
//! Configuration and identities:
//! - [`config`]: the task configuration (`task.toml`), parsed and validated field by field.
//! - [`task`]: a loaded task: its configuration, scheme and privacy model, built once.
//! - [`ids`]: task, report and job ids.
//! - [`auth`]: per-client credentials and the report tags every aggregator checks.
//! - [`hpke`]: sealing helper shares and aggregate shares (RFC 9180).
//! - [`aad`]: what each seal is bound to (its HPKE associated data).
//! - [`keyring`]: an aggregator's HPKE keys and their rotation (pending, active, expired).
//! - [`clock`]: the injected notion of time.
//!
//! The wire and the cryptographic scheme:
//! - [`messages`]: the wire messages and their size limits.
//! - [`scheme`]: the task's validity scheme (carry-lift proofs) behind one interface.
//! - [`privacy`]: noise placement, ρ per release and the budget, from the task.
//! - [`ledger`]: the hash-chained privacy-budget ledger each aggregator enforces.
//! - [`store`]: what an aggregator keeps durably, and an in-memory store.
//!
//! The parties (sans-IO state machines):
//! - [`client`]: clip → quantise → noise → share → prove → seal.
//! - [`leader`]: accept uploads, run aggregation jobs, drive releases.
//! - [`helper`]: verify and aggregate its shares, release on its own terms.
//! - [`aggregator`]: what leader and helpers share (the release step).
//! - [`parallel`]: a job's reports verified and aggregated on a pool of threads.
//! - [`error`]: the refusal ([`error::Reject`]) every party answers with.
//! - [`collector`]: open the shares and decode the sum.
//! - [`driver`]: the leader's exchanges with its helpers (a job, a release), step by
//!   step, for a caller that only moves bytes.

pub mod aad;
pub mod aggregator;
pub mod auth;
pub mod client;
pub mod clock;
pub mod collector;
pub mod config;
pub mod driver;
pub mod error;
pub mod helper;
pub mod hpke;
pub mod ids;
pub mod keyring;
pub mod leader;
pub mod ledger;
pub mod messages;
pub mod parallel;
pub mod privacy;
pub mod scheme;
pub mod store;
pub mod task;
