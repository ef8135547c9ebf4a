//! The leader's state machine.
//!
//! The leader accepts uploads, batches stored reports into aggregation jobs, combines
//! the helpers' verifier shares into accept/reject decisions, adds accepted reports to
//! the round's running aggregate, and drives the release of a round. It performs no
//! I/O of its own: the node passes it decoded messages and sends the messages it
//! returns, and every durable effect goes through the injected [`TaskStore`].
//!
//! # One job, step by step
//! ```text
//! start_job ──▶ JobInit (one per helper)          [job recorded in the store]
//! decide_job(JobResponse per helper) ──▶ JobContinue   [decision recorded]
//! commit_job(JobContinueResponse per helper)      [aggregate += contributions]
//! ```
//! Each step can be repeated after a crash: a recorded job is re-prepared from its
//! stored reports ([`Leader::resume_jobs`]), a recorded decision is re-sent rather than
//! re-made, and a committed job is never applied twice. The order of the steps, the
//! exchanges with the helpers around them and the retries belong to
//! [`crate::driver`], which every caller uses instead of calling the steps itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_mpc::codec::Reader;
use cairn_mpc::secret::Seed;
use rand_core::CryptoRng;

use crate::aggregator::AggregatorCore;
use crate::auth::TagContext;
use crate::clock::Time;
use crate::config::TaskConfig;
use crate::error::Reject;
use crate::ids::{JobId, ReportId};
use crate::messages::{
    AggregateShare, AggregateShareRequest, AggregateShareResponse, CollectRequest, CollectResponse,
    ErrorCode, JobContinue, JobContinueResponse, JobInit, JobResponse, Message, PrepareResult,
    ReportShare, UploadRequest, UploadResponse, decode_report, encode_report,
};
use crate::parallel::Parallelism;
use crate::scheme::{Aggregate, MAX_REPORTS_PER_JOB, Prepared};
use crate::store::{CommitOutcome, JobRecord, PutOutcome, RoundStatus, TaskStore};

/// Memory a leader's job may take: its reports' stored bytes, their decoded form and
/// the preparation state, counted as [`JOB_COPIES`] times the upload size per report.
/// At d = 10^5 (uploads of about 800 kB) that is 10 reports a job; small tasks keep the
/// full [`MAX_REPORTS_PER_JOB`].
pub const JOB_MEMORY: usize = 32 << 20;

/// The upload sizes one report of a job is counted as in [`JOB_MEMORY`] (measured: a
/// 64-report job at d = 10^5 held about 3 MB per report beyond the upload itself).
pub const JOB_COPIES: usize = 4;

/// How many batches in a row [`Leader::start_job`] may lose to other leader processes
/// (sharing the store) before it gives up with a retriable [`ErrorCode::Busy`].
const MAX_JOB_CONTENTION: u32 = 16;

mod collect;

pub use collect::CollectStep;

/// The leader of one task.
pub struct Leader<S: TaskStore> {
    core: AggregatorCore<S>,
    jobs: BTreeMap<JobId, InFlightJob>,
    leases: Option<JobLeases>,
    contention: Arc<AtomicU64>,
}

