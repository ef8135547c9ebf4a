//! A store shared by several parties of one process (leader processes in a test, a
//! store and its inspector): `Arc<S>` is a [`TaskStore`] wherever `S` is.

use std::sync::Arc;

use super::{
    CommitOutcome, GarbageScope, JobAdmission, JobRecord, NewReport, PutOutcome, RoundRecord,
    RoundState, TaskStore,
};
use crate::auth::{ClientId, ClientKey, ClientRecord};
use crate::clock::Time;
use crate::ids::{JobId, ReportId};
use crate::ledger::LedgerEntry;
use crate::scheme::Aggregate;

impl<S: TaskStore> TaskStore for Arc<S> {
    type Error = S::Error;

    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, S::Error> {
        (**self).client(id)
    }
    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, S::Error> {
        (**self).add_client(id, key)
    }
    fn revoke_client(&self, id: ClientId) -> Result<bool, S::Error> {
        (**self).revoke_client(id)
    }
    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, S::Error> {
        (**self).put_report(round, report_id, client_id, report, max_reports)
    }
    fn put_reports(
        &self,
        reports: &[NewReport<'_>],
        max_reports: u32,
    ) -> Vec<Result<PutOutcome, S::Error>> {
        (**self).put_reports(reports, max_reports)
    }
    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, S::Error> {
        (**self).stored_report_matches(report_id, report)
    }
    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, S::Error> {
        (**self).report(report_id)
    }
    fn is_report_lost(&self, error: &S::Error) -> bool {
        (**self).is_report_lost(error)
    }
    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, S::Error> {
        (**self).queued_reports(round, limit)
    }
    fn queued_rounds(&self) -> Result<Vec<u32>, S::Error> {
        (**self).queued_rounds()
    }
    fn create_job(&self, job: &JobRecord) -> Result<(), S::Error> {
        (**self).create_job(job)
    }
    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, S::Error> {
        (**self).lease_job(job_id, owner, now, until)
    }
    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), S::Error> {
        (**self).decide_job(job_id, accepted)
    }
    fn open_jobs(&self) -> Result<Vec<JobRecord>, S::Error> {
        (**self).open_jobs()
    }
    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, S::Error> {
        (**self).prepared_job_digest(job_id)
    }
    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, S::Error> {
        (**self).record_prepared(job_id, job_digest, round, reports, max_reports)
    }
    fn round(&self, round: u32) -> Result<Option<RoundRecord>, S::Error> {
        (**self).round(round)
    }
    fn open_round(&self, round: u32, now: Time, dimension: usize) -> Result<RoundState, S::Error> {
        (**self).open_round(round, now, dimension)
    }
    fn close_round(&self, round: u32) -> Result<(), S::Error> {
        (**self).close_round(round)
    }
    fn latest_round(&self) -> Result<Option<u32>, S::Error> {
        (**self).latest_round()
    }
    fn latest_released_round(&self) -> Result<Option<u32>, S::Error> {
        (**self).latest_released_round()
    }
    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], S::Error> {
        (**self).report_set_digest(round)
    }
    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, S::Error> {
        (**self).is_aggregated(report_id)
    }
    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, S::Error> {
        (**self).job_committed(job_id)
    }
    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, S::Error> {
        (**self).commit_job(round, job_id, accepted, contribution)
    }
    fn ledger(&self) -> Result<Vec<LedgerEntry>, S::Error> {
        (**self).ledger()
    }
    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), S::Error> {
        (**self).commit_release(entry, released)
    }
    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, S::Error> {
        (**self).release(round)
    }
    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), S::Error> {
        (**self).put_collect_response(round, response)
    }
    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, S::Error> {
        (**self).collect_response(round)
    }
    fn has_collect_response(&self, round: u32) -> Result<bool, S::Error> {
        (**self).has_collect_response(round)
    }

    fn collect_garbage(&self, through_round: u32, scope: GarbageScope) -> Result<u64, S::Error> {
        (**self).collect_garbage(through_round, scope)
    }
}
