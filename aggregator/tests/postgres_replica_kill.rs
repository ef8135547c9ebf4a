//! The replica kill campaign: each aggregator runs as several `cairn node`
//! processes sharing one PostgreSQL database — 3 leader replicas, 2 helper replicas —
//! and the task lists every replica's endpoint, so the 200 clients spread over the
//! leader replicas and fail over, and the leader replicas over the helper replicas.
//! In each of 20 seeded trials, one or two random replicas are killed with SIGKILL
//! during the uploads, again while the jobs run and again during the collect, and
//! restarted after a random pause. Every trial must end with
//!
//! * the released count equal to the acknowledged reports, and the exact integer sum;
//! * one ledger entry (round 0) on each aggregator, its hash chain intact;
//! * the budget enforced: the task's budget holds exactly one release, and a second
//!   round is refused (`BudgetExceeded`) by the leader, whose ledger says so, while
//!   the helper never records it either.
//!
//! The noise is real (the aggregators add discrete Gaussian noise and charge the ledger),
//! with σ ≈ 0.04 quantised units: it is 0 except with probability below 10^-100 per
//! coordinate, so the sum can be checked exactly.
//!
//! `cargo test -p cairn-aggregator postgres` selects it (with the other PostgreSQL tests).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/pg_cluster.rs"]
mod pg_cluster;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_aggregator::budget_report::BudgetReport;
use cairn_aggregator::deploy::{self, InitParams, free_base_port, read_collector_keys};
use cairn_aggregator::node_config::NodeConfig;
use cairn_client::sdk::{Client, Collector, SdkError};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::messages::ErrorCode;
use cairn_transport::{RetryPolicy, TransportOptions};
use pg_cluster::PgCluster;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const LEADER_REPLICAS: usize = 3;
const HELPER_REPLICAS: usize = 2;
const REPLICAS: usize = LEADER_REPLICAS + HELPER_REPLICAS;
const CLIENTS: usize = 200;
const DIM: usize = 4;
const TRIALS: u64 = 20;

