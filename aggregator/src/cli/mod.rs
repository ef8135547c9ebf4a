//! The `cairn` command line, as clap definitions plus one function per subcommand, so that
//! `main.rs` stays a thin shell and every command is testable as a library call.
//!
//! - [`dp`]: `cairn dp epsilon|sigma`, the privacy-budget calculator.

pub mod dp;

use clap::{Parser, Subcommand};

/// Cairn: private aggregation with MPC and differential privacy.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands (later: node, init, demo, budget).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Differential-privacy calculator: plan σ, ρ and ε before running anything.
    #[command(subcommand)]
    Dp(dp::DpCommand),
}

/// Runs a parsed command line and returns what to print on standard output.
///
/// # Errors
/// Any failure of the subcommand, with context for the user.
pub fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        Command::Dp(cmd) => dp::run(cmd),
    }
}
