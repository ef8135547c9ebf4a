//! `cairn collect`: release a round and write the decoded sum.

use std::path::PathBuf;

use anyhow::Context;
use cairn_client::sdk::Collector;
use clap::Args;
use serde::Serialize;

use super::load_task;
use super::submit::sibling;
use crate::deploy::read_collector_keys;

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
    /// Each aggregator's own budget receipt (leader first): every aggregator enforces
    /// its own ledger, so they should agree; `cairn collect` warns when they do not.
    pub receipts: Vec<ReceiptOutput>,
    /// Whether the aggregators' ledgers disagree on the ρ spent.
    pub ledgers_disagree: bool,
}

/// One aggregator's budget receipt, as `cairn collect` prints it.
#[derive(Debug, Serialize)]
pub struct ReceiptOutput {
    /// The aggregator (0 = leader).
    pub aggregator: usize,
    /// ρ this release cost by its ledger.
    pub rho_spent: f64,
    /// ρ spent by the task so far by its ledger.
    pub rho_total: f64,
    /// ε spent so far by its ledger (tight conversion at the task's δ).
    pub epsilon_total: f64,
    /// ε left by its ledger (`null` without noise: no budget).
    pub epsilon_remaining: Option<f64>,
}

/// Runs `cairn collect`.
pub fn run(args: CollectArgs) -> anyhow::Result<String> {
    let task = load_task(&args.task)?;
    let dir = args
        .collector_dir
        .unwrap_or_else(|| sibling(&args.task, "collector"));
    let (key, identity) = read_collector_keys(&dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let spinner = spinner(format!("releasing round {}", args.round));
    let collection = runtime.block_on(async {
        let collector = Collector::builder(task)
            .hpke_key(key)
            .identity(identity)
            .build()
            .await?;
        collector.collect(args.round).await
    });
    spinner.finish_and_clear();
    let collection = collection?;
    let receipt = collection.receipt();
    let disagree = collection.ledgers_disagree();
    let receipts: Vec<ReceiptOutput> = collection
        .receipts
        .iter()
        .enumerate()
        .map(|(aggregator, r)| ReceiptOutput {
            aggregator,
            rho_spent: r.rho_spent,
            rho_total: r.rho_total,
            epsilon_total: r.epsilon_total,
            epsilon_remaining: r
                .epsilon_remaining
                .is_finite()
                .then_some(r.epsilon_remaining),
        })
        .collect();
    if disagree {
        eprintln!("{}", disagreement_warning(collection.round, &receipts));
    }
    let out = CollectOutput {
        round: collection.round,
        count: collection.count,
        sum: collection.sum,
        rho_spent: receipt.map_or(0.0, |r| r.rho_spent),
        epsilon_spent: receipt.map_or(0.0, |r| r.epsilon_total),
        epsilon_remaining: receipt.map_or(f64::INFINITY, |r| r.epsilon_remaining),
        receipts,
        ledgers_disagree: disagree,
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

/// A spinner on standard error while the round is released (it can take seconds: the
/// leader first finishes the round's aggregation jobs); hidden unless standard error is
/// a terminal, so scripts and pipes see only the JSON.
fn spinner(message: String) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let target = if std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    };
    let bar = indicatif::ProgressBar::with_draw_target(None, target);
    bar.set_style(indicatif::ProgressStyle::default_spinner());
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// The warning printed when the aggregators' ledgers disagree: one line per aggregator.
pub fn disagreement_warning(round: u32, receipts: &[ReceiptOutput]) -> String {
    let mut w = format!(
        "warning: round {round}: the aggregators' privacy ledgers disagree on the ρ spent \
         (each enforces its own ledger; the most conservative figure is reported; compare \
         them with `cairn budget report --node …`):"
    );
    for r in receipts {
        w.push_str(&format!(
            "\n  aggregator {}: ρ total {:.6}, ε spent {:.4}",
            r.aggregator, r.rho_total, r.epsilon_total
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_names_every_aggregator() {
        let receipt = |aggregator, rho_total| ReceiptOutput {
            aggregator,
            rho_spent: 0.1,
            rho_total,
            epsilon_total: rho_total * 10.0,
            epsilon_remaining: Some(1.0),
        };
        let w = disagreement_warning(3, &[receipt(0, 0.2), receipt(1, 0.3)]);
        assert!(w.contains("round 3"), "{w}");
        assert!(w.contains("aggregator 0: ρ total 0.200000"), "{w}");
        assert!(w.contains("aggregator 1: ρ total 0.300000"), "{w}");
    }
}
