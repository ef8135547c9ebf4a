//! What a SQLite task store admits: an upload (one per report id and per client and
//! round), and the helper's anti-replay record.

use super::*;

impl SqliteTaskStore {
    /// The digest recorded for a report id seen before, if any (in a transaction or
    /// not: a transaction derefs to its connection).
    pub(super) fn seen_digest_in(
        &self,
        c: &rusqlite::Connection,
        report_id: ReportId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(c.query_row(
            "SELECT digest FROM seen_reports WHERE task = ?1 AND report_id = ?2",
            params![self.t(), report_id.0],
            |r| r.get(0),
        )
        .optional()?)
    }

    pub(super) fn sqlite_put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, StoreError> {
        // Hashed, and written to its file, before taking the connection for the
        // insert: a report is ~1 MiB, and every other upload waits for the lock.
        let digest = report_bytes_digest(report);
        let Some(files) = &self.files else {
            return self
                .sqlite_put_report_row(
                    round,
                    report_id,
                    client_id,
                    report,
                    None,
                    &digest,
                    max_reports,
                )
                .map_err(PutFailure::into_error);
        };
        // A retry, a replay or a refused upload is answered from the checks alone,
        // before its bytes are written (and synced) for nothing; the transaction
        // checks again.
        {
            let conn = self.lock();
            if let Some(refused) =
                self.upload_refusal(&conn, round, report_id, client_id, max_reports)?
            {
                drop(conn);
                return Ok(refused.outcome(&digest, report));
            }
        }
        let file = files.write(report_id, report)?;
        let outcome = self.sqlite_put_report_row(
            round,
            report_id,
            client_id,
            report,
            Some(file.name()),
            &digest,
            max_reports,
        );
        match outcome {
            Ok(PutOutcome::Stored) => {
                file.keep();
                Ok(PutOutcome::Stored)
            }
            // The commit failed, but it may have reached the disk all the same: kept, the
            // file is an orphan at worst.
            Err(PutFailure::AtCommit(e)) => {
                file.keep();
                Err(e)
            }
            // Nothing names the file: removed when dropped.
            Ok(other) => Ok(other),
            Err(PutFailure::Before(e)) => Err(e),
        }
    }

    /// Why an upload is not stored, if it is not: checked under the connection's lock,
    /// before the upload's bytes are written and again in its transaction.
    fn upload_refusal(
        &self,
        c: &rusqlite::Connection,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        max_reports: u32,
    ) -> Result<Option<UploadRefusal>, StoreError> {
        if let Some(previous) = self.seen_digest_in(c, report_id)? {
            return Ok(Some(UploadRefusal::Seen(previous)));
        }
        let client_used: bool = c.query_row(
            "SELECT EXISTS (SELECT 1 FROM uploads WHERE task = ?1 AND round = ?2 AND client_id = ?3)",
            params![self.t(), round, client_id.0],
            |r| r.get(0),
        )?;
        if client_used {
            return Ok(Some(UploadRefusal::Outcome(
                PutOutcome::ClientAlreadySubmitted,
            )));
        }
        let closed: bool = c.query_row(
            "SELECT EXISTS (SELECT 1 FROM rounds WHERE task = ?1 AND round = ?2 AND status <> ?3)",
            params![self.t(), round, encoding::status_code(RoundStatus::Open)],
            |r| r.get(0),
        )?;
        if closed {
            return Ok(Some(UploadRefusal::Outcome(PutOutcome::RoundClosed)));
        }
        let in_round: i64 = c.query_row(
            "SELECT COUNT(*) FROM uploads WHERE task = ?1 AND round = ?2",
            params![self.t(), round],
            |r| r.get(0),
        )?;
        if in_round >= i64::from(max_reports) {
            return Ok(Some(UploadRefusal::Outcome(PutOutcome::RoundFull)));
        }
        Ok(None)
    }

