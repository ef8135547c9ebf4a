//! What an aggregator must keep durably, as a trait, and an in-memory implementation.
//!
//! The state machines ([`crate::leader`], [`crate::helper`]) never hold anything that
//! matters only in memory: every acknowledgement, verifier message, decision and
//! release is preceded by one atomic store operation, so a node killed at any instant
//! resumes from its store without losing an acknowledged report, counting one twice
//! or answering a replay. The operations are chosen so that each is a single
//! transaction in SQLite (the node's embedded default) or PostgreSQL:
//!
//! | operation | atomically |
//! |---|---|
//! | [`TaskStore::put_report`] | anti-replay check + one report per client per round + round capacity + store the report (leader) |
//! | [`TaskStore::record_prepared`] | a helper records a job's digest and each report id and client **before** its first verifier message leaves |
//! | [`TaskStore::create_job`] | record a job and take its reports out of the queue |
//! | [`TaskStore::commit_job`] | add the job's contribution to the round aggregate, count it, remember its report ids, drop the report payloads, mark the job done — or nothing if the job was already committed |
//! | [`TaskStore::commit_release`] | append the ledger entry, store the released share, mark the round released |
//!
//! One `TaskStore` serves one task at one aggregator. `conformance` (feature
//! `test-util`) is the suite every implementation must pass.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::auth::{ClientId, ClientKey, ClientRecord};
use crate::clock::Time;
use crate::ids::{JobId, ReportId};
use crate::ledger::LedgerEntry;
use crate::scheme::Aggregate;

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
mod memory;
pub mod retention;
mod shared;

pub use memory::MemoryStore;

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
    /// A job names one report more than once.
    #[error("report {0} appears twice in one job")]
    DuplicateInJob(ReportId),
    /// The round is not open for this operation.
    #[error("round {0} is not open")]
    RoundNotOpen(u32),
    /// A job names a report that is not queued (unknown, or in another job).
    #[error("report {0} is not queued")]
    NotQueued(ReportId),
    /// A job's decision differs from the one stored (another leader process decided
    /// it first, from other helper answers): a job is decided once.
    #[error("the job was decided otherwise by another leader process; its decision stands")]
    DecidedOtherwise,
    /// A job's contribution does not have the round aggregate's length.
    #[error("the contribution does not fit the round's aggregate: {0}")]
    WrongLength(#[from] cairn_mpc::vector::VectorError),
    /// A round's report count would pass `u32::MAX`.
    #[error("round {0}'s report count overflows")]
    CountOverflow(u32),
    /// A ledger entry does not extend the stored chain: its sequence number or previous
    /// hash is not the stored head's (another process sharing the store released
    /// meanwhile), or its round was released before.
    #[error("ledger entry {seq} does not extend the stored ledger (released meanwhile?)")]
    LedgerConflict {
        /// The refused entry's sequence number.
        seq: u64,
    },
}

/// Whether an upload was new.
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
    /// The client already has another report in this round (one per round).
    ClientAlreadySubmitted,
    /// The round holds `max_clients` reports already.
    RoundFull,
    /// The round was closed (a collect began) or released: nothing was stored. Checked
    /// in the same transaction as the insert, so a report is never stored into a
    /// round whose release has started on another process sharing the store.
    RoundClosed,
}

/// One upload for [`TaskStore::put_reports`]: what [`TaskStore::put_report`] takes.
/// Its `Debug` shows the report's length, not its bytes (they hold the leader's share).
#[derive(Clone, Copy)]
pub struct NewReport<'a> {
    /// The round it is for.
    pub round: u32,
    /// Its id.
    pub report_id: ReportId,
    /// The client that sent it.
    pub client_id: ClientId,
    /// Its bytes as stored.
    pub report: &'a [u8],
}

impl core::fmt::Debug for NewReport<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NewReport")
            .field("round", &self.round)
            .field("report_id", &self.report_id)
            .field("client_id", &self.client_id)
            .field("report_len", &self.report.len())
            .finish()
    }
}

