//! A deterministic in-memory simulation of whole rounds (DESIGN §9).
//!
//! One collector, two or three aggregators and 50 clients run three rounds over a
//! simulated network that drops, duplicates and reorders messages under a seeded
//! scheduler. Every message crosses the "network" as bytes (encoded, then decoded
//! with the task's limits). Honest clients retry until acknowledged; the leader retries
//! jobs until committed. Five malicious clients send every kind of bad report.
//!
//! Checked: with noise off, the released sum equals the plaintext sum of the valid
//! reports exactly; every bad report is refused with the right error and changes
//! nothing; no report is counted twice; a round below `min_clients` is not released;
//! a release beyond the budget is refused by every aggregator on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cairn_mpc::secret::Seed;
use cairn_protocol::aggregator::Reject;
use cairn_protocol::auth::{Credential, TagContext};
use cairn_protocol::client::Client;
use cairn_protocol::clock::Time;
use cairn_protocol::collector::Collector;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::driver::{CollectDriver, CollectPoll, JobDriver, Transmit};
use cairn_protocol::helper::Helper;
use cairn_protocol::hpke::{HpkeSecretKey, generate_keypair};
use cairn_protocol::ids::ReportId;
use cairn_protocol::leader::Leader;
use cairn_protocol::messages::{ErrorCode, Limits, Message};
use cairn_protocol::store::{CommitOutcome, MemoryStore, TaskStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const DIM: usize = 12;

/// Everything one simulated deployment holds.
struct World {
    task: TaskConfig,
    leader: Leader<MemoryStore>,
    helpers: Vec<Helper<MemoryStore>>,
    collector: Collector,
    credential_rng: ChaCha20Rng,
    limits: Limits,
    rng: ChaCha20Rng,
    now: Time,
    /// `task_toml`'s arguments: its keys are deterministic, so a restarted helper gets
    /// its own key again by calling it once more.
    key_source: (usize, String, u32, String),
    /// Helper restarts injected between a job's init and its continue (the helper then
    /// answers `UnknownJob`, and the driver must prepare it again).
    restarts_mid_job: usize,
    /// Jobs that failed and were resumed from the leader's store.
    jobs_resumed: usize,
}

fn task_toml(
    n: usize,
    noise: &str,
    min_clients: u32,
    proof: &str,
) -> (String, Vec<HpkeSecretKey>, HpkeSecretKey) {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    // Without a proof the whole sum must fit in 16 bits: 30 · (4·2^8 + 1) < 2^15.
    let max_clients = if proof == "none" { 30 } else { 1000 };
    let (collector_sk, collector_pk) = generate_keypair(&mut rng);
    let mut aggs = String::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let (sk, pk) = generate_keypair(&mut rng);
        keys.push(sk);
        aggs.push_str(&format!(
            "\n[[aggregators]]\nrole = \"{}\"\nendpoint = \"127.0.0.1:{}\"\ntls_cert_sha256 = \"{}\"\nhpke_public_key = \"{}\"\n",
            if i == 0 { "leader" } else { "helper" },
            7000 + i,
            format!("{:02x}", i).repeat(32),
            pk.to_hex()
        ));
    }
    let toml = format!(
        r#"name = "simulation"
dimension = {DIM}
bits = 16
frac_bits = 8
clip_norm = 4.0
proof = "{proof}"
min_clients = {min_clients}
max_clients = {max_clients}
round_duration_secs = 3600

[privacy]
{noise}

[collector]
hpke_public_key = "{}"
{aggs}"#,
        collector_pk.to_hex()
    );
    (toml, keys, collector_sk)
}

fn world(n: usize, noise: &str, min_clients: u32, seed: u8) -> World {
    world_with_proof(n, noise, min_clients, seed, "carry-lift")
}

