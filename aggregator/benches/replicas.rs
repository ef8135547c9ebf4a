//! Throughput of one aggregator run as 1, 2 and 4 leader replicas on one PostgreSQL
//! database, beside the same round on SQLite.
//!
//! Each configuration is a fresh deployment at d = 10^4 without noise: the leader
//! replicas and one helper are `cairn node` processes (release build); a local
//! PostgreSQL cluster (`fsync = on`, Unix socket) holds one database per aggregator.
//! The benchmark process runs the clients — `CAIRN_BENCH_CLIENTS` (default 500), each
//! with its own credential, at most 64 uploads in flight, spread over the leader
//! replicas by the SDK — and then one collect. It reports
//!
//! * uploads per second: all uploads, from the first request to the last
//!   acknowledgement (the leader replicas aggregate meanwhile, on the same cores);
//! * reports verified and aggregated per second, end to end: the reports over the time
//!   from the first upload to the released sum (every report verified with the helper
//!   and aggregated);
//! * database round trips per report: statements executed in each aggregator's
//!   database (`pg_stat_statements`, `BEGIN`/`COMMIT` and the pool's connection checks
//!   included) over the reports, and committed transactions per report
//!   (`pg_stat_database`).
//!
//! Everything shares this machine's cores: clients, replicas, helper and database.
//!
//! `cargo bench -p cairn-aggregator --bench replicas`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/pg_cluster.rs"]
mod pg_cluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_aggregator::deploy::{self, InitParams, free_base_port, read_collector_keys};
use cairn_client::sdk::{Client, Collector};
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use pg_cluster::PgCluster;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: u32 = 10_000;
const IN_FLIGHT: usize = 64;

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .env("RUST_LOG", "error")
        .args(["node", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs a blocking PostgreSQL client off the async workers.
fn sql(url: &str, query: &str) -> Vec<i64> {
    let (url, query) = (url.to_owned(), query.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query(query.as_str(), &[])
            .unwrap()
            .iter()
            .map(|r| r.try_get::<_, i64>(0).unwrap_or(0))
            .collect()
    })
    .join()
    .unwrap()
}

/// Statements and committed transactions in the database at `url` so far.
fn db_counts(url: &str) -> (i64, i64) {
    let statements = sql(
        url,
        "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )[0];
    let xacts = sql(
        url,
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )[0];
    (statements, xacts)
}

struct Outcome {
    uploads_per_s: f64,
    aggregated_per_s: f64,
    /// Per report, for the leader's and the helper's databases: (statements, transactions).
    per_report: Option<[(f64, f64); 2]>,
}

async fn run(cluster: Option<&PgCluster>, replicas: usize, clients: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let base = free_base_port(host, replicas as u16 + 1).unwrap();
    let params = InitParams {
        dimension: DIM,
        noise: NoisePlacement::None,
        min_clients: 1,
        max_clients: clients as u32 + 10,
        clients: 1,
        base_port: base,
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(replicas as u64);
    let d = deploy::init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    // Leader replicas at base, base+2, base+3, …; the helper at base+1.
    let leader_ports: Vec<u16> = std::iter::once(base)
        .chain((2..=replicas as u16).map(|r| base + r))
        .collect();
    let text = std::fs::read_to_string(&d.task).unwrap();
    let others: Vec<String> = leader_ports[1..]
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let text = text.replacen(
        &format!("endpoint = \"127.0.0.1:{base}\"\n"),
        &format!(
            "endpoint = \"127.0.0.1:{base}\"\nreplica_endpoints = [{}]\n",
            others.join(", ")
        ),
        1,
    );
    std::fs::write(&d.task, &text).unwrap();
    let task = TaskConfig::from_toml(&text).unwrap();

    let mut urls = Vec::new();
    if let Some(cluster) = cluster {
        for node in &d.nodes {
            let url = cluster.create_database();
            let mut t = std::fs::read_to_string(node).unwrap();
            t.push_str(&format!(
                "store = \"postgres\"\ndatabase_url = \"{url}\"\ndatabase_pool_size = 8\n"
            ));
            std::fs::write(node, t).unwrap();
            cairn_aggregator::cli::db::migrate(node).unwrap();
            sql(&url, "CREATE EXTENSION pg_stat_statements");
            urls.push(url);
        }
    }
    let mut configs: Vec<PathBuf> = vec![d.nodes[0].clone(), d.nodes[1].clone()];
    let leader_text = std::fs::read_to_string(&d.nodes[0]).unwrap();
    for (r, port) in leader_ports.iter().enumerate().skip(1) {
        let path = d.dir.join(format!("node-0-replica-{r}.toml"));
        std::fs::write(
            &path,
            leader_text.replace(
                &format!("listen = \"127.0.0.1:{base}\""),
                &format!("listen = \"127.0.0.1:{port}\""),
            ),
        )
        .unwrap();
        configs.push(path);
    }
    let credentials = deploy::add_clients(&d.dir, clients as u32, &mut rng).unwrap();
    let _nodes = Nodes(configs.iter().map(|c| spawn(c)).collect());
    // Start-up (process, database pool) is not part of the measurement.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut sdk_clients = Vec::new();
    for path in &credentials {
        sdk_clients.push(Arc::new(
            Client::builder(task.clone())
                .credential(cairn_client::sdk::read_credential(path).unwrap())
                .build()
                .await
                .unwrap(),
        ));
    }
    let (key, identity) = read_collector_keys(&d.collector_dir).unwrap();
    let collector = Collector::builder(task.clone())
        .hpke_key(key)
        .identity(identity)
        .build()
        .await
        .unwrap();
    let before: Vec<(i64, i64)> = urls.iter().map(|u| db_counts(u)).collect();

    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut uploads = Vec::new();
    for (k, c) in sdk_clients.iter().enumerate() {
        let (c, gate) = (Arc::clone(c), Arc::clone(&gate));
        uploads.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let mut x = vec![0i64; DIM as usize];
            x[k % DIM as usize] = 1;
            c.submit_quantised(0, &x).await.unwrap();
        }));
    }
    for u in uploads {
        u.await.unwrap();
    }
    let uploaded = started.elapsed();
    let released = collector.collect(0).await.unwrap();
    let done = started.elapsed();
    assert_eq!(released.count as usize, clients, "every report released");

    let per_report = (urls.len() == 2).then(|| {
        let mut out = [(0.0, 0.0); 2];
        for (i, url) in urls.iter().enumerate() {
            let after = db_counts(url);
            out[i] = (
                (after.0 - before[i].0) as f64 / clients as f64,
                (after.1 - before[i].1) as f64 / clients as f64,
            );
        }
        out
    });
    Outcome {
        uploads_per_s: clients as f64 / uploaded.as_secs_f64(),
        aggregated_per_s: clients as f64 / done.as_secs_f64(),
        per_report,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let clients: usize = std::env::var("CAIRN_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = PgCluster::start_counting_statements();
    println!("d = {DIM}, {clients} clients, at most {IN_FLIGHT} uploads in flight, one helper");
    println!(
        "| store | leader replicas | uploads/s | reports verified+aggregated/s (end to end) | \
         leader DB statements / transactions per report | helper DB statements / transactions per report |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |store: &str, replicas: usize, o: &Outcome| {
        let db = |i: usize| {
            o.per_report.map_or("–".to_owned(), |p| {
                format!("{:.1} / {:.1}", p[i].0, p[i].1)
            })
        };
        println!(
            "| {store} | {replicas} | {:.0} | {:.0} | {} | {} |",
            o.uploads_per_s,
            o.aggregated_per_s,
            db(0),
            db(1)
        );
    };
    let sqlite = rt.block_on(run(None, 1, clients));
    row("SQLite", 1, &sqlite);
    for replicas in [1, 2, 4] {
        let o = rt.block_on(run(Some(&cluster), replicas, clients));
        row("PostgreSQL", replicas, &o);
    }
}
