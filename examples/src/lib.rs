//! Runnable Cairn examples: federated attack-family classification on real KDD Cup '99
//! records (issue 8).
//!
//! Several organisations train one intrusion-triage model without sharing their traffic:
//! the standardisation statistics and every round's clipped model deltas go through a
//! [`SecureSum`] backend. [`PlaintextSum`] (exact, no DP) is the reference backend;
//! the Cairn backend (aggregator nodes on loopback, client SDK) plugs in behind the same
//! trait once the node and SDK exist.
//!
//! Modules, in pipeline order:
//!
//! - [`data`]: the 41-feature KDD schema, the KEEL `.dat` and NSL-KDD loaders, the
//!   pinned PyPI fetcher, the deduplicated stratified hold-out split.
//! - [`features`]: log-scaling, one-hot encoding, standardisation from summed
//!   statistics ([`local_stats`], [`standardiser_from_sum`]).
//! - [`model`]: multinomial logistic regression and a one-hidden-layer MLP over flat
//!   parameter vectors, minibatch SGD.
//! - [`secure_sum`]: the [`SecureSum`] backend trait and [`PlaintextSum`].
//! - [`fedavg`]: clipped FedAvg through a [`SecureSum`], the centralised baseline.
//! - [`metrics`]: accuracy, macro-F1, the majority-class baseline.
//! - [`experiment`]: the pipeline shared by the binary and the tests.
//! - [`plot`]: the SVG plot of macro-F1 over rounds.
//! - [`rng`]: seeded sampling helpers (every run is deterministic given `--seed`).

pub mod data;
pub mod experiment;
pub mod features;
pub mod fedavg;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod rng;
pub mod secure_sum;

pub use features::{Samples, Standardiser, local_stats, standardiser_from_sum};
pub use fedavg::{FedAvgConfig, RoundReport, run_centralised, run_fedavg};
pub use metrics::Evaluation;
pub use model::{Classifier, LogReg, Mlp, Model, SgdConfig};
pub use secure_sum::{Aggregate, PlaintextSum, SecureSum, SecureSumError};
