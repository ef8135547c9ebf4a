//! What one upload costs in the store: `put_report` (one transaction that checks the
//! report id, the client's one report per round and the round's cap, then inserts) on
//! the embedded SQLite store (WAL, `synchronous = FULL`) and on PostgreSQL (a throwaway
//! local cluster over a Unix socket, `fsync = on`, SERIALIZABLE transactions), the
//! latter both from a plain thread and from tokio's blocking pool, marked as the node
//! marks it (`on_blocking_thread`: the store runs in place) and unmarked (each call
//! takes a scoped thread of its own).
//!
//! `cargo bench -p cairn-aggregator --bench store -- --warm-up-time 1 --measurement-time 5`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/pg_cluster.rs"]
mod pg_cluster;

use std::sync::atomic::{AtomicU64, Ordering};

use cairn_aggregator::store::SqliteStore;
use cairn_aggregator::store::postgres::{PgConnect, PgStore, on_blocking_thread};
use cairn_protocol::auth::ClientId;
use cairn_protocol::config::TaskId;
use cairn_protocol::ids::ReportId;
use cairn_protocol::store::TaskStore;
use criterion::{Criterion, criterion_group, criterion_main};

/// A fresh (report, client) pair per call, all in round 0 (cap: unbounded).
fn upload(store: &impl TaskStore, next: &AtomicU64) {
    let n = next.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    let payload = [7u8; 2_900]; // about one report at d = 10^3..10^4 (BENCHMARKS.md)
    store
        .put_report(0, ReportId(id), ClientId(id), &payload, u32::MAX)
        .unwrap();
}

fn store(c: &mut Criterion) {
    let task = TaskId([1; 32]);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("bench.sqlite"))
        .unwrap()
        .task(task, 3);
    let cluster = pg_cluster::PgCluster::start_with(true);
    let connect = PgConnect {
        url: cluster.create_database(),
        password: None,
        pool_size: 4,
    };
    let pg = PgStore::migrate(&connect).unwrap().0.task(task, 3);
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("put_report");
    group.bench_function("sqlite", |b| b.iter(|| upload(&sqlite, &next)));
    group.bench_function("postgres", |b| b.iter(|| upload(&pg, &next)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("postgres_from_tokio_blocking_pool", |b| {
        b.iter(|| {
            let pg = pg.clone();
            rt.block_on(async {
                let n = next.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || {
                    on_blocking_thread(|| upload(&pg, &AtomicU64::new(n)))
                })
                .await
                .unwrap()
            })
        })
    });
    // The same without the mark: every call takes a thread of its own.
    group.bench_function("postgres_from_tokio_unmarked", |b| {
        b.iter(|| {
            let pg = pg.clone();
            rt.block_on(async {
                let n = next.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || upload(&pg, &AtomicU64::new(n)))
                    .await
                    .unwrap()
            })
        })
    });
    group.bench_function("sqlite_from_tokio_blocking_pool", |b| {
        b.iter(|| {
            let sqlite = sqlite.clone();
            rt.block_on(async {
                let n = next.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || upload(&sqlite, &AtomicU64::new(n)))
                    .await
                    .unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
