//! What an aggregator must keep durably, as a trait, and an in-memory implementation.
//!
//! The state machines ([`crate::leader`], [`crate::helper`]) never hold anything that
//! matters only in memory: every acknowledgement, decision and release is preceded by
//! one atomic store operation, so a node killed at any instant resumes from its store
//! without losing an acknowledged report or counting one twice. The operations are
//! chosen so that each is a single transaction in SQLite (the node's embedded default)
//! or PostgreSQL (later):
//!
//! | operation | atomically |
//! |---|---|
//! | [`TaskStore::put_report`] | anti-replay check + store the report (leader) |
//! | [`TaskStore::create_job`] | record a job and take its reports out of the queue |
//! | [`TaskStore::commit_job`] | add the job's contribution to the round aggregate, count it, remember its report ids, drop the report payloads, mark the job done — or nothing if the job was already committed |
//! | [`TaskStore::commit_release`] | append the ledger entry, store the released share, mark the round released |
//!
//! One `TaskStore` serves one task at one aggregator.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::clock::Time;
use crate::ids::{JobId, ReportId};
use crate::ledger::LedgerEntry;
use crate::scheme::Aggregate;

/// Errors of the in-memory store (a real store adds I/O errors of its own).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A referenced job or round does not exist.
    #[error("unknown {0}")]
    NotFound(&'static str),
    /// A report id in a job was aggregated before (replay across jobs).
    #[error("report {0} was already aggregated")]
    AlreadyAggregated(ReportId),
    /// The round is not open for this operation.
    #[error("round {0} is not open")]
    RoundNotOpen(u32),
    /// An I/O or database error of a durable store.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Whether a report was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored; the report will be aggregated exactly once.
    Stored,
    /// A report with this id was stored before. `identical` says whether its bytes
    /// were the same (a client's retry: acknowledge again) or not (a replay of the id
    /// with other content: refuse).
    Duplicate {
        /// Whether the stored report had exactly these bytes.
        identical: bool,
    },
}

/// Whether a job's commit changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The contribution was added.
    Applied,
    /// The job had been committed before; nothing changed (an idempotent retry).
    AlreadyCommitted,
}

/// A round's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundStatus {
    /// Accepting reports.
    Open,
    /// No longer accepting reports; being released.
    Closed,
    /// Released (its share has left this aggregator).
    Released,
}

/// A round's durable state at one aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRecord {
    /// The round.
    pub round: u32,
    /// Lifecycle state.
    pub status: RoundStatus,
    /// When its first report arrived (the round expires `round_duration` later).
    pub opened_at: Time,
    /// Accepted reports in the aggregate.
    pub count: u32,
    /// The running aggregate share.
    pub aggregate: Aggregate,
    /// Order-independent digest of the accepted report ids (XOR of their SHA-256
    /// hashes): a consistency check between aggregators, not a security mechanism.
    pub report_set_digest: [u8; 32],
}

/// A leader's record of an aggregation job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The job.
    pub job_id: JobId,
    /// Its round.
    pub round: u32,
    /// Its reports, in order.
    pub reports: Vec<ReportId>,
    /// The accepted reports once decided (a decided job is re-sent, never re-decided).
    pub accepted: Option<Vec<ReportId>>,
}

/// The durable state of one task at one aggregator.
pub trait TaskStore: Send + Sync {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Leader: stores a report unless its id was seen before (in any round).
    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<PutOutcome, Self::Error>;

    /// Leader: the stored bytes of a report still awaiting aggregation.
    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Leader: up to `limit` stored reports of `round` not yet in a job.
    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, Self::Error>;

    /// Leader: the rounds that have reports not yet in a job.
    fn queued_rounds(&self) -> Result<Vec<u32>, Self::Error>;

    /// Leader: records a job and takes its reports out of the queue.
    fn create_job(&self, job: &JobRecord) -> Result<(), Self::Error>;

    /// Leader: records the decision of a job.
    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), Self::Error>;

    /// Leader: jobs not yet committed (to resume after a restart).
    fn open_jobs(&self) -> Result<Vec<JobRecord>, Self::Error>;

    /// The round's record, if any report reached it.
    fn round(&self, round: u32) -> Result<Option<RoundRecord>, Self::Error>;

    /// Creates the round's record as open if it does not exist; returns it.
    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundRecord, Self::Error>;

    /// Marks an open round closed (no more reports).
    fn close_round(&self, round: u32) -> Result<(), Self::Error>;

    /// Whether a report id is in some committed job's aggregate (helper anti-replay).
    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, Self::Error>;

    /// Whether `job_id` was committed, and with how many accepted reports.
    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, Self::Error>;

    /// Atomically adds a job's contribution to an open round (see the module table).
    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, Self::Error>;

    /// The ledger entries, oldest first.
    fn ledger(&self) -> Result<Vec<LedgerEntry>, Self::Error>;

    /// Atomically appends the ledger entry, stores `released` (the encoded release
    /// message) and marks the round released.
    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), Self::Error>;

    /// The stored release of a round, if released.
    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// The digest contribution of one report id (see [`RoundRecord::report_set_digest`]).
pub fn report_digest(report_id: &ReportId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/1 report set");
    h.update(report_id.0);
    h.finalize().into()
}

/// SHA-256 of a stored report's bytes: kept with its id, so a retried upload can be
/// told from a replay even after the payload was aggregated and dropped.
pub fn report_bytes_digest(report: &[u8]) -> [u8; 32] {
    Sha256::digest(report).into()
}

