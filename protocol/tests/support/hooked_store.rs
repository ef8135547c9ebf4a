//! A memory store that runs a test's code before chosen reads: to fail them (a disk
//! that stops reading) or to let another party act at an exact point between two
//! reads of a leader's step (a replica that commits a job while a collect looks).
//!
//! Included with `#[path]` by the tests that use it, so that the others do not carry
//! it as dead code.
#![allow(
    dead_code,
    reason = "each test that includes this file uses only the hooks it needs"
)]

use std::sync::{Arc, Mutex};

use cairn_protocol::auth::{ClientId, ClientKey, ClientRecord};
use cairn_protocol::clock::Time;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::ledger::LedgerEntry;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{
    CommitOutcome, GarbageScope, JobAdmission, JobRecord, MemoryStore, PutOutcome, RoundRecord,
    RoundState, StoreError, TaskStore,
};

/// Runs before every report read; an error fails the read with it.
pub(crate) type ReportReadHook = Box<dyn Fn() -> Result<(), StoreError> + Send + Sync>;

/// Runs on the bytes of every report read that found them, and returns what the read
/// answers (a disk that altered or lost them: [`LOST`]).
pub(crate) type ReportBytesHook =
    Box<dyn Fn(ReportId, Vec<u8>) -> Result<Vec<u8>, StoreError> + Send + Sync>;

/// What a [`ReportBytesHook`] answers, as `StoreError::NotFound(LOST)`, for a report
/// whose bytes are lost while the store still holds it (as SQLite's store answers for
/// a missing report file); [`HookedStore`] tells it apart as lost
/// (`TaskStore::is_report_lost`).
pub(crate) const LOST: &str = "report file (lost: injected)";

/// Runs before every upload is stored, with its report id; an error fails that
/// upload's store with it.
pub(crate) type PutHook = Box<dyn Fn(ReportId) -> Result<(), StoreError> + Send + Sync>;

/// Runs before every job decision and job commit, with the step's name (`"decide_job"`
/// or `"commit_job"`); an error fails that write with it.
pub(crate) type JobWriteHook = Box<dyn Fn(&'static str) -> Result<(), StoreError> + Send + Sync>;

/// Runs once, before the next read at its [`ReadPoint`].
pub(crate) type OnceHook = Box<dyn FnOnce() + Send>;

/// Where a one-shot hook runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ReadPoint {
    /// Before a read of the report queue (`queued_reports`, `queued_rounds`).
    Queue,
    /// Before a read of the open jobs.
    OpenJobs,
}

/// A [`MemoryStore`] (possibly shared with other parties) with hooks before its reads.
pub(crate) struct HookedStore {
    inner: Arc<MemoryStore>,
    before_report_read: Option<ReportReadHook>,
    report_bytes: Option<ReportBytesHook>,
    before_put: Option<PutHook>,
    before_job_write: Option<JobWriteHook>,
    once: Mutex<Vec<(ReadPoint, OnceHook)>>,
}

impl HookedStore {
    /// `inner`, with no hook yet.
    pub(crate) fn new(inner: Arc<MemoryStore>) -> Self {
        Self {
            inner,
            before_report_read: None,
            report_bytes: None,
            before_put: None,
            before_job_write: None,
            once: Mutex::new(Vec::new()),
        }
    }

    /// Runs `hook` before every report read, failing the read when it fails.
    pub(crate) fn with_report_read_hook(mut self, hook: ReportReadHook) -> Self {
        self.before_report_read = Some(hook);
        self
    }

    /// Passes the bytes of every report read through `hook`.
    pub(crate) fn with_report_bytes_hook(mut self, hook: ReportBytesHook) -> Self {
        self.report_bytes = Some(hook);
        self
    }

    /// Runs `hook` before every upload is stored, failing it when it fails.
    pub(crate) fn with_put_hook(mut self, hook: PutHook) -> Self {
        self.before_put = Some(hook);
        self
    }

    /// Runs `hook` before every job decision and commit, failing it when it fails.
    pub(crate) fn with_job_write_hook(mut self, hook: JobWriteHook) -> Self {
        self.before_job_write = Some(hook);
        self
    }

