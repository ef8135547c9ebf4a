//! A full round over loopback QUIC: `cairn init` files, a leader and a helper started
//! in this process, clients submitting through the SDK (honest and malformed), the
//! collector releasing the round; the released sum equals the plaintext sum within the
//! fixed-point rounding bound (noise off).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use cairn_aggregator::deploy::{Deployment, InitParams, free_base_port, init, read_collector_keys};
use cairn_aggregator::node::{NodeSetup, RunningNode, read_secret_hex, start};
use cairn_client::sdk::{Client, Collector, SdkError};
use cairn_protocol::auth::Credential;
use cairn_protocol::client::ClientError;
use cairn_protocol::collector::Collection;
use cairn_protocol::config::{NoisePlacement, TaskConfig};
use cairn_protocol::hpke::HpkeSecretKey;
use cairn_protocol::messages::ErrorCode;
use cairn_transport::Identity;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Two aggregators, dimension 4, no noise, `min_clients = 1`: the deployment's folder
/// (kept alive by the returned guard), its files and its task.
fn small_deployment(seed: u8) -> (tempfile::TempDir, Deployment, TaskConfig) {
    small_deployment_with(seed, None)
}

/// [`small_deployment`], record level when `record_level` is `Some((q, m))`.
fn small_deployment_with(
    seed: u8,
    record_level: Option<(f64, u32)>,
) -> (tempfile::TempDir, Deployment, TaskConfig) {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        aggregators: 2,
        dimension: 4,
        noise: NoisePlacement::None,
        min_clients: 1,
        record_level,
        base_port: free_base_port(host, 2).unwrap(),
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let d = init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
    (dir, d, task)
}

/// Starts every node of `d` in this process.
async fn start_nodes(d: &Deployment) -> Vec<RunningNode> {
    let mut nodes = Vec::new();
    for node in &d.nodes {
        nodes.push(start(NodeSetup::load(node).unwrap()).await.unwrap());
    }
    nodes
}

/// `d`'s collector, with its own keys.
async fn collector_of(d: &Deployment, task: &TaskConfig) -> Collector {
    let (collector_key, collector_identity) = read_collector_keys(&d.collector_dir).unwrap();
    Collector::builder(task.clone())
        .hpke_key(collector_key)
        .identity(collector_identity)
        .build()
        .await
        .unwrap()
}

/// Round 0, released to `collector` (within a minute).
async fn collect_round_0(collector: &Collector) -> Collection {
    tokio::time::timeout(Duration::from_secs(60), collector.collect(0))
        .await
        .unwrap()
        .unwrap()
}

/// Client 0 of `d` with the state folder `state`, one attempt per upload and short
/// timeouts: an upload to nodes that are down fails fast and leaves its report kept.
async fn client_giving_up_at_once(
    d: &Deployment,
    task: &TaskConfig,
    state: &std::path::Path,
) -> Client {
    Client::builder(task.clone())
        .credential(cairn_client::sdk::read_credential(&d.credentials[0]).unwrap())
        .state_dir(state)
        .retry(cairn_transport::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        })
        .transport_options(cairn_transport::TransportOptions {
            idle_timeout: Duration::from_millis(800),
            keep_alive_interval: Some(Duration::from_millis(200)),
            request_timeout: Duration::from_millis(800),
            ..Default::default()
        })
        .build()
        .await
        .unwrap()
}

