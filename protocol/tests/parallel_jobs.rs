//! A job verified and aggregated on several threads has exactly the outcome of one
//! thread ([`cairn_protocol::parallel`]): the same reports accepted, the same
//! rejected with the same codes, in the same order, and the same aggregate shares,
//! byte for byte, at the leader and at the helper.
//!
//! The round mixes honest reports with three kinds of bad ones, each caught at a
//! different place: a tampered leader share (the leader's decision: proof fails), a
//! tampered sealed helper share (the helper cannot open it) and a client the helper
//! does not know (its tag check). Its 70 reports make two jobs (64 and 6), so the
//! per-worker partial sums of both aggregators are merged many times over: a merge
//! that loses one worker's partial sum changes the aggregate and fails this test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::num::NonZeroUsize;

use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::JobDriver;
use cairn_protocol::helper::Helper;
use cairn_protocol::ids::ReportId;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Message};
use cairn_protocol::parallel::Parallelism;
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 300;
const REPORTS: usize = 70;
const NOW: Time = Time(1_000);

/// Everything a round's jobs decided.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Each job's accepted reports, in the order the leader sent them.
    accepted: Vec<Vec<ReportId>>,
    /// Each rejected report and why, in the order the leader reported them.
    rejected: Vec<(ReportId, ErrorCode)>,
    /// The leader's and the helper's round aggregate share, encoded, and their counts.
    leader_aggregate: Vec<u8>,
    helper_aggregate: Vec<u8>,
    counts: (u32, u32),
}

/// What each report of the round is, by its position.
fn kind(i: usize) -> Option<ErrorCode> {
    match i % 7 {
        3 => Some(ErrorCode::ProofFailed),
        4 => Some(ErrorCode::DecryptFailed),
        6 => Some(ErrorCode::Unauthorized),
        _ => None,
    }
}

/// Runs one round, from the same seeds every time, with both aggregators on `threads`.
fn round(threads: usize) -> Outcome {
    let header = format!(
        "name = \"parallel\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = 1\n\
         max_clients = 1000\nround_duration_secs = 3600\n"
    );
    let mut rng = ChaCha20Rng::from_seed([41; 32]);
    let (toml, _collector_sk, helper_sk) =
        support::two_aggregator_task(&mut rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    let parallelism = Parallelism::with_threads(NonZeroUsize::new(threads).unwrap());
    assert_eq!(parallelism.threads(), threads);
    let mut leader = Leader::new(task.clone(), Seed::from_bytes([5; 32]), MemoryStore::new())
        .unwrap()
        .with_parallelism(parallelism.clone());
    let mut helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([5; 32]),
        helper_sk,
        MemoryStore::new(),
    )
    .unwrap()
    .with_parallelism(parallelism);

    for i in 0..REPORTS {
        let cred = Credential::generate(task.id(), &mut rng);
        leader
            .store()
            .add_client(cred.client_id(), &cred.key_for(0))
            .unwrap();
        if kind(i) != Some(ErrorCode::Unauthorized) {
            helper
                .store()
                .add_client(cred.client_id(), &cred.key_for(1))
                .unwrap();
        }
        let client = Client::new(task.clone(), cred).unwrap();
        let x: Vec<i64> = (0..DIM)
            .map(|_| i64::from(rng.next_u32() % 9) - 4)
            .collect();
        let mut req = client.prepare_upload_quantised(0, &x, &mut rng).unwrap();
        match kind(i) {
            Some(ErrorCode::ProofFailed) => {
                let mut share = req.report.leader_share.expose_secret().to_vec();
                share[40] ^= 0x10;
                req.report.leader_share = cairn_mpc::secret::SecretVec::new(share);
            }
            Some(ErrorCode::DecryptFailed) => req.report.helper_shares[0].payload[3] ^= 1,
            _ => {}
        }
        leader.handle_upload(req, NOW).unwrap();
    }

    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    while let Some(mut driver) = JobDriver::start(&mut leader, 0, &mut rng).unwrap() {
        while let Some(request) = driver.poll_transmit() {
            if let Message::JobContinue(cont) = &request.message {
                accepted.push(cont.accepted.clone());
            }
            let answer = helper.handle_message(request.message, NOW, &mut rng);
            driver.handle_answer(&mut leader, answer).unwrap();
        }
        rejected.extend(
            driver
                .take_rejections()
                .into_iter()
                .map(|r| (r.report_id, r.code)),
        );
    }
    let l = leader.store().round(0).unwrap().unwrap();
    let h = helper.store().round(0).unwrap().unwrap();
    Outcome {
        accepted,
        rejected,
        leader_aggregate: l.aggregate.encode(),
        helper_aggregate: h.aggregate.encode(),
        counts: (l.count, h.count),
    }
}

