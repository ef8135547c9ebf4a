//! The node's embedded store: SQLite, one database file per node.
//!
//! [`SqliteStore`] opens the database (WAL journal, `synchronous = FULL`: a committed
//! transaction survives power loss, which is what "an acknowledged report is never
//! lost" and "a spent budget is never forgotten" need) and hands out one
//! [`SqliteTaskStore`] per task, which implements the protocol's
//! [`TaskStore`](cairn_protocol::store::TaskStore). Every trait operation is one
//! SQLite transaction, so a node killed at any instant leaves either all of an
//! operation or none of it.
//!
//! Privacy budgets are the one thing that must never go backwards: ledger rows are
//! only ever inserted, ρ values are stored as the exact bits of their `f64`, and the
//! hash chain is re-verified whenever a task is loaded.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskId;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::ledger::LedgerEntry;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{
    CommitOutcome, JobRecord, PutOutcome, RoundRecord, RoundStatus, TaskStore, report_bytes_digest,
    report_digest, xor_into,
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
}

/// One node's database.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
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
    task BLOB NOT NULL, report_id BLOB NOT NULL,
    PRIMARY KEY (task, report_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rounds (
    task BLOB NOT NULL, round INTEGER NOT NULL, status INTEGER NOT NULL,
    opened_at INTEGER NOT NULL, count INTEGER NOT NULL, aggregate BLOB NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (task, round)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger (
    task BLOB NOT NULL, seq INTEGER NOT NULL, round INTEGER NOT NULL, time INTEGER NOT NULL,
    report_count INTEGER NOT NULL, rho_bits INTEGER NOT NULL, rho_total_bits INTEGER NOT NULL,
    prev_hash BLOB NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (task, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS releases (
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
        conn.execute_batch(SCHEMA)?;
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
                "SELECT status, opened_at, count, aggregate, digest FROM rounds WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((status, opened_at, count, aggregate, digest)) = row else {
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
            report_set_digest: to_array(&digest, "digest")?,
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

    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        report: &[u8],
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
        tx.execute(
            "INSERT INTO seen_reports (task, report_id, digest) VALUES (?1, ?2, ?3)",
            params![self.t(), report_id.0, digest],
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
            report_set_digest: [0; 32],
        };
        tx.execute(
            "INSERT INTO rounds (task, round, status, opened_at, count, aggregate, digest) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
            params![
                self.t(),
                round,
                status_code(RoundStatus::Open),
                i64::try_from(now.0).unwrap_or(i64::MAX),
                record.aggregate.encode(),
                record.report_set_digest
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
        let mut record = self
            .round_in(&tx, round)?
            .ok_or(StoreError::NotFound("round"))?;
        if record.status == RoundStatus::Released {
            return Err(StoreError::RoundReleased(round));
        }
        for id in accepted {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO aggregated (task, report_id) VALUES (?1, ?2)",
                params![self.t(), id.0],
            )?;
            if inserted == 0 {
                // Dropping the transaction rolls back everything above.
                return Err(StoreError::AlreadyAggregated(*id));
            }
            xor_into(&mut record.report_set_digest, &report_digest(id));
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
            "UPDATE rounds SET count = ?3, aggregate = ?4, digest = ?5 WHERE task = ?1 AND round = ?2",
            params![
                self.t(),
                round,
                record.count,
                record.aggregate.encode(),
                record.report_set_digest
            ],
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
            "SELECT seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash \
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
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (seq, round, time, report_count, rho, rho_total, prev, hash) = row?;
            entries.push(LedgerEntry {
                seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt("ledger seq".into()))?,
                round,
                time: Time(
                    u64::try_from(time).map_err(|_| StoreError::Corrupt("ledger time".into()))?,
                ),
                report_count,
                rho: f64::from_bits(rho as u64),
                rho_total: f64::from_bits(rho_total as u64),
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
            "INSERT INTO ledger (task, seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                self.t(),
                i64::try_from(entry.seq).map_err(|_| StoreError::Corrupt("ledger seq".into()))?,
                entry.round,
                i64::try_from(entry.time.0).unwrap_or(i64::MAX),
                entry.report_count,
                entry.rho.to_bits() as i64,
                entry.rho_total.to_bits() as i64,
                entry.prev_hash,
                entry.hash
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::field::{Field64, FieldElement};

    fn store() -> SqliteTaskStore {
        SqliteStore::open_in_memory()
            .unwrap()
            .task(TaskId([1; 32]), 3)
    }

    fn agg(v: [u64; 3]) -> Aggregate {
        let mut bytes = Vec::new();
        for x in v {
            bytes.extend_from_slice(&Field64::from_u64(x).as_u64().to_le_bytes());
        }
        Aggregate::decode(&bytes, 3).unwrap()
    }

    #[test]
    fn reports_are_stored_once_and_retries_are_told_from_replays() {
        let s = store();
        let id = ReportId([5; 16]);
        assert_eq!(s.put_report(0, id, b"abc").unwrap(), PutOutcome::Stored);
        assert_eq!(
            s.put_report(0, id, b"abc").unwrap(),
            PutOutcome::Duplicate { identical: true }
        );
        assert_eq!(
            s.put_report(1, id, b"xyz").unwrap(),
            PutOutcome::Duplicate { identical: false }
        );
        assert_eq!(s.report(id).unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(s.queued_reports(0, 10).unwrap(), vec![id]);
        assert_eq!(s.queued_rounds().unwrap(), vec![0]);
    }

    #[test]
    fn a_job_commits_once_and_drops_its_payloads() {
        let s = store();
        let ids = [ReportId([1; 16]), ReportId([2; 16])];
        for id in ids {
            s.put_report(4, id, &id.0).unwrap();
        }
        s.open_round(4, Time(10), 3).unwrap();
        let job = JobRecord {
            job_id: JobId([9; 16]),
            round: 4,
            reports: ids.to_vec(),
            accepted: None,
        };
        s.create_job(&job).unwrap();
        assert!(s.queued_reports(4, 10).unwrap().is_empty());
        s.decide_job(job.job_id, &ids[..1]).unwrap();
        assert_eq!(
            s.open_jobs().unwrap()[0].accepted.as_deref(),
            Some(&ids[..1])
        );
        let contribution = agg([1, 2, 3]);
        assert_eq!(
            s.commit_job(4, job.job_id, &ids[..1], &contribution)
                .unwrap(),
            CommitOutcome::Applied
        );
        assert_eq!(
            s.commit_job(4, job.job_id, &ids[..1], &contribution)
                .unwrap(),
            CommitOutcome::AlreadyCommitted
        );
        let r = s.round(4).unwrap().unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.aggregate, contribution);
        assert!(s.open_jobs().unwrap().is_empty());
        assert!(s.report(ids[0]).unwrap().is_none());
        assert!(s.is_aggregated(ids[0]).unwrap());
        assert!(!s.is_aggregated(ids[1]).unwrap());
        assert_eq!(s.job_committed(job.job_id).unwrap(), Some(1));
    }

    #[test]
    fn a_replayed_report_in_another_job_rolls_the_whole_commit_back() {
        let s = store();
        s.open_round(0, Time(0), 3).unwrap();
        let id = ReportId([3; 16]);
        s.commit_job(0, JobId([1; 16]), &[id], &agg([1, 1, 1]))
            .unwrap();
        let err = s
            .commit_job(0, JobId([2; 16]), &[ReportId([4; 16]), id], &agg([5, 5, 5]))
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyAggregated(_)));
        let r = s.round(0).unwrap().unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.aggregate, agg([1, 1, 1]));
        assert!(!s.is_aggregated(ReportId([4; 16])).unwrap());
    }

    #[test]
    fn ledger_and_release_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let task = TaskId([7; 32]);
        let mut ledger = cairn_protocol::ledger::Ledger::new(task, 1.0).unwrap();
        {
            let s = SqliteStore::open(&path).unwrap().task(task, 3);
            s.open_round(0, Time(1), 3).unwrap();
            let e = ledger.prepare_release(0, 0.25, 10, Time(2)).unwrap();
            s.commit_release(&e, b"sealed").unwrap();
            ledger.commit(e).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap().task(task, 3);
        let entries = s.ledger().unwrap();
        assert_eq!(entries, ledger.entries());
        let reloaded = cairn_protocol::ledger::Ledger::from_entries(task, 1.0, entries).unwrap();
        assert_eq!(reloaded.rho_spent(), 0.25);
        assert_eq!(s.release(0).unwrap().as_deref(), Some(&b"sealed"[..]));
        assert_eq!(s.round(0).unwrap().unwrap().status, RoundStatus::Released);
    }
}
