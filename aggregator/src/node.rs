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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use cairn_mpc::secret::Seed;
use cairn_protocol::aggregator::Reject;
use cairn_protocol::clock::{Clock, Time};
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver, Transmit};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{CollectRequest, ErrorCode, ErrorMessage, Inbound, Limits, Message};
use cairn_protocol::privacy::Privacy;
use cairn_protocol::store::{CommitOutcome, TaskStore};
use cairn_transport::{
    ClientAuth, ClientEndpoint, Identity, Peer, PeerIdentity, PinSet, ServerEndpoint,
    TransportOptions,
};
use zeroize::Zeroizing;

use crate::metrics::{MetricsEndpoint, NodeMetrics};
use crate::node_config::{NodeConfig, NodeRole};
use crate::store::{SqliteStore, SqliteTaskStore};

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
/// How long a collect request waits for the round's jobs to finish.
const COLLECT_WAIT: Duration = Duration::from_secs(60);

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
    /// The node's HPKE secret key.
    pub hpke_key: HpkeSecretKey,
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
        let hpke_key = read_secret_hex(&config.hpke_key)
            .map(HpkeSecretKey::from_bytes)
            .with_context(|| format!("loading the HPKE key {}", config.hpke_key.display()))?;
        let index = usize::from(config.index);
        let Some(pinned) = task.aggregator_fingerprint(index) else {
            bail!("node index {index} is not in the task's aggregator list");
        };
        if identity.fingerprint() != pinned {
            bail!("this node's certificate is not the one the task pins for aggregator {index}");
        }
        if task.aggregator_hpke_key(index) != Some(&hpke_key.public_key()) {
            bail!("this node's HPKE key does not match the task's key for aggregator {index}");
        }
        Ok(Self {
            config,
            task,
            identity,
            verify_key,
            hpke_key,
        })
    }
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

/// Starts the node described by `setup`; returns once it listens.
pub async fn start(setup: NodeSetup) -> anyhow::Result<RunningNode> {
    let db_path = database_path(&setup.config);
    std::fs::create_dir_all(&setup.config.data_dir)
        .with_context(|| format!("creating {}", setup.config.data_dir.display()))?;
    let db =
        SqliteStore::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?;
    let store = db.task(setup.task.id(), setup.task.dimension());
    let metrics = Arc::new(NodeMetrics::new());
    let task_hex = setup.task.id().to_hex();
    let privacy = Privacy::for_task(&setup.task)
        .map_err(|e| anyhow::anyhow!("the task's privacy settings: {e}"))?;
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
        .map(|addr| MetricsEndpoint::start(addr, Arc::clone(&metrics)))
        .transpose()?;
    let mut node = match setup.config.role {
        NodeRole::Leader => start_leader(setup, store, Arc::clone(&metrics)).await?,
        NodeRole::Helper => start_helper(setup, store, Arc::clone(&metrics)).await?,
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

fn reject_to_message(e: Reject) -> Vec<u8> {
    Message::Error(ErrorMessage {
        code: e.code,
        detail: e.detail,
    })
    .encode()
}

fn error_message(code: ErrorCode, detail: &str) -> Vec<u8> {
    reject_to_message(Reject::new(code, detail))
}

/// A CSPRNG from the OS, or a retriable internal error.
fn os_rng() -> Result<rand_chacha::ChaCha20Rng, Reject> {
    cairn_client::os_rng().map_err(|e| Reject::new(ErrorCode::Internal, e.to_string()))
}

/// Runs a blocking protocol step on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Reject> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Reject::new(ErrorCode::Internal, format!("worker failed: {e}")))
}

/// Runs `f` on the leader's state machine, on the blocking pool (the lock is held only
/// there, never across network waits).
async fn with_leader<T: Send + 'static>(
    shared: &Arc<LeaderShared>,
    f: impl FnOnce(&mut Leader<SqliteTaskStore>) -> Result<T, Reject> + Send + 'static,
) -> Result<T, Reject> {
    let s = Arc::clone(shared);
    blocking(move || f(&mut s.lock_leader())).await?
}

// ---------------------------------------------------------------------------------
// Helper

