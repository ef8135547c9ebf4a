//! Back-pressure from a real leader: 1,000 clients upload at once to a leader whose
//! upload memory holds a fraction of their uploads (1 MiB) and which answers
//! `Busy` at once when it has none (`upload_memory_mib = 1`, `upload_wait_ms = 0`).
//! Every client is acknowledged in the end, the leader answered `Busy` many times
//! (`cairn_uploads_busy_total`), and the released sum counts each report exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use cairn_aggregator::deploy::{InitParams, free_base_port, init, read_collector_keys};
use cairn_aggregator::node::{NodeSetup, start};
use cairn_client::sdk::{Client, Collector};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_transport::RetryPolicy;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const CLIENTS: usize = 1_000;
const DIM: usize = 8;
const CONNECTIONS: usize = 32;

/// The counter's value in the metrics text.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_against_a_full_leader_are_all_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        aggregators: 2,
        dimension: DIM as u32,
        noise: NoisePlacement::None,
        min_clients: CLIENTS as u32,
        clients: CLIENTS as u32,
        base_port: free_base_port(host, 2).unwrap(),
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let d = init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    let mut leader_config = std::fs::read_to_string(&d.nodes[0]).unwrap();
    // The devices share 32 connections: 16 uploads at once on each.
    leader_config.push_str("upload_memory_mib = 1\nupload_wait_ms = 0\nclient_streams = 16\n");
    std::fs::write(&d.nodes[0], leader_config).unwrap();
    let mut nodes = Vec::new();
    for node in &d.nodes {
        nodes.push(start(NodeSetup::load(node).unwrap()).await.unwrap());
    }
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();

    // Patient devices, sharing 32 QUIC connections (32 × 16 streams: up to 512 uploads
    // in flight against 1 MiB of upload memory).
    let mut clients: Vec<Arc<Client>> = Vec::new();
    for (i, path) in d.credentials.iter().enumerate() {
        let mut builder = Client::builder(task.clone())
            .credential(cairn_client::sdk::read_credential(path).unwrap())
            .retry(RetryPolicy {
                max_attempts: 200,
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                jitter: true,
            });
        if i >= CONNECTIONS {
            builder = builder.share_connection_of(&clients[i % CONNECTIONS]);
        }
        clients.push(Arc::new(builder.build().await.unwrap()));
    }
    // Multiples of 2^-frac_bits quantise exactly: the released sum is checked exactly.
    let unit = 2f32.powi(-i32::from(task.frac_bits()));
    let update = |k: usize| -> Vec<f32> {
        (0..DIM)
            .map(|i| ((k + i) % 5) as f32 * unit - 2.0 * unit)
            .collect()
    };
    let mut expected = vec![0i64; DIM];
    for k in 0..CLIENTS {
        for (e, v) in expected.iter_mut().zip(update(k)) {
            *e += (v / unit) as i64;
        }
    }
    let uploads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let c = Arc::clone(c);
            let u = update(k);
            tokio::spawn(async move { c.submit(0, &u).await })
        })
        .collect();
    for (k, u) in uploads.into_iter().enumerate() {
        u.await
            .unwrap()
            .unwrap_or_else(|e| panic!("client {k}: {e}"));
    }
    let busy = counter(&nodes[0].metrics.render(), "cairn_uploads_busy_total");
    eprintln!("{CLIENTS} uploads acknowledged after {busy} Busy answers");
    assert!(
        busy >= 100,
        "the leader answered Busy {busy} times: the test did not fill its upload memory"
    );

    let (key, identity) = read_collector_keys(&d.collector_dir).unwrap();
    let collector = Collector::builder(task.clone())
        .hpke_key(key)
        .identity(identity)
        .build()
        .await
        .unwrap();
    let released = tokio::time::timeout(Duration::from_secs(120), collector.collect(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        released.count as usize, CLIENTS,
        "every report counted once"
    );
    let got: Vec<i64> = released
        .sum
        .iter()
        .map(|v| (v / f64::from(unit)).round() as i64)
        .collect();
    assert_eq!(
        got, expected,
        "the exact sum: nothing lost, nothing doubled"
    );
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}
