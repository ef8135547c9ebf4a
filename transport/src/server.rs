//! The request loop of a server: accept connections, one task per request stream, a
//! bounded number of requests handled at once.
//!
//! [`serve`] runs until the endpoint closes. For every accepted connection it waits for
//! the handshake (bounded by the handshake timeout), reads the peer's [`PeerIdentity`]
//! off TLS, and then for every bidirectional stream: takes one of the endpoint's
//! `max_concurrent_requests` permits (so a flood of streams queues instead of spawning
//! without bound), reads the request frame (size-limited, timed), calls the handler with
//! the peer identity and the request bytes, and writes the handler's response frame.
//!
//! The handler decides what a peer may do: TLS has already refused unpinned certificates
//! (per the endpoint's [`crate::tls::ClientAuth`]); the handler checks, for
//! example, that a job request comes from the leader's fingerprint and that an upload
//! carries a valid client credential tag. Protocol-level refusals are ordinary responses (an
//! encoded error message); the transport only refuses malformed frames, by resetting the
//! stream with one of the codes below.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::address::AddressSlot;
use crate::cert::Fingerprint;
use crate::endpoint::{PeerIdentity, ServerEndpoint, Streams};
use crate::error::TransportError;
use crate::frame::{read_frame_body, read_frame_len, write_frame};

/// Stream error code: the request frame was malformed, too large or too slow.
pub const STREAM_BAD_REQUEST: u32 = 1;

/// Stream error code: the request was answered busy without being read.
pub const STREAM_BUSY: u32 = 2;

/// Connection close code: the peer's source address has
/// [`max_connections_per_address`](crate::TransportOptions::max_connections_per_address)
/// connections open already.
pub const CONNECTION_LIMIT: u32 = 3;

/// Serves requests on `server` with `handler` until the endpoint closes
/// ([`ServerEndpoint::close`] or [`ServerEndpoint::shutdown`]). Connections over the
/// endpoint's limit are refused. Errors of one connection or stream are logged (at
/// `debug`, without payloads) and never stop the loop.
pub async fn serve<H, Fut>(server: &ServerEndpoint, handler: H)
where
    H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let handler = Arc::new(handler);
    while let Some(incoming) = server.endpoint.accept().await {
        if server.endpoint.open_connections() >= server.options.max_connections {
            tracing::info!(remote = %incoming.remote_address(), "connection refused: limit reached");
            incoming.refuse();
            continue;
        }
        let remote = incoming.remote_address();
        // An anonymous peer's connection counts against its source address
        // (`crate::address`). An attempt whose address is proved (it answered a Retry)
        // counts from now on, so a host cannot hold slots with handshakes it stalls;
        // others count once their handshake ends (`handle_connection`), since counting
        // a spoofed address would let an attacker lock its real owner out. An address
        // at its limit gets no connection entry, whose closing would hold a slot of
        // `max_connections` for a while: an unproved attempt is asked to prove itself
        // first (a Retry keeps no state; a spoofer cannot answer), a proved one is
        // refused, unless it may be a pinned peer (where those connect too, a few such
        // attempts at a time are let in to tell by their handshake).
        let mut address = None;
        if server.starting_limits == Streams::Anonymous {
            let ip = remote.ip();
            if incoming.remote_address_validated() {
                address = server.addresses.admit(ip).or_else(|| {
                    server
                        .pinned_may_connect
                        .then(|| server.addresses.admit_on_probation(ip))
                        .flatten()
                });
                if address.is_none() {
                    tracing::info!(%remote, "connection refused: too many from its address");
                    server.address_refusals.fetch_add(1, Ordering::Relaxed);
                    incoming.refuse();
                    continue;
                }
            } else if server.addresses.is_full(ip) {
                if let Err(e) = incoming.retry() {
                    e.into_incoming().ignore();
                }
                continue;
            }
        }
        // Many handshakes at once: maybe a flood from addresses that never answer, each
        // holding a connection slot until its handshake times out. A new attempt must
        // then first prove it receives at its address; a Retry keeps no state here.
        if !incoming.remote_address_validated()
            && server.handshakes.load(Ordering::SeqCst) >= server.options.unvalidated_handshakes()
        {
            tracing::debug!(%remote, "address validation asked: many handshakes in progress");
            if let Err(e) = incoming.retry() {
                e.into_incoming().ignore();
            }
            continue;
        }
        // Accepting here, not in the spawned task, counts the connection at once, so a
        // burst of attempts cannot pass the limit check together.
        let connecting = match incoming.accept() {
            Ok(connecting) => connecting,
            Err(e) => {
                tracing::info!(%remote, error = %e, "connection attempt failed");
                continue;
            }
        };
        let handshake = Handshake::start(&server.handshakes);
        tokio::spawn(handle_connection(
            connecting,
            handshake,
            address,
            remote,
            server.clone(),
            handler.clone(),
        ));
    }
}

