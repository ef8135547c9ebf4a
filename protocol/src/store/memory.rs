//! An in-memory [`TaskStore`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{
    Admission, CommitOutcome, GarbageScope, JobAdmission, JobRecord, PutOutcome, RoundRecord,
    RoundState, RoundStatus, StoreError, TaskStore, first_duplicate, report_bytes_digest,
    report_set_digest,
};
use crate::auth::{ClientId, ClientKey, ClientRecord};
use crate::clock::Time;
use crate::ids::{JobId, ReportId};
use crate::ledger::LedgerEntry;
use crate::scheme::Aggregate;

/// An in-memory [`TaskStore`]: for tests, the simulation and ephemeral demos. It is
/// transactional (one mutex) but not durable.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    clients: BTreeMap<ClientId, (ClientKey, bool)>,
    seen: BTreeMap<ReportId, [u8; 32]>,
    uploads_by_client: BTreeMap<(u32, ClientId), ReportId>,
    uploads_per_round: BTreeMap<u32, u32>,
    reports: BTreeMap<ReportId, (u32, Vec<u8>)>,
    queued: BTreeMap<u32, BTreeSet<ReportId>>,
    jobs: BTreeMap<JobId, JobRecord>,
    prepared_jobs: BTreeMap<JobId, [u8; 32]>,
    prepared: BTreeMap<ReportId, JobId>,
    prepared_by_client: BTreeMap<(u32, ClientId), ReportId>,
    prepared_per_round: BTreeMap<u32, u32>,
    committed_jobs: BTreeMap<JobId, u32>,
    leases: BTreeMap<JobId, ([u8; 16], Time)>,
    aggregated: BTreeMap<u32, BTreeSet<ReportId>>,
    rounds: BTreeMap<u32, RoundRecord>,
    ledger: Vec<LedgerEntry>,
    releases: BTreeMap<u32, Vec<u8>>,
    collect_responses: BTreeMap<u32, Vec<u8>>,
}

