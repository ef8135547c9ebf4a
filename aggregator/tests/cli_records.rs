//! Record-level DP end to end through `cairn` processes: `cairn init --unit record`, two
//! `cairn node`s, `cairn submit --records` for three clients (each record clipped to C),
//! `cairn collect`: the released sum is the sum of the clipped records. Noise is off so
//! that the sum can be checked exactly; the budget itself is held by
//! `protocol/tests/record_level.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{NodeProcess, credential_path, init, run, run_ok, submit_args};

const DIM: usize = 4;

#[test]
fn sampled_records_of_three_clients_are_summed_after_clipping() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &[
            "--dim",
            "4",
            "--noise",
            "none",
            "--min-clients",
            "3",
            "--unit",
            "record",
            "--sampling-rate",
            "0.5",
            "--max-records",
            "10",
        ],
        2,
    );
    let _nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let task = deploy.join("task.toml");
    let mut expected = [0f64; DIM];
    for k in 0..3 {
        // Records on exact binary fractions, one of norm 3 (clipped to C = 1).
        let mut records = vec![
            vec![0.25, -0.5, 0.0, 0.125 * k as f64],
            vec![0.0, 0.0, 3.0, 0.0],
        ];
        records.truncate(1 + k % 2);
        for r in &records {
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = if norm > 1.0 { 1.0 / norm } else { 1.0 };
            for (e, v) in expected.iter_mut().zip(r) {
                *e += v * scale;
            }
        }
        let input = dir.path().join(format!("records-{k}.json"));
        std::fs::write(&input, serde_json::to_string(&records).unwrap()).unwrap();
        run_ok(&submit_args(
            task.to_str().unwrap(),
            credential_path(&deploy, k).to_str().unwrap(),
            "--records",
            input.to_str().unwrap(),
        ));
    }
    // A record of the wrong length is refused before anything is sent.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[[1.0, 2.0]]").unwrap();
    let out = run(&submit_args(
        task.to_str().unwrap(),
        credential_path(&deploy, 5).to_str().unwrap(),
        "--records",
        bad.to_str().unwrap(),
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dimension"));

    let output = dir.path().join("sum.json");
    run_ok(&[
        "collect",
        "--task",
        task.to_str().unwrap(),
        "--round",
        "0",
        "--output",
        output.to_str().unwrap(),
    ]);
    let released: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(released["count"], 3);
    let sum: Vec<f64> = released["sum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (got, want) in sum.iter().zip(&expected) {
        // The clipped norm-3 record is not a binary fraction: within rounding.
        assert!((got - want).abs() <= 3.0 / 1024.0, "{got} vs {want}");
    }
}
