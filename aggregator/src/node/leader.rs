//! The leader's service: uploads and collect requests, and the background loop that
//! runs aggregation jobs.

use super::drive::{collect, resume_jobs, run_queued_jobs};
use super::*;
use cairn_mpc::secret::SecretVec;
use cairn_protocol::messages::{MessageType, UploadResponse, UploadView};

/// The leader's shared state: the state machine and the connections to helpers.
pub(super) struct LeaderShared {
    /// The state machine, one step at a time ([`with_leader`]).
    leader: Arc<tokio::sync::Mutex<Leader<NodeStore>>>,
    /// Uploads waiting to be stored ([`store_uploads`]).
    uploads: tokio::sync::mpsc::UnboundedSender<QueuedUpload>,
    pub(super) helpers: Vec<Peer>,
    pub(super) limits: Limits,
    /// Serialises job runs (the driver and a collect request's flush).
    pub(super) jobs: tokio::sync::Mutex<()>,
    /// The node's counters.
    pub(super) metrics: Arc<NodeMetrics>,
    /// The task id, hex (the ε gauge's label).
    pub(super) task_hex: String,
}

/// How long a client answered `Busy` (the leader's upload memory full) is asked to wait
/// before it retries: about the time a job takes to drain a batch of uploads.
const BUSY_RETRY_AFTER_MS: u32 = 1_000;

pub(super) async fn start_leader(
    setup: NodeSetup,
    loaded: Task,
    store: NodeStore,
    metrics: Arc<NodeMetrics>,
) -> anyhow::Result<RunningNode> {
    let NodeSetup {
        config,
        task,
        identity,
        verify_key,
        keyring: _,
    } = setup;
    let collector_fp = config.collector_cert_sha256;
    // Leases exist only on PostgreSQL: a job a crashed process had started is taken
    // over by another replica after at most `job_lease_secs`.
    let lease_secs = match &config.store {
        crate::node_config::StoreConfig::Postgres { job_lease_secs, .. } => Some(*job_lease_secs),
        crate::node_config::StoreConfig::Sqlite => None,
    };
    let mut leader = Leader::from_task(loaded, verify_key, store)
        .map_err(|e| anyhow::anyhow!("loading the task state: {e}"))?
        .with_parallelism(Parallelism::with_threads(config.threads));
    if let Some(duration_secs) = lease_secs {
        metrics.watch_counter(
            "job_contention",
            "Batches of queued reports, or new jobs' leases, lost to another leader replica",
            leader.contention_counter(),
        );
        // Several leader processes may share a PostgreSQL database: each drives the
        // jobs it leases. (A SQLite file has one process: no leases, so a restarted
        // node resumes its jobs at once.)
        let mut owner = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut cairn_client::os_rng()?, &mut owner);
        leader = leader.with_job_leases(cairn_protocol::leader::JobLeases {
            owner,
            duration_secs,
            clock: Arc::new(SystemClock),
        });
    }
    let limits = leader.limits();
    let mut options = transport_options(&limits, Inbound::LeaderFromClients);
    options.request_memory = config.upload_memory_mib as usize * (1 << 20);
    options.busy_after = std::time::Duration::from_millis(u64::from(config.upload_wait_ms));
    options.anonymous_concurrent_streams = config.client_streams;
    options.max_connections_per_address = config.client_connections_per_address as usize;
    options.address_share_percent = config.client_address_share_percent;
    let mut pins = PinSet::new();
    pins.insert(collector_fp);
    let mut server = ServerEndpoint::bind(
        config.listen,
        &identity,
        &ClientAuth::Optional(pins),
        options,
    )?;
    // Uploads beyond the memory budget are answered Busy unread; the SDK backs off
    // and retries (on another replica of the leader, if the task lists several).
    server.answer_busy_with(
        Message::Error(ErrorMessage {
            code: ErrorCode::Busy,
            detail: "the leader holds as many uploads as its memory budget allows; retry shortly"
                .into(),
            retry_after_ms: BUSY_RETRY_AFTER_MS,
        })
        .encode(),
    );
    metrics.watch_counter(
        "uploads_busy",
        "Requests on the leader's client port (uploads, and collect requests) answered Busy because the upload memory had no room for them",
        server.busy_answers(),
    );
    metrics.watch_counter(
        "client_connections_refused",
        "Client connections the leader refused or closed because their source address had client_connections_per_address open already",
        server.address_refusals(),
    );
    let local_addr = server.local_addr()?;
    let client = ClientEndpoint::bind(
        unspecified_for(config.listen),
        Some(&identity),
        transport_options(&limits, Inbound::LeaderFromHelpers),
    )?;
    // Each leader process starts at a random replica of each helper (spreading the
    // leader replicas over the helper replicas) and stays there until it fails.
    let mut rng = cairn_client::os_rng()?;
    let helpers = task
        .aggregators()
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| {
            let fp = *task.aggregator_fingerprint(i).unwrap_or(&[0; 32]);
            let start = rand_core::Rng::next_u32(&mut rng) as usize;
            Peer::replicated(client.clone(), a.endpoints(), fp, start)
        })
        .collect();
    let (uploads, upload_queue) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(LeaderShared {
        leader: Arc::new(tokio::sync::Mutex::new(leader)),
        uploads,
        helpers,
        limits,
        jobs: tokio::sync::Mutex::new(()),
        metrics: Arc::clone(&metrics),
        task_hex: task.id().to_hex(),
    });

    let driver_shared = Arc::clone(&shared);
    let driver = tokio::spawn(async move {
        loop {
            // Jobs recorded but not committed (after a restart, or whose helper was
            // unreachable) first, then new ones.
            let outcome = match resume_jobs(&driver_shared).await {
                Ok(()) => run_queued_jobs(&driver_shared).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(code = %e.code, detail = %e.detail, "aggregation job failed; will retry");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(DRIVER_INTERVAL).await;
        }
    });

    let store_shared = Arc::clone(&shared);
    let storer = tokio::spawn(store_uploads(store_shared, upload_queue));

    let serve_server = server.clone();
    let serve_shared = Arc::clone(&shared);
    let serve = tokio::spawn(async move {
        serve_server
            .serve(move |peer, bytes| {
                let shared = Arc::clone(&serve_shared);
                async move { handle_leader_request(&shared, peer, collector_fp, bytes).await }
            })
            .await;
    });
    Ok(RunningNode {
        local_addr,
        metrics_addr: None,
        metrics,
        server,
        tasks: vec![driver, storer, serve],
        metrics_endpoint: None,
    })
}