fn world_with_proof(n: usize, noise: &str, min_clients: u32, seed: u8, proof: &str) -> World {
    let (toml, keys, collector_sk) = task_toml(n, noise, min_clients, proof);
    let task = TaskConfig::from_toml(&toml).unwrap();
    let verify_key = [9u8; 32];
    let mut keys = keys.into_iter();
    let _leader_hpke = keys.next();
    let leader = Leader::new(
        task.clone(),
        Seed::from_bytes(verify_key),
        MemoryStore::new(),
    )
    .unwrap();
    let helpers = keys
        .enumerate()
        .map(|(i, sk)| {
            Helper::new(
                task.clone(),
                (i + 1) as u8,
                Seed::from_bytes(verify_key),
                sk,
                MemoryStore::new(),
            )
            .unwrap()
        })
        .collect();
    let collector = Collector::new(task.clone(), collector_sk).unwrap();
    let limits = leader.limits();
    World {
        task,
        leader,
        helpers,
        collector,
        credential_rng: ChaCha20Rng::from_seed([seed ^ 0x5a; 32]),
        limits,
        rng: ChaCha20Rng::from_seed([seed; 32]),
        now: Time(1_000),
        key_source: (n, noise.to_string(), min_clients, proof.to_string()),
        restarts_mid_job: 0,
        jobs_resumed: 0,
    }
}

