//! Tests of `store`.

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
fn a_new_database_has_large_pages_and_an_old_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |store: &SqliteStore| -> i64 {
        store
            .conn
            .lock()
            .unwrap()
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap()
    };
    let new = dir.path().join("new.sqlite");
    assert_eq!(
        page_size(&SqliteStore::open(&new).unwrap()),
        open::PAGE_SIZE
    );
    assert_eq!(
        page_size(&SqliteStore::open(&new).unwrap()),
        open::PAGE_SIZE,
        "reopened"
    );
    // A database written before, with SQLite's default pages: opened, migrated to
    // nothing, and used as it is.
    let old = dir.path().join("old.sqlite");
    {
        let conn = Connection::open(&old).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    let store = SqliteStore::open(&old).unwrap();
    assert_eq!(page_size(&store), 4096);
    let task = store.task(TaskId([4; 32]), 3);
    task.put_report(0, ReportId([1; 16]), ClientId([1; 16]), &[7; 50_000], 10)
        .unwrap();
    assert_eq!(
        task.report(ReportId([1; 16])).unwrap().unwrap(),
        vec![7; 50_000]
    );
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
    let curve = cairn_dp::rdp::RdpCurve::subsampled_discrete_gaussian(1.0, 1.5, 0.1).unwrap();
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

#[test]
fn a_version_2_database_gains_job_leases_in_place() {
    use cairn_protocol::auth::ClientId;
    use cairn_protocol::clock::Time;
    use cairn_protocol::ids::{JobId, ReportId};
    use cairn_protocol::store::JobRecord;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        // The jobs table as schema version 2 made it (no lease columns).
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE jobs (
                task BLOB NOT NULL, job_id BLOB NOT NULL, round INTEGER NOT NULL,
                report_ids BLOB NOT NULL, accepted BLOB, committed INTEGER NOT NULL DEFAULT 0,
                accepted_count INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (task, job_id)) WITHOUT ROWID;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let task = TaskId([4; 32]);
    let store = SqliteStore::open(&path).unwrap().task(task, 3);
    store
        .put_report(0, ReportId([1; 16]), ClientId([1; 16]), &[1], 10)
        .unwrap();
    let job = JobRecord {
        job_id: JobId([2; 16]),
        round: 0,
        reports: vec![ReportId([1; 16])],
        accepted: None,
    };
    store.create_job(&job).unwrap();
    assert!(
        store
            .lease_job(job.job_id, [1; 16], Time(0), Time(30))
            .unwrap()
    );
    assert!(
        !store
            .lease_job(job.job_id, [2; 16], Time(10), Time(40))
            .unwrap()
    );
    let conn = store.conn.lock().unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_version_3_database_keeps_its_queued_reports_when_payloads_move_to_their_own_table() {
    use cairn_protocol::ids::ReportId;
    use cairn_protocol::store::TaskStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.sqlite");
    let task = TaskId([5; 32]);
    {
        let conn = version_3_reports(&path);
        conn.execute(
            "INSERT INTO reports (task, report_id, round, job_id, payload) \
             VALUES (?1, ?2, 7, NULL, ?3)",
            rusqlite::params![task.0, [1u8; 16], vec![9u8; 100_000]],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap().task(task, 3);
    assert_eq!(store.queued_rounds().unwrap(), vec![7]);
    assert_eq!(
        store.queued_reports(7, 10).unwrap(),
        vec![ReportId([1; 16])]
    );
    assert_eq!(
        store.report(ReportId([1; 16])).unwrap(),
        Some(vec![9u8; 100_000])
    );
    let conn = store.conn.lock().unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('reports')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!columns.contains(&"payload".to_owned()), "{columns:?}");
}

#[test]
fn a_committed_job_leaves_no_payload_behind() {
    use cairn_protocol::auth::ClientId;
    use cairn_protocol::clock::Time;
    use cairn_protocol::ids::{JobId, ReportId};
    use cairn_protocol::scheme::Aggregate;
    use cairn_protocol::store::{JobRecord, TaskStore};

    let store = SqliteStore::open_in_memory()
        .unwrap()
        .task(TaskId([6; 32]), 3);
    for b in 1..=2u8 {
        store
            .put_report(0, ReportId([b; 16]), ClientId([b; 16]), &[b; 64], 10)
            .unwrap();
    }
    store.open_round(0, Time(1), 3).unwrap();
    let job = JobRecord {
        job_id: JobId([9; 16]),
        round: 0,
        reports: vec![ReportId([1; 16])],
        accepted: None,
    };
    store.create_job(&job).unwrap();
    store
        .commit_job(0, job.job_id, &[ReportId([1; 16])], &Aggregate::zero(3))
        .unwrap();
    let payloads: Vec<Vec<u8>> = store
        .conn
        .lock()
        .unwrap()
        .prepare("SELECT report_id FROM report_payloads")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        payloads,
        vec![vec![2u8; 16]],
        "only the queued report's payload is left"
    );
    assert_eq!(
        store.report(ReportId([2; 16])).unwrap(),
        Some(vec![2u8; 64])
    );
}

#[test]
fn a_maintenance_open_neither_creates_nor_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.sqlite");
    assert!(
        SqliteStore::open_current(&path).is_err(),
        "no file: nothing created"
    );
    assert!(!path.exists());
    version_3_reports(&path);
    let Err(e) = SqliteStore::open_current(&path) else {
        panic!("a version 3 file was opened as current");
    };
    assert!(matches!(e, StoreError::NotMigrated { found: 3, .. }), "{e}");
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3, "left as it was");
    drop(conn);
    SqliteStore::open(&path).unwrap();
    assert!(
        SqliteStore::open_current(&path).is_ok(),
        "once the node migrated it"
    );
}

