//! End-to-end tests of the transport over loopback QUIC: authentication by pinned
//! fingerprints in every direction, frame limits, timeouts and bounded concurrency.

#![allow(missing_docs, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use cairn_transport::{
    ClientAuth, ClientEndpoint, Identity, PINNED_RESERVED_REQUESTS, Peer, PeerIdentity, PinSet,
    RetryPolicy, STREAM_BAD_REQUEST, ServerEndpoint, TimeoutKind, TransportError, TransportOptions,
    retry_with_backoff, tls,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const LOOPBACK: &str = "127.0.0.1:0";

fn identity(seed: u8) -> Identity {
    Identity::generate(
        &mut ChaCha20Rng::from_seed([seed; 32]),
        &["localhost", "127.0.0.1"],
    )
    .unwrap()
}

fn fast_options() -> TransportOptions {
    TransportOptions {
        idle_timeout: Duration::from_secs(5),
        keep_alive_interval: Some(Duration::from_secs(1)),
        handshake_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(3),
        max_frame_len: 4096,
        // Most tests here send several requests at once on one anonymous connection;
        // `flooding` tests the anonymous limit itself.
        anonymous_concurrent_streams: TransportOptions::default().max_concurrent_streams,
        // Every peer here connects from 127.0.0.1; `flooding` tests the address's share
        // and how long a closed connection keeps its place.
        address_share_percent: 100,
        address_linger: Duration::ZERO,
        ..TransportOptions::default()
    }
}

/// A server whose handler answers `peer ‖ request` and counts its calls.
struct EchoServer {
    endpoint: ServerEndpoint,
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

/// A loopback address whose port was free a moment ago and lies below the kernel's
/// ephemeral range (32768 and up on Linux by default), so that no other test of this
/// binary, all binding port 0, can be given it while this one leaves it unbound (a
/// server that starts late, a server restarted at the same address, an address
/// nothing listens at).
fn unused_port_below_the_ephemeral_range() -> SocketAddr {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut rng = ChaCha20Rng::seed_from_u64(nanos as u64 ^ u64::from(std::process::id()));
    for _ in 0..1_000 {
        let port = 10_000 + (rand_core::Rng::next_u32(&mut rng) % 20_000) as u16;
        if let Ok(socket) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            return socket.local_addr().unwrap();
        }
    }
    panic!("no free UDP port between 10000 and 30000");
}

fn start_echo(id: &Identity, auth: ClientAuth, options: TransportOptions) -> EchoServer {
    start_echo_on(LOOPBACK.parse().unwrap(), id, auth, options)
}

fn start_echo_on(
    addr: SocketAddr,
    id: &Identity,
    auth: ClientAuth,
    options: TransportOptions,
) -> EchoServer {
    // A restarted server may find its port still held for a moment by the closing one.
    let mut bound = ServerEndpoint::bind(addr, id, &auth, options.clone());
    for _ in 0..50 {
        if !matches!(&bound, Err(TransportError::Io(e)) if e.kind() == std::io::ErrorKind::AddrInUse)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        bound = ServerEndpoint::bind(addr, id, &auth, options.clone());
    }
    let endpoint = bound.unwrap();
    let addr = endpoint.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let serving = endpoint.clone();
    tokio::spawn(async move {
        serving
            .serve(move |peer: PeerIdentity, request: Vec<u8>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { expected_echo(&peer, &request) }
            })
            .await;
    });
    EchoServer {
        endpoint,
        addr,
        calls,
    }
}

fn client(id: Option<&Identity>, options: TransportOptions) -> ClientEndpoint {
    ClientEndpoint::bind(LOOPBACK.parse().unwrap(), id, options).unwrap()
}

