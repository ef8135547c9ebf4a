//! A server under a flood from peers it cannot tell apart from clients: half-open
//! handshakes from addresses that never answer (spoofed sources), and anonymous
//! connections opening as many streams as QUIC lets them, each holding a stream
//! window of unread bytes.

use super::*;

/// [`fast_options`] with `anonymous_concurrent_streams` and room for requests that the
/// gated handler holds for a while.
fn holding_options(anonymous_concurrent_streams: u32) -> TransportOptions {
    TransportOptions {
        anonymous_concurrent_streams,
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    }
}

/// A UDP relay that forwards every datagram it receives from `clients` to `server`
/// and drops every datagram coming back: the server sees handshakes from the relay's
/// address that it can answer but never complete, as from a spoofed source address.
async fn black_hole_relay(server: SocketAddr) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind(LOOPBACK).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if from != server {
                let _ = socket.send_to(&buf[..n], server).await;
            }
        }
    });
    addr
}

/// An anonymous client connecting to `to` (the server `server`, perhaps through a
/// relay) on its own endpoint, in the background.
fn connect_in_background(
    to: SocketAddr,
    server: &Identity,
    options: TransportOptions,
) -> tokio::task::JoinHandle<Result<cairn_transport::Connection, TransportError>> {
    let endpoint = client(None, options);
    let fingerprint = *server.fingerprint();
    tokio::spawn(async move { endpoint.connect(to, &fingerprint).await })
}

/// `conn`'s anonymous request `request` is answered by the echo server.
async fn assert_served(conn: &cairn_transport::Connection, request: &[u8]) {
    assert_eq!(
        conn.request(request).await.unwrap(),
        expected_echo(&PeerIdentity::Anonymous, request)
    );
}

/// Half-open handshakes (an attacker sending QUIC Initial packets from addresses it
/// does not receive at) hold a connection slot each until the handshake times out.
/// Past a few, the server asks new handshakes to prove their address first (a QUIC
/// Retry, RFC 9000 §8.1.2), which such an attacker cannot answer: the slots stay free
/// for a client that can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_handshakes_from_unreachable_addresses_cannot_fill_the_connection_slots() {
    let leader = identity(40);
    let max_connections = 4;
    let server = start_echo(
        &leader,
        ClientAuth::Anonymous,
        TransportOptions {
            max_connections,
            // Half-open handshakes are held for the whole test.
            handshake_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30),
            ..fast_options()
        },
    );
    let relay = black_hole_relay(server.addr).await;
    // Each stalled client is its own endpoint (its own connection IDs); all reach the
    // server from the relay's address, which never answers.
    let patient = TransportOptions {
        handshake_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let stalled: Vec<_> = (0..2 * max_connections)
        .map(|_| connect_in_background(relay, &leader, patient.clone()))
        .collect();
    wait_until(
        || server.endpoint.open_connections() >= 1,
        "the first half-open handshake",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // max_connections / 8, at least 1: one half-open handshake, the others retried.
    let held = server.endpoint.open_connections();
    assert_eq!(
        held, 1,
        "{held} half-open handshakes hold the server's {max_connections} connection slots"
    );
    // A client that answers gets in, and is served.
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        client(None, fast_options()).connect(server.addr, leader.fingerprint()),
    )
    .await
    .expect("the connection attempt stalled")
    .expect("a reachable client was refused while half-open handshakes were held");
    assert_served(&conn, b"hello").await;
    for s in stalled {
        s.abort();
    }
}

