//! The `cairn` command line, as clap definitions plus one function per subcommand, so that
//! `main.rs` stays a thin shell and every command is testable as a library call.
//!
//! - [`demo`]: `cairn demo`, a whole deployment in one process.
//! - [`init`]: `cairn init DIR`, a ready local deployment.
//! - [`node`]: `cairn node --config FILE`, one aggregator.
//! - [`submit`]: `cairn submit`, one client's update.
//! - [`client`]: `cairn client add|revoke`, the clients of a deployment.
//! - [`collect`]: `cairn collect`, release a round.
//! - [`dp`]: `cairn dp epsilon|sigma`, the privacy-budget calculator.
//! - [`budget`]: `cairn budget report`, where a task's budget went (from a node's ledger).
//! - [`db`]: `cairn db migrate`, the PostgreSQL schema of a node's database.
//! - [`hpke`]: `cairn hpke new|list`, an aggregator's HPKE keys and their rotation.

pub mod budget;
pub mod client;
pub mod collect;
pub mod db;
pub mod demo;
pub mod dp;
pub mod hpke;
pub mod init;
pub mod node;
pub mod submit;

use std::path::Path;

use anyhow::Context;
use cairn_protocol::config::TaskConfig;
use clap::{Parser, Subcommand, ValueEnum};

/// Cairn: private aggregation with MPC and differential privacy.
///
/// Clients secret-share clipped, quantised updates among non-colluding aggregators and
/// prove them norm-bounded; the aggregators release only the noisy sum, within a
/// privacy budget each of them enforces. Start with `cairn demo`.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole deployment in one process on loopback: N clients, R rounds, noisy sums.
    Demo(demo::DemoArgs),
    /// Write a ready local deployment: keys, certificates, task and node configurations.
    Init(init::InitArgs),
    /// Run one aggregator node until SIGINT or SIGTERM.
    Node(node::NodeArgs),
    /// Submit one client's update (a JSON array of numbers) for a round.
    Submit(submit::SubmitArgs),
    /// Add or revoke clients of a deployment (each has its own credential).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Close and release a round; write the decoded sum and the budget spent as JSON.
    Collect(collect::CollectArgs),
    /// Differential-privacy calculator: plan σ, ρ and ε before running anything.
    #[command(subcommand)]
    Dp(dp::DpCommand),
    /// Privacy-budget reports from a node's durable, hash-chained ledger.
    #[command(subcommand)]
    Budget(budget::BudgetCommand),
    /// The node's database: apply PostgreSQL schema migrations.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// An aggregator's HPKE keys: make a new one, list a node's, rotate without a new task.
    #[command(subcommand)]
    Hpke(hpke::HpkeCommand),
}

/// Runs a parsed command line and returns what to print on standard output.
///
/// # Errors
/// Any failure of the subcommand, with context for the user.
pub fn run(cli: Cli) -> anyhow::Result<String> {
    init_logging(cli.log_format);
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Init(args) => init::run(args),
        Command::Node(args) => node::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Client(cmd) => client::run(cmd),
        Command::Collect(args) => collect::run(args),
        Command::Dp(cmd) => dp::run(cmd),
        Command::Budget(cmd) => budget::run(cmd),
        Command::Db(cmd) => db::run(cmd),
        Command::Hpke(cmd) => hpke::run(cmd),
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info` for Cairn, `warn`
/// for dependencies). Secrets never reach a log call: their types print redacted.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,cairn_aggregator=info,cairn_client=info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling `run` twice) is harmless: keep the first.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Reads and validates a task file.
pub fn load_task(path: &Path) -> anyhow::Result<TaskConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    TaskConfig::from_toml(&text).with_context(|| format!("loading {}", path.display()))
}
