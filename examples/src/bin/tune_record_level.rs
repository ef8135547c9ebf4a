//! Chooses the hyper-parameters of `fl_intrusion --unit record` without the reported
//! seeds and without running nodes: a deployment of the same task is written only to
//! read the σ it calibrates, and the training sums in the clear.
//!
//! Each run is the record-level DP-SGD of [`cairn_examples::run_dpsgd`] on a split of
//! a **tuning** seed (0 and 10–13 by default; the results in `examples/README.md` use
//! seeds 1–5), with the sum computed in the clear and the aggregators' noise drawn
//! here: two discrete Gaussians of the σ that a real deployment of the same task
//! calibrates (so the same ε, δ, q, steps, clip and fixed-point scale), scaled back by
//! 2^f (with `--client-noise`, the five organisations' `N_Z(0, σ²/5)` of
//! `--record-noise client` instead). What it leaves out is the stochastic rounding of
//! every value to 2^−f, whose share of the sensitivity σ covers anyway.
//!
//! This is a tool for choosing settings, not a private release: its noise comes from a
//! seeded ChaCha20 stream so that runs repeat, and it reads the test split.
//!
//! ```sh
//! cargo run --release -p cairn-examples --bin tune_record_level -- --epsilons 1,4 --reps 10
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cairn_dp::sample::DiscreteGaussian;
use cairn_examples::data::keel::public_numeric_maxima;
use cairn_examples::data::load_keel_dir;
use cairn_examples::data::split::holdout_split;
use cairn_examples::experiment::{ModelKind, new_model};
use cairn_examples::{
    Aggregate, CairnNoise, CairnSum, CairnSumConfig, Classifier, DEFAULT_EMPHASIS, DpSgdConfig,
    PlaintextSum, SecureSum, SecureSumError, run_dpsgd, standardiser_from_public_ranges,
};
use clap::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Mean macro-F1 of record-level DP-SGD on tuning splits, with simulated aggregator noise.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Directory of the five KEEL kddcup-*.dat files.
    #[arg(long, default_value = "examples/data/kddcup99-keel")]
    data: PathBuf,
    /// Total ε values to try (δ from --delta).
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 4.0])]
    epsilons: Vec<f64>,
    /// δ of the budget.
    #[arg(long, default_value_t = 1e-6)]
    delta: f64,
    /// Split seeds (keep them apart from the seeds you report).
    #[arg(long, value_delimiter = ',', default_values_t = [0, 10, 11, 12, 13])]
    seeds: Vec<u64>,
    /// Noise draws per split.
    #[arg(long, default_value_t = 4)]
    reps: u64,
    /// DP-SGD steps.
    #[arg(long, default_value_t = 600)]
    steps: u32,
    /// Poisson sampling rate q.
    #[arg(long, default_value_t = 0.04)]
    sampling_rate: f64,
    /// Per-record clip C.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Most sampled records per organisation and step (127, as `fl_intrusion`: the most
    /// whose sum fits 16 bits at f = 8).
    #[arg(long, default_value_t = 127)]
    max_records: u32,
    /// Adam step size.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Hidden units of a one-hidden-layer ReLU network instead of softmax regression
    /// (0: softmax regression, the example's model).
    #[arg(long, default_value_t = 0)]
    hidden: usize,
    /// Scale of `land` and `num_failed_logins` ([0, S] instead of [0, 1]) and of the
    /// `imap4` and `http` services' one-hot features (S instead of 1); 1: none.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_EMPHASIS)]
    emphasis: f64,
    /// Simulate `--record-noise client`: each organisation adds `N_Z(0, σ²/n)` (σ as
    /// the deployment calibrates it for client noise) instead of each aggregator σ².
    #[arg(long)]
    client_noise: bool,
    /// Also print the confusion matrix summed over all runs (rows: true class).
    #[arg(long)]
    confusion: bool,
    /// Held-out fraction of the distinct records.
    #[arg(long, default_value_t = 0.3)]
    test_fraction: f64,
}

/// A plaintext sum plus `draws` discrete Gaussians per coordinate, in fixed point: the
/// two aggregators' `N_Z(0, σ²)`, or (`--client-noise`) every organisation's
/// `N_Z(0, σ²/n)`.
struct SimulatedNoise {
    sum: PlaintextSum,
    noise: DiscreteGaussian,
    draws: usize,
    scale: f64,
    rng: ChaCha20Rng,
}