#[test]
fn a_version_4_database_keeps_its_rounds_when_they_become_a_rowid_table() {
    use cairn_protocol::clock::Time;
    use cairn_protocol::scheme::Aggregate;
    use cairn_protocol::store::{RoundStatus, TaskStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.sqlite");
    let task = TaskId([6; 32]);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE rounds (
                task BLOB NOT NULL, round INTEGER NOT NULL, status INTEGER NOT NULL,
                opened_at INTEGER NOT NULL, count INTEGER NOT NULL, aggregate BLOB NOT NULL,
                PRIMARY KEY (task, round)) WITHOUT ROWID;
             PRAGMA user_version = 4;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO rounds (task, round, status, opened_at, count, aggregate) \
             VALUES (?1, 7, 1, 1234, 4, ?2)",
            rusqlite::params![task.0, Aggregate::zero(3).encode()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap().task(task, 3);
    let round = store.round(7).unwrap().expect("the round survives");
    assert_eq!(round.status, RoundStatus::Closed);
    assert_eq!(round.opened_at, Time(1234));
    assert_eq!(round.count, 4);
    assert_eq!(round.aggregate, Aggregate::zero(3));
    assert_eq!(
        store.open_round(7, Time(9999), 3).unwrap(),
        round.state(),
        "opening again returns the stored state"
    );
    let conn = store.conn.lock().unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'rounds'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
}

/// A database file at `path` with `reports` as schema version 3 made it: the payload
/// in the WITHOUT ROWID row.
fn version_3_reports(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE reports (
            task BLOB NOT NULL, report_id BLOB NOT NULL, round INTEGER NOT NULL,
            job_id BLOB, payload BLOB NOT NULL,
            PRIMARY KEY (task, report_id)) WITHOUT ROWID;
         CREATE INDEX reports_queue ON reports (task, round, job_id);
         PRAGMA user_version = 3;",
    )
    .unwrap();
    conn
}

#[test]
fn a_report_digest_stored_as_sha256_by_an_earlier_version_still_recognises_its_retry() {
    use cairn_protocol::auth::ClientId;
    use cairn_protocol::ids::ReportId;
    use cairn_protocol::store::{PutOutcome, TaskStore};
    use sha2::Digest;

    let store = SqliteStore::open_in_memory()
        .unwrap()
        .task(TaskId([7; 32]), 3);
    let (id, client, report) = (ReportId([1; 16]), ClientId([2; 16]), vec![5u8; 300]);
    assert_eq!(
        store.put_report(0, id, client, &report, 10).unwrap(),
        PutOutcome::Stored
    );
    // As a database written before reports were hashed with BLAKE3 holds it.
    let sha256 = sha2::Sha256::digest(&report).to_vec();
    store
        .conn
        .lock()
        .unwrap()
        .execute("UPDATE seen_reports SET digest = ?1", params![sha256])
        .unwrap();
    let again = |bytes: &[u8]| store.put_report(0, id, client, bytes, 10).unwrap();
    assert_eq!(again(&report), PutOutcome::Duplicate { identical: true });
    assert_eq!(
        again(&[6u8; 300]),
        PutOutcome::Duplicate { identical: false }
    );
}

thread_local! {
    /// What [`SqliteTaskStore::report`] runs, once, between reading a report's file
    /// name (with the connection released) and reading the file: another connection's
    /// work, interleaved exactly there.
    static BETWEEN_NAME_AND_FILE: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// What a batch of uploads runs, once, between writing its files and its
    /// transaction: another connection's uploads, interleaved exactly there.
    static BEFORE_BATCH_TRANSACTION: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
    /// How many report files batches wrote on this thread.
    pub(super) static BATCH_FILES_WRITTEN: std::cell::Cell<usize> =
        const { std::cell::Cell::new(0) };
}

/// Called by the batch path of `put_reports` at that point (tests only).
pub(super) fn before_batch_transaction(files_written: usize) {
    BATCH_FILES_WRITTEN.with(|n| n.set(n.get() + files_written));
    if let Some(interleaved) = BEFORE_BATCH_TRANSACTION.with(|h| h.borrow_mut().take()) {
        interleaved();
    }
}

/// Called by [`SqliteTaskStore::report`] at that point (tests only).
pub(super) fn between_name_and_file() {
    if let Some(interleaved) = BETWEEN_NAME_AND_FILE.with(|h| h.borrow_mut().take()) {
        interleaved();
    }
}

/// A file-backed store of task `[7; 32]` at d = 3 in a fresh folder (kept while the
/// first value lives), and its database's path.
fn file_store() -> (tempfile::TempDir, std::path::PathBuf, SqliteTaskStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.sqlite");
    let store = SqliteStore::open(&path).unwrap().task(TaskId([7; 32]), 3);
    (dir, path, store)
}

/// Stores `bytes` as report `[1; 16]` of client `[2; 16]` in round 0; its id.
fn store_one(store: &SqliteTaskStore, bytes: &[u8]) -> ReportId {
    let id = ReportId([1; 16]);
    assert_eq!(
        store
            .put_report(0, id, ClientId([2; 16]), bytes, 10)
            .unwrap(),
        PutOutcome::Stored
    );
    id
}

/// Opens round 0 and records job `[9; 16]` of report `id` alone; the job's id.
fn record_job_of(store: &SqliteTaskStore, id: ReportId) -> JobId {
    store.open_round(0, Time(0), 3).unwrap();
    let job = JobRecord {
        job_id: JobId([9; 16]),
        round: 0,
        reports: vec![id],
        accepted: None,
    };
    store.create_job(&job).unwrap();
    job.job_id
}

/// The report files of `path`'s database, by name.
fn report_file_names(path: &Path) -> Vec<String> {
    let dir = report_files::ReportFiles::beside(path);
    let mut names: Vec<String> = match std::fs::read_dir(dir.dir()) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn zero_aggregate() -> Aggregate {
    Aggregate::decode(&[0u8; 24], 3).unwrap()
}

#[test]
fn a_report_lives_in_a_file_of_its_own_until_its_job_commits() {
    let (_dir, path, store) = file_store();
    let (id, report) = (ReportId([1; 16]), vec![5u8; 100_000]);
    assert_eq!(
        store
            .put_report(0, id, ClientId([2; 16]), &report, 10)
            .unwrap(),
        PutOutcome::Stored
    );
    let names = report_file_names(&path);
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with(&hex::encode(id.0)), "{names:?}");
    let in_table: i64 = store
        .lock()
        .query_row("SELECT COUNT(*) FROM report_payloads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_table, 0, "the bytes are not in the database");
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&report[..]));
    // Read after a restart too.
    let store = SqliteStore::open(&path).unwrap().task(TaskId([7; 32]), 3);
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&report[..]));

    let job_id = record_job_of(&store, id);
    store.decide_job(job_id, &[id]).unwrap();
    assert_eq!(
        store
            .commit_job(0, job_id, &[id], &zero_aggregate())
            .unwrap(),
        CommitOutcome::Applied
    );
    assert!(report_file_names(&path).is_empty(), "removed with its row");
    assert_eq!(store.report(id).unwrap(), None);
    let named: i64 = store
        .lock()
        .query_row("SELECT COUNT(*) FROM report_files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(named, 0);
}

