//! `cairn node --config FILE`: run one aggregator until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::node::{NodeSetup, run_until};

/// Arguments of `cairn node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's configuration file (written by `cairn init` as node-I.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Apply the PostgreSQL schema migrations first (as `cairn db migrate`); without
    /// it, a node refuses a database whose schema it does not know.
    #[arg(long)]
    pub migrate: bool,
}

/// Runs `cairn node` (blocks until a shutdown signal; in-flight requests finish).
pub fn run(args: NodeArgs) -> anyhow::Result<String> {
    if args.migrate {
        eprintln!("{}", super::db::migrate(&args.config)?);
    }
    let setup = NodeSetup::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run_until(setup, shutdown_signal()))?;
    Ok(String::new())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
