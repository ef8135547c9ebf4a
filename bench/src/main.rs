//! `cairn-bench`: every DESIGN §8 figure beside its anchors, measured in one run on the
//! same machine (so the ratios hold even when the machine is noisy).
//!
//! ```text
//! cargo run --release -p cairn-bench -- [--quick | --smoke] [--out bench/results.json]
//! ```
//!
//! Prints one summary table (Cairn figure, DESIGN §8 target, anchor, ratio) and a
//! per-dimension table, writes every figure and the machine to a JSON file, and
//! log-log SVG plots next to it. `--quick` runs d ∈ {10^3, 10^4} and a 10-client
//! round at d = 10^3; `--smoke` (for the test in debug builds) runs d = 10^3 only.
//! `--threads N` sets the aggregators' threads for the in-memory figures (default 1,
//! the one-core figures of DESIGN §8).
//!
//! Flower's SecAgg+ runs beside Cairn's end-to-end rounds at the same sizes (N ∈ {10,
//! 50, 100} × d ∈ {10^4, 10^5} in a full run, 10 clients at d = 10^3 with `--quick`),
//! from a virtualenv the bench makes itself (`bench/src/flower.rs`); `--flower-only`
//! runs just those rounds and prints their table, `--no-flower` leaves Flower out (and
//! says so in the results).
//!
//! ```text
//! cargo run --release -p cairn-bench -- --scaling --threads 1,2
//! ```
//!
//! measures only how the aggregators' verify + aggregate throughput scales with their
//! threads (at d = 10^5 unless `--scaling-d`), and prints the table. It runs with a
//! node's allocator settings (`cairn_aggregator::allocator`).

mod anchors;
mod cairn;
mod e2e;
mod flower;
mod machine;
mod plots;
mod scaling;
mod table;
mod timing;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

/// mimalloc instead of glibc's malloc: report-sized buffers are reused instead of
/// being returned to the kernel and faulted in again for every report (`Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::anchors::{AnchorFigures, FloorFigures, NoiseFigures};
use crate::cairn::CairnFigures;
use crate::e2e::RoundFigures;
use crate::machine::Machine;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "cairn-bench", about = "Cairn beside its anchors, in one run")]
struct Cli {
    /// Small sizes: d ∈ {10^3, 10^4}, one 10-client round at d = 10^3.
    #[arg(long)]
    quick: bool,
    /// Smallest sizes (d = 10^3 only): for tests in unoptimised builds.
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results.json"))]
    out: PathBuf,
    /// Where to write the SVG plots.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/plots"))]
    plots: PathBuf,
    /// An anchor size whose single shard takes longer than this is skipped (seconds).
    #[arg(long, default_value_t = 60)]
    anchor_cutoff_secs: u64,
    /// Skip the end-to-end rounds.
    #[arg(long)]
    no_e2e: bool,
    /// Run only the end-to-end rounds (of the run's size, or `--e2e-clients`), print
    /// their table and write the memory plot (`memory_vs_clients.svg`); results.json
    /// and the other plots are left as they are.
    #[arg(long, conflicts_with = "no_e2e")]
    e2e_only: bool,
    /// With `--e2e-only`: the rounds' client counts (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "e2e_only")]
    e2e_clients: Vec<usize>,
    /// Threads each aggregator verifies and aggregates a job's reports on, for the
    /// in-memory figures; with `--scaling`, the thread counts to compare
    /// (comma-separated, the first one the base of the speed-up).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    threads: Vec<NonZeroUsize>,
    /// Measure only the aggregators' verify + aggregate throughput for each
    /// `--threads` count (interleaved runs, medians) and print the table; results.json
    /// and the plots are left as they are.
    #[arg(long, conflicts_with_all = ["e2e_only", "no_e2e"])]
    scaling: bool,
    /// With `--scaling`: the dimension.
    #[arg(long, default_value_t = 100_000, requires = "scaling")]
    scaling_d: usize,
    /// With `--scaling`: reports a run (at d = 10^5, 56 is a whole number of jobs on one
    /// thread and on two: 8 of 7 reports, 4 of 14).
    #[arg(long, default_value_t = 56, requires = "scaling")]
    scaling_reports: usize,
    /// With `--scaling`: runs per thread count.
    #[arg(long, default_value_t = 5, requires = "scaling")]
    scaling_runs: usize,
    /// Leave out Flower's SecAgg+ (recorded as skipped in the results).
    #[arg(long)]
    no_flower: bool,
    /// Run only Flower's SecAgg+ and Cairn's end-to-end rounds at the same sizes, and
    /// print their table; results.json and the plots are left as they are.
    #[arg(long, conflicts_with_all = ["no_flower", "e2e_only", "no_e2e", "scaling"])]
    flower_only: bool,
    /// Internal: run one aggregator node from this config until stdin closes.
    #[arg(long, hide = true)]
    serve_node: Option<PathBuf>,
}

