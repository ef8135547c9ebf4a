//! Peers that hold a pinned certificate but not its key, and retries.

use super::*;

/// Presents `cert` while signing with another identity's key: a peer that copied a
/// pinned certificate (public) but does not hold its private key.
#[derive(Debug)]
struct Forged(Arc<rustls::sign::CertifiedKey>);

impl Forged {
    fn new(cert_of: &Identity, key_of: &Identity) -> Self {
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(
            key_of.private_key().expose_pkcs8_der().to_vec().into(),
        );
        let key = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        let cert = rustls::pki_types::CertificateDer::from(cert_of.certificate_der().to_vec());
        Forged(Arc::new(rustls::sign::CertifiedKey::new(vec![cert], key)))
    }
}

impl rustls::server::ResolvesServerCert for Forged {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for Forged {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_the_pinned_certificate_but_not_its_key_is_refused() {
    let real = identity(16);
    let attacker = identity(17);
    let mut tls = tls::server_tls_config(&attacker, &ClientAuth::Anonymous).unwrap();
    tls.cert_resolver = Arc::new(Forged::new(&real, &attacker));
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let forged_server = quinn::Endpoint::server(
        quinn::ServerConfig::with_crypto(Arc::new(crypto)),
        LOOPBACK.parse().unwrap(),
    )
    .unwrap();
    let addr = forged_server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = forged_server.accept().await {
            let _ = incoming.await;
        }
    });

