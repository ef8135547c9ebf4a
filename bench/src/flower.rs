//! Flower's SecAgg+ beside Cairn: the secure aggregation users of Flower would pick
//! otherwise, run on the same machine in the same run.
//!
//! The bench makes its own virtualenv (`target/bench-flower-venv`), installs the pinned
//! `flwr` and `numpy` of `bench/flower/requirements.txt` from PyPI into it the first time,
//! and runs `bench/flower/secagg_round.py` once per setting in a fresh interpreter. That
//! script runs Flower 1.41's own `SecAggPlusWorkflow` and `secaggplus_mod` (or plain
//! FedAvg) for one round, in one process without a network, and prints the fit round's
//! wall time and the bytes each client sent. When Python, the virtualenv or PyPI is not
//! there, the figures say why instead (and the bench says so on stderr): the anchor is
//! never dropped silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The bench's Python files.
const FLOWER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flower");
/// The virtualenv the bench makes and reuses.
const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-flower-venv");

/// One Flower round, as the script reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FlowerRound {
    /// `flower-secagg+` or `flower-fedavg`.
    pub(crate) system: String,
    /// The flwr version that ran.
    pub(crate) flwr: String,
    /// Clients.
    pub(crate) clients: usize,
    /// Dimension d.
    pub(crate) d: usize,
    /// SecAgg+ shares per client (0: plain FedAvg).
    pub(crate) shares: usize,
    /// SecAgg+ reconstruction threshold.
    pub(crate) threshold: Option<usize>,
    /// The fit round's wall time, seconds.
    pub(crate) round_secs: f64,
    /// Bytes each client sent in the round (Flower's protobuf messages).
    pub(crate) upload_bytes_per_client: f64,
}

/// The Flower rounds of a run, or why there are none.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlowerFigures {
    /// The rounds that ran.
    pub(crate) rounds: Vec<FlowerRound>,
    /// Why the anchor (or part of it) did not run.
    pub(crate) skipped: Option<String>,
}

/// The settings a run measures at each (clients, d), for at least 3 clients (Flower
/// takes an integer `num_shares` only above 2): SecAgg+ with 3 shares (Flower's
/// example), SecAgg+ with every client sharing with every other, plain FedAvg.
pub(crate) fn settings(clients: usize) -> [usize; 3] {
    [3, clients, 0]
}

/// How long one Flower round may take before the bench gives up on it (an all-shares
/// round at 100 clients took 330 s here).
const ROUND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Runs every setting at every size, in order. Stops at the first failure and keeps
/// what ran before it, with the failure as `skipped`.
pub(crate) fn measure(sizes: &[(usize, usize)]) -> FlowerFigures {
    let python = match venv_python() {
        Ok(p) => p,
        Err(e) => {
            let why = format!("Flower SecAgg+ NOT MEASURED: {e:#}");
            eprintln!("{why}");
            return FlowerFigures {
                rounds: Vec::new(),
                skipped: Some(why),
            };
        }
    };
    let mut rounds = Vec::new();
    for &(clients, d) in sizes {
        for shares in settings(clients) {
            eprintln!("Flower round: {clients} clients, d = {d}, {shares} shares");
            match round(&python, clients, d, shares) {
                Ok(r) => rounds.push(r),
                Err(e) => {
                    let why = format!(
                        "Flower SecAgg+ stopped at {clients} clients, d = {d}, {shares} shares: \
                         {e:#}"
                    );
                    eprintln!("{why}");
                    return FlowerFigures {
                        rounds,
                        skipped: Some(why),
                    };
                }
            }
        }
    }
    FlowerFigures {
        rounds,
        skipped: None,
    }
}

/// One round in a fresh interpreter.
fn round(python: &Path, clients: usize, d: usize, shares: usize) -> anyhow::Result<FlowerRound> {
    let mut child = Command::new(python)
        .arg(Path::new(FLOWER_DIR).join("secagg_round.py"))
        .args(["--clients", &clients.to_string()])
        .args(["--dim", &d.to_string()])
        .args(["--shares", &shares.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running bench/flower/secagg_round.py")?;
    // The script's output is small (one JSON line and Flower's warnings): it fits the
    // pipes while the child runs, and is read once it exits.
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > ROUND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the round took longer than {} s", ROUND_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the script failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the script printed no result")?;
    let r: FlowerRound = serde_json::from_str(line).context("the script's result")?;
    anyhow::ensure!(
        r.clients == clients && r.d == d && r.shares == shares,
        "the script ran another setting: {line}"
    );
    Ok(r)
}

/// The virtualenv's interpreter, made and filled on first use.
fn venv_python() -> anyhow::Result<PathBuf> {
    let venv = PathBuf::from(VENV);
    let python = venv.join("bin").join("python");
    let requirements = Path::new(FLOWER_DIR).join("requirements.txt");
    if has_flower(&python, &requirements) {
        return Ok(python);
    }
    eprintln!("installing Flower into {} (first run only)", venv.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("python3 -m venv (is Python 3 with venv installed?)")?;
    anyhow::ensure!(status.success(), "python3 -m venv failed ({status})");
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(&requirements)
        .status()
        .context("pip install")?;
    anyhow::ensure!(
        status.success(),
        "pip install -r {} failed ({status}): is PyPI reachable?",
        requirements.display()
    );
    anyhow::ensure!(
        has_flower(&python, &requirements),
        "flwr does not import after pip install"
    );
    Ok(python)
}

/// Whether `python` imports the pinned flwr version.
fn has_flower(python: &Path, requirements: &Path) -> bool {
    let Some(version) = std::fs::read_to_string(requirements).ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("flwr==").map(str::to_owned))
    }) else {
        return false;
    };
    Command::new(python)
        .args([
            "-c",
            &format!("import flwr, numpy; assert flwr.__version__ == {version:?}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requirements_pin_the_flower_the_python_tests_use() {
        let bench = std::fs::read_to_string(Path::new(FLOWER_DIR).join("requirements.txt"))
            .unwrap_or_default();
        let tests = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../python/requirements-test.txt"
        ))
        .unwrap_or_default();
        let pin = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name}==")))
                .map(str::to_owned)
        };
        for name in ["flwr", "numpy"] {
            assert!(pin(&bench, name).is_some(), "{name} is not pinned");
            assert_eq!(pin(&bench, name), pin(&tests, name), "{name}");
        }
    }

    #[test]
    fn every_size_measures_three_settings() {
        assert_eq!(settings(10), [3, 10, 0]);
        assert_eq!(settings(100), [3, 100, 0]);
    }
}