/// Sizes of one run.
#[derive(Debug, Clone, Serialize)]
struct Plan {
    mode: &'static str,
    dimensions: Vec<usize>,
    bits: u8,
    aggregators: usize,
    e2e_dimension: usize,
    e2e_clients: Vec<usize>,
    /// (clients, d) of the Flower rounds, each beside a Cairn round of the same size.
    flower_sizes: Vec<(usize, usize)>,
    noise_sigma: u64,
    cairn_noise_samples: usize,
    opendp_noise_samples: usize,
    runs: usize,
}

impl Plan {
    fn new(cli: &Cli) -> Self {
        let (mode, dimensions, e2e_dimension, e2e_clients, cairn_noise, opendp_noise, runs) =
            if cli.smoke {
                ("smoke", vec![1_000], 1_000, vec![10], 10_000, 100, 1)
            } else if cli.quick {
                (
                    "quick",
                    vec![1_000, 10_000],
                    1_000,
                    vec![10],
                    100_000,
                    1_000,
                    3,
                )
            } else {
                (
                    "full",
                    vec![1_000, 10_000, 100_000, 1_000_000],
                    100_000,
                    vec![10, 100, 1_000],
                    1_000_000,
                    10_000,
                    5,
                )
            };
        Self {
            mode,
            dimensions,
            bits: 16,
            aggregators: 2,
            e2e_dimension,
            e2e_clients,
            flower_sizes: match mode {
                "smoke" => Vec::new(),
                "quick" => vec![(10, 1_000)],
                _ => [10_000, 100_000]
                    .into_iter()
                    .flat_map(|d| [10, 50, 100].map(|n| (n, d)))
                    .collect(),
            },
            noise_sigma: 1 << 10,
            cairn_noise_samples: cairn_noise,
            opendp_noise_samples: opendp_noise,
            runs,
        }
    }
}

/// Everything written to the JSON file.
#[derive(Debug, Serialize)]
struct Results {
    command: String,
    machine: Machine,
    plan: Plan,
    cairn: Vec<CairnFigures>,
    prio017_fixedpoint_l2: Vec<AnchorFigures>,
    prio018_sumvec: Vec<AnchorFigures>,
    floor: Vec<FloorFigures>,
    noise: NoiseFigures,
    e2e: Vec<RoundFigures>,
    e2e_skipped: Option<String>,
    flower_secagg: flower::FlowerFigures,
    table: Vec<table::Row>,
    total_secs: f64,
}

/// One end-to-end round per client count at dimension `d`, each checked to count every
/// client's report.
fn end_to_end_rounds(
    counts: &[usize],
    d: usize,
    work: &std::path::Path,
) -> anyhow::Result<Vec<RoundFigures>> {
    let mut rounds = Vec::new();
    for &n in counts {
        eprintln!("end-to-end round: {n} clients, d = {d}");
        let r = e2e::round(n, d, work, n as u8)?;
        anyhow::ensure!(
            r.count as usize == n,
            "round with {n} clients counted {}",
            r.count
        );
        rounds.push(r);
    }
    Ok(rounds)
}

