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
//! submit for the round is refused locally ([`SdkError::AlreadySubmitted`]).
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
    },
    /// The leader answered with an unexpected message.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The OS random source failed.
    #[error(transparent)]
    Rng(#[from] OsRngError),
    /// The credential is unusable (or for another task).
    #[error("credential: {0}")]
    Credential(#[from] AuthError),
    /// This client's report for the round was acknowledged before (one per round).
    #[error("this client already submitted report {report_id} for round {round}")]
    AlreadySubmitted {
        /// The round.
        round: u32,
        /// The acknowledged report.
        report_id: String,
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
        let bind = match task.aggregators()[0].endpoint {
            SocketAddr::V6(_) if self.bind.is_ipv4() => SocketAddr::from(([0u16; 8], 0)),
            _ => self.bind,
        };
        let endpoint = ClientEndpoint::bind(bind, identity, options)?;
        let pinned = *task
            .aggregator_fingerprint(0)
            .ok_or(SdkError::Missing("the task's leader"))?;
        Ok(Peer::new(endpoint, task.aggregators()[0].endpoint, pinned))
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
        let outcome = match leader.request(frame).await {
            Ok(bytes) => match Message::decode(&bytes, limits) {
                Ok(m) => accept(m, attempt),
                Err(e) => Err(SdkError::Unexpected(format!("answer does not decode: {e}"))),
            },
            Err(e) => Err(SdkError::Transport(e)),
        };
        match outcome {
            Err(e) if e.is_retriable() && attempt < retry.max_attempts.max(1) => {
                let wait = retry.delay(attempt, &mut rng);
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
        },
        other => SdkError::Unexpected(other.name().to_owned()),
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    task: TaskConfig,
    credential: Option<Credential>,
    state_dir: Option<PathBuf>,
    shared_leader: Option<Arc<Peer>>,
    connect: Connect,
}

impl ClientBuilder {
    /// Sends through `other`'s connection to the leader instead of a QUIC endpoint of
    /// its own (many clients in one process, as in load tests).
    pub fn share_connection_of(mut self, other: &Client) -> Self {
        self.shared_leader = Some(Arc::clone(&other.leader));
        self
    }

    /// The client's credential (required; it must be for the builder's task).
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// A folder where prepared reports are kept until acknowledged (module docs). One
    /// folder may serve several clients and tasks: each gets a subfolder.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The retry policy for uploads (default: 6 attempts, 100 ms doubling to 5 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.connect.retry = retry;
        self
    }

    /// Transport limits and timeouts (default: frames sized from the task).
    pub fn transport_options(mut self, options: TransportOptions) -> Self {
        self.connect.options = Some(options);
        self
    }

    /// Builds the client (no connection is made until the first submission).
    pub async fn build(self) -> Result<Client, SdkError> {
        let credential = self.credential.ok_or(SdkError::Missing("credential"))?;
        credential.check_task(&self.task.id())?;
        let state_dir = self.state_dir.map(|d| {
            d.join(self.task.id().to_hex())
                .join(credential.client_id().to_hex())
        });
        if let Some(dir) = &state_dir {
            create_private_dir(dir)?;
        }
        let protocol = cairn_protocol::client::Client::new(self.task.clone(), credential)?;
        let limits = cairn_protocol::scheme::Scheme::for_task(&self.task)?.limits();
        let leader = match self.shared_leader {
            Some(peer) => peer,
            None => Arc::new(self.connect.leader(
                &self.task,
                &limits,
                None,
                Inbound::ClientFromLeader,
            )?),
        };
        Ok(Client {
            protocol,
            leader,
            limits,
            retry: self.connect.retry,
            rng: Mutex::new(os_rng()?),
            state_dir,
            files: Mutex::new(()),
        })
    }
}

/// A data holder's client of one task.
pub struct Client {
    protocol: cairn_protocol::client::Client,
    leader: Arc<Peer>,
    limits: Limits,
    retry: RetryPolicy,
    rng: Mutex<ChaCha20Rng>,
    state_dir: Option<PathBuf>,
    /// Serialises reads and writes of the state folder.
    files: Mutex<()>,
}

impl Client {
    /// A builder for `task`.
    pub fn builder(task: TaskConfig) -> ClientBuilder {
        ClientBuilder {
            task,
            credential: None,
            state_dir: None,
            shared_leader: None,
            connect: Connect::default(),
        }
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        self.protocol.task()
    }

    /// The client's id.
    pub fn client_id(&self) -> cairn_protocol::auth::ClientId {
        self.protocol.client_id()
    }

    /// Clips, quantises, noises (if the task says so), shares, proves, seals and
    /// uploads `update` for `round`; returns once the leader has stored it. Retries
    /// with backoff on network failures and retriable refusals. With a state folder, a
    /// report prepared for `round` before a crash is re-sent instead (module docs).
    pub async fn submit(&self, round: u32, update: &[f32]) -> Result<ReportId, SdkError> {
        let (report_id, frame) = self.prepared(round, |rng| {
            self.protocol
                .prepare_upload(round, update, rng)
                .map_err(SdkError::from)
        })?;
        self.upload(round, report_id, &frame).await
    }

    /// Uploads an already quantised vector (integers in the task's fixed-point units).
    pub async fn submit_quantised(&self, round: u32, x: &[i64]) -> Result<ReportId, SdkError> {
        let (report_id, frame) = self.prepared(round, |rng| {
            self.protocol
                .prepare_upload_quantised(round, x, rng)
                .map_err(SdkError::from)
        })?;
        self.upload(round, report_id, &frame).await
    }

    /// Record level: submits the sum of already sampled records (rows of `records`, `d`
    /// values each, row-major), each clipped to the task's `C` first
    /// ([`cairn_protocol::client::Client::prepare_upload_records`]).
    pub async fn submit_records(&self, round: u32, records: &[f32]) -> Result<ReportId, SdkError> {
        let (report_id, frame) = self.prepared(round, |rng| {
            self.protocol
                .prepare_upload_records(round, records, rng)
                .map_err(SdkError::from)
        })?;
        self.upload(round, report_id, &frame).await
    }

    /// Record level, the whole client step of DP-SGD: Poisson-samples the rows of
    /// `all_records` (`d` values each) at the task's sampling rate with the OS-seeded
    /// CSPRNG, and submits the sum of the sampled ones, each clipped to `C`. Returns the
    /// report id and how many records were sampled.
    ///
    /// The sampled set stays with this client. Whoever turns the released sum into a
    /// mean should divide by the expected batch `q·N` with `N` the public total number
    /// of records, not by the (private) sampled count.
    pub async fn sample_and_submit_records(
        &self,
        round: u32,
        all_records: &[f32],
    ) -> Result<(ReportId, usize), SdkError> {
        let d = self.task().dimension();
        if !all_records.len().is_multiple_of(d) {
            return Err(SdkError::Prepare(ClientError::WrongDimension {
                expected: d,
                got: all_records.len() % d,
            }));
        }
        let q = self.task().sampling_rate();
        let sampled = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            cairn_dp::sample::poisson_subsample(all_records.len() / d, q, &mut *rng)
                .map_err(|e| SdkError::Unexpected(format!("sampling: {e}")))?
        };
        let mut rows = Vec::with_capacity(sampled.len() * d);
        for i in &sampled {
            rows.extend_from_slice(&all_records[i * d..(i + 1) * d]);
        }
        let id = self.submit_records(round, &rows).await?;
        Ok((id, sampled.len()))
    }

    /// The upload for `round`: the one kept from an earlier, unacknowledged attempt if
    /// there is one, else a new one (kept before it is first sent).
    fn prepared(
        &self,
        round: u32,
        prepare: impl FnOnce(
            &mut ChaCha20Rng,
        ) -> Result<cairn_protocol::messages::UploadRequest, SdkError>,
    ) -> Result<(ReportId, Vec<u8>), SdkError> {
        let _files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let Some(dir) = &self.state_dir else {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            let req = prepare(&mut rng)?;
            return Ok((req.report.report_id, Message::UploadRequest(req).encode()));
        };
        if let Ok(id) = std::fs::read_to_string(dir.join(format!("round-{round}.acked"))) {
            return Err(SdkError::AlreadySubmitted {
                round,
                report_id: id.trim().to_owned(),
            });
        }
        let pending = dir.join(format!("round-{round}.pending"));
        match std::fs::read(&pending) {
            Ok(frame) => {
                let Ok(Message::UploadRequest(req)) = Message::decode(&frame, &self.limits) else {
                    return Err(SdkError::Unexpected(format!(
                        "{} does not hold an upload of this task; remove it to prepare anew",
                        pending.display()
                    )));
                };
                tracing::warn!(
                    round,
                    report = %req.report.report_id,
                    "re-sending the report prepared before a restart (not the new update)"
                );
                return Ok((req.report.report_id, frame));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let req = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            prepare(&mut rng)?
        };
        let report_id = req.report.report_id;
        let frame = Message::UploadRequest(req).encode();
        write_private_file(&pending, &frame)?;
        Ok((report_id, frame))
    }

    async fn upload(
        &self,
        round: u32,
        report_id: ReportId,
        frame: &[u8],
    ) -> Result<ReportId, SdkError> {
        request_with_retry(
            &self.leader,
            &self.limits,
            &self.retry,
            frame,
            |m, attempt| match m {
                Message::UploadResponse(ack) if ack.report_id == report_id => Ok(report_id),
                // Only this client knows the id: on a retry, "used before" means an
                // earlier attempt of ours was stored.
                Message::Error(e) if e.code == ErrorCode::Replay && attempt > 1 => Ok(report_id),
                other => Err(refused(other)),
            },
        )
        .await?;
        if let Some(dir) = &self.state_dir {
            let _files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            write_private_file(
                &dir.join(format!("round-{round}.acked")),
                report_id.to_hex().as_bytes(),
            )?;
            match std::fs::remove_file(dir.join(format!("round-{round}.pending"))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(report_id)
    }
}

/// Builds a [`Collector`].
pub struct CollectorBuilder {
    task: TaskConfig,
    hpke_key: Option<HpkeSecretKey>,
    identity: Option<Identity>,
    connect: Connect,
}

impl CollectorBuilder {
    /// The collector's HPKE secret key (required; must match the task).
    pub fn hpke_key(mut self, key: HpkeSecretKey) -> Self {
        self.hpke_key = Some(key);
        self
    }

    /// The collector's TLS identity, pinned by the aggregators (required).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The retry policy (a round whose jobs are still running is retried).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.connect.retry = retry;
        self
    }

    /// Transport limits and timeouts (default: frames sized from the task).
    pub fn transport_options(mut self, options: TransportOptions) -> Self {
        self.connect.options = Some(options);
        self
    }

    /// Builds the collector.
    pub async fn build(self) -> Result<Collector, SdkError> {
        let key = self.hpke_key.ok_or(SdkError::Missing("hpke_key"))?;
        let identity = self.identity.ok_or(SdkError::Missing("identity"))?;
        let protocol = cairn_protocol::collector::Collector::new(self.task.clone(), key)?;
        let limits = cairn_protocol::scheme::Scheme::for_task(&self.task)?.limits();
        let leader = self.connect.leader(
            &self.task,
            &limits,
            Some(&identity),
            Inbound::CollectorFromLeader,
        )?;
        Ok(Collector {
            protocol,
            leader,
            limits,
            retry: self.connect.retry,
        })
    }
}

/// The analyst's collector of one task.
pub struct Collector {
    protocol: cairn_protocol::collector::Collector,
    leader: Peer,
    limits: Limits,
    retry: RetryPolicy,
}

impl Collector {
    /// A builder for `task`.
    pub fn builder(task: TaskConfig) -> CollectorBuilder {
        CollectorBuilder {
            task,
            hpke_key: None,
            identity: None,
            connect: Connect::default(),
        }
    }

    /// Closes and releases `round`, and returns the decoded sum, the number of reports
    /// and every aggregator's budget receipt. Releasing the same round again returns the
    /// same result and spends no more budget.
    pub async fn collect(&self, round: u32) -> Result<Collection, SdkError> {
        let frame = Message::CollectRequest(self.protocol.request(round)).encode();
        let resp =
            request_with_retry(
                &self.leader,
                &self.limits,
                &self.retry,
                &frame,
                |m, _| match m {
                    Message::CollectResponse(r) => Ok(r),
                    other => Err(refused(other)),
                },
            )
            .await?;
        let collection = self.protocol.open(round, &resp)?;
        if collection.ledgers_disagree() {
            tracing::warn!(
                round,
                "the aggregators' privacy ledgers disagree on ρ spent"
            );
        }
        Ok(collection)
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
    let tmp = path.with_extension("tmp");
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
