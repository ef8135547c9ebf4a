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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_mpc::codec::Reader;
use cairn_mpc::secret::{SecretVec, Seed};
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
    ReportShare, ReportView, UploadRequest, UploadResponse, UploadView,
};
use crate::parallel::Parallelism;
use crate::scheme::{Aggregate, MAX_REPORTS_PER_JOB, Prepared};
use crate::store::{CommitOutcome, JobRecord, NewReport, PutOutcome, RoundStatus, TaskStore};

/// Memory a leader's job may take per thread it is verified on: its reports' stored
/// bytes, their decoded form and the preparation state, counted as [`JOB_COPIES`] times
/// the upload size per report. At d = 10^5 (uploads of about 1 MB) that is 7 reports
/// per thread ([`Leader::job_batch`]); small tasks keep the full
/// [`MAX_REPORTS_PER_JOB`]. Per thread, because a job has costs of its own that its
/// threads do not share (merging the workers' sums, handing out and joining the work,
/// the commit): with jobs of 6 reports on two threads they were a tenth of the leader's
/// time, and two threads verified 1.74–1.77× the reports of one; with jobs of 14,
/// 1.78–1.85× (BENCHMARKS.md, *One core against two*). One thread keeps jobs of 7: with
/// 15 it was 0.6–4.5 % slower a report.
pub const JOB_MEMORY_PER_THREAD: usize = 32 << 20;

/// Memory a leader's job may take whatever its threads: 4 × [`JOB_MEMORY_PER_THREAD`]
/// (16 reports at d = 10^5 on 16 threads, not 64; a node drives two jobs at once). A
/// report larger than this alone still makes a job of one report.
pub const JOB_MEMORY_MAX: usize = 4 * JOB_MEMORY_PER_THREAD;

/// The upload sizes one report of a job is counted as in [`JOB_MEMORY_PER_THREAD`]
/// (measured: a 64-report job at d = 10^5 held about 3 MB per report beyond the upload
/// itself).
pub const JOB_COPIES: usize = 4;

/// How many batches in a row [`Leader::start_job`] may lose to other leader processes
/// (sharing the store), or use up with nothing for the helpers, before it gives up with
/// a retriable [`ErrorCode::Busy`].
const MAX_JOB_CONTENTION: u32 = 16;

mod collect;
mod job;
mod upload;

pub use collect::{CollectStep, HelperRefusal};

/// The leader of one task.
pub struct Leader<S: TaskStore> {
    core: AggregatorCore<S>,
    jobs: BTreeMap<JobId, InFlightJob>,
    /// Jobs this process refuses to aggregate ([`Leader::take_store_faults`]),
    /// skipped by every later resume until the process restarts.
    refused: BTreeSet<JobId>,
    /// Why, for each job refused since the last [`Leader::take_store_faults`].
    store_faults: Vec<Reject>,
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
    /// The leader's preparation of each report, in job order (dropped once decided in
    /// this process, each holding an O(d) share; a job resumed with its decision keeps
    /// them until its commit).
    prepared: Vec<(ReportId, LeaderPrep)>,
    /// The sum of the shares of the reports the leader prepared without error, each
    /// added on its worker as it was prepared ([`Parallelism::map_and_sum`]); once
    /// `accepted_only`, of the accepted reports alone (the others withdrawn). O(d) per
    /// job, where the preparations are O(reports·d) until the decision.
    sum: Aggregate,
    /// Whether the reports not accepted have been withdrawn from `sum`.
    accepted_only: bool,
    /// Reports whose stored bytes cannot stand for their upload: lost (any report), or
    /// not those uploaded (their digest differs, or none was kept; looked for only
    /// among the accepted reports of a decided job, whose decision is re-sent, not made
    /// again: a report altered before its decision fails the joint verification). A
    /// new batch sets its lost reports aside ([`Leader::start_job`]); a resumed job
    /// with any damage is refused, not aggregated (`refusal` in `job.rs`).
    damaged: Vec<(ReportId, Damage)>,
}

/// How a report's stored bytes fail to stand for its upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    /// The store holds the report, but its bytes are gone
    /// ([`TaskStore::is_report_lost`]).
    Lost,
    /// The bytes are not those uploaded.
    Altered,
}

impl InFlightJob {
    /// The sum of the shares of the `accepted` reports: the prepared reports' sum,
    /// less each prepared report not accepted (withdrawn once, the first time this is
    /// asked; a job decided in this process has withdrawn them at its decision). An
    /// error leaves the sum unusable: the caller forgets the job, which the store
    /// still holds.
    fn contribution(
        &mut self,
        scheme: &crate::scheme::Scheme,
        accepted: &[ReportId],
    ) -> Result<&Aggregate, Reject> {
        if !self.accepted_only {
            for (report_id, prepared) in &self.prepared {
                if let Ok((state, _)) = prepared
                    && !accepted.contains(report_id)
                {
                    scheme
                        .withdraw(state, &mut self.sum)
                        .map_err(|code| Reject::new(code, "job sum of another dimension"))?;
                }
            }
            self.accepted_only = true;
        }
        Ok(&self.sum)
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
            refused: BTreeSet::new(),
            store_faults: Vec::new(),
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

    /// Renews this process's lease of `job_id` before a step that records something
    /// (the decision, the commit), so that a job whose exchanges with the helpers take
    /// longer than one lease is not taken over while it is still being driven. A
    /// lease already taken by another process (this one stalled past its expiry) ends
    /// the job here with a retriable [`ErrorCode::Busy`]: the other process drives it
    /// from the store, and the idempotent steps make a late step of this one harmless
    /// anyway.
    /// A job this process does not hold in memory is [`ErrorCode::UnknownJob`].
    fn renew_lease(&mut self, job_id: JobId) -> Result<(), Reject> {
        if !self.jobs.contains_key(&job_id) {
            return Err(Reject::new(
                ErrorCode::UnknownJob,
                format!("job {}", job_id.to_hex()),
            ));
        }
        if self.lease(job_id)? {
            return Ok(());
        }
        self.jobs.remove(&job_id);
        self.contention.fetch_add(1, Ordering::Relaxed);
        Err(Reject::new(
            ErrorCode::Busy,
            format!(
                "job {} is leased by another leader process",
                job_id.to_hex()
            ),
        ))
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
}
