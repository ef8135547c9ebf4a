//! The node's embedded store: SQLite, one database file per node.
//!
//! [`SqliteStore`] opens the database (WAL journal, `synchronous = FULL`: a committed
//! transaction survives power loss, which is what "an acknowledged report is never
//! lost" and "a spent budget is never forgotten" need) and hands out one
//! [`SqliteTaskStore`] per task, which implements the protocol's
//! [`TaskStore`]. Every trait operation is one
//! SQLite transaction, so a node killed at any instant leaves either all of an
//! operation or none of it.
//!
//! Privacy budgets are the one thing that must never go backwards: ledger rows are
//! only ever inserted, ρ values are stored as the exact bits of their `f64`, and the
//! hash chain is re-verified whenever a task is loaded.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_protocol::auth::{ClientId, ClientKey, ClientRecord};
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskId;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::ledger::LedgerEntry;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{
    Admission, CommitOutcome, GarbageScope, JobAdmission, JobRecord, NewReport, PutOutcome,
    RoundRecord, RoundState, RoundStatus, TaskStore, first_duplicate, report_bytes_digest,
    report_set_digest, stored_digest_matches,
};
use encoding::{ids_to_blob, status_code};
use report_files::{PendingFile, ReportFiles};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Errors of the SQLite store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed (I/O, corruption, locking).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The request contradicts the stored state, or that state does not decode.
    #[error(transparent)]
    Refused(#[from] crate::store::Refusal),
    /// The database was made by a Cairn version with another schema.
    #[error(
        "the database has schema version {found}, this cairn uses {expected}: it was made by \
         another version of cairn; use a new data_dir (or the version that made it)"
    )]
    SchemaVersion {
        /// The database's version.
        found: i64,
        /// This build's version.
        expected: i64,
    },
    /// A maintenance command met a database that this version's node would migrate.
    #[error(
        "the database has schema version {found}; the node of this cairn migrates it to \
         {expected} when it starts: start that node first (maintenance commands never \
         change the schema under a running node)"
    )]
    NotMigrated {
        /// The database's version.
        found: i64,
        /// This build's version.
        expected: i64,
    },
    /// A report's file (`report_files`) could not be written, read or named.
    #[error("report file {path}: {source}")]
    ReportFile {
        /// The file, or its folder.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A stored report's file is missing while its row still names it: deleted or
    /// lost outside cairn ([`TaskStore::is_report_lost`]).
    #[error("report file {path}: missing (deleted or lost outside cairn)")]
    ReportLost {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The batch of uploads this one was to be stored with failed. The error itself
    /// is in the node's log: it may name another upload's report.
    #[error("the batch of uploads it was stored with failed (the node's log has why)")]
    Batch,
}

/// The schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 6;

/// One task's view of a node's database.
#[derive(Clone)]
pub struct SqliteTaskStore {
    conn: Arc<Mutex<Connection>>,
    /// Where reports' bytes go (a file-backed database); `None`: into `report_payloads`,
    /// where a file-backed database also keeps the rare upload that a batch stored
    /// without a file (`SqliteTaskStore::shadowed_in_batch`).
    files: Option<Arc<ReportFiles>>,
    task: TaskId,
    dimension: usize,
}

impl SqliteTaskStore {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction
        // rolls back when dropped), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn t(&self) -> &[u8] {
        &self.task.0
    }

    fn round_in(&self, conn: &Connection, round: u32) -> Result<Option<RoundRecord>, StoreError> {
        let row = conn
            .query_row(
                "SELECT status, opened_at, count, aggregate FROM rounds WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((status, opened_at, count, aggregate)) = row else {
            return Ok(None);
        };
        let state = round_state(round, status, opened_at, count)?;
        let aggregate = Aggregate::decode(&aggregate, self.dimension)
            .map_err(|e| Refusal::Corrupt(format!("round {round} aggregate: {e}")))?;
        Ok(Some(RoundRecord {
            round,
            status: state.status,
            opened_at: state.opened_at,
            count: state.count,
            aggregate,
        }))
    }

    /// [`Self::round_in`] without the aggregate, whose bytes are then never read:
    /// `rounds` is a rowid table, so SQLite reads a row's overflow pages only for the
    /// columns a statement asks for.
    fn round_state_in(
        &self,
        conn: &Connection,
        round: u32,
    ) -> Result<Option<RoundState>, StoreError> {
        let row = conn
            .query_row(
                "SELECT status, opened_at, count FROM rounds WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(status, opened_at, count)| round_state(round, status, opened_at, count))
            .transpose()
    }
}

/// A round's state from its stored columns.
fn round_state(
    round: u32,
    status: i64,
    opened_at: i64,
    count: i64,
) -> Result<RoundState, StoreError> {
    Ok(RoundState {
        round,
        status: encoding::status_of(status)
            .ok_or_else(|| Refusal::Corrupt(format!("round {round} status {status}")))?,
        opened_at: Time(
            u64::try_from(opened_at).map_err(|_| Refusal::Corrupt("opened_at".into()))?,
        ),
        count: u32::try_from(count).map_err(|_| Refusal::Corrupt("count".into()))?,
    })
}

fn to_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], StoreError> {
    encoding::to_array(bytes, what).map_err(|e| Refusal::Corrupt(e).into())
}

