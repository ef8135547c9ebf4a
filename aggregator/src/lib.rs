//! `cairn-aggregator`: the Cairn aggregator node and the `cairn` command-line tool.
//!
//! - [`cli`]: the `cairn` command line (clap definitions and one function per command).

pub mod cli;
