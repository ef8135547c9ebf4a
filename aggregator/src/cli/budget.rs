//! `cairn budget report`: where a task's privacy budget went, from a node's ledger.
//!
//! `cairn budget report --task T [--node CONFIG] [--format table|json|html] [--output F]`
//! reads the durable ledger of the node configured by CONFIG (default `node-0.toml`
//! beside the task file: the leader) read-only, verifies its hash chain and prints one
//! row per release (see [`crate::budget_report`]). A broken chain is an error naming the
//! first entry that does not verify.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::load_task;
use super::submit::sibling;
use crate::budget_report::BudgetReport;
use crate::node_config::NodeConfig;

/// `cairn budget` subcommands.
#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Per-release privacy spending (ρ, ε at δ, remaining) from a node's verified ledger.
    Report(ReportArgs),
}

/// Report format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A human-readable table.
    #[default]
    Table,
    /// One JSON object: header fields and a `releases` array.
    Json,
    /// One self-contained HTML page with an SVG plot of ε over rounds.
    Html,
}

/// Arguments of `cairn budget report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The task file.
    #[arg(long)]
    pub task: PathBuf,
    /// The node configuration whose ledger to read [default: node-0.toml next to the
    /// task file].
    #[arg(long)]
    pub node: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Runs a `cairn budget` subcommand.
///
/// # Errors
/// Unreadable files, a node of another task, a missing database, a ledger whose hash
/// chain does not verify.
pub fn run(cmd: BudgetCommand) -> anyhow::Result<String> {
    match cmd {
        BudgetCommand::Report(args) => report(args),
    }
}

fn report(args: ReportArgs) -> anyhow::Result<String> {
    let task = load_task(&args.task)?;
    let node_path = args
        .node
        .unwrap_or_else(|| sibling(&args.task, "node-0.toml"));
    let node = NodeConfig::load(&node_path)
        .with_context(|| format!("loading the node configuration {}", node_path.display()))?;
    if task
        .aggregator_fingerprint(usize::from(node.index))
        .is_none()
    {
        bail!(
            "{} is aggregator {}, which task {} does not have",
            node_path.display(),
            node.index,
            args.task.display()
        );
    }
    let report = BudgetReport::from_node(&task, &node)?;
    let text = match args.format {
        ReportFormat::Table => report.to_table(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Html => report.to_html(),
    };
    match args.output {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            Ok(format!(
                "{} releases, ε spent {:.4}: report written to {}",
                report.releases.len(),
                report.epsilon_spent(),
                path.display()
            ))
        }
        None => Ok(text),
    }
}