/// A `cairn node` replica: its config, and its process while it runs (stderr appended
/// to `log`).
struct Replica {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn start(config: PathBuf, log: PathBuf) -> Self {
        let mut r = Self {
            config,
            log,
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .env("RUST_LOG", "warn")
            .args(["node", "--config", self.config.to_str().unwrap()])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("cairn node starts");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown handler runs, nothing is flushed.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// When, within the round, a kill happens.
#[derive(Debug, Clone, Copy)]
enum Moment {
    Uploads,
    Jobs,
    Collect,
}

/// One kill: which replicas (0..3 leader, 3..5 helper), when, and for how long.
#[derive(Debug)]
// `moment` is read through `Debug`, in every trial's outcome and failure message.
#[allow(dead_code)]
struct Kill {
    moment: Moment,
    victims: Vec<usize>,
    /// Uploads: the acknowledgements to wait for; Jobs and Collect: milliseconds to
    /// wait after the last acknowledgement or the collect request.
    at: u64,
    down_ms: u64,
}

fn schedule(seed: u64) -> Vec<Kill> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut below = |n: u64| rng.next_u64() % n;
    [Moment::Uploads, Moment::Jobs, Moment::Collect]
        .into_iter()
        .map(|moment| {
            let first = below(REPLICAS as u64) as usize;
            let mut victims = vec![first];
            if below(3) == 0 {
                victims.push((first + 1 + below(REPLICAS as u64 - 1) as usize) % REPLICAS);
            }
            let at = match moment {
                Moment::Uploads => 20 + below(CLIENTS as u64 - 40),
                Moment::Jobs => below(100),
                Moment::Collect => below(300),
            };
            Kill {
                moment,
                victims,
                at,
                down_ms: below(800),
            }
        })
        .collect()
}

async fn kill_and_restart(replicas: &Arc<std::sync::Mutex<Vec<Replica>>>, kill: &Kill) {
    for v in &kill.victims {
        replicas.lock().unwrap()[*v].kill();
    }
    tokio::time::sleep(Duration::from_millis(kill.down_ms)).await;
    for v in &kill.victims {
        replicas.lock().unwrap()[*v].spawn();
    }
}

/// The deployment of one trial: the task with every replica's endpoint, and one node
/// config per replica (leader replicas first), each aggregator on its own database.
struct Deployment {
    _dir: tempfile::TempDir,
    deploy: PathBuf,
    task: TaskConfig,
    configs: Vec<PathBuf>,
    credentials: Vec<PathBuf>,
}

fn deployment(cluster: &PgCluster, seed: u64) -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let base = free_base_port(host, REPLICAS as u16).unwrap();
    let params = InitParams {
        dimension: DIM as u32,
        noise: NoisePlacement::Aggregator,
        // One release fits the budget, at σ ≈ 0.04 (see the module docs).
        epsilon: 1e11,
        rounds: 1,
        min_clients: 1,
        max_clients: CLIENTS as u32 + 10,
        clients: 1,
        base_port: base,
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6465_706c);
    let d = deploy::init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    // Ports: leader replicas base, base+2, base+3; helper replicas base+1, base+4.
    let leader_ports = [base, base + 2, base + 3];
    let helper_ports = [base + 1, base + 4];
    let list = |ports: &[u16]| {
        ports[1..]
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let task_text = std::fs::read_to_string(&d.task).unwrap();
    let task_text = task_text
        .replacen(
            &format!("endpoint = \"127.0.0.1:{base}\"\n"),
            &format!(
                "endpoint = \"127.0.0.1:{base}\"\nreplica_endpoints = [{}]\n",
                list(&leader_ports)
            ),
            1,
        )
        .replacen(
            &format!("endpoint = \"127.0.0.1:{}\"\n", base + 1),
            &format!(
                "endpoint = \"127.0.0.1:{}\"\nreplica_endpoints = [{}]\n",
                base + 1,
                list(&helper_ports)
            ),
            1,
        );
    std::fs::write(&d.task, &task_text).unwrap();
    let task = TaskConfig::from_toml(&task_text).unwrap();
    assert_eq!(task.aggregators()[0].endpoints().len(), LEADER_REPLICAS);
    assert_eq!(task.aggregators()[1].endpoints().len(), HELPER_REPLICAS);

    let mut configs = Vec::new();
    for (i, ports) in [&leader_ports[..], &helper_ports[..]]
        .into_iter()
        .enumerate()
    {
        let url = cluster.create_database();
        let text = std::fs::read_to_string(&d.nodes[i]).unwrap();
        // Short leases: a killed leader replica's jobs move on after 2 s.
        let text = format!(
            "{text}store = \"postgres\"\ndatabase_url = \"{url}\"\ndatabase_pool_size = 4\n\
             job_lease_secs = 2\n"
        );
        std::fs::write(&d.nodes[i], &text).unwrap();
        cairn_aggregator::cli::db::migrate(&d.nodes[i]).unwrap();
        for (r, port) in ports.iter().enumerate() {
            let path = d.dir.join(format!("node-{i}-replica-{r}.toml"));
            let replica = text.replace(
                &format!("listen = \"127.0.0.1:{}\"", ports[0]),
                &format!("listen = \"127.0.0.1:{port}\""),
            );
            std::fs::write(&path, replica).unwrap();
            configs.push(path);
        }
    }
    // Clients are registered in the databases, which now exist.
    let credentials = deploy::add_clients(&d.dir, CLIENTS as u32, &mut rng).unwrap();
    Deployment {
        deploy: d.dir.clone(),
        _dir: dir,
        task,
        configs,
        credentials,
    }
}

/// Patient retries (a replica may be down for a while) with short timeouts, so a
/// connection to a killed replica is given up on quickly and the next one tried.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 80,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        jitter: true,
    }
}

fn quick(task: &TaskConfig, request_timeout: Duration) -> TransportOptions {
    let limits = cairn_protocol::scheme::Scheme::for_task(task)
        .unwrap()
        .limits();
    TransportOptions {
        idle_timeout: Duration::from_secs(2),
        keep_alive_interval: Some(Duration::from_millis(300)),
        handshake_timeout: Duration::from_millis(700),
        request_timeout,
        max_frame_len: limits.max_frame_len(),
        ..TransportOptions::default()
    }
}

async fn client(d: &Deployment, k: usize) -> Client {
    Client::builder(d.task.clone())
        .credential(cairn_client::sdk::read_credential(&d.credentials[k]).unwrap())
        .retry(patient())
        .transport_options(quick(&d.task, Duration::from_secs(3)))
        .build()
        .await
        .unwrap()
}

async fn collector(d: &Deployment) -> Collector {
    let (key, identity) = read_collector_keys(&d.deploy.join("collector")).unwrap();
    Collector::builder(d.task.clone())
        .hpke_key(key)
        .identity(identity)
        .retry(patient())
        // A collect waits on the leader while the round's last jobs finish.
        .transport_options(quick(&d.task, Duration::from_secs(8)))
        .build()
        .await
        .unwrap()
}

