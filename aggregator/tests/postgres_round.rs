//! A deployment whose two aggregators keep their state in PostgreSQL (one database
//! each, on a throwaway cluster): `cairn db migrate`, clients registered in the
//! databases, a round released through the nodes, the budget report read from the
//! database, and a leader restarted on the same database that remembers the spent
//! budget (`cargo test -p cairn-aggregator postgres` selects these).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/http.rs"]
mod http;
#[path = "common/pg_cluster.rs"]
mod pg_cluster;

use std::time::Duration;

use cairn_aggregator::budget_report::BudgetReport;
use cairn_aggregator::deploy::{self, InitParams, free_base_port, read_collector_keys};
use cairn_aggregator::node::{NodeSetup, start};
use cairn_aggregator::node_config::NodeConfig;
use cairn_client::sdk::{Client, Collector, SdkError};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::messages::ErrorCode;
use pg_cluster::PgCluster;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_release_rounds_and_a_restart_keeps_the_budget() {
    let mut cluster = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        dimension: 8,
        noise: NoisePlacement::Aggregator,
        epsilon: 2.0,
        rounds: 2,
        min_clients: 3,
        clients: 1,
        base_port: free_base_port(host, 2).unwrap(),
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let d = deploy::init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    // Switch both aggregators to PostgreSQL, one database each; the password comes
    // from a file (the cluster trusts local connections, so any value is accepted).
    for node in &d.nodes {
        let url = cluster.create_database();
        std::fs::write(node.with_extension("password"), "not-in-the-toml\n").unwrap();
        let mut text = std::fs::read_to_string(node)
            .unwrap()
            .replace("# metrics_listen", "metrics_listen")
            .replace(":9100\"", ":0\"")
            .replace(":9101\"", ":0\"");
        text.push_str(&format!(
            "store = \"postgres\"\ndatabase_url = \"{url}\"\ndatabase_password_file = \"{}\"\n",
            node.with_extension("password")
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        std::fs::write(node, text).unwrap();
        // A node refuses an unmigrated database; `cairn db migrate` prepares it.
        let err = match NodeSetup::load(node) {
            Ok(setup) => start(setup).await.err().unwrap().to_string(),
            Err(e) => panic!("{e}"),
        };
        assert!(err.contains("PostgreSQL"), "{err}");
        let said = cairn_aggregator::cli::db::migrate(node).unwrap();
        assert!(said.contains("applied migrations [1, 2]"), "{said}");
        assert!(
            cairn_aggregator::cli::db::migrate(node)
                .unwrap()
                .contains("nothing to do")
        );
    }
    // Clients registered now go to the databases.
    let credentials = deploy::add_clients(&d.dir, 3, &mut rng).unwrap();
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
    let mut nodes = Vec::new();
    for node in &d.nodes {
        nodes.push(start(NodeSetup::load(node).unwrap()).await.unwrap());
    }
    let mut clients = Vec::new();
    for path in &credentials {
        let credential = cairn_client::sdk::read_credential(path).unwrap();
        clients.push(
            Client::builder(task.clone())
                .credential(credential)
                .build()
                .await
                .unwrap(),
        );
    }
    let (key, identity) = read_collector_keys(&d.collector_dir).unwrap();
    let collector = Collector::builder(task.clone())
        .hpke_key(key)
        .identity(identity)
        .build()
        .await
        .unwrap();
    for round in 0..2 {
        for c in &clients {
            c.submit(round, &[0.1; 8]).await.unwrap();
        }
        let released = collector.collect(round).await.unwrap();
        assert_eq!(released.count, 3);
    }
    let spent = BudgetReport::from_node(&task, &NodeConfig::load(&d.nodes[0]).unwrap()).unwrap();
    assert_eq!(spent.releases.len(), 2);

    // Restart the leader on the same database: the ledger is there, the budget spent,
    // and a third release is refused.
    let leader = nodes.remove(0);
    leader.shutdown(Duration::from_secs(1)).await;
    nodes.insert(
        0,
        start(NodeSetup::load(&d.nodes[0]).unwrap()).await.unwrap(),
    );
    for c in &clients {
        c.submit(2, &[0.1; 8]).await.unwrap();
    }
    match collector.collect(2).await {
        Err(SdkError::Refused {
            code: ErrorCode::BudgetExceeded,
            ..
        }) => {}
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    for node in [0, 1] {
        let report =
            BudgetReport::from_node(&task, &NodeConfig::load(&d.nodes[node]).unwrap()).unwrap();
        assert_eq!(report.releases.len(), 2, "aggregator {node}");
    }
    // The replica metrics are served on PostgreSQL (their values depend on timing).
    let health = nodes[0].metrics_addr.expect("metrics_listen is set");
    let (_, metrics) = get(health, "/metrics").await;
    for name in [
        "cairn_store_transaction_retries_total",
        "cairn_job_contention_total",
    ] {
        assert!(metrics.contains(name), "{name} missing: {metrics}");
    }
    // /health follows the database: ok while it answers, 503 when it is gone.
    let (status, body) = get(health, "/health").await;
    assert!(status.contains("200"), "{status} {body}");
    cluster.stop();
    let (status, body) = get(health, "/health").await;
    assert!(status.contains("503"), "{status} {body}");
    assert!(body.contains("database"), "{body}");
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// [`http::get`] on a thread of its own (this test's runtime must not block).
async fn get(addr: std::net::SocketAddr, path: &'static str) -> (String, String) {
    tokio::task::spawn_blocking(move || http::get(addr, path))
        .await
        .unwrap()
}
