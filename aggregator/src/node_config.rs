//! A node's configuration file (`node.toml`), parsed strictly.
//!
//! Every aggregator runs from its own file; paths inside it are relative to the file's
//! folder, so a deployment folder written by `cairn init` can be moved as a whole.
//! Secrets (the TLS private key, the HPKE secret key, the task's verify key) live in
//! their own files, named here; this file holds no secret and can be shown freely.
//!
//! ```toml
//! role = "leader"                 # or "helper"
//! index = 0                       # position in the task's aggregator list
//! listen = "127.0.0.1:7100"       # QUIC (UDP) address
//! task = "task.toml"
//! data_dir = "leader"             # holds cairn.sqlite (and cairn.sqlite.reports/)
//! tls_cert = "leader/cert.pem"
//! tls_key = "leader/key.pem"
//! hpke_key = "leader/hpke.key"
//! verify_key = "verify.key"       # shared by the aggregators of the task
//! collector_cert_sha256 = "…"     # pinned TLS certificate of the collector
//! upload_memory_mib = 128         # leader: memory for uploads at once; beyond, `Busy`
//! upload_wait_ms = 2000           # leader: how long an upload waits for that memory
//! client_streams = 1              # leader: requests at once on one client connection
//! client_connections_per_address = 64  # leader: client connections of one IP (IPv6: /64)
//! client_address_share_percent = 25    # leader: of the upload memory and slots, per IP
//! threads = 2                     # threads verifying jobs (default: every core);
//!                                 # leader: a job holds ~32 MiB of reports per thread,
//!                                 # at most 128 MiB
//! ```
//!
//! Rotating the HPKE key (`cairn_protocol::keyring`): `hpke_key` is always the
//! *active* key, the one the task file names for this aggregator. Keys staged before
//! the task file changes, and keys retired after it changed, still open input shares
//! while they are listed here (at most 7 in all):
//!
//! ```toml
//! hpke_key = "helper/hpke-2.key"                 # the task's hpke_public_key
//! hpke_pending_keys = ["helper/hpke-3.key"]      # staged: not yet in the task file
//! hpke_expired_keys = ["helper/hpke-1.key"]      # retired: clients with the old file
//! ```
//!
//! The store is SQLite (`data_dir/cairn.sqlite`, the stored reports' bytes in
//! `data_dir/cairn.sqlite.reports/`: copy both, or the whole folder, with the node
//! stopped) unless the file says otherwise. For
//! PostgreSQL, which any number of replicas of one aggregator may share:
//!
//! ```toml
//! store = "postgres"
//! database_url = "host=db.internal port=5432 user=cairn dbname=cairn_leader"
//! database_password_file = "db.password"   # or the CAIRN_DATABASE_PASSWORD variable
//! database_pool_size = 8
//! job_lease_secs = 30                      # how soon a dead replica's jobs move on
//! ```
//!
//! The password never appears in this file: a `database_url` carrying one is refused.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors of loading a node configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is invalid.
    #[error("{path}: `{field}` {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The role of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    /// Accepts clients, drives jobs.
    Leader,
    /// Accepts only the leader and the collector.
    Helper,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawNodeConfig {
    role: NodeRole,
    index: u8,
    listen: SocketAddr,
    task: PathBuf,
    data_dir: PathBuf,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    hpke_key: PathBuf,
    #[serde(default)]
    hpke_pending_keys: Vec<PathBuf>,
    #[serde(default)]
    hpke_expired_keys: Vec<PathBuf>,
    verify_key: PathBuf,
    collector_cert_sha256: String,
    #[serde(default)]
    metrics_listen: Option<SocketAddr>,
    #[serde(default)]
    store: StoreKind,
    #[serde(default)]
    database_url: Option<String>,
    #[serde(default)]
    database_password_file: Option<PathBuf>,
    #[serde(default)]
    database_pool_size: Option<u32>,
    #[serde(default)]
    job_lease_secs: Option<u64>,
    #[serde(default)]
    upload_memory_mib: Option<u32>,
    #[serde(default)]
    upload_wait_ms: Option<u32>,
    #[serde(default)]
    client_streams: Option<u32>,
    #[serde(default)]
    client_connections_per_address: Option<u32>,
    #[serde(default)]
    client_address_share_percent: Option<u32>,
    #[serde(default)]
    threads: Option<usize>,
}