/// A seeded lossy link: each delivery may be dropped or duplicated.
fn fate(rng: &mut ChaCha20Rng) -> Fate {
    match rng.next_u32() % 10 {
        0 => Fate::DropRequest,
        1 => Fate::DropResponse,
        2 => Fate::Duplicate,
        _ => Fate::Deliver,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Deliver,
    DropRequest,
    DropResponse,
    Duplicate,
}

/// Sends a frame over the lossy link to a handler; `None` if the answer was lost.
fn rpc(
    rng: &mut ChaCha20Rng,
    limits: &Limits,
    frame: Vec<u8>,
    mut handler: impl FnMut(Message) -> Message,
) -> Option<Message> {
    let f = fate(rng);
    if f == Fate::DropRequest {
        return None;
    }
    let deliver = |h: &mut dyn FnMut(Message) -> Message| {
        let msg = Message::decode(&frame, limits).expect("frames on the wire decode");
        let answer = h(msg).encode();
        Message::decode(&answer, limits).expect("answers decode")
    };
    let mut answer = deliver(&mut handler);
    if f == Fate::Duplicate {
        answer = deliver(&mut handler);
    }
    if f == Fate::DropResponse {
        None
    } else {
        Some(answer)
    }
}

fn error(reject: Reject) -> Message {
    Message::Error(cairn_protocol::messages::ErrorMessage {
        code: reject.code,
        detail: reject.detail,
    })
}

impl World {
    /// A fresh credential, registered at every aggregator.
    fn credential(&mut self) -> Credential {
        let cred = Credential::generate(self.task.id(), &mut self.credential_rng);
        assert!(
            self.leader
                .store()
                .add_client(cred.client_id(), &cred.key_for(0))
                .unwrap()
        );
        for (j, h) in self.helpers.iter().enumerate() {
            let key = cred.key_for((j + 1) as u8);
            assert!(h.store().add_client(cred.client_id(), &key).unwrap());
        }
        cred
    }

    /// A new registered client.
    fn client(&mut self) -> Client {
        let cred = self.credential();
        Client::new(self.task.clone(), cred).unwrap()
    }

    /// `k` new registered clients.
    fn clients(&mut self, k: usize) -> Vec<Client> {
        (0..k).map(|_| self.client()).collect()
    }

    /// Delivers one upload frame to the leader; the leader's answer, if it arrived.
    fn upload(&mut self, frame: Vec<u8>) -> Option<Message> {
        let now = self.now;
        let leader = &mut self.leader;
        let limits = self.limits;
        let f = fate(&mut self.rng);
        if f == Fate::DropRequest {
            return None;
        }
        let mut deliver = || match Message::decode(&frame, &limits) {
            Ok(Message::UploadRequest(req)) => match leader.handle_upload(req, now) {
                Ok(ack) => Message::UploadResponse(ack),
                Err(e) => error(e),
            },
            Ok(_) => error(Reject::new(ErrorCode::BadMessage, "not an upload")),
            Err(e) => error(Reject::new(ErrorCode::for_decode_error(&e), e.to_string())),
        };
        let mut answer = deliver();
        if f == Fate::Duplicate {
            answer = deliver();
        }
        if f == Fate::DropResponse {
            None
        } else {
            Some(answer)
        }
    }

    /// Uploads until the leader answers; returns the final answer.
    fn upload_until_answered(&mut self, frame: &[u8]) -> Message {
        for _ in 0..100 {
            if let Some(m) = self.upload(frame.to_vec()) {
                return m;
            }
        }
        panic!("upload never answered");
    }

    /// Restarts helper `j`: its in-memory jobs are lost, its store survives.
    fn restart_helper(&mut self, j: usize) {
        let (n, noise, min_clients, proof) = &self.key_source;
        let (_, keys, _) = task_toml(*n, noise, *min_clients, proof);
        let Some(key) = keys.into_iter().nth(j + 1) else {
            panic!("no key for helper {j}");
        };
        let store = self.helpers.remove(j).into_store();
        let restarted = Helper::new(
            self.task.clone(),
            (j + 1) as u8,
            Seed::from_bytes([9u8; 32]),
            key,
            store,
        )
        .unwrap();
        self.helpers.insert(j, restarted);
    }

    /// Sends a driver's request to its helper over the lossy link; `None` if lost.
    fn send_lossy(&mut self, t: &Transmit) -> Option<Message> {
        let (limits, now) = (self.limits, self.now);
        let helper = &mut self.helpers[t.helper];
        let rng2 = &mut ChaCha20Rng::from_seed([t.helper as u8; 32]);
        rpc(&mut self.rng, &limits, t.message.encode(), |m| {
            helper.handle_message(m, now, rng2).unwrap_or_else(error)
        })
    }

    /// Sends a driver's request to its helper over a reliable link.
    fn send_reliably(&mut self, t: &Transmit) -> Message {
        let (now, message) = (self.now, Message::decode(&t.message.encode(), &self.limits));
        self.helpers[t.helper]
            .handle_message(message.unwrap(), now, &mut self.rng)
            .unwrap_or_else(error)
    }

    /// Runs every queued report of `round` through the leader's job driver over the
    /// lossy link, with helper restarts between requests, until committed. A job that
    /// fails (a helper lost it twice) is resumed from the leader's store, as the node
    /// does. Returns the rejections.
    fn aggregate(&mut self, round: u32) -> Vec<(ReportId, ErrorCode)> {
        let mut rejected = Vec::new();
        let mut resumed: Vec<JobDriver> = Vec::new();
        'jobs: loop {
            let mut driver = match resumed.pop() {
                Some(d) => d,
                None => match JobDriver::start(&mut self.leader, round, &mut self.rng).unwrap() {
                    Some(d) => d,
                    None => break,
                },
            };
            while let Some(t) = driver.poll_transmit() {
                if self.rng.next_u32().is_multiple_of(2) {
                    self.restart_helper(t.helper);
                    if matches!(t.message, Message::JobContinue(_)) {
                        self.restarts_mid_job += 1;
                    }
                }
                // A lost request or answer: the driver's request is sent again.
                let Some(answer) = self.send_lossy(&t) else {
                    continue;
                };
                if let Err(e) = driver.handle_answer(&mut self.leader, Ok(answer)) {
                    assert_eq!(e.code, ErrorCode::UnknownJob, "{}", e.detail);
                    self.jobs_resumed += 1;
                    assert!(self.jobs_resumed < 100, "a job keeps failing");
                    resumed = JobDriver::resume_all(&mut self.leader).unwrap();
                    continue 'jobs;
                }
            }
            let outcome = driver.outcome().expect("the job is committed");
            assert_eq!(outcome.commit, CommitOutcome::Applied);
            rejected.extend(
                driver
                    .take_rejections()
                    .into_iter()
                    .map(|r| (r.report_id, r.code)),
            );
        }
        rejected
    }

    /// Collects a round through the leader's collect driver over the lossy link.
    fn collect(&mut self, round: u32) -> Result<cairn_protocol::collector::Collection, ErrorCode> {
        let req = self.collector.request(round);
        let started = Instant::now();
        let mut driver = CollectDriver::new(req, self.now, started, Duration::ZERO);
        let response = loop {
            match driver.poll(&mut self.leader, &mut self.rng, started) {
                Ok(CollectPoll::Transmit(t)) => {
                    if let Some(answer) = self.send_lossy(&t) {
                        driver.handle_answer(Ok(answer)).map_err(|e| e.code)?;
                    }
                }
                Ok(CollectPoll::Retry { .. }) => panic!("every job ran before the collect"),
                Ok(CollectPoll::Done(response)) => break response,
                Err(e) => return Err(e.code),
            }
        };
        // Through the codec, as on the wire.
        let bytes = Message::CollectResponse(response).encode();
        let Message::CollectResponse(response) = Message::decode(&bytes, &self.limits).unwrap()
        else {
            panic!("collect response decodes");
        };
        Ok(self.collector.open(round, &response).unwrap())
    }
}

