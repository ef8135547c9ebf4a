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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::endpoint::{PeerIdentity, ServerEndpoint};
use crate::error::TransportError;
use crate::frame::{read_frame, write_frame};

/// Stream error code: the request frame was malformed, too large or too slow.
pub const STREAM_BAD_REQUEST: u32 = 1;

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
        // Accepting here, not in the spawned task, counts the connection at once, so a
        // burst of attempts cannot pass the limit check together.
        let connecting = match incoming.accept() {
            Ok(connecting) => connecting,
            Err(e) => {
                tracing::info!(%remote, error = %e, "connection attempt failed");
                continue;
            }
        };
        tokio::spawn(handle_connection(
            connecting,
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

async fn handle_connection<H, Fut>(
    connecting: quinn::Connecting,
    remote: SocketAddr,
    server: ServerEndpoint,
    handler: Arc<H>,
) where
    H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let conn = match tokio::time::timeout(server.options.handshake_timeout, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::info!(%remote, error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%remote, "handshake timed out");
            return;
        }
    };
    let peer = PeerIdentity::of(&conn);
    tracing::debug!(%remote, %peer, "connection established");
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%remote, %peer, reason = %e, "connection closed");
                return;
            }
        };
        // Wait for a permit before taking more streams of this connection: further
        // streams queue in QUIC flow control, bounded by `max_concurrent_streams`.
        let Ok(permit) = server.requests.clone().acquire_owned().await else {
            return; // the semaphore is never closed; nothing to serve if it were
        };
        tokio::spawn(handle_stream(
            send,
            recv,
            peer,
            remote,
            server.clone(),
            handler.clone(),
            permit,
        ));
    }
}

async fn handle_stream<H, Fut>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: PeerIdentity,
    remote: SocketAddr,
    server: ServerEndpoint,
    handler: Arc<H>,
    permit: OwnedSemaphorePermit,
) where
    H: Fn(PeerIdentity, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let in_flight = server.in_flight.enter();
    let options = &server.options;
    let request = match read_frame(&mut recv, options.max_frame_len, options.request_timeout).await
    {
        Ok(request) => request,
        Err(e) => {
            tracing::info!(%remote, %peer, error = %e, "request refused");
            // Ignoring the results: the stream may already be closed by the peer.
            let _ = recv.stop(STREAM_BAD_REQUEST.into());
            let _ = send.reset(STREAM_BAD_REQUEST.into());
            return;
        }
    };
    let response = handler(peer, request).await;
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
