//! `cairn client add|revoke`: manage the clients of a running local deployment.
//!
//! Every client has its own credential (a random id and a secret) and is registered at
//! every aggregator with the MAC key that aggregator checks; each aggregator accepts at
//! most one report per client per round. These commands act on a deployment folder
//! written by `cairn init` (all aggregators' databases on this machine) and are safe
//! while the nodes run.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::deploy;

/// `cairn client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Write new client credentials and register them at every aggregator.
    ///
    /// Example: `cairn client add deploy --count 3` writes deploy/clients/client-10.toml
    /// … client-12.toml (after the existing ones).
    Add(AddArgs),
    /// Revoke a client at every aggregator: its reports are refused from now on, also
    /// one already acknowledged by the leader but not yet verified (the helpers refuse
    /// it when its job arrives).
    ///
    /// Example: `cairn client revoke deploy deploy/clients/client-3.toml`.
    Revoke(RevokeArgs),
}

/// Arguments of `cairn client add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The deployment folder (written by `cairn init`).
    pub dir: PathBuf,
    /// How many clients to add.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
}

/// Arguments of `cairn client revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The deployment folder (written by `cairn init`).
    pub dir: PathBuf,
    /// The client: its credential file, or its client id (32 hex digits).
    pub client: String,
}

/// Runs `cairn client …`.
pub fn run(cmd: ClientCommand) -> anyhow::Result<String> {
    match cmd {
        ClientCommand::Add(args) => {
            let mut rng = cairn_client::os_rng()?;
            let written = deploy::add_clients(&args.dir, args.count, &mut rng)
                .with_context(|| format!("adding clients to {}", args.dir.display()))?;
            let mut out = format!(
                "Registered {} client(s) at every aggregator:\n",
                written.len()
            );
            for path in written {
                out.push_str(&format!("  {}\n", path.display()));
            }
            Ok(out)
        }
        ClientCommand::Revoke(args) => {
            let id = deploy::revoke_client(&args.dir, &args.client)
                .with_context(|| format!("revoking {} in {}", args.client, args.dir.display()))?;
            Ok(format!("Revoked client {id} at every aggregator."))
        }
    }
}