impl ServerEndpoint {
    /// [`serve`] on this endpoint.
    pub async fn serve<H, Fut>(&self, handler: H)
    where
        H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<u8>> + Send + 'static,
    {
        serve(self, handler).await;
    }
}

/// One of a pinned certificate's [`crate::PINNED_FULL_CONNECTIONS`] connections with
/// full stream limits, counted until dropped.
struct FullLimits {
    counts: Arc<Mutex<HashMap<Fingerprint, usize>>>,
    fingerprint: Fingerprint,
}

impl FullLimits {
    /// Counts a connection of `fingerprint`, if it has fewer than the limit.
    fn take(server: &ServerEndpoint, fingerprint: Fingerprint) -> Option<Self> {
        let mut counts = server
            .full_connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(fingerprint).or_insert(0);
        if *count >= crate::PINNED_FULL_CONNECTIONS {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: Arc::clone(&server.full_connections),
            fingerprint,
        })
    }
}

impl Drop for FullLimits {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.fingerprint) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.fingerprint);
            }
        }
    }
}

/// Counts one connection as in its handshake until dropped.
struct Handshake(Arc<AtomicUsize>);

impl Handshake {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle_connection<H, Fut>(
    connecting: quinn::Connecting,
    handshake: Handshake,
    address: Option<AddressSlot>,
    remote: SocketAddr,
    server: ServerEndpoint,
    handler: Arc<H>,
) where
    H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let handshook = tokio::time::timeout(server.options.handshake_timeout, connecting).await;
    let conn = match handshook {
        Ok(Ok(conn)) => conn,
        // A failed handshake is a connection quinn keeps in its table while it closes
        // (three probe timeouts), like any other: it stays counted, as a handshake and
        // against its address, for the linger, so that attempts failed on purpose
        // cannot fill the table either.
        Ok(Err(e)) => {
            tracing::info!(%remote, error = %e, "handshake failed");
            return linger((handshake, address), server.options.address_linger);
        }
        Err(_) => {
            tracing::info!(%remote, "handshake timed out");
            return linger((handshake, address), server.options.address_linger);
        }
    };
    drop(handshake);
    let peer = PeerIdentity::of(&conn);
    tracing::debug!(%remote, %peer, "connection established");
    // The connection started with an anonymous peer's stream limits where those may
    // connect; a pinned peer, now proved, gets the full ones on a few connections.
    let _full = match peer {
        PeerIdentity::Certificate(fp) if server.starting_limits == Streams::Anonymous => {
            let slot = FullLimits::take(&server, fp);
            if slot.is_some() {
                let (streams, window) = server.options.limits_for(Streams::Full);
                conn.set_max_concurrent_bi_streams(streams.into());
                conn.set_receive_window(window);
            } else {
                tracing::info!(%remote, %peer, "pinned peer's connection kept at anonymous limits");
            }
            slot
        }
        _ => None,
    };
    // An anonymous peer is counted against its source address, and its requests take
    // from the address's share first (`crate::address`).
    let address = match peer {
        PeerIdentity::Anonymous => match address.or_else(|| server.addresses.admit(remote.ip())) {
            Some(slot) if !slot.on_probation() => Some(slot),
            over => {
                // Over the limit: several attempts raced for the address's last place,
                // or one was let in on probation and is not a pinned peer.
                tracing::info!(%remote, "connection closed: too many from its address");
                server.address_refusals.fetch_add(1, Ordering::Relaxed);
                conn.close(
                    CONNECTION_LIMIT.into(),
                    b"too many connections from this address",
                );
                // It closes like any connection; its slot (if on probation) stays
                // counted meanwhile, and so does it as a handshake (if it had no slot,
                // having raced), which keeps further unproved attempts to Retries.
                let handshake = over.is_none().then(|| Handshake::start(&server.handshakes));
                return linger((over, handshake), server.options.address_linger);
            }
        },
        PeerIdentity::Certificate(_) => {
            drop(address); // pinned peers are not counted
            None
        }
    };
    serve_streams(&conn, peer, remote, address.as_ref(), &server, &handler).await;
    // Closed. quinn keeps a closed connection in its table (counted against
    // `max_connections`) for three probe timeouts, which a peer can stretch to about
    // 50 s by advertising a long ack delay; the address keeps the connection's place a
    // while too, so that one host opening and closing connections cannot fill the
    // table with closing ones.
    // A peer that delays its acknowledgements inflates the round-trip estimate, and so
    // the closing time, by several times the delay: the place lingers as much longer.
    if let Some(slot) = address {
        let closing = conn.rtt().saturating_mul(15);
        linger(slot, server.options.address_linger.saturating_add(closing));
    }
}

