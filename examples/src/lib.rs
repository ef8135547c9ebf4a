//! Runnable Cairn examples: federated attack-family classification on real KDD Cup '99
//! records (issue 8).
//!
//! Several organisations train one intrusion-triage model without sharing their traffic:
//! the standardisation statistics and every round's clipped model deltas go through a
//! [`SecureSum`] backend. [`PlaintextSum`] (exact, no DP) is the reference backend;
//! the Cairn backend (aggregator nodes on loopback, client SDK) plugs in behind the same
//! trait once the node and SDK exist.

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
