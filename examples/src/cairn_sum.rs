//! [`CairnSum`]: the [`SecureSum`] backend that runs a real Cairn deployment in-process.
//!
//! Constructing a [`CairnSum`] writes a fresh local deployment into a temporary folder
//! with `cairn_aggregator::deploy::init` (keys, certificates, a task whose σ is
//! calibrated so that `rounds` releases fit the (ε, δ) budget, one configuration per
//! node), starts a leader and a helper on loopback (free UDP ports), and builds one SDK
//! [`Client`] per organisation and one [`Collector`]. Then
//! - [`SecureSum::submit`] is `clients[org].submit(round, update)`: the client clips to
//!   the task's C, quantises with randomised rounding, secret-shares between the two
//!   aggregators, proves the norm bound and uploads;
//! - [`SecureSum::collect`] is `collector.collect(round)`: the aggregators verify the
//!   proofs, add their shares (and, with aggregator noise, each its own discrete
//!   Gaussian noise), charge their privacy ledgers and release; the collector opens the
//!   noisy sum. `epsilon_spent` is the most conservative aggregator receipt's ε.
//!
//! The aggregators enforce the budget themselves: a release beyond it is refused
//! ([`CairnSumError::BudgetExceeded`]).
//!
//! The federated loop is synchronous, so the backend owns a multi-thread tokio runtime
//! and drives every SDK call with `block_on`; the nodes run on the same runtime. Dropping
//! the backend (or [`CairnSum::shutdown`]) stops the nodes and removes the folder.

use std::collections::BTreeSet;
use std::time::Duration;

use cairn_aggregator::deploy::{Deployment, InitParams, free_base_port, init};
use cairn_aggregator::node::{NodeSetup, RunningNode, read_secret_hex, start};
use cairn_client::sdk::{Client, Collector, SdkError};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::messages::ErrorCode;
use cairn_transport::Identity;
use rand_core::CryptoRng;
use thiserror::Error;

use crate::secure_sum::{Aggregate, SecureSum, SecureSumError};

/// How long a node may finish requests in flight at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Where the task adds noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CairnNoise {
    /// No noise: the exact sum is released (no differential privacy).
    None,
    /// Each aggregator adds discrete Gaussian noise to its share; σ is calibrated so
    /// that `rounds` releases spend at most (`epsilon`, `delta`) (zCDP accounting by
    /// the aggregators). DP holds if at least one aggregator is honest.
    Aggregator {
        /// Total ε over all rounds.
        epsilon: f64,
        /// δ.
        delta: f64,
        /// Releases the budget is planned for.
        rounds: u64,
    },
    /// Record level (`unit = "record"`): noise calibrated with the RDP of the
    /// Poisson-subsampled discrete Gaussian so that `rounds` releases spend at most
    /// (`epsilon`, `delta`) per record; organisations submit the sums of their sampled
    /// records ([`SecureSum::submit_records`]).
    ///
    /// With `client_noise` false each aggregator adds the noise (DP if one aggregator
    /// is honest) and a round needs one report. With it true every organisation adds
    /// `N_Z(0, σ²/n)` to its own sum, `n` the number of organisations (the subsampled
    /// distributed discrete Gaussian, KLS21): the released sum carries σ² instead of
    /// the aggregators' 2σ², DP holds if all `n` organisations add their share, and a
    /// round needs all `n` reports.
    Records {
        /// Total ε over all rounds, per record.
        epsilon: f64,
        /// δ.
        delta: f64,
        /// Releases the budget is planned for.
        rounds: u64,
        /// Per-record sampling rate q.
        sampling_rate: f64,
        /// Most records per report m.
        max_records: u32,
        /// Noise at the organisations instead of the aggregators.
        client_noise: bool,
    },
}

/// What to deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct CairnSumConfig {
    /// Vector length of the task.
    pub dimension: usize,
    /// Number of organisations (one SDK client each). Every round needs all of them.
    pub organisations: usize,
    /// L2 clipping bound C of the task (the SDK clips to it again).
    pub clip_norm: f64,
    /// Noise placement and budget.
    pub noise: CairnNoise,
    /// Task name.
    pub name: String,
}

