//! The PostgreSQL store: any number of node processes of one aggregator share one
//! database (the embedded SQLite store stays the default).
//!
//! [`PgStore`] holds a bounded connection pool (r2d2 over the blocking `postgres`
//! client: the protocol's [`TaskStore`](cairn_protocol::store::TaskStore) is synchronous and the node calls it from
//! tokio's blocking pool) and hands out one [`PgTaskStore`] per task.
//!
//! **Transactions.** Every trait operation that writes is one `SERIALIZABLE`
//! transaction, retried (up to [`MAX_ATTEMPTS`] times, with jittered backoff) when
//! PostgreSQL aborts it for a serialization failure or a deadlock. Serializable
//! isolation makes every interleaving of concurrent operations — from this process or
//! from another replica — equivalent to some serial order, so the invariants the
//! SQLite store gets from its single writer hold here too: a report is stored once and
//! aggregated once, one report per client per round, a round's count and aggregate
//! move only with a job's commit, and the ledger is append-only with one entry per
//! sequence number (its primary key) and one release per round (the `releases`
//! primary key): two replicas racing to release the same round cannot both commit.
//!
//! **Schema.** Versioned migrations ([`schema`]) are applied by `cairn db migrate`
//! (or `cairn node --migrate`); a node refuses to start against a database whose
//! schema version it does not know, or that was never migrated.
//!
//! Numbers: rounds are `BIGINT` (a `u32` does not fit PostgreSQL's `INTEGER`), ρ
//! values are stored as the exact bits of their `f64`, ids and payloads as `BYTEA`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{IsolationLevel, NoTls, Transaction};
use r2d2::Pool;
use r2d2_postgres::PostgresConnectionManager;

use cairn_protocol::config::TaskId;

mod admission;
mod release;
pub mod schema;
mod task_store;

