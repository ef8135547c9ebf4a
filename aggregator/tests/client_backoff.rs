//! Back-pressure seen by the SDK: a leader that answers `Busy` twice before it stores
//! the report. The client retries with backoff (the delays the retry policy gives,
//! without jitter here), re-sends the very same report bytes each time, and returns
//! the acknowledged report id; a leader that stays busy makes it give up after the
//! policy's attempts with `Refused { Busy }`; with a second leader replica listed in the
//! task, a client answered `Busy` moves on to it. A `Busy` answer's retry-after advice
//! lengthens the client's wait, up to the client's own ceiling. Preparing the report
//! does not hold up the client's async runtime meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_aggregator::deploy::{self, InitParams, free_base_port};
use cairn_client::sdk::{Client, SdkError};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::messages::{ErrorCode, ErrorMessage, Message, UploadResponse};
use cairn_transport::{ClientAuth, Identity, RetryPolicy, ServerEndpoint, TransportOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A fake leader on the task's leader address and certificate: answers `Busy` (with
/// no retry advice) to the first `busy` requests, then acknowledges; records every
/// request's bytes.
async fn fake_leader(
    d: &deploy::Deployment,
    task: &TaskConfig,
    busy: usize,
) -> (ServerEndpoint, Arc<Mutex<Vec<(Instant, Vec<u8>)>>>) {
    fake_leader_at(d, task, task.aggregators()[0].endpoint, busy, 0).await
}

/// [`fake_leader`] listening at `addr` (a replica of the leader), its `Busy` answers
/// advising `retry_after_ms`.
async fn fake_leader_at(
    d: &deploy::Deployment,
    task: &TaskConfig,
    addr: std::net::SocketAddr,
    busy: usize,
    retry_after_ms: u32,
) -> (ServerEndpoint, Arc<Mutex<Vec<(Instant, Vec<u8>)>>>) {
    let identity = Identity::read_pem_files(
        &d.dir.join("aggregator-0/cert.pem"),
        &d.dir.join("aggregator-0/key.pem"),
    )
    .unwrap();
    let limits = cairn_protocol::task::Task::new(task.clone())
        .unwrap()
        .limits();
    let server = ServerEndpoint::bind(
        addr,
        &identity,
        &ClientAuth::Anonymous,
        TransportOptions {
            max_frame_len: limits.max_frame_len(),
            ..TransportOptions::default()
        },
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let serving = server.clone();
    tokio::spawn(async move {
        serving
            .serve(move |_peer, bytes| {
                let log = Arc::clone(&log);
                async move {
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push((Instant::now(), bytes.clone()));
                        log.len()
                    };
                    let Ok(Message::UploadRequest(req)) = Message::decode(&bytes, &limits) else {
                        panic!("the client sent something other than an upload");
                    };
                    if n <= busy {
                        Message::Error(ErrorMessage {
                            code: ErrorCode::Busy,
                            detail: "full, retry later".into(),
                            retry_after_ms,
                        })
                        .encode()
                    } else {
                        Message::UploadResponse(UploadResponse {
                            report_id: req.report.report_id,
                        })
                        .encode()
                    }
                }
            })
            .await;
    });
    (server, seen)
}

async fn setup() -> (tempfile::TempDir, deploy::Deployment, TaskConfig) {
    setup_with(8).await
}

async fn setup_with(dimension: u32) -> (tempfile::TempDir, deploy::Deployment, TaskConfig) {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        dimension,
        noise: NoisePlacement::None,
        min_clients: 1,
        clients: 8,
        // The third port is for a second leader replica.
        base_port: free_base_port(host, 3).unwrap(),
        ..InitParams::default()
    };
    let d = deploy::init(
        &dir.path().join("deploy"),
        &params,
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
    (dir, d, task)
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        jitter: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_leader_is_retried_with_backoff_and_the_same_report() {
    let (_dir, d, task) = setup().await;
    let (_server, seen) = fake_leader(&d, &task, 2).await;
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let client = Client::builder(task.clone())
        .credential(credential)
        .retry(policy(6))
        .build()
        .await
        .unwrap();
    let id = client.submit(0, &[0.1; 8]).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "two Busy answers, then the acknowledgement");
    assert!(
        seen.iter().all(|(_, b)| *b == seen[0].1),
        "the same report bytes each time"
    );
    let Ok(Message::UploadRequest(req)) = Message::decode(
        &seen[0].1,
        &cairn_protocol::task::Task::new(task).unwrap().limits(),
    ) else {
        panic!("not an upload");
    };
    assert_eq!(req.report.report_id, id);
    // Backoff: at least the policy's first two delays (100 ms, then 200 ms).
    let gap1 = seen[1].0 - seen[0].0;
    let gap2 = seen[2].0 - seen[1].0;
    assert!(gap1 >= Duration::from_millis(100), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(200), "{gap2:?}");
}

/// One `Busy` answer advising `advice_ms`, then the acknowledgement, to a client whose
/// policy waits at most `max_delay`: the gap between the client's two requests.
/// Without advice the policy waits 100 ms there.
async fn gap_after_busy_advising(advice_ms: u32, max_delay: Duration) -> Duration {
    let (_dir, d, task) = setup().await;
    let leader = task.aggregators()[0].endpoint;
    let (_server, seen) = fake_leader_at(&d, &task, leader, 1, advice_ms).await;
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let client = Client::builder(task.clone())
        .credential(credential)
        .retry(RetryPolicy {
            max_delay,
            ..policy(3)
        })
        .build()
        .await
        .unwrap();
    client.submit(0, &[0.1; 8]).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one Busy answer, then the acknowledgement");
    seen[1].0 - seen[0].0
}

/// The leader's retry-after advice is a floor on the client's backoff, not a reason to
/// wait longer: far below the policy's 10 s ceiling, the gap is the advice (not twice
/// it, not the ceiling), with room for a slow machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_answer_s_retry_after_is_honoured() {
    let gap = gap_after_busy_advising(700, Duration::from_secs(10)).await;
    assert!(gap >= Duration::from_millis(700), "{gap:?}");
    assert!(gap < Duration::from_millis(1_400), "{gap:?}");
}