/// Client 0 of `d` with the state folder `state`, default timeouts and a few retries:
/// for an upload that must succeed (the nodes are up), on a machine that may be slow.
async fn client_retrying(d: &Deployment, task: &TaskConfig, state: &std::path::Path) -> Client {
    Client::builder(task.clone())
        .credential(cairn_client::sdk::read_credential(&d.credentials[0]).unwrap())
        .state_dir(state)
        .retry(cairn_transport::RetryPolicy {
            max_attempts: 5,
            ..Default::default()
        })
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_over_quic_releases_the_exact_sum() {
    let dir = tempfile::tempdir().unwrap();
    let host = std::net::IpAddr::from([127, 0, 0, 1]);
    let params = InitParams {
        aggregators: 2,
        dimension: 50,
        noise: NoisePlacement::None,
        min_clients: 5,
        base_port: free_base_port(host, 2).unwrap(),
        ..InitParams::default()
    };
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let d = init(&dir.path().join("deploy"), &params, &mut rng).unwrap();
    let nodes = start_nodes(&d).await;
    let task = TaskConfig::from_toml(&std::fs::read_to_string(&d.task).unwrap()).unwrap();
    let mut clients = Vec::new();
    for path in &d.credentials {
        let credential = cairn_client::sdk::read_credential(path).unwrap();
        clients.push(
            Client::builder(task.clone())
                .credential(credential)
                .build()
                .await
                .unwrap(),
        );
    }
    let client = &clients[0];

    let mut expected = vec![0f64; 50];
    for client in clients.iter().take(8) {
        let update: Vec<f32> = (0..50)
            .map(|_| (rng.next_u32() % 1000) as f32 / 20_000.0 - 0.025)
            .collect();
        for (e, v) in expected.iter_mut().zip(&update) {
            *e += f64::from(*v);
        }
        client.submit(0, &update).await.unwrap();
    }
    // Bad input: wrong length is refused locally, an unregistered client by the leader.
    assert!(matches!(
        client.submit(0, &[0.0; 3]).await,
        Err(SdkError::Prepare(_))
    ));
    let stranger = Client::builder(task.clone())
        .credential(Credential::generate(task.id(), &mut rng))
        .build()
        .await
        .unwrap();
    match stranger.submit(0, &[0.0; 50]).await {
        Err(SdkError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("{other:?}"),
    }

    let collector = collector_of(&d, &task).await;
    let released = collect_round_0(&collector).await;
    assert_eq!(released.count, 8);
    // Randomised rounding moves each coordinate of each report by less than 2^-f.
    let tolerance = 8.0 * 2f64.powi(-i32::from(task.frac_bits()));
    for (got, want) in released.sum.iter().zip(&expected) {
        assert!((got - want).abs() <= tolerance, "{got} vs {want}");
    }
    // Releasing again returns the same result.
    let again = collector.collect(0).await.unwrap();
    assert_eq!(again.sum_quantised, released.sum_quantised);

    // A client without the collector's certificate cannot collect.
    let impostor = Collector::builder(task)
        .hpke_key(HpkeSecretKey::from_bytes(
            read_secret_hex(&d.collector_dir.join("hpke.key")).unwrap(),
        ))
        .identity(Identity::generate(&mut rng, &["impostor"]).unwrap())
        .build()
        .await
        .unwrap();
    assert!(impostor.collect(0).await.is_err());

    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// A client whose upload failed (the leader was down) keeps the prepared report in its
/// state folder; submitting the round again later, even with another update, re-sends
/// that very report: counted once, with the first update, and a third submit is
/// refused locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_prepared_before_a_failed_upload_is_the_one_sent_later() {
    let (dir, d, task) = small_deployment(12);
    let state = dir.path().join("state");
    let build = || client_giving_up_at_once(&d, &task, &state);
    // Nodes not started: the upload fails, the prepared report stays.
    let first = build().await;
    assert!(matches!(
        first.submit(0, &[0.5, 0.0, 0.0, 0.0]).await,
        Err(SdkError::Transport(_))
    ));
    drop(first);

    let nodes = start_nodes(&d).await;
    // A new process of the same client, another update: the kept report is sent.
    let again = client_retrying(&d, &task, &state).await;
    let id = again.submit(0, &[0.0, 0.25, 0.0, 0.0]).await.unwrap();
    assert!(matches!(
        again.submit(0, &[0.0, 0.0, 0.125, 0.0]).await,
        Err(SdkError::AlreadySubmitted { round: 0, .. })
    ));
    let released = collect_round_0(&collector_of(&d, &task).await).await;
    assert_eq!(released.count, 1, "report {id} counted once");
    assert_eq!(
        released.sum,
        vec![0.5, 0.0, 0.0, 0.0],
        "the first update, not the second"
    );
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// Record level: a sample whose upload failed is the one sent later, and the second
/// call, whose own sample is dropped, does not claim its size for the report sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_record_report_is_sent_again_without_the_new_samples_size() {
    // q = 1: every record is sampled, so the sizes are known.
    let (dir, d, task) = small_deployment_with(14, Some((1.0, 8)));
    let state = dir.path().join("state");
    let build = || client_giving_up_at_once(&d, &task, &state);
    let first = build().await;
    let two_records = [0.5, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0];
    assert!(matches!(
        first.sample_and_submit_records(0, &two_records).await,
        Err(SdkError::Transport(_))
    ));
    drop(first);

    let nodes = start_nodes(&d).await;
    let again = client_retrying(&d, &task, &state).await;
    let three_records = [0.0, 0.125, 0.0, 0.0].repeat(3);
    let (id, sampled) = again
        .sample_and_submit_records(0, &three_records)
        .await
        .unwrap();
    assert_eq!(
        sampled, None,
        "the report sent sums the first call's sample"
    );
    let released = collect_round_0(&collector_of(&d, &task).await).await;
    assert_eq!(released.count, 1, "report {id} counted once");
    assert_eq!(released.sum, vec![0.75, 0.0, 0.0, 0.0]);

    // A fresh round: the sample drawn is the one sent, and its size is returned.
    let (_, sampled) = again
        .sample_and_submit_records(1, &three_records)
        .await
        .unwrap();
    assert_eq!(sampled, Some(3));
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// Record level: a sample larger than `m` skips the round for good. A retry of the
/// round (a Flower server resending its train message, a script catching the error)
/// must not draw a second sample and send it if it fits: the report released would
/// come from a sample conditioned on its size, which the accounting does not cover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_whose_sample_was_too_large_stays_skipped() {
    // q = 1: every record is sampled; m = 2.
    let (dir, d, task) = small_deployment_with(16, Some((1.0, 2)));
    let state = dir.path().join("state");
    let build = || client_giving_up_at_once(&d, &task, &state);
    let client = build().await;
    let three_records = [0.0, 0.125, 0.0, 0.0].repeat(3);
    let two_records = [0.0, 0.125, 0.0, 0.0].repeat(2);
    assert!(matches!(
        client.sample_and_submit_records(0, &three_records).await,
        Err(SdkError::Prepare(ClientError::TooManyRecords {
            sampled: 3,
            max: 2
        }))
    ));
    // The same round again, with a sample that fits: refused, by this client and by a
    // new one on the same folder (another process of the data holder).
    for client in [client, build().await] {
        assert!(matches!(
            client.sample_and_submit_records(0, &two_records).await,
            Err(SdkError::RoundSkipped {
                round: 0,
                sampled: 3,
                max: 2
            })
        ));
        // The next round is a round of its own: prepared (and kept, the nodes being
        // down).
        assert!(matches!(
            client.sample_and_submit_records(1, &two_records).await,
            Err(SdkError::Transport(_))
        ));
    }
    // Without a state folder the client remembers it itself.
    let forgetful = Client::builder(task.clone())
        .credential(cairn_client::sdk::read_credential(&d.credentials[0]).unwrap())
        .build()
        .await
        .unwrap();
    assert!(matches!(
        forgetful.sample_and_submit_records(0, &three_records).await,
        Err(SdkError::Prepare(ClientError::TooManyRecords { .. }))
    ));
    assert!(matches!(
        forgetful.sample_and_submit_records(0, &two_records).await,
        Err(SdkError::RoundSkipped { round: 0, .. })
    ));
}

/// Record level: a report kept from an earlier attempt at the round wins over a new
/// sample that is too large: the kept report is sent, and the round is not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_report_is_sent_even_when_the_new_sample_is_too_large() {
    let (dir, d, task) = small_deployment_with(18, Some((1.0, 2)));
    let state = dir.path().join("state");
    let build = || client_giving_up_at_once(&d, &task, &state);
    let two_records = [0.5, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0];
    assert!(matches!(
        build()
            .await
            .sample_and_submit_records(0, &two_records)
            .await,
        Err(SdkError::Transport(_))
    ));
    let nodes = start_nodes(&d).await;
    let three_records = [0.0, 0.125, 0.0, 0.0].repeat(3);
    let (_, sampled) = client_retrying(&d, &task, &state)
        .await
        .sample_and_submit_records(0, &three_records)
        .await
        .expect("the kept report is sent");
    assert_eq!(sampled, None);
    // The client's files: state/<task id>/<client id>/.
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let client_dir = state
        .join(task.id().to_hex())
        .join(credential.client_id().to_hex());
    assert!(client_dir.join("round-0.acked").exists());
    assert!(!client_dir.join("round-0.skipped").exists());
    let released = collect_round_0(&collector_of(&d, &task).await).await;
    assert_eq!(released.sum, vec![0.75, 0.0, 0.0, 0.0]);
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// Record level: a non-finite value anywhere in the records is refused, whether or not
/// the sample drew its record: an error that depends on the sample would reveal it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_finite_record_is_refused_whatever_the_sample() {
    // q = 2^-30: the sample is all but surely empty, and the record with the NaN unsampled.
    let (dir, d, task) = small_deployment_with(17, Some((2f64.powi(-30), 8)));
    let client = client_giving_up_at_once(&d, &task, &dir.path().join("state")).await;
    let mut records = [0.0f32, 0.125, 0.0, 0.0].repeat(4);
    records[9] = f32::NAN;
    assert!(matches!(
        client.sample_and_submit_records(0, &records).await,
        Err(SdkError::Prepare(ClientError::NonFinite(9)))
    ));
}

/// Two `Client`s of one credential and state folder (two processes of one data holder,
/// or one built twice) submit the same round at once, with different updates: the
/// folder's lock lets one prepare and upload; the other then finds its acknowledged
/// report. One report is counted, and the other call names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_state_folder_submit_one_report_per_round() {
    let (dir, d, task) = small_deployment(13);
    let nodes = start_nodes(&d).await;
    let state = dir.path().join("state");
    let build = || async {
        Client::builder(task.clone())
            .credential(cairn_client::sdk::read_credential(&d.credentials[0]).unwrap())
            .state_dir(&state)
            .build()
            .await
            .unwrap()
    };
    let (a, b) = (build().await, build().await);
    let (ra, rb) = tokio::join!(
        a.submit(0, &[0.5, 0.0, 0.0, 0.0]),
        b.submit(0, &[0.0, 0.25, 0.0, 0.0])
    );
    let (winner, other) = match (ra, rb) {
        (Ok(id), other) => (id, other),
        (other, Ok(id)) => (id, other),
        (ra, rb) => panic!("neither was acknowledged: {ra:?} / {rb:?}"),
    };
    match other {
        Err(SdkError::AlreadySubmitted {
            round: 0,
            report_id,
        }) => {
            assert_eq!(
                report_id,
                winner.to_hex(),
                "the other names the stored report"
            );
        }
        other => panic!("the second submission must find the first: {other:?}"),
    }
    let released = collect_round_0(&collector_of(&d, &task).await).await;
    assert_eq!(released.count, 1);
    assert!(
        released.sum == [0.5, 0.0, 0.0, 0.0] || released.sum == [0.0, 0.25, 0.0, 0.0],
        "one update, whole: {:?}",
        released.sum
    );
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// A submission waits only for another submission of its own round: with round 0's
/// lock held elsewhere (another process of the client, stuck in its upload), round 1
/// is submitted, and round 0 goes through once the lock is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_waits_only_for_its_own_round() {
    let (dir, d, task) = small_deployment(15);
    let nodes = start_nodes(&d).await;
    let state = dir.path().join("state");
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let folder = state
        .join(task.id().to_hex())
        .join(credential.client_id().to_hex());
    let client = Client::builder(task.clone())
        .credential(credential)
        .state_dir(&state)
        .build()
        .await
        .unwrap();
    // Round 0's lock file, held by another process of the client.
    let elsewhere = std::fs::File::create(folder.join("lock-0")).unwrap();
    elsewhere.lock().unwrap();

    let round_0 = client.submit(0, &[0.5, 0.0, 0.0, 0.0]);
    tokio::pin!(round_0);
    let round_1 = tokio::time::timeout(
        Duration::from_secs(30),
        client.submit(1, &[0.0, 0.25, 0.0, 0.0]),
    );
    tokio::select! {
        r = &mut round_0 => panic!("round 0 went on without its lock: {r:?}"),
        r = round_1 => { r.expect("round 1 does not wait for round 0").unwrap(); }
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut round_0)
            .await
            .is_err(),
        "round 0 waits while its lock is held"
    );
    drop(elsewhere);
    round_0.await.unwrap();
    assert!(folder.join("round-0.acked").exists() && folder.join("round-1.acked").exists());

    // An earlier version of the SDK locks the whole folder (`lock`, exclusively) for
    // any round: while it does, this one waits, whatever the round.
    let earlier_version = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(folder.join("lock"))
        .unwrap();
    earlier_version.lock().unwrap();
    let round_2 = client.submit(2, &[0.0, 0.0, 0.5, 0.0]);
    tokio::pin!(round_2);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut round_2)
            .await
            .is_err(),
        "round 2 waits for the folder lock of an earlier version"
    );
    drop(earlier_version);
    round_2.await.unwrap();
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// The state folder's records are trusted only as far as they check out: a pending
/// report of another round is not sent for this one, an unreadable acknowledgement
/// record is an error (not "nothing submitted"), and a pending report left beside an
/// acknowledgement (a crash between the two) is removed. No node runs: each case is
/// decided before any upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_folder_is_read_strictly() {
    let (dir, d, task) = small_deployment(14);
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let folder = dir
        .path()
        .join("state")
        .join(task.id().to_hex())
        .join(credential.client_id().to_hex());
    let client = Client::builder(task.clone())
        .credential(credential)
        .state_dir(dir.path().join("state"))
        .retry(cairn_transport::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        })
        .transport_options(cairn_transport::TransportOptions {
            request_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            keep_alive_interval: Some(Duration::from_millis(100)),
            ..Default::default()
        })
        .build()
        .await
        .unwrap();
    // A report for round 1, kept after its failed upload, put where round 0's goes.
    assert!(matches!(
        client.submit(1, &[0.5, 0.0, 0.0, 0.0]).await,
        Err(SdkError::Transport(_))
    ));
    std::fs::copy(
        folder.join("round-1.pending"),
        folder.join("round-0.pending"),
    )
    .unwrap();
    assert!(matches!(
        client.submit(0, &[0.5, 0.0, 0.0, 0.0]).await,
        Err(SdkError::ForeignPendingUpload(_))
    ));
    // Round 1 acknowledged, its pending report left behind: removed.
    std::fs::write(folder.join("round-1.acked"), "00ff").unwrap();
    match client.submit(1, &[0.0; 4]).await {
        Err(SdkError::AlreadySubmitted {
            round: 1,
            report_id,
        }) => assert_eq!(report_id, "00ff"),
        other => panic!("round 1 was acknowledged: {other:?}"),
    }
    assert!(!folder.join("round-1.pending").exists());
    // An acknowledgement record that cannot be read: an error, and nothing prepared.
    std::fs::create_dir(folder.join("round-2.acked")).unwrap();
    assert!(matches!(
        client.submit(2, &[0.0; 4]).await,
        Err(SdkError::Io(_))
    ));
    assert!(!folder.join("round-2.pending").exists());
}

