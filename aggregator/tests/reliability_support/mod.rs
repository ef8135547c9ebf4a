//! Shared helpers of the reliability tests: SDK clients with short timeouts,
//! node processes with captured logs, ledger verification, and one kill-loop trial.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_aggregator::node::read_secret_hex;
use cairn_aggregator::node_config::NodeConfig;
use cairn_aggregator::store::SqliteStore;
use cairn_client::sdk::{Client, Collector};
use cairn_protocol::config::TaskConfig;
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::ledger::Ledger;
use cairn_protocol::store::TaskStore;
use cairn_transport::{Identity, RetryPolicy, TransportOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::common::{NodeProcess, cairn, credential, init};

pub fn task(deploy: &Path) -> TaskConfig {
    TaskConfig::from_toml(&std::fs::read_to_string(deploy.join("task.toml")).unwrap()).unwrap()
}

/// A protocol (sans-IO) client with the credential of client `k`.
pub fn protocol_client(deploy: &Path, k: usize) -> cairn_protocol::client::Client {
    cairn_protocol::client::Client::new(task(deploy), credential(deploy, k)).unwrap()
}

/// Patient retries: a node may be down for a few seconds.
pub fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 60,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        jitter: true,
    }
}

/// Short timeouts: a connection to a killed node is given up on quickly.
pub fn quick_transport(task: &TaskConfig) -> TransportOptions {
    let limits = cairn_protocol::scheme::Scheme::for_task(task)
        .unwrap()
        .limits();
    TransportOptions {
        idle_timeout: Duration::from_secs(2),
        keep_alive_interval: Some(Duration::from_millis(300)),
        request_timeout: Duration::from_millis(1500),
        max_frame_len: limits.max_frame_len(),
        ..TransportOptions::default()
    }
}

/// An SDK client with the credential of client 0.
pub async fn client(deploy: &Path, retry: RetryPolicy) -> Client {
    client_k(deploy, 0, retry).await
}

/// An SDK client with the credential of client `k`.
pub async fn client_k(deploy: &Path, k: usize, retry: RetryPolicy) -> Client {
    let task = task(deploy);
    Client::builder(task.clone())
        .credential(credential(deploy, k))
        .retry(retry)
        .transport_options(quick_transport(&task))
        .build()
        .await
        .unwrap()
}

