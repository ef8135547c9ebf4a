//! A helper's state machine.
//!
//! A helper never talks to clients: it sees reports only through jobs from the leader,
//! and it must assume the leader may be malicious. For each job it
//!
//! 1. refuses a job id it recorded before with other content, and a job that names a
//!    report twice;
//! 2. opens each sealed input share (HPKE, bound to task, report, round, helper index,
//!    client and public share) and checks the client's tag inside it with the key it
//!    registered for that client ([`crate::auth`]) — so the leader can neither alter
//!    the public share (and with it the joint randomness) nor invent a client;
//! 3. records durably, **before any verifier message leaves**, the job's digest and each
//!    `(report id, client)` it will prepare ([`TaskStore::record_prepared`]): a report
//!    id is answered in one job only, a client once per round;
//! 4. prepares its verifier shares.
//!
//! A byte-identical resend of a recorded job (the leader retrying after a helper
//! restart) is prepared again and yields the same verifier messages, since preparation
//! is deterministic; anything else about a recorded report — another job, other bytes —
//! is refused. So a malicious leader learns at most one verifier message per report,
//! the one an honest run reveals. Without step 3 a leader could replay a report with
//! altered joint randomness and learn a new linear combination of the input each time.
//!
//! Once the leader sends the joint decision, the helper adds exactly the accepted
//! reports to its running aggregate in one atomic store operation. Its preparation
//! state lives only in memory between the two messages (at most [`MAX_OPEN_JOBS`]
//! jobs; the oldest is forgotten first): if it is gone, the helper answers
//! [`ErrorCode::UnknownJob`] and the leader re-sends the same job.
//!
//! On the leader's request it releases its aggregate share of a round on its own
//! terms: same report count and report-set digest as the leader, enough reports, a
//! ledger not behind the leader's, and its **own** ledger's budget check (see
//! [`crate::aggregator`]).

use std::collections::{BTreeMap, VecDeque};

use cairn_mpc::secret::Seed;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::aad::input_share_aad;
use crate::aggregator::{AggregatorCore, PeerLedger};
use crate::auth::{ClientId, ClientRecord, REPORT_TAG_LEN, TagContext};
use crate::clock::Time;
use crate::config::TaskConfig;
use crate::error::Reject;
use crate::hpke::SealPurpose;
use crate::ids::{JobId, ReportId};
use crate::keyring::HpkeKeyring;
use crate::messages::{
    AggregateShareRequest, AggregateShareResponse, ErrorCode, JobContinue, JobContinueResponse,
    JobInit, JobResponse, Message, PrepareResult,
};
use crate::parallel::Parallelism;
use crate::scheme::Prepared;
use crate::store::{
    Admission, CommitOutcome, JobAdmission, RoundStatus, TaskStore, first_duplicate,
};

/// The most prepared jobs a helper holds in memory between init and continue.
pub const MAX_OPEN_JOBS: usize = 64;

/// A helper of one task.
pub struct Helper<S: TaskStore> {
    core: AggregatorCore<S>,
    keyring: HpkeKeyring,
    jobs: BTreeMap<JobId, PreparedJob>,
    job_order: VecDeque<JobId>,
}

struct PreparedJob {
    round: u32,
    prepared: Vec<(ReportId, Prepared)>,
}

/// One report of a job after opening and authentication, before the durable record.
struct Opened {
    report_id: ReportId,
    client_id: ClientId,
    prepared: Prepared,
    verifier_share: Vec<u8>,
}

impl<S: TaskStore> Helper<S> {
    /// Helper number `index` (1-based: the leader is 0) of `task`, with the task's
    /// verify key, its HPKE keys (one secret key, or a [`HpkeKeyring`] during a
    /// rotation) and its store (reloading its ledger).
    pub fn new(
        task: TaskConfig,
        index: u8,
        verify_key: Seed,
        keyring: impl Into<HpkeKeyring>,
        store: S,
    ) -> Result<Self, Reject> {
        let task = crate::task::Task::new(task).map_err(crate::aggregator::task_reject)?;
        Self::from_task(task, index, verify_key, keyring, store)
    }

    /// Helper `index` of a loaded task (see [`Helper::new`]).
    pub fn from_task(
        task: crate::task::Task,
        index: u8,
        verify_key: Seed,
        keyring: impl Into<HpkeKeyring>,
        store: S,
    ) -> Result<Self, Reject> {
        if index == 0 || usize::from(index) >= task.config().num_aggregators() {
            return Err(Reject::new(
                ErrorCode::Internal,
                format!("helper index {index} is not in the task"),
            ));
        }
        Ok(Self {
            core: AggregatorCore::new(task, verify_key, store, index)?,
            keyring: keyring.into(),
            jobs: BTreeMap::new(),
            job_order: VecDeque::new(),
        })
    }