async fn start_helper(
    setup: NodeSetup,
    store: SqliteTaskStore,
    metrics: Arc<NodeMetrics>,
) -> anyhow::Result<RunningNode> {
    let NodeSetup {
        config,
        task,
        identity,
        verify_key,
        hpke_key,
    } = setup;
    let leader_fp = *task
        .aggregator_fingerprint(0)
        .context("the task has no leader")?;
    let mut pins = PinSet::new();
    pins.insert(leader_fp);
    pins.insert(config.collector_cert_sha256);
    let task_id_hex = task.id().to_hex();
    let helper = Helper::new(task, config.index, verify_key, hpke_key, store)
        .map_err(|e| anyhow::anyhow!("loading the task state: {e}"))?;
    let limits = helper.limits();
    let server = ServerEndpoint::bind(
        config.listen,
        &identity,
        &ClientAuth::Required(pins),
        transport_options(&limits, Inbound::HelperFromLeader),
    )?;
    let local_addr = server.local_addr()?;
    let state = Arc::new(Mutex::new(helper));
    let clock = SystemClock;
    let serve_server = server.clone();
    let task_hex = Arc::new(task_id_hex);
    let node_metrics = Arc::clone(&metrics);
    let task = tokio::spawn(async move {
        serve_server
            .serve(move |peer, bytes| {
                let state = Arc::clone(&state);
                let metrics = Arc::clone(&node_metrics);
                let task_hex = Arc::clone(&task_hex);
                async move {
                    if peer.fingerprint() != Some(&leader_fp) {
                        return error_message(
                            ErrorCode::Unauthorized,
                            "helpers answer only the leader",
                        );
                    }
                    let msg = match Message::decode(&bytes, &limits) {
                        Ok(m) => m,
                        Err(e) => {
                            return error_message(ErrorCode::for_decode_error(&e), &e.to_string());
                        }
                    };
                    let now = clock.now();
                    let answer = blocking(move || {
                        let mut helper = state.lock().unwrap_or_else(|e| e.into_inner());
                        helper.handle_message(msg, now, &mut os_rng()?)
                    })
                    .await;
                    match answer {
                        Ok(Ok(m)) => {
                            if let Message::AggregateShareResponse(r) = &m {
                                metrics.round_released(r.round);
                                metrics.set_epsilon_remaining(
                                    &task_hex,
                                    r.share.receipt.epsilon_remaining,
                                );
                            }
                            m.encode()
                        }
                        Ok(Err(e)) | Err(e) => {
                            tracing::info!(code = %e.code, detail = %e.detail, "request refused");
                            reject_to_message(e)
                        }
                    }
                }
            })
            .await;
    });
    Ok(RunningNode {
        local_addr,
        metrics_addr: None,
        metrics,
        server,
        tasks: vec![task],
        metrics_endpoint: None,
    })
}

// ---------------------------------------------------------------------------------
// Leader

/// The leader's shared state: the state machine and the connections to helpers.
struct LeaderShared {
    leader: Mutex<Leader<SqliteTaskStore>>,
    helpers: Vec<Peer>,
    limits: Limits,
    /// Serialises job runs (the driver and a collect request's flush).
    jobs: tokio::sync::Mutex<()>,
    /// The node's counters.
    metrics: Arc<NodeMetrics>,
    /// The task id, hex (the ε gauge's label).
    task_hex: String,
}

