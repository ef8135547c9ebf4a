//! The `fl_intrusion` binary end to end on the shared KEEL data (two rounds).
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn binary_runs_and_says_the_cairn_backend_is_not_wired() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/kddcup99-keel");
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
    for e in ["1", "4", "8"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("FedAvg through Cairn, ε = {e} ")))
            .unwrap();
        assert!(row.contains("not wired yet"), "{row}");
    }
    let svg = std::fs::read_to_string(out.path().join("macro_f1.svg")).unwrap();
    assert!(svg.contains("FedAvg, plaintext sum"));
    let csv = std::fs::read_to_string(out.path().join("rounds.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2);

    let bad = Command::new(env!("CARGO_BIN_EXE_fl_intrusion"))
        .args(["--orgs", "6", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--orgs 6"));
}
