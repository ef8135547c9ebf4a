//! Two leader processes ("replicas", here two nodes in this process with their own
//! drivers) share one PostgreSQL database; one helper. Clients upload to both, both
//! drivers aggregate from the shared queue, and two collectors release the same round
//! on both at once. Every acknowledged report is counted once, the sum is exact, and
//! each aggregator's ledger has one entry per round
//! (`cargo test -p cairn-aggregator postgres` selects it). A second test collects on
//! one replica while uploads still arrive on the other: every acknowledged report is
//! released, every other upload is refused as too late.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/pg_cluster.rs"]
mod pg_cluster;

use std::time::Duration;

use cairn_aggregator::budget_report::BudgetReport;
use cairn_aggregator::deploy::{self, InitParams, free_base_port, read_collector_keys};
use cairn_aggregator::node::{NodeSetup, start};
use cairn_aggregator::node_config::NodeConfig;
use cairn_client::sdk::{Client, Collector};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use pg_cluster::PgCluster;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const CLIENTS: usize = 24;
const DIM: usize = 6;

/// A leader with two replicas (A and B, one database) and one helper, running, with
/// `CLIENTS` SDK clients (even ones on A, odd ones on B) and a collector on each.
struct Setup {
    _dir: tempfile::TempDir,
    nodes: Vec<cairn_aggregator::node::RunningNode>,
    task_a: TaskConfig,
    leader_config: std::path::PathBuf,
    helper_config: std::path::PathBuf,
    clients: Vec<Client>,
    collector_a: Collector,
    collector_b: Collector,
}

async fn two_leader_replicas(cluster: &PgCluster) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let base = free_base_port(host, 3).unwrap();
    let params = InitParams {
        dimension: DIM as u32,
        noise: NoisePlacement::None,
        min_clients: 1,
        clients: 1,
        base_port: base,
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let d = deploy::init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    for node in &d.nodes {
        let url = cluster.create_database();
        let mut text = std::fs::read_to_string(node).unwrap();
        text.push_str(&format!("store = \"postgres\"\ndatabase_url = \"{url}\"\n"));
        std::fs::write(node, text).unwrap();
        cairn_aggregator::cli::db::migrate(node).unwrap();
    }
    // The second leader replica: the same configuration (keys, database) on another port.
    let leader_b = d.dir.join("node-0b.toml");
    let port_b = base + 2;
    let text = std::fs::read_to_string(&d.nodes[0]).unwrap().replace(
        &format!("127.0.0.1:{base}\""),
        &format!("127.0.0.1:{port_b}\""),
    );
    std::fs::write(&leader_b, text).unwrap();
    let credentials = deploy::add_clients(&d.dir, CLIENTS as u32, &mut rng).unwrap();

    let task_text = std::fs::read_to_string(&d.task).unwrap();
    let task_a = TaskConfig::from_toml(&task_text).unwrap();
    // Clients of replica B see B's address as the leader's (endpoints are not part of
    // the task's identity).
    let task_b = TaskConfig::from_toml(&task_text.replace(
        &format!("endpoint = \"127.0.0.1:{base}\""),
        &format!("endpoint = \"127.0.0.1:{port_b}\""),
    ))
    .unwrap();
    assert_eq!(task_a.id(), task_b.id());

    let mut nodes = Vec::new();
    for node in [&d.nodes[0], &leader_b, &d.nodes[1]] {
        nodes.push(start(NodeSetup::load(node).unwrap()).await.unwrap());
    }
    let mut clients = Vec::new();
    for (i, path) in credentials.iter().enumerate() {
        let credential = cairn_client::sdk::read_credential(path).unwrap();
        let task = if i % 2 == 0 { &task_a } else { &task_b };
        clients.push(
            Client::builder(task.clone())
                .credential(credential)
                .build()
                .await
                .unwrap(),
        );
    }
    let collector = |task: TaskConfig| {
        // Secrets are not Clone: each collector reads the key files.
        let (key, identity) = read_collector_keys(&d.collector_dir).unwrap();
        Collector::builder(task)
            .hpke_key(key)
            .identity(identity)
            .build()
    };
    let collector_a = collector(task_a.clone()).await.unwrap();
    let collector_b = collector(task_b.clone()).await.unwrap();
    Setup {
        leader_config: d.nodes[0].clone(),
        helper_config: d.nodes[1].clone(),
        _dir: dir,
        nodes,
        task_a,
        clients,
        collector_a,
        collector_b,
    }
}