/// Keeps `held` (counts of a connection that is closing) for `linger`, then drops it.
fn linger<T: Send + 'static>(held: T, linger: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(linger).await;
        drop(held);
    });
}

/// Takes `conn`'s request streams until it closes, one task each.
async fn serve_streams<H, Fut>(
    conn: &quinn::Connection,
    peer: PeerIdentity,
    remote: SocketAddr,
    address: Option<&AddressSlot>,
    server: &ServerEndpoint,
    handler: &Arc<H>,
) where
    H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let share = address.map(|slot| slot.share());
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%remote, %peer, reason = %e, "connection closed");
                return;
            }
        };
        // Wait for a permit before taking more streams of this connection: further
        // streams queue in QUIC flow control, bounded by `max_concurrent_streams`. An
        // anonymous peer takes one of the anonymous share first, so the slots kept for
        // pinned peers stay free for them.
        let Ok(permit) = take_share(
            share.map(|s| &s.requests),
            &server.anonymous_requests,
            &server.requests,
            1,
        )
        .await
        else {
            return; // the semaphores are never closed; nothing to serve if they were
        };
        let origin = Origin {
            peer,
            remote,
            address_memory: share.map(|s| Arc::clone(&s.memory)),
        };
        tokio::spawn(handle_stream(
            send,
            recv,
            origin,
            server.clone(),
            handler.clone(),
            permit,
        ));
    }
}

/// Where a request stream comes from: the peer, its address, and (for an anonymous
/// peer) its address's share of the request memory.
struct Origin {
    peer: PeerIdentity,
    remote: SocketAddr,
    address_memory: Option<Arc<Semaphore>>,
}

