//! A malicious leader against an honest helper, through the public sans-IO API.
//!
//! The attack these tests hold off: the helper evaluates a report's proof at the joint
//! randomness derived from the public share the leader forwards. If the leader could
//! have the same report prepared again under an altered public share, each verifier
//! message would reveal a new linear combination of the client's input; a few dozen
//! of them reveal the whole input. So the helper must answer at most one verifier
//! message per report: a report id is prepared in one job only (recorded durably
//! before the answer leaves), a job id answers only a byte-identical resend, a job may
//! not name a report twice, and the public share is bound into the sealed share's
//! associated data. Each test below is one way a leader might try.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeSet;

use cairn_mpc::secret::Seed;
use cairn_protocol::auth::Credential;
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::{HpkeSecretKey, generate_keypair};
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{
    ErrorCode, JobContinue, JobInit, JobResponse, Message, PrepareResult, ReportShare,
};
use cairn_protocol::store::{MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIM: usize = 64;
const NOW: Time = Time(1_000);

struct Setup {
    task: TaskConfig,
    leader: Leader<MemoryStore>,
    helper: Helper<MemoryStore>,
    helper_key: [u8; 32],
    rng: ChaCha20Rng,
}

fn setup() -> Setup {
    setup_with_min_clients(1)
}

fn setup_with_min_clients(min_clients: u32) -> Setup {
    let header = format!(
        "name = \"malicious-leader\"\ndimension = {DIM}\nbits = 16\nfrac_bits = 8\n\
         clip_norm = 4.0\nproof = \"carry-lift\"\nmin_clients = {min_clients}\n\
         max_clients = 100\nround_duration_secs = 3600\n"
    );
    let mut rng = ChaCha20Rng::from_seed([77; 32]);
    let (toml, _collector_sk, helper_sk) =
        support::two_aggregator_task(&mut rng, &header, "noise = \"none\"");
    let task = TaskConfig::from_toml(&toml).unwrap();
    let mut helper_key = [0u8; 32];
    hex::decode_to_slice(helper_sk.dangerous_to_hex().as_str(), &mut helper_key).unwrap();
    let leader = Leader::new(task.clone(), Seed::from_bytes([9; 32]), MemoryStore::new()).unwrap();
    let helper = Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([9; 32]),
        helper_sk,
        MemoryStore::new(),
    )
    .unwrap();
    Setup {
        task,
        leader,
        helper,
        helper_key,
        rng,
    }
}

impl Setup {
    fn register(&mut self) -> Credential {
        support::register_client(
            &self.task,
            self.leader.store(),
            self.helper.store(),
            &mut self.rng,
        )
    }

    /// An honest client's report, uploaded; the leader's honest job for it.
    fn honest_job(&mut self) -> (ReportId, JobInit) {
        let cred = self.register();
        let client = Client::new(self.task.clone(), cred).unwrap();
        let x: Vec<i64> = (0..DIM as i64).map(|i| (i * 37) % 101 - 50).collect();
        let req = client
            .prepare_upload_quantised(0, &x, &mut self.rng)
            .unwrap();
        let id = req.report.report_id;
        self.leader.handle_upload(req, NOW).unwrap();
        let (_, mut inits) = self.leader.start_job(0, &mut self.rng).unwrap().unwrap();
        (id, inits.remove(0))
    }

    /// Restarts the helper: a new state machine over the same store.
    fn restart_helper(&mut self) {
        let store = std::mem::replace(&mut self.helper, placeholder(&self.task)).into_store();
        self.helper = Helper::new(
            self.task.clone(),
            1,
            Seed::from_bytes([9; 32]),
            HpkeSecretKey::from_bytes(self.helper_key),
            store,
        )
        .unwrap();
    }
}

fn placeholder(task: &TaskConfig) -> Helper<MemoryStore> {
    Helper::new(
        task.clone(),
        1,
        Seed::from_bytes([0; 32]),
        HpkeSecretKey::from_bytes([1; 32]),
        MemoryStore::new(),
    )
    .unwrap()
}

/// The public share with the leader's joint-randomness part altered.
fn altered(share: &ReportShare, k: u8) -> ReportShare {
    let mut s = share.clone();
    s.public_share[0] ^= k;
    s
}

fn verifiers(resp: &JobResponse, id: ReportId) -> Vec<Vec<u8>> {
    resp.results
        .iter()
        .filter_map(|r| match r {
            PrepareResult::Verifier {
                report_id,
                verifier_share,
            } if *report_id == id => Some(verifier_share.clone()),
            _ => None,
        })
        .collect()
}

fn code_of(resp: &JobResponse, id: ReportId) -> Option<ErrorCode> {
    resp.results.iter().find_map(|r| match r {
        PrepareResult::Rejected { report_id, code } if *report_id == id => Some(*code),
        _ => None,
    })
}

