//! The long reliability runs (`--ignored`; figures in RELIABILITY.md):
//!
//! - `kill_loop_50_trials`: 50 seeded trials of `reliability_support::kill_trial`;
//! - `load_10000_uploads`: 10,000 uploads at d = 1000, up to 1,000 in flight, against a
//!   leader and a helper on loopback; every acknowledged report must be released;
//!   prints p50/p99 upload latency, throughput and each node's peak RSS;
//! - `partition_heals`: a UDP proxy the test controls sits between leader and helper;
//!   a round completes with 150 ms of delay each way; while it drops everything uploads still succeed and no round is released; after
//!   healing, the round releases the right count and sum.
//!
//! ```sh
//! cargo test --release -p cairn-aggregator --test reliability_long -- --ignored --nocapture --test-threads 1
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod reliability_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_protocol::messages::{ErrorCode, Message};
use cairn_transport::{ClientEndpoint, Connection, RetryPolicy};
use common::{NodeProcess, init};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reliability_support::{
    LoggedNode, client_k, collector, collector_identity, collector_with, kill_trial, patient,
    peak_rss_kb, protocol_client, quick_transport, task, verify_ledgers,
};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 50 process-level trials"]
async fn kill_loop_50_trials() {
    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut reports = 0;
    for seed in 0..50 {
        let o = kill_trial(1000 + seed).await;
        println!("{o:?}");
        *tally
            .entry(format!("victim {} at {:?}", o.victim, o.moment))
            .or_default() += 1;
        reports += o.acknowledged;
    }
    println!("50 trials passed; {reports} acknowledged reports all released once; {tally:?}");
}

