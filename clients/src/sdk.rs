//! The client SDK: [`Client`] submits updates, [`Collector`] releases and decodes sums.
//!
//! Both wrap the protocol's sans-IO parties (`cairn_protocol::client` and
//! `cairn_protocol::collector`) around a pinned QUIC connection to the leader.
//!
//! **Uploads are idempotent.** [`Client::submit`] prepares the report once (fresh random
//! report id, shares, proof, sealed helper shares) and re-sends *the same bytes* on every
//! retry, with exponential backoff. The leader stores a report once and acknowledges a
//! byte-identical retry again; if an earlier attempt was stored but its acknowledgement
//! was lost, a retry may instead be told the id was used, which — the id being 16
//! random bytes only this client knows — also proves the report is stored.
//!
//! # Example
//! ```no_run
//! # async fn example(
//! #     collector_key: cairn_protocol::hpke::HpkeSecretKey,
//! #     collector_identity: cairn_client::transport::Identity,
//! # ) -> Result<(), cairn_client::sdk::SdkError> {
//! use cairn_client::sdk::{Client, Collector};
//! use cairn_protocol::config::TaskConfig;
//! use cairn_protocol::ids::ClientToken;
//!
//! let task = TaskConfig::from_toml(&std::fs::read_to_string("task.toml")?)?;
//! let token = ClientToken::from_hex(&std::fs::read_to_string("client.token")?).expect("a token");
//! let client = Client::builder(task.clone()).token(token).build().await?;
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
use std::sync::Mutex;

use cairn_protocol::client::ClientError;
use cairn_protocol::collector::{Collection, CollectorError};
use cairn_protocol::config::{ConfigError, TaskConfig};
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::ids::{ClientToken, ReportId};
use cairn_protocol::messages::{ErrorCode, Limits, Message};
use rand_chacha::ChaCha20Rng;

use crate::os_rng::{OsRngError, os_rng};
use crate::transport::{
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
    ) -> Result<Peer, SdkError> {
        let options = self.options.clone().unwrap_or_else(|| TransportOptions {
            max_frame_len: limits.max_frame_len(),
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
    token: Option<ClientToken>,
    connect: Connect,
}

impl ClientBuilder {
    /// The task's client token (required).
    pub fn token(mut self, token: ClientToken) -> Self {
        self.token = Some(token);
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
        let token = self.token.ok_or(SdkError::Missing("token"))?;
        let protocol = cairn_protocol::client::Client::new(self.task.clone(), token)?;
        let limits = cairn_protocol::scheme::Scheme::for_task(&self.task)?.limits();
        let leader = self.connect.leader(&self.task, &limits, None)?;
        Ok(Client {
            protocol,
            leader,
            limits,
            retry: self.connect.retry,
            rng: Mutex::new(os_rng()?),
        })
    }
}

/// A data holder's client of one task.
pub struct Client {
    protocol: cairn_protocol::client::Client,
    leader: Peer,
    limits: Limits,
    retry: RetryPolicy,
    rng: Mutex<ChaCha20Rng>,
}

impl Client {
    /// A builder for `task`.
    pub fn builder(task: TaskConfig) -> ClientBuilder {
        ClientBuilder {
            task,
            token: None,
            connect: Connect::default(),
        }
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        self.protocol.task()
    }

    /// Clips, quantises, noises (if the task says so), shares, proves, seals and
    /// uploads `update` for `round`; returns once the leader has stored it. Retries
    /// with backoff on network failures and retriable refusals.
    pub async fn submit(&self, round: u32, update: &[f32]) -> Result<ReportId, SdkError> {
        let req = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            self.protocol.prepare_upload(round, update, &mut *rng)?
        };
        self.upload(req).await
    }

    /// Uploads an already quantised vector (integers in the task's fixed-point units).
    pub async fn submit_quantised(&self, round: u32, x: &[i64]) -> Result<ReportId, SdkError> {
        let req = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            self.protocol
                .prepare_upload_quantised(round, x, &mut *rng)?
        };
        self.upload(req).await
    }

    async fn upload(
        &self,
        req: cairn_protocol::messages::UploadRequest,
    ) -> Result<ReportId, SdkError> {
        let report_id = req.report.report_id;
        let frame = Message::UploadRequest(req).encode();
        request_with_retry(
            &self.leader,
            &self.limits,
            &self.retry,
            &frame,
            |m, attempt| match m {
                Message::UploadResponse(ack) if ack.report_id == report_id => Ok(report_id),
                // Only this client knows the id: on a retry, "used before" means an
                // earlier attempt of ours was stored.
                Message::Error(e) if e.code == ErrorCode::Replay && attempt > 1 => Ok(report_id),
                other => Err(refused(other)),
            },
        )
        .await
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
        let leader = self.connect.leader(&self.task, &limits, Some(&identity))?;
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
