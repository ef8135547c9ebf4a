//! Log secrecy: a full round (two `cairn node` processes, `cairn submit`,
//! a raw upload with a known leader share, `cairn collect`) with every process at
//! `RUST_LOG=trace`; no secret of the deployment may appear in any log, in hex (either
//! case), base64 (PEM bodies) or Rust's byte-array `Debug` form.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod reliability_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cairn_protocol::messages::Message;
use cairn_transport::{ClientEndpoint, PrivateKey, TransportOptions};
use common::{cairn, init, submit_args, write_update};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reliability_support::{LoggedNode, deployment_secrets, protocol_client, quick_transport, task};

const DIM: usize = 8;

/// Runs `cairn ARGS…` at trace level, appending its output to `log`.
fn run_logged(args: &[&str], log: &Path) {
    let out = cairn()
        .env("RUST_LOG", "trace")
        .args(args)
        .output()
        .unwrap();
    let mut text = std::fs::read(log).unwrap_or_default();
    text.extend_from_slice(&out.stdout);
    text.extend_from_slice(&out.stderr);
    std::fs::write(log, text).unwrap();
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every textual form a byte secret could take in a log line.
fn forms(bytes: &[u8]) -> Vec<String> {
    let hex = hex::encode(bytes);
    let debug: Vec<String> = bytes.iter().take(12).map(u8::to_string).collect();
    vec![
        hex.clone(),
        hex.to_uppercase(),
        // Any 16-byte window is enough to leak most of a key.
        hex[..32].to_owned(),
        hex[hex.len() - 32..].to_owned(),
        debug.join(", "),
    ]
}

#[test]
fn no_secret_appears_in_trace_logs_of_a_full_round() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(
        dir.path(),
        &["--dim", "8", "--noise", "aggregator", "--min-clients", "2"],
        2,
    );
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut nodes: Vec<LoggedNode> = (0..2)
        .map(|i| {
            LoggedNode::start(
                &deploy.join(format!("node-{i}.toml")),
                &logs.join(format!("node-{i}.log")),
                "trace",
            )
        })
        .collect();
    let task_path = deploy.join("task.toml");
    let task_arg = task_path.to_str().unwrap();
    let cli_log = logs.join("cli.log");
    for k in 0..3 {
        let input = dir.path().join(format!("u{k}.json"));
        write_update(&input, &[0.05 * f64::from(k); DIM]);
        run_logged(
            &submit_args(
                task_arg,
                common::credential_path(&deploy, k as usize)
                    .to_str()
                    .unwrap(),
                "--input",
                input.to_str().unwrap(),
            ),
            &cli_log,
        );
    }

    // One upload whose leader share we know, so the logs can be searched for it.
    let task = task(&deploy);
    let protocol = protocol_client(&deploy, 3);
    let req = protocol
        .prepare_upload(0, &[0.1; DIM], &mut ChaCha20Rng::seed_from_u64(7))
        .unwrap();
    let leader_share = req.report.leader_share.expose_secret().to_vec();
    let limits = cairn_protocol::scheme::Scheme::for_task(&task)
        .unwrap()
        .limits();
    let frame = Message::UploadRequest(req).encode();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let endpoint = ClientEndpoint::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
            // One request, not retried: time for a slow machine's fsync.
            TransportOptions {
                request_timeout: Duration::from_secs(10),
                ..quick_transport(&task)
            },
        )
        .unwrap();
        let conn = endpoint
            .connect(
                task.aggregators()[0].endpoint,
                task.aggregator_fingerprint(0).unwrap(),
            )
            .await
            .unwrap();
        let answer = Message::decode(&conn.request(&frame).await.unwrap(), &limits).unwrap();
        assert!(matches!(answer, Message::UploadResponse(_)), "{answer:?}");
    });

    let output = dir.path().join("sum.json");
    run_logged(
        &[
            "collect",
            "--task",
            task_arg,
            "--round",
            "0",
            "--output",
            output.to_str().unwrap(),
        ],
        &cli_log,
    );
    let released: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(released["count"], 4);
    for n in &mut nodes {
        n.stop();
    }
    std::thread::sleep(Duration::from_millis(100));

    let mut text = String::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    // The run was really logged at trace level (a vacuous pass is a failure).
    assert!(text.len() > 10_000, "only {} bytes of logs", text.len());
    assert!(text.contains("TRACE"), "no trace-level lines");

    let mut searched = 0;
    for (label, secret) in deployment_secrets(&deploy) {
        if label.ends_with("(base64 body)") {
            assert!(!text.contains(&secret), "{label} appears in the logs");
            // The Ed25519 seed: the last 32 bytes of the PKCS#8 key.
            let pem = std::fs::read(deploy.join(label.trim_end_matches(" (base64 body)"))).unwrap();
            let key = PrivateKey::from_pem(&pem).unwrap();
            let der = key.expose_pkcs8_der();
            for form in forms(&der[der.len() - 32..]) {
                assert!(
                    !text.contains(&form),
                    "{label} seed appears in the logs as {form}"
                );
                searched += 1;
            }
        } else {
            for form in forms(&hex::decode(&secret).unwrap()) {
                assert!(
                    !text.contains(&form),
                    "{label} appears in the logs as {form}"
                );
                searched += 1;
            }
        }
    }
    for form in forms(&leader_share[..32]) {
        assert!(
            !text.contains(&form),
            "a leader share appears in the logs as {form}"
        );
        searched += 1;
    }
    println!(
        "{} bytes of logs, {} lines, searched for {searched} secret forms",
        text.len(),
        text.lines().count()
    );
    assert!(searched >= 40);
}
