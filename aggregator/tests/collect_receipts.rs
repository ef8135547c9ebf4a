//! Ledgers that disagree stop a release. The disagreement is staged as an operator
//! could cause it (the leader's ledger restored from an old copy): the helper's ledger
//! holds an extra, valid release of a round the leader never released, so after round
//! 0 the helper records two releases and the leader one. The leader refuses to forward
//! the shares (`ledger_rollback`) and `cairn collect` fails with a message that says
//! what to do; nothing reaches the collector.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use cairn_aggregator::node_config::NodeConfig;
use cairn_aggregator::store::SqliteStore;
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::ledger::Ledger;
use cairn_protocol::privacy::Privacy;
use cairn_protocol::store::TaskStore;
use common::{NodeProcess, init, run, run_ok, submit_args, write_update};

#[test]
fn collect_is_refused_when_a_helpers_ledger_records_more_than_the_leaders() {
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
        store.open_round(5, Time(1), task.dimension()).unwrap();
        let e = ledger.prepare_release(5, rho, 2, Time(2)).unwrap();
        store.commit_release(&e, b"elsewhere").unwrap();
    }
    let _nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let t = task_path.to_str().unwrap();
    for i in 0..2 {
        let input = dir.path().join(format!("u{i}.json"));
        write_update(&input, &[0.1; 8]);
        run_ok(&submit_args(
            t,
            common::credential_path(&deploy, i).to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ));
    }
    let out = run(&["collect", "--task", t, "--round", "0"]);
    assert!(!out.status.success(), "the release must be refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ledger_rollback"), "{stderr}");
    assert!(stderr.contains("restored from an old copy"), "{stderr}");
    assert!(out.stdout.is_empty(), "no sum was written");
    // Unchanged by the refusal: the task's noise stays on and ρ per release is positive.
    assert!(rho > 0.0);
}
