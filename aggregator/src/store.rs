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

use cairn_dp::rdp::RdpCurve;
use cairn_protocol::auth::{ClientId, ClientKey, ClientRecord};
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskId;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::ledger::LedgerEntry;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{
    Admission, CommitOutcome, JobAdmission, JobRecord, PutOutcome, RoundRecord, RoundStatus,
    TaskStore, first_duplicate, report_bytes_digest, report_set_digest,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Errors of the SQLite store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed (I/O, corruption, locking).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value does not decode (the database was edited or is corrupt).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A referenced job or round does not exist.
    #[error("unknown {0}")]
    NotFound(&'static str),
    /// A report id was aggregated before (replay across jobs).
    #[error("report {0} was already aggregated")]
    AlreadyAggregated(ReportId),
    /// The round was released; nothing more can be added.
    #[error("round {0} was released")]
    RoundReleased(u32),
    /// A job names one report more than once.
    #[error("report {0} appears twice in one job")]
    DuplicateInJob(ReportId),
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
}

/// The schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// One node's database.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clients (
    task BLOB NOT NULL, client_id BLOB NOT NULL, key BLOB NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task, client_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    task BLOB NOT NULL, round INTEGER NOT NULL, client_id BLOB NOT NULL,
    report_id BLOB NOT NULL,
    PRIMARY KEY (task, round, client_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prepared_jobs (
    task BLOB NOT NULL, job_id BLOB NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (task, job_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prepared_reports (
    task BLOB NOT NULL, report_id BLOB NOT NULL, job_id BLOB NOT NULL,
    round INTEGER NOT NULL, client_id BLOB NOT NULL,
    PRIMARY KEY (task, report_id),
    UNIQUE (task, round, client_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_reports (
    task BLOB NOT NULL, report_id BLOB NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (task, report_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
    task BLOB NOT NULL, report_id BLOB NOT NULL, round INTEGER NOT NULL,
    job_id BLOB, payload BLOB NOT NULL,
    PRIMARY KEY (task, report_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reports_queue ON reports (task, round, job_id);
CREATE TABLE IF NOT EXISTS jobs (
    task BLOB NOT NULL, job_id BLOB NOT NULL, round INTEGER NOT NULL,
    report_ids BLOB NOT NULL, accepted BLOB, committed INTEGER NOT NULL DEFAULT 0,
    accepted_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task, job_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aggregated (
    task BLOB NOT NULL, report_id BLOB NOT NULL, round INTEGER NOT NULL,
    PRIMARY KEY (task, report_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aggregated_by_round ON aggregated (task, round, report_id);
CREATE TABLE IF NOT EXISTS rounds (
    task BLOB NOT NULL, round INTEGER NOT NULL, status INTEGER NOT NULL,
    opened_at INTEGER NOT NULL, count INTEGER NOT NULL, aggregate BLOB NOT NULL,
    PRIMARY KEY (task, round)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger (
    task BLOB NOT NULL, seq INTEGER NOT NULL, round INTEGER NOT NULL, time INTEGER NOT NULL,
    report_count INTEGER NOT NULL, rho_bits INTEGER NOT NULL, rho_total_bits INTEGER NOT NULL,
    rdp BLOB, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (task, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS releases (
    task BLOB NOT NULL, round INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (task, round)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collect_responses (
    task BLOB NOT NULL, round INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (task, round)) WITHOUT ROWID;
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// Opens an existing database read-only (reports, inspection): no schema change,
    /// no write, so it can run beside a live node (WAL lets readers in while it writes).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// A private in-memory database (tests, `cairn demo` with no data directory).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        // WAL lets readers run beside the writer; FULL syncs the WAL on every commit,
        // so an acknowledged write is on disk before the acknowledgement leaves.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let has_tables: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
            [],
            |r| r.get(0),
        )?;
        if (has_tables || version != 0) && version != SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                found: version,
                expected: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The store of one task.
    pub fn task(&self, task_id: TaskId, dimension: usize) -> SqliteTaskStore {
        SqliteTaskStore {
            conn: Arc::clone(&self.conn),
            task: task_id,
            dimension,
        }
    }
}

/// One task's view of a node's database.
#[derive(Clone)]
pub struct SqliteTaskStore {
    conn: Arc<Mutex<Connection>>,
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
        let status = match status {
            0 => RoundStatus::Open,
            1 => RoundStatus::Closed,
            2 => RoundStatus::Released,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "round {round} status {status}"
                )));
            }
        };
        let aggregate = Aggregate::decode(&aggregate, self.dimension)
            .map_err(|e| StoreError::Corrupt(format!("round {round} aggregate: {e}")))?;
        Ok(Some(RoundRecord {
            round,
            status,
            opened_at: Time(
                u64::try_from(opened_at).map_err(|_| StoreError::Corrupt("opened_at".into()))?,
            ),
            count: u32::try_from(count).map_err(|_| StoreError::Corrupt("count".into()))?,
            aggregate,
        }))
    }
}

fn status_code(s: RoundStatus) -> i64 {
    match s {
        RoundStatus::Open => 0,
        RoundStatus::Closed => 1,
        RoundStatus::Released => 2,
    }
}

fn to_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what}: {} bytes, expected {N}", bytes.len())))
}

fn ids_to_blob(ids: &[ReportId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0).collect()
}

fn blob_to_ids(blob: &[u8]) -> Result<Vec<ReportId>, StoreError> {
    if !blob.len().is_multiple_of(16) {
        return Err(StoreError::Corrupt("report id list".into()));
    }
    blob.chunks_exact(16)
        .map(|c| to_array::<16>(c, "report id").map(ReportId))
        .collect()
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
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let digest = report_bytes_digest(report);
        let previous: Option<Vec<u8>> = tx
            .query_row(
                "SELECT digest FROM seen_reports WHERE task = ?1 AND report_id = ?2",
                params![self.t(), report_id.0],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(previous) = previous {
            return Ok(PutOutcome::Duplicate {
                identical: previous == digest,
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
            "INSERT INTO reports (task, report_id, round, job_id, payload) VALUES (?1, ?2, ?3, NULL, ?4)",
            params![self.t(), report_id.0, round, report],
        )?;
        tx.commit()?;
        Ok(PutOutcome::Stored)
    }

    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT payload FROM reports WHERE task = ?1 AND report_id = ?2",
                params![self.t(), report_id.0],
                |r| r.get(0),
            )
            .optional()?)
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
            tx.execute(
                "UPDATE reports SET job_id = ?3 WHERE task = ?1 AND report_id = ?2",
                params![self.t(), id.0, job.job_id.0],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), StoreError> {
        let changed = self.lock().execute(
            "UPDATE jobs SET accepted = ?3 WHERE task = ?1 AND job_id = ?2 AND committed = 0",
            params![self.t(), job_id.0, ids_to_blob(accepted)],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound("job"));
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

    fn record_prepared(
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

    fn round(&self, round: u32) -> Result<Option<RoundRecord>, StoreError> {
        let conn = self.lock();
        self.round_in(&conn, round)
    }

    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundRecord, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(r) = self.round_in(&tx, round)? {
            return Ok(r);
        }
        let record = RoundRecord {
            round,
            status: RoundStatus::Open,
            opened_at: now,
            count: 0,
            aggregate: Aggregate::zero(dimension),
        };
        tx.execute(
            "INSERT INTO rounds (task, round, status, opened_at, count, aggregate) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![
                self.t(),
                round,
                status_code(RoundStatus::Open),
                i64::try_from(now.0).unwrap_or(i64::MAX),
                record.aggregate.encode(),
            ],
        )?;
        tx.commit()?;
        Ok(record)
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
            return Err(StoreError::DuplicateInJob(id));
        }
        let mut record = self
            .round_in(&tx, round)?
            .ok_or(StoreError::NotFound("round"))?;
        if record.status == RoundStatus::Released {
            return Err(StoreError::RoundReleased(round));
        }
        for id in accepted {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO aggregated (task, report_id, round) VALUES (?1, ?2, ?3)",
                params![self.t(), id.0, round],
            )?;
            if inserted == 0 {
                // Dropping the transaction rolls back everything above.
                return Err(StoreError::AlreadyAggregated(*id));
            }
        }
        record
            .aggregate
            .add_assign(contribution)
            .map_err(|_| StoreError::Corrupt("contribution length".into()))?;
        record.count = record
            .count
            .checked_add(
                u32::try_from(accepted.len()).map_err(|_| StoreError::Corrupt("count".into()))?,
            )
            .ok_or_else(|| StoreError::Corrupt("count overflow".into()))?;
        tx.execute(
            "UPDATE rounds SET count = ?3, aggregate = ?4 WHERE task = ?1 AND round = ?2",
            params![self.t(), round, record.count, record.aggregate.encode()],
        )?;
        let count = u32::try_from(accepted.len()).unwrap_or(u32::MAX);
        if committed.is_some() {
            tx.execute(
                "DELETE FROM reports WHERE task = ?1 AND job_id = ?2",
                params![self.t(), job_id.0],
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
        Ok(CommitOutcome::Applied)
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash, rdp \
             FROM ledger WHERE task = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![self.t()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Vec<u8>>(6)?,
                r.get::<_, Vec<u8>>(7)?,
                r.get::<_, Option<Vec<u8>>>(8)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (seq, round, time, report_count, rho, rho_total, prev, hash, rdp) = row?;
            let rdp = rdp
                .map(|blob| {
                    if !blob.len().is_multiple_of(8) {
                        return Err(StoreError::Corrupt("ledger rdp curve".into()));
                    }
                    let values = blob
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0xff; 8])))
                        .collect();
                    RdpCurve::from_values(values)
                        .map_err(|e| StoreError::Corrupt(format!("ledger rdp curve: {e}")))
                })
                .transpose()?;
            entries.push(LedgerEntry {
                seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt("ledger seq".into()))?,
                round,
                time: Time(
                    u64::try_from(time).map_err(|_| StoreError::Corrupt("ledger time".into()))?,
                ),
                report_count,
                rho: f64::from_bits(rho as u64),
                rho_total: f64::from_bits(rho_total as u64),
                rdp,
                prev_hash: to_array(&prev, "ledger prev_hash")?,
                hash: to_array(&hash, "ledger hash")?,
            });
        }
        Ok(entries)
    }

    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO ledger (task, seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash, rdp) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                self.t(),
                i64::try_from(entry.seq).map_err(|_| StoreError::Corrupt("ledger seq".into()))?,
                entry.round,
                i64::try_from(entry.time.0).unwrap_or(i64::MAX),
                entry.report_count,
                entry.rho.to_bits() as i64,
                entry.rho_total.to_bits() as i64,
                entry.prev_hash,
                entry.hash,
                entry.rdp.as_ref().map(|c| c
                    .values()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>())
            ],
        )?;
        tx.execute(
            "INSERT INTO releases (task, round, payload) VALUES (?1, ?2, ?3)",
            params![self.t(), entry.round, released],
        )?;
        tx.execute(
            "UPDATE rounds SET status = 2 WHERE task = ?1 AND round = ?2",
            params![self.t(), entry.round],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT payload FROM releases WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT OR IGNORE INTO collect_responses (task, round, payload) VALUES (?1, ?2, ?3)",
            params![self.t(), round, response],
        )?;
        Ok(())
    }

    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT payload FROM collect_responses WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_store_keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let task = TaskId([1; 32]);
        let made = std::cell::Cell::new(0u32);
        let path = |n: u32| dir.path().join(format!("node-{n}.sqlite"));
        cairn_protocol::store::conformance::run_all(
            task,
            || {
                made.set(made.get() + 1);
                SqliteStore::open(&path(made.get())).unwrap().task(task, 3)
            },
            |store| {
                // A restart: the connection is closed and the file opened again.
                drop(store);
                SqliteStore::open(&path(made.get())).unwrap().task(task, 3)
            },
        );
    }

    #[test]
    fn every_commit_is_synced_to_disk() {
        // synchronous = FULL (2) with the WAL: an acknowledged report or a ledger entry
        // is on disk before the answer leaves.
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("n.sqlite")).unwrap();
        let conn = store.conn.lock().unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!((sync, mode.as_str()), (2, "wal"));
    }

    #[test]
    fn a_database_of_another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE rounds (task BLOB); PRAGMA user_version = 0;")
                .unwrap();
        }
        let err = SqliteStore::open(&path).err().unwrap();
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 0, .. }),
            "{err}"
        );
        // A new file gets the current version and reopens.
        let fresh = dir.path().join("new.sqlite");
        drop(SqliteStore::open(&fresh).unwrap());
        SqliteStore::open(&fresh).unwrap();
    }

    #[test]
    fn an_rdp_ledger_entry_survives_reopening_the_file() {
        use cairn_protocol::ledger::{Ledger, LedgerBudget, ReleaseCost};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let task = TaskId([8; 32]);
        let budget = LedgerBudget::Rdp {
            epsilon: 5.0,
            delta: 1e-6,
        };
        let curve = RdpCurve::subsampled_discrete_gaussian(1.0, 1.5, 0.1).unwrap();
        let mut ledger = Ledger::with_budget(task, &budget).unwrap();
        {
            let s = SqliteStore::open(&path).unwrap().task(task, 3);
            s.open_round(0, Time(1), 3).unwrap();
            let e = ledger
                .prepare(0, ReleaseCost::Rdp(curve.clone()), 4, Time(2))
                .unwrap();
            s.commit_release(&e, b"sealed").unwrap();
            ledger.commit(e).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap().task(task, 3);
        let entries = s.ledger().unwrap();
        assert_eq!(entries, ledger.entries());
        assert_eq!(entries[0].rdp.as_ref(), Some(&curve));
        let reloaded = Ledger::from_entries_with(task, &budget, entries).unwrap();
        assert_eq!(reloaded.rdp_epsilon_spent(), ledger.rdp_epsilon_spent());
    }
}