thread_local! {
    /// Set on threads where blocking is allowed although they belong to a tokio
    /// runtime: tokio's blocking pool, entered through [`on_blocking_thread`].
    static MAY_BLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` (on a thread of tokio's blocking pool) marked as allowed to block, so
/// the store's calls inside run in place rather than on a thread of their own. The
/// node's `spawn_blocking` wrapper uses it.
pub fn on_blocking_thread<T>(work: impl FnOnce() -> T) -> T {
    let before = MAY_BLOCK.with(|m| m.replace(true));
    let out = work();
    MAY_BLOCK.with(|m| m.set(before));
    out
}

/// Runs `work` where the blocking client may block: the blocking `postgres` client
/// drives its own runtime, and tokio forbids starting a runtime on a thread that is
/// driving async tasks. On a plain thread, or one marked by [`on_blocking_thread`],
/// `work` runs in place; on any other thread of a tokio runtime (an `async fn` of the
/// node) it runs on a short-lived scoped thread of its own (the benchmark found no
/// measurable cost of that thread next to a transaction, BENCHMARKS.md; the mark
/// saves it anyway on the node's hot paths).
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    let in_place =
        MAY_BLOCK.with(std::cell::Cell::get) || tokio::runtime::Handle::try_current().is_err();
    if !in_place {
        std::thread::scope(|s| match s.spawn(work).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        work()
    }
}

/// How many times a transaction is tried before its serialization failure is returned.
pub const MAX_ATTEMPTS: u32 = 12;

/// Whether the database behind `pool` answers within a short wait (a health probe
/// must answer before its caller gives up).
fn ping(pool: &PgPool) -> bool {
    off_runtime(|| {
        pool.get_timeout(Duration::from_secs(2))
            .ok()
            .is_some_and(|mut c| c.simple_query("SELECT 1").is_ok())
    })
}

/// Errors of the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// PostgreSQL failed (connection, constraint, I/O).
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// No connection could be taken from the pool in time.
    #[error("postgres connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The request contradicts the stored state, or that state does not decode.
    #[error(transparent)]
    Refused(#[from] crate::store::Refusal),
    /// The database's schema is not the one this build knows.
    #[error(
        "the database has schema version {found}, this cairn knows versions up to {expected}: \
         run `cairn db migrate` (or use the cairn version that made it)"
    )]
    SchemaVersion {
        /// The database's version (0: never migrated).
        found: i64,
        /// This build's version.
        expected: i64,
    },
}

impl PgStoreError {
    /// Whether PostgreSQL aborted the transaction only because of a concurrent one.
    fn is_transient(&self) -> bool {
        match self {
            PgStoreError::Postgres(e) => matches!(
                e.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
            ),
            _ => false,
        }
    }
}

/// Where the database is and how to log in.
#[derive(Clone)]
pub struct PgConnect {
    /// A libpq connection string or URL without the password
    /// (`host=/run/postgresql dbname=cairn_leader user=cairn`).
    pub url: String,
    /// The password, if the server asks for one (from a file or the environment).
    pub password: Option<zeroize::Zeroizing<String>>,
    /// Connections in the pool.
    pub pool_size: u32,
}

impl std::fmt::Debug for PgConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnect")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

type PgPool = Pool<PostgresConnectionManager<NoTls>>;

/// The pool, dropped off any tokio thread: closing a blocking `postgres` connection
/// runs its runtime, which tokio forbids on a thread driving async tasks.
struct OwnedPool(Option<PgPool>);

impl Drop for OwnedPool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            off_runtime(move || drop(pool));
        }
    }
}

impl std::ops::Deref for OwnedPool {
    type Target = PgPool;
    fn deref(&self) -> &PgPool {
        // Present from construction until `drop`.
        #[allow(clippy::unwrap_used)]
        self.0.as_ref().unwrap()
    }
}

/// One aggregator's PostgreSQL database (shared by all its replicas).
#[derive(Clone)]
pub struct PgStore {
    pool: std::sync::Arc<OwnedPool>,
    retries: std::sync::Arc<AtomicU64>,
}

impl PgStore {
    /// Connects and checks that the schema is the current one (no change is made:
    /// migrations are explicit, [`PgStore::migrate`]).
    pub fn open(connect: &PgConnect) -> Result<Self, PgStoreError> {
        off_runtime(|| Self::open_here(connect))
    }

    fn open_here(connect: &PgConnect) -> Result<Self, PgStoreError> {
        let store = Self::connect(connect)?;
        let found = schema::version(&mut *store.pool.get()?)?;
        if found != schema::VERSION {
            return Err(PgStoreError::SchemaVersion {
                found,
                expected: schema::VERSION,
            });
        }
        Ok(store)
    }

    /// Connects and applies the migrations this build knows (idempotent; concurrent
    /// migrations from several replicas serialise on an advisory lock). Returns the
    /// store and the versions applied now.
    pub fn migrate(connect: &PgConnect) -> Result<(Self, Vec<i64>), PgStoreError> {
        off_runtime(|| {
            let store = Self::connect(connect)?;
            let applied = schema::migrate(&mut *store.pool.get()?)?;
            Ok((store, applied))
        })
    }

    fn connect(connect: &PgConnect) -> Result<Self, PgStoreError> {
        let mut config: postgres::Config = connect.url.parse()?;
        if let Some(password) = &connect.password {
            config.password(password.as_bytes());
        }
        config.connect_timeout(Duration::from_secs(10));
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = Pool::builder()
            .max_size(connect.pool_size.max(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        Ok(Self {
            pool: std::sync::Arc::new(OwnedPool(Some(pool))),
            retries: std::sync::Arc::new(AtomicU64::new(0)),
        })
    }

    /// The store of one task.
    pub fn task(&self, task_id: TaskId, dimension: usize) -> PgTaskStore {
        PgTaskStore {
            pool: std::sync::Arc::clone(&self.pool),
            retries: std::sync::Arc::clone(&self.retries),
            task: task_id,
            dimension,
        }
    }

    /// Whether the database answers (`/health`).
    pub fn ping(&self) -> bool {
        ping(&self.pool)
    }
}

/// One task's view of an aggregator's PostgreSQL database.
#[derive(Clone)]
pub struct PgTaskStore {
    pool: std::sync::Arc<OwnedPool>,
    retries: std::sync::Arc<AtomicU64>,
    task: TaskId,
    dimension: usize,
}

impl PgTaskStore {
    /// Runs `body` in a serializable transaction and commits it, retrying on
    /// serialization failures and deadlocks (module docs). `body` may run several
    /// times, so it only acts through the transaction.
    fn serializable<T: Send>(
        &self,
        body: impl FnMut(&mut Transaction<'_>) -> Result<T, PgStoreError> + Send,
    ) -> Result<T, PgStoreError> {
        off_runtime(|| self.serializable_here(body))
    }

    fn serializable_here<T>(
        &self,
        mut body: impl FnMut(&mut Transaction<'_>) -> Result<T, PgStoreError>,
    ) -> Result<T, PgStoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome: Result<T, PgStoreError> = (|| {
                let mut conn = self.pool.get()?;
                let mut tx = conn
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()?;
                let value = body(&mut tx)?;
                tx.commit()?;
                Ok(value)
            })();
            match outcome {
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(retry_backoff(attempt));
                }
                other => return other,
            }
        }
    }

    /// Runs a read-only statement block on a pooled connection.
    fn read<T: Send>(
        &self,
        body: impl FnOnce(&mut postgres::Client) -> Result<T, PgStoreError> + Send,
    ) -> Result<T, PgStoreError> {
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            body(&mut conn)
        })
    }

    fn t(&self) -> &[u8] {
        &self.task.0
    }

    /// The ids of other tasks that have budget-ledger entries in this database, in hex.
    pub fn other_ledger_tasks(&self) -> Result<Vec<String>, PgStoreError> {
        self.read(|c| {
            let rows = c.query(
                "SELECT DISTINCT task FROM ledger WHERE task <> $1",
                &[&self.t()],
            )?;
            Ok(rows
                .iter()
                .map(|r| hex::encode(r.get::<_, Vec<u8>>(0)))
                .collect())
        })
    }

    /// Whether the database answers.
    pub fn ping(&self) -> bool {
        ping(&self.pool)
    }

    /// Transactions retried after a serialization failure or a deadlock, by every view
    /// of this database in this process (shared, for the metrics exporter).
    pub fn transaction_retries(&self) -> std::sync::Arc<AtomicU64> {
        std::sync::Arc::clone(&self.retries)
    }
}

/// The wait before retrying a transaction after its `attempt`-th failure (1-based):
/// 2·(r + attempt)·attempt ms with r drawn afresh from 0..7 for every retry. Two
/// transactions that aborted each other must not retry in step: a draw per retry keeps
/// them apart, where a value fixed per process (say its id modulo 7) would collide for
/// one pair of replicas in seven, and for every pair of threads of one process.
/// The randomness is std's per-instance hashing keys: a retry's timing is no secret.
fn retry_backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let r = hasher.finish() % 7;
    let attempt = u64::from(attempt);
    Duration::from_millis(2 * (r + attempt) * attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every wait lies in its attempt's range, and the draws for one attempt differ
    /// (with a value fixed per process they were all the same: 64 equal draws of 7
    /// values by chance is a 7^-63 event).
    #[test]
    fn retry_waits_are_drawn_afresh_within_their_range() {
        for attempt in 1..=12u32 {
            let a = u64::from(attempt);
            let waits: std::collections::HashSet<Duration> =
                (0..64).map(|_| retry_backoff(attempt)).collect();
            assert!(waits.len() > 1, "attempt {attempt}: one wait for all draws");
            for w in waits {
                let ms = w.as_millis() as u64;
                assert!((2 * a * a..=2 * (a + 6) * a).contains(&ms), "{ms} ms");
            }
        }
    }
}
