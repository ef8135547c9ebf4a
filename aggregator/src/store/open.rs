//! Opening the node's database: the schema, its version and the durability settings.

use super::*;

/// The page size of a database this build creates, in bytes.
pub(crate) const PAGE_SIZE: i64 = 16 << 10;

/// One node's database.
#[derive(Clone)]
pub struct SqliteStore {
    pub(super) conn: Arc<Mutex<Connection>>,
    /// A file-backed database's report files; `None` in memory.
    files: Option<Arc<ReportFiles>>,
}

/// The table that names each stored report's file (schema version 6).
const REPORT_FILES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS report_files (
    task BLOB NOT NULL, report_id BLOB NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (task, report_id),
    FOREIGN KEY (task, report_id) REFERENCES reports (task, report_id)) WITHOUT ROWID;
";

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
    job_id BLOB,
    PRIMARY KEY (task, report_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reports_queue ON reports (task, round, job_id);
CREATE TABLE IF NOT EXISTS report_payloads (
    task BLOB NOT NULL, report_id BLOB NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (task, report_id));
CREATE TABLE IF NOT EXISTS jobs (
    task BLOB NOT NULL, job_id BLOB NOT NULL, round INTEGER NOT NULL,
    report_ids BLOB NOT NULL, accepted BLOB, committed INTEGER NOT NULL DEFAULT 0,
    accepted_count INTEGER NOT NULL DEFAULT 0,
    lease_owner BLOB, lease_expires INTEGER,
    PRIMARY KEY (task, job_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aggregated (
    task BLOB NOT NULL, report_id BLOB NOT NULL, round INTEGER NOT NULL,
    PRIMARY KEY (task, report_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aggregated_by_round ON aggregated (task, round, report_id);
CREATE TABLE IF NOT EXISTS rounds (
    task BLOB NOT NULL, round INTEGER NOT NULL, status INTEGER NOT NULL,
    opened_at INTEGER NOT NULL, count INTEGER NOT NULL, aggregate BLOB NOT NULL,
    PRIMARY KEY (task, round));
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
    ///
    /// Reports' bytes go to files in the folder `<path>.reports` ([`ReportFiles`]);
    /// the files that no row names and that are older than
    /// [`ORPHAN_AGE`](super::report_files::ORPHAN_AGE) (left by a crash) are removed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        let mut store = Self::init(conn)?;
        let files = Arc::new(ReportFiles::beside(path));
        store.remove_orphan_files(&files)?;
        store.files = Some(files);
        Ok(store)
    }

    /// Removes the report files no row names ([`ReportFiles::remove_orphans`]) while
    /// holding the database's write lock: an upload checks that its file is there, and
    /// names it, under the same lock, so it never names a file removed here.
    fn remove_orphan_files(&self, files: &ReportFiles) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let referenced: std::collections::HashSet<String> =
            super::names_in(&tx, "SELECT name FROM report_files", [])?
                .into_iter()
                .collect();
        let removed = files.remove_orphans(&referenced, super::report_files::ORPHAN_AGE);
        tx.commit()?;
        if removed > 0 {
            tracing::info!(removed, dir = %files.dir().display(), "removed report files no row names (left by a crash)");
        }
        Ok(())
    }

    /// Opens an existing database read-only (reports, inspection): no schema change,
    /// no write, so it can run beside a live node (WAL lets readers in while it writes).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn = open_existing(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            files: Some(Arc::new(ReportFiles::beside(path))),
        })
    }

    /// Opens an existing database of this build's schema version without creating or
    /// migrating anything: for maintenance commands (`cairn db gc`), which may run
    /// beside a live node of an older version whose statements a migration would break.
    /// Removes report files no row names, as [`SqliteStore::open`] does.
    pub fn open_current(path: &Path) -> Result<Self, StoreError> {
        let conn = open_existing(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            return Err(if version < SCHEMA_VERSION {
                StoreError::NotMigrated {
                    found: version,
                    expected: SCHEMA_VERSION,
                }
            } else {
                StoreError::SchemaVersion {
                    found: version,
                    expected: SCHEMA_VERSION,
                }
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let files = Arc::new(ReportFiles::beside(path));
        let store = Self {
            conn: Arc::new(Mutex::new(conn)),
            files: Some(Arc::clone(&files)),
        };
        // A node that runs for months sweeps only when it starts; `cairn db gc` does too.
        store.remove_orphan_files(&files)?;
        Ok(store)
    }

    /// A private in-memory database (tests, `cairn demo` with no data directory).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        // Pages of 16 KiB for a new database (an existing one keeps its own: SQLite
        // sets the size when the file is first written). Reports are large blobs
        // stored in overflow pages, each written to the WAL, copied by the
        // checkpoint and read back by a job page by page: at d = 10^5 (~1 MB per
        // report) a store costs ~30% less CPU than with the default 4 KiB pages, a
        // report of ~3 KB ~7% more (`examples/profile_store.rs`, BENCHMARKS.md).
        // Must precede the switch to WAL, after which the size cannot change.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
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
        if has_tables && version == 2 {
            // Version 2 → 3: job leases (for leader processes sharing a store).
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 ALTER TABLE jobs ADD COLUMN lease_owner BLOB;
                 ALTER TABLE jobs ADD COLUMN lease_expires INTEGER;
                 PRAGMA user_version = 3;
                 COMMIT;",
            )?;
            return Self::init(conn);
        }
        if has_tables && version == 3 {
            migrate_report_payloads(&conn)?;
            return Self::init(conn);
        }
        if has_tables && version == 4 {
            migrate_rounds_to_rowid(&conn)?;
            return Self::init(conn);
        }
        if has_tables && version == 5 {
            // Version 5 → 6: reports' bytes in files of their own (`report_files`);
            // those stored before stay in `report_payloads`, read from there.
            migration_step(&conn, 5, REPORT_FILES_TABLE, "report_files", "")?;
            return Self::init(conn);
        }
        if (has_tables || version != 0) && version != SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                found: version,
                expected: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(REPORT_FILES_TABLE)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            files: None,
        })
    }

    /// The store of one task.
    pub fn task(&self, task_id: TaskId, dimension: usize) -> SqliteTaskStore {
        SqliteTaskStore {
            conn: Arc::clone(&self.conn),
            files: self.files.clone(),
            task: task_id,
            dimension,
        }
    }
}