/// A helper's verdict on one report of a job, recorded before it prepares the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First seen in this job (or a byte-identical resend of this job): prepare it.
    Admitted,
    /// The report id was recorded under another job: a replay.
    Replay,
    /// The client already has another report in this round.
    ClientAlreadySubmitted,
    /// The round holds `max_clients` reports already.
    RoundFull,
}

/// What [`TaskStore::record_prepared`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobAdmission {
    /// The job is recorded (now or before, with the same digest): one verdict per
    /// report, in order.
    Recorded(Vec<Admission>),
    /// The job id was recorded before with other content: refuse the whole job.
    Conflict,
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
}

impl RoundRecord {
    /// The round's state without its aggregate.
    pub fn state(&self) -> RoundState {
        RoundState {
            round: self.round,
            status: self.status,
            opened_at: self.opened_at,
            count: self.count,
        }
    }
}

/// A round's state without its running aggregate: what admitting a report or a job
/// checks. Every upload reads it, and the aggregate is 8·d bytes (800 KB at d = 10^5),
/// so it is not read along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundState {
    /// The round.
    pub round: u32,
    /// Lifecycle state.
    pub status: RoundStatus,
    /// When its first report arrived (the round expires `round_duration` later).
    pub opened_at: Time,
    /// Accepted reports in the aggregate.
    pub count: u32,
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

    /// The registered client `id` (its MAC key at this aggregator), if any.
    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, Self::Error>;

    /// Registers a client with its key at this aggregator. `false` if it was
    /// registered already (the stored key is kept).
    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, Self::Error>;

    /// Revokes a client: its reports are refused from now on. `false` if unknown.
    fn revoke_client(&self, id: ClientId) -> Result<bool, Self::Error>;

    /// Leader: stores a report unless its id was seen before (in any round), its
    /// client already has a report in `round`, `round` holds `max_reports`, or
    /// `round` is no longer open (closed or released).
    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, Self::Error>;

    /// Leader: [`TaskStore::put_report`] for several uploads, as if each were put in
    /// turn: two uploads of one batch can refuse each other (one report id twice, one
    /// client's second report, the round's last place). The outcomes are in the order
    /// of `reports`.
    ///
    /// A store may write the batch in one transaction, with one sync for all of it:
    /// the leader's uploads then queue behind one sync per batch instead of one per
    /// report. A failure of that transaction is then every report's error, and reports
    /// of a failed batch may have been stored all the same (as after a failed commit of
    /// [`TaskStore::put_report`]): a client's retry of such a report is answered
    /// [`PutOutcome::Duplicate`] `{ identical: true }`, and the report is counted once.
    /// The default puts each report in turn, each with its own answer.
    fn put_reports(
        &self,
        reports: &[NewReport<'_>],
        max_reports: u32,
    ) -> Vec<Result<PutOutcome, Self::Error>> {
        reports
            .iter()
            .map(|r| self.put_report(r.round, r.report_id, r.client_id, r.report, max_reports))
            .collect()
    }

    /// Leader: whether a report with this id was stored (in any round), and if so
    /// whether as these bytes: `Some(true)` for a retry of a stored report, `Some(false)`
    /// for other bytes under its id, `None` for an id never stored. Reads only.
    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, Self::Error>;

    /// Leader: the stored bytes of a report still awaiting aggregation.
    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Whether `error`, from [`TaskStore::report`], says that report's bytes are gone
    /// for good while the store still holds the report (a file deleted outside the
    /// store): the leader then refuses that report's job alone (it sets the report
    /// aside from a new batch), instead of failing every job at every try. A failure
    /// that may pass (I/O, a lost connection, a missing folder) is not. By default none
    /// is.
    fn is_report_lost(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }

    /// Leader: up to `limit` stored reports of `round` not yet in a job.
    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, Self::Error>;

    /// Leader: the rounds that have reports not yet in a job.
    fn queued_rounds(&self) -> Result<Vec<u32>, Self::Error>;

    /// Leader: records a job and takes its reports out of the queue. Every report must
    /// still be queued (stored, in no job): otherwise nothing changes and an error is
    /// returned, so that two leader processes sharing a store can never put one report
    /// in two jobs (the one that records its job second fails and takes another batch).
    fn create_job(&self, job: &JobRecord) -> Result<(), Self::Error>;

    /// Leader: takes (or renews) the lease of an open job for `owner` until `until`,
    /// if the job is not leased to another owner at `now`. Returns whether `owner`
    /// holds it now; `false` for a committed or unknown job. Leader processes sharing
    /// a store drive only the jobs they lease, so a job is worked on by one process at
    /// a time and taken over once its lease has expired (its process crashed or
    /// stalled).
    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, Self::Error>;

    /// Leader: records the decision of a job, once. The same decision again is
    /// accepted (a retry); another is refused ([`StoreError::DecidedOtherwise`] or the
    /// store's equivalent) and changes nothing: a leader process that stalled past its
    /// lease must not overwrite the decision of the process that took the job over.
    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), Self::Error>;

    /// Leader: jobs not yet committed (to resume after a restart).
    fn open_jobs(&self) -> Result<Vec<JobRecord>, Self::Error>;

    /// Helper: the digest a job id was first recorded with, if any.
    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, Self::Error>;

    /// Helper: before any verifier message of job `job_id` leaves, records the job
    /// with `job_digest` and each `(report, client)` it is about to prepare, and says
    /// per report whether it may be prepared (see [`Admission`]). A report id is
    /// admitted in one job only, a client once per round, a round up to `max_reports`
    /// clients. Re-recording the same job with the same digest admits the same
    /// reports again (an idempotent retry after a restart); another digest under the
    /// same job id is a [`JobAdmission::Conflict`] and records nothing.
    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, Self::Error>;

    /// The round's record, if any report reached it.
    fn round(&self, round: u32) -> Result<Option<RoundRecord>, Self::Error>;

    /// Creates the round's record as open (with a zero aggregate of `dimension`
    /// elements) if it does not exist; returns its state, without reading the
    /// aggregate.
    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundState, Self::Error>;

    /// Marks an open round closed (no more reports).
    fn close_round(&self, round: u32) -> Result<(), Self::Error>;

    /// The highest round with a record, if any.
    fn latest_round(&self) -> Result<Option<u32>, Self::Error>;

    /// The highest released round, if any: read from the store, so that processes
    /// sharing it (replicas) agree on the window of rounds they take reports for.
    fn latest_released_round(&self) -> Result<Option<u32>, Self::Error>;

    /// The digest of the set of report ids aggregated into `round`
    /// ([`report_set_digest`]).
    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], Self::Error>;

    /// Whether a report id is in some committed job's aggregate.
    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, Self::Error>;

    /// Whether `job_id` was committed, and with how many accepted reports.
    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, Self::Error>;

    /// Atomically adds a job's contribution to an open round (see the module table).
    /// Refuses an `accepted` list that names a report twice or a report aggregated
    /// before, changing nothing.
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
    /// message) and marks the round released. The entry must extend the stored chain —
    /// `entry.seq` is the number of stored entries, `entry.prev_hash` the last one's
    /// hash (zeros for none), and its round has no entry — or nothing changes and an
    /// error is returned. Processes sharing a store each prepare an entry from the
    /// ledger they read; of two prepared on the same head only one is appended, so
    /// the budget is never spent twice.
    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), Self::Error>;

    /// The stored release of a round, if released.
    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Leader: stores the collector's whole answer for a round (every aggregator's
    /// share), once assembled, so that a repeated collect is answered from it and no
    /// helper is asked for the round again.
    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), Self::Error>;

    /// Leader: the stored collect response of a round.
    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Leader: whether a collect response of the round is stored (without reading it).
    fn has_collect_response(&self, round: u32) -> Result<bool, Self::Error>;

    /// Retention: deletes what only aggregation needed of every **released** round up
    /// to and including `through_round` — report payloads, uploads, jobs and their
    /// leases, the ids of aggregated reports, a helper's preparation records — and
    /// returns how many records went. Rounds not released are untouched. Kept for
    /// ever: the rounds themselves (a released round stays released, so nothing can be
    /// uploaded to, prepared for or committed to it again), the ledger, the releases
    /// and collect answers (a repeated collect is answered as before), the digests of
    /// every report id seen (a replayed id is still refused) and the clients. With
    /// [`GarbageScope::Collected`] (a leader's) only rounds whose collect answer is
    /// stored go: a round released but not yet collected still needs its report set
    /// for the helpers' request ([`retention`]). The choice is made in the same
    /// transaction as the deletion, so a round released meanwhile is judged as it is.
    fn collect_garbage(&self, through_round: u32, scope: GarbageScope) -> Result<u64, Self::Error>;
}

