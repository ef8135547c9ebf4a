//! Runs the harness end to end in its smallest mode and checks the structure and the
//! correctness of what it writes (never the timings: they depend on the machine).
//!
//! Uses `--quick` (d ∈ {10^3, 10^4}, one 10-client round at d = 10^3 over loopback QUIC
//! with two node processes): a few seconds even in the test profile.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use serde_json::Value;

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("missing number {key} in {v}"))
}

#[test]
fn quick_run_writes_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let plots = dir.path().join("plots");
    let status = Command::new(env!("CARGO_BIN_EXE_cairn-bench"))
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .arg("--plots")
        .arg(&plots)
        .status()
        .unwrap();
    assert!(status.success(), "cairn-bench --quick failed: {status}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    for key in [
        "command",
        "machine",
        "plan",
        "cairn",
        "prio017_fixedpoint_l2",
        "prio018_sumvec",
        "floor",
        "noise",
        "e2e",
        "flower_secagg",
        "table",
    ] {
        assert!(json.get(key).is_some(), "missing key {key}");
    }
    let machine = &json["machine"];
    assert!(!machine["cpu_model"].as_str().unwrap().is_empty());
    assert!(num(machine, "cores") >= 1.0);

    let dims = [1000.0, 10_000.0];
    let cairn = json["cairn"].as_array().unwrap();
    assert_eq!(cairn.len(), dims.len());
    for (c, d) in cairn.iter().zip(dims) {
        assert_eq!(num(c, "d"), d);
        assert_eq!(
            c["correct"],
            Value::Bool(true),
            "d = {d}: the released sum is exact"
        );
        assert!(num(c, "upload_bytes_per_param") > 0.0);
        assert_eq!(num(c, "upload_bytes_per_param"), num(c, "upload_bytes") / d);
        for key in [
            "client_prepare_ms",
            "leader_ms_per_report",
            "helper_ms_per_report",
            "leader_helper_bytes_per_report",
            "collector_decode_ms",
        ] {
            assert!(num(c, key) > 0.0, "d = {d}: {key} must be positive");
        }
        assert!(num(c, "job_init_bytes_per_report") <= num(c, "leader_helper_bytes_per_report"));
    }

    // Both anchors at the same dimensions, measured (not skipped at these sizes); the
    // floor too.
    for anchor in ["prio017_fixedpoint_l2", "prio018_sumvec"] {
        let a = json[anchor].as_array().unwrap();
        assert_eq!(a.len(), dims.len(), "{anchor}");
        for (a, d) in a.iter().zip(dims) {
            assert_eq!(num(a, "d"), d, "{anchor}");
            assert!(a["skipped"].is_null(), "{anchor}: {}", a["skipped"]);
            assert!(num(a, "report_bytes_per_param") > 0.0);
            assert!(num(a, "shard_ms") > 0.0);
            assert!(num(a, "prepare_ms_per_report") > 0.0);
        }
    }
    assert_eq!(json["floor"].as_array().unwrap().len(), dims.len());
    assert!(num(&json["noise"], "cairn_samples_per_sec") > 0.0);
    assert!(num(&json["noise"], "opendp_samples_per_sec") > 0.0);

    // One real round: every client counted, both node processes measured.
    let e2e = json["e2e"].as_array().unwrap();
    assert_eq!(e2e.len(), 1);
    assert_eq!(num(&e2e[0], "count"), 10.0);
    assert!(num(&e2e[0], "leader_peak_rss_mib") > 0.0);
    assert!(num(&e2e[0], "helper_peak_rss_mib") > 0.0);

    // The summary table names the DESIGN targets; the plots exist and are SVG.
    let table = json["table"].as_array().unwrap();
    assert!(
        table
            .iter()
            .any(|r| r["target"].as_str().unwrap().starts_with("≤ 11"))
    );
    for plot in [
        "client_time_vs_d.svg",
        "aggregator_time_vs_d.svg",
        "round_time_vs_clients.svg",
        "memory_vs_clients.svg",
    ] {
        let svg = std::fs::read_to_string(plots.join(plot)).unwrap();
        assert!(svg.contains("<svg"), "{plot}");
    }
}