    /// The upload's checks and rows, in one transaction; `file` names the report's
    /// file, or else the bytes go into `report_payloads`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sqlite_put_report_row(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        file: Option<&str>,
        digest: &[u8; 32],
        max_reports: u32,
    ) -> Result<PutOutcome, PutFailure> {
        let before = PutFailure::Before;
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| before(e.into()))?;
        if let Some(refused) = self
            .upload_refusal(&tx, round, report_id, client_id, max_reports)
            .map_err(before)?
        {
            // A duplicate's bytes are compared after the lock is released: a mismatch
            // hashes the report again (digests stored by earlier versions are
            // SHA-256), and a replay must not hold up the other uploads while it does.
            drop(tx);
            drop(conn);
            return Ok(refused.outcome(digest, report));
        }
        let upload = NewReport {
            round,
            report_id,
            client_id,
            report,
        };
        self.insert_upload_rows(&tx, &upload, file, digest)
            .map_err(before)?;
        tx.commit().map_err(|e| PutFailure::AtCommit(e.into()))?;
        Ok(PutOutcome::Stored)
    }

    /// An upload's rows, in the caller's transaction, once its checks passed; `file`
    /// names the report's file, or else the bytes go into `report_payloads`.
    fn insert_upload_rows(
        &self,
        tx: &rusqlite::Transaction<'_>,
        upload: &NewReport<'_>,
        file: Option<&str>,
        digest: &[u8; 32],
    ) -> Result<(), StoreError> {
        let NewReport {
            round,
            report_id,
            client_id,
            report,
        } = *upload;
        tx.execute(
            "INSERT INTO seen_reports (task, report_id, digest) VALUES (?1, ?2, ?3)",
            params![self.t(), report_id.0, &digest[..]],
        )?;
        tx.execute(
            "INSERT INTO uploads (task, round, client_id, report_id) VALUES (?1, ?2, ?3, ?4)",
            params![self.t(), round, client_id.0, report_id.0],
        )?;
        tx.execute(
            "INSERT INTO reports (task, report_id, round, job_id) VALUES (?1, ?2, ?3, NULL)",
            params![self.t(), report_id.0, round],
        )?;
        match (file, &self.files) {
            (Some(name), Some(files)) => {
                // Under the write lock, which the removal of orphans takes too: a file
                // removed as an orphan before this point (its upload stalled for an
                // hour) is found missing here, and the upload fails instead of being
                // acknowledged without its bytes.
                files.check_present(name)?;
                tx.execute(
                    "INSERT INTO report_files (task, report_id, name) VALUES (?1, ?2, ?3)",
                    params![self.t(), report_id.0, name],
                )?;
            }
            _ => {
                tx.execute(
                    "INSERT INTO report_payloads (task, report_id, payload) VALUES (?1, ?2, ?3)",
                    params![self.t(), report_id.0, report],
                )?;
            }
        }
        Ok(())
    }

    /// [`TaskStore::put_reports`]: the uploads' checks under the connection's lock;
    /// the files of those not refused, nor shadowed by an earlier upload of the batch
    /// ([`SqliteTaskStore::shadowed_in_batch`]), written, then synced together
    /// ([`ReportFiles::write_many`]); then one transaction that checks every upload
    /// again, in order (so the batch's uploads see each other's rows, and the answers
    /// are those of uploads put in turn), records those that pass, and commits once.
    /// A failure is every upload's error. One upload, or a store in memory, takes
    /// [`TaskStore::put_report`]'s path, each upload with its own answer.
    pub(super) fn sqlite_put_reports(
        &self,
        reports: &[NewReport<'_>],
        max_reports: u32,
    ) -> Vec<Result<PutOutcome, StoreError>> {
        let one = |r: &NewReport<'_>| {
            self.sqlite_put_report(r.round, r.report_id, r.client_id, r.report, max_reports)
        };
        let Some(files) = self.files.as_ref().filter(|_| reports.len() > 1) else {
            return reports.iter().map(one).collect();
        };
        match self.sqlite_put_batch(files, reports, max_reports) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e) => {
                // The error may name any upload's file, and a file's name begins with
                // its report id, which only its client may know (another client that
                // learnt it could upload under it first and turn the retry into a
                // replay): the detail goes to the log, every upload gets the bare fact.
                tracing::warn!(uploads = reports.len(), error = %e, "a batch of uploads failed");
                std::iter::repeat_with(|| Err(StoreError::Batch))
                    .take(reports.len())
                    .collect()
            }
        }
    }

    /// Which of a batch's uploads, each passing the checks against the database
    /// (`refusals`), an earlier upload of the same batch will have refused by the time
    /// its turn comes, if that one is stored: the same report id, the same client in
    /// the same round, or a round that the earlier ones fill. Those get no file, so
    /// that a client cannot make the leader write and sync files it then throws away;
    /// should one pass in the transaction after all (its earlier twin refused there),
    /// its bytes go into the database.
    fn shadowed_in_batch(
        &self,
        conn: &rusqlite::Connection,
        reports: &[NewReport<'_>],
        refusals: &[Option<UploadRefusal>],
        max_reports: u32,
    ) -> Result<Vec<bool>, StoreError> {
        let mut ids = std::collections::HashSet::new();
        let mut clients = std::collections::HashSet::new();
        let mut in_round: std::collections::HashMap<u32, i64> = std::collections::HashMap::new();
        let mut shadowed = Vec::with_capacity(reports.len());
        for (r, refused) in reports.iter().zip(refusals) {
            if refused.is_some() {
                shadowed.push(false);
                continue;
            }
            let taken = match in_round.entry(r.round) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(conn.query_row(
                    "SELECT COUNT(*) FROM uploads WHERE task = ?1 AND round = ?2",
                    params![self.t(), r.round],
                    |row| row.get(0),
                )?),
            };
            let shadow = ids.contains(&r.report_id.0)
                || clients.contains(&(r.round, r.client_id.0))
                || *taken >= i64::from(max_reports);
            if !shadow {
                ids.insert(r.report_id.0);
                clients.insert((r.round, r.client_id.0));
                *taken += 1;
            }
            shadowed.push(shadow);
        }
        Ok(shadowed)
    }

    /// The batch path of [`SqliteTaskStore::sqlite_put_reports`], for a file-backed
    /// store.
    fn sqlite_put_batch(
        &self,
        files: &ReportFiles,
        reports: &[NewReport<'_>],
        max_reports: u32,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        let digests: Vec<[u8; 32]> = reports
            .iter()
            .map(|r| report_bytes_digest(r.report))
            .collect();
        let (mut refusals, shadowed) = {
            let conn = self.lock();
            let refusals: Vec<Option<UploadRefusal>> = reports
                .iter()
                .map(|r| self.upload_refusal(&conn, r.round, r.report_id, r.client_id, max_reports))
                .collect::<Result<_, _>>()?;
            let shadowed = self.shadowed_in_batch(&conn, reports, &refusals, max_reports)?;
            (refusals, shadowed)
        };
        let gets_file: Vec<bool> = refusals
            .iter()
            .zip(&shadowed)
            .map(|(refused, shadowed)| refused.is_none() && !shadowed)
            .collect();
        let to_write: Vec<(ReportId, &[u8])> = reports
            .iter()
            .zip(&gets_file)
            .filter(|(_, gets_file)| **gets_file)
            .map(|(r, _)| (r.report_id, r.report))
            .collect();
        // Nothing to write (every upload refused or shadowed): no file, and no sync of
        // the folder, which need not exist yet.
        let written = if to_write.is_empty() {
            Vec::new()
        } else {
            files.write_many(&to_write)?
        };
        if written.len() != to_write.len() {
            return Err(StoreError::ReportFile {
                path: files.dir().to_path_buf(),
                source: std::io::Error::other("fewer report files written than asked"),
            });
        }
        #[cfg(test)]
        super::tests::before_batch_transaction(written.len());
        let mut written = written.into_iter();
        let mut pending: Vec<Option<PendingFile<'_>>> = gets_file
            .iter()
            .map(|gets_file| if *gets_file { written.next() } else { None })
            .collect();
        // Shadowed uploads the transaction stored after all, their bytes in the database.
        let mut in_database = vec![false; reports.len()];
        // Files the transaction refuses after all, removed once the lock is released.
        let mut unused = Vec::new();
        {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (((r, digest), (refusal, slot)), (shadowed, in_database)) in reports
                .iter()
                .zip(&digests)
                .zip(refusals.iter_mut().zip(pending.iter_mut()))
                .zip(shadowed.iter().zip(in_database.iter_mut()))
            {
                // Every upload is checked again, those refused before included: the
                // batch's earlier uploads may change why (an id first used in the batch
                // is a duplicate before it is a client's second report).
                let now_refused =
                    self.upload_refusal(&tx, r.round, r.report_id, r.client_id, max_reports)?;
                match (now_refused, slot.as_ref()) {
                    (Some(refused), _) => {
                        *refusal = Some(refused);
                        unused.extend(slot.take());
                    }
                    (None, Some(file)) => {
                        let name = file.name().to_owned();
                        self.insert_upload_rows(&tx, r, Some(&name), digest)?;
                    }
                    // Shadowed (so it passed the checks before), and its earlier twin
                    // refused here after all (another upload's rows came in between):
                    // stored, in the database.
                    (None, None) if *shadowed => {
                        self.insert_upload_rows(&tx, r, None, digest)?;
                        *in_database = true;
                    }
                    // Refused before the batch, so refused still (a batch only adds
                    // rows): the first answer stands.
                    (None, None) => {}
                }
            }
            if let Err(e) = tx.commit() {
                // The commit may have reached the disk all the same: kept, a file is an
                // orphan at worst.
                pending.into_iter().flatten().for_each(PendingFile::keep);
                return Err(e.into());
            }
        }
        drop(unused);
        // Committed: every file left is named by its row. Kept before anything else can
        // fail, so that no stored report's file is removed.
        let stored: Vec<bool> = pending
            .into_iter()
            .zip(in_database)
            .map(|(file, in_database)| file.map(PendingFile::keep).is_some() || in_database)
            .collect();
        reports
            .iter()
            .zip(refusals)
            .zip(digests.iter().zip(stored))
            .map(|((r, refused), (digest, stored))| match (refused, stored) {
                (Some(refused), _) => Ok(refused.outcome(digest, r.report)),
                (None, true) => Ok(PutOutcome::Stored),
                // Not refused, so its file was written (or, shadowed, its bytes put in
                // the database) and its row committed: unreachable.
                (None, false) => Err(StoreError::ReportFile {
                    path: files.dir().to_path_buf(),
                    source: std::io::Error::other("an upload without its report file"),
                }),
            })
            .collect()
    }

    pub(super) fn sqlite_prepared_job_digest(
        &self,
        job_id: JobId,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.lock()
            .query_row(
                "SELECT digest FROM prepared_jobs WHERE task = ?1 AND job_id = ?2",
                params![self.t(), job_id.0],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(|d| to_array(&d, "job digest"))
            .transpose()
    }

    pub(super) fn sqlite_record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let recorded: Option<Vec<u8>> = tx
            .query_row(
                "SELECT digest FROM prepared_jobs WHERE task = ?1 AND job_id = ?2",
                params![self.t(), job_id.0],
                |r| r.get(0),
            )
            .optional()?;
        match recorded {
            Some(d) if d.as_slice() != job_digest.as_slice() => return Ok(JobAdmission::Conflict),
            Some(_) => {}
            None => {
                tx.execute(
                    "INSERT INTO prepared_jobs (task, job_id, digest) VALUES (?1, ?2, ?3)",
                    params![self.t(), job_id.0, job_digest],
                )?;
            }
        }
        let mut in_round: i64 = tx.query_row(
            "SELECT COUNT(*) FROM prepared_reports WHERE task = ?1 AND round = ?2",
            params![self.t(), round],
            |r| r.get(0),
        )?;
        let mut verdicts = Vec::with_capacity(reports.len());
        for (report_id, client_id) in reports {
            let job_of_report: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT job_id FROM prepared_reports WHERE task = ?1 AND report_id = ?2",
                    params![self.t(), report_id.0],
                    |r| r.get(0),
                )
                .optional()?;
            let verdict = match job_of_report {
                Some(j) if j.as_slice() == job_id.0.as_slice() => Admission::Admitted,
                Some(_) => Admission::Replay,
                None => {
                    let client_used: bool = tx.query_row(
                        "SELECT EXISTS (SELECT 1 FROM prepared_reports \
                         WHERE task = ?1 AND round = ?2 AND client_id = ?3)",
                        params![self.t(), round, client_id.0],
                        |r| r.get(0),
                    )?;
                    if client_used {
                        Admission::ClientAlreadySubmitted
                    } else if in_round >= i64::from(max_reports) {
                        Admission::RoundFull
                    } else {
                        tx.execute(
                            "INSERT INTO prepared_reports (task, report_id, job_id, round, client_id) \
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![self.t(), report_id.0, job_id.0, round, client_id.0],
                        )?;
                        in_round += 1;
                        Admission::Admitted
                    }
                }
            };
            verdicts.push(verdict);
        }
        tx.commit()?;
        Ok(JobAdmission::Recorded(verdicts))
    }
}

/// Why an upload was not stored ([`SqliteTaskStore::upload_refusal`]).
enum UploadRefusal {
    /// The report id was seen before, with this digest.
    Seen(Vec<u8>),
    /// Another refusal.
    Outcome(PutOutcome),
}

impl UploadRefusal {
    /// The answer for an upload of `report` (whose digest is `digest`).
    fn outcome(self, digest: &[u8; 32], report: &[u8]) -> PutOutcome {
        match self {
            Self::Seen(previous) => PutOutcome::Duplicate {
                identical: stored_digest_matches(&previous, digest, report),
            },
            Self::Outcome(o) => o,
        }
    }
}

/// How an upload's transaction failed: before its commit (nothing was stored), or at
/// the commit (which may have reached the disk all the same).
#[derive(Debug)]
pub(super) enum PutFailure {
    Before(StoreError),
    AtCommit(StoreError),
}

impl PutFailure {
    pub(super) fn into_error(self) -> StoreError {
        match self {
            Self::Before(e) | Self::AtCommit(e) => e,
        }
    }
}
