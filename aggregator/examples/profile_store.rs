//! What the embedded store costs per large upload, for profiling: `N` reports of
//! `BYTES` bytes stored with `put_report`, then each read back with `report` (as a job
//! does), on a fresh SQLite database created with page size `PAGE` (each report's
//! bytes are a file of their own beside it, so the page size weighs on the small rows
//! only). Prints the CPU seconds of each phase (this process, all threads).
//!
//! `cargo run --release -p cairn-aggregator --example profile_store -- PAGE N BYTES`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cairn_aggregator::store::SqliteStore;
use cairn_protocol::auth::ClientId;
use cairn_protocol::config::TaskId;
use cairn_protocol::ids::ReportId;
use cairn_protocol::store::TaskStore;

fn cpu_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = text
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (page, n, bytes) = (args[0], args[1], args[2]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "page_size", page as i64).unwrap();
        conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap().task(TaskId([1; 32]), 3);
    let payload: Vec<u8> = (0..bytes).map(|i| (i * 7 + 3) as u8).collect();
    let ids: Vec<ReportId> = (0..n as u64)
        .map(|k| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&k.to_le_bytes());
            ReportId(id)
        })
        .collect();
    let t0 = cpu_secs();
    let w0 = std::time::Instant::now();
    for id in &ids {
        store
            .put_report(0, *id, ClientId(id.0), &payload, u32::MAX)
            .unwrap();
    }
    let t1 = cpu_secs();
    let w1 = std::time::Instant::now();
    let mut total = 0usize;
    for id in &ids {
        total += store.report(*id).unwrap().unwrap().len();
    }
    let t2 = cpu_secs();
    assert_eq!(total, n * bytes);
    println!(
        "page {page}: put {:.3} ms cpu ({:.3} ms wall), read {:.3} ms cpu per report",
        (t1 - t0) * 1e3 / n as f64,
        (w1 - w0).as_secs_f64() * 1e3 / n as f64,
        (t2 - t1) * 1e3 / n as f64
    );
}
