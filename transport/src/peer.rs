//! A pinned server reached over one reused connection, reconnecting when it closes.
//!
//! Clients, the collector and the leader (towards each helper) talk to a fixed set of
//! servers. [`Peer`] keeps one [`Connection`] per server and shares it between
//! concurrent requests (each on its own stream). When the connection has closed (idle
//! timeout, server restart, network loss), the next request connects again. A request
//! that fails is not resent here: wrap it in
//! [`retry_with_backoff`](crate::retry::retry_with_backoff), which is safe
//! because Cairn's requests are idempotent (report ids, job ids).
//!
//! A server may run as several **replicas** at different addresses, all with the
//! same certificate ([`Peer::replicated`]). The peer stays on one address while it
//! works — a helper keeps a job's preparation in memory between two requests, so
//! moving between replicas on every request would make it redo work — and moves to
//! the next address when connecting fails or the connection dies. Callers spread load
//! by starting different peers at different addresses.

use std::net::SocketAddr;

use tokio::sync::Mutex;

use crate::cert::Fingerprint;
use crate::endpoint::{ClientEndpoint, Connection};
use crate::error::TransportError;

/// A server at one or more addresses (its replicas) with a pinned certificate, with a
/// cached connection.
#[derive(Debug)]
pub struct Peer {
    endpoint: ClientEndpoint,
    addrs: Vec<SocketAddr>,
    pinned: Fingerprint,
    current: Mutex<Current>,
}

/// The address in use and the connection to it, if one is open.
#[derive(Debug)]
struct Current {
    index: usize,
    conn: Option<Connection>,
}

impl Peer {
    /// A peer reached through `endpoint` at `addr`, accepted only with the certificate
    /// whose fingerprint is `pinned`. Connects lazily, on the first request.
    pub fn new(endpoint: ClientEndpoint, addr: SocketAddr, pinned: Fingerprint) -> Self {
        Self::replicated(endpoint, vec![addr], pinned, 0)
    }

    /// A peer whose replicas listen at `addrs` (at least one), all accepted only with
    /// the certificate `pinned`. It starts at `addrs[start % addrs.len()]` and moves
    /// to the next address, cyclically, whenever connecting fails or a connection
    /// dies.
    ///
    /// # Panics
    /// If `addrs` is empty (a task lists at least one endpoint per aggregator).
    pub fn replicated(
        endpoint: ClientEndpoint,
        addrs: Vec<SocketAddr>,
        pinned: Fingerprint,
        start: usize,
    ) -> Self {
        assert!(!addrs.is_empty(), "a peer needs at least one address");
        let index = start % addrs.len();
        Self {
            endpoint,
            addrs,
            pinned,
            current: Mutex::new(Current { index, conn: None }),
        }
    }

    /// The address in use (or tried next).
    pub async fn addr(&self) -> SocketAddr {
        self.addrs[self.current.lock().await.index]
    }

    /// Every address of the server, in the order they are tried.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The server's pinned fingerprint.
    pub fn pinned(&self) -> &Fingerprint {
        &self.pinned
    }

    /// The open connection, connecting first if there is none or it has closed: to
    /// the address in use, then to each other address in turn until one answers (the
    /// last error if none does). Concurrent callers wait for one connection attempt
    /// instead of each making one.
    pub async fn connection(&self) -> Result<Connection, TransportError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.conn.as_ref()
            && conn.close_reason().is_none()
        {
            return Ok(conn.clone());
        }
        current.conn = None;
        let mut last_error = None;
        for _ in 0..self.addrs.len() {
            match self
                .endpoint
                .connect(self.addrs[current.index], &self.pinned)
                .await
            {
                Ok(conn) => {
                    current.conn = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => {
                    if self.addrs.len() > 1 {
                        tracing::debug!(
                            addr = %self.addrs[current.index],
                            error = %e,
                            "replica unreachable; trying the next"
                        );
                    }
                    current.index = (current.index + 1) % self.addrs.len();
                    last_error = Some(e);
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| TransportError::Closed("no address to connect to".to_owned())))
    }

    /// Leaves the replica that answered a request over `used` for the next one (a
    /// no-op with a single address): the caller was answered that this replica is
    /// busy or failing. Only the first of several requests answered so by one
    /// replica moves on: the others find the connection they used replaced, and
    /// leave the peer where it is (advancing once per answer would skip healthy
    /// replicas, or come back round to the failing one). Requests already on the old
    /// connection keep it until they finish.
    pub async fn move_on_from(&self, used: ConnectionUsed) {
        if self.addrs.len() > 1 {
            let mut current = self.current.lock().await;
            if current
                .conn
                .as_ref()
                .is_some_and(|c| c.stable_id() == used.0)
            {
                current.conn = None;
                current.index = (current.index + 1) % self.addrs.len();
            }
        }
    }

    /// One request over the current connection (see [`Connection::request`]). On
    /// failure, a connection that has closed — or that timed out, which is how a
    /// restarted server looks (it no longer knows the connection, and QUIC only notices
    /// at the idle timeout) — is forgotten and the next address becomes the one in
    /// use, so the next call connects afresh (to another replica, if there are
    /// several). Other requests already on the old connection keep it until they
    /// finish.
    pub async fn request(&self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.request_on(request).await.0
    }

    /// [`Peer::request`], also naming the connection the request went over (`None`
    /// when none could be opened), for [`Peer::move_on_from`].
    pub async fn request_on(
        &self,
        request: &[u8],
    ) -> (Result<Vec<u8>, TransportError>, Option<ConnectionUsed>) {
        let conn = match self.connection().await {
            Ok(conn) => conn,
            Err(e) => return (Err(e), None),
        };
        let used = ConnectionUsed(conn.stable_id());
        let result = conn.request(request).await;
        let dead = match &result {
            Ok(_) => false,
            Err(TransportError::Timeout { .. }) => true,
            Err(_) => conn.close_reason().is_some(),
        };
        if dead {
            let mut current = self.current.lock().await;
            // Forget it only if no other caller has replaced it meanwhile.
            if current
                .conn
                .as_ref()
                .is_some_and(|c| c.stable_id() == conn.stable_id())
            {
                current.conn = None;
                current.index = (current.index + 1) % self.addrs.len();
            }
        }
        (result, Some(used))
    }
}

/// The connection one request of a [`Peer`] went over ([`Peer::request_on`]), to
/// name in [`Peer::move_on_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionUsed(usize);