#[test]
fn an_upload_that_is_not_stored_leaves_no_file_behind() {
    let (_dir, path, store) = file_store();
    let (id, client) = (ReportId([1; 16]), ClientId([2; 16]));
    assert_eq!(
        store.put_report(0, id, client, &[1; 500], 2).unwrap(),
        PutOutcome::Stored
    );
    let stored = report_file_names(&path);
    let outcomes = [
        // A retry, and a replay of the id with other bytes.
        store.put_report(0, id, client, &[1; 500], 2).unwrap(),
        store.put_report(0, id, client, &[2; 500], 2).unwrap(),
        // The client's second report of the round.
        store
            .put_report(0, ReportId([3; 16]), client, &[3; 500], 2)
            .unwrap(),
    ];
    assert_eq!(
        outcomes,
        [
            PutOutcome::Duplicate { identical: true },
            PutOutcome::Duplicate { identical: false },
            PutOutcome::ClientAlreadySubmitted,
        ]
    );
    assert_eq!(
        store
            .put_report(0, ReportId([4; 16]), ClientId([4; 16]), &[4; 500], 1)
            .unwrap(),
        PutOutcome::RoundFull
    );
    assert_eq!(
        report_file_names(&path),
        stored,
        "only the stored report's file"
    );
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&[1u8; 500][..]));
}