fn blob_to_ids(blob: &[u8]) -> Result<Vec<ReportId>, StoreError> {
    encoding::blob_to_ids(blob).map_err(|e| Refusal::Corrupt(e).into())
}

impl TaskStore for SqliteTaskStore {
    type Error = StoreError;

    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT key, revoked FROM clients WHERE task = ?1 AND client_id = ?2",
                params![self.t(), id.0],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?;
        let Some((mut key, revoked)) = row else {
            return Ok(None);
        };
        let bytes = to_array::<32>(&key, "client key");
        zeroize::Zeroize::zeroize(&mut key);
        Ok(Some(ClientRecord {
            key: ClientKey::from_bytes(bytes?),
            revoked: revoked != 0,
        }))
    }

    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, StoreError> {
        let added = self.lock().execute(
            "INSERT OR IGNORE INTO clients (task, client_id, key) VALUES (?1, ?2, ?3)",
            params![self.t(), id.0, key.dangerous_as_bytes()],
        )?;
        Ok(added == 1)
    }

    fn revoke_client(&self, id: ClientId) -> Result<bool, StoreError> {
        let changed = self.lock().execute(
            "UPDATE clients SET revoked = 1 WHERE task = ?1 AND client_id = ?2",
            params![self.t(), id.0],
        )?;
        Ok(changed == 1)
    }

    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, StoreError> {
        self.sqlite_put_report(round, report_id, client_id, report, max_reports)
    }

    fn put_reports(
        &self,
        reports: &[NewReport<'_>],
        max_reports: u32,
    ) -> Vec<Result<PutOutcome, StoreError>> {
        self.sqlite_put_reports(reports, max_reports)
    }

    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, StoreError> {
        let stored = self.seen_digest_in(&self.lock(), report_id)?;
        // Hashed once the lock is released: a report is ~1 MiB.
        Ok(stored.map(|s| stored_digest_matches(&s, &report_bytes_digest(report), report)))
    }

    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, StoreError> {
        let name: Option<String> = {
            let conn = self.lock();
            let name = conn
                .query_row(
                    "SELECT name FROM report_files WHERE task = ?1 AND report_id = ?2",
                    params![self.t(), report_id.0],
                    |r| r.get(0),
                )
                .optional()?;
            if name.is_none() {
                // In memory, stored before reports had files (schema version 5), or
                // a batch's shadowed upload stored after all (`shadowed_in_batch`).
                return Ok(conn
                    .query_row(
                        "SELECT payload FROM report_payloads WHERE task = ?1 AND report_id = ?2",
                        params![self.t(), report_id.0],
                        |r| r.get(0),
                    )
                    .optional()?);
            }
            name
        };
        // Read with the connection released. The row names a file only once the file
        // was synced, and the file goes only after the row does.
        #[cfg(test)]
        tests::between_name_and_file();
        let (Some(name), Some(files)) = (name, &self.files) else {
            return Err(StoreError::ReportFile {
                path: "(in memory)".into(),
                source: std::io::Error::other("a report file named in an in-memory store"),
            });
        };
        if let Some(bytes) = files.read(report_id, &name)? {
            return Ok(Some(bytes));
        }
        // No file: its row was deleted meanwhile (a job committed it, or retention), as
        // the other stores answer, or else the file was lost.
        let still_named: bool = self.lock().query_row(
            "SELECT EXISTS (SELECT 1 FROM report_files WHERE task = ?1 AND report_id = ?2)",
            params![self.t(), report_id.0],
            |r| r.get(0),
        )?;
        if still_named {
            // The folder itself missing (a database moved without it, a mount not up
            // yet) says nothing of this one report: a failure that may pass. An upload
            // meanwhile makes the folder again; then each earlier report reads as lost
            // and its job is refused until the files are back.
            if !files.dir().is_dir() {
                return Err(StoreError::ReportFile {
                    path: files.dir().to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the folder of the stored reports' files is missing",
                    ),
                });
            }
            return Err(StoreError::ReportLost {
                path: files.dir().join(&name),
            });
        }
        Ok(None)
    }

    fn is_report_lost(&self, error: &StoreError) -> bool {
        matches!(error, StoreError::ReportLost { .. })
    }

    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT report_id FROM reports WHERE task = ?1 AND round = ?2 AND job_id IS NULL \
             ORDER BY report_id LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![self.t(), round, limit], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| to_array::<16>(&r?, "report id").map(ReportId))
            .collect()
    }

    fn queued_rounds(&self) -> Result<Vec<u32>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT round FROM reports WHERE task = ?1 AND job_id IS NULL ORDER BY round",
        )?;
        let rows = stmt.query_map(params![self.t()], |r| r.get::<_, u32>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO jobs (task, job_id, round, report_ids, accepted) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                self.t(),
                job.job_id.0,
                job.round,
                ids_to_blob(&job.reports),
                job.accepted.as_deref().map(ids_to_blob)
            ],
        )?;
        for id in &job.reports {
            let claimed = tx.execute(
                "UPDATE reports SET job_id = ?4 WHERE task = ?1 AND report_id = ?2 \
                 AND round = ?3 AND job_id IS NULL",
                params![self.t(), id.0, job.round, job.job_id.0],
            )?;
            if claimed == 0 {
                // Dropping the transaction rolls back the job row too.
                return Err(Refusal::NotQueued(*id).into());
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, StoreError> {
        let changed = self.lock().execute(
            "UPDATE jobs SET lease_owner = ?3, lease_expires = ?5 \
             WHERE task = ?1 AND job_id = ?2 AND committed = 0 \
             AND (lease_owner IS NULL OR lease_owner = ?3 OR lease_expires <= ?4)",
            params![
                self.t(),
                job_id.0,
                owner,
                i64::try_from(now.0).unwrap_or(i64::MAX),
                i64::try_from(until.0).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(changed == 1)
    }

    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), StoreError> {
        let conn = self.lock();
        let changed = conn.execute(
            "UPDATE jobs SET accepted = ?3 WHERE task = ?1 AND job_id = ?2 AND committed = 0 \
             AND (accepted IS NULL OR accepted = ?3)",
            params![self.t(), job_id.0, ids_to_blob(accepted)],
        )?;
        if changed == 0 {
            let open: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE task = ?1 AND job_id = ?2 AND committed = 0)",
                params![self.t(), job_id.0],
                |r| r.get(0),
            )?;
            return Err(if open {
                Refusal::DecidedOtherwise
            } else {
                Refusal::NotFound("job")
            }
            .into());
        }
        Ok(())
    }

    fn open_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT job_id, round, report_ids, accepted FROM jobs WHERE task = ?1 AND committed = 0",
        )?;
        let rows = stmt.query_map(params![self.t()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
            ))
        })?;
        let mut jobs = Vec::new();
        for row in rows {
            let (job_id, round, reports, accepted) = row?;
            jobs.push(JobRecord {
                job_id: JobId(to_array(&job_id, "job id")?),
                round,
                reports: blob_to_ids(&reports)?,
                accepted: accepted.as_deref().map(blob_to_ids).transpose()?,
            });
        }
        Ok(jobs)
    }

    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, StoreError> {
        self.sqlite_prepared_job_digest(job_id)
    }

    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, StoreError> {
        self.sqlite_record_prepared(job_id, job_digest, round, reports, max_reports)
    }

    fn round(&self, round: u32) -> Result<Option<RoundRecord>, StoreError> {
        let conn = self.lock();
        self.round_in(&conn, round)
    }

    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundState, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(r) = self.round_state_in(&tx, round)? {
            return Ok(r);
        }
        let state = RoundState {
            round,
            status: RoundStatus::Open,
            opened_at: now,
            count: 0,
        };
        tx.execute(
            "INSERT INTO rounds (task, round, status, opened_at, count, aggregate) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![
                self.t(),
                round,
                status_code(RoundStatus::Open),
                i64::try_from(now.0).unwrap_or(i64::MAX),
                Aggregate::zero(dimension).encode(),
            ],
        )?;
        tx.commit()?;
        Ok(state)
    }

    fn close_round(&self, round: u32) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE rounds SET status = 1 WHERE task = ?1 AND round = ?2 AND status = 0",
            params![self.t(), round],
        )?;
        Ok(())
    }

    fn latest_round(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.lock().query_row(
            "SELECT MAX(round) FROM rounds WHERE task = ?1",
            params![self.t()],
            |r| r.get::<_, Option<u32>>(0),
        )?)
    }

    fn latest_released_round(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.lock().query_row(
            "SELECT MAX(round) FROM rounds WHERE task = ?1 AND status = ?2",
            params![self.t(), encoding::status_code(RoundStatus::Released)],
            |r| r.get::<_, Option<u32>>(0),
        )?)
    }

    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT report_id FROM aggregated WHERE task = ?1 AND round = ?2 ORDER BY report_id",
        )?;
        let ids = stmt
            .query_map(params![self.t(), round], |r| r.get::<_, Vec<u8>>(0))?
            .map(|r| to_array::<16>(&r?, "report id").map(ReportId))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(report_set_digest(&ids))
    }

    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM aggregated WHERE task = ?1 AND report_id = ?2",
                params![self.t(), report_id.0],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT accepted_count FROM jobs WHERE task = ?1 AND job_id = ?2 AND committed = 1",
                params![self.t(), job_id.0],
                |r| r.get::<_, u32>(0),
            )
            .optional()?)
    }

    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let committed: Option<i64> = tx
            .query_row(
                "SELECT committed FROM jobs WHERE task = ?1 AND job_id = ?2",
                params![self.t(), job_id.0],
                |r| r.get(0),
            )
            .optional()?;
        if committed == Some(1) {
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        if let Some(id) = first_duplicate(accepted) {
            return Err(Refusal::DuplicateInJob(id).into());
        }
        let mut record = self
            .round_in(&tx, round)?
            .ok_or(Refusal::NotFound("round"))?;
        if record.status == RoundStatus::Released {
            return Err(Refusal::RoundReleased(round).into());
        }
        for id in accepted {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO aggregated (task, report_id, round) VALUES (?1, ?2, ?3)",
                params![self.t(), id.0, round],
            )?;
            if inserted == 0 {
                // Dropping the transaction rolls back everything above.
                return Err(Refusal::AlreadyAggregated(*id).into());
            }
        }
        crate::store::common::absorb_job(&mut record, contribution, accepted.len())?;
        tx.execute(
            "UPDATE rounds SET count = ?3, aggregate = ?4 WHERE task = ?1 AND round = ?2",
            params![self.t(), round, record.count, record.aggregate.encode()],
        )?;
        let count = u32::try_from(accepted.len()).unwrap_or(u32::MAX);
        let mut files = Vec::new();
        if committed.is_some() {
            files = delete_payloads(
                &tx,
                "(SELECT report_id FROM reports WHERE task = ?1 AND round = ?3 AND job_id = ?2)",
                params![self.t(), job_id.0, round],
            )?;
            tx.execute(
                "DELETE FROM reports WHERE task = ?1 AND round = ?3 AND job_id = ?2",
                params![self.t(), job_id.0, round],
            )?;
            tx.execute(
                "UPDATE jobs SET committed = 1, accepted_count = ?3, report_ids = x'' \
                 WHERE task = ?1 AND job_id = ?2",
                params![self.t(), job_id.0, count],
            )?;
        } else {
            // A helper's job: the leader recorded it, the helper records its commit.
            tx.execute(
                "INSERT INTO jobs (task, job_id, round, report_ids, committed, accepted_count) \
                 VALUES (?1, ?2, ?3, x'', 1, ?4)",
                params![self.t(), job_id.0, round, count],
            )?;
        }
        tx.commit()?;
        drop(conn);
        // After the commit: a crash before this leaves files no row names (orphans).
        if let Some(report_files) = &self.files {
            report_files.remove(files);
        }
        Ok(CommitOutcome::Applied)
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.sqlite_ledger()
    }

    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), StoreError> {
        self.sqlite_commit_release(entry, released)
    }

    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.sqlite_release(round)
    }

    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), StoreError> {
        self.sqlite_put_collect_response(round, response)
    }

    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.sqlite_collect_response(round)
    }

    fn has_collect_response(&self, round: u32) -> Result<bool, StoreError> {
        self.sqlite_has_collect_response(round)
    }

    fn collect_garbage(&self, through_round: u32, scope: GarbageScope) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The payloads and files of the reports the shared statements delete
        // (PostgreSQL keeps them in `reports`), first, while `reports` still names
        // them. Not counted: a report is one row deleted, as on PostgreSQL.
        let of_rounds = format!(
            "(SELECT report_id FROM reports WHERE task = ?1 AND round IN ({}))",
            encoding::garbage_rounds(scope).replace('$', "?")
        );
        let files = delete_payloads(
            &tx,
            &of_rounds,
            params![
                self.t(),
                through_round,
                encoding::status_code(RoundStatus::Released)
            ],
        )?;
        let mut deleted = 0u64;
        for sql in encoding::garbage(scope) {
            deleted += tx.execute(
                &sql.replace('$', "?"),
                params![
                    self.t(),
                    through_round,
                    encoding::status_code(RoundStatus::Released)
                ],
            )? as u64;
        }
        tx.commit()?;
        drop(conn);
        if let Some(report_files) = &self.files {
            report_files.remove(files);
        }
        Ok(deleted)
    }
}

/// Deletes the payload rows and file rows of the task's (`?1`) reports that `reports`
/// (an `(SELECT report_id …)` over `args`) selects; returns the files' names, to be
/// removed once the transaction has committed.
fn delete_payloads(
    tx: &Connection,
    reports: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<String>, StoreError> {
    let files = names_in(
        tx,
        &format!("SELECT name FROM report_files WHERE task = ?1 AND report_id IN {reports}"),
        args,
    )?;
    for table in ["report_files", "report_payloads"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE task = ?1 AND report_id IN {reports}"),
            args,
        )?;
    }
    Ok(files)
}

/// The file names a `SELECT name …` statement returns.
fn names_in(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare(sql)?;
    let names = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    Ok(names.collect::<Result<_, _>>()?)
}

mod admission;
mod encoding;
mod node_store;
pub mod postgres;
pub mod report_files;

pub use node_store::{NodeStore, NodeStoreError, pg_connect};
mod common;
mod open;
mod release;

pub use common::Refusal;
pub use open::SqliteStore;

#[cfg(test)]
mod tests;
