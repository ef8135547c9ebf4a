//! Runnable Cairn examples: federated attack-family classification on real KDD Cup '99
//! records.
//!
//! Several organisations train one intrusion-triage model without sharing their traffic:
//! the standardisation statistics and every round's clipped model deltas go through a
//! [`SecureSum`] backend. [`PlaintextSum`] (exact, no DP) is the reference backend;
//! [`CairnSum`] runs a leader and a helper Cairn node in-process on loopback and goes
//! through the client SDK (secret sharing, norm proofs, aggregator-side DP noise).
//!
//! Modules, in pipeline order:
//!
//! - [`data`]: the 41-feature KDD schema, the KEEL `.dat` and NSL-KDD loaders, the
//!   pinned PyPI fetcher, the deduplicated stratified hold-out split.
//! - [`features`]: log-scaling, one-hot encoding, standardisation from summed
//!   statistics ([`local_stats`], [`standardiser_from_sum`]) or from public attribute
//!   ranges ([`standardiser_from_public_ranges`]).
//! - [`model`]: multinomial logistic regression and a one-hidden-layer MLP over flat
//!   parameter vectors, minibatch SGD.
//! - [`secure_sum`]: the [`SecureSum`] backend trait and [`PlaintextSum`].
//! - [`cairn_sum`]: [`CairnSum`], the backend running real Cairn nodes on loopback.
//! - [`limb_sum`]: [`LimbSum`], exact sums of large values through a 16-bit task.
//! - [`fedavg`]: clipped FedAvg through a [`SecureSum`], the centralised baseline.
//! - [`dpsgd`]: record-level DP-SGD across silos through a [`SecureSum`] (Poisson
//!   sampling, per-record clipping, Adam on the noisy sum, iterate averaging).
//! - [`metrics`]: accuracy, macro-F1, the majority-class baseline.
//! - [`experiment`]: the pipeline shared by the binary and the tests.
//! - [`plot`]: the SVG plot of macro-F1 over rounds.
//! - [`rng`]: seeded sampling helpers (every run is deterministic given `--seed`).

pub mod cairn_sum;
pub mod data;
pub mod dpsgd;
pub mod experiment;
pub mod features;
pub mod fedavg;
pub mod limb_sum;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod rng;
pub mod secure_sum;

pub use cairn_sum::{CairnNoise, CairnSum, CairnSumConfig, CairnSumError};
pub use dpsgd::{DpSgdConfig, DpSgdError, DpSgdReport, run_dpsgd};
pub use features::{
    DEFAULT_EMPHASIS, EMPHASISED_COLUMNS, EMPHASISED_SERVICES, Samples, Standardiser, local_stats,
    standardiser_from_public_ranges, standardiser_from_sum,
};
pub use fedavg::{FedAvgConfig, RoundReport, run_centralised, run_fedavg};
pub use limb_sum::{LimbLayout, LimbSum};
pub use metrics::Evaluation;
pub use model::{Classifier, LogReg, Mlp, Model, SgdConfig};
pub use secure_sum::{Aggregate, PlaintextSum, SecureSum, SecureSumError};