/// What an anonymous peer can make a server hold unread: QUIC lets a peer open as many
/// streams as the server allows and send a stream window on each before the server
/// reads a byte. An anonymous connection gets `anonymous_concurrent_streams` streams;
/// a peer with a pinned certificate (the collector at a leader) gets
/// `max_concurrent_streams`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_connection_gets_fewer_streams_than_a_pinned_one() {
    let leader = identity(41);
    let collector = identity(42);
    let pins: PinSet = [*collector.fingerprint()].into_iter().collect();
    let options = TransportOptions {
        max_concurrent_streams: 8,
        stream_receive_window: 64 << 10,
        receive_window: 512 << 10,
        ..holding_options(2)
    };
    let (addr, release, entered) = start_gated_with(
        &leader,
        &ClientAuth::Optional(pins),
        options.clone(),
        Some(b"busy"),
    );
    // Six requests at once on one anonymous connection: its streams are used up by the
    // first two (held by the handler); the others wait for one to close.
    let anonymous = client(None, options.clone())
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let crowd = requests_at_once(&anonymous, 0xA0, 6);
    wait_for(&entered, 2, "the anonymous connection's first two requests").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        entered.load(Ordering::SeqCst),
        2,
        "an anonymous connection opened more streams than anonymous_concurrent_streams"
    );
    // Six at once on a pinned connection: all six are taken.
    let pinned = client(Some(&collector), options)
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let answers = requests_at_once(&pinned, 0xC0, 6);
    wait_for(&entered, 8, "the pinned connection's six requests").await;
    release.add_permits(crowd.len() + answers.len());
    for (i, r) in answers.into_iter().enumerate() {
        assert_eq!(r.await.unwrap().unwrap(), [0xC0, i as u8, 0, 0]);
    }
    for (i, r) in crowd.into_iter().enumerate() {
        assert_eq!(r.await.unwrap().unwrap(), [0xA0, i as u8, 0, 0]);
    }
}

#[tokio::test]
async fn anonymous_streams_beyond_the_streams_of_a_connection_are_refused() {
    for anonymous_concurrent_streams in [0, 17] {
        let options = TransportOptions {
            anonymous_concurrent_streams,
            ..TransportOptions::default()
        };
        let Err(TransportError::Config(why)) = ServerEndpoint::bind(
            LOOPBACK.parse().unwrap(),
            &identity(43),
            &ClientAuth::Anonymous,
            options,
        ) else {
            panic!("anonymous_concurrent_streams = {anonymous_concurrent_streams} was accepted");
        };
        assert!(why.contains("anonymous_concurrent_streams"), "{why}");
    }
}

/// A pinned certificate (the collector's, perhaps stolen) gets full stream limits on
/// a few connections only: on more, it would make the server hold as much unread as
/// before the anonymous limit existed. Further connections keep the anonymous limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_peer_gets_full_stream_limits_on_a_few_connections_only() {
    let leader = identity(44);
    let collector = identity(45);
    let pins: PinSet = [*collector.fingerprint()].into_iter().collect();
    let options = holding_options(1);
    let (addr, release, entered) = start_gated_with(
        &leader,
        &ClientAuth::Optional(pins),
        options.clone(),
        Some(b"busy"),
    );
    let endpoint = client(Some(&collector), options);
    let mut conns = Vec::new();
    for _ in 0..=cairn_transport::PINNED_FULL_CONNECTIONS {
        conns.push(endpoint.connect(addr, leader.fingerprint()).await.unwrap());
    }
    // Three requests at once on each connection. Which connection is one too many is
    // the server's order of completing handshakes, not the order of `connect`: count
    // the streams taken over all of them. Each of the first few takes three; the one
    // beyond, one at a time.
    let full = cairn_transport::PINNED_FULL_CONNECTIONS;
    let held: Vec<_> = conns
        .iter()
        .enumerate()
        .flat_map(|(i, conn)| requests_at_once(conn, i as u8, 3))
        .collect();
    wait_for(&entered, 3 * full + 1, "the pinned peer's connections").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        entered.load(Ordering::SeqCst),
        3 * full + 1,
        "a pinned peer's connection beyond the first {full} got full stream limits"
    );
    release.add_permits(held.len());
    for r in held {
        r.await.unwrap().unwrap();
    }
}

/// A server that takes pinned peers only (a helper) gives them full limits at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_of_pinned_peers_only_gives_full_stream_limits() {
    let helper = identity(46);
    let leader = identity(47);
    let pins: PinSet = [*leader.fingerprint()].into_iter().collect();
    let options = holding_options(1);
    let (addr, release, entered) =
        start_gated_with(&helper, &ClientAuth::Required(pins), options.clone(), None);
    let conn = client(Some(&leader), options)
        .connect(addr, helper.fingerprint())
        .await
        .unwrap();
    let held = requests_at_once(&conn, 0x1E, 4);
    wait_for(&entered, 4, "the helper's pinned leader").await;
    release.add_permits(held.len());
    for r in held {
        r.await.unwrap().unwrap();
    }
}

/// A second loopback address (Linux routes all of 127.0.0.0/8 to `lo`): another host.
const OTHER_HOST: &str = "127.0.0.2:0";

fn client_from(host: &str, options: TransportOptions) -> ClientEndpoint {
    ClientEndpoint::bind(host.parse().unwrap(), None, options).unwrap()
}