/// Which store a node runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The embedded SQLite file in `data_dir` (one process per aggregator).
    #[default]
    Sqlite,
    /// A PostgreSQL database, shared by every replica of the aggregator.
    Postgres,
}

/// The environment variable holding the database password when no file is named.
pub const DATABASE_PASSWORD_ENV: &str = "CAIRN_DATABASE_PASSWORD";

/// The most worker threads `threads` may ask for.
pub const MAX_THREADS: usize = 1024;

/// MiB of upload frames a leader holds at once unless `upload_memory_mib` says otherwise.
pub const DEFAULT_UPLOAD_MEMORY_MIB: u32 = 128;

/// How long an upload waits for room in the upload memory before it is answered
/// `Busy`, unless `upload_wait_ms` says otherwise.
pub const DEFAULT_UPLOAD_WAIT_MS: u32 = 2_000;

/// The longest `upload_wait_ms` (a client's request times out after 30 s).
pub const MAX_UPLOAD_WAIT_MS: u32 = 20_000;

/// The most `client_streams` may allow: a connection's streams
/// (`cairn_transport::TransportOptions::max_concurrent_streams`).
pub const MAX_CLIENT_STREAMS: u32 = 16;

/// Client connections one source address may keep open at a leader unless
/// `client_connections_per_address` says otherwise.
pub const DEFAULT_CLIENT_CONNECTIONS_PER_ADDRESS: u32 = 64;

/// The most client connections per source address `client_connections_per_address`
/// may allow (the node's `max_connections`: one address may then take them all).
pub const MAX_CLIENT_CONNECTIONS_PER_ADDRESS: u32 = 1024;

/// The percentage of the upload memory and request slots one source address may hold
/// unless `client_address_share_percent` says otherwise.
pub const DEFAULT_CLIENT_ADDRESS_SHARE_PERCENT: u8 = 25;

/// How long a leader replica holds a job's lease unless `job_lease_secs` says otherwise.
pub const DEFAULT_JOB_LEASE_SECS: u64 = 30;

/// Where a node keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite in `data_dir`.
    Sqlite,
    /// PostgreSQL.
    Postgres {
        /// The connection string (libpq key=value or URL), without a password.
        url: String,
        /// A file holding the password (else [`DATABASE_PASSWORD_ENV`], else none).
        password_file: Option<PathBuf>,
        /// Connections in the pool.
        pool_size: u32,
        /// How long a leader replica holds an aggregation job's lease: a job whose
        /// replica died is taken over by another after at most this long.
        job_lease_secs: u64,
    },
}

