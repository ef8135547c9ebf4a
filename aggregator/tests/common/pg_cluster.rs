//! A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary folder, a
//! server on a Unix socket there (no TCP port to collide with), stopped and removed
//! when the value is dropped.
//!
//! It uses the server of the Debian `postgresql` package (`/usr/lib/postgresql/N/bin`),
//! or `initdb` and `postgres` on the PATH. As root (CI), the cluster belongs to the
//! `postgres` user (`initdb` refuses root) and runs through `runuser`. A missing server
//! fails the test with what to install; `scripts/test` installs it.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgCluster {
    dir: tempfile::TempDir,
    server: Child,
    port: u16,
    next_db: std::sync::atomic::AtomicU32,
}

fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's owner (`postgres` when we are root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PgCluster {
    /// Starts a fresh cluster (without fsync: tests need speed, not durability against
    /// power loss), or panics saying what is missing.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a fresh cluster, `fsync` on or off (benchmarks compare with SQLite,
    /// which syncs every commit).
    pub fn start_with(fsync: bool) -> Self {
        Self::start_opts(fsync, false)
    }

    /// A fresh cluster with `fsync` on that also counts every statement
    /// (`pg_stat_statements`, loaded at start; each database that wants the view runs
    /// `CREATE EXTENSION pg_stat_statements`): the replica benchmark's round trips.
    pub fn start_counting_statements() -> Self {
        Self::start_opts(true, true)
    }

    fn start_opts(fsync: bool, count_statements: bool) -> Self {
        let bin = bin_dir().unwrap_or_else(|| {
            panic!(
                "the PostgreSQL tests need a PostgreSQL server: install the Debian package \
                 `postgresql` (apt-get install -y postgresql), or run scripts/test, which does"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("cairn-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "chown of the cluster folder to postgres failed"
            );
        }
        let data = dir.path().join("data");
        let out = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "cairn", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port number names the socket file only; nothing listens on TCP.
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let server = as_owner(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=", "-c", "max_connections=200"])
            .args(["-c", if fsync { "fsync=on" } else { "fsync=off" }])
            .args(if count_statements {
                &[
                    "-c",
                    "shared_preload_libraries=pg_stat_statements",
                    "-c",
                    "pg_stat_statements.track_utility=on",
                ][..]
            } else {
                &[][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let cluster = Self {
            dir,
            server,
            port,
            next_db: std::sync::atomic::AtomicU32::new(0),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = cluster.url("postgres");
            if off_runtime(move || postgres::Client::connect(&url, postgres::NoTls).is_ok()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the PostgreSQL server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The connection string of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=cairn dbname={db}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Creates an empty database; returns its connection string.
    pub fn create_database(&self) -> String {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("cairn_{n}");
        let admin_url = self.url("postgres");
        let create = format!("CREATE DATABASE {name}");
        off_runtime(move || {
            let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
            admin.batch_execute(&create).unwrap();
        });
        self.url(&name)
    }
}

/// Runs `work` on a thread of its own: the blocking client must not run on a thread
/// that drives async tasks (the `#[tokio::test]`s call these helpers).
fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(work).join().unwrap()
}

impl PgCluster {
    /// Stops the server (an outage, for the tests of what a node does without it).
    pub fn stop(&mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // `pg_ctl stop` signals the server itself (as root, `self.server` is `runuser`,
        // which does not pass signals on): a fast shutdown, waited for.
        if let Some(bin) = bin_dir() {
            let _ = as_owner(&bin.join("pg_ctl"))
                .arg("stop")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "fast", "-w", "-t", "20"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}
