//! The leader's side of an aggregation job: batch queued reports, prepare them, decide
//! from the helpers' verifier shares, and commit the accepted ones (module docs of
//! [`crate::leader`] for the steps).

use super::*;
use crate::auth::ClientId;
use crate::hpke::HpkeCiphertext;
use crate::messages::Limits;
use crate::scheme::Scheme;

impl<S: TaskStore> Leader<S> {
    /// Rounds that have reports waiting for a job.
    pub fn rounds_with_queued_reports(&self) -> Result<Vec<u32>, Reject> {
        self.core.store.queued_rounds().map_err(Reject::storage)
    }

    /// Reports per job: [`MAX_REPORTS_PER_JOB`], or fewer for large uploads, so that a
    /// job stays within [`JOB_MEMORY_PER_THREAD`] per thread of the leader and within
    /// [`JOB_MEMORY_MAX`] in all: as many reports per thread as fit, rounded down to a
    /// multiple of the threads when more reports than threads fit (a job's reports are
    /// verified one per thread at a time, so with 2 threads a job of 7 would leave one
    /// thread idle for its last report), at least one report. Full jobs of
    /// [`MAX_REPORTS_PER_JOB`] are left alone: their last round of reports is a small
    /// part of the job.
    pub fn job_batch(&self) -> usize {
        let upload = self
            .core
            .limits()
            .max_inbound_frame_len(crate::messages::Inbound::LeaderFromClients)
            .max(1);
        let per_report = upload.saturating_mul(JOB_COPIES);
        let threads = self.core.parallelism.threads();
        let per_thread = (JOB_MEMORY_PER_THREAD / per_report).max(1);
        let fits = per_thread
            .saturating_mul(threads)
            .min((JOB_MEMORY_MAX / per_report).max(1));
        if fits >= MAX_REPORTS_PER_JOB {
            MAX_REPORTS_PER_JOB
        } else if fits > threads {
            fits - fits % threads
        } else {
            fits
        }
    }

    /// Starts a job over up to [`Leader::job_batch`] queued reports of `round`:
    /// prepares the leader's side, records the job, and returns one [`JobInit`] per
    /// helper (in helper order). `None` if nothing is queued. A batch whose reports
    /// all fail the leader's own checks has nothing for the helpers: it is decided and
    /// committed here (every report rejected) and the next batch is taken. Reports
    /// whose stored bytes are lost ([`TaskStore::is_report_lost`]) are set aside in a
    /// job of their own, recorded and refused ([`Leader::take_store_faults`]), and the
    /// batch goes on without them. After [`MAX_JOB_CONTENTION`] batches in a row with
    /// nothing for the helpers, or lost to other leader processes, it answers a
    /// retriable [`ErrorCode::Busy`]: what it did is recorded, and the next call goes
    /// on.
    pub fn start_job<R: CryptoRng + ?Sized>(
        &mut self,
        round: u32,
        rng: &mut R,
    ) -> Result<Option<(JobId, Vec<JobInit>)>, Reject> {
        let mut contended = 0;
        // Batches used up without a job for the helpers (set aside as lost, or every
        // report refused by the leader's own checks).
        let mut used_up = 0;
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
            let (mut job, inits) = self.prepare_job(record)?;
            let lost: Vec<ReportId> = job
                .damaged
                .iter()
                .filter(|(_, damage)| *damage == Damage::Lost)
                .map(|(id, _)| *id)
                .collect();
            if !lost.is_empty() {
                // The reports whose stored bytes are lost go into a job of their own,
                // refused (`lost_reports`), and the rest of the batch goes on without
                // them.
                let lost_job = JobRecord {
                    job_id: JobId::random(rng),
                    round,
                    reports: lost,
                    accepted: None,
                };
                if !self.record_job(&lost_job, &mut contended)? {
                    continue;
                }
                self.refuse(lost_job.job_id, lost_reports(&lost_job));
                job.record
                    .reports
                    .retain(|id| !lost_job.reports.contains(id));
                job.prepared
                    .retain(|(id, _)| !lost_job.reports.contains(id));
                job.damaged.clear();
                if job.record.reports.is_empty() {
                    used_up += 1;
                    check_used_up(used_up)?;
                    continue;
                }
            }
            if !self.record_job(&job.record, &mut contended)? {
                continue;
            }
            let job_id = job.record.job_id;
            if !self.lease(job_id)? {
                // Another leader process leased the new job first: it drives it.
                self.contention.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if inits.iter().all(|i| i.reports.is_empty()) {
                self.commit_locally(&job.record)?;
                used_up += 1;
                check_used_up(used_up)?;
                continue;
            }
            self.jobs.insert(job_id, job);
            return Ok(Some((job_id, inits)));
        }
    }