#[test]
fn files_left_by_a_crash_are_removed_once_old_and_those_in_flight_are_not() {
    let (_dir, path, store) = file_store();
    let id = store_one(&store, &[1; 700]);
    let files = report_files::ReportFiles::beside(&path);
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let age = |name: &str| {
        std::fs::File::options()
            .write(true)
            .open(files.dir().join(name))
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    };
    // The stored report's file, old but named by its row: kept.
    let stored = report_file_names(&path).pop().unwrap();
    age(&stored);
    // A crash between a file's sync and its row's commit, long ago: removed.
    let orphan = format!("{}-{:016x}", hex::encode([8u8; 16]), 1);
    std::fs::write(files.dir().join(&orphan), b"orphan").unwrap();
    age(&orphan);
    // An upload in flight in another process: young, kept.
    let in_flight = format!("{}-{:016x}", hex::encode([9u8; 16]), 2);
    std::fs::write(files.dir().join(&in_flight), b"in flight").unwrap();
    // Not a report file's name: never touched.
    std::fs::write(files.dir().join("notes.txt"), b"operator's").unwrap();
    age("notes.txt");
    drop(store);

    let store = SqliteStore::open(&path).unwrap().task(TaskId([7; 32]), 3);
    let mut expected = vec![in_flight, "notes.txt".to_owned(), stored];
    expected.sort();
    assert_eq!(report_file_names(&path), expected);
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&[1u8; 700][..]));
}

/// A missing report file is a clear error, one the leader tells apart as lost
/// (`is_report_lost`: it refuses that report's job alone rather than fail every job
/// at every try); a missing folder, or a malformed name, is an error of another kind.
#[test]
fn a_missing_report_file_is_a_clear_error_and_a_malformed_name_never_becomes_a_path() {
    let (_dir, path, store) = file_store();
    let id = store_one(&store, &[1; 700]);
    let name = report_file_names(&path).pop().unwrap();
    let files = report_files::ReportFiles::beside(&path);
    std::fs::remove_file(files.dir().join(&name)).unwrap();
    let err = store.report(id).unwrap_err();
    assert!(
        matches!(&err, StoreError::ReportLost { path } if path.ends_with(&name)),
        "{err}"
    );
    assert!(err.to_string().contains(&name), "{err}");
    assert!(store.is_report_lost(&err), "{err}");
    // The whole folder missing (a mount not up yet) may pass: no report is lost.
    let moved = path.with_extension("moved");
    std::fs::rename(files.dir(), &moved).unwrap();
    let err = store.report(id).unwrap_err();
    assert!(!store.is_report_lost(&err), "{err}");
    assert!(err.to_string().contains("folder"), "{err}");
    std::fs::rename(&moved, files.dir()).unwrap();

    store
        .lock()
        .execute("UPDATE report_files SET name = '../n.sqlite'", [])
        .unwrap();
    let err = store.report(id).unwrap_err();
    assert!(
        err.to_string().contains("not the name of a report file"),
        "{err}"
    );
    assert!(!store.is_report_lost(&err), "{err}");
}

