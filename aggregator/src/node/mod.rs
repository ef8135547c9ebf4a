//! The aggregator node: the protocol's state machines behind QUIC endpoints.
//!
//! A node loads its configuration, the task, its keys and its SQLite store, binds a
//! QUIC endpoint and serves requests until told to stop. It only moves messages: every
//! protocol decision is made by [`cairn_protocol::leader::Leader`] or
//! [`cairn_protocol::helper::Helper`], whose state sits behind a mutex and whose
//! durable effects go through the store before any answer leaves.
//!
//! * **Leader.** Accepts uploads from anonymous clients (they prove themselves with the
//!   task's token inside the upload) and collect requests from the collector's pinned
//!   certificate. A background driver batches stored reports into aggregation jobs and
//!   runs them with the helpers over mutual TLS; after a restart it first resumes the
//!   jobs the store says are unfinished.
//! * **Helper.** Accepts only the leader's pinned certificate (mutual TLS; the
//!   collector's certificate is pinned too, for its own requests) and answers job and
//!   aggregate-share requests.
//!
//! CPU-heavy protocol steps (proof verification) run on tokio's blocking pool so the
//! network tasks stay responsive.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cairn_mpc::secret::Seed;
use cairn_protocol::aggregator::Reject;
use cairn_protocol::clock::{Clock, Time};
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver, Transmit};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::keyring::{HpkeKeyring, KeyState};
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{CollectRequest, ErrorCode, ErrorMessage, Inbound, Limits, Message};
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::store::{CommitOutcome, TaskStore};
use cairn_protocol::task::Task;
use cairn_transport::{
    ClientAuth, ClientEndpoint, Identity, Peer, PeerIdentity, PinSet, ServerEndpoint,
    TransportOptions,
};
use zeroize::Zeroizing;

use crate::metrics::{MetricsEndpoint, NodeMetrics};
use crate::node_config::{NodeConfig, NodeRole};
use crate::store::NodeStore;

mod drive;
mod helper;
mod leader;

/// The system clock, read only here (the protocol receives it injected).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        Time(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }
}

/// How often the leader's driver looks for queued reports.
const DRIVER_INTERVAL: Duration = Duration::from_millis(50);
/// Aggregation jobs a leader drives at once: while the helpers verify one job's
/// reports, the leader prepares the next one's.
const JOBS_IN_FLIGHT: usize = 2;
/// How long a collect request waits for the round's jobs to finish.
const COLLECT_WAIT: Duration = cairn_protocol::driver::COLLECT_PATIENCE;

/// Everything a node needs, loaded from its files.
pub struct NodeSetup {
    /// The configuration.
    pub config: NodeConfig,
    /// The task.
    pub task: TaskConfig,
    /// The node's TLS identity.
    pub identity: Identity,
    /// The task's verify key (secret).
    pub verify_key: Seed,
    /// The node's HPKE keys: the active one, and any pending or expired ones.
    pub keyring: HpkeKeyring,
}

impl NodeSetup {
    /// Loads and cross-checks the configuration, the task and the keys.
    pub fn load(config_path: &Path) -> anyhow::Result<Self> {
        let config = NodeConfig::load(config_path)?;
        let task_text = std::fs::read_to_string(&config.task)
            .with_context(|| format!("reading the task file {}", config.task.display()))?;
        let task = TaskConfig::from_toml(&task_text)
            .with_context(|| format!("loading the task file {}", config.task.display()))?;
        let identity = Identity::read_pem_files(&config.tls_cert, &config.tls_key)
            .with_context(|| format!("loading the TLS identity {}", config.tls_cert.display()))?;
        let verify_key = read_secret_hex(&config.verify_key)
            .map(Seed::from_bytes)
            .with_context(|| format!("loading the verify key {}", config.verify_key.display()))?;
        let keyring = load_keyring(&config)?;
        let index = usize::from(config.index);
        let Some(pinned) = task.aggregator_fingerprint(index) else {
            bail!("node index {index} is not in the task's aggregator list");
        };
        if identity.fingerprint() != pinned {
            bail!("this node's certificate is not the one the task pins for aggregator {index}");
        }
        if task.aggregator_hpke_key(index) != Some(&keyring.active_public_key()) {
            let stale = keyring
                .keys()
                .find(|(pk, _)| Some(pk) == task.aggregator_hpke_key(index));
            if let Some((_, state)) = stale {
                bail!(
                    "the task file names this node's {} HPKE key for aggregator {index}, \
                     not its active one (hpke_key): after a rotation, the task file and \
                     hpke_key change together",
                    state.as_str()
                );
            }
            bail!("this node's HPKE key does not match the task's key for aggregator {index}");
        }
        Ok(Self {
            config,
            task,
            identity,
            verify_key,
            keyring,
        })
    }
}

