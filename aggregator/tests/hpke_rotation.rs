//! Rotating a helper's HPKE key through the README's steps, with `cairn` processes:
//! `cairn hpke new`, the key pending on the helper, the task file and the helper
//! switched to it, the old key expired, then removed. Clients holding the old task file
//! keep succeeding until the old key leaves the helper's ring, the task id (and so every
//! credential and the ledger) stays the same throughout, and each released sum is exact.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use cairn_protocol::config::TaskConfig;
use common::{NodeProcess, credential_path, init, run, run_ok, write_update};

const DIM: usize = 4;

/// Client `k`'s update: small, distinct, exactly representable after rounding.
fn update(k: usize) -> Vec<f64> {
    (0..DIM).map(|j| (k * DIM + j) as f64 / 256.0).collect()
}

/// `cairn submit` of client `k`'s update for `round`, holding the task file `task`.
fn submit(dir: &Path, deploy: &Path, task: &Path, k: usize, round: u32) {
    let input = dir.join(format!("update-{k}.json"));
    write_update(&input, &update(k));
    let round = round.to_string();
    run_ok(&[
        "submit",
        "--task",
        task.to_str().unwrap(),
        "--credential",
        credential_path(deploy, k).to_str().unwrap(),
        "--round",
        &round,
        "--input",
        input.to_str().unwrap(),
    ]);
}

/// `cairn collect` of `round`: its report count and decoded sum.
fn collect(dir: &Path, task: &Path, round: u32) -> (u64, Vec<f64>) {
    let output = dir.join(format!("sum-{round}.json"));
    let round = round.to_string();
    run_ok(&[
        "collect",
        "--task",
        task.to_str().unwrap(),
        "--round",
        &round,
        "--output",
        output.to_str().unwrap(),
    ]);
    let released: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let sum = released["sum"].as_array().unwrap();
    (
        released["count"].as_u64().unwrap(),
        sum.iter().map(|v| v.as_f64().unwrap()).collect(),
    )
}

fn assert_sum_of(got: &[f64], clients: &[usize]) {
    for (j, got) in got.iter().enumerate() {
        let want: f64 = clients.iter().map(|&k| update(k)[j]).sum();
        assert!((got - want).abs() < 1e-9, "coordinate {j}: {got} vs {want}");
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn task_id(path: &Path) -> cairn_protocol::ids::TaskId {
    TaskConfig::from_toml(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .id()
}

#[test]
fn a_rotated_helper_key_keeps_old_clients_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let deploy = init(
        dir,
        &[
            "--dim",
            "4",
            "--noise",
            "none",
            "--min-clients",
            "3",
            "--clients",
            "8",
        ],
        2,
    );
    let task = deploy.join("task.toml");
    let old_task = dir.join("task-old.toml");
    std::fs::copy(&task, &old_task).unwrap();
    let helper_config = deploy.join("node-1.toml");
    let helper_list = || run_ok(&["hpke", "list", "--config", helper_config.to_str().unwrap()]);
    let old_public = helper_list()
        .strip_prefix("active")
        .unwrap()
        .trim()
        .to_owned();
    let _leader = NodeProcess::start(&deploy.join("node-0.toml"));
    let mut helper = NodeProcess::start(&helper_config);

    // Before the rotation.
    submit(dir, &deploy, &old_task, 0, 0);

    // 1. A new key, pending on the helper.
    let new_key = deploy.join("aggregator-1/hpke-2.key");
    let new_public = run_ok(&["hpke", "new", "--out", new_key.to_str().unwrap()])
        .trim()
        .to_owned();
    assert_eq!(new_public.len(), 64);
    assert_ne!(new_public, old_public);
    // Never overwrites a key file.
    assert!(
        !run(&["hpke", "new", "--out", new_key.to_str().unwrap()])
            .status
            .success()
    );
    edit(
        &helper_config,
        "hpke_key = \"aggregator-1/hpke.key\"\n",
        "hpke_key = \"aggregator-1/hpke.key\"\nhpke_pending_keys = [\"aggregator-1/hpke-2.key\"]\n",
    );
    assert_eq!(
        helper_list(),
        format!("active   {old_public}\npending  {new_public}\n")
    );
    helper.restart_gracefully();
    // A client already holding the next task file.
    let new_task = dir.join("task-new.toml");
    std::fs::copy(&task, &new_task).unwrap();
    edit(
        &new_task,
        &format!("hpke_public_key = \"{old_public}\""),
        &format!("hpke_public_key = \"{new_public}\""),
    );
    assert_eq!(task_id(&new_task), task_id(&old_task));
    submit(dir, &deploy, &new_task, 1, 0);

    // 2. The task file and the helper switch; the old key expires.
    std::fs::copy(&new_task, &task).unwrap();
    // A node whose task file names a key other than its active one refuses to start.
    let err = run(&["hpke", "list", "--config", helper_config.to_str().unwrap()]);
    assert!(!err.status.success());
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(stderr.contains("pending HPKE key"), "{stderr}");
    edit(
        &helper_config,
        "hpke_key = \"aggregator-1/hpke.key\"\nhpke_pending_keys = [\"aggregator-1/hpke-2.key\"]\n",
        "hpke_key = \"aggregator-1/hpke-2.key\"\nhpke_expired_keys = [\"aggregator-1/hpke.key\"]\n",
    );
    assert_eq!(
        helper_list(),
        format!("active   {new_public}\nexpired  {old_public}\n")
    );
    helper.restart_gracefully();
    submit(dir, &deploy, &old_task, 2, 0);
    submit(dir, &deploy, &new_task, 3, 0);
    let (count, sum) = collect(dir, &task, 0);
    assert_eq!(count, 4, "every client, on either task file, counted");
    assert_sum_of(&sum, &[0, 1, 2, 3]);

    // 3. The old key leaves the ring: a share sealed to it no longer opens, so that
    // report is acknowledged by the leader and rejected by the joint verification.
    edit(
        &helper_config,
        "hpke_expired_keys = [\"aggregator-1/hpke.key\"]\n",
        "",
    );
    helper.restart_gracefully();
    submit(dir, &deploy, &old_task, 4, 1);
    for k in 5..8 {
        submit(dir, &deploy, &new_task, k, 1);
    }
    let (count, sum) = collect(dir, &task, 1);
    assert_eq!(count, 3);
    assert_sum_of(&sum, &[5, 6, 7]);

    // One task throughout: the helper's ledger holds both rounds' releases.
    let report: serde_json::Value = serde_json::from_str(&run_ok(&[
        "budget",
        "report",
        "--task",
        task.to_str().unwrap(),
        "--node",
        helper_config.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    let rounds: Vec<u64> = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert_eq!(rounds, [0, 1]);
}
