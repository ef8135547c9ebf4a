//! `cairn db migrate --config node.toml`: apply the PostgreSQL schema migrations of a
//! node's database (idempotent; replicas may run it together: they serialise on a
//! lock). A SQLite node needs none: its file is created, checked and, after an
//! upgrade, migrated when the node starts.
//!
//! `cairn db gc --config node.toml --keep-rounds N`: retention. Deletes the reports,
//! uploads, jobs and preparation records of released rounds older than the newest N
//! released ones, on either store, beside the running node (from cron, say). The
//! ledger is never collected, nor anything that refusing a replay or answering a
//! repeated collect needs ([`TaskStore::collect_garbage`]); on a leader, nothing of a
//! round it released but has not seen collected ([`garbage_cutoff`]). It opens a
//! SQLite file only
//! if it has this version's schema: migrating it under a running node of the previous
//! version would break that node's statements.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use cairn_protocol::config::{Role, TaskConfig};
use cairn_protocol::store::TaskStore;
use cairn_protocol::store::retention::garbage_cutoff;

use crate::node_config::NodeConfig;
use crate::store::postgres::{PgStore, schema};
use crate::store::{NodeStore, pg_connect};

/// `cairn db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the schema migrations this cairn knows to the node's PostgreSQL database.
    Migrate(MigrateArgs),
    /// Delete the aggregation data (reports, uploads, jobs) of old released rounds.
    ///
    /// Keeps the newest `--keep-rounds` released rounds whole. Of older released rounds
    /// it keeps the round, its release, the collector's answer, the budget ledger and
    /// the digests of every report id (so replays are still refused). Rounds not yet
    /// released are never touched, and on a leader neither is a round it released
    /// whose collect has not finished (its helpers still need the report set; the
    /// output names such rounds). Safe beside running nodes and replicas.
    Gc(GcArgs),
}

/// Arguments of `cairn db gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The node's configuration file (SQLite or PostgreSQL).
    #[arg(long)]
    pub config: PathBuf,
    /// How many of the newest released rounds to keep whole.
    #[arg(long, default_value_t = 10)]
    pub keep_rounds: u32,
}

/// Arguments of `cairn db migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The node's configuration file (with `store = "postgres"`).
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs a `cairn db` subcommand.
pub fn run(cmd: DbCommand) -> anyhow::Result<String> {
    match cmd {
        DbCommand::Migrate(args) => migrate(&args.config),
        DbCommand::Gc(args) => gc(&args.config, args.keep_rounds),
    }
}

/// Collects the garbage of the node `config` names, keeping the newest `keep` released
/// rounds; returns what it did.
pub fn gc(config: &std::path::Path, keep: u32) -> anyhow::Result<String> {
    let node = NodeConfig::load(config)
        .with_context(|| format!("loading the node configuration {}", config.display()))?;
    let task_text = std::fs::read_to_string(&node.task)
        .with_context(|| format!("reading the task {}", node.task.display()))?;
    let task = TaskConfig::from_toml(&task_text)
        .with_context(|| format!("the task {} does not load", node.task.display()))?;
    let store = NodeStore::open_current(&node, &task)?;
    let role = match node.role {
        crate::node_config::NodeRole::Leader => Role::Leader,
        crate::node_config::NodeRole::Helper => Role::Helper,
    };
    let cutoff = garbage_cutoff(&store, role, keep).context("reading the ledger")?;
    // Rounds the leader released but nobody collected yet keep their report sets: the
    // helpers' request for such a round carries the digest of its report ids.
    let held = match cutoff.uncollected.as_slice() {
        [] => String::new(),
        rounds => format!(
            "; kept whole, released but not collected yet (collect them, then run gc \
             again): rounds {}",
            rounds
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let Some(through) = cutoff.through else {
        return Ok(format!(
            "fewer than {} released rounds: nothing to collect",
            u64::from(keep) + 1
        ));
    };
    let deleted = store
        .collect_garbage(through, cutoff.scope)
        .context("collecting garbage")?;
    Ok(format!(
        "deleted {deleted} records of released rounds up to {through} (kept: the rounds, \
         the ledger, the releases, the collect answers and the report-id digests){held}"
    ))
}

/// Applies the migrations of the database `config` names; returns what it did.
pub fn migrate(config: &std::path::Path) -> anyhow::Result<String> {
    let node = NodeConfig::load(config)
        .with_context(|| format!("loading the node configuration {}", config.display()))?;
    let Some(connect) = pg_connect(&node)? else {
        return Ok(format!(
            "{} uses the embedded SQLite store: nothing to migrate",
            config.display()
        ));
    };
    let (_, applied) = PgStore::migrate(&connect).context("migrating the PostgreSQL store")?;
    Ok(if applied.is_empty() {
        format!(
            "the database is at schema version {}: nothing to do",
            schema::VERSION
        )
    } else {
        format!(
            "applied migrations {applied:?}: the database is at schema version {}",
            schema::VERSION
        )
    })
}
