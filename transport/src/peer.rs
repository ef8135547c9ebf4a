//! A pinned server reached over one reused connection, reconnecting when it closes.
//!
//! Clients, the collector and the leader (towards each helper) talk to a fixed set of
//! servers. [`Peer`] keeps one [`Connection`] per server and shares it between
//! concurrent requests (each on its own stream). When the connection has closed (idle
//! timeout, server restart, network loss), the next request connects again. A request
//! that fails is not resent here: wrap it in
//! [`retry_with_backoff`](crate::retry::retry_with_backoff), which is safe
//! because Cairn's requests are idempotent (report ids, job ids).

use std::net::SocketAddr;

use tokio::sync::Mutex;

use crate::cert::Fingerprint;
use crate::endpoint::{ClientEndpoint, Connection};
use crate::error::TransportError;

/// A server at a fixed address with a pinned certificate, with a cached connection.
#[derive(Debug)]
pub struct Peer {
    endpoint: ClientEndpoint,
    addr: SocketAddr,
    pinned: Fingerprint,
    current: Mutex<Option<Connection>>,
}

impl Peer {
    /// A peer reached through `endpoint` at `addr`, accepted only with the certificate
    /// whose fingerprint is `pinned`. Connects lazily, on the first request.
    pub fn new(endpoint: ClientEndpoint, addr: SocketAddr, pinned: Fingerprint) -> Self {
        Self {
            endpoint,
            addr,
            pinned,
            current: Mutex::new(None),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's pinned fingerprint.
    pub fn pinned(&self) -> &Fingerprint {
        &self.pinned
    }

    /// The open connection, connecting first if there is none or it has closed.
    /// Concurrent callers wait for one connection attempt instead of each making one.
    pub async fn connection(&self) -> Result<Connection, TransportError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref()
            && conn.close_reason().is_none()
        {
            return Ok(conn.clone());
        }
        *current = None;
        let conn = self.endpoint.connect(self.addr, &self.pinned).await?;
        *current = Some(conn.clone());
        Ok(conn)
    }

    /// One request over the current connection (see [`Connection::request`]). On
    /// failure, a connection that has closed — or that timed out, which is how a
    /// restarted server looks (it no longer knows the connection, and QUIC only notices
    /// at the idle timeout) — is forgotten, so the next call connects afresh. Other
    /// requests already on the old connection keep it until they finish.
    pub async fn request(&self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let conn = self.connection().await?;
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
                .as_ref()
                .is_some_and(|c| c.stable_id() == conn.stable_id())
            {
                *current = None;
            }
        }
        result
    }
}
