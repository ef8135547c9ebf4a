//! A short federated run on the real KEEL data (vendored in `examples/data`).
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;

use cairn_examples::data::load_keel_dir;
use cairn_examples::data::split::holdout_split;
use cairn_examples::experiment::{ModelKind, new_model, prepare};
use cairn_examples::features::{STATS_LEN, local_stats, standardiser_from_sum};
use cairn_examples::{
    Aggregate, Classifier, FedAvgConfig, PlaintextSum, SecureSum, SecureSumError, SgdConfig,
    run_fedavg,
};

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kddcup99-keel")
}

#[test]
fn split_is_stratified_deduplicated_and_deterministic() {
    let dataset = load_keel_dir(&shared_dir()).unwrap();
    let a = holdout_split(&dataset, 0.3, 7).unwrap();
    let b = holdout_split(&dataset, 0.3, 7).unwrap();
    assert_eq!(a, b);
    // Every class is in the test set.
    for class in 0..7 {
        assert!(a.test.iter().any(|r| r.label == class), "class {class}");
    }
    // No test record occurs in any organisation's training rows.
    for org in &a.train {
        for r in org {
            assert!(!a.test.contains(r));
        }
    }
    // 2,414 distinct records; ~30 % of each class held out.
    assert!((700..750).contains(&a.test.len()), "{}", a.test.len());
}

#[test]
fn securely_summed_statistics_equal_centralised_ones() {
    let dataset = load_keel_dir(&shared_dir()).unwrap();
    let mut backend = PlaintextSum::new(STATS_LEN);
    let prepared = prepare(&dataset, 0.3, 1, &mut backend).unwrap();
    let split = holdout_split(&dataset, 0.3, 1).unwrap();
    // Centralised: statistics of the pooled rows, computed in one pass.
    let pooled: Vec<_> = split
        .train
        .iter()
        .flatten()
        .map(|r| &r.connection)
        .collect();
    let central = standardiser_from_sum(&local_stats(pooled.iter().copied())).unwrap();
    let n = pooled.len() as f64;
    for i in 0..central.mean().len() {
        // Direct two-pass mean and variance of the transformed feature as a reference.
        let values: Vec<f64> = pooled
            .iter()
            .map(|c| cairn_examples::features::transformed_numeric(c)[i])
            .collect();
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!((central.mean()[i] - mean).abs() <= 1e-9 * (1.0 + mean.abs()));
        assert!((central.variance()[i] - var).abs() <= 1e-9 * (1.0 + var));
        // Through the f32 secure sum: equal up to f32 rounding of the submitted sums.
        let fed = &prepared.standardiser;
        assert!(
            (fed.mean()[i] - mean).abs() <= 1e-5 * (1.0 + mean.abs()),
            "mean {i}"
        );
        assert!(
            (fed.variance()[i] - var).abs() <= 1e-4 * (1.0 + var),
            "var {i}"
        );
    }
}

/// Wraps the plaintext sum and keeps every submission, to check what FedAvg does with
/// the collected sum.
struct Recording {
    inner: PlaintextSum,
    submitted: Vec<(u32, Vec<f32>)>,
    released: Vec<Aggregate>,
}

impl SecureSum for Recording {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError> {
        self.submitted.push((round, update.to_vec()));
        self.inner.submit(org, round, update)
    }

    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError> {
        let aggregate = self.inner.collect(round)?;
        self.released.push(aggregate.clone());
        Ok(aggregate)
    }
}

#[test]
fn short_fedavg_beats_the_majority_baseline() {
    let dataset = load_keel_dir(&shared_dir()).unwrap();
    let prepared = prepare(&dataset, 0.3, 1, &mut PlaintextSum::new(STATS_LEN)).unwrap();
    let mut model = new_model(ModelKind::LogReg, 7, 1).unwrap();
    let config = FedAvgConfig {
        rounds: 4,
        local: SgdConfig {
            epochs: 1,
            batch_size: 32,
            learning_rate: 0.1,
        },
        clip_norm: 1.0,
        seed: 1,
    };
    let mut backend = Recording {
        inner: PlaintextSum::new(model.params().len()),
        submitted: Vec::new(),
        released: Vec::new(),
    };
    let mut seen = 0;
    let reports = run_fedavg(
        &mut model,
        &prepared.org_train,
        &prepared.test,
        &config,
        &mut backend,
        |_| seen += 1,
    )
    .unwrap();
    assert_eq!(seen, 4);
    let last = &reports[3].evaluation;
    let majority = prepared.majority.macro_f1;
    assert!(majority < 0.15, "majority-class macro-F1 {majority}");
    assert!(
        last.macro_f1 > majority + 0.4,
        "FedAvg macro-F1 {} vs majority {majority}",
        last.macro_f1
    );
    assert!(last.accuracy > prepared.majority.accuracy + 0.3);

    // Every submitted delta respects the clip bound, and each released sum is exactly
    // the sum of that round's submissions.
    assert_eq!(backend.submitted.len(), 4 * 5);
    for (round, aggregate) in (1..=4).zip(&backend.released) {
        assert_eq!(aggregate.count, 5);
        let mut sum = vec![0.0f64; aggregate.sum.len()];
        for (_, update) in backend.submitted.iter().filter(|(r, _)| *r == round) {
            let norm = update
                .iter()
                .map(|v| f64::from(*v).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(norm <= 1.0 + 1e-5, "norm {norm}");
            for (s, v) in sum.iter_mut().zip(update) {
                *s += f64::from(*v);
            }
        }
        assert_eq!(sum, aggregate.sum);
    }
    // The global model is the sum of the averaged released deltas (it started at zero).
    for (j, p) in model.params().iter().enumerate() {
        let expected: f64 = backend.released.iter().map(|a| a.sum[j] / 5.0).sum();
        assert!((f64::from(*p) - expected).abs() < 1e-5, "param {j}");
    }

    // Deterministic: the same seed gives the same model.
    let mut again = new_model(ModelKind::LogReg, 7, 1).unwrap();
    run_fedavg(
        &mut again,
        &prepared.org_train,
        &prepared.test,
        &config,
        &mut PlaintextSum::new(model.params().len()),
        |_| {},
    )
    .unwrap();
    assert_eq!(again.params(), model.params());
}
