//! The experiment pipeline shared by the binary and the tests: split, federated
//! standardisation, encoding, model construction.

use thiserror::Error;

use crate::cairn_sum::{CairnNoise, CairnSum, CairnSumConfig, CairnSumError};
use crate::data::Dataset;
use crate::data::split::{SplitError, holdout_split};
use crate::features::{ENCODED_WIDTH, STATS_LEN, Samples, Standardiser};
use crate::fedavg::{FedAvgError, federated_standardiser};
use crate::limb_sum::{LimbLayout, LimbSum};
use crate::metrics::{Evaluation, majority_baseline};
use crate::model::{LogReg, Mlp, Model, ModelError};
use crate::rng::derive_rng;
use crate::secure_sum::{SecureSum, SecureSumError};

/// Digits per statistic in the Cairn statistics task ([`cairn_stats_backend`]).
pub const STATS_LIMBS: u32 = 5;

/// Fractional bits of the statistics' integer encoding (resolution 2^−16 per
/// organisation and value).
pub const STATS_FRAC_BITS: u32 = 16;

/// Which classifier to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Multinomial logistic regression.
    LogReg,
    /// One-hidden-layer ReLU network with this many hidden units.
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
}

/// Encoded data ready for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Class names (label order).
    pub class_names: Vec<String>,
    /// Organisation names.
    pub org_names: Vec<String>,
    /// Each organisation's encoded training rows.
    pub org_train: Vec<Samples>,
    /// All training rows pooled (for the centralised baseline).
    pub pooled: Samples,
    /// The held-out test set.
    pub test: Samples,
    /// The standardiser computed from the securely summed statistics.
    pub standardiser: Standardiser,
    /// Scores of the majority-class predictor of the pooled training labels.
    pub majority: Evaluation,
}

/// Why the pipeline failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// The split failed.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// Federated standardisation failed.
    #[error(transparent)]
    FedAvg(#[from] FedAvgError),
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The statistics backend has the wrong dimension.
    #[error("statistics backend has dimension {0}, expected {STATS_LEN}")]
    StatsDimension(usize),
    /// The Cairn statistics task could not be started.
    #[error(transparent)]
    Cairn(#[from] CairnSumError),
    /// The statistics digit layout does not fit the task.
    #[error(transparent)]
    Limbs(#[from] SecureSumError),
    /// An organisation has no training rows after the split.
    #[error("organisation {0} has no training rows")]
    EmptyOrganisation(String),
}

/// Splits `dataset` (a deduplicated stratified hold-out, see
/// [`crate::data::split`]), computes the standardiser through `stats_backend` (round 0),
/// and encodes every organisation's rows and the test set.
pub fn prepare<S: SecureSum>(
    dataset: &Dataset,
    test_fraction: f64,
    seed: u64,
    stats_backend: &mut S,
) -> Result<Prepared, ExperimentError> {
    if stats_backend.dimension() != STATS_LEN {
        return Err(ExperimentError::StatsDimension(stats_backend.dimension()));
    }
    let split = holdout_split(dataset, test_fraction, seed)?;
    for (org, rows) in dataset.organisations.iter().zip(&split.train) {
        if rows.is_empty() {
            return Err(ExperimentError::EmptyOrganisation(org.name.clone()));
        }
    }
    let standardiser = federated_standardiser(stats_backend, 0, &split.train)?;
    let org_train: Vec<Samples> = split
        .train
        .iter()
        .map(|rows| standardiser.encode(rows))
        .collect();
    let mut pooled = Samples::empty(ENCODED_WIDTH);
    for samples in &org_train {
        pooled.extend(samples);
    }
    let test = standardiser.encode(&split.test);
    let majority = majority_baseline(&pooled.labels, &test, dataset.num_classes());
    Ok(Prepared {
        class_names: dataset.class_names.clone(),
        org_names: dataset
            .organisations
            .iter()
            .map(|o| o.name.clone())
            .collect(),
        org_train,
        pooled,
        test,
        standardiser,
        majority,
    })
}

/// A fresh model of `kind` for encoded connections and `classes` classes, initialised
/// from `seed` (logistic regression starts at zero).
pub fn new_model(kind: ModelKind, classes: usize, seed: u64) -> Result<Model, ModelError> {
    Ok(match kind {
        ModelKind::LogReg => Model::LogReg(LogReg::new(ENCODED_WIDTH, classes)?),
        ModelKind::Mlp { hidden } => Model::Mlp(Mlp::new(
            ENCODED_WIDTH,
            hidden,
            classes,
            &mut derive_rng(seed, "model-init", 0),
        )?),
    })
}

/// The Cairn backend of the standardisation statistics: a noise-free task of
/// [`STATS_LEN`] · [`STATS_LIMBS`] coordinates (clip C = 1) on its own two nodes, behind
/// a [`LimbSum`] so the large sums come through exactly (see [`crate::limb_sum`]).
///
/// **No differential privacy**: secret sharing hides each organisation's own
/// statistics from the aggregators and the collector, but the pooled sums
/// `[Σx, Σx², n]` are released exactly.
pub fn cairn_stats_backend<R: rand_core::CryptoRng + ?Sized>(
    organisations: usize,
    rng: &mut R,
) -> Result<LimbSum<CairnSum>, ExperimentError> {
    let clip_norm = 1.0;
    let task = CairnSum::start(
        &CairnSumConfig {
            dimension: STATS_LEN * STATS_LIMBS as usize,
            organisations,
            clip_norm,
            noise: CairnNoise::None,
            name: "fl-intrusion-statistics".into(),
        },
        rng,
    )?;
    let layout = LimbLayout::fit(
        STATS_LEN,
        STATS_LIMBS,
        clip_norm,
        u32::from(task.task().frac_bits()),
        STATS_FRAC_BITS,
    )
    .map_err(SecureSumError::from)?;
    Ok(LimbSum::new(task, STATS_LEN, layout)?)
}
