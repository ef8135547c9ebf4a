//! Shared helpers of the process-level tests: run `cairn`, keep node processes alive
//! for the test's duration and kill them when it ends.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn cairn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs `cairn ARGS…` to completion.
pub fn run(args: &[&str]) -> Output {
    cairn().args(args).output().expect("cairn runs")
}

/// Runs `cairn ARGS…` and insists on success; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "cairn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The arguments of `cairn submit` for round 0 of `task` as the client whose credential
/// file is `credential`, sending `file` as `source` (`--input` or `--records`).
pub fn submit_args<'a>(
    task: &'a str,
    credential: &'a str,
    source: &'static str,
    file: &'a str,
) -> Vec<&'a str> {
    vec![
        "submit",
        "--task",
        task,
        "--credential",
        credential,
        "--round",
        "0",
        source,
        file,
    ]
}

/// A `cairn node` process, SIGKILLed when dropped.
pub struct NodeProcess {
    pub config: PathBuf,
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts `cairn node --config CONFIG` and returns once it listens (waits on its
    /// "node listening" log line, never on a fixed sleep). Panics with the node's
    /// log if it exits first or is not listening within 60 s.
    pub fn start(config: &Path) -> Self {
        let log = log_path(config);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("node log opens");
        let from = log_file.metadata().map_or(0, |m| m.len());
        let child = cairn()
            .env("RUST_LOG", "warn,cairn_aggregator::node=info")
            .args(["node", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("node starts");
        let mut node = Self {
            config: config.to_owned(),
            child: Some(child),
        };
        node.wait_listening(&log, from);
        node
    }

    fn wait_listening(&mut self, log: &Path, from: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read(log).unwrap_or_default();
            let new = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
            if new.contains("node listening") {
                return;
            }
            let child = self.child.as_mut().expect("a started node");
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "node {} exited ({status}) before listening:\n{new}",
                    self.config.display()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {} not listening after 60 s:\n{new}",
                self.config.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no shutdown handler runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, and waits for the node's graceful shutdown (it closes its connections,
    /// so peers reconnect at once instead of waiting out a timeout); SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while c.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    c.kill().unwrap();
                    c.wait().unwrap();
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// A planned restart: [`stop`](Self::stop), then start again.
    pub fn restart_gracefully(&mut self) {
        self.stop();
        *self = Self::start(&self.config.clone());
    }

    /// Starts the same node again after a SIGKILL. The killed process has been
    /// reaped, so its socket is closed; `start` waits until the new one listens.
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::start(&self.config.clone());
    }
}

/// Where a node's standard error goes: beside its config, appended across restarts.
fn log_path(config: &Path) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(".log");
    config.with_file_name(name)
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cairn init` into `dir/deploy` with free loopback ports; returns the folder.
pub fn init(dir: &Path, extra: &[&str], aggregators: u16) -> PathBuf {
    let deploy = dir.join("deploy");
    let port = cairn_aggregator::deploy::free_base_port(
        std::net::IpAddr::from([127, 0, 0, 1]),
        aggregators,
    )
    .unwrap()
    .to_string();
    let n = aggregators.to_string();
    let mut args = vec![
        "init",
        deploy.to_str().unwrap(),
        "--aggregators",
        &n,
        "--port",
        &port,
    ];
    args.extend_from_slice(extra);
    // Every client needs its own credential; enough for every test's reports.
    if !extra.contains(&"--clients") {
        args.extend_from_slice(&["--clients", "64"]);
    }
    run_ok(&args);
    deploy
}

/// The credential file of client `k` of a deployment.
pub fn credential_path(deploy: &Path, k: usize) -> PathBuf {
    deploy.join("clients").join(format!("client-{k}.toml"))
}

/// The credential of client `k` of a deployment.
pub fn credential(deploy: &Path, k: usize) -> cairn_protocol::auth::Credential {
    cairn_client::sdk::read_credential(&credential_path(deploy, k)).unwrap()
}

/// Writes an update file.
pub fn write_update(path: &Path, values: &[f64]) {
    std::fs::write(path, serde_json::to_string(values).unwrap()).unwrap();
}
