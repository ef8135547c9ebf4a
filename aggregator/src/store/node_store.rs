//! The store a node runs on, chosen by its configuration: SQLite or PostgreSQL.

use anyhow::Context;
use cairn_protocol::auth::{ClientId, ClientKey, ClientRecord};
use cairn_protocol::clock::Time;
use cairn_protocol::config::TaskConfig;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::ledger::LedgerEntry;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{
    CommitOutcome, GarbageScope, JobAdmission, JobRecord, NewReport, PutOutcome, RoundRecord,
    RoundState, TaskStore,
};

use super::postgres::{PgConnect, PgStore, PgStoreError, PgTaskStore};
use super::{SqliteStore, SqliteTaskStore, StoreError};
use crate::node_config::{DATABASE_PASSWORD_ENV, NodeConfig, StoreConfig};

/// One task's store on either engine.
#[derive(Clone)]
pub enum NodeStore {
    /// The embedded SQLite file.
    Sqlite(SqliteTaskStore),
    /// A PostgreSQL database.
    Postgres(PgTaskStore),
}

/// An error of either engine.
#[derive(Debug, thiserror::Error)]
pub enum NodeStoreError {
    /// SQLite.
    #[error(transparent)]
    Sqlite(#[from] StoreError),
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] PgStoreError),
}

/// The PostgreSQL connection settings of `config`, the password read from its file or
/// the environment; `None` for a SQLite node.
pub fn pg_connect(config: &NodeConfig) -> anyhow::Result<Option<PgConnect>> {
    let StoreConfig::Postgres {
        url,
        password_file,
        pool_size,
        ..
    } = &config.store
    else {
        return Ok(None);
    };
    let password = match password_file {
        Some(path) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the database password {}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        )),
        None => std::env::var(DATABASE_PASSWORD_ENV)
            .ok()
            .map(zeroize::Zeroizing::new),
    };
    Ok(Some(PgConnect {
        url: url.clone(),
        password,
        pool_size: *pool_size,
    }))
}

impl NodeStore {
    /// Opens the store `config` names, for `task`. PostgreSQL must be migrated
    /// (`cairn db migrate`); SQLite creates its file.
    pub fn open(config: &NodeConfig, task: &TaskConfig) -> anyhow::Result<Self> {
        match pg_connect(config)? {
            Some(connect) => Ok(NodeStore::Postgres(
                PgStore::open(&connect)
                    .context("opening the PostgreSQL store")?
                    .task(task.id(), task.dimension()),
            )),
            None => {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("creating {}", config.data_dir.display()))?;
                let path = crate::node::database_path(config);
                Ok(NodeStore::Sqlite(
                    SqliteStore::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?
                        .task(task.id(), task.dimension()),
                ))
            }
        }
    }

    /// Opens an existing store for a maintenance command (`cairn db gc`): as [`open`](Self::open),
    /// except that a SQLite file must exist and be of this version's schema. Nothing is
    /// created or migrated under a node that may be running.
    pub fn open_current(config: &NodeConfig, task: &TaskConfig) -> anyhow::Result<Self> {
        Self::open_existing(config, task, SqliteStore::open_current)
    }

    /// Opens the store read-only where the engine allows it (reports beside a live
    /// node): a SQLite file must exist; PostgreSQL is opened as for a node.
    pub fn open_for_reading(config: &NodeConfig, task: &TaskConfig) -> anyhow::Result<Self> {
        Self::open_existing(config, task, SqliteStore::open_read_only)
    }

    /// A SQLite file that must exist, opened by `open_sqlite`; PostgreSQL as for a node.
    fn open_existing(
        config: &NodeConfig,
        task: &TaskConfig,
        open_sqlite: fn(&std::path::Path) -> Result<SqliteStore, StoreError>,
    ) -> anyhow::Result<Self> {
        if matches!(config.store, StoreConfig::Sqlite) {
            let path = crate::node::database_path(config);
            if !path.exists() {
                anyhow::bail!("no database at {}: has the node run yet?", path.display());
            }
            return Ok(NodeStore::Sqlite(
                open_sqlite(&path)
                    .with_context(|| format!("opening {}", path.display()))?
                    .task(task.id(), task.dimension()),
            ));
        }
        Self::open(config, task)
    }

    /// The ids (hex) of tasks other than this one with a budget ledger in this database.
    pub fn other_ledger_tasks(&self) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            NodeStore::Sqlite(s) => s.other_ledger_tasks()?,
            NodeStore::Postgres(s) => s.other_ledger_tasks()?,
        })
    }

    /// Whether the database answers (for `/health`; SQLite is always there).
    pub fn is_reachable(&self) -> bool {
        match self {
            NodeStore::Sqlite(_) => true,
            NodeStore::Postgres(s) => s.ping(),
        }
    }
}