/// Every verifier message the helper ever returned for the report: at most one value.
#[derive(Default)]
struct Leaks(BTreeSet<Vec<u8>>);

impl Leaks {
    fn add(&mut self, resp: &JobResponse, id: ReportId) {
        self.0.extend(verifiers(resp, id));
    }
}

#[test]
fn a_replay_with_altered_joint_randomness_is_refused_in_the_same_job() {
    let mut s = setup();
    let (id, init) = s.honest_job();
    let mut job = init.clone();
    for k in 1..=63u8 {
        job.reports.push(altered(&init.reports[0], k));
    }
    let err = s.helper.handle_job_init(&job, NOW).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage, "{}", err.detail);
    // Nothing was recorded for the refused job: the honest job still runs once.
    let resp = s.helper.handle_job_init(&init, NOW).unwrap();
    assert_eq!(verifiers(&resp, id).len(), 1);
}

#[test]
fn a_replay_in_a_new_job_or_under_a_reused_job_id_yields_no_second_verifier_message() {
    let mut s = setup();
    let (id, init) = s.honest_job();
    let mut leaks = Leaks::default();
    let first = s.helper.handle_job_init(&init, NOW).unwrap();
    leaks.add(&first, id);
    assert_eq!(leaks.0.len(), 1);

    for k in 1..=8u8 {
        // The same job id with altered content: the whole job is refused.
        let mut same_id = init.clone();
        same_id.reports[0] = altered(&init.reports[0], k);
        let err = s.helper.handle_job_init(&same_id, NOW).unwrap_err();
        assert_eq!(err.code, ErrorCode::Replay, "{}", err.detail);

        // A new job with the altered report: its share is bound to the public share,
        // and its id was prepared in another job.
        let mut fresh = init.clone();
        fresh.job_id = JobId([k; 16]);
        fresh.reports[0] = altered(&init.reports[0], k);
        let resp = s.helper.handle_job_init(&fresh, NOW).unwrap();
        leaks.add(&resp, id);
        assert!(code_of(&resp, id).is_some());

        // A new job with the report unaltered: a replay.
        let mut replay = init.clone();
        replay.job_id = JobId([k.wrapping_add(100); 16]);
        let resp = s.helper.handle_job_init(&replay, NOW).unwrap();
        leaks.add(&resp, id);
        assert_eq!(code_of(&resp, id), Some(ErrorCode::Replay));
    }
    // A byte-identical resend of the first job is answered with the same message.
    let again = s.helper.handle_job_init(&init, NOW).unwrap();
    leaks.add(&again, id);
    assert_eq!(
        leaks.0.len(),
        1,
        "the leader learned a second verifier message"
    );
}

#[test]
fn a_restarted_helper_still_refuses_the_replay_and_answers_the_honest_resend() {
    let mut s = setup();
    let (id, init) = s.honest_job();
    let mut leaks = Leaks::default();
    leaks.add(&s.helper.handle_job_init(&init, NOW).unwrap(), id);
    s.restart_helper();

    let mut fresh = init.clone();
    fresh.job_id = JobId([42; 16]);
    let resp = s.helper.handle_job_init(&fresh, NOW).unwrap();
    assert_eq!(code_of(&resp, id), Some(ErrorCode::Replay));
    leaks.add(&resp, id);
    fresh.reports[0] = altered(&init.reports[0], 5);
    fresh.job_id = JobId([43; 16]);
    leaks.add(&s.helper.handle_job_init(&fresh, NOW).unwrap(), id);
    let mut same_id = init.clone();
    same_id.reports[0] = altered(&init.reports[0], 6);
    assert_eq!(
        s.helper.handle_job_init(&same_id, NOW).unwrap_err().code,
        ErrorCode::Replay
    );

    // The leader's honest retry after the restart (same bytes) goes through, with the
    // same verifier message, and the job commits once.
    let resp = s.helper.handle_job_init(&init, NOW).unwrap();
    leaks.add(&resp, id);
    assert_eq!(leaks.0.len(), 1);
    let (cont, rejections) = s.leader.decide_job(init.job_id, &[resp]).unwrap();
    assert!(rejections.is_empty());
    let ack = s.helper.handle_job_continue(&cont).unwrap();
    assert_eq!(ack.accepted_count, 1);
    s.leader.commit_job(init.job_id, &[ack]).unwrap();
    assert_eq!(s.helper.store().round(0).unwrap().unwrap().count, 1);
}