impl LeaderShared {
    /// The leader's state machine. A poisoned lock is safe to reuse: every store
    /// operation is one transaction, so a panic mid-step left no partial state behind.
    fn lock_leader(&self) -> std::sync::MutexGuard<'_, Leader<SqliteTaskStore>> {
        self.leader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn start_leader(
    setup: NodeSetup,
    store: SqliteTaskStore,
    metrics: Arc<NodeMetrics>,
) -> anyhow::Result<RunningNode> {
    let NodeSetup {
        config,
        task,
        identity,
        verify_key,
        hpke_key: _,
    } = setup;
    let collector_fp = config.collector_cert_sha256;
    let leader = Leader::new(task.clone(), verify_key, store)
        .map_err(|e| anyhow::anyhow!("loading the task state: {e}"))?;
    let limits = leader.limits();
    let options = transport_options(&limits, Inbound::LeaderFromClients);
    let mut pins = PinSet::new();
    pins.insert(collector_fp);
    let server = ServerEndpoint::bind(
        config.listen,
        &identity,
        &ClientAuth::Optional(pins),
        options,
    )?;
    let local_addr = server.local_addr()?;
    let client = ClientEndpoint::bind(
        unspecified_for(config.listen),
        Some(&identity),
        transport_options(&limits, Inbound::LeaderFromHelpers),
    )?;
    let helpers = task
        .aggregators()
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| {
            let fp = *task.aggregator_fingerprint(i).unwrap_or(&[0; 32]);
            Peer::new(client.clone(), a.endpoint, fp)
        })
        .collect();
    let shared = Arc::new(LeaderShared {
        leader: Mutex::new(leader),
        helpers,
        limits,
        jobs: tokio::sync::Mutex::new(()),
        metrics: Arc::clone(&metrics),
        task_hex: task.id().to_hex(),
    });