/// Job leases, for leader processes that share one store
/// ([`TaskStore::lease_job`]): this process drives a job only while it holds its lease,
/// taken when it records the job or resumes it. A lease is not renewed during a job:
/// a job that outlives `duration_secs` may be resumed by another process meanwhile,
/// which is safe (every step is idempotent: the helpers answer a repeated request with
/// their recorded answer, a job commits once), only wasteful — so `duration_secs`
/// should exceed any job's run by far.
pub struct JobLeases {
    /// This process's id (random, per process start).
    pub owner: [u8; 16],
    /// How long a lease lasts.
    pub duration_secs: u64,
    /// The time source (the node's clock; a manual clock in tests).
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// A job between its start and its commit.
struct InFlightJob {
    record: JobRecord,
    /// The leader's preparation of each report, in job order (dropped once decided:
    /// each holds an O(d) share).
    prepared: Vec<(ReportId, LeaderPrep)>,
    /// The sum of the accepted reports' shares, once decided: O(d) per job instead of
    /// O(reports·d) between the decision and the commit.
    contribution: Option<Aggregate>,
}

impl InFlightJob {
    /// The sum of the shares of the `accepted` reports, summed per worker of
    /// `parallelism` and merged.
    fn contribution(
        &self,
        scheme: &crate::scheme::Scheme,
        parallelism: &Parallelism,
        accepted: &[ReportId],
    ) -> Result<Aggregate, Reject> {
        if let Some(c) = &self.contribution {
            return Ok(c.clone());
        }
        let states: Vec<&Prepared> = self
            .prepared
            .iter()
            .filter_map(|(report_id, prepared)| match prepared {
                Ok((state, _)) if accepted.contains(report_id) => Some(state),
                _ => None,
            })
            .collect();
        Ok(parallelism.sum(scheme.dimension(), &states, |state, sum| {
            scheme.accumulate(state, sum)
        })?)
    }
}

/// The leader's side of one report: its state and verifier share, or why it refused.
type LeaderPrep = Result<(Prepared, Vec<u8>), ErrorCode>;

/// A recorded job to re-run after a restart.
#[derive(Debug)]
pub struct ResumedJob {
    /// The job.
    pub job_id: JobId,
    /// Its init message for each helper, in helper order.
    pub inits: Vec<JobInit>,
    /// The recorded decision, to re-send instead of deciding again.
    pub decided: Option<JobContinue>,
}

/// A report the leader rejected, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The report.
    pub report_id: ReportId,
    /// Why.
    pub code: ErrorCode,
}

impl<S: TaskStore> Leader<S> {
    /// The leader of `task`, with the task's verify key and its store (reloading its
    /// ledger; clients are registered in the store).
    pub fn new(task: TaskConfig, verify_key: Seed, store: S) -> Result<Self, Reject> {
        Self::from_task(
            crate::task::Task::new(task).map_err(crate::aggregator::task_reject)?,
            verify_key,
            store,
        )
    }

    /// The leader of a loaded task (see [`Leader::new`]).
    pub fn from_task(task: crate::task::Task, verify_key: Seed, store: S) -> Result<Self, Reject> {
        Ok(Self {
            core: AggregatorCore::new(task, verify_key, store, 0)?,
            jobs: BTreeMap::new(),
            leases: None,
            contention: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Drives only the jobs this process leases ([`JobLeases`]): for several leader
    /// processes sharing one store. Without it, every open job of the store is this
    /// process's to resume.
    pub fn with_job_leases(mut self, leases: JobLeases) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Verifies and aggregates each job's reports on `parallelism`'s threads
    /// ([`crate::parallel`]); without it, on the calling thread. The outcome of a job
    /// is the same whatever the thread count.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.core.parallelism = parallelism;
        self
    }

    /// How many times this process lost a race to another process sharing its store:
    /// a batch of queued reports taken into another's job, a new job leased by
    /// another first. Shared, so a metrics exporter can read it while the leader runs.
    pub fn contention_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.contention)
    }

    /// Whether this process may drive `job_id` now (it holds, or just took, its lease).
    fn lease(&self, job_id: JobId) -> Result<bool, Reject> {
        let Some(l) = &self.leases else {
            return Ok(true);
        };
        let now = l.clock.now();
        self.core
            .store
            .lease_job(job_id, l.owner, now, now.plus_secs(l.duration_secs))
            .map_err(Reject::storage)
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        &self.core.task
    }

    /// The decoding limits of this task's messages.
    pub fn limits(&self) -> crate::messages::Limits {
        self.core.limits()
    }

    /// ρ spent so far according to this leader's ledger.
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