/// One host opening connection after connection: past `max_connections_per_address`
/// its connections are closed once their handshake ends, so it cannot hold the
/// server's connection slots. Another host, and a peer with a pinned certificate on
/// the same host, still connect; a closed connection's place is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_an_addresses_limit_are_closed_others_still_connect() {
    let leader = identity(48);
    let collector = identity(49);
    let pins: PinSet = [*collector.fingerprint()].into_iter().collect();
    let options = TransportOptions {
        max_connections_per_address: 2,
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Optional(pins), options.clone());
    let host = client(None, options.clone());
    let connect = || host.connect(server.addr, leader.fingerprint());
    let first = connect().await.unwrap();
    let second = connect().await.unwrap();
    for conn in [&first, &second] {
        assert_served(conn, b"in").await;
    }
    // The third proves its address (a Retry), is let through its handshake in case it
    // is a pinned peer, and, being anonymous, is closed with the reason.
    let refused = match connect().await {
        Ok(third) => third.request(b"over").await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(&refused, TransportError::Closed(why) if why.contains("too many connections from this address")),
        "{refused:?}"
    );
    assert!(
        refused.is_retriable(),
        "a client over the limit retries later"
    );
    // Another host is not affected.
    let elsewhere = client_from(OTHER_HOST, options.clone())
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert_served(&elsewhere, b"other").await;
    // Nor is a pinned peer on the same host.
    let pinned = client(Some(&collector), options)
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert_eq!(
        pinned.request(b"pinned").await.unwrap(),
        expected_echo(
            &PeerIdentity::Certificate(*collector.fingerprint()),
            b"pinned"
        )
    );
    // Once the first is closed (and the server has heard it), the host connects again.
    first.close();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = match connect().await {
            Ok(conn) => conn.request(b"again").await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(answer) => {
                assert_eq!(answer, expected_echo(&PeerIdentity::Anonymous, b"again"));
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "a closed connection's place was not given back: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(second.request(b"still").await.is_ok());
}

/// One host holding its share of the request memory (here, requests the handler
/// holds; a peer sending slowly holds it the same way): its further requests are
/// answered busy, while another host's request is handled. Without the share, the
/// first host's four requests would take all the memory and the other host's would be
/// answered busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_take_the_request_memory_of_others() {
    let leader = identity(50);
    // Room for four 4000-byte requests (each counted 3 times: 12 KiB); a host's share,
    // 25 %, is one of them.
    let options = TransportOptions {
        request_memory: 4 * 12 * 1024,
        busy_after: Duration::from_millis(200),
        address_share_percent: 25,
        // The held request waits for three busy answers and another host's handshake.
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let (addr, release, entered) = start_gated(&leader, options.clone());
    let host = client(None, options.clone())
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let request = |conn: &cairn_transport::Connection, tag: u8| {
        let conn = conn.clone();
        tokio::spawn(async move { conn.request(&[tag; 4000]).await })
    };
    let held = request(&host, 1);
    wait_for(&entered, 1, "the host's first request").await;
    for tag in 2..=4 {
        assert_eq!(request(&host, tag).await.unwrap().unwrap(), b"busy");
    }
    assert_eq!(entered.load(Ordering::SeqCst), 1);
    let other = client_from(OTHER_HOST, options)
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let served = request(&other, 5);
    wait_for(&entered, 2, "the other host's request").await;
    release.add_permits(2);
    assert_eq!(held.await.unwrap().unwrap(), [1; 4]);
    assert_eq!(served.await.unwrap().unwrap(), [5; 4]);
}

/// One host holding its share of the request slots: its further requests wait, and
/// another host's request is handled at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_take_the_request_slots_of_others() {
    let leader = identity(51);
    // Eight slots; a host's share, 25 %, is two.
    let options = TransportOptions {
        max_concurrent_requests: 8,
        address_share_percent: 25,
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let (addr, release, entered) = start_gated(&leader, options.clone());
    let host = client(None, options.clone())
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    let mut held = requests_at_once(&host, 0xA0, 4);
    wait_for(&entered, 2, "the host's first two requests").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        entered.load(Ordering::SeqCst),
        2,
        "one host held more than its share of the request slots"
    );
    let other = client_from(OTHER_HOST, options)
        .connect(addr, leader.fingerprint())
        .await
        .unwrap();
    held.extend(requests_at_once(&other, 0xB0, 1));
    wait_for(&entered, 3, "the other host's request").await;
    release.add_permits(held.len());
    for r in held {
        r.await.unwrap().unwrap();
    }
}