impl SecureSum for SimulatedNoise {
    fn dimension(&self) -> usize {
        self.sum.dimension()
    }

    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError> {
        self.sum.submit(org, round, update)
    }

    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError> {
        let mut aggregate = self.sum.collect(round)?;
        let mut draws = vec![0i64; self.draws * aggregate.sum.len()];
        self.noise.fill(&mut self.rng, &mut draws);
        for (s, noise) in aggregate.sum.iter_mut().zip(draws.chunks_exact(self.draws)) {
            *s += noise.iter().sum::<i64>() as f64 / self.scale;
        }
        Ok(aggregate)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.seeds.is_empty() || args.reps == 0 {
        bail!("need at least one seed and one rep");
    }
    let dataset = load_keel_dir(&args.data).context("reading the KEEL files")?;
    let maxima = public_numeric_maxima(&args.data).context("reading the KEEL headers")?;
    let standardiser =
        standardiser_from_public_ranges(&maxima, args.emphasis).context("--emphasis")?;
    let classes = dataset.num_classes();
    let kind = match args.hidden {
        0 => ModelKind::LogReg,
        hidden => ModelKind::Mlp { hidden },
    };
    let organisations = dataset.organisations.len();
    println!("classes: {}", dataset.class_names.join(", "));
    for &epsilon in &args.epsilons {
        // σ and the fixed-point scale, as a real deployment of this task calibrates them.
        let dimension = new_model(kind, classes, 0)?.params().len();
        let task = CairnSum::calibrated_task(
            &CairnSumConfig {
                dimension,
                organisations,
                clip_norm: args.clip,
                noise: CairnNoise::Records {
                    epsilon,
                    delta: args.delta,
                    rounds: u64::from(args.steps),
                    sampling_rate: args.sampling_rate,
                    max_records: args.max_records,
                    client_noise: args.client_noise,
                },
                name: "tune-record-level".into(),
            },
            &mut cairn_client::os_rng().context("seeding from the OS")?,
        )
        .context("calibrating σ")?;
        let sigma = task.privacy().sigma.unwrap_or(0.0);
        let bits = task.frac_bits();
        let scale = f64::from(1u32 << bits);
        let (each, draws) = if args.client_noise {
            (sigma / (organisations as f64).sqrt(), organisations)
        } else {
            (sigma, 2)
        };
        let noise = DiscreteGaussian::from_f64(each).context("σ out of the sampler's range")?;
        let mut f1 = Vec::new();
        let mut per_class = vec![0.0; classes];
        let mut confusion = vec![0u64; classes * classes];
        for &seed in &args.seeds {
            let split = holdout_split(&dataset, args.test_fraction, seed)?;
            let train: Vec<_> = split.train.iter().map(|r| standardiser.encode(r)).collect();
            let test = standardiser.encode(&split.test);
            for rep in 0..args.reps {
                let mut model = new_model(kind, classes, seed)?;
                let mut backend = SimulatedNoise {
                    sum: PlaintextSum::new(dimension),
                    noise: noise.clone(),
                    draws,
                    scale,
                    rng: ChaCha20Rng::seed_from_u64(seed.wrapping_mul(1_000).wrapping_add(rep)),
                };
                let config = DpSgdConfig {
                    steps: args.steps,
                    sampling_rate: args.sampling_rate,
                    clip_norm: args.clip,
                    max_records: args.max_records as usize,
                    learning_rate: args.lr,
                    seed,
                };
                let report = run_dpsgd(&mut backend, &mut model, &train, &test, &config)?;
                f1.push(report.evaluation.macro_f1);
                for i in 0..test.len() {
                    confusion[test.labels[i] * classes + model.predict(test.row(i))] += 1;
                }
                for (total, v) in per_class.iter_mut().zip(&report.evaluation.per_class_f1) {
                    *total += v.unwrap_or(0.0);
                }
            }
        }
        let n = f1.len() as f64;
        let mean = f1.iter().sum::<f64>() / n;
        let sd = (f1.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        let per_class: Vec<String> = per_class.iter().map(|v| format!("{:.2}", v / n)).collect();
        println!(
            "ε = {epsilon}: σ = {sigma:.1} at 2^{}, macro-F1 {mean:.3} ± {:.3} (standard error, {n} runs); per class {}",
            bits,
            sd / n.sqrt(),
            per_class.join(" ")
        );
        if args.confusion {
            println!("confusion (rows: true class, columns: predicted, in the order above):");
            for row in confusion.chunks(classes) {
                println!("  {row:?}");
            }
        }
    }
    Ok(())
}
