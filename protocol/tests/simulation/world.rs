//! The simulated deployment: its task, parties, lossy links and helper restarts.

use cairn_mpc::secret::Seed;
use cairn_protocol::aggregator::Reject;
use cairn_protocol::auth::Credential;
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
use std::time::{Duration, Instant};

pub(crate) const DIM: usize = 12;

/// Everything one simulated deployment holds.
pub(crate) struct World {
    pub(crate) task: TaskConfig,
    pub(crate) leader: Leader<MemoryStore>,
    pub(crate) helpers: Vec<Helper<MemoryStore>>,
    pub(crate) collector: Collector,
    pub(crate) credential_rng: ChaCha20Rng,
    pub(crate) limits: Limits,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) now: Time,
    /// `task_toml`'s arguments: its keys are deterministic, so a restarted helper gets
    /// its own key again by calling it once more.
    pub(crate) key_source: (usize, String, u32, String),
    /// Helper restarts injected between a job's init and its continue (the helper then
    /// answers `UnknownJob`, and the driver must prepare it again).
    pub(crate) restarts_mid_job: usize,
    /// Jobs that failed and were resumed from the leader's store.
    pub(crate) jobs_resumed: usize,
}

pub(crate) fn task_toml(
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

pub(crate) fn world(n: usize, noise: &str, min_clients: u32, seed: u8) -> World {
    world_with_proof(n, noise, min_clients, seed, "carry-lift")
}

pub(crate) fn world_with_proof(
    n: usize,
    noise: &str,
    min_clients: u32,
    seed: u8,
    proof: &str,
) -> World {
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
pub(crate) fn fate(rng: &mut ChaCha20Rng) -> Fate {
    match rng.next_u32() % 10 {
        0 => Fate::DropRequest,
        1 => Fate::DropResponse,
        2 => Fate::Duplicate,
        _ => Fate::Deliver,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fate {
    Deliver,
    DropRequest,
    DropResponse,
    Duplicate,
}

/// Sends a frame over the lossy link to a handler; `None` if the answer was lost.
pub(crate) fn rpc(
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

pub(crate) fn error(reject: Reject) -> Message {
    Message::Error(cairn_protocol::messages::ErrorMessage::new(
        reject.code,
        reject.detail,
    ))
}

impl World {
    /// A fresh credential, registered at every aggregator.
    pub(crate) fn credential(&mut self) -> Credential {
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
    pub(crate) fn client(&mut self) -> Client {
        let cred = self.credential();
        Client::new(self.task.clone(), cred).unwrap()
    }

    /// `k` new registered clients.
    pub(crate) fn clients(&mut self, k: usize) -> Vec<Client> {
        (0..k).map(|_| self.client()).collect()
    }

    /// Delivers one upload frame to the leader; the leader's answer, if it arrived.
    pub(crate) fn upload(&mut self, frame: Vec<u8>) -> Option<Message> {
        let now = self.now;
        let leader = &mut self.leader;
        let limits = self.limits;
        let f = fate(&mut self.rng);
        if f == Fate::DropRequest {
            return None;
        }
        let deliver = || match Message::decode(&frame, &limits) {
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
    pub(crate) fn upload_until_answered(&mut self, frame: &[u8]) -> Message {
        for _ in 0..100 {
            if let Some(m) = self.upload(frame.to_vec()) {
                return m;
            }
        }
        panic!("upload never answered");
    }

    /// Restarts helper `j`: its in-memory jobs are lost, its store survives.
    pub(crate) fn restart_helper(&mut self, j: usize) {
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
    pub(crate) fn send_lossy(&mut self, t: &Transmit) -> Option<Message> {
        let (limits, now) = (self.limits, self.now);
        let helper = &mut self.helpers[t.helper];
        let rng2 = &mut ChaCha20Rng::from_seed([t.helper as u8; 32]);
        rpc(&mut self.rng, &limits, t.message.encode(), |m| {
            helper.handle_message(m, now, rng2).unwrap_or_else(error)
        })
    }

    /// Sends a driver's request to its helper over a reliable link.
    pub(crate) fn send_reliably(&mut self, t: &Transmit) -> Message {
        let (now, message) = (self.now, Message::decode(&t.message.encode(), &self.limits));
        self.helpers[t.helper]
            .handle_message(message.unwrap(), now, &mut self.rng)
            .unwrap_or_else(error)
    }

    /// Runs every queued report of `round` through the leader's job driver over the
    /// lossy link, with helper restarts between requests, until committed. A job that
    /// fails (a helper lost it twice) is resumed from the leader's store, as the node
    /// does. Returns the rejections.
    pub(crate) fn aggregate(&mut self, round: u32) -> Vec<(ReportId, ErrorCode)> {
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
    pub(crate) fn collect(
        &mut self,
        round: u32,
    ) -> Result<cairn_protocol::collector::Collection, ErrorCode> {
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
pub(crate) fn honest_vector(rng: &mut ChaCha20Rng) -> Vec<i64> {
    (0..DIM)
        .map(|_| i64::from(rng.next_u32() % 201) - 100)
        .collect()
}

/// Uploads one honest report from each of `clients` new clients for `round`; returns
/// the plaintext sum.
pub(crate) fn upload_honest(
    w: &mut World,
    clients: usize,
    round: u32,
    rng: &mut ChaCha20Rng,
) -> Vec<i64> {
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