/// A random honest quantised vector with norm well inside B.
fn honest_vector(rng: &mut ChaCha20Rng) -> Vec<i64> {
    (0..DIM)
        .map(|_| i64::from(rng.next_u32() % 201) - 100)
        .collect()
}

fn run_rounds(n: usize, seed: u8) {
    let mut w = world(n, "noise = \"none\"", 10, seed);
    let pool = w.clients(50);
    let mut client_rng = ChaCha20Rng::from_seed([seed.wrapping_add(1); 32]);
    for round in 0..3u32 {
        // Round 2 gets too few clients and must not be released.
        let clients = if round == 2 { 5 } else { 50 };
        let mut expected = vec![0i64; DIM];
        let mut frames = Vec::new();
        let mut ids = BTreeSet::new();
        for client in pool.iter().take(clients) {
            let x = honest_vector(&mut client_rng);
            for (e, v) in expected.iter_mut().zip(&x) {
                *e += v;
            }
            let req = client
                .prepare_upload_quantised(round, &x, &mut client_rng)
                .unwrap();
            ids.insert(req.report.report_id);
            frames.push(Message::UploadRequest(req).encode());
        }
        // Reordered delivery; every honest client retries until it has an answer.
        let mut order: Vec<usize> = (0..frames.len()).collect();
        for i in (1..order.len()).rev() {
            let j = (w.rng.next_u32() as usize) % (i + 1);
            order.swap(i, j);
        }
        for &i in &order {
            match w.upload_until_answered(&frames[i]) {
                Message::UploadResponse(_) => {}
                other => panic!("honest upload refused: {other:?}"),
            }
        }
        // Duplicated uploads after the fact: acknowledged, not counted again.
        for &i in order.iter().take(5) {
            assert!(matches!(
                w.upload_until_answered(&frames[i]),
                Message::UploadResponse(_)
            ));
        }

        // Malicious clients.
        let malicious = malicious_frames(&mut w, &pool[0], round, &mut client_rng, &frames[0]);
        let mut expected_rejections = BTreeMap::new();
        for (name, frame, expected_code, at_upload) in malicious {
            let answer = w.upload_until_answered(&frame);
            if at_upload {
                match answer {
                    Message::Error(e) => assert_eq!(e.code, expected_code, "{name}"),
                    other => panic!("{name}: accepted at upload: {other:?}"),
                }
            } else {
                let Message::UploadResponse(ack) = answer else {
                    panic!("{name}: should pass upload checks, got {answer:?}");
                };
                expected_rejections.insert(ack.report_id, (name, expected_code));
            }
        }

        let rejected = w.aggregate(round);
        let rejected: BTreeMap<_, _> = rejected.into_iter().collect();
        for (id, (name, code)) in &expected_rejections {
            assert_eq!(
                rejected.get(id),
                Some(code),
                "{name} rejected with the right error"
            );
        }
        assert_eq!(
            rejected.len(),
            expected_rejections.len(),
            "no honest report rejected"
        );

        match w.collect(round) {
            Ok(c) => {
                assert_ne!(round, 2, "a round below min_clients must not be released");
                assert_eq!(c.count as usize, clients, "every valid report counted once");
                assert_eq!(c.sum_quantised, expected, "sum equals the plaintext sum");
                // A retried collect returns the same release.
                let again = w.collect(round).unwrap();
                assert_eq!(again.sum_quantised, expected);
            }
            Err(code) => {
                assert_eq!(round, 2);
                assert_eq!(code, ErrorCode::NotEnoughReports);
            }
        }
    }
    // The driver's re-init of a helper that lost a job was exercised.
    assert!(w.restarts_mid_job > 0, "no helper restarted mid-job");
    eprintln!(
        "{} helper restarts mid-job, {} jobs resumed",
        w.restarts_mid_job, w.jobs_resumed
    );
}

