//! FedAvg on the real KEEL data through real Cairn nodes (a leader and a helper
//! on loopback, the client SDK), with the noise off: the released sums equal the
//! plaintext sums of what was submitted within the fixed-point rounding bound, the
//! standardisation statistics come through exactly, and the model learns.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;

use cairn_examples::data::load_keel_dir;
use cairn_examples::experiment::{ModelKind, cairn_stats_backend, new_model, prepare};
use cairn_examples::features::STATS_LEN;
use cairn_examples::{
    Aggregate, CairnNoise, CairnSum, CairnSumConfig, CairnSumError, Classifier, FedAvgConfig,
    PlaintextSum, SecureSum, SecureSumError, SgdConfig, run_fedavg,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kddcup99-keel")
}

/// Keeps every submission and release of the wrapped backend.
struct Recording<S> {
    inner: S,
    submitted: Vec<(u32, Vec<f32>)>,
    released: Vec<(u32, Aggregate)>,
}

impl<S: SecureSum> SecureSum for Recording<S> {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError> {
        self.submitted.push((round, update.to_vec()));
        self.inner.submit(org, round, update)
    }

    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError> {
        let aggregate = self.inner.collect(round)?;
        self.released.push((round, aggregate.clone()));
        Ok(aggregate)
    }
}

#[test]
fn fedavg_through_cairn_nodes_matches_the_plaintext_sums_and_learns() {
    let dataset = load_keel_dir(&shared_dir()).unwrap();
    let orgs = dataset.organisations.len();
    let mut rng = ChaCha20Rng::from_seed([8; 32]);

    // Statistics: a noise-free task of STATS_LEN · L digits.
    let mut stats = cairn_stats_backend(orgs, &mut rng).unwrap();
    let prepared = prepare(&dataset, 0.3, 1, &mut stats).unwrap();
    stats.into_inner().shutdown();
    let reference = prepare(&dataset, 0.3, 1, &mut PlaintextSum::new(STATS_LEN)).unwrap();
    for i in 0..reference.standardiser.mean().len() {
        let (m, v) = (
            reference.standardiser.mean()[i],
            reference.standardiser.variance()[i],
        );
        assert!(
            (prepared.standardiser.mean()[i] - m).abs() <= 1e-6 * (1.0 + m.abs()),
            "mean {i}"
        );
        assert!(
            (prepared.standardiser.variance()[i] - v).abs() <= 1e-6 * (1.0 + v),
            "variance {i}"
        );
    }

    // Model: 3 rounds of logistic-regression FedAvg, noise off.
    let mut model = new_model(ModelKind::LogReg, 7, 1).unwrap();
    let clip = 1.0;
    let backend = CairnSum::start(
        &CairnSumConfig {
            dimension: model.params().len(),
            organisations: orgs,
            clip_norm: clip,
            noise: CairnNoise::None,
            name: "test-model".into(),
        },
        &mut rng,
    )
    .unwrap();
    let frac_bits = backend.task().frac_bits();
    let mut backend = Recording {
        inner: backend,
        submitted: Vec::new(),
        released: Vec::new(),
    };
    let config = FedAvgConfig {
        rounds: 3,
        local: SgdConfig {
            epochs: 1,
            batch_size: 32,
            learning_rate: 0.1,
        },
        clip_norm: clip,
        seed: 1,
    };
    let reports = run_fedavg(
        &mut model,
        &prepared.org_train,
        &prepared.test,
        &config,
        &mut backend,
        |_| {},
    )
    .unwrap();

    // (a) Every released sum is the plaintext sum of that round's submissions, within
    // the randomised-rounding bound count · 2^-f per coordinate (plus f32 slack: the
    // SDK re-clips the f32 delta to C in f64).
    assert_eq!(backend.released.len(), 3);
    let step = 2f64.powi(-i32::from(frac_bits));
    for (round, aggregate) in &backend.released {
        assert_eq!(aggregate.count, orgs);
        assert_eq!(aggregate.epsilon_spent, None);
        let mut plain = vec![0.0f64; aggregate.sum.len()];
        for (_, update) in backend.submitted.iter().filter(|(r, _)| r == round) {
            for (s, v) in plain.iter_mut().zip(update) {
                *s += f64::from(*v);
            }
        }
        let bound = orgs as f64 * step + 1e-6;
        let mut worst = 0.0f64;
        for (got, want) in aggregate.sum.iter().zip(&plain) {
            worst = worst.max((got - want).abs());
        }
        assert!(worst <= bound, "round {round}: off by {worst} > {bound}");
        // Not trivially zero: the deltas carry signal.
        assert!(plain.iter().any(|v| v.abs() > 100.0 * step));
    }

    // (b) The Cairn-trained model beats the majority-class baseline clearly.
    let last = &reports.last().unwrap().evaluation;
    let majority = prepared.majority.macro_f1;
    assert!(
        last.macro_f1 > majority + 0.4,
        "macro-F1 {} vs majority {majority}",
        last.macro_f1
    );
    backend.inner.shutdown();
}

#[test]
fn the_aggregators_enforce_the_budget() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut backend = CairnSum::start(
        &CairnSumConfig {
            dimension: 4,
            organisations: 2,
            clip_norm: 1.0,
            noise: CairnNoise::Aggregator {
                epsilon: 1.0,
                delta: 1e-6,
                rounds: 1,
            },
            name: "test-budget".into(),
        },
        &mut rng,
    )
    .unwrap();
    for round in [1, 2] {
        for org in 0..2 {
            backend.submit(org, round, &[0.5, 0.0, 0.0, 0.0]).unwrap();
        }
    }
    let first = backend.collect(1).unwrap();
    let spent = first.epsilon_spent.unwrap();
    assert!(spent > 0.5 && spent <= 1.0 + 1e-9, "ε spent {spent}");
    // The budget was planned for one release: the second is refused by the nodes.
    match backend.collect(2) {
        Err(SecureSumError::Backend(e)) => assert!(
            matches!(
                e.downcast_ref::<CairnSumError>(),
                Some(CairnSumError::BudgetExceeded { round: 2 })
            ),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}