const LOAD_DIM: usize = 1000;
/// Uploads of the load test; `RELIABILITY_LOAD_REPORTS` overrides (a multiple of 4).
fn load_reports() -> usize {
    std::env::var("RELIABILITY_LOAD_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
const LOAD_IN_FLIGHT: usize = 1_000;
const LOAD_CONNECTIONS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Sends one prepared upload with the SDK's retry semantics: the same bytes again on a
/// network failure or a retriable refusal; `Replay` on a retry means stored.
async fn upload(
    conn: &Connection,
    frame: &[u8],
    limits: &cairn_protocol::messages::Limits,
) -> (bool, u32) {
    let retry = RetryPolicy {
        max_attempts: 100,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(1),
        jitter: true,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(frame.len() as u64);
    for attempt in 1..=retry.max_attempts {
        let retriable = match conn.request(frame).await {
            Ok(bytes) => match Message::decode(&bytes, limits).unwrap() {
                Message::UploadResponse(_) => return (true, attempt),
                Message::Error(e) if e.code == ErrorCode::Replay && attempt > 1 => {
                    return (true, attempt);
                }
                Message::Error(e) if e.code.is_retriable() => true,
                other => panic!("upload refused: {other:?}"),
            },
            Err(e) => e.is_retriable(),
        };
        assert!(retriable, "a non-retriable failure");
        tokio::time::sleep(retry.delay(attempt, &mut rng)).await;
    }
    (false, retry.max_attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 10,000 uploads at d = 1000"]
async fn load_10000_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let clients = load_reports().to_string();
    let deploy = init(
        dir.path(),
        &[
            "--dim",
            "1000",
            "--noise",
            "none",
            "--min-clients",
            "1",
            "--clients",
            &clients,
        ],
        2,
    );
    // The load shares 50 connections: 16 uploads at once on each, as when measured.
    let leader_config = deploy.join("node-0.toml");
    let mut text = std::fs::read_to_string(&leader_config).unwrap();
    text.push_str("client_streams = 16\n");
    std::fs::write(&leader_config, text).unwrap();
    let nodes: Vec<LoggedNode> = (0..2)
        .map(|i| {
            LoggedNode::start(
                &deploy.join(format!("node-{i}.toml")),
                &dir.path().join(format!("node-{i}.log")),
                "warn",
            )
        })
        .collect();
    let task = task(&deploy);
    let limits = cairn_protocol::scheme::Scheme::for_task(&task)
        .unwrap()
        .limits();
    let reports = load_reports();

    // Prepare every report first (client-side proving is not the node's load).
    let started = Instant::now();
    let mut frames = Vec::with_capacity(reports);
    let chunks: Vec<_> = (0..4)
        .map(|c| {
            let deploy = deploy.clone();
            tokio::task::spawn_blocking(move || {
                let reports = load_reports();
                let mut rng = ChaCha20Rng::seed_from_u64(c);
                let per_chunk = reports / 4;
                (0..per_chunk)
                    .map(|i| {
                        // One client per report (one report per client per round).
                        let protocol = protocol_client(&deploy, c as usize * per_chunk + i);
                        let mut x = vec![0i64; LOAD_DIM];
                        x[0] = 1;
                        x[LOAD_DIM - 1] = 2;
                        Message::UploadRequest(
                            protocol.prepare_upload_quantised(0, &x, &mut rng).unwrap(),
                        )
                        .encode()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for c in chunks {
        frames.extend(c.await.unwrap());
    }
    println!(
        "prepared {} uploads in {:?}",
        frames.len(),
        started.elapsed()
    );

    let endpoint = ClientEndpoint::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
        cairn_transport::TransportOptions {
            request_timeout: Duration::from_secs(30),
            ..quick_transport(&task)
        },
    )
    .unwrap();
    let mut conns = Vec::new();
    for _ in 0..LOAD_CONNECTIONS {
        let conn = loop {
            match endpoint
                .connect(
                    task.aggregators()[0].endpoint,
                    task.aggregator_fingerprint(0).unwrap(),
                )
                .await
            {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        conns.push(conn);
    }

    let gate = Arc::new(Semaphore::new(LOAD_IN_FLIGHT));
    let retries = Arc::new(AtomicU64::new(0));
    let limits = Arc::new(limits);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(reports);
    for (i, frame) in frames.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let conn = conns[i % LOAD_CONNECTIONS].clone();
        let (retries, limits) = (retries.clone(), limits.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let (ok, attempts) = upload(&conn, &frame, &limits).await;
            retries.fetch_add(u64::from(attempts - 1), Ordering::Relaxed);
            drop(permit);
            (ok, t.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(reports);
    let mut acknowledged = 0u32;
    for t in tasks {
        let (ok, latency) = t.await.unwrap();
        acknowledged += u32::from(ok);
        latencies.push(latency);
    }
    let upload_time = started.elapsed();
    latencies.sort();
    let rss_after_uploads: Vec<_> = nodes.iter().map(|n| peak_rss_kb(n.pid())).collect();

    let col = collector_with(
        &deploy,
        collector_identity(&deploy),
        RetryPolicy {
            max_attempts: 2000,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
            jitter: true,
        },
    )
    .await;
    let collect_start = Instant::now();
    let released = col.collect(0).await.unwrap();
    let collect_time = collect_start.elapsed();
    let rss: Vec<_> = nodes.iter().map(|n| peak_rss_kb(n.pid())).collect();
    println!(
        "LOAD d={LOAD_DIM}: {acknowledged}/{reports} acknowledged in {upload_time:?} \
         ({:.1} uploads/s) with up to {LOAD_IN_FLIGHT} in flight over {LOAD_CONNECTIONS} connections; \
         {} retries; latency p50 {:?} p99 {:?} max {:?}; collect (jobs + release) {collect_time:?}; \
         released count {}; peak RSS kB after uploads {rss_after_uploads:?}, at the end (leader, helper) {rss:?}",
        f64::from(acknowledged) / upload_time.as_secs_f64(),
        retries.load(Ordering::Relaxed),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        released.count,
    );
    assert_eq!(acknowledged as usize, reports);
    assert_eq!(
        released.count, acknowledged,
        "every acknowledged report is released"
    );
    assert_eq!(released.sum_quantised[0], i64::from(acknowledged));
    assert_eq!(
        released.sum_quantised[LOAD_DIM - 1],
        2 * i64::from(acknowledged)
    );
    drop(nodes);
    assert_eq!(verify_ledgers(&deploy, 2), vec![1, 1]);
}

/// What the proxy does to datagrams.
#[derive(Default)]
struct Impairment {
    /// Drop every datagram, both ways.
    cut: AtomicBool,
    /// Delay every datagram by this many milliseconds, both ways.
    delay_ms: AtomicU64,
}

impl Impairment {
    /// Forwards `data` through `send` unless cut, after the configured delay.
    fn forward<F, Fut>(&self, data: &[u8], send: F)
    where
        F: FnOnce(Vec<u8>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        if self.cut.load(Ordering::SeqCst) {
            return;
        }
        let delay = Duration::from_millis(self.delay_ms.load(Ordering::SeqCst));
        let data = data.to_vec();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            send(data).await;
        });
    }
}

/// A UDP proxy: datagrams from any client to `listen` go to `upstream` from a socket
/// per client, and back, dropped or delayed as `impair` says.
async fn proxy(listen: UdpSocket, upstream: SocketAddr, impair: Arc<Impairment>) {
    let listen = Arc::new(listen);
    let mut routes: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = listen.recv_from(&mut buf).await.unwrap();
        let out = match routes.get(&from) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                s.connect(upstream).await.unwrap();
                let (back, listen, impair) = (s.clone(), listen.clone(), impair.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = back.recv(&mut buf).await {
                        let listen = listen.clone();
                        impair.forward(&buf[..n], move |d| async move {
                            let _ = listen.send_to(&d, from).await;
                        });
                    }
                });
                routes.insert(from, s.clone());
                s
            }
        };
        impair.forward(&buf[..n], move |d| async move {
            let _ = out.send(&d).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: waits out transport timeouts"]
async fn partition_heals() {
    partition_then_heal(Partition::Long).await;
}

/// The same partition in CI's time: no delayed round, one refused collect during a
/// short cut, then the heal. The long form adds the 150 ms delay and outlasts the QUIC
/// idle timeout, so the leader must reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heals_short() {
    partition_then_heal(Partition::Short).await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Partition {
    Short,
    Long,
}

async fn partition_then_heal(form: Partition) {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &["--dim", "8", "--noise", "none", "--min-clients", "1"],
        2,
    );
    // The task's helper endpoint becomes the proxy; the helper still listens where
    // its node configuration says.
    let helper = task(&deploy).aggregators()[1].endpoint;
    let listen = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let via = listen.local_addr().unwrap();
    let text = std::fs::read_to_string(deploy.join("task.toml")).unwrap();
    let quoted = format!("\"{helper}\"");
    assert_eq!(text.matches(&quoted).count(), 1);
    std::fs::write(
        deploy.join("task.toml"),
        text.replace(&quoted, &format!("\"{via}\"")),
    )
    .unwrap();
    let impair = Arc::new(Impairment::default());
    tokio::spawn(proxy(listen, helper, impair.clone()));
    let nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let mut cs = Vec::new();
    for k in 0..=5 {
        cs.push(client_k(&deploy, k, patient()).await);
    }
    let submit = |k: i64| {
        let mut x = vec![0i64; 8];
        x[0] = k;
        x
    };

    // Through the proxy (in the long form delaying every datagram by 150 ms each way),
    // a round completes.
    if form == Partition::Long {
        impair.delay_ms.store(150, Ordering::SeqCst);
    }
    let t = Instant::now();
    for k in 1..=3 {
        cs[k as usize]
            .submit_quantised(0, &submit(k))
            .await
            .unwrap();
    }
    let released = collector(&deploy).await.collect(0).await.unwrap();
    println!(
        "round 0 ({} ms delay each way) released in {:?}",
        impair.delay_ms.load(Ordering::SeqCst),
        t.elapsed()
    );
    assert_eq!((released.count, released.sum_quantised[0]), (3, 6));
    impair.delay_ms.store(0, Ordering::SeqCst);

    // The cut: uploads are still acknowledged, no release happens.
    impair.cut.store(true, Ordering::SeqCst);
    let t = Instant::now();
    for k in 1..=5 {
        cs[k as usize]
            .submit_quantised(1, &submit(k))
            .await
            .unwrap();
    }
    println!("5 uploads during the cut acknowledged in {:?}", t.elapsed());
    let impatient = collector_with(
        &deploy,
        collector_identity(&deploy),
        RetryPolicy {
            max_attempts: 3,
            ..patient()
        },
    )
    .await;
    let tries = if form == Partition::Long { 3 } else { 1 };
    for _ in 0..tries {
        let outcome = impatient.collect(1).await;
        println!(
            "collect during the cut: {:?}",
            outcome.as_ref().map(|r| r.count)
        );
        assert!(outcome.is_err(), "no release while the helper is cut off");
    }
    // Long form: outlast the nodes' QUIC idle timeout (30 s): the leader must reconnect.
    let cut_at = t;
    while form == Partition::Long && cut_at.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("cut for {:?}", cut_at.elapsed());

    // Heal: the same round releases every acknowledged report.
    impair.cut.store(false, Ordering::SeqCst);
    let t = Instant::now();
    let released = collector_with(
        &deploy,
        collector_identity(&deploy),
        RetryPolicy {
            max_attempts: 300,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            jitter: true,
        },
    )
    .await
    .collect(1)
    .await
    .unwrap();
    println!(
        "released {} reports {:?} after healing",
        released.count,
        t.elapsed()
    );
    assert_eq!((released.count, released.sum_quantised[0]), (5, 15));
    drop(nodes);
    assert_eq!(verify_ledgers(&deploy, 2), vec![2, 2]);
}