    /// Opens, verifies and aggregates each job's reports on `parallelism`'s threads
    /// ([`crate::parallel`]); without it, on the calling thread. The answers are the
    /// same whatever the thread count.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.core.parallelism = parallelism;
        self
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        &self.core.task
    }

    /// The HPKE keys this helper opens input shares with.
    pub fn keyring(&self) -> &HpkeKeyring {
        &self.keyring
    }

    /// The decoding limits of this task's messages.
    pub fn limits(&self) -> crate::messages::Limits {
        self.core.limits()
    }

    /// ρ spent so far according to this helper's own ledger.
    pub fn rho_spent(&self) -> f64 {
        self.core.ledger.rho_spent()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// Gives the store back (to reopen the task over it, as after a restart).
    pub fn into_store(self) -> S {
        self.core.store
    }

    /// Answers one request from the leader: a [`JobInit`], a [`JobContinue`] or an
    /// [`AggregateShareRequest`]; anything else is refused. This is the whole of the
    /// helper's service: the node only checks the peer and moves the bytes.
    pub fn handle_message<R: CryptoRng + ?Sized>(
        &mut self,
        message: Message,
        now: Time,
        rng: &mut R,
    ) -> Result<Message, Reject> {
        match message {
            Message::JobInit(init) => self.handle_job_init(&init, now).map(Message::JobResponse),
            Message::JobContinue(cont) => self
                .handle_job_continue(&cont)
                .map(Message::JobContinueResponse),
            Message::AggregateShareRequest(req) => self
                .handle_aggregate_share_request(&req, now, rng)
                .map(Message::AggregateShareResponse),
            other => Err(Reject::new(
                ErrorCode::BadMessage,
                format!("a helper does not take {}", other.name()),
            )),
        }
    }

    /// Prepares every report of a job; one result per report, in order (module docs).
    pub fn handle_job_init(&mut self, init: &JobInit, now: Time) -> Result<JobResponse, Reject> {
        self.core.check_task(&init.task_id)?;
        if init.reports.is_empty() {
            return Err(Reject::new(ErrorCode::BadMessage, "a job needs reports"));
        }
        if let Some(id) =
            first_duplicate(&init.reports.iter().map(|r| r.report_id).collect::<Vec<_>>())
        {
            return Err(Reject::new(
                ErrorCode::BadMessage,
                format!("the job names report {id} twice"),
            ));
        }
        let digest = job_digest(init, &self.core.verify_key);
        let recorded = self
            .core
            .store
            .prepared_job_digest(init.job_id)
            .map_err(Reject::storage)?;
        if recorded.is_some_and(|d| d != digest) {
            return Err(job_conflict(init.job_id));
        }
        self.core.check_round_window(init.round)?;
        let round = self
            .core
            .store
            .open_round(init.round, now, self.core.scheme.dimension())
            .map_err(Reject::storage)?;
        if round.status == RoundStatus::Released {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {} was released", init.round),
            ));
        }
        let expires = round
            .opened_at
            .plus_secs(self.core.task.round_duration_secs());
        if recorded.is_none() && now >= expires {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {} expired", init.round),
            ));
        }

        // The store reads (each report's client) on this thread, in job order; opening,
        // authenticating and preparing, the CPU-heavy part, on the helper's threads.
        let clients: Vec<Result<Option<ClientRecord>, ErrorCode>> = init
            .reports
            .iter()
            .map(|share| {
                self.core
                    .store
                    .client(share.client_id)
                    .map_err(|_| ErrorCode::Internal)
            })
            .collect();
        let opener = Opener {
            task_id: self.core.task_id(),
            index: self.core.index,
            round: init.round,
            keyring: &self.keyring,
            scheme: &self.core.scheme,
            verify_key: &self.core.verify_key,
        };
        let mut outcomes: Vec<Result<Opened, ErrorCode>> = self.core.parallelism.map(
            init.reports.iter().zip(clients).collect(),
            |(share, client)| opener.open_and_prepare(share, client),
        );

        // Record before anything leaves: the job, and each report it will answer.
        let candidates: Vec<(ReportId, ClientId)> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|p| (p.report_id, p.client_id)))
            .collect();
        let verdicts = match self
            .core
            .store
            .record_prepared(
                init.job_id,
                &digest,
                init.round,
                &candidates,
                self.core.task.max_clients(),
            )
            .map_err(Reject::storage)?
        {
            JobAdmission::Conflict => return Err(job_conflict(init.job_id)),
            JobAdmission::Recorded(v) if v.len() == candidates.len() => v,
            JobAdmission::Recorded(_) => {
                return Err(Reject::new(ErrorCode::Internal, "store answered wrongly"));
            }
        };
        let mut verdicts = verdicts.into_iter();
        for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
            let refusal = match verdicts.next() {
                Some(Admission::Admitted) => None,
                Some(Admission::Replay) => Some(ErrorCode::Replay),
                Some(Admission::ClientAlreadySubmitted) => Some(ErrorCode::AlreadySubmitted),
                Some(Admission::RoundFull) => Some(ErrorCode::RoundClosed),
                None => Some(ErrorCode::Internal),
            };
            if let Some(code) = refusal {
                *outcome = Err(code);
            }
        }

        let mut results = Vec::with_capacity(init.reports.len());
        let mut prepared = Vec::new();
        for (share, outcome) in init.reports.iter().zip(outcomes) {
            match outcome {
                Ok(opened) => {
                    prepared.push((opened.report_id, opened.prepared));
                    results.push(PrepareResult::Verifier {
                        report_id: opened.report_id,
                        verifier_share: opened.verifier_share,
                    });
                }
                Err(code) => results.push(PrepareResult::Rejected {
                    report_id: share.report_id,
                    code,
                }),
            }
        }
        self.remember_job(
            init.job_id,
            PreparedJob {
                round: init.round,
                prepared,
            },
        );
        Ok(JobResponse {
            job_id: init.job_id,
            results,
        })
    }

    /// Keeps a prepared job until its continue, forgetting the oldest beyond
    /// [`MAX_OPEN_JOBS`] (the leader re-sends a forgotten job).
    fn remember_job(&mut self, job_id: JobId, job: PreparedJob) {
        if self.jobs.insert(job_id, job).is_none() {
            self.job_order.push_back(job_id);
        }
        while self.jobs.len() > MAX_OPEN_JOBS {
            match self.job_order.pop_front() {
                Some(oldest) => {
                    self.jobs.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// Drops a prepared job from memory, and from the eviction order: a stale entry
    /// there would grow the order with every replayed init and continue, and evict
    /// the job if it were prepared again, ahead of older ones.
    fn forget_job(&mut self, job_id: JobId) {
        if let Some(job) = self.jobs.remove(&job_id) {
            self.core.parallelism.drop_all(job.prepared);
            self.job_order.retain(|j| *j != job_id);
        }
    }

    /// How many prepared jobs this helper holds in memory.
    pub fn open_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Adds the job's accepted reports to the aggregate, once. A retried continue for a
    /// committed job is answered from the store; one for a job this helper does not
    /// hold (it restarted) is [`ErrorCode::UnknownJob`], so the leader re-sends the job.
    pub fn handle_job_continue(
        &mut self,
        cont: &JobContinue,
    ) -> Result<JobContinueResponse, Reject> {
        self.core.check_task(&cont.task_id)?;
        if let Some(count) = self
            .core
            .store
            .job_committed(cont.job_id)
            .map_err(Reject::storage)?
        {
            self.forget_job(cont.job_id);
            return Ok(JobContinueResponse {
                job_id: cont.job_id,
                accepted_count: count,
            });
        }
        let job = self.jobs.get(&cont.job_id).ok_or_else(|| {
            Reject::new(
                ErrorCode::UnknownJob,
                format!("job {} is not prepared here", cont.job_id.to_hex()),
            )
        })?;
        if job.round != cont.round {
            return Err(Reject::new(ErrorCode::BadMessage, "job round differs"));
        }
        if let Some(id) = first_duplicate(&cont.accepted) {
            return Err(Reject::new(
                ErrorCode::BadMessage,
                format!("the decision names report {id} twice"),
            ));
        }
        let mut states = Vec::with_capacity(cont.accepted.len());
        for id in &cont.accepted {
            let (_, state) = job.prepared.iter().find(|(r, _)| r == id).ok_or_else(|| {
                Reject::new(
                    ErrorCode::BadMessage,
                    format!("report {id} was not prepared here"),
                )
            })?;
            states.push(state);
        }
        // Summed per worker and merged ([`crate::parallel`]).
        let scheme = &self.core.scheme;
        let contribution =
            self.core
                .parallelism
                .sum(scheme.dimension(), &states, |state, sum| {
                    scheme.accumulate(state, sum)
                })?;
        let released = self
            .core
            .store
            .round(cont.round)
            .map_err(Reject::storage)?
            .is_some_and(|r| r.status == RoundStatus::Released);
        if released {
            // Not retriable: the round's share has left; these reports come too late.
            self.forget_job(cont.job_id);
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!(
                    "round {} was released before this job committed",
                    cont.round
                ),
            ));
        }
        let outcome = self
            .core
            .store
            .commit_job(cont.round, cont.job_id, &cont.accepted, &contribution)
            .map_err(Reject::storage)?;
        self.forget_job(cont.job_id);
        let accepted_count = match outcome {
            CommitOutcome::Applied => u32::try_from(cont.accepted.len()).unwrap_or(u32::MAX),
            // Committed meanwhile by another process sharing the store (a replica that
            // also held the job): answer what was committed, not this request's list.
            CommitOutcome::AlreadyCommitted => self
                .core
                .store
                .job_committed(cont.job_id)
                .map_err(Reject::storage)?
                .unwrap_or(0),
        };
        Ok(JobContinueResponse {
            job_id: cont.job_id,
            accepted_count,
        })
    }

    /// Releases this helper's share of a round (idempotent; see [`crate::aggregator`]).
    pub fn handle_aggregate_share_request<R: CryptoRng + ?Sized>(
        &mut self,
        req: &AggregateShareRequest,
        now: Time,
        rng: &mut R,
    ) -> Result<AggregateShareResponse, Reject> {
        self.core.check_task(&req.task_id)?;
        if self
            .core
            .store
            .round(req.round)
            .map_err(Reject::storage)?
            .is_some()
        {
            self.core
                .store
                .close_round(req.round)
                .map_err(Reject::storage)?;
        }
        let peer = PeerLedger {
            ledger: req.leader_ledger,
            released_before: req.leader_released_before,
        };
        let released = self.core.release(
            req.round,
            req.report_count,
            &req.report_set_digest,
            Some(&peer),
            now,
            rng,
        )?;
        Ok(AggregateShareResponse {
            round: req.round,
            share: released.share,
            helper_ledger: self.core.ledger_head(),
            released_before: released.released_before,
        })
    }
}

/// What opening and preparing one report of a job needs: task-level data only, no
/// store (so it runs on any worker thread; see [`crate::parallel`]).
struct Opener<'a> {
    task_id: crate::ids::TaskId,
    index: u8,
    round: u32,
    keyring: &'a HpkeKeyring,
    scheme: &'a crate::scheme::Scheme,
    verify_key: &'a Seed,
}

