//! The PostgreSQL schema, as numbered migrations.
//!
//! `cairn_schema` holds one row per applied migration. [`migrate`] applies the missing
//! ones in order, each in its own transaction, under a transaction-level advisory lock
//! so that replicas started together migrate once. A node only [`version`]-checks: it
//! never changes the schema on its own.

use postgres::GenericClient;

use super::PgStoreError;

/// The newest schema version this build knows.
pub const VERSION: i64 = 2;

/// An arbitrary constant naming Cairn's migration lock.
const LOCK: i64 = 0x6361_6972_6e5f_6462; // "cairn_db"

/// The migrations, in order: `(version, SQL)`.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "
CREATE TABLE clients (
    task BYTEA NOT NULL, client_id BYTEA NOT NULL, key BYTEA NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (task, client_id));
CREATE TABLE uploads (
    task BYTEA NOT NULL, round BIGINT NOT NULL, client_id BYTEA NOT NULL,
    report_id BYTEA NOT NULL,
    PRIMARY KEY (task, round, client_id));
CREATE TABLE prepared_jobs (
    task BYTEA NOT NULL, job_id BYTEA NOT NULL, digest BYTEA NOT NULL,
    PRIMARY KEY (task, job_id));
CREATE TABLE prepared_reports (
    task BYTEA NOT NULL, report_id BYTEA NOT NULL, job_id BYTEA NOT NULL,
    round BIGINT NOT NULL, client_id BYTEA NOT NULL,
    PRIMARY KEY (task, report_id),
    UNIQUE (task, round, client_id));
CREATE TABLE seen_reports (
    task BYTEA NOT NULL, report_id BYTEA NOT NULL, digest BYTEA NOT NULL,
    PRIMARY KEY (task, report_id));
CREATE TABLE reports (
    task BYTEA NOT NULL, report_id BYTEA NOT NULL, round BIGINT NOT NULL,
    job_id BYTEA, payload BYTEA NOT NULL,
    PRIMARY KEY (task, report_id));
CREATE INDEX reports_queue ON reports (task, round, job_id);
CREATE TABLE jobs (
    task BYTEA NOT NULL, job_id BYTEA NOT NULL, round BIGINT NOT NULL,
    report_ids BYTEA NOT NULL, accepted BYTEA, committed BOOLEAN NOT NULL DEFAULT FALSE,
    accepted_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task, job_id));
CREATE TABLE aggregated (
    task BYTEA NOT NULL, report_id BYTEA NOT NULL, round BIGINT NOT NULL,
    PRIMARY KEY (task, report_id));
CREATE INDEX aggregated_by_round ON aggregated (task, round, report_id);
CREATE TABLE rounds (
    task BYTEA NOT NULL, round BIGINT NOT NULL, status SMALLINT NOT NULL,
    opened_at BIGINT NOT NULL, count BIGINT NOT NULL, aggregate BYTEA NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE ledger (
    task BYTEA NOT NULL, seq BIGINT NOT NULL, round BIGINT NOT NULL, time BIGINT NOT NULL,
    report_count BIGINT NOT NULL, rho_bits BIGINT NOT NULL, rho_total_bits BIGINT NOT NULL,
    rdp BYTEA, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL,
    PRIMARY KEY (task, seq),
    UNIQUE (task, round));
CREATE TABLE releases (
    task BYTEA NOT NULL, round BIGINT NOT NULL, payload BYTEA NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE collect_responses (
    task BYTEA NOT NULL, round BIGINT NOT NULL, payload BYTEA NOT NULL,
    PRIMARY KEY (task, round));
",
    ),
    (
        2,
        "
ALTER TABLE jobs ADD COLUMN lease_owner BYTEA, ADD COLUMN lease_expires BIGINT;
",
    ),
];

fn ensure_table(client: &mut impl GenericClient) -> Result<(), PgStoreError> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS cairn_schema (
            version BIGINT PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    Ok(())
}

/// The schema version of the database: the highest applied migration, 0 if none.
pub fn version(client: &mut impl GenericClient) -> Result<i64, PgStoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('cairn_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i64> = client
        .query_one("SELECT MAX(version) FROM cairn_schema", &[])?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Applies the missing migrations; returns the versions applied now. A database newer
/// than this build is an error (it would not know the newer tables).
pub fn migrate(client: &mut postgres::Client) -> Result<Vec<i64>, PgStoreError> {
    let mut applied = Vec::new();
    for (v, sql) in MIGRATIONS {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
        ensure_table(&mut tx)?;
        let current = version(&mut tx)?;
        if current > VERSION {
            return Err(PgStoreError::SchemaVersion {
                found: current,
                expected: VERSION,
            });
        }
        if current < *v {
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO cairn_schema (version) VALUES ($1)", &[v])?;
            applied.push(*v);
        }
        tx.commit()?;
    }
    Ok(applied)
}