/// Runs `$call` on whichever store, converting the error.
macro_rules! either {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            NodeStore::Sqlite($s) => $call.map_err(NodeStoreError::from),
            NodeStore::Postgres($s) => $call.map_err(NodeStoreError::from),
        }
    };
}

impl TaskStore for NodeStore {
    type Error = NodeStoreError;

    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, NodeStoreError> {
        either!(self, s => s.client(id))
    }
    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, NodeStoreError> {
        either!(self, s => s.add_client(id, key))
    }
    fn revoke_client(&self, id: ClientId) -> Result<bool, NodeStoreError> {
        either!(self, s => s.revoke_client(id))
    }
    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, NodeStoreError> {
        either!(self, s => s.put_report(round, report_id, client_id, report, max_reports))
    }
    fn put_reports(
        &self,
        reports: &[NewReport<'_>],
        max_reports: u32,
    ) -> Vec<Result<PutOutcome, NodeStoreError>> {
        match self {
            Self::Sqlite(s) => s
                .put_reports(reports, max_reports)
                .into_iter()
                .map(|r| r.map_err(NodeStoreError::from))
                .collect(),
            Self::Postgres(s) => s
                .put_reports(reports, max_reports)
                .into_iter()
                .map(|r| r.map_err(NodeStoreError::from))
                .collect(),
        }
    }
    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, NodeStoreError> {
        either!(self, s => s.stored_report_matches(report_id, report))
    }
    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, NodeStoreError> {
        either!(self, s => s.report(report_id))
    }
    fn is_report_lost(&self, error: &NodeStoreError) -> bool {
        match (self, error) {
            (NodeStore::Sqlite(s), NodeStoreError::Sqlite(e)) => s.is_report_lost(e),
            (NodeStore::Postgres(s), NodeStoreError::Postgres(e)) => s.is_report_lost(e),
            _ => false,
        }
    }
    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, NodeStoreError> {
        either!(self, s => s.queued_reports(round, limit))
    }
    fn queued_rounds(&self) -> Result<Vec<u32>, NodeStoreError> {
        either!(self, s => s.queued_rounds())
    }
    fn create_job(&self, job: &JobRecord) -> Result<(), NodeStoreError> {
        either!(self, s => s.create_job(job))
    }
    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, NodeStoreError> {
        either!(self, s => s.lease_job(job_id, owner, now, until))
    }
    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), NodeStoreError> {
        either!(self, s => s.decide_job(job_id, accepted))
    }
    fn open_jobs(&self) -> Result<Vec<JobRecord>, NodeStoreError> {
        either!(self, s => s.open_jobs())
    }
    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, NodeStoreError> {
        either!(self, s => s.prepared_job_digest(job_id))
    }
    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, NodeStoreError> {
        either!(self, s => s.record_prepared(job_id, job_digest, round, reports, max_reports))
    }
    fn round(&self, round: u32) -> Result<Option<RoundRecord>, NodeStoreError> {
        either!(self, s => s.round(round))
    }
    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundState, NodeStoreError> {
        either!(self, s => s.open_round(round, now, dimension))
    }
    fn close_round(&self, round: u32) -> Result<(), NodeStoreError> {
        either!(self, s => s.close_round(round))
    }
    fn latest_round(&self) -> Result<Option<u32>, NodeStoreError> {
        either!(self, s => s.latest_round())
    }
    fn latest_released_round(&self) -> Result<Option<u32>, NodeStoreError> {
        either!(self, s => s.latest_released_round())
    }
    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], NodeStoreError> {
        either!(self, s => s.report_set_digest(round))
    }
    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, NodeStoreError> {
        either!(self, s => s.is_aggregated(report_id))
    }
    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, NodeStoreError> {
        either!(self, s => s.job_committed(job_id))
    }
    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, NodeStoreError> {
        either!(self, s => s.commit_job(round, job_id, accepted, contribution))
    }
    fn ledger(&self) -> Result<Vec<LedgerEntry>, NodeStoreError> {
        either!(self, s => s.ledger())
    }
    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), NodeStoreError> {
        either!(self, s => s.commit_release(entry, released))
    }
    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, NodeStoreError> {
        either!(self, s => s.release(round))
    }
    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), NodeStoreError> {
        either!(self, s => s.put_collect_response(round, response))
    }
    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, NodeStoreError> {
        either!(self, s => s.collect_response(round))
    }
    fn has_collect_response(&self, round: u32) -> Result<bool, NodeStoreError> {
        either!(self, s => s.has_collect_response(round))
    }

    fn collect_garbage(
        &self,
        through_round: u32,
        scope: GarbageScope,
    ) -> Result<u64, NodeStoreError> {
        either!(self, s => s.collect_garbage(through_round, scope))
    }
}