impl Opener<'_> {
    /// Opens one report's share, authenticates its client (`client`: its record as
    /// read from the store, consulted only once the share opens) and prepares it
    /// (nothing durable yet).
    fn open_and_prepare(
        &self,
        share: &crate::messages::ReportShare,
        client: Result<Option<ClientRecord>, ErrorCode>,
    ) -> Result<Opened, ErrorCode> {
        let (task_id, index, round) = (self.task_id, self.index, self.round);
        let aad = input_share_aad(
            &task_id,
            &share.report_id,
            round,
            index,
            &share.client_id,
            &share.public_share,
        );
        let (plain, _) = self
            .keyring
            .open(SealPurpose::HelperInputShare, &aad, &share.sealed_share)
            .map_err(|_| ErrorCode::DecryptFailed)?;
        let split = plain
            .len()
            .checked_sub(REPORT_TAG_LEN)
            .ok_or(ErrorCode::WrongSize)?;
        let (input, tag) = plain.split_at(split);
        let client = client?.ok_or(ErrorCode::Unauthorized)?;
        let context = TagContext {
            task_id: &task_id,
            client_id: &share.client_id,
            round,
            report_id: &share.report_id,
            public_share: &share.public_share,
            aggregator: index,
        };
        if client.revoked || !client.key.verify(&context, tag) {
            return Err(ErrorCode::Unauthorized);
        }
        let (prepared, verifier_share) = self.scheme.prepare(
            usize::from(index),
            self.verify_key,
            &share.report_id,
            &share.public_share,
            input,
        )?;
        Ok(Opened {
            report_id: share.report_id,
            client_id: share.client_id,
            prepared,
            verifier_share,
        })
    }
}

/// SHA-256 of a job's encoding and of the verify key it is prepared under: a resend of
/// the job must match it byte for byte, and a changed verify key (which would give other
/// verifier messages for the same reports) makes it another job.
fn job_digest(init: &JobInit, verify_key: &Seed) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/2 job");
    h.update(Sha256::digest(verify_key.expose_secret()));
    h.update(Message::JobInit(init.clone()).encode());
    h.finalize().into()
}

fn job_conflict(job_id: JobId) -> Reject {
    Reject::new(
        ErrorCode::Replay,
        format!(
            "job {} was prepared before with other content; only a byte-identical resend is answered",
            job_id.to_hex()
        ),
    )
}