#[test]
fn a_version_5_database_keeps_its_reports_bytes_in_the_table_and_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.sqlite");
    let task = TaskId([7; 32]);
    let (id, report) = (ReportId([1; 16]), vec![3u8; 900]);
    {
        // A database of version 5: reports' bytes in `report_payloads`.
        let store = SqliteStore::open(&path).unwrap();
        let conn = store.conn.lock().unwrap();
        conn.execute_batch("DROP TABLE report_files; PRAGMA user_version = 5;")
            .unwrap();
        conn.execute(
            "INSERT INTO reports (task, report_id, round, job_id) VALUES (?1, ?2, 0, NULL)",
            params![task.0, id.0],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO report_payloads (task, report_id, payload) VALUES (?1, ?2, ?3)",
            params![task.0, id.0, report],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap().task(task, 3);
    let version: i64 = store
        .lock()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&report[..]));
    // A report stored now goes to a file.
    store
        .put_report(0, ReportId([2; 16]), ClientId([2; 16]), &[4; 900], 10)
        .unwrap();
    assert_eq!(report_file_names(&path).len(), 1);
}

#[test]
fn retention_removes_the_files_of_the_reports_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.sqlite");
    let task = TaskId([7; 32]);
    let store = SqliteStore::open(&path).unwrap().task(task, 3);
    // Queued, never in a job: only retention deletes it.
    let id = ReportId([4; 16]);
    store
        .put_report(0, id, ClientId([4; 16]), &[4; 800], 10)
        .unwrap();
    store.open_round(0, Time(1), 3).unwrap();
    store.close_round(0).unwrap();
    let ledger = cairn_protocol::ledger::Ledger::new(task, 1.0).unwrap();
    let entry = ledger.prepare_release(0, 0.25, 1, Time(2)).unwrap();
    store.commit_release(&entry, b"released").unwrap();
    store.put_collect_response(0, b"answer").unwrap();
    assert_eq!(report_file_names(&path).len(), 1);

    assert!(store.collect_garbage(0, GarbageScope::Collected).unwrap() > 0);
    assert!(report_file_names(&path).is_empty());
    assert_eq!(store.report(id).unwrap(), None);
}

#[test]
fn an_upload_whose_transaction_fails_before_its_commit_leaves_no_file() {
    let (_dir, path, store) = file_store();
    store
        .lock()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON report_files \
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    let err = store
        .put_report(0, ReportId([1; 16]), ClientId([2; 16]), &[1; 600], 10)
        .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(report_file_names(&path).is_empty());
}

#[test]
fn a_job_commit_that_fails_keeps_its_reports_files() {
    let (_dir, path, store) = file_store();
    let id = store_one(&store, &[1; 600]);
    let job_id = record_job_of(&store, id);
    store
        .lock()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE DELETE ON reports \
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    assert!(
        store
            .commit_job(0, job_id, &[id], &zero_aggregate())
            .is_err()
    );
    assert_eq!(
        report_file_names(&path).len(),
        1,
        "rolled back: the file stays"
    );
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&[1u8; 600][..]));
}

#[test]
fn an_upload_whose_file_was_swept_as_an_orphan_before_its_row_fails_instead_of_being_acknowledged()
{
    let (_dir, path, store) = file_store();
    let files = report_files::ReportFiles::beside(&path);
    let id = ReportId([1; 16]);
    // The upload wrote and synced its file, then stalled past the orphans' age while
    // another process opened the database and swept the file.
    let pending = files.write(id, &[1; 600]).unwrap();
    std::fs::remove_file(files.dir().join(pending.name())).unwrap();
    let outcome = store.sqlite_put_report_row(
        0,
        id,
        ClientId([2; 16]),
        &[1; 600],
        Some(pending.name()),
        &report_bytes_digest(&[1; 600]),
        10,
    );
    assert!(
        matches!(outcome, Err(admission::PutFailure::Before(_))),
        "{outcome:?}"
    );
    assert_eq!(store.report(id).unwrap(), None, "nothing was stored");
    // The client's retry is stored whole.
    assert_eq!(
        store
            .put_report(0, id, ClientId([2; 16]), &[1; 600], 10)
            .unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(store.report(id).unwrap().as_deref(), Some(&[1u8; 600][..]));
}

#[cfg(unix)]
#[test]
fn report_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path, store) = file_store();
    store
        .put_report(0, ReportId([1; 16]), ClientId([2; 16]), &[1; 600], 10)
        .unwrap();
    let files = report_files::ReportFiles::beside(&path);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(files.dir()), 0o700);
    let name = report_file_names(&path).pop().unwrap();
    assert_eq!(mode(&files.dir().join(name)), 0o600);
}