/// Which released rounds [`TaskStore::collect_garbage`] may delete the records of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageScope {
    /// Every released round (a helper's store: its release answers any repeat).
    Released,
    /// Released rounds whose collect answer is stored (a leader's store).
    Collected,
}

/// The digest of a set of report ids: SHA-256 over the count and the ids in ascending
/// order. Both aggregators must report the same digest before either releases a round;
/// unlike a XOR of per-id hashes, a report counted twice changes it.
pub fn report_set_digest<'a>(sorted_ids: impl IntoIterator<Item = &'a ReportId>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/2 report set");
    let mut count = 0u64;
    let mut prev: Option<&ReportId> = None;
    for id in sorted_ids {
        debug_assert!(
            prev.is_none_or(|p| p < id),
            "ids must be strictly ascending"
        );
        prev = Some(id);
        h.update(id.0);
        count += 1;
    }
    h.update(count.to_le_bytes());
    h.finalize().into()
}

/// BLAKE3 of a stored report's bytes: kept with its id, so a retried upload can be
/// told from a replay even after the payload was aggregated and dropped. The leader
/// hashes every upload (about 1 MB at d = 10^5): BLAKE3 takes a quarter of SHA-256's
/// time there. Databases written by earlier versions hold SHA-256 digests, which
/// [`stored_digest_matches`] still recognises.
pub fn report_bytes_digest(report: &[u8]) -> [u8; 32] {
    blake3::hash(report).into()
}