impl Setup {
    /// Each aggregator's ledger records exactly `rounds`.
    fn assert_ledgers(&self, rounds: &[u32]) {
        for (node, name) in [
            (&self.leader_config, "leader"),
            (&self.helper_config, "helper"),
        ] {
            let report =
                BudgetReport::from_node(&self.task_a, &NodeConfig::load(node).unwrap()).unwrap();
            let released: Vec<u32> = report.releases.iter().map(|r| r.round).collect();
            assert_eq!(released, rounds, "{name}: one ledger entry per round");
        }
    }

    async fn shutdown(self) {
        for n in self.nodes {
            n.shutdown(Duration::from_secs(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_leader_replicas_count_every_report_once() {
    let cluster = PgCluster::start();
    let s = two_leader_replicas(&cluster).await;
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    for round in 0..3u32 {
        let mut expected = [0i64; DIM];
        let updates: Vec<Vec<f32>> = (0..CLIENTS)
            .map(|_| {
                (0..DIM)
                    .map(|k| {
                        // Multiples of 2^-8 inside the ball: encoded exactly.
                        let v = i64::from(rng.next_u32() % 33) - 16;
                        expected[k] += v;
                        v as f32 / 256.0
                    })
                    .collect()
            })
            .collect();
        let submissions = s
            .clients
            .iter()
            .zip(&updates)
            .map(|(c, u)| c.submit(round, u));
        for outcome in futures::future::join_all(submissions).await {
            outcome.unwrap();
        }
        // Both replicas are asked to release the round at the same time.
        let (a, b) = tokio::join!(s.collector_a.collect(round), s.collector_b.collect(round));
        let (a, b) = (a.unwrap(), b.unwrap());
        for released in [&a, &b] {
            assert_eq!(released.count as usize, CLIENTS, "round {round}");
            let exact: Vec<f64> = expected.iter().map(|v| *v as f64 / 256.0).collect();
            assert_eq!(released.sum, exact, "round {round}");
        }
    }
    s.assert_ledgers(&[0, 1, 2]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_collect_racing_uploads_on_another_replica_releases_every_acknowledged_report() {
    let cluster = PgCluster::start();
    let s = two_leader_replicas(&cluster).await;
    // The odd clients upload through replica B, one after another, while replica A
    // is asked to release the round once a few uploads are in.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let first_in = std::sync::Arc::new(tokio::sync::Notify::new());
    let uploads = async {
        for (k, c) in s.clients.iter().enumerate().filter(|(k, _)| k % 2 == 1) {
            let mut x = vec![0i64; DIM];
            x[0] = k as i64;
            match c.submit_quantised(0, &x).await {
                Ok(_) => acknowledged.lock().unwrap().push(k as i64),
                Err(cairn_client::sdk::SdkError::Refused {
                    code: cairn_protocol::messages::ErrorCode::RoundClosed,
                    ..
                }) => {}
                Err(e) => panic!("upload {k}: {e}"),
            }
            if k == 5 {
                first_in.notify_one();
            }
        }
    };
    let collect = async {
        first_in.notified().await;
        s.collector_a.collect(0).await
    };
    let ((), released) = tokio::join!(uploads, collect);
    let released = released.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 3, "{acknowledged:?}");
    println!("acknowledged {} of {}", acknowledged.len(), CLIENTS / 2);
    assert_eq!(
        released.count as usize,
        acknowledged.len(),
        "every acknowledged upload is released, nothing else: {acknowledged:?}"
    );
    assert_eq!(released.sum_quantised[0], acknowledged.iter().sum::<i64>());
    s.assert_ledgers(&[0]);
    s.shutdown().await;
}