/// The leader stores an upload's report as it arrived in the frame (decoded in place,
/// not copied and encoded again): a raw frame is acknowledged, a byte-identical resend
/// too, malformed frames get the codec's error codes, and the stored bytes verify and
/// add up in the release like any report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_upload_frames_are_stored_as_they_arrived_or_refused_by_the_codec() {
    use cairn_protocol::messages::{Message, UploadRequest};
    let (_dir, d, task) = small_deployment(16);
    let nodes = start_nodes(&d).await;
    let limits = cairn_protocol::scheme::Scheme::for_task(&task)
        .unwrap()
        .limits();
    let endpoint = cairn_transport::ClientEndpoint::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
        cairn_transport::TransportOptions {
            max_frame_len: limits.max_frame_len(),
            ..Default::default()
        },
    )
    .unwrap();
    let conn = endpoint
        .connect(
            task.aggregators()[0].endpoint,
            task.aggregator_fingerprint(0).unwrap(),
        )
        .await
        .unwrap();
    let ask = |frame: Vec<u8>| {
        let conn = &conn;
        async move { Message::decode(&conn.request(&frame).await.unwrap(), &limits).unwrap() }
    };
    let credential = cairn_client::sdk::read_credential(&d.credentials[0]).unwrap();
    let client = cairn_protocol::client::Client::new(task.clone(), credential).unwrap();
    let mut rng = ChaCha20Rng::from_seed([16; 32]);
    let frame = Message::UploadRequest(
        client
            .prepare_upload(0, &[0.5, 0.0, 0.25, 0.0], &mut rng)
            .unwrap(),
    )
    .encode();

    let refused = |m: Message| match m {
        Message::Error(e) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Malformed: cut short, a wrong wire version, and a leader share longer than the
    // task's (its length prefix sits after the fixed fields and the public share).
    assert_eq!(
        refused(ask(frame[..frame.len() - 1].to_vec()).await),
        ErrorCode::BadMessage
    );
    let mut version = frame.clone();
    version[0] ^= 0xff;
    assert_eq!(refused(ask(version).await), ErrorCode::BadMessage);
    let Ok(Message::UploadRequest(UploadRequest { report, .. })) = Message::decode(&frame, &limits)
    else {
        panic!("the frame decodes");
    };
    let prefix = 2
        + 32
        + report.report_id.0.len()
        + 4
        + report.client_id.0.len()
        + report.leader_tag.len()
        + 4
        + report.public_share.len();
    assert_eq!(
        frame[prefix..prefix + 4],
        u32::try_from(report.leader_share.len())
            .unwrap()
            .to_le_bytes()
    );
    let mut oversize = frame.clone();
    oversize[prefix..prefix + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(refused(ask(oversize).await), ErrorCode::WrongSize);

    // The frame itself, twice: stored once, acknowledged both times.
    for _ in 0..2 {
        assert!(matches!(
            ask(frame.clone()).await,
            Message::UploadResponse(_)
        ));
    }
    let released = collect_round_0(&collector_of(&d, &task).await).await;
    assert_eq!(released.count, 1);
    assert_eq!(released.sum, vec![0.5, 0.0, 0.25, 0.0]);
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}

/// The leader's node file bounds the client connections of one host
/// (`client_connections_per_address`): with a limit of one, a second client on the
/// same host is closed after its handshake and told why, while the first is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_closes_client_connections_beyond_its_per_address_limit() {
    let (_dir, d, task) = small_deployment(19);
    assert!(d.credentials.len() >= 2, "two clients needed");
    // `cairn init` lifts the limit for a leader on a loopback address; set it back.
    let leader = std::fs::read_to_string(&d.nodes[0]).unwrap();
    let lifted = "client_connections_per_address = 1024\n";
    assert!(leader.contains(lifted), "{leader}");
    let leader = leader.replace(lifted, "client_connections_per_address = 1\n");
    std::fs::write(&d.nodes[0], leader).unwrap();
    let nodes = start_nodes(&d).await;
    let client = |k: usize| {
        Client::builder(task.clone())
            .credential(cairn_client::sdk::read_credential(&d.credentials[k]).unwrap())
            .retry(cairn_transport::RetryPolicy {
                max_attempts: 1,
                ..Default::default()
            })
            .build()
    };
    // The first keeps its connection open (the SDK reuses it).
    let first = client(0).await.unwrap();
    first.submit(0, &[0.5, 0.0, 0.0, 0.0]).await.unwrap();
    let second = client(1).await.unwrap();
    let refused = second.submit(0, &[0.25, 0.0, 0.0, 0.0]).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("too many connections from this address"),
        "{refused}"
    );
    first.submit(1, &[0.5, 0.0, 0.0, 0.0]).await.unwrap();
    let metrics = nodes[0].metrics.render();
    assert!(
        metrics
            .lines()
            .any(|l| l == "cairn_client_connections_refused_total 1"),
        "{metrics}"
    );
    for n in nodes {
        n.shutdown(Duration::from_secs(1)).await;
    }
}