#[test]
fn a_decision_naming_a_report_twice_is_refused_and_counts_nothing() {
    let mut s = setup();
    let (id, init) = s.honest_job();
    s.helper.handle_job_init(&init, NOW).unwrap();
    let doubled = JobContinue {
        task_id: s.task.id(),
        job_id: init.job_id,
        round: 0,
        accepted: vec![id, id],
    };
    let err = s.helper.handle_job_continue(&doubled).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage);
    assert_eq!(s.helper.store().round(0).unwrap().unwrap().count, 0);
}

#[test]
fn a_leader_cannot_make_the_helper_accept_a_report_under_a_client_it_does_not_hold() {
    let mut s = setup();
    let victim = s.register();
    let victim_id = victim.client_id();
    // The leader makes its own report with a credential the helper never registered,
    // and one with its own credential but the victim's client id.
    let stranger = Credential::generate(s.task.id(), &mut s.rng);
    let own = s.register();
    let x = vec![1i64; DIM];
    let mut shares = Vec::new();
    for (cred, id) in [(stranger, None), (own, Some(victim_id))] {
        let client = Client::new(s.task.clone(), cred).unwrap();
        let req = client.prepare_upload_quantised(0, &x, &mut s.rng).unwrap();
        let r = req.report;
        shares.push(ReportShare {
            report_id: r.report_id,
            client_id: id.unwrap_or(r.client_id),
            public_share: r.public_share.clone(),
            sealed_share: r.helper_shares[0].clone(),
        });
    }
    let job = JobInit {
        task_id: s.task.id(),
        job_id: JobId([5; 16]),
        round: 0,
        reports: shares.clone(),
    };
    let resp = s.helper.handle_job_init(&job, NOW).unwrap();
    // The stranger is unknown; the re-labelled share no longer opens (the client id
    // is bound into the sealed share), and its tag is the wrong client's anyway.
    assert_eq!(
        code_of(&resp, shares[0].report_id),
        Some(ErrorCode::Unauthorized)
    );
    assert!(matches!(
        code_of(&resp, shares[1].report_id),
        Some(ErrorCode::DecryptFailed | ErrorCode::Unauthorized)
    ));
}

#[test]
fn the_helper_holds_each_client_to_one_report_per_round_on_its_own() {
    let mut s = setup();
    let cred = s.register();
    let copy = Credential::from_toml(&cred.dangerous_to_toml()).unwrap();
    let client = Client::new(s.task.clone(), copy).unwrap();
    // Two genuine reports of one client for round 0, forwarded by a leader that skips
    // its own check.
    let mut shares = Vec::new();
    for v in [1i64, 2] {
        let r = client
            .prepare_upload_quantised(0, &vec![v; DIM], &mut s.rng)
            .unwrap()
            .report;
        shares.push(ReportShare {
            report_id: r.report_id,
            client_id: r.client_id,
            public_share: r.public_share.clone(),
            sealed_share: r.helper_shares[0].clone(),
        });
    }
    let job = JobInit {
        task_id: s.task.id(),
        job_id: JobId([6; 16]),
        round: 0,
        reports: shares.clone(),
    };
    let resp = s.helper.handle_job_init(&job, NOW).unwrap();
    assert_eq!(verifiers(&resp, shares[0].report_id).len(), 1);
    assert_eq!(
        code_of(&resp, shares[1].report_id),
        Some(ErrorCode::AlreadySubmitted)
    );
    // And a revoked client is refused.
    let other = s.register();
    s.helper.store().revoke_client(other.client_id()).unwrap();
    let r = Client::new(s.task.clone(), other)
        .unwrap()
        .prepare_upload_quantised(0, &vec![1; DIM], &mut s.rng)
        .unwrap()
        .report;
    let job = JobInit {
        task_id: s.task.id(),
        job_id: JobId([7; 16]),
        round: 0,
        reports: vec![ReportShare {
            report_id: r.report_id,
            client_id: r.client_id,
            public_share: r.public_share.clone(),
            sealed_share: r.helper_shares[0].clone(),
        }],
    };
    let resp = s.helper.handle_job_init(&job, NOW).unwrap();
    assert_eq!(code_of(&resp, r.report_id), Some(ErrorCode::Unauthorized));
}

#[test]
fn a_job_round_trips_as_bytes_the_helper_would_answer_again() {
    // The resend the helper answers is byte-identical: decoding and re-encoding a job
    // (as the node does) must not change its digest.
    let mut s = setup();
    let (_, init) = s.honest_job();
    let limits = s.helper.limits();
    let bytes = Message::JobInit(init.clone()).encode();
    let Message::JobInit(back) = Message::decode(&bytes, &limits).unwrap() else {
        panic!("a job decodes");
    };
    let first = s.helper.handle_job_init(&init, NOW).unwrap();
    let second = s.helper.handle_job_init(&back, NOW).unwrap();
    assert_eq!(first, second);
}

mod release;