/// A node's validated configuration, with paths resolved against the file's folder.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Leader or helper.
    pub role: NodeRole,
    /// Position in the task's aggregator list (0 = leader).
    pub index: u8,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// The task file.
    pub task: PathBuf,
    /// The folder of the node's database.
    pub data_dir: PathBuf,
    /// The node's TLS certificate (PEM).
    pub tls_cert: PathBuf,
    /// The node's TLS private key (PEM, secret).
    pub tls_key: PathBuf,
    /// The node's active HPKE secret key (hex, secret): the task file's key for it.
    pub hpke_key: PathBuf,
    /// HPKE secret keys staged for a rotation, not yet in the task file.
    pub hpke_pending_keys: Vec<PathBuf>,
    /// HPKE secret keys retired by a rotation, kept for clients with the old task file.
    pub hpke_expired_keys: Vec<PathBuf>,
    /// The task's verify key (hex, secret, shared by the aggregators).
    pub verify_key: PathBuf,
    /// The collector's pinned certificate fingerprint, hex.
    pub collector_cert_sha256: [u8; 32],
    /// Optional local address of the metrics and health endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// The store.
    pub store: StoreConfig,
    /// Leader: MiB that uploads being handled may take at once (each counted three
    /// times its size: read, decoded, stored); an upload that finds no room within
    /// `upload_wait_ms` is answered `Busy` unread. Default 128.
    pub upload_memory_mib: u32,
    /// Leader: how long an upload waits for room in `upload_memory_mib` before it is
    /// answered `Busy` (0: at once). Default 2,000 ms, at most 20,000.
    pub upload_wait_ms: u32,
    /// Leader: requests a client connection (one without a pinned certificate) may
    /// have open at once. Anyone can open such connections, and each open request may
    /// hold a stream window (256 KiB) of bytes not yet read, so this bounds that memory
    /// at 1,024 connections × `client_streams` × 256 KiB. A client sends one request
    /// at a time; a process sending for many clients over one connection (a gateway,
    /// a load test) may want more. Default 1, at most 16.
    pub client_streams: u32,
    /// Leader: client connections one source address (an IPv4 address, an IPv6 /64)
    /// may keep open at once, each counted until 60 s after it closed; more are
    /// refused, and the client retries later. So one address cannot take the leader's
    /// 1,024 connections. Clients behind one NAT share an address; a gateway raises it,
    /// and `cairn init` sets 1,024 for a leader on a loopback address (all its clients
    /// are that machine's processes). Default 64, at most 1,024.
    pub client_connections_per_address: u32,
    /// Leader: the percentage of `upload_memory_mib` (and of the requests handled at
    /// once) that the uploads from one source address may hold; beyond it they wait,
    /// then are answered `Busy`. So one address sending uploads slowly cannot lock other
    /// clients out. Default 25, between 1 and 100.
    pub client_address_share_percent: u8,
    /// Threads each job's reports are verified and aggregated on
    /// (`cairn_protocol::parallel`). Default: the machine's cores. A leader's job holds
    /// about 32 MiB of reports per thread (`cairn_protocol::leader::JOB_MEMORY_PER_THREAD`),
    /// at most 128 MiB (`JOB_MEMORY_MAX`), and a leader drives two jobs at once: a
    /// leader's memory beyond its uploads grows with its threads up to 4 of them.
    pub threads: NonZeroUsize,
}

