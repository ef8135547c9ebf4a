//! The end-to-end round over loopback QUIC: a deployment from `cairn init`'s writer,
//! the leader and the helper as two separate processes (this binary in its hidden
//! `--serve-node CONFIG` mode), N clients submitting concurrently as tokio tasks, and
//! the collector releasing the round. Measured: wall time of the round (first submit
//! to decoded release), its two phases, and each node's peak RSS (`VmHWM`).
//!
//! A node process prints `ready` once it listens and shuts down when its stdin closes,
//! so a crashed harness never leaves nodes behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cairn_aggregator::deploy::{InitParams, free_base_port, init};
use cairn_aggregator::node::{NodeSetup, read_secret_hex, start};
use cairn_client::sdk::{Client, Collector};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_transport::{Identity, RetryPolicy};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Serialize;

use crate::cairn::random_update;
use crate::machine::{cpu_secs, peak_rss_kib};

/// One end-to-end round.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoundFigures {
    /// Clients.
    pub(crate) clients: usize,
    /// Dimension d.
    pub(crate) d: usize,
    /// First submit to decoded release, seconds.
    pub(crate) round_secs: f64,
    /// All clients prepared and uploaded (acknowledged), seconds.
    pub(crate) submit_secs: f64,
    /// Collect request to decoded release (aggregation jobs finish meanwhile), seconds.
    pub(crate) collect_secs: f64,
    /// Reports in the release.
    pub(crate) count: u32,
    /// Peak RSS of the leader process, MiB.
    pub(crate) leader_peak_rss_mib: Option<f64>,
    /// Peak RSS of the helper process, MiB.
    pub(crate) helper_peak_rss_mib: Option<f64>,
    /// Noise placement of the task.
    pub(crate) noise: String,
    /// Bytes one client uploads (its encoded `UploadRequest`, before QUIC framing).
    pub(crate) upload_bytes_per_client: usize,
    /// Uploads the leader answered `Busy` (its upload memory full; the client retried).
    pub(crate) busy_answers: Option<u64>,
    /// CPU seconds (all threads) the leader process used during the round.
    pub(crate) leader_cpu_secs: Option<f64>,
    /// CPU seconds the helper process used during the round.
    pub(crate) helper_cpu_secs: Option<f64>,
    /// CPU seconds this process (the clients, which prepare and upload, and the
    /// collector) used during the round.
    pub(crate) clients_cpu_secs: Option<f64>,
}

/// The encoded size of one client's upload of `update`.
fn upload_bytes(
    task: &TaskConfig,
    credential: &Path,
    update: &[f32],
    rng: &mut ChaCha20Rng,
) -> anyhow::Result<usize> {
    let credential = cairn_client::sdk::read_credential(credential).context("credential")?;
    let client = cairn_protocol::client::Client::new(task.clone(), credential)
        .map_err(|e| anyhow::anyhow!("client: {e}"))?;
    crate::cairn::upload_len(&client, update, rng)
}

/// Turns on the leader's metrics endpoint, on a free loopback port, so that the round
/// can read its counters; and lets each client connection carry 16 uploads at once,
/// since this load generator sends its devices' uploads over 8 connections. (Its
/// clients all run on this machine: `cairn init` lifts the leader's limits per client
/// address for a loopback deployment.)
fn enable_leader_metrics(node_config: &Path) -> anyhow::Result<std::net::SocketAddr> {
    // Free when probed; the node binds it a moment later.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut text = std::fs::read_to_string(node_config)?;
    text.push_str(&format!(
        "metrics_listen = \"{addr}\"\nclient_streams = 16\n"
    ));
    std::fs::write(node_config, text)?;
    Ok(addr)
}

/// A counter's value from the Prometheus exposition at `addr` (`None` if unreadable).
fn scrape_counter(addr: std::net::SocketAddr, name: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The hidden node mode: start the node of `config`, print `ready`, run until stdin
/// closes.
pub(crate) fn serve_node(config: &Path) -> anyhow::Result<()> {
    // As the `cairn` binary does for its nodes. The clients' process is left alone: its
    // allocator is only as the build makes it (mimalloc without huge pages, the
    // workspace's `Cargo.toml`).
    cairn_aggregator::allocator::keep_freed_pages();
    // Refused, the figures would not be the `cairn` binary's: say so rather than measure.
    cairn_aggregator::allocator::no_transparent_huge_pages()
        .context("turning transparent huge pages off for a node process")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let node = start(NodeSetup::load(config)?).await?;
        println!("ready {}", node.local_addr);
        // Any read result (EOF, error) ends the node.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin()
                .read_line(&mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                sink.clear();
            }
        })
        .await;
        node.shutdown(Duration::from_secs(1)).await;
        anyhow::Ok(())
    })
}

