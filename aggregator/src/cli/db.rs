//! `cairn db migrate --config node.toml`: apply the PostgreSQL schema migrations of a
//! node's database (idempotent; replicas may run it together: they serialise on a
//! lock). A SQLite node needs none: its file is created and checked at start.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::node_config::NodeConfig;
use crate::store::pg_connect;
use crate::store::postgres::{PgStore, schema};

/// `cairn db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the schema migrations this cairn knows to the node's PostgreSQL database.
    Migrate(MigrateArgs),
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
    }
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
