//! `cairn-aggregator`: the Cairn aggregator node and the `cairn` command-line tool.
//!
//! - [`cli`]: the `cairn` command line (clap definitions and one function per command).
//! - [`deploy`]: writing a ready local deployment (`cairn init`).
//! - [`node`]: the node: state machines behind QUIC endpoints, the job driver.
//! - [`node_config`]: the node's configuration file.
//! - [`store`]: the embedded SQLite store behind the protocol's `TaskStore`.

pub mod cli;
pub mod deploy;
pub mod node;
pub mod node_config;
pub mod store;
