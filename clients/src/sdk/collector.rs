//! The analyst's side: build a [`Collector`], release and decode sums.

use super::*;
use cairn_protocol::driver::COLLECT_PATIENCE;

/// How long a collector waits for the leader's answer to one collect request: longer
/// than the leader's own patience ([`COLLECT_PATIENCE`]) while the round's jobs finish,
/// so a slow round is answered once rather than abandoned and re-sent.
pub const COLLECT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

// The whole point of the constant above.
const _: () = assert!(COLLECT_REQUEST_TIMEOUT.as_secs() > COLLECT_PATIENCE.as_secs() + 10);

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

    /// Transport limits and timeouts (default: frames sized from the task, and
    /// [`COLLECT_REQUEST_TIMEOUT`] for an answer).
    pub fn transport_options(mut self, options: TransportOptions) -> Self {
        self.connect.options = Some(options);
        self
    }

    /// Builds the collector.
    pub async fn build(self) -> Result<Collector, SdkError> {
        let key = self.hpke_key.ok_or(SdkError::Missing("hpke_key"))?;
        let identity = self.identity.ok_or(SdkError::Missing("identity"))?;
        let loaded = cairn_protocol::task::Task::new(self.task.clone())?;
        let limits = loaded.limits();
        let protocol = cairn_protocol::collector::Collector::from_task(loaded, key)?;
        let mut connect = self.connect;
        connect.options.get_or_insert_with(|| TransportOptions {
            max_frame_len: limits.max_inbound_frame_len(Inbound::CollectorFromLeader),
            request_timeout: COLLECT_REQUEST_TIMEOUT,
            ..TransportOptions::default()
        });
        let leader = connect.leader(
            &self.task,
            &limits,
            Some(&identity),
            Inbound::CollectorFromLeader,
        )?;
        Ok(Collector {
            protocol,
            leader,
            limits,
            retry: connect.retry,
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
