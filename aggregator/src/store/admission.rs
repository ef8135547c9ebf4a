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
        // Hashed, and written to its file, before taking the connection: a report is
        // ~1 MiB, and every other upload waits for the lock.
        let digest = report_bytes_digest(report);
        let file = match &self.files {
            Some(files) => Some(files.write(report_id, report)?),
            None => None,
        };
        let outcome = self.sqlite_put_report_row(
            round,
            report_id,
            client_id,
            report,
            file.as_ref().map(|f| f.name()),
            &digest,
            max_reports,
        );
        if let Some(file) = file
            && matches!(outcome, Ok(PutOutcome::Stored) | Err(_))
        {
            // Stored: the row names it. An error may have come from a commit that
            // reached the disk all the same: kept, it is an orphan at worst.
            file.keep();
        }
        outcome
    }

    /// The upload's checks and rows, in one transaction; `file` names the report's
    /// file, or else the bytes go into `report_payloads`.
    #[allow(clippy::too_many_arguments)]
    fn sqlite_put_report_row(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        file: Option<&str>,
        digest: &[u8; 32],
        max_reports: u32,
    ) -> Result<PutOutcome, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(previous) = self.seen_digest_in(&tx, report_id)? {
            // Compared after the lock is released: a mismatch hashes the report again
            // (digests stored by earlier versions are SHA-256), and a replay must not
            // hold up the other uploads while it does.
            drop(tx);
            drop(conn);
            return Ok(PutOutcome::Duplicate {
                identical: stored_digest_matches(&previous, digest, report),
            });
        }
        let client_used: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM uploads WHERE task = ?1 AND round = ?2 AND client_id = ?3)",
            params![self.t(), round, client_id.0],
            |r| r.get(0),
        )?;
        if client_used {
            return Ok(PutOutcome::ClientAlreadySubmitted);
        }
        let closed: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM rounds WHERE task = ?1 AND round = ?2 AND status <> ?3)",
            params![self.t(), round, encoding::status_code(RoundStatus::Open)],
            |r| r.get(0),
        )?;
        if closed {
            return Ok(PutOutcome::RoundClosed);
        }
        let in_round: i64 = tx.query_row(
            "SELECT COUNT(*) FROM uploads WHERE task = ?1 AND round = ?2",
            params![self.t(), round],
            |r| r.get(0),
        )?;
        if in_round >= i64::from(max_reports) {
            return Ok(PutOutcome::RoundFull);
        }
        tx.execute(
            "INSERT INTO seen_reports (task, report_id, digest) VALUES (?1, ?2, ?3)",
            params![self.t(), report_id.0, digest],
        )?;
        tx.execute(
            "INSERT INTO uploads (task, round, client_id, report_id) VALUES (?1, ?2, ?3, ?4)",
            params![self.t(), round, client_id.0, report_id.0],
        )?;
        tx.execute(
            "INSERT INTO reports (task, report_id, round, job_id) VALUES (?1, ?2, ?3, NULL)",
            params![self.t(), report_id.0, round],
        )?;
        match file {
            Some(name) => tx.execute(
                "INSERT INTO report_files (task, report_id, name) VALUES (?1, ?2, ?3)",
                params![self.t(), report_id.0, name],
            )?,
            None => tx.execute(
                "INSERT INTO report_payloads (task, report_id, payload) VALUES (?1, ?2, ?3)",
                params![self.t(), report_id.0, report],
            )?,
        };
        tx.commit()?;
        Ok(PutOutcome::Stored)
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
