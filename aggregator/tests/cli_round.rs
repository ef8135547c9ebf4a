//! Three `cairn node` processes from `cairn init`, 30 uploads with `cairn submit`
//! (honest, malformed, unregistered, a second report of one client, and cheating),
//! `cairn collect`, and the released sum against the plaintext sum (noise off: within
//! the fixed-point rounding bound).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use cairn_protocol::auth::Credential;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::messages::Message;
use cairn_transport::{ClientEndpoint, TransportOptions};
use common::{
    NodeProcess, credential, credential_path, init, run, run_ok, submit_args, write_update,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 20;

/// Sends a report whose leader share was tampered with after the proof was made: the
/// leader acknowledges it (it is well-formed) and the joint verification rejects it.
fn send_cheating_report(deploy: &Path, k: usize) {
    let task =
        TaskConfig::from_toml(&std::fs::read_to_string(deploy.join("task.toml")).unwrap()).unwrap();
    let client = cairn_protocol::client::Client::new(task.clone(), credential(deploy, k)).unwrap();
    // A seed per client: two cheating reports must be two reports, not one retried.
    let mut rng = ChaCha20Rng::from_seed([k as u8; 32]);
    let mut req = client.prepare_upload(0, &[0.01; DIM], &mut rng).unwrap();
    let mut share = req.report.leader_share.expose_secret().to_vec();
    share[40] ^= 0x40;
    req.report.leader_share = cairn_mpc::secret::SecretVec::new(share);
    let limits = cairn_protocol::scheme::Scheme::for_task(&task)
        .unwrap()
        .limits();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async {
        let endpoint = ClientEndpoint::bind(
            "127.0.0.1:0".parse().unwrap(),
            None,
            TransportOptions {
                max_frame_len: limits
                    .max_inbound_frame_len(cairn_protocol::messages::Inbound::ClientFromLeader),
                ..TransportOptions::default()
            },
        )
        .unwrap();
        let mut last = None;
        for _ in 0..50 {
            match endpoint
                .connect(
                    task.aggregators()[0].endpoint,
                    task.aggregator_fingerprint(0).unwrap(),
                )
                .await
            {
                Ok(conn) => match conn.request(&Message::UploadRequest(req).encode()).await {
                    Ok(bytes) => return Message::decode(&bytes, &limits).unwrap(),
                    Err(e) => panic!("{e}"),
                },
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("leader unreachable: {last:?}");
    });
    assert!(matches!(answer, Message::UploadResponse(_)), "{answer:?}");
}

#[test]
fn thirty_uploads_through_three_node_processes() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &["--dim", "20", "--noise", "none", "--min-clients", "5"],
        3,
    );
    let _nodes: Vec<NodeProcess> = (0..3)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    let task_path = deploy.join("task.toml");
    let task = task_path.to_str().unwrap();
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut expected = vec![0f64; DIM];
    let mut honest = 0;
    for i in 0..30 {
        let input = dir.path().join(format!("update-{i}.json"));
        let cred = credential_path(&deploy, i);
        match i {
            // Wrong length: refused before anything is sent.
            25 => {
                write_update(&input, &[0.5; 3]);
                let out = run(&submit_args(
                    task,
                    cred.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                ));
                assert!(!out.status.success());
                assert!(String::from_utf8_lossy(&out.stderr).contains("dimension"));
            }
            // Not a JSON array of numbers.
            26 => {
                std::fs::write(&input, "{\"not\": \"numbers\"}").unwrap();
                let out = run(&submit_args(
                    task,
                    cred.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                ));
                assert!(!out.status.success());
            }
            // A credential for this task that no aggregator registered: refused.
            27 => {
                write_update(&input, &[0.0; DIM]);
                let task_id = TaskConfig::from_toml(&std::fs::read_to_string(&task_path).unwrap())
                    .unwrap()
                    .id();
                let bad = dir.path().join("unregistered.toml");
                std::fs::write(
                    &bad,
                    Credential::generate(task_id, &mut rng)
                        .dangerous_to_toml()
                        .as_str(),
                )
                .unwrap();
                let out = run(&submit_args(
                    task,
                    bad.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                ));
                assert!(!out.status.success());
                assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
            }
            // Cheating: a tampered share, acknowledged but rejected by verification.
            28 | 29 => send_cheating_report(&deploy, i),
            _ => {
                let values: Vec<f64> = (0..DIM)
                    .map(|_| f64::from(rng.next_u32() % 2001) / 10_000.0 - 0.1)
                    .collect();
                // Norm ≤ √20·0.1 < 1 = C: no clipping, so the plaintext sum is exact.
                for (e, v) in expected.iter_mut().zip(&values) {
                    *e += f64::from(*v as f32);
                }
                write_update(&input, &values);
                run_ok(&submit_args(
                    task,
                    cred.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                ));
                honest += 1;
            }
        }
    }
    // The same client again in round 0, with another update: refused by the leader
    // (not merely by its own state folder: that one is bypassed here), nodes still up.
    let again = dir.path().join("again.json");
    write_update(&again, &[0.05; DIM]);
    let other_state = dir.path().join("fresh-state");
    let first_client = credential_path(&deploy, 0);
    let mut args = submit_args(
        task,
        first_client.to_str().unwrap(),
        "--input",
        again.to_str().unwrap(),
    );
    args.extend(["--state-dir", other_state.to_str().unwrap()]);
    let out = run(&args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already submitted"), "{stderr}");
    // With its own state folder, the client's CLI refuses before sending anything.
    let out = run(&submit_args(
        task,
        credential_path(&deploy, 0).to_str().unwrap(),
        "--input",
        again.to_str().unwrap(),
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already submitted"));

    // `cairn collect` of round 0 into `name`; the released JSON.
    let collect = |name: &str| -> serde_json::Value {
        let output = dir.path().join(name);
        run_ok(&[
            "collect",
            "--task",
            task,
            "--round",
            "0",
            "--output",
            output.to_str().unwrap(),
        ]);
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap()
    };
    let released = collect("sum.json");
    assert_eq!(released["round"], 0);
    assert_eq!(released["count"], honest);
    let frac_bits = TaskConfig::from_toml(&std::fs::read_to_string(&task_path).unwrap())
        .unwrap()
        .frac_bits();
    let tolerance = f64::from(honest) * 2f64.powi(-i32::from(frac_bits));
    let sum = released["sum"].as_array().unwrap();
    assert_eq!(sum.len(), DIM);
    for (got, want) in sum.iter().zip(&expected) {
        let got = got.as_f64().unwrap();
        assert!((got - want).abs() <= tolerance, "{got} vs {want}");
    }
    assert_eq!(released["rho_spent"], 0.0);
    // One budget receipt per aggregator, all agreeing.
    assert_eq!(released["receipts"].as_array().unwrap().len(), 3);
    assert_eq!(released["ledgers_disagree"], false);
    // Every node's ledger reads (read-only, beside the running node) and verifies.
    for i in 0..3 {
        let node = deploy.join(format!("node-{i}.toml"));
        let report: serde_json::Value = serde_json::from_str(&run_ok(&[
            "budget",
            "report",
            "--task",
            task,
            "--node",
            node.to_str().unwrap(),
            "--format",
            "json",
        ]))
        .unwrap();
        assert_eq!(report["aggregator_index"], i);
        assert_eq!(report["trust_assumption"], "no DP: noise = none");
        let releases = report["releases"].as_array().unwrap();
        assert_eq!(releases.len(), 1);
        assert_eq!(releases[0]["round"], 0);
        assert_eq!(releases[0]["report_count"], honest);
    }
    // Retention beside the running nodes: round 0's reports and jobs go, its release
    // stays, and collecting it again gives the same answer.
    for i in 0..3 {
        let node = deploy.join(format!("node-{i}.toml"));
        let node = node.to_str().unwrap();
        let kept = run_ok(&["db", "gc", "--config", node, "--keep-rounds", "1"]);
        assert!(kept.contains("nothing to collect"), "{kept}");
        let out = run_ok(&["db", "gc", "--config", node, "--keep-rounds", "0"]);
        let deleted: u64 = out
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(deleted >= honest as u64, "node {i}: {out}");
    }
    let released_again = collect("sum-again.json");
    assert_eq!(released_again["sum"], released["sum"]);
    assert_eq!(released_again["count"], honest);

    // A task file edited into another task (another id) is refused by a node whose
    // database holds the spent ledger: it would start a fresh budget beside it.
    let original = std::fs::read_to_string(&task_path).unwrap();
    let renamed = original.replacen("name = \"", "name = \"renamed-", 1);
    assert_ne!(renamed, original);
    std::fs::write(&task_path, &renamed).unwrap();
    let out = run(&[
        "node",
        "--config",
        deploy.join("node-1.toml").to_str().unwrap(),
    ]);
    std::fs::write(&task_path, &original).unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds the privacy ledger of task"),
        "{stderr}"
    );
}
