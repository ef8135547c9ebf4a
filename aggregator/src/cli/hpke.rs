//! `cairn hpke new|list`: an aggregator's HPKE keys, and their rotation.
//!
//! A rotation keeps the task (the aggregators' HPKE keys are not part of the task id),
//! so client credentials and the privacy ledger carry over. On a helper:
//!
//! 1. `cairn hpke new --out helper/hpke-2.key` writes a new secret key and prints its
//!    public key. List it under `hpke_pending_keys` in every replica's node file and
//!    restart them: each now opens shares sealed to either key.
//! 2. Put the new public key in the task file's `hpke_public_key` for this aggregator,
//!    make it the node file's `hpke_key`, move the old key to `hpke_expired_keys`,
//!    restart the replicas, and hand the new task file to clients. Clients still on the
//!    old file keep succeeding.
//! 3. Once `cairn_hpke_expired_key_opens_total` stops growing, remove the old key from
//!    `hpke_expired_keys` (and delete the file). Shares sealed to it no longer open.
//!
//! `cairn hpke list --config node.toml` shows each key's public half and state, and
//! checks the node file against its task file the way `cairn node` does at start.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use cairn_protocol::hpke::generate_keypair;

use crate::node::NodeSetup;

/// `cairn hpke` subcommands.
#[derive(Debug, Subcommand)]
pub enum HpkeCommand {
    /// Write a new HPKE secret key (mode 0600, never overwriting) and print its public key.
    ///
    /// The public key (64 hex digits) goes into the task file's `hpke_public_key` once
    /// every replica lists the secret key under `hpke_pending_keys`.
    New(NewArgs),
    /// Print a node's HPKE keys (public halves only) with their states.
    ///
    /// Fails, as `cairn node` would, when the task file does not name the node's
    /// active key (`hpke_key`).
    List(ListArgs),
}

/// Arguments of `cairn hpke new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Where to write the secret key (the file must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `cairn hpke list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The node's configuration file.
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs a `cairn hpke` subcommand.
pub fn run(cmd: HpkeCommand) -> anyhow::Result<String> {
    match cmd {
        HpkeCommand::New(args) => new_key(&args.out),
        HpkeCommand::List(args) => list(&args.config),
    }
}

/// Writes a fresh secret key to `out` and returns its public key in hex.
pub fn new_key(out: &std::path::Path) -> anyhow::Result<String> {
    let (secret, public) = generate_keypair(&mut cairn_client::os_rng()?);
    crate::deploy::write_secret(out, &secret.dangerous_to_hex())
        .with_context(|| format!("writing the new HPKE key {}", out.display()))?;
    Ok(format!("{}\n", public.to_hex()))
}

/// One line per key of the node `config` names: `state public-key-hex`, active first.
pub fn list(config: &std::path::Path) -> anyhow::Result<String> {
    let setup = NodeSetup::load(config)?;
    let mut out = String::new();
    for (public, state) in setup.keyring.keys() {
        out.push_str(&format!("{:<8} {}\n", state.as_str(), public.to_hex()));
    }
    Ok(out)
}