/// Builds the bad reports: (name, frame, expected code, refused already at upload).
fn malicious_frames(
    w: &mut World,
    honest_client: &Client,
    round: u32,
    rng: &mut ChaCha20Rng,
    honest_frame: &[u8],
) -> Vec<(&'static str, Vec<u8>, ErrorCode, bool)> {
    let limits = w.limits;
    let task_id = w.task.id();
    // Each bad report comes from a client of its own (one report per client per round).
    let fresh = |w: &mut World, rng: &mut ChaCha20Rng| {
        w.client()
            .prepare_upload_quantised(round, &honest_vector(rng), rng)
            .unwrap()
    };
    let mut out = Vec::new();

    out.push((
        "malformed bytes",
        vec![1, 1, 0xde, 0xad],
        ErrorCode::BadMessage,
        true,
    ));

    let mut r = fresh(w, rng);
    r.task_id.0[0] ^= 1;
    out.push((
        "wrong task id",
        Message::UploadRequest(r).encode(),
        ErrorCode::UnknownTask,
        true,
    ));

    let unregistered = Client::new(w.task.clone(), Credential::generate(task_id, rng)).unwrap();
    let r = unregistered
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    out.push((
        "unregistered client",
        Message::UploadRequest(r).encode(),
        ErrorCode::Unauthorized,
        true,
    ));

    let mut r = fresh(w, rng);
    r.report.leader_tag[0] ^= 1;
    out.push((
        "wrong leader tag",
        Message::UploadRequest(r).encode(),
        ErrorCode::Unauthorized,
        true,
    ));

    // The honest client again, with another report for the same round.
    let r = honest_client
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    out.push((
        "second report of one client",
        Message::UploadRequest(r).encode(),
        ErrorCode::AlreadySubmitted,
        true,
    ));

    let mut r = fresh(w, rng);
    let mut longer = r.report.leader_share.expose_secret().to_vec();
    longer.push(0);
    r.report.leader_share = cairn_mpc::secret::SecretVec::new(longer);
    out.push((
        "oversize report",
        Message::UploadRequest(r).encode(),
        ErrorCode::WrongSize,
        true,
    ));

    let mut r = fresh(w, rng);
    let mut shorter = r.report.leader_share.expose_secret().to_vec();
    shorter.pop();
    r.report.leader_share = cairn_mpc::secret::SecretVec::new(shorter);
    out.push((
        "undersize report",
        Message::UploadRequest(r).encode(),
        ErrorCode::WrongSize,
        true,
    ));

    // A replay: an honest report's id with another (registered, correctly tagging)
    // client's content.
    let Message::UploadRequest(honest) = Message::decode(honest_frame, &limits).unwrap() else {
        unreachable!()
    };
    let cred = w.credential();
    let thief = Client::new(
        w.task.clone(),
        Credential::from_toml(&cred.dangerous_to_toml()).unwrap(),
    )
    .unwrap();
    let mut r = thief
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    r.report.report_id = honest.report.report_id;
    r.report.leader_tag = cred.key_for(0).tag(&TagContext {
        task_id: &task_id,
        client_id: &r.report.client_id,
        round,
        report_id: &r.report.report_id,
        public_share: &r.report.public_share,
        aggregator: 0,
    });
    out.push((
        "replayed id",
        Message::UploadRequest(r).encode(),
        ErrorCode::Replay,
        true,
    ));

    // Tampered leader share (changes x'_0 after the proof was made).
    let mut r = fresh(w, rng);
    let mut share = r.report.leader_share.expose_secret().to_vec();
    share[40] ^= 0x10;
    r.report.leader_share = cairn_mpc::secret::SecretVec::new(share);
    out.push((
        "tampered leader share",
        Message::UploadRequest(r).encode(),
        ErrorCode::ProofFailed,
        false,
    ));

    // Tampered helper ciphertext: the helper cannot open it.
    let mut r = fresh(w, rng);
    r.report.helper_shares[0].payload[3] ^= 1;
    out.push((
        "tampered helper share",
        Message::UploadRequest(r).encode(),
        ErrorCode::DecryptFailed,
        false,
    ));

    // A public share altered on the way: the leader's tag no longer verifies.
    let mut r = fresh(w, rng);
    r.report.public_share[0] ^= 1;
    out.push((
        "altered public share",
        Message::UploadRequest(r).encode(),
        ErrorCode::Unauthorized,
        true,
    ));

    // A malicious client forging its joint-randomness claim after sealing: it can
    // re-tag for the leader, but its joint randomness no longer matches its shares,
    // so the proof fails (and the helper's share, bound to the public share it was
    // sealed with, would not open either).
    let cred = w.credential();
    let client = Client::new(
        w.task.clone(),
        Credential::from_toml(&cred.dangerous_to_toml()).unwrap(),
    )
    .unwrap();
    let mut r = client
        .prepare_upload_quantised(round, &honest_vector(rng), rng)
        .unwrap();
    r.report.public_share[0] ^= 1;
    r.report.leader_tag = cred.key_for(0).tag(&TagContext {
        task_id: &task_id,
        client_id: &r.report.client_id,
        round,
        report_id: &r.report.report_id,
        public_share: &r.report.public_share,
        aggregator: 0,
    });
    out.push((
        "forged joint randomness",
        Message::UploadRequest(r).encode(),
        ErrorCode::ProofFailed,
        false,
    ));

    // A report sealed for another report id (cut and pasted): the helper cannot open it.
    let mut r = fresh(w, rng);
    let other = fresh(w, rng);
    r.report.helper_shares = other.report.helper_shares;
    out.push((
        "helper share from another report",
        Message::UploadRequest(r).encode(),
        ErrorCode::DecryptFailed,
        false,
    ));
    out
}

