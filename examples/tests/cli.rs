//! The `fl_intrusion` binary end to end on the shared KEEL data (two rounds, real Cairn
//! nodes on loopback).
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One test's processes at a time. Each binary here chooses free ports for its nodes
/// in its own process (`cairn_aggregator::deploy::free_base_port`), which keeps ports
/// apart only within one process: two binaries choosing at the same moment could be
/// given the same ports, and one node would fail to bind.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static PORTS: Mutex<()> = Mutex::new(());
    PORTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared KEEL data.
fn keel_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kddcup99-keel")
}

/// Runs `command`, asserts that it succeeded (showing its output if not) and returns
/// its standard output.
fn stdout_of_success(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `command`, asserts that it failed and returns its standard error.
fn stderr_of_failure(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn binary_runs_plaintext_and_cairn_runs() {
    let _ports = one_at_a_time();
    let data = keel_dir();
    let out = tempfile::tempdir().unwrap();
    let stdout = stdout_of_success(
        Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
            .args(["--rounds", "2", "--epsilon", "4", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(out.path()),
    );
    assert!(stdout.contains("centralised (non-private)"));
    assert!(stdout.contains("FedAvg, plaintext sum"));
    // --epsilon 4 runs that single ε (plus the noise-off Cairn run); the table shows
    // the budget spent after both rounds: the whole planned ε, never more.
    // The last such line is the table's row (the first ones are per-round lines).
    let row = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("FedAvg via Cairn, ε = 4 "))
        .unwrap();
    let spent: f64 = row.split_whitespace().nth_back(1).unwrap().parse().unwrap();
    assert!(spent > 3.0 && spent <= 4.0 + 1e-9, "{row}");
    assert!(stdout.contains("FedAvg via Cairn, noise off"));
    assert!(!stdout.contains("ε = 8"));
    let svg = std::fs::read_to_string(out.path().join("macro_f1.svg")).unwrap();
    assert!(svg.contains("FedAvg, plaintext sum"));
    assert!(svg.contains("FedAvg via Cairn, ε = 4"));
    let csv = std::fs::read_to_string(out.path().join("rounds.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 2);
    assert!(csv.contains("\ncairn_eps_4,2,"));

    let stderr = stderr_of_failure(
        Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
            .args(["--orgs", "6", "--data"])
            .arg(&data),
    );
    assert!(stderr.contains("--orgs 6"));
}

/// `--unit record`: DP-SGD across the silos through a record-level Cairn task, a few
/// steps, two seeds; `results.json` has one object per run and seed with the required
/// keys, and the ledgers report the whole budget spent, never more.
#[test]
fn record_level_dpsgd_writes_results_json() {
    let _ports = one_at_a_time();
    let data = keel_dir();
    let out = tempfile::tempdir().unwrap();
    let stdout = stdout_of_success(
        Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
            .args([
                "--unit",
                "record",
                "--epsilons",
                "2",
                "--seeds",
                "1,2",
                "--steps",
                "8",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(out.path()),
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2 * 2, "two runs (no noise, ε = 2) × two seeds");
    for row in rows {
        for key in ["run", "unit", "epsilon", "seed", "macro_f1", "accuracy"] {
            assert!(row.get(key).is_some(), "{key} missing: {row}");
        }
        assert_eq!(row["unit"], "record");
        let f1 = row["macro_f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1));
    }
    assert!(rows.iter().any(|r| r["epsilon"].is_null()));
    assert!(rows.iter().any(|r| r["epsilon"] == 2.0 && r["seed"] == 2));
    // The ledgers spent the planned ε over the 8 steps, never more.
    let spent: Vec<f64> = stdout
        .lines()
        .filter(|l| l.contains("dpsgd_cairn_eps_2:"))
        .map(|l| {
            l.split("ε spent ")
                .nth(1)
                .and_then(|t| t.split(',').next())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(spent.len(), 2);
    assert!(spent.iter().all(|e| *e > 1.9 && *e <= 2.0), "{spent:?}");

    // A cap near q·N would skip steps often enough to break δ: the run refuses it.
    let stderr = stderr_of_failure(
        Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
            .args(["--unit", "record", "--epsilons", "2", "--steps", "8"])
            .args(["--max-records", "60", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(out.path()),
    );
    assert!(stderr.contains("raise --max-records"), "{stderr}");

    // Record level scales by the public KEEL ranges: NSL-KDD text is refused.
    let nsl = out.path().join("train.txt");
    std::fs::write(&nsl, "0,tcp,http,SF\n").unwrap();
    let stderr = stderr_of_failure(
        Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
            .args(["--unit", "record", "--data"])
            .arg(&nsl),
    );
    assert!(stderr.contains("public attribute ranges"));

    // An emphasis that is not a finite number > 0 is refused, before any node starts.
    for emphasis in ["0", "-2", "NaN"] {
        let stderr = stderr_of_failure(
            Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
                .args([
                    "--unit",
                    "record",
                    &format!("--emphasis={emphasis}"),
                    "--data",
                ])
                .arg(&data)
                .arg("--out")
                .arg(out.path()),
        );
        assert!(
            stderr.contains("--emphasis") && stderr.contains("not a finite number > 0"),
            "{stderr}"
        );
    }
}

/// `tune_record_level`: the σ it draws is the deployment's, and it is applied: with
/// seeded noise the runs repeat, so a tiny ε must score below a huge one on the same
/// split, with the aggregators' noise and with the organisations' (`--client-noise`).
#[test]
fn the_tuning_tool_draws_the_calibrated_noise() {
    let _ports = one_at_a_time();
    let data = keel_dir();
    for placement in [None, Some("--client-noise")] {
        let stdout = stdout_of_success(
            Command::new(env!("CARGO_BIN_EXE_tune_record_level"))
                .args([
                    "--epsilons",
                    "0.05,50",
                    "--seeds",
                    "0",
                    "--reps",
                    "1",
                    "--steps",
                    "60",
                ])
                .args(placement)
                .arg("--data")
                .arg(&data),
        );
        let field = |line: &str, key: &str| -> f64 {
            let rest = &line[line.find(key).unwrap() + key.len()..];
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ε = ")).collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        let (sigma_small, sigma_large) = (field(lines[0], "σ = "), field(lines[1], "σ = "));
        let (f1_small, f1_large) = (field(lines[0], "macro-F1 "), field(lines[1], "macro-F1 "));
        assert!(sigma_small > 10.0 * sigma_large, "{placement:?}: {stdout}");
        assert!(f1_small < f1_large, "{placement:?}: {stdout}");
    }
}
