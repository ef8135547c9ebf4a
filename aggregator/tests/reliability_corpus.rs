//! Hostile input on stable Rust: every input kept under
//! `reliability/corpus/<target>/` (the fuzz targets' regression corpus, seeded from
//! valid encodings and their mutations, plus whatever `cargo fuzz` found) is replayed
//! through the decoder of its fuzz target with the target's limits. Decoding must not
//! panic, and a frame that decodes must re-encode to the same bytes.
//!
//! `cargo test -p cairn-aggregator --test reliability_corpus -- --ignored` rewrites the
//! seed part of the corpus (files named `seed-*`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod common;
mod reliability_support;

#[path = "../../fuzz/fuzz_targets/limits.rs"]
mod limits;

use std::path::PathBuf;

use cairn_mpc::codec::Reader;
use cairn_protocol::ids::ReportId;
use cairn_protocol::messages::{
    CollectRequest, ErrorCode, ErrorMessage, Message, UploadResponse, decode_report, encode_report,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../reliability/corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn the_decode_message_corpus_replays_without_panics() {
    let limits = limits::limits();
    let all = inputs("decode_message");
    assert!(all.len() >= 100, "the corpus is missing: {}", all.len());
    let mut decoded = 0;
    for (path, bytes) in &all {
        let outcome = std::panic::catch_unwind(|| Message::decode(bytes, &limits));
        match outcome {
            Ok(Ok(message)) => {
                assert_eq!(
                    &message.encode(),
                    bytes,
                    "{}: not canonical",
                    path.display()
                );
                decoded += 1;
            }
            Ok(Err(_)) => {}
            Err(_) => panic!("{}: the decoder panicked", path.display()),
        }
    }
    // The seeds include valid frames of several kinds: the replay exercises decoding
    // to the end, not only the first length check.
    assert!(decoded >= 4, "only {decoded} inputs decode");
}

#[test]
fn the_decode_stored_report_corpus_replays_without_panics() {
    let limits = limits::limits();
    let all = inputs("decode_stored_report");
    assert!(all.len() >= 20, "the corpus is missing: {}", all.len());
    let mut decoded = 0;
    for (path, bytes) in &all {
        let outcome = std::panic::catch_unwind(|| {
            let mut r = Reader::new(bytes);
            decode_report(&mut r, &limits).is_ok()
        });
        match outcome {
            Ok(ok) => decoded += usize::from(ok),
            Err(_) => panic!("{}: the decoder panicked", path.display()),
        }
    }
    assert!(decoded >= 1, "no stored report decodes");
}

/// Mutations of a valid input: bit flips, truncations, extensions, overwritten
/// length-like words (all-ones, zero, huge).
fn mutants(valid: &[u8], rng: &mut ChaCha20Rng, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut m = valid.to_vec();
        let at = |rng: &mut ChaCha20Rng, len: usize| (rng.next_u32() as usize) % len.max(1);
        match i % 6 {
            0 => {
                let p = at(rng, m.len());
                m[p] ^= 1 << (rng.next_u32() % 8);
            }
            1 => m.truncate(at(rng, m.len())),
            2 => m.extend_from_slice(&rng.next_u64().to_le_bytes()),
            3 if m.len() >= 4 => {
                let p = at(rng, m.len() - 3);
                m[p..p + 4].copy_from_slice(&[0xff; 4]);
            }
            4 if m.len() >= 4 => {
                let p = at(rng, m.len() - 3);
                m[p..p + 4].copy_from_slice(&[0; 4]);
            }
            _ if m.len() >= 8 => {
                let p = at(rng, m.len() - 7);
                m[p..p + 8].copy_from_slice(&(u64::MAX / 3).to_be_bytes());
            }
            _ => m.push(0),
        }
        out.push(m);
    }
    out
}

#[test]
#[ignore = "rewrites the seed corpus under reliability/corpus"]
fn regenerate_seed_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = common::init(dir.path(), &["--dim", "1000", "--noise", "none"], 2);
    let task = reliability_support::task(&deploy);
    let protocol =
        cairn_protocol::client::Client::new(task.clone(), common::credential(&deploy, 0)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut messages = Vec::new();
    let mut reports = Vec::new();
    for k in 0..3 {
        let req = protocol
            .prepare_upload(k, &[0.01 * k as f32; 1000], &mut rng)
            .unwrap();
        let mut stored = Vec::new();
        encode_report(&req.report, &mut stored);
        reports.push(stored);
        messages.push(Message::UploadRequest(req).encode());
    }
    messages.push(
        Message::UploadResponse(UploadResponse {
            report_id: ReportId([7; 16]),
        })
        .encode(),
    );
    messages.push(
        Message::CollectRequest(CollectRequest {
            task_id: task.id(),
            round: 3,
        })
        .encode(),
    );
    messages.push(
        Message::Error(ErrorMessage {
            code: ErrorCode::Busy,
            detail: "busy".into(),
            retry_after_ms: 1000,
        })
        .encode(),
    );
    for (target, valid) in [
        ("decode_message", messages),
        ("decode_stored_report", reports),
    ] {
        let out = corpus(target);
        std::fs::create_dir_all(&out).unwrap();
        for (i, v) in valid.iter().enumerate() {
            std::fs::write(out.join(format!("seed-{i:02}-valid")), v).unwrap();
            for (j, m) in mutants(v, &mut rng, 30).iter().enumerate() {
                std::fs::write(out.join(format!("seed-{i:02}-mut-{j:02}")), m).unwrap();
            }
        }
    }
}

/// The fuzz targets' limits are those of a real `cairn init --dim 1000` task: otherwise
/// valid frames would not decode and neither the fuzzer nor this replay would reach
/// the end of the decoder.
#[test]
fn the_fuzz_limits_are_a_real_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = common::init(dir.path(), &["--dim", "1000", "--noise", "none"], 2);
    let task = reliability_support::task(&deploy);
    let real = cairn_protocol::scheme::Scheme::for_task(&task)
        .unwrap()
        .limits();
    assert_eq!(format!("{real:?}"), format!("{:?}", limits::limits()));
}