/// A UDP relay at `host` (port 0) between one client and `server` that passes the
/// client's datagrams on and only the first of the server's back: a client whose
/// attempt gets a Retry proves its address (the relay's) with it, then hears nothing
/// more, and its handshake stalls after the server has accepted it.
async fn relay_passing_one_answer(host: &str, server: SocketAddr) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind(host).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let (mut client, mut answered) = (None, false);
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if from != server {
                client = Some(from);
                let _ = socket.send_to(&buf[..n], server).await;
            } else if let (Some(client), false) = (client, answered) {
                answered = true;
                let _ = socket.send_to(&buf[..n], client).await;
            }
        }
    });
    addr
}

/// A host that has proved its address (it answered a Retry, as every attempt must
/// while many handshakes are in progress) is counted from its handshake's start, so
/// it cannot hold connection slots with handshakes it stalls: past its limit, its
/// attempts are refused before any handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_a_proved_address_is_counted_before_its_handshake() {
    let leader = identity(52);
    // Eight connections: while one handshake is in progress, new attempts get a Retry.
    let options = TransportOptions {
        max_connections: 8,
        max_connections_per_address: 2,
        handshake_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Anonymous, options.clone());
    // One half-open handshake (through a relay that drops the answers) holds the
    // handshake in progress for the whole test.
    let relay = black_hole_relay(server.addr).await;
    let mut stalled = vec![connect_in_background(relay, &leader, options.clone())];
    wait_until(
        || server.endpoint.open_connections() == 1,
        "the stalled handshake",
    )
    .await;
    // The host (127.0.0.3) starts two handshakes that prove its address, then stall.
    for n in 2..=3 {
        let relay = relay_passing_one_answer("127.0.0.3:0", server.addr).await;
        stalled.push(connect_in_background(relay, &leader, options.clone()));
        wait_until(
            || server.endpoint.open_connections() == n,
            "a proved handshake that stalls",
        )
        .await;
    }
    // They count: the host's third attempt is refused before any handshake.
    let refused = client_from("127.0.0.3:0", options.clone())
        .connect(server.addr, leader.fingerprint())
        .await
        .expect_err("a host holding its limit in stalled handshakes connected");
    assert!(
        matches!(&refused, TransportError::Closed(why) if why.contains("refused")),
        "{refused:?}"
    );
    assert_eq!(server.endpoint.open_connections(), 3);
    // Another host is served.
    let elsewhere = client_from(OTHER_HOST, options)
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert_served(&elsewhere, b"in").await;
    for s in stalled {
        s.abort();
    }
}

/// A failed handshake stays counted among the handshakes in progress while quinn keeps
/// it (closing) in its table: one peer failing handshakes on purpose, fast, cannot
/// fill the table without first proving its address (a Retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_still_count_as_handshakes_while_they_close() {
    let leader = identity(57);
    // Eight connections: while one handshake is in progress, new attempts get a Retry.
    let options = TransportOptions {
        max_connections: 8,
        handshake_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        address_linger: Duration::from_secs(30),
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Anonymous, options.clone());
    // A client pinning another certificate aborts the handshake.
    let wrong_pin = *identity(58).fingerprint();
    let err = client(None, options.clone())
        .connect(server.addr, &wrong_pin)
        .await
        .expect_err("a wrong pin was accepted");
    assert!(
        matches!(err, TransportError::PeerNotPinned { .. }),
        "{err:?}"
    );
    wait_until(
        || server.endpoint.open_connections() == 0,
        "the failed handshake closing",
    )
    .await;
    // It still counts: an attempt that cannot answer a Retry gets no connection entry.
    let relay = black_hole_relay(server.addr).await;
    let stalled = connect_in_background(relay, &leader, options.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.endpoint.open_connections(),
        0,
        "an unproved attempt was accepted right after a failed handshake"
    );
    // An honest client answers the Retry and is served.
    let conn = client(None, options)
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert!(conn.request(b"in").await.is_ok());
    stalled.abort();
}