/// An upload, decoded in place: its report's bytes are stored as they arrived
/// ([`cairn_protocol::leader::Leader::handle_upload_frame`]).
async fn handle_upload(shared: &Arc<LeaderShared>, frame: SecretVec<u8>) -> Vec<u8> {
    let (report_id, round) = match UploadView::decode(frame.expose_secret(), &shared.limits) {
        Ok(upload) => (upload.report.report_id, upload.report.round),
        Err(e) => {
            let code = ErrorCode::for_decode_error(&e);
            shared.metrics.report_rejected(code);
            tracing::info!(reason = %code, "report rejected: does not decode");
            return error_message(code, &e.to_string());
        }
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    let queued = shared.uploads.send(QueuedUpload { frame, answer });
    let outcome = match queued {
        Ok(()) => answered.await.unwrap_or_else(|_| {
            Err(Reject::new(
                ErrorCode::Internal,
                "the upload was dropped unanswered",
            ))
        }),
        Err(_) => Err(Reject::new(
            ErrorCode::Internal,
            "the leader no longer stores uploads",
        )),
    };
    // Only an authenticated report counts as received, and only an accepted one names
    // its round: nobody can grow the per-round metrics with made-up rounds.
    match &outcome {
        Ok(_) => shared.metrics.report_received(Some(round)),
        Err(e) if !matches!(e.code, ErrorCode::Unauthorized | ErrorCode::UnknownTask) => {
            shared.metrics.report_received(None)
        }
        Err(_) => {}
    }
    match outcome {
        Ok(ack) => Message::UploadResponse(ack).encode(),
        Err(e) => {
            shared.metrics.report_rejected(e.code);
            tracing::info!(report = %report_id, reason = %e.code, detail = %e.detail, "report rejected");
            reject_to_message(e)
        }
    }
}

/// An upload waiting to be stored: its frame, and where its answer goes.
pub(super) struct QueuedUpload {
    frame: SecretVec<u8>,
    answer: tokio::sync::oneshot::Sender<Result<UploadResponse, Reject>>,
}

/// The most uploads stored in one step of the state machine. A batch holds the state
/// machine, and so the jobs, for its writes and syncs; this bounds that time.
const UPLOAD_BATCH: usize = 32;

/// Stores the queued uploads, a batch per step of the state machine: every upload that
/// queued while the step before it ran, up to [`UPLOAD_BATCH`]
/// ([`cairn_protocol::leader::Leader::handle_upload_frames`]). Storing an upload means
/// syncing its report to disk (three syncs on SQLite) before it is acknowledged: one
/// at a time, uploads queued behind each other's syncs, and the jobs behind the
/// uploads; a batch shares its syncs. An upload waits for at most the batch in
/// progress when it arrives, and none when the queue is empty.
async fn store_uploads(
    shared: Arc<LeaderShared>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<QueuedUpload>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < UPLOAD_BATCH {
            match queue.try_recv() {
                Ok(upload) => batch.push(upload),
                Err(_) => break,
            }
        }
        let (frames, answers): (Vec<SecretVec<u8>>, Vec<_>) =
            batch.into_iter().map(|u| (u.frame, u.answer)).unzip();
        let outcomes = with_leader(&shared, move |leader| {
            let frames: Vec<&[u8]> = frames.iter().map(SecretVec::expose_secret).collect();
            Ok(leader.handle_upload_frames(&frames, SystemClock.now()))
        })
        .await;
        match outcomes {
            Ok(outcomes) if outcomes.len() == answers.len() => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    // The uploader may have gone (its connection closed): nothing to do.
                    let _ = answer.send(outcome);
                }
            }
            Ok(_) => {
                let e = Reject::new(ErrorCode::Internal, "a batch of uploads went unanswered");
                answers
                    .into_iter()
                    .for_each(|a| drop(a.send(Err(e.clone()))));
            }
            Err(e) => answers
                .into_iter()
                .for_each(|a| drop(a.send(Err(e.clone())))),
        }
    }
}

