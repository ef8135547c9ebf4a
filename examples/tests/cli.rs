//! The `fl_intrusion` binary end to end on the shared KEEL data (two rounds, real Cairn
//! nodes on loopback).
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn binary_runs_plaintext_and_cairn_runs() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kddcup99-keel");
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
        .args(["--rounds", "2", "--epsilon", "4", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
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

    let bad = Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
        .args(["--orgs", "6", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--orgs 6"));
}