/// A node child process; killed (by its own pid) if still running when dropped.
struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    fn spawn(config: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("--serve-node")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning a node process")?;
        let stdout = child.stdout.take().context("node stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("ready") {
            let _ = child.kill();
            bail!("node {} did not start: {line:?}", config.display());
        }
        Ok(Self { child })
    }

    fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(self.child.id())
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        peak_rss_kib(self.child.id()).map(|k| k as f64 / 1024.0)
    }

    fn stop(mut self) {
        // Closing stdin asks the node to shut down.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs one round with `clients` clients at dimension `d` in a fresh deployment.
pub(crate) fn round(
    clients: usize,
    d: usize,
    dir: &Path,
    seed: u8,
) -> anyhow::Result<RoundFigures> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    // A fresh deployment folder per round: `--e2e-clients 10,10` repeats a size, and
    // `init` refuses to overwrite a deployment.
    let deploy_dir = (0..)
        .map(|k| dir.join(format!("e2e-{clients}-{d}-{k}")))
        .find(|p| !p.exists())
        .context("a deployment folder")?;
    let params = InitParams {
        aggregators: 2,
        dimension: u32::try_from(d)?,
        noise: NoisePlacement::Aggregator,
        min_clients: u32::try_from(clients)?,
        clients: u32::try_from(clients)?,
        base_port: free_base_port(host, 2)?,
        ..InitParams::default()
    };
    let dep = init(&deploy_dir, &params, &mut rng)?;
    let metrics = enable_leader_metrics(&dep.nodes[0])?;
    let leader = NodeProcess::spawn(&dep.nodes[0])?;
    let helper = NodeProcess::spawn(&dep.nodes[1])?;
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&dep.task)?)
        .map_err(|e| anyhow::anyhow!("task: {e}"))?;
    let updates: Vec<Vec<f32>> = (0..clients)
        .map(|_| random_update(&mut rng, d, task.clip_norm()))
        .collect();
    let upload_bytes_per_client = upload_bytes(&task, &dep.credentials[0], &updates[0], &mut rng)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = rt.block_on(async {
        // One client (credential) per simulated device, sharing a few QUIC endpoints
        // (one per device would mean N endpoints in one process).
        let mut sdk_clients: Vec<Arc<Client>> = Vec::new();
        for (i, path) in dep.credentials.iter().enumerate() {
            // A fleet's devices are patient: a leader at its upload memory budget answers
            // Busy, and a device retries with backoff until it is taken.
            let mut builder = Client::builder(task.clone())
                .credential(cairn_client::sdk::read_credential(path).context("credential")?)
                .retry(RetryPolicy {
                    max_attempts: 60,
                    initial_delay: Duration::from_millis(100),
                    max_delay: Duration::from_secs(2),
                    jitter: true,
                });
            if i >= 8 {
                builder = builder.share_connection_of(&sdk_clients[i % 8]);
            }
            sdk_clients.push(Arc::new(builder.build().await?));
        }
        let collector = Collector::builder(task.clone())
            .hpke_key(HpkeSecretKey::from_bytes(read_secret_hex(
                &dep.collector_dir.join("hpke.key"),
            )?))
            .identity(Identity::read_pem_files(
                &dep.collector_dir.join("cert.pem"),
                &dep.collector_dir.join("key.pem"),
            )?)
            .retry(RetryPolicy {
                max_attempts: 10_000,
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                jitter: false,
            })
            .build()
            .await?;

        let cpu_before = [
            leader.cpu_secs(),
            helper.cpu_secs(),
            cpu_secs(std::process::id()),
        ];
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (i, u) in updates.into_iter().enumerate() {
            let c = Arc::clone(&sdk_clients[i]);
            tasks.push(tokio::spawn(async move { c.submit(0, &u).await }));
        }
        for t in tasks {
            t.await??;
        }
        let submitted = start.elapsed();
        let collection = tokio::time::timeout(Duration::from_secs(1800), collector.collect(0))
            .await
            .context("collect timed out")??;
        let total = start.elapsed();
        let cpu_after = [
            leader.cpu_secs(),
            helper.cpu_secs(),
            cpu_secs(std::process::id()),
        ];
        let used = |i: usize| Some(cpu_after[i]? - cpu_before[i]?);
        let busy_answers = scrape_counter(metrics, "cairn_uploads_busy_total");
        anyhow::Ok(RoundFigures {
            busy_answers,
            leader_cpu_secs: used(0),
            helper_cpu_secs: used(1),
            clients_cpu_secs: used(2),
            clients,
            d,
            round_secs: total.as_secs_f64(),
            submit_secs: submitted.as_secs_f64(),
            collect_secs: (total - submitted).as_secs_f64(),
            count: collection.count,
            leader_peak_rss_mib: None,
            helper_peak_rss_mib: None,
            noise: "aggregator".into(),
            upload_bytes_per_client,
        })
    })?;
    let figures = RoundFigures {
        leader_peak_rss_mib: leader.peak_rss_mib(),
        helper_peak_rss_mib: helper.peak_rss_mib(),
        ..figures
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    leader.stop();
    helper.stop();
    Ok(figures)
}