/// Why the Cairn backend failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CairnSumError {
    /// A setting is out of range.
    #[error("invalid Cairn backend setting: {0}")]
    Config(String),
    /// The tokio runtime could not be built.
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// A deployment file could not be read or the folder created.
    #[error("deployment files: {0}")]
    Io(#[from] std::io::Error),
    /// Writing the deployment or starting a node failed.
    #[error("deployment: {0}")]
    Deploy(String),
    /// The task file written by the deployment does not load.
    #[error("task: {0}")]
    Task(#[from] cairn_protocol::config::ConfigError),
    /// The aggregators refused a release: the task's privacy budget is spent.
    #[error("round {round}: the aggregators refused the release (privacy budget exhausted)")]
    BudgetExceeded {
        /// The round.
        round: u32,
    },
    /// An SDK call failed.
    #[error(transparent)]
    Sdk(#[from] SdkError),
    /// An organisation index beyond the deployed clients.
    #[error("organisation {org} does not exist ({count} deployed)")]
    UnknownOrganisation {
        /// The index.
        org: usize,
        /// Number of clients.
        count: usize,
    },
    /// The collection's count or length does not match the task.
    #[error("inconsistent release: {0}")]
    Inconsistent(String),
}

impl From<CairnSumError> for SecureSumError {
    fn from(e: CairnSumError) -> Self {
        SecureSumError::Backend(Box::new(e))
    }
}

/// The network parts, torn down together (inside the runtime) on shutdown.
struct Live {
    clients: Vec<Client>,
    collector: Collector,
    nodes: Vec<RunningNode>,
}

/// A [`SecureSum`] backed by a leader and a helper Cairn node on loopback.
pub struct CairnSum {
    live: Option<Live>,
    task: TaskConfig,
    noise: CairnNoise,
    dimension: usize,
    submitted: BTreeSet<(u32, usize)>,
    collected: BTreeSet<u32>,
    runtime: tokio::runtime::Runtime,
    // Last: the folder outlives the nodes that use it.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for CairnSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CairnSum")
            .field("dimension", &self.dimension)
            .field("noise", &self.noise)
            .field("dir", &self.dir.path())
            .field("running", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl CairnSum {
    /// The task a deployment of `config` runs, with the σ and fixed-point scale it
    /// calibrates, without starting its nodes (the deployment is written to a temporary
    /// folder and removed).
    pub fn calibrated_task<R: CryptoRng + ?Sized>(
        config: &CairnSumConfig,
        rng: &mut R,
    ) -> Result<TaskConfig, CairnSumError> {
        Ok(Self::deploy(config, rng)?.2)
    }

    /// Writes a deployment for `config` (keys drawn from `rng`) into a temporary folder
    /// and starts its two nodes on free loopback ports.
    pub fn start<R: CryptoRng + ?Sized>(
        config: &CairnSumConfig,
        rng: &mut R,
    ) -> Result<Self, CairnSumError> {
        let (dir, deployment, task) = Self::deploy(config, rng)?;
        let hpke_key =
            read_secret_hex(&deployment.collector_dir.join("hpke.key")).map_err(deploy)?;
        let identity = Identity::read_pem_files(
            &deployment.collector_dir.join("cert.pem"),
            &deployment.collector_dir.join("key.pem"),
        )
        .map_err(|e| CairnSumError::Deploy(e.to_string()))?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(CairnSumError::Runtime)?;
        let live = runtime.block_on(async {
            let mut nodes = Vec::with_capacity(deployment.nodes.len());
            for node in &deployment.nodes {
                let setup = NodeSetup::load(node).map_err(deploy)?;
                nodes.push(start(setup).await.map_err(deploy)?);
            }
            let mut clients = Vec::with_capacity(config.organisations);
            for path in &deployment.credentials {
                let credential = cairn_client::sdk::read_credential(path)?;
                clients.push(
                    Client::builder(task.clone())
                        .credential(credential)
                        .build()
                        .await?,
                );
            }
            let collector = Collector::builder(task.clone())
                .hpke_key(HpkeSecretKey::from_bytes(hpke_key))
                .identity(identity)
                .build()
                .await?;
            Ok::<_, CairnSumError>(Live {
                clients,
                collector,
                nodes,
            })
        })?;
        Ok(Self {
            live: Some(live),
            task,
            noise: config.noise,
            dimension: config.dimension,
            submitted: BTreeSet::new(),
            collected: BTreeSet::new(),
            runtime,
            dir,
        })
    }

    /// Writes a deployment for `config` into a temporary folder: the folder, what
    /// `init` wrote and the task it wrote.
    fn deploy<R: CryptoRng + ?Sized>(
        config: &CairnSumConfig,
        rng: &mut R,
    ) -> Result<(tempfile::TempDir, Deployment, TaskConfig), CairnSumError> {
        let dimension = u32::try_from(config.dimension)
            .ok()
            .filter(|d| *d > 0)
            .ok_or_else(|| CairnSumError::Config("dimension must be in 1..2^32".into()))?;
        let organisations = u32::try_from(config.organisations)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| CairnSumError::Config("need at least one organisation".into()))?;
        if !(config.clip_norm.is_finite() && config.clip_norm > 0.0) {
            return Err(CairnSumError::Config(
                "clip norm must be finite and > 0".into(),
            ));
        }
        let host = std::net::IpAddr::from([127, 0, 0, 1]);
        let (noise, epsilon, delta, rounds, record_level) = match config.noise {
            CairnNoise::None => (NoisePlacement::None, 1.0, 1e-6, 1, None),
            CairnNoise::Aggregator {
                epsilon,
                delta,
                rounds,
            } => (NoisePlacement::Aggregator, epsilon, delta, rounds, None),
            CairnNoise::Records {
                epsilon,
                delta,
                rounds,
                sampling_rate,
                max_records,
                client_noise,
            } => (
                if client_noise {
                    NoisePlacement::Client
                } else {
                    NoisePlacement::Aggregator
                },
                epsilon,
                delta,
                rounds,
                Some((sampling_rate, max_records)),
            ),
        };
        // Record level with aggregator noise: one report makes a round. Otherwise every
        // organisation's report (with client noise, `init` makes this the number of
        // honest clients the noise is calibrated for).
        let min_clients = if record_level.is_some() && noise == NoisePlacement::Aggregator {
            1
        } else {
            organisations
        };
        let params = InitParams {
            aggregators: 2,
            dimension,
            clip: config.clip_norm,
            epsilon,
            delta,
            rounds,
            noise,
            min_clients,
            max_clients: organisations,
            clients: organisations,
            record_level,
            base_port: free_base_port(host, 2).map_err(deploy)?,
            host,
            name: config.name.clone(),
        };
        let dir = tempfile::Builder::new()
            .prefix("cairn-example-")
            .tempdir()?;
        let deployment = init(&dir.path().join("deploy"), &params, rng).map_err(deploy)?;
        let task = TaskConfig::from_toml(&std::fs::read_to_string(&deployment.task)?)?;
        Ok((dir, deployment, task))
    }

    /// The task the nodes run (fixed-point precision, norm bound, σ, budget).
    pub fn task(&self) -> &TaskConfig {
        &self.task
    }

    /// Stops the nodes (also done on drop).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(live) = self.live.take() {
            let _guard = self.runtime.enter();
            let Live {
                clients,
                collector,
                nodes,
            } = live;
            drop(clients);
            drop(collector);
            self.runtime.block_on(async {
                for node in nodes {
                    node.shutdown(SHUTDOWN_GRACE).await;
                }
            });
        }
    }

    /// Organisation `org`'s client, after the checks every submission shares: finite
    /// values, the round still open, no earlier submission of `org` to it.
    fn client_for(
        &self,
        org: usize,
        round: u32,
        values: &[f32],
    ) -> Result<&cairn_client::sdk::Client, SecureSumError> {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(SecureSumError::NonFinite { index });
        }
        if self.collected.contains(&round) {
            return Err(SecureSumError::RoundClosed(round));
        }
        if self.submitted.contains(&(round, org)) {
            return Err(SecureSumError::Duplicate { org, round });
        }
        let live = self.live()?;
        Ok(live
            .clients
            .get(org)
            .ok_or(CairnSumError::UnknownOrganisation {
                org,
                count: live.clients.len(),
            })?)
    }

    fn live(&self) -> Result<&Live, CairnSumError> {
        self.live
            .as_ref()
            .ok_or_else(|| CairnSumError::Deploy("the nodes were shut down".into()))
    }
}