/// XORs `b` into `a`.
pub fn xor_into(a: &mut [u8; 32], b: &[u8; 32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// An in-memory [`TaskStore`]: for tests, the simulation and ephemeral demos. It is
/// transactional (one mutex) but not durable.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    seen: BTreeMap<ReportId, [u8; 32]>,
    reports: BTreeMap<ReportId, (u32, Vec<u8>)>,
    queued: BTreeMap<u32, BTreeSet<ReportId>>,
    jobs: BTreeMap<JobId, JobRecord>,
    committed_jobs: BTreeMap<JobId, u32>,
    aggregated: HashSet<ReportId>,
    rounds: BTreeMap<u32, RoundRecord>,
    ledger: Vec<LedgerEntry>,
    releases: BTreeMap<u32, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A poisoned lock means a panic mid-operation in a test; the data is still
        // consistent because every operation validates before it mutates.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TaskStore for MemoryStore {
    type Error = StoreError;

    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<PutOutcome, StoreError> {
        let mut s = self.lock();
        let digest = report_bytes_digest(report);
        if let Some(previous) = s.seen.get(&report_id) {
            return Ok(PutOutcome::Duplicate {
                identical: *previous == digest,
            });
        }
        s.seen.insert(report_id, digest);
        s.reports.insert(report_id, (round, report.to_vec()));
        s.queued.entry(round).or_default().insert(report_id);
        Ok(PutOutcome::Stored)
    }

    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().reports.get(&report_id).map(|(_, b)| b.clone()))
    }

    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, StoreError> {
        Ok(self
            .lock()
            .queued
            .get(&round)
            .map(|q| q.iter().take(limit).copied().collect())
            .unwrap_or_default())
    }

    fn queued_rounds(&self) -> Result<Vec<u32>, StoreError> {
        Ok(self
            .lock()
            .queued
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(r, _)| *r)
            .collect())
    }

    fn create_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let mut s = self.lock();
        if let Some(q) = s.queued.get_mut(&job.round) {
            for id in &job.reports {
                q.remove(id);
            }
        }
        s.jobs.insert(job.job_id, job.clone());
        Ok(())
    }

    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), StoreError> {
        let mut s = self.lock();
        let job = s.jobs.get_mut(&job_id).ok_or(StoreError::NotFound("job"))?;
        job.accepted = Some(accepted.to_vec());
        Ok(())
    }

    fn open_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        Ok(self.lock().jobs.values().cloned().collect())
    }

    fn round(&self, round: u32) -> Result<Option<RoundRecord>, StoreError> {
        Ok(self.lock().rounds.get(&round).cloned())
    }

    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundRecord, StoreError> {
        let mut s = self.lock();
        Ok(s.rounds
            .entry(round)
            .or_insert_with(|| RoundRecord {
                round,
                status: RoundStatus::Open,
                opened_at: now,
                count: 0,
                aggregate: Aggregate::zero(dimension),
                report_set_digest: [0; 32],
            })
            .clone())
    }

    fn close_round(&self, round: u32) -> Result<(), StoreError> {
        let mut s = self.lock();
        let r = s
            .rounds
            .get_mut(&round)
            .ok_or(StoreError::NotFound("round"))?;
        if r.status == RoundStatus::Open {
            r.status = RoundStatus::Closed;
        }
        Ok(())
    }

    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, StoreError> {
        Ok(self.lock().aggregated.contains(&report_id))
    }

    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, StoreError> {
        Ok(self.lock().committed_jobs.get(&job_id).copied())
    }

    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, StoreError> {
        let mut s = self.lock();
        if s.committed_jobs.contains_key(&job_id) {
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        // Validate everything before mutating anything.
        let record = s.rounds.get(&round).ok_or(StoreError::NotFound("round"))?;
        if record.status == RoundStatus::Released {
            return Err(StoreError::RoundNotOpen(round));
        }
        if let Some(id) = accepted.iter().find(|id| s.aggregated.contains(id)) {
            return Err(StoreError::AlreadyAggregated(*id));
        }
        let mut record = record.clone();
        record
            .aggregate
            .add_assign(contribution)
            .map_err(|_| StoreError::Backend("contribution has the wrong length".into()))?;
        record.count +=
            u32::try_from(accepted.len()).map_err(|_| StoreError::Backend("count".into()))?;
        for id in accepted {
            xor_into(&mut record.report_set_digest, &report_digest(id));
        }
        s.rounds.insert(round, record);
        for id in accepted {
            s.aggregated.insert(*id);
        }
        if let Some(job) = s.jobs.remove(&job_id) {
            for id in &job.reports {
                s.reports.remove(id);
            }
        }
        s.committed_jobs
            .insert(job_id, u32::try_from(accepted.len()).unwrap_or(u32::MAX));
        Ok(CommitOutcome::Applied)
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        Ok(self.lock().ledger.clone())
    }

    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), StoreError> {
        let mut s = self.lock();
        let r = s
            .rounds
            .get_mut(&entry.round)
            .ok_or(StoreError::NotFound("round"))?;
        r.status = RoundStatus::Released;
        s.ledger.push(entry.clone());
        s.releases.insert(entry.round, released.to_vec());
        Ok(())
    }

    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().releases.get(&round).cloned())
    }
}