fn expected_echo(peer: &PeerIdentity, request: &[u8]) -> Vec<u8> {
    let mut out = peer.to_string().into_bytes();
    out.push(b'|');
    out.extend_from_slice(request);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_client_roundtrips_with_a_leader_style_server() {
    let leader = identity(1);
    let server = start_echo(&leader, ClientAuth::Anonymous, fast_options());
    let client = client(None, fast_options());
    let conn = client
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert_eq!(
        conn.peer(),
        &PeerIdentity::Certificate(*leader.fingerprint())
    );

    // Several requests at once on one connection, each on its own stream.
    let requests: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100 * usize::from(i)]).collect();
    let answers = futures_join(requests.iter().map(|r| conn.request(r))).await;
    for (request, answer) in requests.iter().zip(answers) {
        assert_eq!(
            answer.unwrap(),
            expected_echo(&PeerIdentity::Anonymous, request)
        );
    }
    // An empty request is a valid frame too.
    assert_eq!(
        conn.request(&[]).await.unwrap(),
        expected_echo(&PeerIdentity::Anonymous, &[])
    );
    assert_eq!(server.calls.load(Ordering::SeqCst), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_are_refused_in_both_directions() {
    let leader = identity(2);
    let server = start_echo(&leader, ClientAuth::Anonymous, fast_options());

    // A request above the server's limit: the stream is refused, the handler never runs.
    let big_client = client(
        None,
        TransportOptions {
            max_frame_len: 1 << 20,
            ..fast_options()
        },
    );
    let conn = big_client
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    let err = conn.request(&vec![0u8; 4097]).await.unwrap_err();
    assert!(
        matches!(err, TransportError::StreamRefused { code } if code == u64::from(STREAM_BAD_REQUEST)),
        "{err:?}"
    );
    assert!(!err.is_retriable());
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    // The connection survives a refused stream; exactly the limit is accepted.
    let at_limit = vec![1u8; 4096];
    let echoed = conn.request(&at_limit).await.unwrap();
    assert_eq!(echoed, expected_echo(&PeerIdentity::Anonymous, &at_limit));
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);

    // A response above the client's limit is refused before the client allocates it.
    let small_client = client(
        None,
        TransportOptions {
            max_frame_len: 64,
            ..fast_options()
        },
    );
    let conn = small_client
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    let request = vec![2u8; 60]; // the echo adds "anonymous|": 70 bytes > 64
    let err = conn.request(&request).await.unwrap_err();
    assert!(
        matches!(err, TransportError::FrameTooLarge { len: 70, max: 64 }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_certificate_is_not_pinned_is_refused() {
    let real = identity(3);
    let impostor = identity(4);
    let server = start_echo(&impostor, ClientAuth::Anonymous, fast_options());
    let client = client(None, fast_options());
    let err = client
        .connect(server.addr, real.fingerprint())
        .await
        .unwrap_err();
    match err {
        TransportError::PeerNotPinned { presented } => {
            assert_eq!(&presented, impostor.fingerprint());
        }
        other => panic!("expected PeerNotPinned, got {other:?}"),
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

/// Whether a client with `id` gets a request through `server` (the refusal may come at
/// connect time or, with TLS 1.3 client authentication, at the first request).
async fn try_request(
    server: &EchoServer,
    pinned: &Identity,
    id: Option<&Identity>,
) -> Result<Vec<u8>, TransportError> {
    let client = client(id, fast_options());
    let conn = client.connect(server.addr, pinned.fingerprint()).await?;
    conn.request(b"job").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_with_mutual_tls_accepts_only_pinned_clients() {
    let helper = identity(5);
    let leader = identity(6);
    let collector = identity(7);
    let stranger = identity(8);
    let pins: PinSet = [*leader.fingerprint(), *collector.fingerprint()]
        .into_iter()
        .collect();
    let server = start_echo(&helper, ClientAuth::Required(pins), fast_options());

    for refused in [Some(&stranger), None] {
        let err = try_request(&server, &helper, refused).await.unwrap_err();
        assert!(matches!(err, TransportError::Tls(_)), "{err:?}");
        assert!(!err.is_retriable());
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);

    for accepted in [&leader, &collector] {
        let answer = try_request(&server, &helper, Some(accepted)).await.unwrap();
        let peer = PeerIdentity::Certificate(*accepted.fingerprint());
        assert_eq!(answer, expected_echo(&peer, b"job"));
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_auth_admits_anonymous_and_pinned_but_not_unpinned() {
    let leader = identity(9);
    let collector = identity(10);
    let stranger = identity(11);
    let pins: PinSet = [*collector.fingerprint()].into_iter().collect();
    let server = start_echo(&leader, ClientAuth::Optional(pins), fast_options());

    let anonymous = try_request(&server, &leader, None).await.unwrap();
    assert_eq!(anonymous, expected_echo(&PeerIdentity::Anonymous, b"job"));
    let pinned = try_request(&server, &leader, Some(&collector))
        .await
        .unwrap();
    let peer = PeerIdentity::Certificate(*collector.fingerprint());
    assert_eq!(pinned, expected_echo(&peer, b"job"));
    let err = try_request(&server, &leader, Some(&stranger))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Tls(_)), "{err:?}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_closes_unless_kept_alive() {
    let leader = identity(12);
    let options = TransportOptions {
        idle_timeout: Duration::from_millis(500),
        keep_alive_interval: None,
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Anonymous, options.clone());

    let silent = client(None, options.clone());
    let conn = silent
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), conn.closed())
        .await
        .expect("idle connection not closed");
    assert!(matches!(reason, TransportError::Closed(_)), "{reason:?}");
    let err = conn.request(b"late").await.unwrap_err();
    assert!(matches!(err, TransportError::Closed(_)), "{err:?}");
    assert!(err.is_retriable());

    // Kept alive: silent for longer than the idle timeout, still open. (A second
    // server, with a longer idle timeout than the first, so that a loaded machine
    // delaying one keep-alive does not close it.)
    let options = TransportOptions {
        idle_timeout: Duration::from_millis(1_500),
        ..options
    };
    let server = start_echo(&leader, ClientAuth::Anonymous, options.clone());
    let chatty = client(
        None,
        TransportOptions {
            keep_alive_interval: Some(Duration::from_millis(100)),
            ..options
        },
    );
    let conn = chatty
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(conn.close_reason().is_none());
    assert_eq!(
        conn.request(b"still here").await.unwrap(),
        expected_echo(&PeerIdentity::Anonymous, b"still here")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_makes_the_handshake_time_out() {
    // A UDP socket that never answers.
    let silent = std::net::UdpSocket::bind(LOOPBACK).unwrap();
    let client = client(
        None,
        TransportOptions {
            handshake_timeout: Duration::from_millis(300),
            ..fast_options()
        },
    );
    let err = client
        .connect(silent.local_addr().unwrap(), &[0u8; 32])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                kind: TimeoutKind::Handshake,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_bounded_by_the_server_limit() {
    let leader = identity(13);
    let options = TransportOptions {
        max_concurrent_requests: 2,
        ..fast_options()
    };
    let endpoint = ServerEndpoint::bind(
        LOOPBACK.parse().unwrap(),
        &leader,
        &ClientAuth::Anonymous,
        options,
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // Handlers hold their request until the test opens the gate, so the limit is
    // reached for certain (not only if two requests happen to overlap in time).
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (in_flight2, peak2, gate2) = (in_flight.clone(), peak.clone(), gate.clone());
    let serving = endpoint.clone();
    tokio::spawn(async move {
        serving
            .serve(move |_peer, request| {
                let (in_flight, peak, gate) = (in_flight2.clone(), peak2.clone(), gate2.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    request
                }
            })
            .await;
    });

    // Eight requests over two connections, all at once.
    let client = client(None, fast_options());
    let a = client.connect(addr, leader.fingerprint()).await.unwrap();
    let b = client.connect(addr, leader.fingerprint()).await.unwrap();
    let requests: Vec<[u8; 1]> = (0..8u8).map(|i| [i]).collect();
    let sent = requests.clone();
    let answers = tokio::spawn(async move {
        futures_join(sent.iter().enumerate().map(|(i, r)| {
            if i % 2 == 0 {
                a.request(r)
            } else {
                b.request(r)
            }
        }))
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while in_flight.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two requests never in flight"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gate.add_permits(requests.len());
    for (request, answer) in requests.iter().zip(answers.await.unwrap()) {
        assert_eq!(answer.unwrap(), request);
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "the limit is reached and never passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused() {
    let leader = identity(14);
    let server = start_echo(
        &leader,
        ClientAuth::Anonymous,
        TransportOptions {
            max_connections: 1,
            ..fast_options()
        },
    );
    let client = client(None, fast_options());
    let first = client
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert_eq!(server.endpoint.open_connections(), 1);
    let err = client
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Closed(_)), "{err:?}");
    assert!(err.is_retriable(), "a full server is worth retrying later");
    assert_eq!(server.endpoint.open_connections(), 1);
    assert_eq!(
        first.request(b"ok").await.unwrap(),
        expected_echo(&PeerIdentity::Anonymous, b"ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_running_requests_then_refuses() {
    let leader = identity(15);
    let endpoint = ServerEndpoint::bind(
        LOOPBACK.parse().unwrap(),
        &leader,
        &ClientAuth::Anonymous,
        fast_options(),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let serving = endpoint.clone();
    // The handler says when it has the request, so shutdown starts mid-request for sure.
    let started = Arc::new(tokio::sync::Notify::new());
    let handler_started = started.clone();
    let served = tokio::spawn(async move {
        serving
            .serve(move |_peer, request| {
                let handler_started = handler_started.clone();
                async move {
                    handler_started.notify_one();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    request
                }
            })
            .await;
    });
    let conn = client(None, fast_options())
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let pending = tokio::spawn({
        let conn = conn.clone();
        async move { conn.request(b"slow").await }
    });
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the request reaches the handler");
    endpoint.shutdown(Duration::from_secs(2)).await;
    assert_eq!(pending.await.unwrap().unwrap(), b"slow");
    tokio::time::timeout(Duration::from_secs(2), served)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    let after = client(
        None,
        TransportOptions {
            handshake_timeout: Duration::from_millis(500),
            ..fast_options()
        },
    );
    assert!(after.connect(addr, leader.fingerprint()).await.is_err());
}

/// Runs futures concurrently on this task and returns their outputs in order (a tiny
/// `join_all`, to avoid a dependency).
async fn futures_join<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(outputs.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// Opens `n` requests at once on `conn` and returns their tasks.
fn requests_at_once(
    conn: &cairn_transport::Connection,
    tag: u8,
    n: u8,
) -> Vec<tokio::task::JoinHandle<Result<Vec<u8>, TransportError>>> {
    (0..n)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.request(&[tag, i, 0, 0, 0, 0, 0, 0]).await })
        })
        .collect()
}

/// Waits until `entered` reaches `count`, or fails with `why`.
async fn wait_for(entered: &AtomicUsize, count: usize, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while entered.load(Ordering::SeqCst) < count {
        assert!(
            std::time::Instant::now() < deadline,
            "{why}: {} requests entered, not {count}",
            entered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

mod flooding;
mod forged_keys_and_retries;

/// A server answering `busy` when its request memory is full, whose handler holds
/// every request until released (one permit of the returned semaphore each), then
/// answers the request's first 4 bytes; the counter counts the requests handled.
fn start_gated(
    id: &Identity,
    options: TransportOptions,
) -> (SocketAddr, Arc<tokio::sync::Semaphore>, Arc<AtomicUsize>) {
    start_gated_answering(id, options, Some(b"busy"))
}

/// [`start_gated`], answering `busy` (if given) when the request memory is full, or
/// else letting requests wait for it (as a helper does).
fn start_gated_answering(
    id: &Identity,
    options: TransportOptions,
    busy: Option<&[u8]>,
) -> (SocketAddr, Arc<tokio::sync::Semaphore>, Arc<AtomicUsize>) {
    start_gated_with(id, &ClientAuth::Anonymous, options, busy)
}

/// [`start_gated_answering`], authenticating clients as `auth` says.
fn start_gated_with(
    id: &Identity,
    auth: &ClientAuth,
    options: TransportOptions,
    busy: Option<&[u8]>,
) -> (SocketAddr, Arc<tokio::sync::Semaphore>, Arc<AtomicUsize>) {
    let mut endpoint = ServerEndpoint::bind(LOOPBACK.parse().unwrap(), id, auth, options).unwrap();
    if let Some(busy) = busy {
        endpoint.answer_busy_with(busy.to_vec());
    }
    let addr = endpoint.local_addr().unwrap();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let (gate, count) = (release.clone(), entered.clone());
    tokio::spawn(async move {
        endpoint
            .serve(move |_peer, request: Vec<u8>| {
                let (gate, count) = (gate.clone(), count.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.acquire().await.unwrap();
                    request[..4].to_vec()
                }
            })
            .await;
    });
    (addr, release, entered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_request_memory_are_answered_busy_unread() {
    let id = identity(30);
    // Room for two 4000-byte requests at once (each counted 3 times: 24 KiB), not three.
    let options = TransportOptions {
        request_memory: 3 * 8 * 1024,
        busy_after: Duration::from_millis(200),
        ..fast_options()
    };
    let (addr, release, entered) = start_gated(&id, options);
    let conn = client(None, fast_options())
        .connect(addr, id.fingerprint())
        .await
        .unwrap();
    let request = |tag: u8| {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request(&[tag; 4000]).await })
    };
    let first = request(1);
    let second = request(2);
    while entered.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The third finds no room: answered busy after `busy_after`, never handled.
    let third = request(3).await.unwrap().unwrap();
    assert_eq!(third, b"busy");
    assert_eq!(entered.load(Ordering::SeqCst), 2);
    // Once the first two are answered, a new request is handled again.
    release.add_permits(3);
    assert_eq!(first.await.unwrap().unwrap(), [1; 4]);
    assert_eq!(second.await.unwrap().unwrap(), [2; 4]);
    assert_eq!(request(4).await.unwrap().unwrap(), [4; 4]);
}

/// A server without busy answers (a helper's): a request waiting for request memory
/// still ends at its deadline. Held past it, it would keep one of the server's request
/// slots for as long as another request holds the memory, and fail anyway once read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_memory_without_busy_answers_ends_at_its_deadline() {
    let id = identity(33);
    // Room for one 4000-byte request (counted 3 times: 12 KiB); a 1 s deadline.
    let server_options = TransportOptions {
        request_memory: 12 * 1024,
        request_timeout: Duration::from_secs(1),
        ..fast_options()
    };
    let (addr, release, entered) = start_gated_answering(&id, server_options, None);
    // The client waits far longer than the server's deadline.
    let patient = TransportOptions {
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let conn = client(None, patient)
        .connect(addr, id.fingerprint())
        .await
        .unwrap();
    let first = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request(&[1; 4000]).await })
    };
    while entered.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The first holds the memory (its handler waits); the second waits for memory.
    let started = std::time::Instant::now();
    let second = tokio::time::timeout(Duration::from_secs(8), conn.request(&[2; 4000]))
        .await
        .expect("the waiting request was held past its deadline");
    assert!(second.is_err(), "{second:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(entered.load(Ordering::SeqCst), 1);
    release.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), [1; 4]);
}

/// Anonymous peers (anyone can be one) holding every request they can, slowly: a
/// peer with a pinned certificate (the collector at the leader) is still served, from
/// the slots kept for pinned peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_cannot_take_the_slots_kept_for_pinned_peers() {
    let leader = identity(34);
    let collector = identity(35);
    let pins: PinSet = [*collector.fingerprint()].into_iter().collect();
    let options = TransportOptions {
        max_concurrent_requests: PINNED_RESERVED_REQUESTS + 2,
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let (addr, release, entered) = start_gated_with(
        &leader,
        &ClientAuth::Optional(pins),
        options.clone(),
        Some(b"busy"),
    );
    // Twice as many anonymous requests as there are slots, each held by the handler.
    let anonymous = client(None, options.clone())
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let crowd = requests_at_once(&anonymous, 0xA0, 2 * (PINNED_RESERVED_REQUESTS as u8 + 2));
    wait_for(&entered, 2, "the anonymous requests").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = entered.load(Ordering::SeqCst);
    assert_eq!(held, 2, "anonymous peers hold all but the reserved slots");
    // The collector's request is handled at once.
    let pinned = client(Some(&collector), options)
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let answer = {
        let pinned = pinned.clone();
        tokio::spawn(async move { pinned.request(&[0xC0; 8]).await })
    };
    wait_for(&entered, held + 1, "the pinned peer waits behind the crowd").await;
    release.add_permits(crowd.len() + 1);
    assert_eq!(answer.await.unwrap().unwrap(), [0xC0; 4]);
    for r in crowd {
        r.await.unwrap().unwrap();
    }
}

/// The size of the large requests below: more than two stream windows.
const LARGE_REQUEST: usize = 600 << 10;

/// Small flow-control windows (64 KiB a stream, 256 KiB a connection, 4 streams) and
/// request memory for one [`LARGE_REQUEST`] (counted three times), not two; a request
/// finding no room waits `busy_after`.
fn room_for_one_large_request(busy_after: Duration) -> TransportOptions {
    TransportOptions {
        max_frame_len: 1 << 20,
        request_timeout: Duration::from_secs(20),
        stream_receive_window: 64 << 10,
        receive_window: 256 << 10,
        max_concurrent_streams: 4,
        anonymous_concurrent_streams: 4,
        request_memory: 3 * LARGE_REQUEST + (LARGE_REQUEST / 2),
        busy_after,
        ..fast_options()
    }
}

/// Nine large requests on one connection, with room in `request_memory` for one at a
/// time and no busy answer: those waiting are not read, so what their peer already
/// sent holds connection credit. All nine must still be served, each after the one
/// before: the request being read always finds credit (the streams' windows together
/// fit the connection's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_for_memory_leave_credit_for_the_one_being_read() {
    let id = identity(31);
    let size = LARGE_REQUEST;
    let options = room_for_one_large_request(Duration::from_secs(60));
    let server = start_echo(&id, ClientAuth::Anonymous, options.clone());
    let conn = client(None, options)
        .connect(server.addr, id.fingerprint())
        .await
        .unwrap();
    let requests: Vec<_> = (0..9u8)
        .map(|tag| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.request(&vec![tag; size]).await })
        })
        .collect();
    let answers = tokio::time::timeout(Duration::from_secs(15), async {
        let mut answers = Vec::new();
        for r in requests {
            answers.push(r.await.unwrap().unwrap());
        }
        answers
    })
    .await
    .expect("a request being read stalled behind requests waiting for memory");
    for (tag, answer) in answers.iter().enumerate() {
        assert!(answer.ends_with(&vec![tag as u8; size]));
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 9);
}

#[tokio::test]
async fn stream_windows_larger_than_the_connection_window_are_refused() {
    let options = TransportOptions {
        max_concurrent_streams: 17,
        ..TransportOptions::default()
    };
    let Err(TransportError::Config(why)) =
        ClientEndpoint::bind(LOOPBACK.parse().unwrap(), None, options)
    else {
        panic!("17 streams × 256 KiB over a 4 MiB connection window was accepted");
    };
    assert!(why.contains("receive_window"), "{why}");
    assert!(
        ClientEndpoint::bind(LOOPBACK.parse().unwrap(), None, TransportOptions::default()).is_ok()
    );
}

/// A request larger than a stream window that is answered busy: the server stops
/// reading it, so its client's write stays blocked on flow control. The busy answer
/// must still reach the client at once, not when the request's timeout ends the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_answer_to_a_large_request_arrives_without_waiting_for_the_write() {
    let id = identity(32);
    let size = LARGE_REQUEST;
    let options = room_for_one_large_request(Duration::from_millis(200));
    let (addr, release, entered) = start_gated(&id, options.clone());
    let conn = client(None, options)
        .connect(addr, id.fingerprint())
        .await
        .unwrap();
    let first = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request(&vec![1; size]).await })
    };
    while entered.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    let second = tokio::time::timeout(Duration::from_secs(5), conn.request(&vec![2; size]))
        .await
        .expect("the busy answer waited for the blocked write to time out")
        .unwrap();
    assert_eq!(second, b"busy");
    assert!(started.elapsed() >= Duration::from_millis(200));
    release.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), [1; 4]);
}