    let driver_shared = Arc::clone(&shared);
    let driver = tokio::spawn(async move {
        loop {
            // Jobs recorded but not committed (after a restart, or whose helper was
            // unreachable) first, then new ones.
            let outcome = match resume_jobs(&driver_shared).await {
                Ok(()) => run_queued_jobs(&driver_shared).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(code = %e.code, detail = %e.detail, "aggregation job failed; will retry");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(DRIVER_INTERVAL).await;
        }
    });

    let serve_server = server.clone();
    let serve_shared = Arc::clone(&shared);
    let serve = tokio::spawn(async move {
        serve_server
            .serve(move |peer, bytes| {
                let shared = Arc::clone(&serve_shared);
                async move { handle_leader_request(&shared, peer, collector_fp, bytes).await }
            })
            .await;
    });
    Ok(RunningNode {
        local_addr,
        metrics_addr: None,
        metrics,
        server,
        tasks: vec![driver, serve],
        metrics_endpoint: None,
    })
}

fn unspecified_for(listen: SocketAddr) -> SocketAddr {
    match listen {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

async fn handle_leader_request(
    shared: &Arc<LeaderShared>,
    peer: PeerIdentity,
    collector_fp: [u8; 32],
    bytes: Vec<u8>,
) -> Vec<u8> {
    let msg = match Message::decode(&bytes, &shared.limits) {
        Ok(m) => m,
        Err(e) => {
            let code = ErrorCode::for_decode_error(&e);
            shared.metrics.report_rejected(code);
            tracing::info!(reason = %code, "report rejected: does not decode");
            return error_message(code, &e.to_string());
        }
    };
    let now = SystemClock.now();
    match msg {
        Message::UploadRequest(req) => {
            let report_id = req.report.report_id;
            let round = req.report.round;
            let shared = Arc::clone(shared);
            let outcome = with_leader(&shared, move |leader| leader.handle_upload(req, now)).await;
            // Only an authenticated report counts as received, and only an accepted one
            // names its round: nobody can grow the per-round metrics with made-up rounds.
            match &outcome {
                Ok(_) => shared.metrics.report_received(Some(round)),
                Err(e) if !matches!(e.code, ErrorCode::Unauthorized | ErrorCode::UnknownTask) => {
                    shared.metrics.report_received(None)
                }
                Err(_) => {}
            }
            match outcome {
                Ok(ack) => Message::UploadResponse(ack).encode(),
                Err(e) => {
                    shared.metrics.report_rejected(e.code);
                    tracing::info!(report = %report_id, reason = %e.code, detail = %e.detail, "report rejected");
                    reject_to_message(e)
                }
            }
        }
        Message::CollectRequest(req) => {
            if peer.fingerprint() != Some(&collector_fp) {
                return error_message(
                    ErrorCode::Unauthorized,
                    "only the task's collector may collect",
                );
            }
            match collect(shared, req, now).await {
                Ok(m) => {
                    if let Message::CollectResponse(r) = &m {
                        shared.metrics.round_released(r.round);
                        if let Some(own) = r.shares.first() {
                            shared.metrics.set_epsilon_remaining(
                                &shared.task_hex,
                                own.receipt.epsilon_remaining,
                            );
                        }
                    }
                    m.encode()
                }
                Err(e) => {
                    tracing::info!(code = %e.code, detail = %e.detail, "collect refused");
                    reject_to_message(e)
                }
            }
        }
        other => error_message(
            ErrorCode::BadMessage,
            &format!("the leader does not take {}", other.name()),
        ),
    }
}

/// Sends a driver's request to its helper and decodes the answer; a transport failure
/// is a retriable [`ErrorCode::Busy`] reject (the job or release is retried later).
async fn send(shared: &LeaderShared, t: &Transmit) -> Result<Message, Reject> {
    let peer = shared
        .helpers
        .get(t.helper)
        .ok_or_else(|| Reject::new(ErrorCode::Internal, "no such helper"))?;
    let answer = peer
        .request(&t.message.encode())
        .await
        .map_err(|e| Reject::new(ErrorCode::Busy, e.to_string()))?;
    Message::decode(&answer, &shared.limits)
        .map_err(|e| Reject::new(ErrorCode::BadMessage, format!("undecodable answer: {e}")))
}

/// Moves one job's messages until the driver has committed it or failed.
async fn drive_job(shared: &Arc<LeaderShared>, mut driver: JobDriver) -> Result<(), Reject> {
    while let Some(t) = driver.poll_transmit() {
        let answer = send(shared, &t).await;
        driver = with_leader(shared, move |leader| {
            driver.handle_answer(leader, answer)?;
            Ok(driver)
        })
        .await?;
    }
    for r in driver.take_rejections() {
        shared.metrics.report_rejected(r.code);
        tracing::info!(report = %r.report_id, reason = %r.code, "report rejected");
    }
    if let Some(outcome) = driver.outcome()
        && outcome.commit == CommitOutcome::Applied
    {
        shared
            .metrics
            .reports_accepted(u64::try_from(outcome.accepted).unwrap_or(u64::MAX));
    }
    Ok(())
}

/// Re-runs the jobs the store recorded before a restart.
async fn resume_jobs(shared: &Arc<LeaderShared>) -> Result<(), Reject> {
    let _guard = shared.jobs.lock().await;
    for driver in with_leader(shared, JobDriver::resume_all).await? {
        tracing::info!(job = %driver.job_id().to_hex(), "resuming aggregation job");
        drive_job(shared, driver).await?;
    }
    Ok(())
}

/// Runs jobs until no report is queued.
async fn run_queued_jobs(shared: &Arc<LeaderShared>) -> Result<(), Reject> {
    let _guard = shared.jobs.lock().await;
    loop {
        let next = with_leader(shared, |leader| {
            JobDriver::next_queued(leader, &mut os_rng()?)
        })
        .await?;
        let Some(driver) = next else {
            return Ok(());
        };
        drive_job(shared, driver).await?;
    }
}

/// Releases a round for the collector, running queued jobs while the driver waits for
/// reports in flight.
async fn collect(
    shared: &Arc<LeaderShared>,
    req: CollectRequest,
    now: Time,
) -> Result<Message, Reject> {
    let mut driver = CollectDriver::new(req, now, std::time::Instant::now(), COLLECT_WAIT);
    loop {
        let (polled, step) = with_leader(shared, move |leader| {
            let step = driver.poll(leader, &mut os_rng()?, std::time::Instant::now());
            Ok((driver, step))
        })
        .await?;
        driver = polled;
        match step? {
            CollectPoll::Transmit(t) => {
                let answer = send(shared, &t).await;
                driver.handle_answer(answer)?;
            }
            CollectPoll::Retry { after } => {
                if let Err(e) = run_queued_jobs(shared).await {
                    tracing::warn!(code = %e.code, detail = %e.detail, "job failed while collecting");
                }
                tokio::time::sleep(after).await;
            }
            CollectPoll::Done(response) => return Ok(Message::CollectResponse(response)),
        }
    }
}
