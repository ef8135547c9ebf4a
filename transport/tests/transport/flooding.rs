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
        .map(|_| {
            let endpoint = client(None, patient.clone());
            let fingerprint = *leader.fingerprint();
            tokio::spawn(async move { endpoint.connect(relay, &fingerprint).await })
        })
        .collect();
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
    assert_eq!(
        conn.request(b"hello").await.unwrap(),
        expected_echo(&PeerIdentity::Anonymous, b"hello")
    );
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
