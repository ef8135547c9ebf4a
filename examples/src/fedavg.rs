//! Federated averaging (FedAvg) with clipped deltas summed by a [`SecureSum`] backend.
//!
//! McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
//! Data", AISTATS 2017, Algorithm 1 (FederatedAveraging), in the delta form with
//! per-client clipping used for user-level DP by McMahan et al., "Learning Differentially
//! Private Recurrent Language Models", ICLR 2018, Algorithm 1 (DP-FedAvg):
//!
//! for each round t = 1..R, every organisation k starts from the global parameters w,
//! runs E epochs of minibatch SGD on its own rows to reach w_k, forms Δ_k = w_k − w,
//! clips it to L2 norm at most C (Δ_k · min(1, C/‖Δ_k‖₂)), and submits it to the secure
//! sum; the collector receives only S = Σ_k Δ_k (noisy under DP) and the report count n,
//! and sets w ← w + S/n. Unweighted averaging (rather than weighting by silo size)
//! keeps each organisation's influence bounded by C, which is what DP accounting needs.
//!
//! Before training, the standardisation statistics go through a secure sum of their own
//! ([`federated_standardiser`]), so no organisation reveals its own feature means.

use thiserror::Error;

use crate::data::Record;
use crate::features::{FeatureError, Samples, Standardiser, local_stats, standardiser_from_sum};
use crate::metrics::{Evaluation, evaluate};
use crate::model::{Classifier, ModelError, SgdConfig, train_sgd};
use crate::rng::derive_rng;
use crate::secure_sum::{SecureSum, SecureSumError};

/// Settings of a FedAvg run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FedAvgConfig {
    /// Number of rounds R.
    pub rounds: u32,
    /// Local training per round (E = `local.epochs`).
    pub local: SgdConfig,
    /// Clipping bound C on each delta's L2 norm.
    pub clip_norm: f64,
    /// Seed of all local training randomness.
    pub seed: u64,
}

/// What one round produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReport {
    /// Round number (1-based).
    pub round: u32,
    /// Scores of the global model after the round, on the test set.
    pub evaluation: Evaluation,
    /// Privacy budget spent so far as released by the backend (`None`: no DP).
    pub epsilon_spent: Option<f64>,
    /// Number of updates in the collected sum.
    pub reports: usize,
    /// How many organisations' deltas were scaled down by clipping.
    pub clipped: usize,
    /// Mean L2 norm of the deltas before clipping.
    pub mean_delta_norm: f64,
}

/// Why a federated run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FedAvgError {
    /// A model operation failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The secure sum refused a submission or a collection.
    #[error(transparent)]
    SecureSum(#[from] SecureSumError),
    /// The summed statistics were unusable.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(&'static str),
}

/// Scales `update` so its L2 norm is at most `clip_norm`; returns the norm before.
pub fn clip_l2(update: &mut [f32], clip_norm: f64) -> f64 {
    let norm = update
        .iter()
        .map(|v| f64::from(*v) * f64::from(*v))
        .sum::<f64>()
        .sqrt();
    if norm > clip_norm {
        let scale = clip_norm / norm;
        for v in update.iter_mut() {
            *v = (f64::from(*v) * scale) as f32;
        }
    }
    norm
}

/// Computes the standardiser from every organisation's [`local_stats`] summed by
/// `backend` in `round` (the backend's dimension must be [`crate::features::STATS_LEN`]).
pub fn federated_standardiser<S: SecureSum>(
    backend: &mut S,
    round: u32,
    organisations: &[Vec<Record>],
) -> Result<Standardiser, FedAvgError> {
    for (org, rows) in organisations.iter().enumerate() {
        let stats: Vec<f32> = local_stats(rows.iter().map(|r| &r.connection))
            .into_iter()
            .map(|v| v as f32)
            .collect();
        backend.submit(org, round, &stats)?;
    }
    let aggregate = backend.collect(round)?;
    Ok(standardiser_from_sum(&aggregate.sum)?)
}

