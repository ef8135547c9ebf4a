//! `cairn collect` shows every aggregator's budget receipt and warns on standard error
//! when their ledgers disagree. The disagreement is staged as an operator could cause
//! it: the helper's ledger holds an extra, valid release (of a round the leader never
//! released), so after round 0 the helper counts twice the leader's ρ.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use cairn_aggregator::node_config::NodeConfig;
use cairn_aggregator::store::SqliteStore;
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::ledger::Ledger;
use cairn_protocol::privacy::Privacy;
use cairn_protocol::store::TaskStore;
use common::{NodeProcess, init, run, run_ok, write_update};

#[test]
fn collect_prints_receipts_and_warns_when_ledgers_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &["--dim", "8", "--min-clients", "2", "--rounds", "5"],
        2,
    );
    let task_path = deploy.join("task.toml");
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&task_path).unwrap()).unwrap();
    let privacy = Privacy::for_task(&task).unwrap();
    let rho = privacy.rho_per_release();
    {
        let helper = NodeConfig::load(&deploy.join("node-1.toml")).unwrap();
        std::fs::create_dir_all(&helper.data_dir).unwrap();
        let store = SqliteStore::open(&helper.data_dir.join("cairn.sqlite"))
            .unwrap()
            .task(task.id(), task.dimension());
        let ledger = Ledger::new(task.id(), privacy.rho_budget()).unwrap();
        store.open_round(99, Time(1), task.dimension()).unwrap();
        let e = ledger.prepare_release(99, rho, 2, Time(2)).unwrap();
        store.commit_release(&e, b"elsewhere").unwrap();
    }
    let _nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let t = task_path.to_str().unwrap();
    for i in 0..2 {
        let input = dir.path().join(format!("u{i}.json"));
        write_update(&input, &[0.1; 8]);
        run_ok(&[
            "submit",
            "--task",
            t,
            "--round",
            "0",
            "--input",
            input.to_str().unwrap(),
        ]);
    }
    let out = run(&["collect", "--task", t, "--round", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let receipts = json["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0]["aggregator"], 0);
    assert_eq!(receipts[0]["rho_total"], rho);
    assert_eq!(receipts[1]["aggregator"], 1);
    assert!((receipts[1]["rho_total"].as_f64().unwrap() - 2.0 * rho).abs() <= 1e-12 * rho);
    assert_eq!(json["ledgers_disagree"], true);
    // The conservative figure is the helper's.
    assert_eq!(json["epsilon_spent"], receipts[1]["epsilon_total"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ledgers disagree"), "{stderr}");
    assert!(
        stderr.contains("aggregator 0") && stderr.contains("aggregator 1"),
        "{stderr}"
    );
}