impl NodeConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text` as if read from `path` (relative paths resolve against its folder).
    pub fn parse(text: &str, path: &Path) -> Result<Self, NodeConfigError> {
        let raw: RawNodeConfig = toml::from_str(text).map_err(|e| NodeConfigError::Parse {
            path: path.to_owned(),
            message: cairn_protocol::config::toml_error_message(&e),
        })?;
        let invalid = |field: &'static str, reason: &str| NodeConfigError::Invalid {
            path: path.to_owned(),
            field,
            reason: reason.to_owned(),
        };
        match (raw.role, raw.index) {
            (NodeRole::Leader, 0) => {}
            (NodeRole::Leader, _) => return Err(invalid("index", "must be 0 for the leader")),
            (NodeRole::Helper, 0) => {
                return Err(invalid("index", "must be at least 1 for a helper"));
            }
            (NodeRole::Helper, _) => {
                // Settings of the leader's client port: a helper has none, and an
                // operator who set one would believe it holds.
                let leader_only = [
                    ("upload_memory_mib", raw.upload_memory_mib.is_some()),
                    ("upload_wait_ms", raw.upload_wait_ms.is_some()),
                    ("client_streams", raw.client_streams.is_some()),
                    (
                        "client_connections_per_address",
                        raw.client_connections_per_address.is_some(),
                    ),
                    (
                        "client_address_share_percent",
                        raw.client_address_share_percent.is_some(),
                    ),
                ];
                if let Some((field, _)) = leader_only.iter().find(|(_, set)| *set) {
                    return Err(invalid(
                        field,
                        "is a leader setting: a helper takes no client uploads (remove it)",
                    ));
                }
            }
        }
        let mut collector = [0u8; 32];
        hex::decode_to_slice(raw.collector_cert_sha256.trim(), &mut collector)
            .map_err(|_| invalid("collector_cert_sha256", "must be 64 hex digits"))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let others = raw.hpke_pending_keys.len() + raw.hpke_expired_keys.len();
        if others >= cairn_protocol::keyring::MAX_HPKE_KEYS {
            return Err(invalid(
                "hpke_pending_keys",
                "and hpke_expired_keys may name at most 7 keys together: remove expired keys \
                 once no client seals to them",
            ));
        }
        let store = match raw.store {
            StoreKind::Sqlite => {
                if raw.database_url.is_some()
                    || raw.database_password_file.is_some()
                    || raw.database_pool_size.is_some()
                    || raw.job_lease_secs.is_some()
                {
                    return Err(invalid(
                        "database_url",
                        "and the other database_* settings need store = \"postgres\"",
                    ));
                }
                StoreConfig::Sqlite
            }
            StoreKind::Postgres => {
                let url = raw.database_url.ok_or_else(|| {
                    invalid("database_url", "is required with store = \"postgres\"")
                })?;
                if carries_password(&url) {
                    return Err(invalid(
                        "database_url",
                        "must not carry a password: put it in database_password_file or \
                         the CAIRN_DATABASE_PASSWORD environment variable",
                    ));
                }
                let pool_size = raw.database_pool_size.unwrap_or(8);
                if !(1..=256).contains(&pool_size) {
                    return Err(invalid("database_pool_size", "must be between 1 and 256"));
                }
                let job_lease_secs = raw.job_lease_secs.unwrap_or(DEFAULT_JOB_LEASE_SECS);
                if !(1..=3600).contains(&job_lease_secs) {
                    return Err(invalid("job_lease_secs", "must be between 1 and 3600"));
                }
                StoreConfig::Postgres {
                    url,
                    password_file: raw.database_password_file.as_deref().map(resolve),
                    pool_size,
                    job_lease_secs,
                }
            }
        };
        Ok(Self {
            role: raw.role,
            index: raw.index,
            listen: raw.listen,
            task: resolve(&raw.task),
            data_dir: resolve(&raw.data_dir),
            tls_cert: resolve(&raw.tls_cert),
            tls_key: resolve(&raw.tls_key),
            hpke_key: resolve(&raw.hpke_key),
            hpke_pending_keys: raw.hpke_pending_keys.iter().map(|p| resolve(p)).collect(),
            hpke_expired_keys: raw.hpke_expired_keys.iter().map(|p| resolve(p)).collect(),
            verify_key: resolve(&raw.verify_key),
            collector_cert_sha256: collector,
            metrics_listen: raw.metrics_listen,
            store,
            upload_memory_mib: match raw.upload_memory_mib {
                None => DEFAULT_UPLOAD_MEMORY_MIB,
                Some(m) if (1..=1 << 20).contains(&m) => m,
                Some(_) => {
                    return Err(invalid(
                        "upload_memory_mib",
                        "must be between 1 and 1048576 (MiB)",
                    ));
                }
            },
            upload_wait_ms: match raw.upload_wait_ms {
                None => DEFAULT_UPLOAD_WAIT_MS,
                Some(w) if w <= MAX_UPLOAD_WAIT_MS => w,
                Some(_) => {
                    return Err(invalid(
                        "upload_wait_ms",
                        "must be at most 20000 (ms; a client's request times out after 30 s)",
                    ));
                }
            },
            client_streams: match raw.client_streams {
                None => 1,
                Some(n) if (1..=MAX_CLIENT_STREAMS).contains(&n) => n,
                Some(_) => {
                    return Err(invalid("client_streams", "must be between 1 and 16"));
                }
            },
            client_connections_per_address: match raw.client_connections_per_address {
                None => DEFAULT_CLIENT_CONNECTIONS_PER_ADDRESS,
                Some(n) if (1..=MAX_CLIENT_CONNECTIONS_PER_ADDRESS).contains(&n) => n,
                Some(_) => {
                    return Err(invalid(
                        "client_connections_per_address",
                        &format!("must be between 1 and {MAX_CLIENT_CONNECTIONS_PER_ADDRESS}"),
                    ));
                }
            },
            client_address_share_percent: match raw.client_address_share_percent {
                None => DEFAULT_CLIENT_ADDRESS_SHARE_PERCENT,
                Some(p) if (1..=100).contains(&p) => p as u8,
                Some(_) => {
                    return Err(invalid(
                        "client_address_share_percent",
                        "must be between 1 and 100 (percent)",
                    ));
                }
            },
            threads: match raw.threads {
                None => default_threads(),
                Some(t) => NonZeroUsize::new(t)
                    .filter(|t| t.get() <= MAX_THREADS)
                    .ok_or_else(|| {
                        invalid(
                            "threads",
                            "must be between 1 and 1024 (leave it out to use every core)",
                        )
                    })?,
            },
        })
    }
}

/// The machine's cores, as the operating system reports them (1 if it cannot tell).
pub fn default_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Whether a libpq connection string or URL names a password.
fn carries_password(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        return authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
            || lower.contains("password=");
    }
    lower
        .split_whitespace()
        .any(|kv| kv.trim_start().starts_with("password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(role: &str, index: u8) -> String {
        format!(
            "role = \"{role}\"\nindex = {index}\nlisten = \"127.0.0.1:7100\"\ntask = \"task.toml\"\n\
             data_dir = \"n\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nhpke_key = \"h.key\"\n\
             verify_key = \"/abs/verify.key\"\ncollector_cert_sha256 = \"{}\"\n",
            "ab".repeat(32),
        )
    }

    #[test]
    fn parses_and_resolves_relative_paths() {
        let c = NodeConfig::parse(&sample("leader", 0), Path::new("/deploy/leader.toml")).unwrap();
        assert_eq!(c.role, NodeRole::Leader);
        assert_eq!(c.task, Path::new("/deploy/task.toml"));
        assert_eq!(c.verify_key, Path::new("/abs/verify.key"));
        assert_eq!(c.collector_cert_sha256, [0xab; 32]);
    }

    #[test]
    fn rotation_keys_resolve_and_are_bounded() {
        let p = Path::new("/deploy/helper.toml");
        let c = NodeConfig::parse(
            &format!(
                "{}hpke_pending_keys = [\"h3.key\"]\nhpke_expired_keys = [\"h1.key\", \"/k/h0.key\"]\n",
                sample("helper", 1)
            ),
            p,
        )
        .unwrap();
        assert_eq!(c.hpke_pending_keys, [Path::new("/deploy/h3.key")]);
        assert_eq!(
            c.hpke_expired_keys,
            [Path::new("/deploy/h1.key"), Path::new("/k/h0.key")]
        );
        // One active key and seven others fill a keyring; an eighth is refused.
        let many = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"e{i}.key\"")).collect();
            format!(
                "{}hpke_expired_keys = [{}]\n",
                sample("helper", 1),
                list.join(", ")
            )
        };
        assert!(NodeConfig::parse(&many(7), p).is_ok());
        let err = NodeConfig::parse(&many(8), p).unwrap_err().to_string();
        assert!(err.contains("at most 7"), "{err}");
    }

    #[test]
    fn rejects_inconsistent_or_unknown_settings() {
        let p = Path::new("x.toml");
        assert!(NodeConfig::parse(&sample("leader", 1), p).is_err());
        assert!(NodeConfig::parse(&sample("helper", 0), p).is_err());
        assert!(NodeConfig::parse(&format!("{}colour = 1\n", sample("helper", 1)), p).is_err());
        // The shared client token of earlier versions is gone: clients have credentials.
        let old = format!(
            "{}client_token_sha256 = \"{}\"\n",
            sample("leader", 0),
            "cd".repeat(32)
        );
        let err = NodeConfig::parse(&old, p).unwrap_err().to_string();
        assert!(err.contains("client_token_sha256"), "{err}");
        let pg = |extra: &str| format!("{}store = \"postgres\"\n{extra}", sample("leader", 0));
        let c = NodeConfig::parse(
            &pg("database_url = \"host=/run/postgresql dbname=cairn\"\ndatabase_password_file = \"pw\"\n"),
            Path::new("/deploy/n.toml"),
        )
        .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Postgres {
                url: "host=/run/postgresql dbname=cairn".into(),
                password_file: Some("/deploy/pw".into()),
                pool_size: 8,
                job_lease_secs: DEFAULT_JOB_LEASE_SECS,
            }
        );
        for bad in [
            "",
            "database_url = \"host=db password=hunter2\"\n",
            "database_url = \"postgres://cairn:hunter2@db/cairn\"\n",
            "database_url = \"postgresql://db/cairn?password=hunter2\"\n",
            "database_url = \"host=db\"\ndatabase_pool_size = 0\n",
            "database_url = \"host=db\"\njob_lease_secs = 0\n",
        ] {
            let err = NodeConfig::parse(&pg(bad), p).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(
                err.contains("database_") || err.contains("job_lease_secs"),
                "{err}"
            );
        }
        assert!(
            NodeConfig::parse(&pg("database_url = \"postgres://cairn@db/cairn\"\n"), p).is_ok()
        );
        let stray = format!("{}database_url = \"host=db\"\n", sample("leader", 0));
        assert!(NodeConfig::parse(&stray, p).is_err());
        let bad_hex = sample("helper", 1).replace(&"ab".repeat(32), "zz");
        assert!(NodeConfig::parse(&bad_hex, p).is_err());
        assert!(NodeConfig::parse(&sample("helper", 2), p).is_ok());
        let memory = |v: &str| format!("{}upload_memory_mib = {v}\n", sample("leader", 0));
        assert_eq!(
            NodeConfig::parse(&memory("64"), p)
                .unwrap()
                .upload_memory_mib,
            64
        );
        let err = NodeConfig::parse(&memory("0"), p).unwrap_err().to_string();
        assert!(err.contains("upload_memory_mib"), "{err}");
        let wait = |v: &str| format!("{}upload_wait_ms = {v}\n", sample("leader", 0));
        assert_eq!(NodeConfig::parse(&wait("0"), p).unwrap().upload_wait_ms, 0);
        assert_eq!(
            NodeConfig::parse(&wait("20000"), p).unwrap().upload_wait_ms,
            MAX_UPLOAD_WAIT_MS
        );
        let err = NodeConfig::parse(&wait("20001"), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("upload_wait_ms"), "{err}");
        assert_eq!(
            NodeConfig::parse(&sample("leader", 0), p)
                .unwrap()
                .upload_wait_ms,
            DEFAULT_UPLOAD_WAIT_MS
        );
        assert_eq!(
            NodeConfig::parse(&sample("leader", 0), p)
                .unwrap()
                .upload_memory_mib,
            DEFAULT_UPLOAD_MEMORY_MIB
        );
    }

    #[test]
    fn client_streams_default_to_one_and_stay_within_a_connections_streams() {
        let p = Path::new("x.toml");
        let streams = |v: &str| format!("{}client_streams = {v}\n", sample("leader", 0));
        assert_eq!(
            NodeConfig::parse(&sample("leader", 0), p)
                .unwrap()
                .client_streams,
            1
        );
        assert_eq!(
            NodeConfig::parse(&streams("16"), p).unwrap().client_streams,
            MAX_CLIENT_STREAMS
        );
        for bad in ["0", "17"] {
            let err = NodeConfig::parse(&streams(bad), p).unwrap_err().to_string();
            assert!(err.contains("client_streams"), "{bad}: {err}");
        }
        assert!(NodeConfig::parse(&streams("-1"), p).is_err());
    }

    #[test]
    fn per_address_limits_have_defaults_and_bounds() {
        let p = Path::new("x.toml");
        let leader = NodeConfig::parse(&sample("leader", 0), p).unwrap();
        assert_eq!(
            leader.client_connections_per_address,
            DEFAULT_CLIENT_CONNECTIONS_PER_ADDRESS
        );
        assert_eq!(
            leader.client_address_share_percent,
            DEFAULT_CLIENT_ADDRESS_SHARE_PERCENT
        );
        let with = |line: &str| format!("{}{line}\n", sample("leader", 0));
        let set = NodeConfig::parse(
            &with("client_connections_per_address = 1024\nclient_address_share_percent = 100"),
            p,
        )
        .unwrap();
        assert_eq!(set.client_connections_per_address, 1024);
        assert_eq!(set.client_address_share_percent, 100);
        for (bad, field) in [
            (
                "client_connections_per_address = 0",
                "client_connections_per_address",
            ),
            (
                "client_connections_per_address = 1025",
                "client_connections_per_address",
            ),
            (
                "client_address_share_percent = 0",
                "client_address_share_percent",
            ),
            (
                "client_address_share_percent = 101",
                "client_address_share_percent",
            ),
            (
                "client_address_share_percent = 300",
                "client_address_share_percent",
            ),
        ] {
            let err = NodeConfig::parse(&with(bad), p).unwrap_err().to_string();
            assert!(err.contains(field), "{bad}: {err}");
        }
    }

    /// A helper takes no client uploads, so the leader's upload settings would be
    /// silently ignored there: an operator who set them believes they hold. Refused,
    /// naming the setting.
    #[test]
    fn a_helper_refuses_the_leaders_upload_settings() {
        let p = Path::new("helper.toml");
        for setting in [
            "upload_memory_mib = 64",
            "upload_wait_ms = 100",
            "client_streams = 4",
            "client_connections_per_address = 8",
            "client_address_share_percent = 50",
        ] {
            let text = format!("{}{setting}\n", sample("helper", 1));
            let err = NodeConfig::parse(&text, p).unwrap_err().to_string();
            let name = setting.split(' ').next().unwrap();
            assert!(
                err.contains(name) && err.contains("leader"),
                "{setting}: {err}"
            );
            let leader = format!("{}{setting}\n", sample("leader", 0));
            assert!(
                NodeConfig::parse(&leader, p).is_ok(),
                "{setting} on the leader"
            );
        }
        assert!(NodeConfig::parse(&sample("helper", 1), p).is_ok());
    }

    #[test]
    fn threads_default_to_the_cores_and_zero_is_refused() {
        let p = Path::new("x.toml");
        let threads = |v: &str| format!("{}threads = {v}\n", sample("helper", 1));
        assert_eq!(
            NodeConfig::parse(&sample("helper", 1), p).unwrap().threads,
            default_threads()
        );
        assert_eq!(
            NodeConfig::parse(&threads("3"), p).unwrap().threads.get(),
            3
        );
        for bad in ["0", "1025"] {
            let err = NodeConfig::parse(&threads(bad), p).unwrap_err().to_string();
            assert!(
                err.contains("`threads` must be between 1 and 1024"),
                "{err}"
            );
        }
        for bad in ["-1", "\"two\""] {
            assert!(NodeConfig::parse(&threads(bad), p).is_err(), "{bad}");
        }
    }
}
