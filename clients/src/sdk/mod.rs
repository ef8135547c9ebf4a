//! The client SDK: [`Client`] submits updates, [`Collector`] releases and decodes sums.
//!
//! Both wrap the protocol's sans-IO parties (`cairn_protocol::client` and
//! `cairn_protocol::collector`) around a pinned QUIC connection to the leader.
//!
//! **Every client has its own credential** ([`cairn_protocol::auth::Credential`], a file
//! `cairn init` writes per client); every aggregator accepts at most one report per
//! client per round.
//!
//! **Uploads are idempotent.** [`Client::submit`] prepares the report once (fresh random
//! report id, shares, proof, sealed helper shares) and re-sends *the same bytes* on every
//! retry, with exponential backoff. The leader stores a report once and acknowledges a
//! byte-identical retry again; if an earlier attempt was stored but its acknowledgement
//! was lost, a retry may instead be told the id was used, which — the id being 16
//! random bytes only this client knows — also proves the report is stored.
//!
//! **Across crashes too**, with [`ClientBuilder::state_dir`]: the prepared report is
//! written there (mode 0600: it holds the leader's share) before it is first sent and
//! kept until acknowledged, so a client that crashed mid-upload re-sends the very same
//! report when it submits that round again, and is never counted twice nor refused as
//! a second report. After the acknowledgement only the report id is kept, and a second
//! submit for the round is refused locally ([`SdkError::AlreadySubmitted`]). A
//! submission holds its round's lock (an advisory lock on the folder's
//! `lock-{N mod 64}`, and its `lock` shared) from its checks to the acknowledgement's
//! record, so two `Client`s of one credential and folder, in one process or two,
//! prepare one report per round between them, while submissions of different rounds
//! go on at once. (The locks are advisory `flock`s: on a file system where they are
//! local to one machine or do nothing, such as NFS mounted with `local_lock=flock` or
//! `nolock`, the guarantee covers one machine's processes, or none.) A
//! pending report of another task, round or client is refused
//! ([`SdkError::ForeignPendingUpload`]), not sent. The folder's files of round N:
//! `round-N.pending` (the report, until acknowledged), `round-N.acked` (its id, after),
//! and, at record level, `round-N.skipped` (the round's sample was larger than the
//! task allows: the round stays skipped, [`SdkError::RoundSkipped`]).
//!
//! **Preparing a report runs off the async runtime**, on the process's prepare threads,
//! one per core, shared by all its clients: proving takes milliseconds to seconds of
//! CPU (about 10 ms at d = 10^5), which would otherwise stall every connection and
//! timer the runtime drives. Encoding the report runs there too; writing it to the state
//! folder runs on the runtime's blocking threads. A process submitting for many
//! clients at once (a load test, a gateway) thus uploads each report as soon as it is
//! ready, and its few prepare threads reuse their memory from one report to the next.
//!
//! # Example
//! ```no_run
//! # async fn example(
//! #     collector_key: cairn_protocol::hpke::HpkeSecretKey,
//! #     collector_identity: cairn_transport::Identity,
//! # ) -> Result<(), cairn_client::sdk::SdkError> {
//! use cairn_client::sdk::{Client, Collector};
//! use cairn_protocol::auth::Credential;
//! use cairn_protocol::config::TaskConfig;
//!
//! let task = TaskConfig::from_toml(&std::fs::read_to_string("task.toml")?)?;
//! let credential = Credential::from_toml(&std::fs::read_to_string("clients/client-0.toml")?)?;
//! let client = Client::builder(task.clone())
//!     .credential(credential)
//!     .state_dir("clients/client-0.state")
//!     .build()
//!     .await?;
//! client.submit(0, &[0.25_f32; 100]).await?;
//!
//! let collector = Collector::builder(task)
//!     .hpke_key(collector_key)
//!     .identity(collector_identity)
//!     .build()
//!     .await?;
//! let released = collector.collect(0).await?;
//! println!("{} reports, sum[0] = {}", released.count, released.sum[0]);
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_protocol::auth::{AuthError, Credential};
use cairn_protocol::client::ClientError;
use cairn_protocol::collector::{Collection, CollectorError};
use cairn_protocol::config::{ConfigError, TaskConfig};
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::ids::ReportId;
use cairn_protocol::messages::{ErrorCode, Inbound, Limits, Message};
use rand_chacha::ChaCha20Rng;