    /// Accepts an upload: task, client and tag, sizes, round window — all before
    /// anything is written — then the round open and not expired, then the atomic
    /// insert (anti-replay, one report per client per round, `max_clients`). `Ok`
    /// means stored: it will be counted once.
    pub fn handle_upload(
        &mut self,
        req: UploadRequest,
        now: Time,
    ) -> Result<UploadResponse, Reject> {
        self.core.check_task(&req.task_id)?;
        let report = req.report;
        self.authenticate(&report)?;
        let limits = self.core.limits();
        let sealed_len = limits.helper_plaintext() + crate::hpke::HPKE_TAG_LEN;
        if report.public_share.len() != limits.public_share
            || report.leader_share.len() != limits.leader_share
            || report.helper_shares.len() != limits.helpers
            || report
                .helper_shares
                .iter()
                .any(|c| c.payload.len() != sealed_len)
        {
            return Err(Reject::new(
                ErrorCode::WrongSize,
                "report sizes do not match the task",
            ));
        }
        self.core.check_round_window(report.round)?;
        let round = self
            .core
            .store
            .open_round(report.round, now, self.core.scheme.dimension())
            .map_err(Reject::storage)?;
        let expires = round
            .opened_at
            .plus_secs(self.core.task.round_duration_secs());
        if round.status != RoundStatus::Open || now >= expires {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {} no longer accepts reports", report.round),
            ));
        }
        let mut bytes = Vec::new();
        encode_report(&report, &mut bytes);
        match self
            .core
            .store
            .put_report(
                report.round,
                report.report_id,
                report.client_id,
                &bytes,
                self.core.task.max_clients(),
            )
            .map_err(Reject::storage)?
        {
            PutOutcome::Stored => Ok(UploadResponse {
                report_id: report.report_id,
            }),
            // A retry of the same report (its acknowledgement was lost): acknowledge
            // again; it is still stored, and counted, once.
            PutOutcome::Duplicate { identical: true } => Ok(UploadResponse {
                report_id: report.report_id,
            }),
            PutOutcome::Duplicate { identical: false } => Err(Reject::new(
                ErrorCode::Replay,
                format!("report id {} was used before", report.report_id),
            )),
            PutOutcome::ClientAlreadySubmitted => Err(Reject::new(
                ErrorCode::AlreadySubmitted,
                format!(
                    "client {} already submitted another report for round {} (one per round)",
                    report.client_id, report.round
                ),
            )),
            PutOutcome::RoundClosed => Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {} no longer accepts reports", report.round),
            )),
            PutOutcome::RoundFull => Err(Reject::new(
                ErrorCode::RoundClosed,
                format!(
                    "round {} already holds max_clients = {} reports",
                    report.round,
                    self.core.task.max_clients()
                ),
            )),
        }
    }

    /// Checks that the report comes from a registered, unrevoked client: its tag for
    /// the leader must verify under the key registered for its client id.
    fn authenticate(&self, report: &crate::messages::Report) -> Result<(), Reject> {
        let unauthorized = || Reject::new(ErrorCode::Unauthorized, "client not accepted");
        let client = self
            .core
            .store
            .client(report.client_id)
            .map_err(Reject::storage)?
            .ok_or_else(unauthorized)?;
        let task_id = self.core.task_id();
        let context = TagContext {
            task_id: &task_id,
            client_id: &report.client_id,
            round: report.round,
            report_id: &report.report_id,
            public_share: &report.public_share,
            aggregator: 0,
        };
        if client.revoked || !client.key.verify(&context, &report.leader_tag) {
            return Err(unauthorized());
        }
        Ok(())
    }

    /// Rounds that have reports waiting for a job.
    pub fn rounds_with_queued_reports(&self) -> Result<Vec<u32>, Reject> {
        self.core.store.queued_rounds().map_err(Reject::storage)
    }

    /// Reports per job: [`MAX_REPORTS_PER_JOB`], or fewer for large uploads so that a
    /// job stays within [`JOB_MEMORY`].
    pub fn job_batch(&self) -> usize {
        let upload = self
            .core
            .limits()
            .max_inbound_frame_len(crate::messages::Inbound::LeaderFromClients)
            .max(1);
        (JOB_MEMORY / upload.saturating_mul(JOB_COPIES)).clamp(1, MAX_REPORTS_PER_JOB)
    }

    /// Starts a job over up to [`Leader::job_batch`] queued reports of `round`:
    /// prepares the leader's side, records the job, and returns one [`JobInit`] per
    /// helper (in helper order). `None` if nothing is queued. A batch whose reports
    /// all fail the leader's own checks has nothing for the helpers: it is decided and
    /// committed here (every report rejected) and the next batch is taken.
    pub fn start_job<R: CryptoRng + ?Sized>(
        &mut self,
        round: u32,
        rng: &mut R,
    ) -> Result<Option<(JobId, Vec<JobInit>)>, Reject> {
        let mut contended = 0;
        loop {
            let ids = self
                .core
                .store
                .queued_reports(round, self.job_batch())
                .map_err(Reject::storage)?;
            if ids.is_empty() {
                return Ok(None);
            }
            let record = JobRecord {
                job_id: JobId::random(rng),
                round,
                reports: ids,
                accepted: None,
            };
            let (job, inits) = self.prepare_job(record.clone())?;
            if let Err(e) = self.core.store.create_job(&record) {
                // Another leader process sharing the store took some of these reports
                // into its own job between the read and the write (the store refuses
                // the second job whole): take the next batch.
                let still = self
                    .core
                    .store
                    .queued_reports(round, self.job_batch())
                    .map_err(Reject::storage)?;
                if record.reports.iter().all(|r| still.contains(r)) {
                    return Err(Reject::storage(e));
                }
                contended += 1;
                self.contention.fetch_add(1, Ordering::Relaxed);
                if contended >= MAX_JOB_CONTENTION {
                    return Err(Reject::new(
                        ErrorCode::Busy,
                        "other leader processes keep taking the queued reports first",
                    ));
                }
                continue;
            }
            if !self.lease(record.job_id)? {
                // Another leader process leased the new job first: it drives it.
                self.contention.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if inits.iter().all(|i| i.reports.is_empty()) {
                self.commit_locally(&record)?;
                continue;
            }
            self.jobs.insert(record.job_id, job);
            return Ok(Some((record.job_id, inits)));
        }
    }

    /// Decides and commits a recorded job that has nothing for the helpers: all its
    /// reports were refused by the leader's own checks.
    fn commit_locally(&mut self, record: &JobRecord) -> Result<(), Reject> {
        self.core
            .store
            .decide_job(record.job_id, &[])
            .map_err(Reject::storage)?;
        self.core
            .store
            .commit_job(
                record.round,
                record.job_id,
                &[],
                &Aggregate::zero(self.core.scheme.dimension()),
            )
            .map_err(Reject::storage)?;
        Ok(())
    }

    /// After a restart: re-prepares every recorded, uncommitted job. Returns, per job,
    /// the [`JobInit`]s and, for decided jobs, the [`JobContinue`] to re-send.
    pub fn resume_jobs(&mut self) -> Result<Vec<ResumedJob>, Reject> {
        let mut out = Vec::new();
        for record in self.core.store.open_jobs().map_err(Reject::storage)? {
            if self.jobs.contains_key(&record.job_id) || !self.lease(record.job_id)? {
                continue;
            }
            let job_id = record.job_id;
            let cont = record.accepted.as_ref().map(|accepted| JobContinue {
                task_id: self.core.task_id(),
                job_id,
                round: record.round,
                accepted: accepted.clone(),
            });
            let (job, inits) = self.prepare_job(record.clone())?;
            if inits.iter().all(|i| i.reports.is_empty()) {
                self.commit_locally(&record)?;
                continue;
            }
            self.jobs.insert(job_id, job);
            out.push(ResumedJob {
                job_id,
                inits,
                decided: cont,
            });
        }
        Ok(out)
    }

    /// Drops the in-memory state of a job whose messages could not be delivered (a
    /// helper unreachable). The job stays recorded in the store, so the next
    /// [`Leader::resume_jobs`] prepares it again and re-sends it; nothing is lost.
    pub fn forget_job(&mut self, job_id: JobId) {
        self.jobs.remove(&job_id);
    }

    /// Combines the helpers' responses (one per helper, in helper order) with the
    /// leader's own verifier shares, decides every report, records the decision and
    /// returns the [`JobContinue`] for all helpers and the rejections.
    pub fn decide_job(
        &mut self,
        job_id: JobId,
        responses: &[JobResponse],
    ) -> Result<(JobContinue, Vec<Rejection>), Reject> {
        let job = self.jobs.get(&job_id).ok_or_else(|| {
            Reject::new(ErrorCode::UnknownJob, format!("job {}", job_id.to_hex()))
        })?;
        if let Some(accepted) = &job.record.accepted {
            // Decided before (a retry after a crash): re-send, never re-decide.
            return Ok((
                self.continue_message(&job.record, accepted.clone()),
                Vec::new(),
            ));
        }
        let helpers = self.core.scheme.num_aggregators() - 1;
        if responses.len() != helpers || responses.iter().any(|r| r.job_id != job_id) {
            return Err(Reject::new(
                ErrorCode::BadMessage,
                "one response per helper is needed",
            ));
        }
        // Each helper answers the reports the leader sent it, in order.
        let sent: Vec<ReportId> = job
            .prepared
            .iter()
            .filter(|(_, p)| p.is_ok())
            .map(|(id, _)| *id)
            .collect();
        for r in responses {
            if r.results.len() != sent.len()
                || r.results
                    .iter()
                    .zip(&sent)
                    .any(|(res, id)| res.report_id() != *id)
            {
                return Err(Reject::new(
                    ErrorCode::BadMessage,
                    "helper results do not match the job",
                ));
            }
        }
        // Each report sent to the helpers has its place in their results.
        let mut sent_count = 0;
        let work: Vec<(&LeaderPrep, Option<usize>)> = job
            .prepared
            .iter()
            .map(|(_, prepared)| {
                let sent = prepared.is_ok().then(|| {
                    sent_count += 1;
                    sent_count - 1
                });
                (prepared, sent)
            })
            .collect();
        let scheme = &self.core.scheme;
        let outcomes = self.core.parallelism.map(work, |(prepared, sent)| {
            let (state, own_verifier) = prepared.as_ref().map_err(|code| *code)?;
            // Every prepared report was sent (counted above).
            let sent = sent.ok_or(ErrorCode::Internal)?;
            let mut shares: Vec<&[u8]> = vec![own_verifier.as_slice()];
            let mut helper_code = None;
            for r in responses {
                match &r.results[sent] {
                    PrepareResult::Verifier { verifier_share, .. } => shares.push(verifier_share),
                    PrepareResult::Rejected { code, .. } => helper_code = Some(*code),
                }
            }
            match helper_code {
                Some(code) => Err(code),
                None => scheme.decide(state, &shares),
            }
        });
        let mut accepted = Vec::new();
        let mut rejections = Vec::new();
        for ((report_id, _), outcome) in job.prepared.iter().zip(outcomes) {
            match outcome {
                Ok(()) => accepted.push(*report_id),
                Err(code) => rejections.push(Rejection {
                    report_id: *report_id,
                    code,
                }),
            }
        }
        self.core
            .store
            .decide_job(job_id, &accepted)
            .map_err(Reject::storage)?;
        let record = {
            // Invariant: the job was looked up above and nothing removed it since.
            let job = self
                .jobs
                .get_mut(&job_id)
                .ok_or_else(|| Reject::new(ErrorCode::Internal, "job vanished"))?;
            job.record.accepted = Some(accepted.clone());
            let contribution =
                job.contribution(&self.core.scheme, &self.core.parallelism, &accepted)?;
            job.contribution = Some(contribution);
            self.core
                .parallelism
                .drop_all(std::mem::take(&mut job.prepared));
            job.record.clone()
        };
        Ok((self.continue_message(&record, accepted), rejections))
    }

    /// Commits a decided job once every helper confirmed it added the same reports:
    /// the accepted reports' shares go into the round's aggregate, exactly once.
    pub fn commit_job(
        &mut self,
        job_id: JobId,
        responses: &[JobContinueResponse],
    ) -> Result<CommitOutcome, Reject> {
        if self
            .core
            .store
            .job_committed(job_id)
            .map_err(Reject::storage)?
            .is_some()
        {
            self.jobs.remove(&job_id);
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        let job = self.jobs.get(&job_id).ok_or_else(|| {
            Reject::new(ErrorCode::UnknownJob, format!("job {}", job_id.to_hex()))
        })?;
        let accepted = job
            .record
            .accepted
            .clone()
            .ok_or_else(|| Reject::new(ErrorCode::BadMessage, "job not decided yet"))?;
        let helpers = self.core.scheme.num_aggregators() - 1;
        let count = u32::try_from(accepted.len()).unwrap_or(u32::MAX);
        if responses.len() != helpers
            || responses
                .iter()
                .any(|r| r.job_id != job_id || r.accepted_count != count)
        {
            return Err(Reject::new(
                ErrorCode::Mismatch,
                "helpers did not confirm the same reports",
            ));
        }
        let contribution =
            job.contribution(&self.core.scheme, &self.core.parallelism, &accepted)?;
        let outcome = self
            .core
            .store
            .commit_job(job.record.round, job_id, &accepted, &contribution)
            .map_err(Reject::storage)?;
        self.jobs.remove(&job_id);
        Ok(outcome)
    }

    fn continue_message(&self, record: &JobRecord, accepted: Vec<ReportId>) -> JobContinue {
        JobContinue {
            task_id: self.core.task_id(),
            job_id: record.job_id,
            round: record.round,
            accepted,
        }
    }

    /// Prepares the leader's side of every report of a job and builds the helpers'
    /// job messages. Reports the leader already rejects are not sent to helpers.
    ///
    /// The store reads come first, in job order, on this thread; decoding and
    /// preparing, the CPU-heavy part, run on the leader's [`Parallelism`] (each
    /// report's stored bytes are dropped once it is decoded, so the job still holds
    /// about one copy of its uploads beside the preparations: [`JOB_COPIES`]).
    fn prepare_job(&self, record: JobRecord) -> Result<(InFlightJob, Vec<JobInit>), Reject> {
        let limits = self.core.limits();
        let helpers = limits.helpers;
        let mut stored = Vec::with_capacity(record.reports.len());
        for report_id in &record.reports {
            let bytes = self
                .core
                .store
                .report(*report_id)
                .map_err(Reject::storage)?;
            stored.push((*report_id, bytes));
        }
        let (scheme, verify_key) = (&self.core.scheme, &self.core.verify_key);
        let outcomes = self.core.parallelism.map(stored, |(report_id, bytes)| {
            let bytes = bytes.ok_or(ErrorCode::Internal)?;
            let mut reader = Reader::new(&bytes);
            let report = decode_report(&mut reader, &limits).map_err(|_| ErrorCode::BadMessage)?;
            drop(bytes);
            let prepared = scheme.prepare(
                0,
                verify_key,
                &report_id,
                &report.public_share,
                report.leader_share.expose_secret(),
            )?;
            // The leader's share is dropped here (wiped): only what the helpers need
            // is kept for the job messages.
            Ok((
                prepared,
                report.client_id,
                report.public_share,
                report.helper_shares,
            ))
        });
        let mut per_helper: Vec<Vec<ReportShare>> = vec![Vec::new(); helpers];
        let mut prepared = Vec::with_capacity(record.reports.len());
        for (report_id, outcome) in record.reports.iter().zip(outcomes) {
            let outcome = outcome.map(|(own, client_id, public_share, helper_shares)| {
                for (j, sealed) in helper_shares.into_iter().enumerate() {
                    per_helper[j].push(ReportShare {
                        report_id: *report_id,
                        client_id,
                        public_share: public_share.clone(),
                        sealed_share: sealed,
                    });
                }
                own
            });
            prepared.push((*report_id, outcome));
        }
        let inits = per_helper
            .into_iter()
            .map(|reports| JobInit {
                task_id: self.core.task_id(),
                job_id: record.job_id,
                round: record.round,
                reports,
            })
            .collect();
        Ok((
            InFlightJob {
                record,
                prepared,
                contribution: None,
            },
            inits,
        ))
    }
}
