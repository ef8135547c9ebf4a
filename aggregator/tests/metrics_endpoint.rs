//! The metrics and health endpoint of running nodes: after a small round over loopback
//! QUIC (honest uploads, one with a wrong token, one release), a scrape of the leader's
//! and the helper's `/metrics` finds the counts, and `/health` answers `ok`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

#[path = "common/http.rs"]
mod http;
use http::get;

use cairn_aggregator::deploy::{InitParams, free_base_port, init, read_collector_keys};
use cairn_aggregator::node::{NodeSetup, start};
use cairn_client::sdk::{Client, Collector, SdkError};
use cairn_protocol::auth::Credential;
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::messages::ErrorCode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The value of the sample line `name` (exact series name with labels).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        (series == name).then(|| value.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_round_finds_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        aggregators: 2,
        dimension: 20,
        noise: NoisePlacement::Aggregator,
        epsilon: 4.0,
        rounds: 4,
        min_clients: 3,
        base_port: free_base_port(host, 2).unwrap(),
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([31; 32]);
    let d = init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    let mut nodes = Vec::new();
    for path in &d.nodes {
        // Port 0: the node reports the address it bound.
        let mut text = std::fs::read_to_string(path).unwrap();
        text.push_str("metrics_listen = \"127.0.0.1:0\"\n");
        std::fs::write(path, text).unwrap();
        nodes.push(start(NodeSetup::load(path).unwrap()).await.unwrap());
    }
    let leader = nodes[0].metrics_addr.expect("leader metrics bound");
    let helper = nodes[1].metrics_addr.expect("helper metrics bound");

    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
    // Before any release: the whole budget is left, nothing counted.
    let (status, before) = tokio::task::spawn_blocking(move || get(leader, "/metrics"))
        .await
        .unwrap();
    assert!(status.contains("200"), "{status}");
    let eps_series = format!("cairn_epsilon_remaining{{task=\"{}\"}}", task.id().to_hex());
    assert_eq!(sample(&before, &eps_series), Some(4.0), "{before}");
    assert_eq!(sample(&before, "cairn_reports_received_total"), Some(0.0));

    let mut clients = Vec::new();
    for path in &d.credentials {
        let credential = cairn_client::sdk::read_credential(path).unwrap();
        clients.push(
            Client::builder(task.clone())
                .credential(credential)
                .build()
                .await
                .unwrap(),
        );
    }
    let client = &clients[0];
    let _ = client;
    for (i, c) in clients.iter().take(4).enumerate() {
        let update = vec![0.01 * i as f32; 20];
        c.submit(0, &update).await.unwrap();
    }
    let stranger = Client::builder(task.clone())
        .credential(Credential::generate(task.id(), &mut rng))
        .build()
        .await
        .unwrap();
    match stranger.submit(0, &[0.0; 20]).await {
        Err(SdkError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("{other:?}"),
    }
    let (collector_key, collector_identity) = read_collector_keys(&d.collector_dir).unwrap();
    let collector = Collector::builder(task.clone())
        .hpke_key(collector_key)
        .identity(collector_identity)
        .build()
        .await
        .unwrap();
    let released = tokio::time::timeout(Duration::from_secs(60), collector.collect(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.count, 4);
    let receipt = released.receipt().unwrap();

    let (text, helper_text, health, missing) = tokio::task::spawn_blocking(move || {
        (
            get(leader, "/metrics").1,
            get(helper, "/metrics").1,
            get(leader, "/health"),
            get(leader, "/nothing").0,
        )
    })
    .await
    .unwrap();
    // The stranger's upload is refused before it counts as received: only
    // authenticated reports reach the per-round metrics.
    assert_eq!(
        sample(&text, "cairn_reports_received_total"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "cairn_reports_accepted_total"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "cairn_reports_rejected_total{reason=\"unauthorized\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "cairn_rounds_released_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "cairn_round_latency_seconds_count"),
        Some(1.0),
        "{text}"
    );
    let left = sample(&text, &eps_series).unwrap();
    assert!(
        (left - receipt.epsilon_remaining).abs() < 1e-9 && left < 4.0,
        "{text}"
    );
    // The helper counts its own release and its own ledger's ε.
    assert_eq!(
        sample(&helper_text, "cairn_rounds_released_total"),
        Some(1.0),
        "{helper_text}"
    );
    assert!((sample(&helper_text, &eps_series).unwrap() - left).abs() < 1e-9);
    assert!(health.0.contains("200"), "{health:?}");
    assert_eq!(health.1, "ok\n");
    assert!(missing.contains("404"), "{missing}");

    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}
