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