pub(super) fn unspecified_for(listen: SocketAddr) -> SocketAddr {
    match listen {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

pub(super) async fn handle_leader_request(
    shared: &Arc<LeaderShared>,
    peer: PeerIdentity,
    collector_fp: [u8; 32],
    bytes: Vec<u8>,
) -> Vec<u8> {
    // An upload carries the leader's share in the clear: the frame is wiped when this
    // request is done, like every copy of the share the leader makes.
    let bytes = SecretVec::new(bytes);
    if bytes.expose_secret().get(1) == Some(&(MessageType::UploadRequest as u8)) {
        return handle_upload(shared, bytes).await;
    }
    let msg = match Message::decode(bytes.expose_secret(), &shared.limits) {
        Ok(m) => m,
        Err(e) => {
            let code = ErrorCode::for_decode_error(&e);
            shared.metrics.report_rejected(code);
            tracing::info!(reason = %code, "report rejected: does not decode");
            return error_message(code, &e.to_string());
        }
    };
    let now = SystemClock.now();
    match msg {
        // Taken above, before decoding: unreachable for a frame that decodes.
        Message::UploadRequest(_) => error_message(
            ErrorCode::Internal,
            "an upload reached the leader's generic path",
        ),
        Message::CollectRequest(req) => {
            if peer.fingerprint() != Some(&collector_fp) {
                return error_message(
                    ErrorCode::Unauthorized,
                    "only the task's collector may collect",
                );
            }
            match collect(shared, req, now).await {
                Ok(m) => {
                    if let Message::CollectResponse(r) = &m {
                        shared.metrics.round_released(r.round);
                        if let Some(own) = r.shares.first() {
                            shared.metrics.set_epsilon_remaining(
                                &shared.task_hex,
                                own.receipt.epsilon_remaining,
                            );
                        }
                    }
                    m.encode()
                }
                Err(e) => {
                    if e.code == ErrorCode::LedgerRollback {
                        // An operator must act: nothing of the task is released until then.
                        tracing::error!(code = %e.code, detail = %e.detail, "collect refused");
                    } else {
                        tracing::info!(code = %e.code, detail = %e.detail, "collect refused");
                    }
                    reject_to_message(e)
                }
            }
        }
        other => error_message(
            ErrorCode::BadMessage,
            &format!("the leader does not take {}", other.name()),
        ),
    }
}

/// Runs `f` on the leader's state machine ([`blocking_locked`]).
pub(super) async fn with_leader<T: Send + 'static>(
    shared: &Arc<LeaderShared>,
    f: impl FnOnce(&mut Leader<NodeStore>) -> Result<T, Reject> + Send + 'static,
) -> Result<T, Reject> {
    blocking_locked(&shared.leader, f).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helpers_are_dialled_from_an_unspecified_address_of_the_same_family() {
        let v4: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(unspecified_for(v4), "0.0.0.0:0".parse().unwrap());
        assert_eq!(unspecified_for(v6), "[::]:0".parse().unwrap());
    }
}
