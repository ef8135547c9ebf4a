//! Crash safety. A node SIGKILLed in the middle of a round resumes after a restart, and
//! the round releases exactly the acknowledged reports — none lost, none counted twice:
//! each report is the integer vector (k, 0, …) and the released integer sum must equal
//! Σk exactly. And a spent privacy budget survives a restart of every node: each node's
//! own ledger is read back from its database, the helper's included.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::time::Duration;

use cairn_aggregator::deploy::read_collector_keys;
use cairn_client::sdk::{Client, Collector, SdkError};
use cairn_protocol::config::TaskConfig;
use cairn_protocol::messages::ErrorCode;
use cairn_transport::{RetryPolicy, TransportOptions};
use common::{NodeProcess, init};

const DIM: usize = 16;

fn task(deploy: &Path) -> TaskConfig {
    TaskConfig::from_toml(&std::fs::read_to_string(deploy.join("task.toml")).unwrap()).unwrap()
}

/// Patient retries: a node may be down for a while.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 40,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        jitter: true,
    }
}

/// Short timeouts: a connection to a killed node is given up on quickly (a restarted
/// node does not know the old connection, and the client would otherwise wait for the
/// idle timeout).
fn quick_transport(deploy: &Path) -> TransportOptions {
    let limits = cairn_protocol::scheme::Scheme::for_task(&task(deploy))
        .unwrap()
        .limits();
    TransportOptions {
        idle_timeout: Duration::from_secs(3),
        keep_alive_interval: Some(Duration::from_millis(500)),
        request_timeout: Duration::from_secs(3),
        max_frame_len: limits.max_frame_len(),
        ..TransportOptions::default()
    }
}

/// The SDK client of client `k` of the deployment (one report per client per round).
async fn client(deploy: &Path, k: u32) -> Client {
    Client::builder(task(deploy))
        .credential(common::credential(deploy, k as usize))
        .retry(patient())
        .transport_options(quick_transport(deploy))
        .build()
        .await
        .unwrap()
}

async fn collector(deploy: &Path) -> Collector {
    let (key, identity) = read_collector_keys(&deploy.join("collector")).unwrap();
    Collector::builder(task(deploy))
        .hpke_key(key)
        .identity(identity)
        .retry(patient())
        .transport_options(quick_transport(deploy))
        .build()
        .await
        .unwrap()
}

/// Every report is the vector (k, 0, 0, …)/1000 for its number k: the released sum's
/// first coordinate identifies exactly which reports were counted.
fn update(k: u32) -> Vec<f32> {
    let mut u = vec![0f32; DIM];
    u[0] = k as f32 / 1000.0;
    u
}

async fn crash_during_round(victim: usize) {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &["--dim", "16", "--noise", "none", "--min-clients", "1"],
        2,
    );
    let mut nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let mut acknowledged = Vec::new();
    for k in 1..=10u32 {
        client(&deploy, k)
            .await
            .submit_quantised(0, &integer_update(k))
            .await
            .unwrap();
        acknowledged.push(k);
    }
    nodes[victim].kill();
    // What the victim had in flight when it died, from its own database.
    let config = cairn_aggregator::node_config::NodeConfig::load(
        &deploy.join(format!("node-{victim}.toml")),
    )
    .unwrap();
    let store = cairn_aggregator::store::SqliteStore::open_read_only(
        &cairn_aggregator::node::database_path(&config),
    )
    .unwrap()
    .task(task(&deploy).id(), DIM);
    use cairn_protocol::store::TaskStore;
    let round = store.round(0).unwrap();
    println!(
        "killed aggregator {victim} with {} open jobs, {} reports aggregated",
        store.open_jobs().unwrap().len(),
        round.map_or(0, |r| r.count)
    );
    drop(store);
    if victim == 1 {
        // The leader keeps accepting uploads while its helper is down.
        for k in 11..=20u32 {
            client(&deploy, k)
                .await
                .submit_quantised(0, &integer_update(k))
                .await
                .unwrap();
            acknowledged.push(k);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    nodes[victim].restart();
    for k in 21..=25u32 {
        client(&deploy, k)
            .await
            .submit_quantised(0, &integer_update(k))
            .await
            .unwrap();
        acknowledged.push(k);
    }
    let released = collector(&deploy).await.collect(0).await.unwrap();
    assert_eq!(
        released.count as usize,
        acknowledged.len(),
        "every acknowledged report, once"
    );
    // Exact: a report lost and another counted twice would change Σk.
    let expected: i64 = acknowledged.iter().map(|k| i64::from(*k)).sum();
    assert_eq!(released.sum_quantised[0], expected);
    assert!(released.sum_quantised[1..].iter().all(|v| *v == 0));
}

/// The quantised report (k, 0, …, 0): an integer vector, summed exactly.
fn integer_update(k: u32) -> Vec<i64> {
    let mut x = vec![0i64; DIM];
    x[0] = i64::from(k);
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_killed_mid_round_loses_nothing() {
    crash_during_round(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_round_loses_nothing() {
    crash_during_round(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_ledger_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // σ is calibrated so that exactly two releases fit the budget.
    let deploy = init(
        dir.path(),
        &[
            "--dim",
            "16",
            "--noise",
            "aggregator",
            "--rounds",
            "2",
            "--min-clients",
            "2",
        ],
        2,
    );
    let mut nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let cs = [client(&deploy, 0).await, client(&deploy, 1).await];
    let col = collector(&deploy).await;
    for round in 0..3u32 {
        for (k, c) in cs.iter().enumerate() {
            c.submit(round, &update(k as u32)).await.unwrap();
        }
        let outcome = col.collect(round).await;
        if round < 2 {
            let released = outcome.unwrap();
            assert_eq!(released.count, 2);
            // Kill both nodes (no graceful shutdown) and start them again.
            for n in &mut nodes {
                n.restart();
            }
        } else {
            match outcome {
                Err(SdkError::Refused { code, .. }) => assert_eq!(code, ErrorCode::BudgetExceeded),
                other => panic!("a third release must be refused: {other:?}"),
            }
        }
    }
    // Every aggregator's own ledger, read from its database after the SIGKILLs: the
    // leader refusing first must not hide a helper that forgot its releases.
    for n in &mut nodes {
        n.kill();
    }
    let task = task(&deploy);
    for i in 0..2 {
        let config =
            cairn_aggregator::node_config::NodeConfig::load(&deploy.join(format!("node-{i}.toml")))
                .unwrap();
        let store = cairn_aggregator::store::SqliteStore::open_read_only(
            &cairn_aggregator::node::database_path(&config),
        )
        .unwrap()
        .task(task.id(), task.dimension());
        use cairn_protocol::store::TaskStore;
        let entries = store.ledger().unwrap();
        assert_eq!(entries.len(), 2, "aggregator {i} keeps both releases");
        cairn_protocol::ledger::Ledger::verify_chain(&task.id(), &entries).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.round).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }
}