/// The Cairn rounds the Flower sizes need beyond `have` (measured at those sizes).
fn rounds_beside_flower(
    sizes: &[(usize, usize)],
    have: &[RoundFigures],
    work: &std::path::Path,
) -> anyhow::Result<Vec<RoundFigures>> {
    let mut rounds = Vec::new();
    for &(n, d) in sizes {
        if !have.iter().any(|r| r.clients == n && r.d == d) {
            rounds.extend(end_to_end_rounds(&[n], d, work)?);
        }
    }
    Ok(rounds)
}

/// Flower's rounds, or why they are not measured in this run.
fn flower_rounds(cli: &Cli, plan: &Plan) -> flower::FlowerFigures {
    let skipped = if cli.no_flower {
        Some("skipped: --no-flower")
    } else if plan.flower_sizes.is_empty() {
        Some("skipped: a --smoke run does not install Python packages")
    } else {
        None
    };
    match skipped {
        Some(why) => {
            eprintln!("Flower SecAgg+ {why}");
            flower::FlowerFigures {
                rounds: Vec::new(),
                skipped: Some(why.to_owned()),
            }
        }
        None => flower::measure(&plan.flower_sizes),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Silent unless asked: `RUST_LOG=cairn_transport=debug` shows the clients' retries,
    // and the node processes (which inherit the variable) log their side.
    if std::env::var_os("RUST_LOG").is_some() {
        match tracing_subscriber::EnvFilter::try_from_default_env() {
            Ok(filter) => {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_writer(std::io::stderr)
                    .try_init();
            }
            Err(e) => eprintln!("RUST_LOG ignored: {e}"),
        }
    }
    if let Some(config) = &cli.serve_node {
        return e2e::serve_node(config);
    }
    if cli.scaling {
        // It measures what a node's verification sustains: with a node's allocator
        // settings (its freed pages kept, no huge pages), set before any thread starts.
        // In two interleaved runs on 2026-12-04 the leader's two-thread speed-up was
        // 1.74–1.75× with them and 1.69–1.70× without.
        cairn_aggregator::allocator::keep_freed_pages();
        cairn_aggregator::allocator::no_transparent_huge_pages()
            .context("turning transparent huge pages off, as a node does")?;
    }
    let started = Instant::now();
    let plan = Plan::new(&cli);
    let machine = Machine::detect();
    eprintln!(
        "cairn-bench ({} run) on {} ({} cores)",
        plan.mode, machine.cpu_model, machine.cores
    );
    let work = tempfile::tempdir().context("temporary directory")?;
    let cutoff = Duration::from_secs(cli.anchor_cutoff_secs);
    if cli.e2e_only {
        let counts = if cli.e2e_clients.is_empty() {
            plan.e2e_clients.clone()
        } else {
            cli.e2e_clients.clone()
        };
        let e2e = end_to_end_rounds(&counts, plan.e2e_dimension, work.path())?;
        println!("{}", table::render_rounds(&e2e));
        memory_plot(&cli.plots, &e2e)?;
        return Ok(());
    }

    if cli.flower_only {
        let e2e = rounds_beside_flower(&plan.flower_sizes, &[], work.path())?;
        let flower = flower_rounds(&cli, &plan);
        println!("{}", table::render_rounds(&e2e));
        println!("{}", table::render_flower(&flower, &e2e));
        return Ok(());
    }

    if cli.scaling {
        let rows = scaling::measure(
            cli.scaling_d,
            cli.scaling_reports,
            cli.scaling_runs,
            &cli.threads,
            work.path(),
        )?;
        println!("{}", scaling::render(&rows));
        return Ok(());
    }
    let [threads] = cli.threads[..] else {
        anyhow::bail!("--threads takes one count except with --scaling");
    };

    let mut cairn = Vec::new();
    let mut prio017 = Vec::new();
    let mut prio018 = Vec::new();
    let mut floor = Vec::new();
    let parallelism = cairn_protocol::parallel::Parallelism::with_threads(threads);
    for &d in &plan.dimensions {
        let runs = if d >= 1_000_000 { 3 } else { plan.runs };
        eprintln!("d = {d}: cairn");
        let reports = cairn::reports_for(d, plan.mode != "full");
        let c = cairn::measure(d, reports, runs, work.path(), &parallelism)?;
        anyhow::ensure!(c.correct, "d = {d}: the released sum is wrong");
        cairn.push(c);
        floor.push(anchors::floor(d, runs.max(3)));
        eprintln!("d = {d}: prio 0.17 Prio3FixedPointBoundedL2VecSum");
        let a = anchors::prio017_l2(d, 3, cutoff);
        if let Some(why) = &a.skipped {
            eprintln!("  skipped: {why}");
        }
        prio017.push(a);
        eprintln!("d = {d}: prio 0.18 Prio3SumVec (16-bit)");
        let a = anchors::prio018_sumvec(d, 3, cutoff);
        if let Some(why) = &a.skipped {
            eprintln!("  skipped: {why}");
        }
        prio018.push(a);
    }
    eprintln!("exact discrete-Gaussian noise: cairn vs OpenDP");
    let noise = anchors::noise(
        plan.noise_sigma,
        plan.cairn_noise_samples,
        plan.opendp_noise_samples,
    )?;

    let mut e2e = Vec::new();
    let mut e2e_skipped = None;
    if cli.no_e2e {
        e2e_skipped = Some("--no-e2e".to_owned());
    } else {
        e2e = end_to_end_rounds(&plan.e2e_clients, plan.e2e_dimension, work.path())?;
        if !cli.no_flower {
            let extra = rounds_beside_flower(&plan.flower_sizes, &e2e, work.path())?;
            e2e.extend(extra);
        }
    }
    let flower = flower_rounds(&cli, &plan);

    let rows = table::summary(&cairn, &prio017, &prio018, &floor, &noise, &e2e, &flower);
    println!();
    println!("{}", table::render_summary(&rows, &cairn));
    println!(
        "{}",
        table::render_per_dimension(&cairn, &prio017, &prio018, &floor)
    );
    if !e2e.is_empty() {
        println!("{}", table::render_rounds(&e2e));
    }
    println!("{}", table::render_flower(&flower, &e2e));

    std::fs::create_dir_all(&cli.plots)?;
    write_plots(&cli.plots, &cairn, &prio017, &prio018, &floor, &e2e)?;

    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        plan,
        cairn,
        prio017_fixedpoint_l2: prio017,
        prio018_sumvec: prio018,
        floor,
        noise,
        e2e,
        e2e_skipped,
        flower_secagg: flower,
        table: rows,
        total_secs: started.elapsed().as_secs_f64(),
    };
    if let Some(parent) = cli.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", cli.out.display()))?;
    eprintln!(
        "wrote {} and plots in {} ({:.0} s)",
        cli.out.display(),
        cli.plots.display(),
        results.total_secs
    );
    Ok(())
}