pub fn collector_identity(deploy: &Path) -> Identity {
    let dir = deploy.join("collector");
    Identity::read_pem_files(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap()
}

pub async fn collector_with(deploy: &Path, identity: Identity, retry: RetryPolicy) -> Collector {
    let task = task(deploy);
    Collector::builder(task.clone())
        .hpke_key(HpkeSecretKey::from_bytes(
            read_secret_hex(&deploy.join("collector").join("hpke.key")).unwrap(),
        ))
        .identity(identity)
        .retry(retry)
        .transport_options(quick_transport(&task))
        .build()
        .await
        .unwrap()
}

pub async fn collector(deploy: &Path) -> Collector {
    collector_with(deploy, collector_identity(deploy), patient()).await
}

/// Verifies the budget ledger's hash chain in every node's database; returns the
/// number of entries of each. Run with the nodes stopped.
pub fn verify_ledgers(deploy: &Path, aggregators: usize) -> Vec<usize> {
    let task = task(deploy);
    (0..aggregators)
        .map(|i| {
            let config = NodeConfig::load(&deploy.join(format!("node-{i}.toml"))).unwrap();
            let store = SqliteStore::open(&config.data_dir.join("cairn.sqlite")).unwrap();
            let entries = store.task(task.id(), task.dimension()).ledger().unwrap();
            Ledger::verify_chain(&task.id(), &entries)
                .unwrap_or_else(|e| panic!("node {i}: ledger chain: {e}"));
            entries.len()
        })
        .collect()
}

/// A `cairn node` whose stderr goes to `log` (appended), at log level `filter`.
pub struct LoggedNode {
    child: Option<Child>,
}

impl LoggedNode {
    pub fn start(config: &Path, log: &Path, filter: &str) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cairn()
            .env("RUST_LOG", filter)
            .args(["node", "--config", config.to_str().unwrap()])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, then waits (graceful shutdown flushes the log).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            for _ in 0..100 {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LoggedNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Peak resident set size (VmHWM, kB) of a live process.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// When, within a round, the victim is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// After some uploads were acknowledged while others are in flight.
    Uploads,
    /// Right after the last upload, while the leader drives verification jobs.
    Jobs,
    /// While the collector's release request is in flight.
    Collect,
}

/// What one trial did and saw.
#[derive(Debug)]
pub struct TrialOutcome {
    pub seed: u64,
    pub victim: usize,
    pub moment: Moment,
    pub acknowledged: usize,
    pub released: u32,
    pub ledger_entries: Vec<usize>,
}

pub const TRIAL_DIM: usize = 8;
pub const TRIAL_REPORTS: u32 = 16;

/// One kill-loop trial: a fresh 2-aggregator deployment, `TRIAL_REPORTS` concurrent
/// uploads of report k = (k, 0, …) (quantised), SIGKILL of a node chosen by `seed` at a
/// moment chosen by `seed`, restart, collect. Asserts that the release counts exactly
/// the acknowledged reports (count and exact integer sum) and that both ledgers verify.
pub async fn kill_trial(seed: u64) -> TrialOutcome {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let victim = (rng.next_u32() % 2) as usize;
    let moment = match rng.next_u32() % 3 {
        0 => Moment::Uploads,
        1 => Moment::Jobs,
        _ => Moment::Collect,
    };
    kill_trial_at(seed, victim, moment).await
}

/// [`kill_trial`] with the victim (0 = leader, 1 = helper) and the moment given; the
/// seed still chooses how many acknowledgements to wait for and how long the victim
/// stays down.
pub async fn kill_trial_at(seed: u64, victim: usize, moment: Moment) -> TrialOutcome {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let kill_after_acks = 1 + (rng.next_u32() % (TRIAL_REPORTS - 2)) as usize;
    let down_ms = u64::from(rng.next_u32() % 400);
    let collect_delay_ms = u64::from(rng.next_u32() % 150);

    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &["--dim", "8", "--noise", "none", "--min-clients", "1"],
        2,
    );
    let mut nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let acks = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    let mut uploads = Vec::new();
    for k in 1..=TRIAL_REPORTS {
        // One client per report: every aggregator takes one report per client per round.
        let c = Arc::new(client_k(&deploy, k as usize, patient()).await);
        let (acks, tx) = (acks.clone(), tx.clone());
        uploads.push(tokio::spawn(async move {
            let mut x = vec![0i64; TRIAL_DIM];
            x[0] = i64::from(k);
            let r = c.submit_quantised(0, &x).await;
            if r.is_ok() {
                acks.fetch_add(1, Ordering::SeqCst);
                tx.send(k).unwrap();
            }
            r.map(|_| k)
        }));
    }
    drop(tx);
    if moment == Moment::Uploads {
        while acks.load(Ordering::SeqCst) < kill_after_acks {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        nodes[victim].kill();
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        nodes[victim].restart();
    }
    for u in uploads {
        let r = u.await.unwrap();
        assert!(
            r.is_ok(),
            "seed {seed}: an upload failed after all retries: {r:?}"
        );
    }
    let mut acknowledged = Vec::new();
    while let Some(k) = rx.recv().await {
        acknowledged.push(k);
    }
    if moment == Moment::Jobs {
        nodes[victim].kill();
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        nodes[victim].restart();
    }
    let col = collector(&deploy).await;
    let released = if moment == Moment::Collect {
        let handle = tokio::spawn(async move { col.collect(0).await });
        tokio::time::sleep(Duration::from_millis(collect_delay_ms)).await;
        nodes[victim].kill();
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        nodes[victim].restart();
        handle.await.unwrap()
    } else {
        col.collect(0).await
    }
    .unwrap_or_else(|e| panic!("seed {seed} ({victim}, {moment:?}): collect: {e}"));
    assert_eq!(
        released.count as usize,
        acknowledged.len(),
        "seed {seed} (victim {victim}, {moment:?}): every acknowledged report, once"
    );
    let expected: i64 = acknowledged.iter().map(|k| i64::from(*k)).sum();
    assert_eq!(
        released.sum_quantised[0], expected,
        "seed {seed} (victim {victim}, {moment:?}): the released sum is exactly the acknowledged reports'"
    );
    assert!(released.sum_quantised[1..].iter().all(|v| *v == 0));
    for n in &mut nodes {
        n.kill();
    }
    let ledger_entries = verify_ledgers(&deploy, 2);
    assert_eq!(
        ledger_entries,
        vec![1, 1],
        "seed {seed}: one release recorded by each node"
    );
    TrialOutcome {
        seed,
        victim,
        moment,
        acknowledged: acknowledged.len(),
        released: released.count,
        ledger_entries,
    }
}

/// The deployment's secret files: (label, content) pairs to search logs for.
pub fn deployment_secrets(deploy: &Path) -> Vec<(String, String)> {
    let mut secrets = Vec::new();
    let mut add_hex = |label: &str, path: PathBuf| {
        let text = std::fs::read_to_string(&path).unwrap();
        secrets.push((label.to_owned(), text.trim().to_owned()));
    };
    add_hex("verify.key", deploy.join("verify.key"));
    let mut client_secrets = Vec::new();
    for k in 0.. {
        let path = deploy.join("clients").join(format!("client-{k}.toml"));
        if !path.exists() {
            break;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = text
            .lines()
            .find_map(|l| l.strip_prefix("secret = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap()
            .to_owned();
        client_secrets.push((format!("clients/client-{k}.toml"), secret));
    }
    add_hex("collector/hpke.key", deploy.join("collector/hpke.key"));
    let mut pems = vec![(
        "collector/key.pem".to_owned(),
        deploy.join("collector/key.pem"),
    )];
    for i in 0.. {
        let dir = deploy.join(format!("aggregator-{i}"));
        if !dir.exists() {
            break;
        }
        add_hex(&format!("aggregator-{i}/hpke.key"), dir.join("hpke.key"));
        pems.push((format!("aggregator-{i}/key.pem"), dir.join("key.pem")));
    }
    for (label, path) in pems {
        let text = std::fs::read_to_string(path).unwrap();
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        secrets.push((format!("{label} (base64 body)"), body));
    }
    secrets.extend(client_secrets);
    secrets
}