use crate::os_rng::{OsRngError, os_rng};
use cairn_transport::{
    ClientEndpoint, Identity, Peer, RetryPolicy, TransportError, TransportOptions,
};

mod client;
mod collector;
mod prepare_threads;

pub use client::{Client, ClientBuilder};
pub use collector::{COLLECT_REQUEST_TIMEOUT, Collector, CollectorBuilder};

/// Errors of the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The task file does not load.
    #[error("task: {0}")]
    Task(#[from] ConfigError),
    /// A file could not be read.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A required builder setting is missing.
    #[error("missing setting: {0}")]
    Missing(&'static str),
    /// The report could not be prepared (bad update, …); nothing was sent.
    #[error(transparent)]
    Prepare(#[from] ClientError),
    /// The released shares could not be opened or decoded.
    #[error(transparent)]
    Collect(#[from] CollectorError),
    /// The network failed, after all retries.
    #[error("network: {0}")]
    Transport(#[from] TransportError),
    /// The leader refused the request (after retries, for retriable refusals).
    #[error("refused by the leader: {code}: {detail}")]
    Refused {
        /// The protocol's error code.
        code: ErrorCode,
        /// The leader's explanation.
        detail: String,
        /// How long the leader asked to be left alone before a retry (`Busy`).
        retry_after: Option<std::time::Duration>,
    },
    /// The leader's answer does not decode.
    #[error("the leader's answer does not decode: {0}")]
    Undecodable(#[from] cairn_protocol::messages::CodecError),
    /// The leader answered with a message of another type than the request calls for.
    #[error("unexpected answer from the leader: {0}")]
    UnexpectedAnswer(&'static str),
    /// The client's state folder holds a pending upload that is not one of this
    /// task's (edited, or another task's folder).
    #[error("{} does not hold an upload of this task; remove it to prepare anew", .0.display())]
    ForeignPendingUpload(std::path::PathBuf),
    /// Poisson sampling of the records failed (a rate outside (0, 1]: impossible for
    /// a validated task).
    #[error("sampling records: {0}")]
    Sampling(#[from] cairn_dp::sample::SampleError),
    /// The OS random source failed.
    #[error(transparent)]
    Rng(#[from] OsRngError),
    /// The credential is unusable (or for another task).
    #[error("credential: {0}")]
    Credential(#[from] AuthError),
    /// The report's preparation did not finish: the async runtime is shutting down.
    #[error("the report's preparation was cancelled: the async runtime is shutting down")]
    PrepareCancelled,
    /// This client's report for the round was acknowledged before (one per round).
    #[error("this client already submitted report {report_id} for round {round}")]
    AlreadySubmitted {
        /// The round.
        round: u32,
        /// The acknowledged report.
        report_id: String,
    },
    /// Record level: the Poisson sample this client drew for the round earlier held
    /// more than `max` records, so the round was skipped, and stays skipped: a second
    /// sample for the same round, kept only if it fits, would not be the Poisson
    /// sample the privacy accounting assumes.
    #[error(
        "round {round} was skipped: the sample drawn for it held {sampled} records, more than \
         the task's max_records_per_report = {max}; a new sample for the same round would \
         bias the privacy analysis, so it is not drawn"
    )]
    RoundSkipped {
        /// The round.
        round: u32,
        /// How many records the round's sample held.
        sampled: usize,
        /// The task's `max_records_per_report`.
        max: u32,
    },
}

impl SdkError {
    fn is_retriable(&self) -> bool {
        match self {
            SdkError::Transport(e) => e.is_retriable(),
            SdkError::Refused { code, .. } => code.is_retriable(),
            _ => false,
        }
    }
}

/// Connection settings shared by the builders.
#[derive(Debug, Clone)]
struct Connect {
    bind: SocketAddr,
    retry: RetryPolicy,
    options: Option<TransportOptions>,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            retry: RetryPolicy::default(),
            options: None,
        }
    }
}

impl Connect {
    fn leader(
        &self,
        task: &TaskConfig,
        limits: &Limits,
        identity: Option<&Identity>,
        inbound: Inbound,
    ) -> Result<Peer, SdkError> {
        let options = self.options.clone().unwrap_or_else(|| TransportOptions {
            max_frame_len: limits.max_inbound_frame_len(inbound),
            ..TransportOptions::default()
        });
        let leader = &task.aggregators()[0];
        let bind = match leader.endpoint {
            SocketAddr::V6(_) if self.bind.is_ipv4() => SocketAddr::from(([0u16; 8], 0)),
            _ => self.bind,
        };
        let endpoint = ClientEndpoint::bind(bind, identity, options)?;
        let pinned = *task
            .aggregator_fingerprint(0)
            .ok_or(SdkError::Missing("the task's leader"))?;
        // Spread over the leader's replicas: each client starts at one chosen at
        // random and fails over to the others (transport::peer).
        let addrs = leader.endpoints();
        let start = rand_core::Rng::next_u32(&mut os_rng()?) as usize;
        Ok(Peer::replicated(endpoint, addrs, pinned, start))
    }
}

/// Sends `frame` to the leader with retries; `accept` maps the answer (or a refusal,
/// with the attempt number) to a result.
async fn request_with_retry<T>(
    leader: &Peer,
    limits: &Limits,
    retry: &RetryPolicy,
    frame: &[u8],
    mut accept: impl FnMut(Message, u32) -> Result<T, SdkError>,
) -> Result<T, SdkError> {
    let mut rng = os_rng()?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (answer, used) = leader.request_on(frame).await;
        let outcome = match answer {
            Ok(bytes) => match Message::decode(&bytes, limits) {
                Ok(m) => accept(m, attempt),
                Err(e) => Err(SdkError::Undecodable(e)),
            },
            Err(e) => Err(SdkError::Transport(e)),
        };
        match outcome {
            Err(e) if e.is_retriable() && attempt < retry.max_attempts.max(1) => {
                if let SdkError::Refused {
                    code: ErrorCode::Busy | ErrorCode::Internal,
                    ..
                } = e
                {
                    // This replica of the leader is full or failing: try another
                    // (once, however many uploads sharing the connection heard so).
                    if let Some(used) = used {
                        leader.move_on_from(used).await;
                    }
                }
                // The leader's advice is a floor on the backoff, never above the
                // policy's own ceiling: a dishonest leader cannot park a client.
                let advised = match &e {
                    SdkError::Refused {
                        retry_after: Some(after),
                        ..
                    } => (*after).min(retry.max_delay),
                    _ => std::time::Duration::ZERO,
                };
                let wait = retry.delay(attempt, &mut rng).max(advised);
                tracing::debug!(attempt, ?wait, error = %e, "retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

fn refused(m: Message) -> SdkError {
    match m {
        Message::Error(e) => SdkError::Refused {
            code: e.code,
            detail: e.detail,
            retry_after: (e.retry_after_ms > 0)
                .then(|| std::time::Duration::from_millis(u64::from(e.retry_after_ms))),
        },
        other => SdkError::UnexpectedAnswer(other.name()),
    }
}

/// Reads a client credential file (`clients/client-K.toml` of `cairn init`).
pub fn read_credential(path: &Path) -> Result<Credential, SdkError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
    Ok(Credential::from_toml(&text)?)
}

/// Creates `dir` (and its parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably (temporary file, fsync, rename,
/// fsync of the folder), readable by its owner only.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    // One temporary name per file (`round-3.pending.tmp`, `round-3.acked.tmp`): a
    // shared one would let two writes mix.
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