impl Drop for CairnSum {
    fn drop(&mut self) {
        self.stop();
    }
}

fn deploy(e: anyhow::Error) -> CairnSumError {
    CairnSumError::Deploy(format!("{e:#}"))
}

impl SecureSum for CairnSum {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError> {
        crate::secure_sum::check_update(self.dimension, update)?;
        let client = self.client_for(org, round, update)?;
        self.runtime
            .block_on(client.submit(round, update))
            .map_err(CairnSumError::from)?;
        self.submitted.insert((round, org));
        Ok(())
    }

    /// Through the SDK's record path: each record is clipped to the task's `C` (which
    /// is `clip_norm` when the task was deployed with it) and summed by the client.
    fn submit_records(
        &mut self,
        org: usize,
        round: u32,
        records: &[f32],
        _clip_norm: f64,
    ) -> Result<(), SecureSumError> {
        if !matches!(self.noise, CairnNoise::Records { .. }) {
            return Err(CairnSumError::Inconsistent(
                "submit_records needs a record-level task (CairnNoise::Records)".into(),
            )
            .into());
        }
        let client = self.client_for(org, round, records)?;
        self.runtime
            .block_on(client.submit_records(round, records))
            .map_err(CairnSumError::from)?;
        self.submitted.insert((round, org));
        Ok(())
    }

    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError> {
        if self.collected.contains(&round) {
            return Err(SecureSumError::RoundClosed(round));
        }
        if !self.submitted.iter().any(|(r, _)| *r == round) {
            return Err(SecureSumError::NoReports(round));
        }
        let live = self.live()?;
        let collection = match self.runtime.block_on(live.collector.collect(round)) {
            Ok(c) => c,
            Err(SdkError::Refused {
                code: ErrorCode::BudgetExceeded,
                ..
            }) => return Err(CairnSumError::BudgetExceeded { round }.into()),
            Err(e) => return Err(CairnSumError::from(e).into()),
        };
        if collection.sum.len() != self.dimension || collection.round != round {
            return Err(CairnSumError::Inconsistent(format!(
                "round {} with {} coordinates released for round {round}",
                collection.round,
                collection.sum.len()
            ))
            .into());
        }
        let epsilon_spent = match self.noise {
            CairnNoise::None => None,
            CairnNoise::Aggregator { .. } | CairnNoise::Records { .. } => Some(
                collection
                    .receipt()
                    .ok_or_else(|| CairnSumError::Inconsistent("no budget receipt".into()))?
                    .epsilon_total,
            ),
        };
        self.collected.insert(round);
        self.submitted.retain(|(r, _)| *r != round);
        Ok(Aggregate {
            sum: collection.sum,
            count: collection.count as usize,
            epsilon_spent,
        })
    }
}