/// Waits until `done` holds, or fails with `why` after 5 s.
async fn wait_until(done: impl Fn() -> bool, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{why}: not within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Attempts from one host racing for its last place: exactly one is served, and the
/// other refused, before its handshake or (when both passed the check before either
/// finished) just after it, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_attempts_for_an_addresses_last_place_get_one_connection() {
    let leader = identity(53);
    let options = TransportOptions {
        max_connections_per_address: 1,
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Anonymous, options.clone());
    for round in 0..5 {
        let (a, b) = (client(None, options.clone()), client(None, options.clone()));
        let attempt = |endpoint: ClientEndpoint| {
            let fingerprint = *leader.fingerprint();
            async move {
                let conn = endpoint.connect(server.addr, &fingerprint).await?;
                conn.request(b"race").await?;
                Ok::<_, TransportError>((endpoint, conn))
            }
        };
        let (first, second) = tokio::join!(attempt(a), attempt(b));
        let served = [&first, &second].iter().filter(|r| r.is_ok()).count();
        assert_eq!(served, 1, "round {round}: {first:?} / {second:?}");
        for refused in [&first, &second]
            .into_iter()
            .filter_map(|r| r.as_ref().err())
        {
            assert!(
                matches!(refused, TransportError::Closed(why)
                    if why.contains("refused") || why.contains("too many connections from this address")),
                "{refused:?}"
            );
        }
        // Closing the served one gives the place back (no linger here).
        let (endpoint, conn) = first.or(second).unwrap();
        conn.close();
        endpoint.wait_idle().await;
        wait_until(|| server.endpoint.open_connections() == 0, "the close").await;
    }
}

/// A closed connection keeps its address's place for `address_linger`: a host cannot
/// cycle through connections faster than its limit per linger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_keeps_its_addresses_place_for_the_linger() {
    let leader = identity(54);
    let linger = Duration::from_millis(1_500);
    let options = TransportOptions {
        max_connections_per_address: 1,
        address_linger: linger,
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Anonymous, options.clone());
    let host = client(None, options);
    let conn = host
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    conn.request(b"once").await.unwrap();
    conn.close();
    let closed = std::time::Instant::now();
    wait_until(|| server.endpoint.open_connections() == 0, "the close").await;
    let refused = host.connect(server.addr, leader.fingerprint()).await;
    if closed.elapsed() < linger {
        assert!(
            matches!(&refused, Err(TransportError::Closed(why)) if why.contains("refused")),
            "a closed connection's place was given back before the linger: {refused:?}"
        );
    }
    // (Connected, on a machine so slow that the linger had passed: that connection
    // would hold the only place.)
    drop(refused);
    // After the linger, the host connects again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match host.connect(server.addr, leader.fingerprint()).await {
            Ok(conn) if conn.request(b"again").await.is_ok() => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "the place was not given back after the linger: {:?}",
                other.err()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed.elapsed() >= linger);
}

/// On a server that takes pinned peers too, a full address's proved attempts go
/// through their handshake in case they are pinned, but only a few per linger: past
/// those, a host's attempts are refused before any handshake, so it cannot churn
/// through closed connections (each of which quinn keeps in its table a while).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_address_gets_few_handshakes_in_case_they_are_pinned() {
    let leader = identity(55);
    let collector = identity(56);
    let pins: PinSet = [*collector.fingerprint()].into_iter().collect();
    let options = TransportOptions {
        max_connections_per_address: 1,
        address_linger: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let server = start_echo(&leader, ClientAuth::Optional(pins), options.clone());
    let host = client(None, options.clone());
    let kept = host
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    kept.request(b"in").await.unwrap();
    // A pinned peer on the same host is served.
    let pinned = client(Some(&collector), options)
        .connect(server.addr, leader.fingerprint())
        .await
        .unwrap();
    assert!(pinned.request(b"collect").await.is_ok());
    let attempt = || async {
        match host.connect(server.addr, leader.fingerprint()).await {
            Ok(conn) => conn.request(b"over").await.unwrap_err(),
            Err(e) => e,
        }
    };
    // Eight anonymous ones go through their handshake and are closed with the reason…
    for i in 0..8 {
        let err = attempt().await;
        assert!(
            matches!(&err, TransportError::Closed(why) if why.contains("too many connections from this address")),
            "attempt {i}: {err:?}"
        );
    }
    // …and keep their places: the next is refused before its handshake.
    let err = attempt().await;
    assert!(
        matches!(&err, TransportError::Closed(why) if why.contains("refused")),
        "{err:?}"
    );
    assert!(kept.request(b"still").await.is_ok());
}
