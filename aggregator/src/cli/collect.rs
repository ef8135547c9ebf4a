//! `cairn collect`: release a round and write the decoded sum.

use std::path::PathBuf;

use anyhow::Context;
use cairn_client::sdk::Collector;
use cairn_client::transport::Identity;
use cairn_protocol::hpke::HpkeSecretKey;
use clap::Args;
use serde::Serialize;

use super::load_task;
use super::submit::sibling;
use crate::node::read_secret_hex;

/// Arguments of `cairn collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The task file.
    #[arg(long)]
    pub task: PathBuf,
    /// The round to close and release.
    #[arg(long)]
    pub round: u32,
    /// Write the JSON result here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The collector's key folder (cert.pem, key.pem, hpke.key)
    /// [default: collector/ next to the task file].
    #[arg(long)]
    pub collector_dir: Option<PathBuf>,
}

/// The JSON `cairn collect` writes.
#[derive(Debug, Serialize)]
pub struct CollectOutput {
    /// The round.
    pub round: u32,
    /// Reports in the sum.
    pub count: u32,
    /// The (noisy) sum of the clipped updates.
    pub sum: Vec<f64>,
    /// ρ this release cost.
    pub rho_spent: f64,
    /// ε spent by the task so far (tight conversion at the task's δ).
    pub epsilon_spent: f64,
    /// ε left in the budget.
    pub epsilon_remaining: f64,
}

/// Runs `cairn collect`.
pub fn run(args: CollectArgs) -> anyhow::Result<String> {
    let task = load_task(&args.task)?;
    let dir = args
        .collector_dir
        .unwrap_or_else(|| sibling(&args.task, "collector"));
    let key = HpkeSecretKey::from_bytes(
        read_secret_hex(&dir.join("hpke.key"))
            .with_context(|| format!("reading {}/hpke.key", dir.display()))?,
    );
    let identity = Identity::read_pem_files(&dir.join("cert.pem"), &dir.join("key.pem"))
        .with_context(|| format!("reading the collector's certificate in {}", dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let collection = runtime.block_on(async {
        let collector = Collector::builder(task)
            .hpke_key(key)
            .identity(identity)
            .build()
            .await?;
        collector.collect(args.round).await
    })?;
    let receipt = collection.receipt();
    let out = CollectOutput {
        round: collection.round,
        count: collection.count,
        sum: collection.sum,
        rho_spent: receipt.map_or(0.0, |r| r.rho_spent),
        epsilon_spent: receipt.map_or(0.0, |r| r.epsilon_total),
        epsilon_remaining: receipt.map_or(f64::INFINITY, |r| r.epsilon_remaining),
    };
    let json = serde_json::to_string_pretty(&out)?;
    match args.output {
        Some(path) => {
            std::fs::write(&path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(format!(
                "round {}: {} reports released to {}",
                out.round,
                out.count,
                path.display()
            ))
        }
        None => Ok(json),
    }
}