async fn handle_stream<H, Fut>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    origin: Origin,
    server: ServerEndpoint,
    handler: Arc<H>,
    permit: Held,
) where
    H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let Origin {
        peer,
        remote,
        address_memory,
    } = origin;
    let in_flight = server.in_flight.enter();
    let options = &server.options;
    let deadline = crate::frame::deadline_after(options.request_timeout);
    let timed_out = || TransportError::Timeout {
        kind: crate::error::TimeoutKind::Read,
        after: options.request_timeout,
    };
    let refuse =
        |send: &mut quinn::SendStream, recv: &mut quinn::RecvStream, e: &TransportError| {
            tracing::info!(%remote, %peer, error = %e, "request refused");
            // Ignoring the results: the stream may already be closed by the peer.
            let _ = recv.stop(STREAM_BAD_REQUEST.into());
            let _ = send.reset(STREAM_BAD_REQUEST.into());
        };
    let len =
        match tokio::time::timeout_at(deadline, read_frame_len(&mut recv, options.max_frame_len))
            .await
            .unwrap_or_else(|_| Err(timed_out()))
        {
            Ok(len) => len,
            Err(e) => return refuse(&mut send, &mut recv, &e),
        };
    // Room for the frame in the request memory, before it is read: a request that finds
    // none within `busy_after` is answered busy and its bytes are left unread (QUIC flow
    // control holds the rest at the peer).
    let kib = u32::try_from((u64::from(len) * u64::from(crate::REQUEST_COPIES)).div_ceil(1024))
        .unwrap_or(u32::MAX);
    // The wait ends at the request's deadline at the latest: a request that could not
    // be read in time anyway is answered busy, not reset.
    let wait_until = crate::frame::deadline_after(options.busy_after).min(deadline);
    let memory = match tokio::time::timeout_at(
        wait_until,
        take_share(
            address_memory.as_ref(),
            &server.anonymous_memory,
            &server.memory,
            kib,
        ),
    )
    .await
    {
        Ok(Ok(memory)) => memory,
        Ok(Err(_)) => return, // the semaphore is never closed
        Err(_) => match &server.busy {
            Some(busy) => {
                tracing::debug!(%remote, %peer, len, "request answered busy: no request memory");
                server
                    .busy_answers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = recv.stop(STREAM_BUSY.into());
                drop(permit);
                if write_frame(&mut send, busy, options.request_timeout)
                    .await
                    .is_ok()
                {
                    let _ = send.finish();
                    let _ = tokio::time::timeout(options.request_timeout, send.stopped()).await;
                }
                return;
            }
            // No busy answer (a helper's server): wait on, up to the request's deadline.
            // Past it the request could not be read in time anyway, and waiting longer
            // would keep its request slot while another request holds the memory.
            None => match tokio::time::timeout_at(
                deadline,
                take_share(
                    address_memory.as_ref(),
                    &server.anonymous_memory,
                    &server.memory,
                    kib,
                ),
            )
            .await
            {
                Ok(Ok(memory)) => memory,
                Ok(Err(_)) => return,
                Err(_) => return refuse(&mut send, &mut recv, &timed_out()),
            },
        },
    };
    let request = match tokio::time::timeout_at(deadline, read_frame_body(&mut recv, len))
        .await
        .unwrap_or_else(|_| Err(timed_out()))
    {
        Ok(request) => request,
        Err(e) => return refuse(&mut send, &mut recv, &e),
    };
    let response = handler(peer, request).await;
    // The handler has dropped the request: its memory is free again.
    drop(memory);
    let written: Result<(), TransportError> = async {
        write_frame(&mut send, &response, options.request_timeout).await?;
        send.finish()
            .map_err(|e| TransportError::Closed(e.to_string()))
    }
    .await;
    // The handler is done: let the next request in while the response travels.
    drop(permit);
    if let Err(e) = written {
        tracing::debug!(%remote, %peer, error = %e, "response not delivered");
        return;
    }
    // Stay counted until the peer acknowledges the response, so a graceful shutdown
    // does not cut it off; the outcome itself needs no handling.
    let _ = tokio::time::timeout(options.request_timeout, send.stopped()).await;
    drop(in_flight);
}

/// Permits a request holds: of its address's share and of the anonymous share
/// (anonymous peers only), and of the whole. Released together when dropped.
struct Held {
    _address: Option<OwnedSemaphorePermit>,
    _anonymous: Option<OwnedSemaphorePermit>,
    _whole: OwnedSemaphorePermit,
}

/// `n` permits of a limit (request slots or request memory). An anonymous peer (one
/// with an `address_share`) takes them of its address's share first, then of the
/// anonymous share, then of the whole: a host over its share waits without holding
/// anything others need, and the part kept for pinned peers stays free for them.
async fn take_share(
    address_share: Option<&Arc<Semaphore>>,
    anonymous_share: &Arc<Semaphore>,
    whole: &Arc<Semaphore>,
    n: u32,
) -> Result<Held, tokio::sync::AcquireError> {
    let (address, anonymous) = match address_share {
        Some(address_share) => (
            Some(address_share.clone().acquire_many_owned(n).await?),
            Some(anonymous_share.clone().acquire_many_owned(n).await?),
        ),
        None => (None, None),
    };
    let total = whole.clone().acquire_many_owned(n).await?;
    Ok(Held {
        _address: address,
        _anonymous: anonymous,
        _whole: total,
    })
}
