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
//! data_dir = "leader"             # holds cairn.sqlite
//! tls_cert = "leader/cert.pem"
//! tls_key = "leader/key.pem"
//! hpke_key = "leader/hpke.key"
//! verify_key = "verify.key"       # shared by the aggregators of the task
//! collector_cert_sha256 = "…"     # pinned TLS certificate of the collector
//! ```

use std::net::SocketAddr;
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
    verify_key: PathBuf,
    collector_cert_sha256: String,
    #[serde(default)]
    metrics_listen: Option<SocketAddr>,
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
    /// The node's HPKE secret key (hex, secret).
    pub hpke_key: PathBuf,
    /// The task's verify key (hex, secret, shared by the aggregators).
    pub verify_key: PathBuf,
    /// The collector's pinned certificate fingerprint, hex.
    pub collector_cert_sha256: [u8; 32],
    /// Optional local address of the metrics and health endpoint.
    pub metrics_listen: Option<SocketAddr>,
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
            message: e.to_string(),
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
            (NodeRole::Helper, _) => {}
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
        Ok(Self {
            role: raw.role,
            index: raw.index,
            listen: raw.listen,
            task: resolve(&raw.task),
            data_dir: resolve(&raw.data_dir),
            tls_cert: resolve(&raw.tls_cert),
            tls_key: resolve(&raw.tls_key),
            hpke_key: resolve(&raw.hpke_key),
            verify_key: resolve(&raw.verify_key),
            collector_cert_sha256: collector,
            metrics_listen: raw.metrics_listen,
        })
    }
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
        let bad_hex = sample("helper", 1).replace(&"ab".repeat(32), "zz");
        assert!(NodeConfig::parse(&bad_hex, p).is_err());
        assert!(NodeConfig::parse(&sample("helper", 2), p).is_ok());
    }
}