    /// Runs `hook` once, before the next read at `point` (by anyone using this store),
    /// and outside any lock of the store: the hook may use the inner store.
    pub(crate) fn before_next(&self, point: ReadPoint, hook: OnceHook) {
        self.once.lock().unwrap().push((point, hook));
    }

    fn run_hook(&self, point: ReadPoint) {
        let hook = {
            let mut once = self.once.lock().unwrap();
            once.iter()
                .position(|(p, _)| *p == point)
                .map(|i| once.remove(i).1)
        };
        if let Some(hook) = hook {
            hook();
        }
    }
}

impl TaskStore for HookedStore {
    type Error = StoreError;

    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        self.inner.client(id)
    }
    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, StoreError> {
        self.inner.add_client(id, key)
    }
    fn revoke_client(&self, id: ClientId) -> Result<bool, StoreError> {
        self.inner.revoke_client(id)
    }
    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, StoreError> {
        if let Some(hook) = &self.before_put {
            hook(report_id)?;
        }
        self.inner
            .put_report(round, report_id, client_id, report, max_reports)
    }
    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, StoreError> {
        self.inner.stored_report_matches(report_id, report)
    }
    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(hook) = &self.before_report_read {
            hook()?;
        }
        let bytes = self.inner.report(report_id)?;
        match (&self.report_bytes, bytes) {
            (Some(hook), Some(bytes)) => hook(report_id, bytes).map(Some),
            (_, bytes) => Ok(bytes),
        }
    }
    fn is_report_lost(&self, error: &StoreError) -> bool {
        matches!(error, StoreError::NotFound(what) if *what == LOST)
    }
    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, StoreError> {
        self.run_hook(ReadPoint::Queue);
        self.inner.queued_reports(round, limit)
    }
    fn queued_rounds(&self) -> Result<Vec<u32>, StoreError> {
        self.run_hook(ReadPoint::Queue);
        self.inner.queued_rounds()
    }
    fn create_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.inner.create_job(job)
    }
    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, StoreError> {
        self.inner.lease_job(job_id, owner, now, until)
    }
    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), StoreError> {
        if let Some(hook) = &self.before_job_write {
            hook("decide_job")?;
        }
        self.inner.decide_job(job_id, accepted)
    }
    fn open_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.run_hook(ReadPoint::OpenJobs);
        self.inner.open_jobs()
    }
    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, StoreError> {
        self.inner.prepared_job_digest(job_id)
    }
    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, StoreError> {
        self.inner
            .record_prepared(job_id, job_digest, round, reports, max_reports)
    }
    fn round(&self, round: u32) -> Result<Option<RoundRecord>, StoreError> {
        self.inner.round(round)
    }
    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundState, StoreError> {
        self.inner.open_round(round, now, dimension)
    }
    fn close_round(&self, round: u32) -> Result<(), StoreError> {
        self.inner.close_round(round)
    }
    fn latest_round(&self) -> Result<Option<u32>, StoreError> {
        self.inner.latest_round()
    }
    fn latest_released_round(&self) -> Result<Option<u32>, StoreError> {
        self.inner.latest_released_round()
    }
    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], StoreError> {
        self.inner.report_set_digest(round)
    }
    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, StoreError> {
        self.inner.is_aggregated(report_id)
    }
    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, StoreError> {
        self.inner.job_committed(job_id)
    }
    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, StoreError> {
        if let Some(hook) = &self.before_job_write {
            hook("commit_job")?;
        }
        self.inner.commit_job(round, job_id, accepted, contribution)
    }
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.inner.ledger()
    }
    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), StoreError> {
        self.inner.commit_release(entry, released)
    }
    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.release(round)
    }
    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), StoreError> {
        self.inner.put_collect_response(round, response)
    }
    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.collect_response(round)
    }
    fn has_collect_response(&self, round: u32) -> Result<bool, StoreError> {
        self.inner.has_collect_response(round)
    }
    fn collect_garbage(&self, through_round: u32, scope: GarbageScope) -> Result<u64, StoreError> {
        self.inner.collect_garbage(through_round, scope)
    }
}