#[test]
fn a_missing_file_reads_as_none_and_a_name_for_another_report_is_refused() {
    let (_dir, path, store) = file_store();
    let id = store_one(&store, &[1; 600]);
    let files = report_files::ReportFiles::beside(&path);
    let name = report_file_names(&path).pop().unwrap();
    // As a job's commit does between the read of the name and of the file: the row
    // goes, then the file.
    store
        .lock()
        .execute_batch("DELETE FROM report_files; DELETE FROM reports;")
        .unwrap();
    std::fs::remove_file(files.dir().join(&name)).unwrap();
    assert_eq!(files.read(id, &name).unwrap(), None);
    assert_eq!(store.report(id).unwrap(), None);
    // A name that is not this report's is refused.
    assert!(files.read(ReportId([2; 16]), &name).is_err());
}

/// The race the read of a report leaves open, interleaved for real: another
/// connection commits the report's job (deleting its row, then unlinking its file)
/// after `report` read the file's name and before it reads the file. The report reads
/// as gone, as every store answers for a committed report; the same interleaving
/// with only the file gone (lost outside cairn, its row still there) is an error.
#[test]
fn a_job_committed_between_the_name_and_the_file_reads_as_gone() {
    let (_dir, path, store) = file_store();
    let id = store_one(&store, &[3; 700]);
    let job_id = record_job_of(&store, id);
    store.decide_job(job_id, &[id]).unwrap();
    let other_path = path.clone();
    BETWEEN_NAME_AND_FILE.with(|h| {
        *h.borrow_mut() = Some(Box::new(move || {
            let other = SqliteStore::open(&other_path)
                .unwrap()
                .task(TaskId([7; 32]), 3);
            assert_eq!(
                other
                    .commit_job(0, job_id, &[id], &zero_aggregate())
                    .unwrap(),
                CommitOutcome::Applied
            );
        }))
    });
    assert_eq!(store.report(id).unwrap(), None);
    assert!(
        report_file_names(&path).is_empty(),
        "the commit unlinked the file"
    );
    assert!(
        BETWEEN_NAME_AND_FILE.with(|h| h.borrow().is_none()),
        "the interleaved commit ran"
    );

    // Only the file gone, its row still naming it: a loud error, never `None`.
    let id = ReportId([4; 16]);
    assert_eq!(
        store
            .put_report(0, id, ClientId([5; 16]), &[6; 700], 10)
            .unwrap(),
        PutOutcome::Stored
    );
    let dir = report_files::ReportFiles::beside(&path).dir().to_path_buf();
    let name = report_file_names(&path).pop().unwrap();
    BETWEEN_NAME_AND_FILE.with(|h| {
        *h.borrow_mut() = Some(Box::new(move || {
            std::fs::remove_file(dir.join(name)).unwrap()
        }))
    });
    assert!(matches!(
        store.report(id),
        Err(StoreError::ReportLost { .. })
    ));
}

/// A batch of uploads on a file-backed store (its files written, then synced
/// together, then one transaction): the store contract's batch check, after which
/// only the six stored reports have files (the files of uploads the transaction
/// refused, as duplicates within the batch, are removed), and they read back after a
/// restart.
#[test]
fn a_batch_of_uploads_leaves_a_file_for_each_stored_report_only() {
    let (_dir, path, store) = file_store();
    let store =
        cairn_protocol::store::conformance::a_batch_of_uploads_is_answered_as_if_put_in_turn(store);
    assert_eq!(report_file_names(&path).len(), 6);
    drop(store);
    let store = SqliteStore::open(&path).unwrap().task(TaskId([7; 32]), 3);
    assert_eq!(
        store.report(ReportId([7; 16])).unwrap().as_deref(),
        Some(&b"seven"[..])
    );
    assert_eq!(store.queued_reports(0, 10).unwrap().len(), 4);
}