    let client = client(None, fast_options());
    let err = client.connect(addr, real.fingerprint()).await.unwrap_err();
    // The fingerprint matches, so the refusal comes from the handshake signature check.
    assert!(matches!(err, TransportError::Tls(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_pinned_certificate_but_not_its_key_is_refused() {
    let helper = identity(18);
    let leader = identity(19);
    let attacker = identity(20);
    let pins: PinSet = [*leader.fingerprint()].into_iter().collect();
    let server = start_echo(&helper, ClientAuth::Required(pins), fast_options());

    let mut tls = tls::client_tls_config(*helper.fingerprint(), None).unwrap();
    tls.client_auth_cert_resolver = Arc::new(Forged::new(&leader, &attacker));
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client(LOOPBACK.parse().unwrap()).unwrap();
    let outcome = async {
        let conn = endpoint
            .connect_with(quinn::ClientConfig::new(Arc::new(crypto)), server.addr, "x")
            .unwrap()
            .await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&[3, 0, 0, 0, b'j', b'o', b'b']).await?;
        send.finish()?;
        Ok::<_, Box<dyn std::error::Error>>(recv.read_to_end(1024).await?)
    }
    .await;
    assert!(outcome.is_err(), "forged client got an answer: {outcome:?}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn required_client_auth_without_pins_is_a_configuration_error() {
    let err =
        tls::server_tls_config(&identity(21), &ClientAuth::Required(PinSet::new())).unwrap_err();
    assert!(matches!(err, TransportError::Config(_)), "{err:?}");
}

fn no_jitter(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        jitter: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_retries_until_a_late_server_comes_up() {
    let leader = identity(22);
    // Nothing answers at this address until the server starts.
    let addr = unused_port_below_the_ephemeral_range();
    let peer = Peer::new(
        client(
            None,
            TransportOptions {
                handshake_timeout: Duration::from_secs(1),
                ..fast_options()
            },
        ),
        addr,
        *leader.fingerprint(),
    );
    let late = {
        let options = fast_options();
        let leader = identity(22);
        tokio::spawn(async move {
            // After the first attempt's handshake has timed out.
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            let endpoint =
                ServerEndpoint::bind(addr, &leader, &ClientAuth::Anonymous, options).unwrap();
            endpoint
                .serve(|_peer, request| async move { request })
                .await;
        })
    };
    let mut attempts = Vec::new();
    let mut rng = ChaCha20Rng::from_seed([0; 32]);
    let answer = retry_with_backoff(&no_jitter(6), &mut rng, |attempt| {
        attempts.push(attempt);
        peer.request(b"upload")
    })
    .await
    .unwrap();
    assert_eq!(answer, b"upload");
    assert!(
        attempts.len() >= 2,
        "the first attempt cannot succeed: {attempts:?}"
    );
    late.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures_are_not_retried() {
    let real = identity(23);
    let impostor = identity(24);
    let server = start_echo(&impostor, ClientAuth::Anonymous, fast_options());
    let peer = Peer::new(
        client(None, fast_options()),
        server.addr,
        *real.fingerprint(),
    );
    let mut attempts = 0;
    let mut rng = ChaCha20Rng::from_seed([0; 32]);
    let err = retry_with_backoff(&no_jitter(5), &mut rng, |_| {
        attempts += 1;
        peer.request(b"x")
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, TransportError::PeerNotPinned { .. }),
        "{err:?}"
    );
    assert_eq!(attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_reuses_its_connection_and_reconnects_after_a_server_restart() {
    let helper = identity(25);
    // The server restarts at this address, which no other test may take meanwhile.
    let addr = unused_port_below_the_ephemeral_range();
    let first = start_echo_on(addr, &helper, ClientAuth::Anonymous, fast_options());
    let peer = Peer::new(client(None, fast_options()), addr, *helper.fingerprint());
    peer.request(b"a").await.unwrap();
    // Held to the end: a stable id is unique only among live connections, so the old
    // one must stay alive for the ids to be comparable.
    let old = peer.connection().await.unwrap();
    peer.request(b"b").await.unwrap();
    assert_eq!(
        peer.connection().await.unwrap().stable_id(),
        old.stable_id(),
        "connection reused"
    );
    assert_eq!(first.endpoint.open_connections(), 1);

    // Restart the server on the same address (same identity).
    first.endpoint.close();
    first.endpoint.wait_idle().await;
    drop(first);
    let second = start_echo_on(addr, &helper, ClientAuth::Anonymous, fast_options());
    let mut rng = ChaCha20Rng::from_seed([0; 32]);
    let answer = retry_with_backoff(&no_jitter(4), &mut rng, |_| peer.request(b"c"))
        .await
        .unwrap();
    assert_eq!(answer, expected_echo(&PeerIdentity::Anonymous, b"c"));
    assert_ne!(
        peer.connection().await.unwrap().stable_id(),
        old.stable_id(),
        "reconnected"
    );
    assert!(old.close_reason().is_some(), "the old connection is closed");
    assert_eq!(second.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_peer_skips_a_dead_replica_stays_put_and_fails_over() {
    let server = identity(26);
    let a = start_echo(&server, ClientAuth::Anonymous, fast_options());
    let b = start_echo(&server, ClientAuth::Anonymous, fast_options());
    // Nothing listens at the first address.
    let dead = unused_port_below_the_ephemeral_range();
    // Short enough that the dead address costs little, long enough that a loaded
    // machine still completes the live replicas' handshakes within it.
    let options = TransportOptions {
        handshake_timeout: Duration::from_secs(1),
        ..fast_options()
    };
    let peer = Peer::replicated(
        client(None, options),
        vec![dead, a.addr, b.addr],
        *server.fingerprint(),
        0,
    );
    for _ in 0..3 {
        peer.request(b"x").await.unwrap();
    }
    assert_eq!(peer.addr().await, a.addr, "the dead replica is skipped");
    assert_eq!(
        a.calls.load(Ordering::SeqCst),
        3,
        "and the peer stays on one replica"
    );
    assert_eq!(b.calls.load(Ordering::SeqCst), 0);
    // Replica A goes away: once the peer has heard so, the next request reaches B
    // without an error.
    let old = peer.connection().await.unwrap();
    a.endpoint.close();
    a.endpoint.wait_idle().await;
    tokio::time::timeout(Duration::from_secs(5), old.closed())
        .await
        .expect("the client never heard that replica A closed");
    let (answer, used) = peer.request_on(b"y").await;
    answer.unwrap();
    let used = used.expect("the request went over a connection");
    assert_eq!(b.calls.load(Ordering::SeqCst), 1);
    assert_eq!(peer.addr().await, b.addr);
    // Told to move on (the replica answered Busy), it leaves B for the next address.
    peer.move_on_from(used).await;
    assert_eq!(peer.addr().await, dead);
    // A second request answered Busy over the same connection (two jobs, or uploads
    // sharing it) leaves the peer where the first put it: not on to A, which would
    // skip it, nor round to the failing B.
    peer.move_on_from(used).await;
    assert_eq!(peer.addr().await, dead, "moved on once per connection");
    // Another peer started elsewhere begins at its own replica (load spreading).
    let other = Peer::replicated(
        client(None, fast_options()),
        vec![a.addr, b.addr],
        *server.fingerprint(),
        3,
    );
    assert_eq!(other.addr().await, b.addr);
}