/// The last lines of every replica's log, for a failing trial's message.
fn logs(d: &Deployment) -> String {
    let mut out = String::new();
    for c in &d.configs {
        let log = c.with_extension("log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        out.push_str(&format!("--- {}\n", log.display()));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[derive(Debug)]
#[allow(dead_code)]
struct TrialOutcome {
    seed: u64,
    kills: Vec<Kill>,
    acknowledged: usize,
    seconds: f64,
}

async fn trial(cluster: &PgCluster, seed: u64) -> TrialOutcome {
    let started = Instant::now();
    let kills = schedule(seed);
    let d = deployment(cluster, seed);
    let replicas: Vec<Replica> = d
        .configs
        .iter()
        .map(|c| Replica::start(c.clone(), c.with_extension("log")))
        .collect();
    let replicas = Arc::new(std::sync::Mutex::new(replicas));
    let context = |what: &str| format!("seed {seed} ({kills:?}): {what}\n{}", logs(&d));

    // Round 0: client k uploads (k+1, 0, …), all at once.
    let acks = Arc::new(AtomicUsize::new(0));
    let mut uploads = Vec::new();
    for k in 0..CLIENTS {
        let c = client(&d, k).await;
        let acks = Arc::clone(&acks);
        uploads.push(tokio::spawn(async move {
            let mut x = vec![0i64; DIM];
            x[0] = k as i64 + 1;
            let r = c.submit_quantised(0, &x).await;
            if r.is_ok() {
                acks.fetch_add(1, Ordering::SeqCst);
            }
            r.map(|_| k)
        }));
    }
    let uploads_kill = &kills[0];
    while acks.load(Ordering::SeqCst) < uploads_kill.at as usize
        && !uploads.iter().all(|u| u.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    kill_and_restart(&replicas, uploads_kill).await;
    let mut acknowledged = Vec::new();
    for u in uploads {
        match u.await.unwrap() {
            Ok(k) => acknowledged.push(k),
            Err(e) => panic!(
                "{}",
                context(&format!("an upload failed after all retries: {e}"))
            ),
        }
    }
    // The jobs: leader replicas verify and aggregate the queue with the helpers.
    tokio::time::sleep(Duration::from_millis(kills[1].at)).await;
    kill_and_restart(&replicas, &kills[1]).await;
    // The collect, with a kill while it is in flight.
    let col = collector(&d).await;
    let collect = tokio::spawn(async move {
        let r = col.collect(0).await;
        (col, r)
    });
    tokio::time::sleep(Duration::from_millis(kills[2].at)).await;
    kill_and_restart(&replicas, &kills[2]).await;
    let (col, released) = collect.await.unwrap();
    let released = released.unwrap_or_else(|e| panic!("{}", context(&format!("collect: {e}"))));
    assert_eq!(
        released.count as usize,
        acknowledged.len(),
        "{}",
        context("every acknowledged report, once")
    );
    let expected: i64 = acknowledged.iter().map(|k| *k as i64 + 1).sum();
    assert_eq!(
        released.sum_quantised,
        [expected, 0, 0, 0],
        "{}",
        context("the exact sum of the acknowledged reports")
    );

    // Round 1: the budget held one release; a second is refused.
    for k in 0..3 {
        client(&d, k)
            .await
            .submit_quantised(1, &[1, 0, 0, 0])
            .await
            .unwrap();
    }
    match col.collect(1).await {
        Err(SdkError::Refused {
            code: ErrorCode::BudgetExceeded,
            ..
        }) => {}
        other => panic!(
            "{}",
            context(&format!(
                "a second release must exceed the budget: {other:?}"
            ))
        ),
    }
    for r in replicas.lock().unwrap().iter_mut() {
        r.kill();
    }
    for (i, name) in [(0, "leader"), (LEADER_REPLICAS, "helper")] {
        let node = NodeConfig::load(&d.configs[i]).unwrap();
        let report = BudgetReport::from_node(&d.task, &node)
            .unwrap_or_else(|e| panic!("seed {seed}: {name}'s ledger: {e}"));
        let rounds: Vec<u32> = report.releases.iter().map(|r| r.round).collect();
        assert_eq!(
            rounds,
            [0],
            "seed {seed}: {name}: one ledger entry, round 0"
        );
        let spent = report.releases.last().unwrap().epsilon;
        assert!(
            spent <= report.epsilon_budget.unwrap(),
            "seed {seed}: {name} spent ε = {spent} beyond its budget"
        );
    }
    TrialOutcome {
        seed,
        kills,
        acknowledged: acknowledged.len(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replica_kill_campaign_20_trials() {
    let cluster = PgCluster::start();
    for seed in 0..TRIALS {
        let outcome = trial(&cluster, 1000 + seed).await;
        println!("{outcome:?}");
    }
}