#[test]
fn several_threads_decide_and_aggregate_exactly_as_one() {
    let one = round(1);
    // The round is what it should be: two jobs, every bad report caught with its code.
    assert_eq!(one.accepted.len(), 2);
    let honest = (0..REPORTS).filter(|i| kind(*i).is_none()).count();
    assert_eq!(one.accepted.iter().map(Vec::len).sum::<usize>(), honest);
    assert_eq!(one.counts, (honest as u32, honest as u32));
    let mut codes: Vec<ErrorCode> = one.rejected.iter().map(|(_, c)| *c).collect();
    let mut expected: Vec<ErrorCode> = (0..REPORTS).filter_map(kind).collect();
    codes.sort_by_key(|c| format!("{c:?}"));
    expected.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(codes, expected);
    assert_ne!(one.leader_aggregate, vec![0; 8 * DIM]);

    for threads in [2, 3, 4] {
        assert_eq!(round(threads), one, "{threads} threads");
    }
}

/// A leader of a task of dimension `dim` on `threads` threads (no reports).
fn leader(dim: usize, threads: usize) -> Leader<MemoryStore> {
    let header = format!(
        "name = \"batch\"\ndimension = {dim}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = 1\n\
         max_clients = 1000\nround_duration_secs = 3600\n"
    );
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let (toml, _, _) = support::two_aggregator_task(&mut rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    Leader::new(task, Seed::from_bytes([5; 32]), MemoryStore::new())
        .unwrap()
        .with_parallelism(Parallelism::with_threads(
            NonZeroUsize::new(threads).unwrap(),
        ))
}

#[test]
fn a_job_sized_by_memory_keeps_every_thread_busy_to_its_end() {
    // At d = 10^5 a job's memory budget holds a few reports per thread: the job holds
    // that many for each thread, so no thread idles through the job's last reports.
    let one = leader(100_000, 1).job_batch();
    assert!(
        (4..cairn_protocol::scheme::MAX_REPORTS_PER_JOB / 4).contains(&one),
        "memory-bound: {one}"
    );
    for threads in [2, 3, 4] {
        let batch = leader(100_000, threads).job_batch();
        assert_eq!(batch, one * threads, "{threads} threads");
    }
    // Many threads: at most JOB_MEMORY_MAX (4 threads' worth), a multiple of the
    // threads when more reports than threads fit, and at least one report.
    let l = leader(100_000, 1);
    let per_report = l
        .limits()
        .max_inbound_frame_len(cairn_protocol::messages::Inbound::LeaderFromClients)
        * cairn_protocol::leader::JOB_COPIES;
    let cap = cairn_protocol::leader::JOB_MEMORY_MAX / per_report;
    assert!((4 * one..4 * one + 4).contains(&cap), "{cap}");
    for threads in [5, 8, 16, 40] {
        let batch = leader(100_000, threads).job_batch();
        let expected = if cap > threads {
            cap - cap % threads
        } else {
            cap
        };
        assert_eq!(batch, expected, "{threads} threads");
    }
    let huge = leader(4_000_000, 8).job_batch();
    assert_eq!(huge, 1, "a report over the whole budget: jobs of one");
    // Full jobs are left whole, so a round makes the same jobs on any thread count
    // (which the test above relies on).
    for threads in [1, 2, 3, 4] {
        assert_eq!(
            leader(DIM, threads).job_batch(),
            cairn_protocol::scheme::MAX_REPORTS_PER_JOB
        );
    }
}
