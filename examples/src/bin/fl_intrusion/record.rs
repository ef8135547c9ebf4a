//! `--unit record`: DP-SGD across the silos, through real Cairn nodes, per seed and ε.

use super::*;

/// Record-level DP-SGD across silos (`--unit record`) for every seed and ε, with a
/// noise-free reference, through real Cairn nodes.
pub(super) fn run_record_level(args: &Args) -> Result<()> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if !(args.sampling_rate > 0.0 && args.sampling_rate <= 1.0) {
        bail!("--sampling-rate must be in (0, 1]");
    }
    let epsilons = match args.epsilon {
        Some(e) => vec![e],
        None => args.epsilons.clone(),
    };
    if let Some(e) = epsilons.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
        bail!("every ε must be finite and > 0 (got {e})");
    }
    let Some(dir) = args.data.clone().filter(|d| d.is_dir()) else {
        bail!(
            "--unit record needs --data DIR with the KEEL files: their headers give the public \
             attribute ranges the features are scaled by (no statistics of the records are \
             released)"
        );
    };
    let dataset = load_dataset(args)?;
    print_dataset(&dataset);
    let maxima = public_numeric_maxima(&dir).context("reading the KEEL headers")?;
    let standardiser =
        standardiser_from_public_ranges(&maxima, args.emphasis).context("--emphasis")?;
    let classes = dataset.num_classes();
    let seeds = if args.seeds.is_empty() {
        vec![args.seed]
    } else {
        args.seeds.clone()
    };
    let kind = match args.model {
        ModelArg::Logreg => ModelKind::LogReg,
        ModelArg::Mlp => ModelKind::Mlp {
            hidden: args.hidden,
        },
    };
    let mut rng = cairn_client::os_rng().context("seeding from the OS")?;
    let mut rows = Vec::new();
    for &seed in &seeds {
        let split = holdout_split(&dataset, args.test_fraction, seed)?;
        let train: Vec<_> = split.train.iter().map(|r| standardiser.encode(r)).collect();
        let test = standardiser.encode(&split.test);
        let config = DpSgdConfig {
            steps: args.steps,
            sampling_rate: args.sampling_rate,
            clip_norm: args.clip,
            max_records: args.max_records as usize,
            learning_rate: args.dpsgd_lr,
            seed,
        };
        let mut runs: Vec<(String, Option<f64>)> = vec![("dpsgd_no_noise".into(), None)];
        let placement = match args.record_noise {
            RecordNoiseArg::Aggregator => "",
            RecordNoiseArg::Client => "client_noise_",
        };
        runs.extend(
            epsilons
                .iter()
                .map(|e| (format!("dpsgd_cairn_{placement}eps_{e}"), Some(*e))),
        );
        for (run, epsilon) in runs {
            let mut model = new_model(kind, classes, seed)?;
            let dimension = model.params().len();
            let report = match epsilon {
                None => run_dpsgd(
                    &mut PlaintextSum::new(dimension),
                    &mut model,
                    &train,
                    &test,
                    &config,
                )?,
                Some(epsilon) => {
                    let mut backend = CairnSum::start(
                        &CairnSumConfig {
                            dimension,
                            organisations: train.len(),
                            clip_norm: args.clip,
                            noise: CairnNoise::Records {
                                epsilon,
                                delta: args.delta,
                                rounds: u64::from(args.steps),
                                sampling_rate: args.sampling_rate,
                                max_records: args.max_records,
                                client_noise: args.record_noise == RecordNoiseArg::Client,
                            },
                            name: format!("fl-intrusion-records-{epsilon}"),
                        },
                        &mut rng,
                    )
                    .context("starting the record-level Cairn task")?;
                    let task = backend.task();
                    let sigma = task.privacy().sigma.unwrap_or(0.0);
                    let delta_q = cairn_protocol::privacy::signal_sensitivity(task);
                    let whose = match args.record_noise {
                        RecordNoiseArg::Aggregator => "per aggregator".to_owned(),
                        RecordNoiseArg::Client => {
                            format!("in all, σ/√{} from each organisation", train.len())
                        }
                    };
                    // An organisation whose sample exceeds m skips the step: that
                    // adds δ_cap to the accountant's δ (`cairn_dp::cap`).
                    let largest = train.iter().map(|t| t.len()).max().unwrap_or(0) as u64;
                    let delta_cap = cairn_dp::cap_delta(
                        largest,
                        args.sampling_rate,
                        u64::from(args.max_records),
                        u64::from(args.steps),
                        epsilon,
                    )
                    .context("the cap's δ")?;
                    if delta_cap > args.delta {
                        anyhow::bail!(
                            "with {largest} records in the largest organisation, q = {} and \
                             {} steps, a cap of m = {} records adds δ ≤ {delta_cap:.1e} \
                             (an organisation sampling more skips the step), above δ = {}: \
                             raise --max-records",
                            args.sampling_rate,
                            args.steps,
                            args.max_records,
                            args.delta
                        );
                    }
                    println!(
                        "seed {seed}, ε = {epsilon}: b = {}, f = {}, m = {}, Δ = {delta_q:.1}, \
                         σ = {sigma:.1} (σ/Δ = {:.3}) {whose}; the cap adds δ ≤ {delta_cap:.1e} \
                         (largest organisation: {largest} training records)",
                        task.bits(),
                        task.frac_bits(),
                        task.max_records_per_report(),
                        sigma / delta_q
                    );
                    let report = run_dpsgd(&mut backend, &mut model, &train, &test, &config)?;
                    backend.shutdown();
                    report
                }
            };
            println!(
                "seed {seed} {run}: macro-F1 {:.3}, accuracy {:.3}, ε spent {}, {} records sampled, {} overflows (empty reports)",
                report.evaluation.macro_f1,
                report.evaluation.accuracy,
                report
                    .epsilon_spent
                    .map_or("-".to_owned(), |e| format!("{e:.3}")),
                report.sampled,
                report.skipped
            );
            rows.push(ResultRow {
                run,
                unit: "record",
                epsilon,
                seed,
                macro_f1: report.evaluation.macro_f1,
                accuracy: report.evaluation.accuracy,
                per_class_f1: report.evaluation.per_class_f1.clone(),
            });
        }
    }
    print_means(&rows);
    write_results(&args.out, &rows)
}

/// Mean macro-F1 and accuracy per run over the seeds.
pub(super) fn print_means(rows: &[ResultRow]) {
    let mut runs: Vec<&str> = rows.iter().map(|r| r.run.as_str()).collect();
    runs.dedup();
    runs.sort_unstable();
    runs.dedup();
    println!(
        "\n{:<28} {:>8} {:>10} {:>10}",
        "run", "seeds", "macro-F1", "accuracy"
    );
    for run in runs {
        let of: Vec<&ResultRow> = rows.iter().filter(|r| r.run == run).collect();
        let n = of.len() as f64;
        println!(
            "{run:<28} {:>8} {:>10.3} {:>10.3}",
            of.len(),
            of.iter().map(|r| r.macro_f1).sum::<f64>() / n,
            of.iter().map(|r| r.accuracy).sum::<f64>() / n
        );
    }
}