/// A batch writes no file for an upload that an earlier upload of the same batch
/// refuses (the same report id, the same client in a round, a round the earlier ones
/// fill): a client cannot make the leader write and sync files only to throw them
/// away. The contract's batches store five reports between them and refuse ten
/// uploads, five of them for their own batch's earlier uploads (four of those pass
/// the checks against the database); they write five files, where nine were written
/// before.
#[test]
fn a_batch_writes_no_file_for_an_upload_its_own_earlier_uploads_refuse() {
    let (_dir, _path, store) = file_store();
    BATCH_FILES_WRITTEN.with(|n| n.set(0));
    let _store =
        cairn_protocol::store::conformance::a_batch_of_uploads_is_answered_as_if_put_in_turn(store);
    assert_eq!(BATCH_FILES_WRITTEN.with(std::cell::Cell::get), 5);
}

/// Puts `batch` (round 0, at most 10 reports a round) on `store`, whose database is at
/// `path`, while another connection to it stores `interleaved` in round 0 between the
/// batch's file writes and its transaction; the batch's answers.
fn put_batch_with_an_upload_in_between(
    path: &std::path::Path,
    store: &SqliteTaskStore,
    interleaved: (ReportId, ClientId, &'static [u8]),
    batch: &[(ReportId, ClientId, &'static [u8])],
) -> Vec<PutOutcome> {
    let other = path.to_path_buf();
    BEFORE_BATCH_TRANSACTION.with(|h| {
        *h.borrow_mut() = Some(Box::new(move || {
            let store = SqliteStore::open(&other).unwrap().task(TaskId([7; 32]), 3);
            let (report_id, client_id, bytes) = interleaved;
            assert_eq!(
                store
                    .put_report(0, report_id, client_id, bytes, 10)
                    .unwrap(),
                PutOutcome::Stored
            );
        }))
    });
    let batch: Vec<NewReport<'_>> = batch
        .iter()
        .map(|&(report_id, client_id, report)| NewReport {
            round: 0,
            report_id,
            client_id,
            report,
        })
        .collect();
    store
        .put_reports(&batch, 10)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// An upload shadowed in its batch (no file written) whose earlier twin is refused in
/// the transaction after all, because another connection's upload came in between, is
/// stored with its bytes in the database, and reads back.
#[test]
fn a_shadowed_upload_stored_after_all_keeps_its_bytes_in_the_database() {
    let (_dir, path, store) = file_store();
    let twin = ReportId([20; 16]);
    // Client 21's report for round 0, by another connection: the batch's upload of
    // client 21 is then its second, refused, and the upload it shadowed is stored.
    let outcomes = put_batch_with_an_upload_in_between(
        &path,
        &store,
        (ReportId([40; 16]), ClientId([21; 16]), b"first"),
        &[
            (twin, ClientId([21; 16]), b"twin"),
            (twin, ClientId([22; 16]), b"shadowed"),
        ],
    );
    assert_eq!(
        outcomes,
        vec![PutOutcome::ClientAlreadySubmitted, PutOutcome::Stored]
    );
    assert_eq!(
        store.report(twin).unwrap().as_deref(),
        Some(&b"shadowed"[..])
    );
    // One file: client 21's first report's; the shadowed upload's bytes are a row.
    assert_eq!(report_file_names(&path).len(), 1);
    drop(store);
    let store = SqliteStore::open(&path).unwrap().task(TaskId([7; 32]), 3);
    assert_eq!(
        store.report(twin).unwrap().as_deref(),
        Some(&b"shadowed"[..])
    );
    // A job that commits both reports deletes the row and the file alike.
    store
        .open_round(0, cairn_protocol::clock::Time(1), 3)
        .unwrap();
    let reports = vec![twin, ReportId([40; 16])];
    let job = cairn_protocol::store::JobRecord {
        job_id: cairn_protocol::ids::JobId([9; 16]),
        round: 0,
        reports: reports.clone(),
        accepted: None,
    };
    store.create_job(&job).unwrap();
    store
        .commit_job(
            0,
            job.job_id,
            &reports,
            &cairn_protocol::scheme::Aggregate::zero(3),
        )
        .unwrap();
    assert!(store.report(twin).unwrap().is_none());
    let payloads: i64 = store
        .conn
        .lock()
        .unwrap()
        .query_row("SELECT COUNT(*) FROM report_payloads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(payloads, 0, "the shadowed report's bytes went with its job");
    assert!(report_file_names(&path).is_empty());
}

/// The same, for an upload shadowed by an earlier upload of its client: the earlier
/// one's report id is stored by another connection in between, so it is a replay, and
/// the client's later upload is its first report of the round.
#[test]
fn an_upload_shadowed_by_its_clients_earlier_one_is_stored_when_that_one_is_a_replay() {
    let (_dir, path, store) = file_store();
    let client = ClientId([21; 16]);
    let outcomes = put_batch_with_an_upload_in_between(
        &path,
        &store,
        (ReportId([20; 16]), ClientId([50; 16]), b"taken"),
        &[
            (ReportId([20; 16]), client, b"twin"),
            (ReportId([23; 16]), client, b"shadowed"),
        ],
    );
    assert_eq!(
        outcomes,
        vec![
            PutOutcome::Duplicate { identical: false },
            PutOutcome::Stored
        ]
    );
    assert_eq!(
        store.report(ReportId([23; 16])).unwrap().as_deref(),
        Some(&b"shadowed"[..])
    );
    assert_eq!(report_file_names(&path).len(), 1);
}

/// A batch whose every upload is refused by the checks writes nothing, and needs no
/// reports folder: on a fresh database, where no file made the folder yet, it is
/// answered upload by upload (it used to open and sync the missing folder, and fail
/// every upload).
#[test]
fn a_batch_with_nothing_to_write_is_answered_on_a_fresh_database() {
    let (_dir, _path, store) = file_store();
    let up = |i: u8| NewReport {
        round: 0,
        report_id: ReportId([i; 16]),
        client_id: ClientId([i; 16]),
        report: b"full",
    };
    let outcomes: Vec<PutOutcome> = store
        .put_reports(&[up(1), up(2)], 0)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes, vec![PutOutcome::RoundFull; 2]);
}

/// Uploads racing on one file-backed store (each writes and syncs its file with the
/// connection released): the store contract's race
/// ([`cairn_protocol::store::conformance::racing_uploads_store_each_report_once`]), and then every stored
/// report reads back and the losers' files are gone, so exactly 30 files remain.
#[test]
fn uploads_racing_on_one_store_store_each_report_once_and_leave_no_stray_file() {
    let (_dir, path, store) = file_store();
    cairn_protocol::store::conformance::racing_uploads_store_each_report_once(&[&store; 4]);
    let queued = store.queued_reports(0, 1000).unwrap();
    for id in &queued {
        assert_eq!(store.report(*id).unwrap(), Some(vec![id.0[0]; 3000]));
    }
    assert_eq!(
        report_file_names(&path).len(),
        30,
        "no loser's file is left"
    );
}

/// A batch whose files cannot be written (the reports folder is a plain file, which
/// fails even for root) fails every upload of it, and no upload's answer names another
/// upload's report: a file error names its file, whose name begins with the report id,
/// and a client that learnt another client's id could upload under it first and make
/// that client's retry a replay. The error itself goes to the node's log only.
#[test]
fn a_failed_batch_tells_no_upload_another_uploads_report_id() {
    let (_dir, path, store) = file_store();
    let mut folder = path.as_os_str().to_owned();
    folder.push(".reports");
    std::fs::write(&folder, b"not a folder").unwrap();
    let ids = [
        ReportId([0xa1; 16]),
        ReportId([0xb2; 16]),
        ReportId([0xc3; 16]),
    ];
    let uploads: Vec<NewReport<'_>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewReport {
            round: 0,
            report_id: *id,
            client_id: ClientId([i as u8 + 1; 16]),
            report: b"report bytes",
        })
        .collect();
    let answers = store.put_reports(&uploads, 10);
    assert_eq!(answers.len(), ids.len());
    for (own, answer) in ids.iter().zip(&answers) {
        let error = answer
            .as_ref()
            .expect_err("the folder is a file")
            .to_string();
        for other in ids.iter().filter(|id| *id != own) {
            assert!(
                !error.contains(&hex::encode(other.0)),
                "an upload's answer names another upload's report: {error}"
            );
        }
        assert!(!error.contains(&*folder.to_string_lossy()), "{error}");
    }
}
