//! Hostile peers: a client credential is bound to its task, a collector must
//! present the pinned certificate, and a helper talks only to pinned peers. Each
//! refusal is paired with the same request from the legitimate party succeeding, so
//! the test fails if the refusal came from anything but the credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod reliability_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cairn_client::sdk::SdkError;
use cairn_protocol::messages::{CollectRequest, ErrorCode, Message};
use cairn_transport::{ClientEndpoint, Identity, RetryPolicy, TransportError, TransportOptions};
use common::{NodeProcess, credential, credential_path, init};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reliability_support::{
    client, collector, collector_identity, collector_with, patient, quick_transport, task,
};

const FLAGS: &[&str] = &["--dim", "8", "--noise", "none", "--min-clients", "1"];

fn once() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..patient()
    }
}

/// Sends `frame` to aggregator `index` of `deploy`'s task (pinning its certificate),
/// presenting `identity`; retries the connection while the node starts.
async fn send_raw(
    deploy: &Path,
    index: usize,
    identity: Option<&Identity>,
    frame: &[u8],
) -> Result<Message, TransportError> {
    let task = task(deploy);
    let limits = cairn_protocol::scheme::Scheme::for_task(&task)
        .unwrap()
        .limits();
    let endpoint = ClientEndpoint::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        identity,
        // One request, not retried: time for a slow machine's fsync.
        TransportOptions {
            request_timeout: Duration::from_secs(10),
            ..quick_transport(&task)
        },
    )
    .unwrap();
    let addr = task.aggregators()[index].endpoint;
    let pinned = *task.aggregator_fingerprint(index).unwrap();
    let mut last = None;
    for _ in 0..50 {
        match endpoint.connect(addr, &pinned).await {
            Ok(conn) => {
                let bytes = conn.request(frame).await?;
                return Ok(Message::decode(&bytes, &limits).unwrap());
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Err(last.unwrap())
}

fn refusal_code(m: &Message) -> Option<ErrorCode> {
    match m {
        Message::Error(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_for_task_a_cannot_submit_to_task_b() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = init(dir_a.path(), FLAGS, 2);
    let b = init(dir_b.path(), FLAGS, 2);
    let _leader_a = NodeProcess::start(&a.join("node-0.toml"));
    let _leader_b = NodeProcess::start(&b.join("node-0.toml"));
    let protocol_a = cairn_protocol::client::Client::new(task(&a), credential(&a, 0)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let upload = |rng: &mut ChaCha20Rng| {
        Message::UploadRequest(protocol_a.prepare_upload(0, &[0.1; 8], rng).unwrap()).encode()
    };

    // A's request (A's task id, A's credential) at B's leader.
    let answer = send_raw(&b, 0, None, &upload(&mut rng)).await.unwrap();
    println!("A's upload at B's leader: {answer:?}");
    let code = refusal_code(&answer);
    assert!(
        matches!(code, Some(ErrorCode::UnknownTask | ErrorCode::Unauthorized)),
        "B's leader must refuse A's upload: {answer:?}"
    );

    // B's task with A's credential: the SDK refuses before sending anything.
    let task_b = task(&b);
    let refused_locally = cairn_client::sdk::Client::builder(task_b.clone())
        .credential(credential(&a, 0))
        .build()
        .await;
    assert!(
        matches!(refused_locally, Err(SdkError::Credential(_))),
        "{:?}",
        refused_locally.err()
    );
    // The *same* credential bytes relabelled for task B: B's leader refuses them (the
    // keys are derived with the task id, and B never registered this client).
    let text = std::fs::read_to_string(credential_path(&a, 0)).unwrap();
    let relabelled = cairn_protocol::auth::Credential::from_toml(
        &text.replace(&task(&a).id().to_hex(), &task_b.id().to_hex()),
    )
    .unwrap();
    let wrong_token = cairn_client::sdk::Client::builder(task_b.clone())
        .credential(relabelled)
        .retry(once())
        .transport_options(quick_transport(&task_b))
        .build()
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..50 {
        match wrong_token.submit(0, &[0.1; 8]).await {
            Err(SdkError::Transport(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => {
                last = Some(other);
                break;
            }
        }
    }
    println!("B's task with A's relabelled credential: {last:?}");
    match last {
        Some(Err(SdkError::Refused { code, .. })) => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("a foreign credential must be refused: {other:?}"),
    }

    // The control: the same kind of request at A's own leader is stored.
    let answer = send_raw(&a, 0, None, &upload(&mut rng)).await.unwrap();
    assert!(
        matches!(answer, Message::UploadResponse(_)),
        "A's leader accepts A's upload: {answer:?}"
    );
    client(&b, patient())
        .await
        .submit(0, &[0.1; 8])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_collector_is_refused_and_spends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Noise on: a release would spend budget, so "spends nothing" can be checked.
    let deploy = init(
        dir.path(),
        &["--dim", "8", "--noise", "aggregator", "--min-clients", "1"],
        2,
    );
    let _nodes: Vec<NodeProcess> = (0..2)
        .map(|i| NodeProcess::start(&deploy.join(format!("node-{i}.toml"))))
        .collect();
    client(&deploy, patient())
        .await
        .submit(0, &[0.1; 8])
        .await
        .unwrap();
    let request = Message::CollectRequest(CollectRequest {
        task_id: task(&deploy).id(),
        round: 0,
    })
    .encode();

    // No certificate at all.
    let outcome = send_raw(&deploy, 0, None, &request).await;
    println!("collect without a certificate: {outcome:?}");
    match outcome {
        Ok(m) => assert_eq!(
            refusal_code(&m),
            Some(ErrorCode::Unauthorized),
            "a collect without a certificate: {m:?}"
        ),
        Err(e) => panic!("the leader answers clients without certificates: {e}"),
    }
    // A certificate that is not the pinned collector's.
    let stranger = Identity::generate(&mut ChaCha20Rng::seed_from_u64(9), &["localhost"]).unwrap();
    let outcome = send_raw(&deploy, 0, Some(&stranger), &request).await;
    println!("collect with an unknown certificate: {outcome:?}");
    match outcome {
        Ok(m) => assert_eq!(
            refusal_code(&m),
            Some(ErrorCode::Unauthorized),
            "a collect with an unknown certificate: {m:?}"
        ),
        Err(TransportError::Tls(_)) => {}
        Err(e) => panic!("unexpected failure: {e}"),
    }
    let stranger = Identity::generate(&mut ChaCha20Rng::seed_from_u64(10), &["localhost"]).unwrap();
    match collector_with(&deploy, stranger, once())
        .await
        .collect(0)
        .await
    {
        Err(SdkError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
        Err(SdkError::Transport(TransportError::Tls(_))) => {}
        other => panic!("an unknown collector must be refused: {other:?}"),
    }

    // The refused attempts neither released the round nor spent budget: no ledger
    // holds an entry, and the real collector then gets the one report.
    assert_eq!(ledger_entries(&deploy), [0, 0]);
    let released = collector(&deploy).await.collect(0).await.unwrap();
    assert_eq!(released.count, 1);
    assert!(released.receipt().unwrap().rho_spent > 0.0);
    assert_eq!(ledger_entries(&deploy), [1, 1]);
}

/// The number of ledger entries in each node's database (read-only, nodes running).
fn ledger_entries(deploy: &Path) -> [usize; 2] {
    use cairn_protocol::store::TaskStore;
    let task = task(deploy);
    [0, 1].map(|i| {
        let config =
            cairn_aggregator::node_config::NodeConfig::load(&deploy.join(format!("node-{i}.toml")))
                .unwrap();
        cairn_aggregator::store::SqliteStore::open_read_only(
            &cairn_aggregator::node::database_path(&config),
        )
        .unwrap()
        .task(task.id(), task.dimension())
        .ledger()
        .unwrap()
        .len()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_refuses_a_peer_whose_certificate_is_not_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = init(dir.path(), FLAGS, 2);
    let _helper = NodeProcess::start(&deploy.join("node-1.toml"));
    let frame = Message::CollectRequest(CollectRequest {
        task_id: task(&deploy).id(),
        round: 0,
    })
    .encode();

    // The control: the leader's own certificate gets an answer from the helper (a
    // protocol-level one: the helper does not serve collect requests).
    let leader = Identity::read_pem_files(
        &deploy.join("aggregator-0/cert.pem"),
        &deploy.join("aggregator-0/key.pem"),
    )
    .unwrap();
    let answer = send_raw(&deploy, 1, Some(&leader), &frame).await;
    println!("helper, the pinned leader's certificate: {answer:?}");
    assert!(answer.is_ok(), "the pinned leader is served: {answer:?}");

    // The collector talks to the leader only: the helper does not even complete a
    // handshake with its certificate, so a stolen collector key reaches no helper.
    let outcome = send_raw(&deploy, 1, Some(&collector_identity(&deploy)), &frame).await;
    println!("helper, the collector's certificate: {outcome:?}");
    assert!(
        matches!(
            outcome,
            Err(TransportError::Tls(_) | TransportError::Closed(_))
        ),
        "the helper accepted the collector's certificate: {outcome:?}"
    );

    // A fresh identity, and no identity: refused at the TLS layer or with Unauthorized.
    let stranger = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3), &["localhost"]).unwrap();
    for identity in [Some(&stranger), None] {
        let outcome = send_raw(&deploy, 1, identity, &frame).await;
        println!(
            "helper, peer certificate {:?}: {outcome:?}",
            identity.map(|i| i.fingerprint())
        );
        match outcome {
            Err(TransportError::Tls(_) | TransportError::Closed(_)) => {}
            Ok(m) => assert_eq!(
                refusal_code(&m),
                Some(ErrorCode::Unauthorized),
                "helper answered an unpinned peer: {m:?}"
            ),
            Err(e) => panic!("unexpected failure kind: {e}"),
        }
    }
}