/// Runs FedAvg from `global`'s current parameters over `organisations` (one sample set
/// each), evaluating on `test` after every round and calling `on_round` with the report.
/// Rounds are numbered 1..=R in the backend.
pub fn run_fedavg<M, S>(
    global: &mut M,
    organisations: &[Samples],
    test: &Samples,
    config: &FedAvgConfig,
    backend: &mut S,
    mut on_round: impl FnMut(&RoundReport),
) -> Result<Vec<RoundReport>, FedAvgError>
where
    M: Classifier + Clone,
    S: SecureSum,
{
    if !(config.clip_norm.is_finite() && config.clip_norm > 0.0) {
        return Err(FedAvgError::Config("clip norm must be finite and > 0"));
    }
    if organisations.is_empty() {
        return Err(FedAvgError::Config("no organisations"));
    }
    if backend.dimension() != global.params().len() {
        return Err(SecureSumError::Dimension {
            expected: backend.dimension(),
            found: global.params().len(),
        }
        .into());
    }
    let mut local = global.clone();
    let mut reports = Vec::with_capacity(config.rounds as usize);
    for round in 1..=config.rounds {
        let start = global.params().to_vec();
        let mut clipped = 0;
        let mut norm_total = 0.0;
        for (org, samples) in organisations.iter().enumerate() {
            local.set_params(&start)?;
            let mut rng = derive_rng(
                config.seed,
                "fedavg-local",
                (u64::from(round) << 32) | org as u64,
            );
            train_sgd(&mut local, samples, &config.local, &mut rng)?;
            let mut delta: Vec<f32> = local
                .params()
                .iter()
                .zip(&start)
                .map(|(after, before)| after - before)
                .collect();
            let norm = clip_l2(&mut delta, config.clip_norm);
            norm_total += norm;
            if norm > config.clip_norm {
                clipped += 1;
            }
            backend.submit(org, round, &delta)?;
        }
        let aggregate = backend.collect(round)?;
        if aggregate.count == 0 || aggregate.sum.len() != start.len() {
            return Err(FedAvgError::Config(
                "backend released an empty or mis-sized sum",
            ));
        }
        let n = aggregate.count as f64;
        let updated: Vec<f32> = start
            .iter()
            .zip(&aggregate.sum)
            .map(|(w, s)| (f64::from(*w) + s / n) as f32)
            .collect();
        global.set_params(&updated)?;
        let report = RoundReport {
            round,
            evaluation: evaluate(global, test),
            epsilon_spent: aggregate.epsilon_spent,
            reports: aggregate.count,
            clipped,
            mean_delta_norm: norm_total / organisations.len() as f64,
        };
        on_round(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Centralised, non-private training on the pooled rows: `rounds` blocks of
/// `local.epochs` epochs, evaluated after each block (the same schedule of data passes
/// as FedAvg, for a like-for-like curve).
pub fn run_centralised<M: Classifier>(
    model: &mut M,
    pooled: &Samples,
    test: &Samples,
    rounds: u32,
    local: &SgdConfig,
    seed: u64,
    mut on_round: impl FnMut(&RoundReport),
) -> Result<Vec<RoundReport>, FedAvgError> {
    let mut reports = Vec::with_capacity(rounds as usize);
    for round in 1..=rounds {
        let mut rng = derive_rng(seed, "centralised", u64::from(round));
        train_sgd(model, pooled, local, &mut rng)?;
        let report = RoundReport {
            round,
            evaluation: evaluate(model, test),
            epsilon_spent: None,
            reports: 1,
            clipped: 0,
            mean_delta_norm: 0.0,
        };
        on_round(&report);
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_bounds_the_norm_and_keeps_direction() {
        let mut v = [3.0f32, 4.0];
        assert_eq!(clip_l2(&mut v, 10.0), 5.0);
        assert_eq!(v, [3.0, 4.0]);
        assert_eq!(clip_l2(&mut v, 1.0), 5.0);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
