//! The helper's service: answers only the leader, and only with its state machine.

use super::*;

pub(super) async fn start_helper(
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
        keyring,
    } = setup;
    let leader_fp = *task
        .aggregator_fingerprint(0)
        .context("the task has no leader")?;
    // Only the leader talks to a helper (the collector asks the leader, which asks the
    // helpers): no other certificate completes a handshake here.
    let mut pins = PinSet::new();
    pins.insert(leader_fp);
    let task_id_hex = task.id().to_hex();
    for (state, name, help) in [
        (
            KeyState::Pending,
            "hpke_pending_key_opens",
            "Input shares opened with a pending HPKE key (clients already on the next task file)",
        ),
        (
            KeyState::Expired,
            "hpke_expired_key_opens",
            "Input shares opened with an expired HPKE key (clients still on an old task file)",
        ),
    ] {
        metrics.watch_counter(name, help, keyring.opened_counter(state));
    }
    let helper = Helper::from_task(loaded, config.index, verify_key, keyring, store)
        .map_err(|e| anyhow::anyhow!("loading the task state: {e}"))?
        .with_parallelism(Parallelism::with_threads(config.threads));
    let limits = helper.limits();
    let server = ServerEndpoint::bind(
        config.listen,
        &identity,
        &ClientAuth::Required(pins),
        transport_options(&limits, Inbound::HelperFromLeader),
    )?;
    let local_addr = server.local_addr()?;
    let state = Arc::new(tokio::sync::Mutex::new(helper));
    let clock = SystemClock;
    let serve_server = server.clone();
    let task_hex = Arc::new(task_id_hex);
    let node_metrics = Arc::clone(&metrics);
    let task = tokio::spawn(async move {
        serve_server
            .serve(move |peer, bytes| {
                let state = Arc::clone(&state);
                let metrics = Arc::clone(&node_metrics);
                let task_hex = Arc::clone(&task_hex);
                async move {
                    if peer.fingerprint() != Some(&leader_fp) {
                        return error_message(
                            ErrorCode::Unauthorized,
                            "helpers answer only the leader",
                        );
                    }
                    let msg = match Message::decode(&bytes, &limits) {
                        Ok(m) => m,
                        Err(e) => {
                            return error_message(ErrorCode::for_decode_error(&e), &e.to_string());
                        }
                    };
                    let now = clock.now();
                    let answer = blocking_locked(&state, move |helper| {
                        helper.handle_message(msg, now, &mut os_rng()?)
                    })
                    .await;
                    match answer {
                        Ok(Ok(m)) => {
                            if let Message::AggregateShareResponse(r) = &m {
                                metrics.round_released(r.round);
                                metrics.set_epsilon_remaining(
                                    &task_hex,
                                    r.share.receipt.epsilon_remaining,
                                );
                            }
                            m.encode()
                        }
                        Ok(Err(e)) | Err(e) => {
                            tracing::info!(code = %e.code, detail = %e.detail, "request refused");
                            reject_to_message(e)
                        }
                    }
                }
            })
            .await;
    });
    Ok(RunningNode {
        local_addr,
        metrics_addr: None,
        metrics,
        server,
        tasks: vec![task],
        metrics_endpoint: None,
    })
}