#[test]
fn three_rounds_two_aggregators_with_faults() {
    run_rounds(2, 1);
}

#[test]
fn three_rounds_three_aggregators_with_faults() {
    run_rounds(3, 2);
}

#[test]
fn a_release_beyond_the_budget_is_refused_by_every_aggregator() {
    // ρ per release = B²/(2σ²); the budget is sized for two releases, not three.
    let noise = "noise = \"aggregator\"\nsigma = 8000.0\nepsilon = 1.0\ndelta = 1e-6";
    let mut w = world(2, noise, 3, 9);
    let pool = w.clients(3);
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let rho = cairn_protocol::privacy::Privacy::for_task(&w.task).unwrap();
    let per_release = rho.rho_per_release();
    let releases_allowed = (rho.rho_budget() / per_release).floor() as u32;
    // By hand: B = ⌈4·2^8 + √12⌉ = 1028, ρ = 1028²/(2·8000²) = 0.0082561 per release;
    // the budget ε = 1 at δ = 1e-6 is ρ = 0.024356 (CKS20 Corollary 13, computed
    // independently in Python), so 2.95 releases: exactly two fit.
    assert!((per_release - 1028.0f64.powi(2) / (2.0 * 8000.0f64.powi(2))).abs() < 1e-15);
    assert!(
        (rho.rho_budget() - 0.024_356).abs() < 1e-5,
        "{}",
        rho.rho_budget()
    );
    assert_eq!(releases_allowed, 2);
    let mut released = 0;
    for round in 0..=releases_allowed {
        for client in &pool {
            let req = client
                .prepare_upload_quantised(round, &honest_vector(&mut rng), &mut rng)
                .unwrap();
            assert!(matches!(
                w.upload_until_answered(&Message::UploadRequest(req).encode()),
                Message::UploadResponse(_)
            ));
        }
        w.aggregate(round);
        match w.collect(round) {
            Ok(_) => released += 1,
            Err(code) => {
                assert_eq!(code, ErrorCode::BudgetExceeded);
                assert_eq!(round, releases_allowed);
            }
        }
    }
    assert_eq!(released, releases_allowed);
    // The helper, asked directly (as if the leader ignored its own ledger), refuses on
    // its own: its ledger is full too.
    let round = releases_allowed;
    let record = w.helpers[0].store().round(round).unwrap().unwrap();
    let req = cairn_protocol::messages::AggregateShareRequest {
        task_id: w.task.id(),
        round,
        report_count: record.count,
        report_set_digest: w.helpers[0].store().report_set_digest(round).unwrap(),
        leader_ledger: cairn_protocol::ledger::LedgerHead {
            entries: 0,
            rho_total: 0.0,
            hash: [0; 32],
        },
        leader_released_before: false,
    };
    let err = w.helpers[0]
        .handle_aggregate_share_request(&req, w.now, &mut rng)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BudgetExceeded);
    assert!(w.helpers[0].rho_spent() <= rho.rho_budget());
    assert!(w.leader.rho_spent() <= rho.rho_budget());
}

#[test]
fn no_proof_mode_sums_exactly_over_the_lossy_network() {
    // Semi-honest clients: plain 16-bit shares, no proof; the sum must still be exact
    // (max_clients · max|x_i| < 2^15 is checked at task creation).
    let mut w = world_with_proof(3, "noise = \"none\"", 5, 21, "none");
    let pool = w.clients(30);
    let mut rng = ChaCha20Rng::from_seed([22; 32]);
    let mut expected = vec![0i64; DIM];
    for client in &pool {
        let x = honest_vector(&mut rng);
        for (e, v) in expected.iter_mut().zip(&x) {
            *e += v;
        }
        let req = client.prepare_upload_quantised(0, &x, &mut rng).unwrap();
        assert!(matches!(
            w.upload_until_answered(&Message::UploadRequest(req).encode()),
            Message::UploadResponse(_)
        ));
    }
    assert!(w.aggregate(0).is_empty(), "no report rejected");
    let released = w.collect(0).unwrap();
    assert_eq!(released.count, 30);
    assert_eq!(released.sum_quantised, expected);
}