/// Opens a database file that must already exist (`mode`: read-only or read-write),
/// waiting up to 5 s for a writer's lock.
fn open_existing(path: &Path, mode: rusqlite::OpenFlags) -> Result<Connection, StoreError> {
    let flags =
        mode | rusqlite::OpenFlags::SQLITE_OPEN_URI | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Schema version 3 → 4: a report's payload moves out of `reports` into the rowid table
/// `report_payloads`. `reports` is a `WITHOUT ROWID` table, which SQLite stores as an
/// index B-tree whose key is the whole row: a seek that meets a row too large for its
/// page read the whole row (the payload, about 1 MiB at d = 10^5) to compare keys, and
/// setting a report's `job_id` rewrote it. A rowid table reads a payload's overflow
/// pages only when the payload itself is read.
fn migrate_report_payloads(conn: &Connection) -> Result<(), StoreError> {
    migration_step(
        conn,
        3,
        "CREATE TABLE IF NOT EXISTS report_payloads (
             task BLOB NOT NULL, report_id BLOB NOT NULL, payload BLOB NOT NULL,
             PRIMARY KEY (task, report_id));",
        "reports",
        "INSERT INTO report_payloads (task, report_id, payload)
             SELECT task, report_id, payload FROM reports;
         CREATE TABLE reports_v4 (
             task BLOB NOT NULL, report_id BLOB NOT NULL, round INTEGER NOT NULL,
             job_id BLOB,
             PRIMARY KEY (task, report_id)) WITHOUT ROWID;
         INSERT INTO reports_v4 (task, report_id, round, job_id)
             SELECT task, report_id, round, job_id FROM reports;
         DROP TABLE reports;
         ALTER TABLE reports_v4 RENAME TO reports;",
    )
}

/// Schema version 4 → 5: `rounds` becomes a rowid table, for the reason of
/// [`migrate_report_payloads`]: its row holds the round's running aggregate (8·d bytes),
/// and as a `WITHOUT ROWID` row every lookup of the round, such as each upload's
/// check that the round is open, read all of it to compare keys.
///
/// The table is copied in one transaction, so a crash leaves version 4 whole. Rounds
/// are kept for good, each with its aggregate: on a node with many rounds at a large
/// d the copy takes a while and, until the next checkpoint, as much room again in the
/// write-ahead log; another process opening the file meanwhile gives up after the 5 s
/// busy timeout ("database is locked") and can simply be started again.
fn migrate_rounds_to_rowid(conn: &Connection) -> Result<(), StoreError> {
    migration_step(
        conn,
        4,
        "",
        "rounds",
        "CREATE TABLE rounds_v5 (
             task BLOB NOT NULL, round INTEGER NOT NULL, status INTEGER NOT NULL,
             opened_at INTEGER NOT NULL, count INTEGER NOT NULL, aggregate BLOB NOT NULL,
             PRIMARY KEY (task, round));
         INSERT INTO rounds_v5 (task, round, status, opened_at, count, aggregate)
             SELECT task, round, status, opened_at, count, aggregate FROM rounds;
         DROP TABLE rounds;
         ALTER TABLE rounds_v5 RENAME TO rounds;",
    )
}

/// One schema step, version `from` → `from + 1`, in one transaction that takes the
/// write lock first: two processes may open the file at once, and the one that gets
/// the lock second finds the version moved on and does nothing. Runs `always`, then
/// `if_table` when the table `table` exists, then sets the new version.
fn migration_step(
    conn: &Connection,
    from: i64,
    always: &str,
    table: &str,
    if_table: &str,
) -> Result<(), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != from {
        return Ok(());
    }
    let has_table: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [table],
        |r| r.get(0),
    )?;
    tx.execute_batch(always)?;
    if has_table {
        tx.execute_batch(if_table)?;
    }
    tx.pragma_update(None, "user_version", from + 1)?;
    tx.commit()?;
    Ok(())
}