/// The node's HPKE keys: `hpke_key` active, the listed others pending or expired.
fn load_keyring(config: &NodeConfig) -> anyhow::Result<HpkeKeyring> {
    let read = |path: &Path| {
        read_secret_hex(path)
            .map(HpkeSecretKey::from_bytes)
            .with_context(|| format!("loading the HPKE key {}", path.display()))
    };
    let mut ring = HpkeKeyring::new(read(&config.hpke_key)?);
    let others = (config
        .hpke_pending_keys
        .iter()
        .map(|p| (p, KeyState::Pending)))
    .chain(
        config
            .hpke_expired_keys
            .iter()
            .map(|p| (p, KeyState::Expired)),
    );
    for (path, state) in others {
        ring = ring
            .with(read(path)?, state)
            .with_context(|| format!("adding the HPKE key {}", path.display()))?;
    }
    Ok(ring)
}

/// Reads a 32-byte secret written as 64 hex digits.
pub fn read_secret_hex(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).context("expected 64 hex digits")?;
    Ok(bytes)
}

/// Transport options for a task: frames no larger than what the peers of `inbound` may
/// send under the task's limits.
pub fn transport_options(limits: &Limits, inbound: Inbound) -> TransportOptions {
    TransportOptions {
        max_frame_len: limits.max_inbound_frame_len(inbound),
        ..TransportOptions::default()
    }
}

/// A running node.
pub struct RunningNode {
    /// The address it listens on.
    pub local_addr: SocketAddr,
    /// The metrics and health endpoint's address, if `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// The node's counters (also served on `metrics_addr`).
    pub metrics: Arc<NodeMetrics>,
    server: ServerEndpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    metrics_endpoint: Option<MetricsEndpoint>,
}

impl RunningNode {
    /// Graceful shutdown: stop accepting, let requests in flight finish (up to
    /// `grace`), stop the driver.
    pub async fn shutdown(self, grace: Duration) {
        self.server.shutdown(grace).await;
        for t in self.tasks {
            t.abort();
        }
        // Stops the metrics thread (joins it off the async workers).
        if let Some(endpoint) = self.metrics_endpoint {
            let _ = tokio::task::spawn_blocking(move || drop(endpoint)).await;
        }
    }
}

/// The node's database file: `cairn.sqlite` in its data folder.
pub fn database_path(config: &NodeConfig) -> std::path::PathBuf {
    config.data_dir.join("cairn.sqlite")
}

/// Refuses a database that already holds another task's privacy ledger. Store rows
/// are keyed by task id, so serving a new id there would start a fresh, empty budget
/// beside the spent one: after an edit of the task file that changed its id, or an
/// upgrade of Cairn that changed how ids are derived. A new task gets its own
/// `data_dir` or database.
fn refuse_another_tasks_ledger(store: &NodeStore, task: &TaskConfig) -> anyhow::Result<()> {
    let others = store
        .other_ledger_tasks()
        .context("reading the ledger's tasks")?;
    if let Some(other) = others.first() {
        bail!(
            "this node's database holds the privacy ledger of task {other}, but the task \
             file is task {}: serving it here would start a fresh budget beside the spent \
             one. Restore the task file that ledger belongs to; a new task (other \
             parameters, or a Cairn release that derives task ids differently) needs its \
             own data_dir or database",
            task.id().to_hex()
        );
    }
    Ok(())
}

