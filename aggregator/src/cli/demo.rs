//! `cairn demo`: a whole deployment in one process, on loopback, with a temporary store.
//!
//! It writes a deployment (as `cairn init` does) into a temporary folder, starts the
//! leader and the helper on free loopback ports, lets N clients submit random updates
//! concurrently through the SDK for R rounds, and after each round has the collector
//! release the noisy sum. For every round it prints the report count, the largest
//! error of the released mean against the plaintext mean (the cost of DP noise and
//! rounding), and the ε spent so far. On a terminal, progress bars show the rounds and
//! the clients submitting (`indicatif`); when standard output is not a terminal they are
//! hidden and only the per-round lines are printed.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_client::sdk::{Client, Collector};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use clap::Args;
use futures::FutureExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand_core::Rng;

use super::init::Noise;
use crate::deploy::{self, InitParams, free_base_port};
use crate::node::{NodeSetup, start};

/// Arguments of `cairn demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Clients submitting in every round.
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    /// Rounds to run.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Dimension of every update.
    #[arg(long, default_value_t = 1000)]
    pub dim: u32,
    /// Total ε budget of the demo task (spread over the rounds).
    #[arg(long, default_value_t = 8.0)]
    pub epsilon: f64,
    /// Where noise is added.
    #[arg(long, value_enum, default_value_t = Noise::Aggregator)]
    pub noise: Noise,
}

/// Runs `cairn demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        aggregators: 2,
        dimension: args.dim,
        clip: 1.0,
        epsilon: args.epsilon,
        rounds: u64::from(args.rounds.max(1)),
        noise: NoisePlacement::from(args.noise),
        min_clients: args.clients.max(1),
        clients: args.clients.max(1),
        base_port: free_base_port(host, 2)?,
        name: "cairn-demo".into(),
        ..InitParams::default()
    };
    let mut rng = cairn_client::os_rng()?;
    let d = deploy::init(&dir.path().join("deployment"), &params, &mut rng)?;
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task)?)?;
    println!(
        "Cairn demo: {} clients × {} rounds, d = {}, 2 aggregators on loopback, noise: {:?}",
        args.clients, args.rounds, args.dim, params.noise
    );
    if let Some(sigma) = task.privacy().sigma {
        println!(
            "  task: clip C = {}, b = {} bits, f = {} fractional bits, norm bound B = {}, σ = {sigma:.1} (quantised units), budget ε = {} at δ = {}",
            task.clip_norm(),
            task.bits(),
            task.frac_bits(),
            task.norm_bound(),
            params.epsilon,
            params.delta
        );
    }
    let mut nodes = Vec::new();
    for node in &d.nodes {
        nodes.push(start(NodeSetup::load(node)?).await?);
    }
    let mut clients = Vec::new();
    for path in &d.credentials {
        let credential = cairn_client::sdk::read_credential(path)
            .with_context(|| format!("reading {}", path.display()))?;
        clients.push(
            Client::builder(task.clone())
                .credential(credential)
                .build()
                .await?,
        );
    }
    let (collector_key, collector_identity) = deploy::read_collector_keys(&d.collector_dir)?;
    let collector = Collector::builder(task.clone())
        .hpke_key(collector_key)
        .identity(collector_identity)
        .build()
        .await?;

    let dim = args.dim as usize;
    let bars = Bars::new(args.rounds, args.clients);
    for round in 0..args.rounds {
        let round_start = Instant::now();
        let submitting = bars.round(round);
        // Each client's update: random, then clipped to the task's norm as the client
        // will do, so the plaintext sum is exactly what the aggregators should see.
        let mut updates = Vec::new();
        for _ in 0..args.clients {
            let mut u: Vec<f64> = (0..dim)
                .map(|_| f64::from(rng.next_u32()) / f64::from(u32::MAX) * 2.0 - 1.0)
                .collect();
            cairn_dp::clip::clip_l2(&mut u, task.clip_norm())?;
            updates.push(u.iter().map(|v| *v as f32).collect::<Vec<f32>>());
        }
        let mut plaintext_sum = vec![0f64; dim];
        for u in &updates {
            for (m, v) in plaintext_sum.iter_mut().zip(u) {
                *m += f64::from(*v);
            }
        }
        let submissions = clients.iter().zip(&updates).map(|(c, u)| {
            c.submit(round, u).map(|outcome| {
                submitting.inc(1);
                outcome
            })
        });
        for outcome in futures::future::join_all(submissions).await {
            outcome?;
        }
        submitting.set_message("collecting");
        let released = collector.collect(round).await?;
        submitting.finish_and_clear();
        bars.rounds.inc(1);
        let n = f64::from(released.count.max(1));
        let max_error = released
            .sum
            .iter()
            .zip(&plaintext_sum)
            .map(|(s, p)| ((s - p) / n).abs())
            .fold(0.0, f64::max);
        let receipt = released.receipt();
        bars.multi.suspend(|| println!(
            "round {round}: {} reports, max |released mean − plaintext mean| = {max_error:.5}, ε spent {} ({:.2} s)",
            released.count,
            receipt.map_or("0 (no noise)".to_owned(), |r| format!(
                "{:.3} of {}",
                r.epsilon_total, params.epsilon
            )),
            round_start.elapsed().as_secs_f64()
        ));
    }
    bars.rounds.finish_and_clear();
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
    Ok(format!("done in {:.2} s", started.elapsed().as_secs_f64()))
}

/// The demo's progress bars: one for the rounds, one per round for the clients
/// submitting; drawn only when standard output is a terminal.
struct Bars {
    multi: MultiProgress,
    rounds: ProgressBar,
    clients: u32,
}

impl Bars {
    fn new(rounds: u32, clients: u32) -> Self {
        let target = if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let bar = multi.add(ProgressBar::new(u64::from(rounds)));
        bar.set_style(style("rounds   [{bar:30}] {pos}/{len} {elapsed}"));
        Self {
            multi,
            rounds: bar,
            clients,
        }
    }

    /// The bar of one round's submissions.
    fn round(&self, round: u32) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(u64::from(self.clients)));
        bar.set_style(style(
            "round {prefix:>2} [{bar:30}] {pos}/{len} clients {msg}",
        ));
        bar.set_prefix(round.to_string());
        bar.set_message("submitting");
        bar
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this file; fall back to the default style if one
    // were ever malformed rather than fail the demo.
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}