fn write_plots(
    dir: &std::path::Path,
    cairn: &[CairnFigures],
    prio017: &[AnchorFigures],
    prio018: &[AnchorFigures],
    floor: &[FloorFigures],
    e2e: &[RoundFigures],
) -> anyhow::Result<()> {
    use plots::Series;
    let d = |v: usize| v as f64;
    let anchor = |label: &str, a: &[AnchorFigures], f: fn(&AnchorFigures) -> Option<f64>| Series {
        label: label.to_owned(),
        points: a.iter().filter_map(|x| Some((d(x.d), f(x)?))).collect(),
    };
    plots::log_log(
        &dir.join("client_time_vs_d.svg"),
        "Client prepare time vs d (b = 16, 2 aggregators)",
        "d",
        "ms",
        &[
            Series {
                label: "Cairn prepare_upload".into(),
                points: cairn
                    .iter()
                    .map(|c| (d(c.d), c.client_prepare_ms))
                    .collect(),
            },
            anchor("prio 0.17 FixedPointBoundedL2VecSum shard", prio017, |a| {
                a.shard_ms
            }),
            anchor("prio 0.18 SumVec 16-bit shard", prio018, |a| a.shard_ms),
            Series {
                label: "floor: ChaCha20 d u64 + one pass".into(),
                points: floor.iter().map(|f| (d(f.d), f.floor_ms)).collect(),
            },
        ],
    )?;
    plots::log_log(
        &dir.join("aggregator_time_vs_d.svg"),
        "Verify + aggregate per report, per aggregator, vs d",
        "d",
        "ms per report",
        &[
            Series {
                label: "Cairn leader".into(),
                points: cairn
                    .iter()
                    .map(|c| (d(c.d), c.leader_ms_per_report))
                    .collect(),
            },
            Series {
                label: "Cairn helper".into(),
                points: cairn
                    .iter()
                    .map(|c| (d(c.d), c.helper_ms_per_report))
                    .collect(),
            },
            anchor(
                "prio 0.17 FixedPointBoundedL2VecSum prepare",
                prio017,
                |a| a.prepare_ms_per_report,
            ),
            anchor("prio 0.18 SumVec 16-bit prepare", prio018, |a| {
                a.prepare_ms_per_report
            }),
            Series {
                label: "floor: ChaCha20 d u64 + one pass".into(),
                points: floor.iter().map(|f| (d(f.d), f.floor_ms)).collect(),
            },
        ],
    )?;
    // The rounds at the run's end-to-end dimension (a full run adds others beside
    // Flower's sizes), by client count.
    let mut e2e: Vec<&RoundFigures> = e2e.iter().filter(|r| r.d == e2e[0].d).collect();
    e2e.sort_by_key(|r| r.clients);
    if !e2e.is_empty() {
        let dim = e2e[0].d;
        plots::log_log(
            &dir.join("round_time_vs_clients.svg"),
            &format!("End-to-end round over loopback QUIC vs N (d = {dim})"),
            "clients N",
            "seconds",
            &[
                Series {
                    label: "round (first submit to release)".into(),
                    points: e2e
                        .iter()
                        .map(|r| (r.clients as f64, r.round_secs))
                        .collect(),
                },
                Series {
                    label: "submit phase".into(),
                    points: e2e
                        .iter()
                        .map(|r| (r.clients as f64, r.submit_secs))
                        .collect(),
                },
                Series {
                    label: "collect phase".into(),
                    points: e2e
                        .iter()
                        .map(|r| (r.clients as f64, r.collect_secs))
                        .collect(),
                },
            ],
        )?;
    }
    let rounds: Vec<RoundFigures> = e2e.into_iter().cloned().collect();
    memory_plot(dir, &rounds)
}

/// The nodes' peak RSS against the clients of the end-to-end rounds (of the first
/// round's d): `memory_vs_clients.svg`, written by the full run and by `--e2e-only`.
fn memory_plot(dir: &std::path::Path, e2e: &[RoundFigures]) -> anyhow::Result<()> {
    let Some(first) = e2e.first() else {
        return Ok(());
    };
    let mut rounds: Vec<&RoundFigures> = e2e.iter().filter(|r| r.d == first.d).collect();
    rounds.sort_by_key(|r| r.clients);
    let series = |label: &str, rss: fn(&RoundFigures) -> Option<f64>| plots::Series {
        label: label.into(),
        points: rounds
            .iter()
            .filter_map(|r| Some((r.clients as f64, rss(r)?)))
            .collect(),
    };
    std::fs::create_dir_all(dir)?;
    plots::log_log(
        &dir.join("memory_vs_clients.svg"),
        &format!("Node peak RSS vs concurrent clients N (d = {})", first.d),
        "clients N",
        "MiB",
        &[
            series("leader peak RSS", |r| r.leader_peak_rss_mib),
            series("helper peak RSS", |r| r.helper_peak_rss_mib),
        ],
    )
}