/// Starts the node described by `setup`; returns once it listens.
pub async fn start(setup: NodeSetup) -> anyhow::Result<RunningNode> {
    let store = NodeStore::open(&setup.config, &setup.task)?;
    refuse_another_tasks_ledger(&store, &setup.task)?;
    let metrics = Arc::new(NodeMetrics::new());
    if let NodeStore::Postgres(pg) = &store {
        metrics.watch_counter(
            "store_transaction_retries",
            "PostgreSQL transactions retried after a serialization failure or deadlock",
            pg.transaction_retries(),
        );
    }
    let task_hex = setup.task.id().to_hex();
    // The task's scheme and privacy model, built once for the whole node.
    let loaded = Task::new(setup.task.clone())
        .map_err(|e| anyhow::anyhow!("the task does not load: {e}"))?;
    let privacy = loaded.privacy();
    let ledger = cairn_protocol::ledger::Ledger::from_entries_with(
        setup.task.id(),
        &privacy.ledger_budget(),
        store.ledger().context("reading the ledger")?,
    )
    .map_err(|e| anyhow::anyhow!("the ledger does not verify: {e}"))?;
    let epsilon_spent = match ledger.rdp_epsilon_spent() {
        Some((eps, _)) => eps,
        None => privacy.epsilon_of_rho(ledger.rho_spent()),
    };
    metrics.set_epsilon_remaining(
        &task_hex,
        (privacy.epsilon_budget() - epsilon_spent).max(0.0),
    );
    let metrics_endpoint = setup
        .config
        .metrics_listen
        .map(|addr| {
            let probe = store.clone();
            let health: crate::metrics::HealthCheck = Arc::new(move || {
                if probe.is_reachable() {
                    Ok(())
                } else {
                    Err("the database does not answer".into())
                }
            });
            MetricsEndpoint::start(addr, Arc::clone(&metrics), health)
        })
        .transpose()?;
    let mut node = match setup.config.role {
        NodeRole::Leader => {
            leader::start_leader(setup, loaded, store, Arc::clone(&metrics)).await?
        }
        NodeRole::Helper => {
            helper::start_helper(setup, loaded, store, Arc::clone(&metrics)).await?
        }
    };
    node.metrics_addr = metrics_endpoint.as_ref().map(MetricsEndpoint::local_addr);
    if let Some(addr) = node.metrics_addr {
        tracing::info!(%addr, "metrics on http://{addr}/metrics, health on /health");
    }
    node.metrics_endpoint = metrics_endpoint;
    Ok(node)
}