impl MemoryInner {
    fn is_aggregated(&self, id: &ReportId) -> bool {
        self.aggregated.values().any(|ids| ids.contains(id))
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the ledger with `entries` and nothing else, as restoring the ledger
    /// from an old backup while the aggregator runs would. For tests of rollback
    /// detection: nothing checks the entries. Hidden from the docs: not an API.
    #[doc(hidden)]
    pub fn restore_ledger(&self, entries: Vec<LedgerEntry>) {
        self.lock().ledger = entries;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A poisoned lock means a panic mid-operation in a test; the data is still
        // consistent because every operation validates before it mutates.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TaskStore for MemoryStore {
    type Error = StoreError;

    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self
            .lock()
            .clients
            .get(&id)
            .map(|(key, revoked)| ClientRecord {
                key: key.duplicate(),
                revoked: *revoked,
            }))
    }

    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if s.clients.contains_key(&id) {
            return Ok(false);
        }
        s.clients.insert(id, (key.duplicate(), false));
        Ok(true)
    }

    fn revoke_client(&self, id: ClientId) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .clients
            .get_mut(&id)
            .map(|(_, revoked)| *revoked = true)
            .is_some())
    }

    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, StoreError> {
        let mut s = self.lock();
        let digest = report_bytes_digest(report);
        if let Some(previous) = s.seen.get(&report_id) {
            return Ok(PutOutcome::Duplicate {
                identical: *previous == digest,
            });
        }
        if s.uploads_by_client.contains_key(&(round, client_id)) {
            return Ok(PutOutcome::ClientAlreadySubmitted);
        }
        if s.rounds
            .get(&round)
            .is_some_and(|r| r.status != RoundStatus::Open)
        {
            return Ok(PutOutcome::RoundClosed);
        }
        if s.uploads_per_round.get(&round).copied().unwrap_or(0) >= max_reports {
            return Ok(PutOutcome::RoundFull);
        }
        s.seen.insert(report_id, digest);
        s.uploads_by_client.insert((round, client_id), report_id);
        *s.uploads_per_round.entry(round).or_default() += 1;
        s.reports.insert(report_id, (round, report.to_vec()));
        s.queued.entry(round).or_default().insert(report_id);
        Ok(PutOutcome::Stored)
    }

    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, StoreError> {
        let stored = self.lock().seen.get(&report_id).copied();
        Ok(stored.map(|d| d == report_bytes_digest(report)))
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
        let queued = s.queued.get(&job.round);
        if let Some(id) = job
            .reports
            .iter()
            .find(|id| !queued.is_some_and(|q| q.contains(*id)))
        {
            return Err(StoreError::NotQueued(*id));
        }
        if let Some(q) = s.queued.get_mut(&job.round) {
            for id in &job.reports {
                q.remove(id);
            }
        }
        s.jobs.insert(job.job_id, job.clone());
        Ok(())
    }

    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if !s.jobs.contains_key(&job_id) {
            return Ok(false);
        }
        if let Some((holder, expires)) = s.leases.get(&job_id)
            && *holder != owner
            && *expires > now
        {
            return Ok(false);
        }
        s.leases.insert(job_id, (owner, until));
        Ok(true)
    }

    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), StoreError> {
        let mut s = self.lock();
        let job = s.jobs.get_mut(&job_id).ok_or(StoreError::NotFound("job"))?;
        match &job.accepted {
            Some(decided) if decided.as_slice() != accepted => Err(StoreError::DecidedOtherwise),
            _ => {
                job.accepted = Some(accepted.to_vec());
                Ok(())
            }
        }
    }

    fn open_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        Ok(self.lock().jobs.values().cloned().collect())
    }

    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self.lock().prepared_jobs.get(&job_id).copied())
    }

    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, StoreError> {
        let mut s = self.lock();
        match s.prepared_jobs.get(&job_id) {
            Some(d) if d != job_digest => return Ok(JobAdmission::Conflict),
            Some(_) => {}
            None => {
                s.prepared_jobs.insert(job_id, *job_digest);
            }
        }
        let mut verdicts = Vec::with_capacity(reports.len());
        for (report_id, client_id) in reports {
            let verdict = match s.prepared.get(report_id) {
                Some(job) if *job == job_id => Admission::Admitted,
                Some(_) => Admission::Replay,
                None if s.prepared_by_client.contains_key(&(round, *client_id)) => {
                    Admission::ClientAlreadySubmitted
                }
                None if s.prepared_per_round.get(&round).copied().unwrap_or(0) >= max_reports => {
                    Admission::RoundFull
                }
                None => {
                    s.prepared.insert(*report_id, job_id);
                    s.prepared_by_client.insert((round, *client_id), *report_id);
                    *s.prepared_per_round.entry(round).or_default() += 1;
                    Admission::Admitted
                }
            };
            verdicts.push(verdict);
        }
        Ok(JobAdmission::Recorded(verdicts))
    }

    fn round(&self, round: u32) -> Result<Option<RoundRecord>, StoreError> {
        Ok(self.lock().rounds.get(&round).cloned())
    }

    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundState, StoreError> {
        let mut s = self.lock();
        Ok(s.rounds
            .entry(round)
            .or_insert_with(|| RoundRecord {
                round,
                status: RoundStatus::Open,
                opened_at: now,
                count: 0,
                aggregate: Aggregate::zero(dimension),
            })
            .state())
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

    fn latest_round(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.lock().rounds.keys().next_back().copied())
    }

    fn latest_released_round(&self) -> Result<Option<u32>, StoreError> {
        Ok(self
            .lock()
            .rounds
            .iter()
            .rev()
            .find(|(_, r)| r.status == RoundStatus::Released)
            .map(|(round, _)| *round))
    }

    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], StoreError> {
        let s = self.lock();
        Ok(report_set_digest(
            s.aggregated.get(&round).into_iter().flatten(),
        ))
    }

    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, StoreError> {
        Ok(self.lock().is_aggregated(&report_id))
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
        if let Some(id) = first_duplicate(accepted) {
            return Err(StoreError::DuplicateInJob(id));
        }
        if let Some(id) = accepted.iter().find(|id| s.is_aggregated(id)) {
            return Err(StoreError::AlreadyAggregated(*id));
        }
        let mut record = record.clone();
        record.aggregate.add_assign(contribution)?;
        record.count = u32::try_from(accepted.len())
            .ok()
            .and_then(|n| record.count.checked_add(n))
            .ok_or(StoreError::CountOverflow(round))?;
        s.rounds.insert(round, record);
        s.aggregated
            .entry(round)
            .or_default()
            .extend(accepted.iter().copied());
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
        let head_hash = s.ledger.last().map_or([0; 32], |e| e.hash);
        if entry.seq != s.ledger.len() as u64
            || entry.prev_hash != head_hash
            || s.ledger.iter().any(|e| e.round == entry.round)
        {
            return Err(StoreError::LedgerConflict { seq: entry.seq });
        }
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

    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .collect_responses
            .entry(round)
            .or_insert_with(|| response.to_vec());
        Ok(())
    }

    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().collect_responses.get(&round).cloned())
    }

    fn has_collect_response(&self, round: u32) -> Result<bool, StoreError> {
        Ok(self.lock().collect_responses.contains_key(&round))
    }

    fn collect_garbage(&self, through_round: u32, scope: GarbageScope) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let old: BTreeSet<u32> = s
            .rounds
            .range(..=through_round)
            .filter(|(_, r)| r.status == RoundStatus::Released)
            .map(|(round, _)| *round)
            .filter(|round| {
                scope == GarbageScope::Released || s.collect_responses.contains_key(round)
            })
            .collect();
        let mut deleted = 0u64;
        let mut count = |n: usize| deleted += n as u64;
        let before = s.reports.len();
        s.reports.retain(|_, (round, _)| !old.contains(round));
        count(before - s.reports.len());
        let before = s.uploads_by_client.len();
        s.uploads_by_client
            .retain(|(round, _), _| !old.contains(round));
        count(before - s.uploads_by_client.len());
        s.uploads_per_round.retain(|round, _| !old.contains(round));
        s.queued.retain(|round, _| !old.contains(round));
        let old_jobs: BTreeSet<JobId> = s
            .jobs
            .iter()
            .filter(|(_, j)| old.contains(&j.round))
            .map(|(id, _)| *id)
            .collect();
        s.jobs.retain(|id, _| !old_jobs.contains(id));
        s.leases.retain(|id, _| !old_jobs.contains(id));
        count(old_jobs.len());
        let aggregated: usize = old
            .iter()
            .filter_map(|r| s.aggregated.remove(r))
            .map(|ids| ids.len())
            .sum();
        count(aggregated);
        // A helper's records: the reports it prepared in those rounds, and their jobs.
        let prepared: Vec<((u32, ClientId), ReportId)> = s
            .prepared_by_client
            .iter()
            .filter(|((round, _), _)| old.contains(round))
            .map(|(k, v)| (*k, *v))
            .collect();
        let mut prepared_jobs = BTreeSet::new();
        for (key, report) in &prepared {
            s.prepared_by_client.remove(key);
            if let Some(job) = s.prepared.remove(report) {
                prepared_jobs.insert(job);
            }
        }
        count(prepared.len());
        for job in &prepared_jobs {
            s.prepared_jobs.remove(job);
            s.committed_jobs.remove(job);
        }
        count(prepared_jobs.len());
        s.prepared_per_round.retain(|round, _| !old.contains(round));
        Ok(deleted)
    }
}