/// Whether `stored`, the digest kept for a report id, is that of `report`, given
/// `digest = report_bytes_digest(report)`. A digest stored before reports were hashed
/// with BLAKE3 is SHA-256 of the same bytes: on a mismatch (a replay, or a retry of
/// such a report) that is checked too, so a retry across an upgrade is still
/// recognised as the same report.
pub fn stored_digest_matches(stored: &[u8], digest: &[u8; 32], report: &[u8]) -> bool {
    stored == digest.as_slice() || stored == Sha256::digest(report).as_slice()
}

/// Whether `ids` names some report twice; the first repeated id.
pub fn first_duplicate(ids: &[ReportId]) -> Option<ReportId> {
    let mut seen = BTreeSet::new();
    ids.iter().find(|id| !seen.insert(**id)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_store_keeps_the_store_contract() {
        conformance::run_all(crate::ids::TaskId([1; 32]), MemoryStore::new, |s| s);
    }

    #[test]
    fn racing_uploads_on_the_memory_store_store_each_report_once() {
        let store = MemoryStore::new();
        conformance::racing_uploads_store_each_report_once(&[&store; 4]);
    }

    #[test]
    fn the_set_digest_counts_duplicates_and_ignores_nothing() {
        let a = ReportId([1; 16]);
        let b = ReportId([2; 16]);
        let empty = report_set_digest([].iter());
        assert_ne!(report_set_digest([a].iter()), empty);
        assert_ne!(
            report_set_digest([a, b].iter()),
            report_set_digest([a].iter())
        );
        assert_ne!(report_set_digest([a, b].iter()), empty);
    }
}