/// Uploads one honest report from each of `clients` new clients for `round`; returns
/// the plaintext sum.
fn upload_honest(w: &mut World, clients: usize, round: u32, rng: &mut ChaCha20Rng) -> Vec<i64> {
    let mut expected = vec![0i64; DIM];
    for client in w.clients(clients) {
        let x = honest_vector(rng);
        for (e, v) in expected.iter_mut().zip(&x) {
            *e += v;
        }
        let req = client.prepare_upload_quantised(round, &x, rng).unwrap();
        assert!(matches!(
            w.upload_until_answered(&Message::UploadRequest(req).encode()),
            Message::UploadResponse(_)
        ));
    }
    expected
}

#[test]
fn the_collect_driver_waits_for_reports_in_flight_then_gives_up() {
    let mut w = world(2, "noise = \"none\"", 3, 31);
    let mut rng = ChaCha20Rng::from_seed([32; 32]);
    let expected = upload_honest(&mut w, 5, 0, &mut rng);
    let t0 = Instant::now();
    let mut driver = CollectDriver::new(w.collector.request(0), w.now, t0, Duration::from_secs(1));
    // Reports still queued: retry at once (after running the jobs), then at intervals.
    let poll = |d: &mut CollectDriver, w: &mut World, at| d.poll(&mut w.leader, &mut w.rng, at);
    assert!(matches!(
        poll(&mut driver, &mut w, t0),
        Ok(CollectPoll::Retry { after }) if after == Duration::ZERO
    ));
    assert!(matches!(
        poll(&mut driver, &mut w, t0),
        Ok(CollectPoll::Retry { after }) if after == CollectDriver::RETRY_INTERVAL
    ));
    // Out of patience: the retriable Mismatch goes to the collector.
    let late = t0 + Duration::from_secs(2);
    assert_eq!(
        poll(&mut driver, &mut w, late).unwrap_err().code,
        ErrorCode::Mismatch
    );
    // Once the jobs ran, a new request is released with every report.
    assert!(w.aggregate(0).is_empty());
    let released = w.collect(0).unwrap();
    assert_eq!(released.count, 5);
    assert_eq!(released.sum_quantised, expected);
}

#[test]
fn a_wrong_answer_ends_the_job_and_the_resumed_job_counts_each_report_once() {
    let mut w = world(2, "noise = \"none\"", 3, 33);
    let mut rng = ChaCha20Rng::from_seed([34; 32]);
    let expected = upload_honest(&mut w, 4, 0, &mut rng);
    let mut driver = JobDriver::start(&mut w.leader, 0, &mut w.rng)
        .unwrap()
        .unwrap();
    // The helper prepares the job but the answer that arrives is of the wrong kind.
    let t = driver.poll_transmit().unwrap();
    assert!(matches!(t.message, Message::JobInit(_)));
    w.send_reliably(&t);
    let wrong = Message::UploadResponse(cairn_protocol::messages::UploadResponse {
        report_id: ReportId([0; 16]),
    });
    let err = driver.handle_answer(&mut w.leader, Ok(wrong)).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage);
    assert!(
        driver.poll_transmit().is_none(),
        "a failed job sends nothing more"
    );
    assert!(driver.outcome().is_none());
    // The store kept the job: it is resumed (and no new job takes its reports).
    let mut resumed = JobDriver::resume_all(&mut w.leader).unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].job_id(), driver.job_id());
    assert!(
        JobDriver::start(&mut w.leader, 0, &mut w.rng)
            .unwrap()
            .is_none()
    );
    let mut job = resumed.remove(0);
    while let Some(t) = job.poll_transmit() {
        let answer = w.send_reliably(&t);
        job.handle_answer(&mut w.leader, Ok(answer)).unwrap();
    }
    assert_eq!(job.outcome().unwrap().accepted, 4);
    let released = w.collect(0).unwrap();
    assert_eq!(released.count, 4);
    assert_eq!(released.sum_quantised, expected);
}