    /// Records a new job; `false` if another leader process sharing the store took some
    /// of its reports into its own job between the read and the write (the store
    /// refuses the second job whole): the caller takes the next batch, up to
    /// [`MAX_JOB_CONTENTION`] times in one call.
    fn record_job(&mut self, record: &JobRecord, contended: &mut u32) -> Result<bool, Reject> {
        let Err(e) = self.core.store.create_job(record) else {
            return Ok(true);
        };
        let still = self
            .core
            .store
            .queued_reports(record.round, self.job_batch())
            .map_err(Reject::storage)?;
        if record.reports.iter().all(|r| still.contains(r)) {
            return Err(Reject::storage(e));
        }
        *contended += 1;
        self.contention.fetch_add(1, Ordering::Relaxed);
        if *contended >= MAX_JOB_CONTENTION {
            return Err(Reject::new(
                ErrorCode::Busy,
                "other leader processes keep taking the queued reports first",
            ));
        }
        Ok(false)
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
    ///
    /// A job with a report whose stored bytes are lost, or a decided job whose accepted
    /// report is not as uploaded or no longer prepares here, is refused instead
    /// ([`Leader::take_store_faults`]): this process skips it from then on while it
    /// resumes the others.
    ///
    /// On an error (a store that cannot be read) no job of this call is kept in
    /// memory, so the next call resumes all of them: a job kept without its messages
    /// would never be sent again.
    pub fn resume_jobs(&mut self) -> Result<Vec<ResumedJob>, Reject> {
        let mut out = Vec::new();
        if let Err(e) = self.resume_into(&mut out) {
            for resumed in &out {
                self.jobs.remove(&resumed.job_id);
            }
            return Err(e);
        }
        Ok(out)
    }

    fn resume_into(&mut self, out: &mut Vec<ResumedJob>) -> Result<(), Reject> {
        for record in self.core.store.open_jobs().map_err(Reject::storage)? {
            if self.jobs.contains_key(&record.job_id)
                || self.refused.contains(&record.job_id)
                || !self.lease(record.job_id)?
            {
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
            if let Some(refusal) = refusal(&job) {
                // Unless another leader process committed the job meanwhile (and
                // deleted its reports): then there is nothing left to do.
                let committed = self
                    .core
                    .store
                    .job_committed(job_id)
                    .map_err(Reject::storage)?;
                if committed.is_none() {
                    self.refuse(job_id, refusal);
                }
                continue;
            }
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
        Ok(())
    }

    /// The jobs this leader refused since the last call, each once per process with
    /// why, for the operator's log (the node logs each as an error). A job is refused
    /// when a report of it has lost its stored bytes ([`TaskStore::is_report_lost`]: a
    /// file deleted outside cairn), or, decided, when a report it accepted is not as
    /// uploaded or no longer prepares. Aggregating it anyway would leave an
    /// acknowledged report out, or release a wrong sum. A refused job stays recorded and
    /// uncommitted: this process skips it, the other jobs and rounds go on, and its
    /// round's collect answers why it cannot be released, until an operator restores
    /// the reports' bytes and restarts the leader. With replicas, each replica that
    /// meets the job refuses it for itself.
    pub fn take_store_faults(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.store_faults)
    }

    /// Refuses `job_id` for the rest of this process, saying why once.
    fn refuse(&mut self, job_id: JobId, why: Reject) {
        if self.refused.insert(job_id) {
            self.store_faults.push(why);
        }
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
        self.renew_lease(job_id)?;
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
        // Each report sent to the helpers has its place in their results. The
        // preparations are taken out of the job: each is decided and, unless rejected,
        // dropped (its share wiped) on its worker.
        // Invariant: the job was looked up above and nothing removed it since.
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or_else(|| Reject::new(ErrorCode::Internal, "job vanished"))?;
        let mut sent_count = 0;
        let work: Vec<((ReportId, LeaderPrep), Option<usize>)> = std::mem::take(&mut job.prepared)
            .into_iter()
            .map(|(report_id, prepared)| {
                let sent = prepared.is_ok().then(|| {
                    sent_count += 1;
                    sent_count - 1
                });
                ((report_id, prepared), sent)
            })
            .collect();
        let scheme = &self.core.scheme;
        let outcomes = self
            .core
            .parallelism
            .map(work, |((report_id, prepared), sent)| {
                let outcome = decide_one(scheme, responses, &prepared, sent);
                // A report rejected after the leader prepared it has its share in the
                // job's sum: its state comes back, to withdraw it.
                let withdraw = match (&outcome, prepared) {
                    (Err(_), Ok((state, _))) => Some(state),
                    _ => None,
                };
                (report_id, outcome, withdraw)
            });
        let mut accepted = Vec::new();
        let mut rejections = Vec::new();
        let mut withdrawn = Ok(());
        for (report_id, outcome, withdraw) in outcomes {
            match outcome {
                Ok(()) => accepted.push(report_id),
                Err(code) => rejections.push(Rejection { report_id, code }),
            }
            if let Some(state) = withdraw
                && withdrawn.is_ok()
            {
                withdrawn = scheme.withdraw(&state, &mut job.sum);
            }
        }
        job.accepted_only = true;
        let recorded = withdrawn
            .map_err(|code| Reject::new(code, "job sum of another dimension"))
            .and_then(|()| {
                self.core
                    .store
                    .decide_job(job_id, &accepted)
                    .map_err(Reject::storage)
            });
        if let Err(e) = recorded {
            // The preparations are gone: forget the job, which the store still holds
            // (undecided, or decided: the next resume prepares it again).
            self.jobs.remove(&job_id);
            return Err(e);
        }
        job.record.accepted = Some(accepted.clone());
        let record = job.record.clone();
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
        self.renew_lease(job_id)?;
        let job = self.jobs.get_mut(&job_id).ok_or_else(|| {
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
        let round = job.record.round;
        let contribution = match job.contribution(&self.core.scheme, &accepted) {
            Ok(c) => c,
            Err(e) => {
                self.jobs.remove(&job_id);
                return Err(e);
            }
        };
        let outcome = self
            .core
            .store
            .commit_job(round, job_id, &accepted, contribution)
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
    /// Each report is read from the store, decoded and prepared on the leader's
    /// [`Parallelism`], one report per worker at a time, so the reads overlap with the
    /// other workers' verification (each report's stored bytes are read in place and
    /// dropped, wiped, once it is prepared, so the job holds at most one copy of its
    /// uploads beside the preparations: [`JOB_COPIES`]).
    fn prepare_job(&self, record: JobRecord) -> Result<(InFlightJob, Vec<JobInit>), Reject> {
        let limits = self.core.limits();
        let helpers = limits.helpers;
        let (scheme, verify_key) = (&self.core.scheme, &self.core.verify_key);
        let store = &self.core.store;
        let accepted = record.accepted.as_deref().unwrap_or_default();
        // A storage error that may pass fails the whole job, to be tried again; a report
        // whose bytes are lost, or not those uploaded, is noted for `refusal`. Each
        // report prepared without error has its share added into its worker's part of
        // the job's sum at once (withdrawn if it is rejected later).
        let (outcomes, sum) = self
            .core
            .parallelism
            .map_and_sum(
                scheme.dimension(),
                record.reports.clone(),
                |report_id, sum| {
                    // Wiped when dropped, on every return: it holds the leader's share.
                    let bytes = match store.report(report_id) {
                        Ok(Some(bytes)) => SecretVec::new(bytes),
                        // Gone with its row: a job committed it meanwhile.
                        Ok(None) => return Err(NotPrepared::Refused(ErrorCode::Internal)),
                        Err(e) if store.is_report_lost(&e) => {
                            return Err(NotPrepared::Damaged(Damage::Lost));
                        }
                        Err(e) => return Err(NotPrepared::Storage(e)),
                    };
                    if accepted.contains(&report_id)
                        && store
                            .stored_report_matches(report_id, bytes.expose_secret())
                            .map_err(NotPrepared::Storage)?
                            != Some(true)
                    {
                        return Err(NotPrepared::Damaged(Damage::Altered));
                    }
                    let prepared = prepare_one(scheme, verify_key, &limits, report_id, bytes)
                        .map_err(NotPrepared::Refused)?;
                    scheme
                        .accumulate(&prepared.0.0, sum)
                        .map_err(NotPrepared::Refused)?;
                    Ok(prepared)
                },
            )
            .map_err(|code| Reject::new(code, "job sum of another dimension"))?;
        let mut checked = Vec::with_capacity(outcomes.len());
        let mut damaged = Vec::new();
        for (report_id, outcome) in record.reports.iter().zip(outcomes) {
            match outcome {
                Ok(prepared) => checked.push(Ok(prepared)),
                Err(NotPrepared::Refused(code)) => checked.push(Err(code)),
                Err(NotPrepared::Damaged(damage)) => {
                    damaged.push((*report_id, damage));
                    checked.push(Err(ErrorCode::Internal));
                }
                Err(NotPrepared::Storage(e)) => return Err(Reject::storage(e)),
            }
        }
        let outcomes = checked;
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
                sum,
                accepted_only: false,
                damaged,
            },
            inits,
        ))
    }
}

/// Why `job` must not be aggregated, if it must not:
/// - a report's stored bytes are lost: without them the leader can neither send the
///   report to the helpers nor add its share, and leaving out an acknowledged report
///   is not the leader's to decide (nor could a job the helpers have seen change its
///   reports: they refuse a second init of a job that differs from the first);
/// - the job is decided and a report it accepted is not as uploaded (its digest
///   differs) or no longer prepares (the leader's code or task changed): the decision
///   is re-sent, not made again, and the helpers add every accepted report's share, so
///   a leader that committed the job without that report's leader share, or with an
///   altered one, would release a sum wrong in every coordinate.
fn refusal(job: &InFlightJob) -> Option<Reject> {
    let accepted = job.record.accepted.as_deref().unwrap_or_default();
    let mut reasons = Vec::new();
    for (report_id, prepared) in &job.prepared {
        let damage = job.damaged.iter().find(|(id, _)| id == report_id);
        if let Some((_, Damage::Lost)) = damage {
            reasons.push(format!("{}: its stored bytes are lost", report_id.to_hex()));
        } else if !accepted.contains(report_id) {
            continue;
        } else if let Some((_, Damage::Altered)) = damage {
            reasons.push(format!(
                "{}: its stored bytes are not those uploaded",
                report_id.to_hex()
            ));
        } else if let Err(code) = prepared {
            reasons.push(format!(
                "{}: it no longer prepares ({code})",
                report_id.to_hex()
            ));
        }
    }
    (!reasons.is_empty()).then(|| {
        refused(
            &job.record,
            "this leader no longer holds its reports as uploaded",
            &reasons,
        )
    })
}

/// A refusal of the job `record`: `what` is wrong, and why for each report.
fn refused(record: &JobRecord, what: &str, reasons: &[String]) -> Reject {
    Reject::new(
        ErrorCode::Internal,
        format!(
            "job {} of round {} cannot be aggregated: {what}, and its round cannot be \
             released until their bytes are restored and the leader restarted. Reports: {}",
            record.job_id.to_hex(),
            record.round,
            reasons.join("; "),
        ),
    )
}

/// [`ErrorCode::Busy`] once [`Leader::start_job`] has used up [`MAX_JOB_CONTENTION`]
/// batches without a job for the helpers: the leader is not held for the whole queue
/// (a bad restore, a flood of malformed reports), and the next call goes on.
fn check_used_up(used_up: u32) -> Result<(), Reject> {
    if used_up >= MAX_JOB_CONTENTION {
        return Err(Reject::new(
            ErrorCode::Busy,
            "many queued batches in a row had nothing for the helpers (set aside as lost, \
             or refused by the leader's own checks); the next call goes on",
        ));
    }
    Ok(())
}

/// Why `job`, the reports of a batch whose stored bytes are lost, set aside by
/// [`Leader::start_job`], is refused.
fn lost_reports(job: &JobRecord) -> Reject {
    let ids: Vec<String> = job.reports.iter().map(ReportId::to_hex).collect();
    refused(
        job,
        "it holds the reports whose stored bytes are lost, set aside from the batch \
         being aggregated",
        &ids,
    )
}

/// Why a report of a job did not prepare ([`Leader::prepare_job`]).
enum NotPrepared<E> {
    /// The leader's own checks refused it.
    Refused(ErrorCode),
    /// Its stored bytes cannot stand for its upload.
    Damaged(Damage),
    /// The store failed: the whole job fails.
    Storage(E),
}

/// The leader's decision on one report of a job: the helpers' verdicts and verifier
/// shares (at `sent`, its place in their results) with its own.
fn decide_one(
    scheme: &Scheme,
    responses: &[JobResponse],
    prepared: &LeaderPrep,
    sent: Option<usize>,
) -> Result<(), ErrorCode> {
    let (state, own_verifier) = prepared.as_ref().map_err(|code| *code)?;
    // Every prepared report was sent (counted by the caller).
    let sent = sent.ok_or(ErrorCode::Internal)?;
    let mut shares: Vec<&[u8]> = vec![own_verifier.as_slice()];
    let mut helper_code = None;
    for r in responses {
        match r.results.get(sent) {
            Some(PrepareResult::Verifier { verifier_share, .. }) => shares.push(verifier_share),
            Some(PrepareResult::Rejected { code, .. }) => helper_code = Some(*code),
            None => return Err(ErrorCode::Internal),
        }
    }
    match helper_code {
        Some(code) => Err(code),
        None => scheme.decide(state, &shares),
    }
}

/// What the leader keeps of one report it prepared: its verification state and what
/// the helpers need.
type PreparedReport = ((Prepared, Vec<u8>), ClientId, Vec<u8>, Vec<HpkeCiphertext>);

/// One stored report, decoded in place and prepared by the leader. The stored bytes,
/// which hold the leader's share in the clear, are wiped when dropped here: only what
/// the helpers need is kept.
fn prepare_one(
    scheme: &Scheme,
    verify_key: &Seed,
    limits: &Limits,
    report_id: ReportId,
    bytes: SecretVec<u8>,
) -> Result<PreparedReport, ErrorCode> {
    let mut reader = Reader::new(bytes.expose_secret());
    let report = ReportView::decode(&mut reader, limits).map_err(|_| ErrorCode::BadMessage)?;
    // Checked at upload; stored bytes altered since then must not leave a helper
    // without the report, whose answer would then never match the job.
    if report.helper_shares.len() != limits.helpers {
        return Err(ErrorCode::BadMessage);
    }
    let prepared = scheme.prepare(
        0,
        verify_key,
        &report_id,
        report.public_share,
        report.leader_share,
    )?;
    Ok((
        prepared,
        report.client_id,
        report.public_share.to_vec(),
        report.helper_shares,
    ))
}