/// Runs a node until `shutdown` resolves (e.g. SIGINT/SIGTERM).
pub async fn run_until(setup: NodeSetup, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let node = start(setup).await?;
    tracing::info!(addr = %node.local_addr, "node listening");
    shutdown.await;
    tracing::info!("shutting down");
    node.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// What a peer is told of an internal error: that it may retry, nothing more.
pub(crate) const INTERNAL_DETAIL: &str =
    "internal error at this aggregator; retry later (the aggregator's log has why)";

/// A rejection as the peer receives it. An internal error's detail stays in this
/// node's log: a store's errors name files and folders, and a file's name begins with
/// its report's id, which must reach no one but the report's client (a client that
/// learnt another's id could upload under it first, and the owner's retry would be
/// refused as a replay).
fn reject_to_message(e: Reject) -> Vec<u8> {
    let detail = if e.code == ErrorCode::Internal {
        tracing::warn!(detail = %e.detail, "answering an internal error");
        INTERNAL_DETAIL.to_owned()
    } else {
        e.detail
    };
    Message::Error(ErrorMessage::new(e.code, detail)).encode()
}

fn error_message(code: ErrorCode, detail: &str) -> Vec<u8> {
    reject_to_message(Reject::new(code, detail))
}

/// A CSPRNG from the OS, or a retriable internal error.
fn os_rng() -> Result<rand_chacha::ChaCha20Rng, Reject> {
    cairn_client::os_rng().map_err(|e| Reject::new(ErrorCode::Internal, e.to_string()))
}

/// Runs `f` on a node's state machine, on the blocking pool; the lock is held only
/// there, never across network waits.
///
/// A step waits for the lock here, as a task, and takes a thread only once it holds
/// it. Were the wait on a thread instead, every request in flight would hold a blocked
/// thread of tokio's pool (dozens at a time on a loaded leader), starving the node's
/// other blocking work, and each thread's allocator would keep the memory of the steps
/// it ran: that more than doubled the leader's peak RSS in a 1,000-client round.
/// A step that panicked left no partial state behind (every store operation is one
/// transaction), so the state machine stays usable after it.
async fn blocking_locked<S: Send + 'static, T: Send + 'static>(
    state: &Arc<tokio::sync::Mutex<S>>,
    f: impl FnOnce(&mut S) -> T + Send + 'static,
) -> Result<T, Reject> {
    let mut guard = Arc::clone(state).lock_owned().await;
    blocking(move || f(&mut guard)).await
}

/// Runs a blocking protocol step on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Reject> {
    tokio::task::spawn_blocking(move || crate::store::postgres::on_blocking_thread(f))
        .await
        .map_err(|e| Reject::new(ErrorCode::Internal, format!("worker failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps queued behind a long one wait as tasks: the blocking pool keeps a thread
    /// for the node's other work (with the wait on a thread, they filled the pool).
    #[test]
    fn steps_waiting_for_the_state_machine_hold_no_thread() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let state = Arc::new(tokio::sync::Mutex::new(0u32));
            let (release, released) = std::sync::mpsc::channel::<()>();
            let (holding, held) = tokio::sync::oneshot::channel();
            let first = tokio::spawn({
                let state = Arc::clone(&state);
                async move {
                    blocking_locked(&state, move |n| {
                        holding.send(()).unwrap();
                        released.recv().unwrap();
                        *n += 1;
                    })
                    .await
                }
            });
            held.await.unwrap();
            let waiting: Vec<_> = (0..8)
                .map(|_| {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move { blocking_locked(&state, |n| *n += 1).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let other = tokio::time::timeout(Duration::from_secs(5), blocking(|| 7)).await;
            assert_eq!(
                other
                    .expect("other blocking work starved by steps waiting for the lock")
                    .unwrap(),
                7
            );
            release.send(()).unwrap();
            first.await.unwrap().unwrap();
            for w in waiting {
                w.await.unwrap().unwrap();
            }
            assert_eq!(*state.lock().await, 9, "every step ran, once");
        });
    }

    fn limits() -> Limits {
        Limits {
            public_share: 8,
            leader_share: 8,
            helper_share: 8,
            helpers: 1,
            reports_per_job: 1,
            verifier_share: 8,
            aggregate_share: 8,
        }
    }

    /// A store error's detail (here, a report file's path, which begins with the
    /// report's id) never reaches the peer; the code does, so it still retries.
    #[test]
    fn an_internal_error_goes_out_without_its_detail() {
        let detail = "report file /srv/cairn/leader.sqlite.reports/a1a1a1a1-0001: No space left";
        let bytes = reject_to_message(Reject::storage(detail));
        match Message::decode(&bytes, &limits()).unwrap() {
            Message::Error(e) => {
                assert_eq!(e.code, ErrorCode::Internal);
                assert_eq!(e.detail, INTERNAL_DETAIL);
                assert!(!e.detail.contains("a1a1") && !e.detail.contains("/srv"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reject_goes_out_as_an_error_message_with_its_code_and_detail() {
        let bytes = reject_to_message(Reject::new(ErrorCode::BudgetExceeded, "spent"));
        match Message::decode(&bytes, &limits()).unwrap() {
            Message::Error(e) => {
                assert_eq!(e.code, ErrorCode::BudgetExceeded);
                assert_eq!(e.detail, "spent");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_system_clock_reads_the_present() {
        // 2024-01-01 and 2200-01-01, in Unix seconds.
        let now = SystemClock.now().0;
        assert!((1_704_067_200..7_258_118_400).contains(&now), "{now}");
    }
}
