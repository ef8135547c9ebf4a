//! Record-level DP-SGD across silos through a secure sum.
//!
//! Abadi et al., "Deep Learning with Differential Privacy", CCS 2016, Algorithm 1, with
//! Poisson sampling (the sampling the RDP analysis of Mironov, Talwar and Zhang 2019
//! and [`cairn_dp::rdp`] assume), split across organisations: at every step each
//! organisation samples each of its records with probability `q`, computes every
//! sampled record's loss gradient at the current global model, and submits their sum
//! with each gradient clipped to `C` ([`SecureSum::submit_records`]); the aggregators
//! add discrete Gaussian noise to the sum of all organisations' sums, which is exactly
//! the noisy batch gradient of central DP-SGD on the union of the data. The global
//! model then moves by Adam (Kingma & Ba 2015) on `g = S / (q·N)`, with `N` the public
//! total number of training records (so the sampled counts stay private), and the
//! model evaluated is the running average of the iterates of the second half of
//! training (Polyak averaging), which damps the noise.
//!
//! An organisation that samples more than `max_records` records submits no record that
//! step (an empty report; its sample is not truncated silently): with the default
//! `max_records` this is rare at the data sizes of the example, and each run reports
//! how often it happened.

use thiserror::Error;

use crate::features::Samples;
use crate::metrics::{Evaluation, evaluate};
use crate::model::{Classifier, ModelError};
use crate::rng::derive_rng;
use crate::secure_sum::{SecureSum, SecureSumError};

/// Settings of a DP-SGD run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSgdConfig {
    /// Steps (one secure-sum round each).
    pub steps: u32,
    /// Per-record Poisson sampling rate q.
    pub sampling_rate: f64,
    /// Per-record gradient clip C.
    pub clip_norm: f64,
    /// Most sampled records one organisation may submit in a step.
    pub max_records: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Seed of the sampling (a ChaCha20 stream per organisation and step).
    pub seed: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct DpSgdReport {
    /// Scores of the averaged model on the test set.
    pub evaluation: Evaluation,
    /// ε spent at the end, as the backend's ledgers report it (`None`: no DP).
    pub epsilon_spent: Option<f64>,
    /// Records sampled over the run, all organisations.
    pub sampled: u64,
    /// Steps in which an organisation sampled more than `max_records` (and submitted an
    /// empty report).
    pub skipped: u64,
}

/// Why a DP-SGD run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DpSgdError {
    /// A model operation failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The secure sum refused a submission or a collection.
    #[error(transparent)]
    SecureSum(#[from] SecureSumError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(&'static str),
}

/// Trains `model` by record-level DP-SGD over the organisations' `train` samples,
/// summing through `backend` (its dimension must be the model's parameter count).
pub fn run_dpsgd<S: SecureSum, M: Classifier>(
    backend: &mut S,
    model: &mut M,
    train: &[Samples],
    test: &Samples,
    config: &DpSgdConfig,
) -> Result<DpSgdReport, DpSgdError> {
    if !(config.sampling_rate > 0.0 && config.sampling_rate <= 1.0) {
        return Err(DpSgdError::Config("the sampling rate must be in (0, 1]"));
    }
    if !(config.clip_norm > 0.0 && config.learning_rate > 0.0) || config.steps == 0 {
        return Err(DpSgdError::Config(
            "clip, learning rate and steps must be positive",
        ));
    }
    let p = model.params().len();
    if backend.dimension() != p {
        return Err(DpSgdError::Config(
            "the backend's dimension is not the model's",
        ));
    }
    let total: usize = train.iter().map(Samples::len).sum();
    let expected_batch = config.sampling_rate * total as f64;
    let mut params: Vec<f64> = model.params().iter().map(|v| f64::from(*v)).collect();
    let (mut m, mut v) = (vec![0f64; p], vec![0f64; p]);
    let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    let mut average = vec![0f64; p];
    let mut averaged = 0u32;
    let (mut sampled, mut skipped) = (0u64, 0u64);
    let mut epsilon_spent = None;
    let mut grad = vec![0f64; p];
    let mut rows: Vec<f32> = Vec::new();
    for step in 0..config.steps {
        let current: Vec<f32> = params.iter().map(|v| *v as f32).collect();
        model.set_params(&current)?;
        for (org, samples) in train.iter().enumerate() {
            let mut rng = derive_rng(
                config.seed,
                "dpsgd-sample",
                (u64::from(step) << 8) | org as u64,
            );
            let chosen =
                cairn_dp::sample::poisson_subsample(samples.len(), config.sampling_rate, &mut rng)
                    .map_err(|_| DpSgdError::Config("the sampling rate must be in (0, 1]"))?;
            rows.clear();
            if chosen.len() > config.max_records {
                // An empty report: with client noise the organisation's share of the
                // noise is still needed, and the leader does not learn of the overflow.
                skipped += 1;
                backend.submit_records(org, step, &rows, config.clip_norm)?;
                continue;
            }
            sampled += chosen.len() as u64;
            for &i in &chosen {
                grad.fill(0.0);
                model.accumulate_gradient(samples, &[i], &mut grad);
                rows.extend(grad.iter().map(|g| *g as f32));
            }
            backend.submit_records(org, step, &rows, config.clip_norm)?;
        }
        let released = backend.collect(step)?;
        epsilon_spent = released.epsilon_spent;
        let t = f64::from(step + 1);
        for k in 0..p {
            let g = released.sum[k] / expected_batch;
            m[k] = beta1 * m[k] + (1.0 - beta1) * g;
            v[k] = beta2 * v[k] + (1.0 - beta2) * g * g;
            let m_hat = m[k] / (1.0 - beta1.powf(t));
            let v_hat = v[k] / (1.0 - beta2.powf(t));
            params[k] -= config.learning_rate * m_hat / (v_hat.sqrt() + eps);
        }
        if step >= config.steps / 2 {
            averaged += 1;
            let w = 1.0 / f64::from(averaged);
            for (a, x) in average.iter_mut().zip(&params) {
                *a += w * (x - *a);
            }
        }
    }
    if params.iter().any(|x| !x.is_finite()) {
        return Err(ModelError::Diverged.into());
    }
    let final_params: Vec<f32> = average.iter().map(|v| *v as f32).collect();
    model.set_params(&final_params)?;
    Ok(DpSgdReport {
        evaluation: evaluate(model, test),
        epsilon_spent,
        sampled,
        skipped,
    })
}