/// …and the client's own ceiling (`max_delay`, 1 s here) caps it: a dishonest leader
/// advising 49 days cannot park a client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_policy_s_ceiling_is_capped() {
    let gap = gap_after_busy_advising(u32::MAX, Duration::from_secs(1)).await;
    assert!(gap >= Duration::from_secs(1), "{gap:?}");
    assert!(gap < Duration::from_secs(5), "{gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_stays_busy_makes_the_client_give_up_after_its_attempts() {
    let (_dir, d, task) = setup().await;
    let (_server, seen) = fake_leader(&d, &task, usize::MAX).await;
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let client = Client::builder(task)
        .credential(credential)
        .retry(policy(3))
        .build()
        .await
        .unwrap();
    match client.submit(0, &[0.1; 8]).await {
        Err(SdkError::Refused {
            code: ErrorCode::Busy,
            ..
        }) => {}
        other => panic!("expected Refused(Busy), got {other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "the policy's three attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_answered_busy_moves_on_to_another_leader_replica() {
    let (_dir, d, task) = setup().await;
    let primary = task.aggregators()[0].endpoint;
    let replica = std::net::SocketAddr::new(primary.ip(), primary.port() + 2);
    let text = std::fs::read_to_string(&d.task).unwrap().replacen(
        &format!("endpoint = \"{primary}\"\n"),
        &format!("endpoint = \"{primary}\"\nreplica_endpoints = [\"{replica}\"]\n"),
        1,
    );
    let task = TaskConfig::from_toml(&text).unwrap();
    // The primary is always full; the replica acknowledges at once.
    let (_full, at_full) = fake_leader_at(&d, &task, primary, usize::MAX, 0).await;
    let (_free, at_free) = fake_leader_at(&d, &task, replica, 0, 0).await;
    // Eight clients, each starting at a random replica: those that start at the full
    // one are answered Busy once and move on (with 2 attempts they could not succeed
    // by retrying the full replica).
    for path in &d.credentials {
        let client = Client::builder(task.clone())
            .credential(cairn_client::sdk::read_credential(path).unwrap())
            .retry(policy(2))
            .build()
            .await
            .unwrap();
        client.submit(0, &[0.1; 8]).await.unwrap();
    }
    assert_eq!(
        at_free.lock().unwrap().len(),
        8,
        "every client ends at the replica"
    );
    assert!(
        at_full.lock().unwrap().len() <= 8,
        "at most one Busy per client"
    );
}

/// Preparing a report (proving, mainly) runs off the client's async runtime. On a
/// single-threaded runtime, a task that ticks every 2 ms keeps ticking from the
/// submission's start to the upload's arrival: no gap between ticks comes near the
/// time one preparation takes (measured here first, inline, under the same load).
/// Were the preparation run on the runtime's thread, one gap would be at least that
/// long.
#[tokio::test(flavor = "current_thread")]
async fn preparing_a_report_does_not_hold_up_the_async_runtime() {
    let dimension = 500_000;
    let (_dir, d, task) = setup_with(dimension).await;
    let (_server, seen) = fake_leader(&d, &task, 0).await;
    let update = vec![0.0001_f32; dimension as usize];
    let inline = {
        let protocol = cairn_protocol::client::Client::new(
            task.clone(),
            cairn_client::sdk::read_credential(&d.credentials[1]).unwrap(),
        )
        .unwrap();
        let started = Instant::now();
        protocol
            .prepare_upload(0, &update, &mut ChaCha20Rng::from_seed([3; 32]))
            .unwrap();
        started.elapsed()
    };
    let client = Client::builder(task)
        .credential(cairn_client::sdk::read_credential(&d.credentials[0]).unwrap())
        .retry(policy(1))
        .build()
        .await
        .unwrap();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                ticks.lock().unwrap().push(Instant::now());
            }
        })
    };
    let started = Instant::now();
    client.submit(0, &update).await.unwrap();
    ticker.abort();
    let arrived = seen.lock().unwrap()[0].0;
    let mut marks = vec![started];
    marks.extend(
        ticks
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t > started && **t < arrived),
    );
    marks.push(arrived);
    let longest_gap = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest_gap < inline * 3 / 4,
        "the runtime stood still for {longest_gap:?}; one preparation takes {inline:?}"
    );
}
