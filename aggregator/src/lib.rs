//! `cairn-aggregator`: the Cairn aggregator node and the `cairn` command-line tool.
//!
//! - [`cli`]: the `cairn` command line (clap definitions and one function per command).
//! - [`node_config`]: the node's configuration file.
//! - [`store`]: the embedded SQLite store behind the protocol's `TaskStore`.

pub mod cli;
pub mod node_config;
pub mod store;
