//! QUIC endpoints and connections.
//!
//! [`ServerEndpoint`] listens (an aggregator node), [`ClientEndpoint`] dials (clients, the
//! collector, and the leader towards its helpers), and [`Connection`] carries requests:
//! [`Connection::request`] opens one bidirectional stream, writes one frame, ends its
//! side, and reads one response frame (see [`crate::frame`]).
//!
//! [`TransportOptions`] bounds everything a peer could stretch: the handshake time, the
//! idle time of a connection, the time to move one frame, the frame size, the streams
//! open at once on one connection, the requests handled at once by a server, and the
//! connections a server keeps. QUIC itself (RFC 9000 §10.1) closes a connection silent
//! for longer than the idle timeout; a client sends keep-alive packets to hold a
//! connection it wants to reuse.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;
use tokio::sync::{Notify, Semaphore};

use crate::address::Addresses;
use crate::cert::{Fingerprint, Identity, fingerprint};
use crate::error::{TimeoutKind, TransportError, from_connection_error};
use crate::tls::{ClientAuth, pinned_client_config, server_tls_config};

/// The server name a client puts in its TLS `ClientHello`. Peers are authenticated by
/// pinned fingerprints, so no name is checked; this is a fixed, valid DNS name.
const SERVER_NAME: &str = "cairn.invalid";

/// Limits and timeouts of the transport. The defaults suit a node on the Internet;
/// tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// A connection silent for this long is closed (QUIC idle timeout; the smaller of
    /// both peers' values applies). Default 30 s.
    pub idle_timeout: Duration,
    /// A client sends a keep-alive packet this often when otherwise silent, so a
    /// connection it keeps for reuse is not closed as idle (`None`: never). Must be
    /// shorter than `idle_timeout`. Default 10 s. Servers send none.
    pub keep_alive_interval: Option<Duration>,
    /// A QUIC/TLS handshake must complete within this time. Default 10 s.
    pub handshake_timeout: Duration,
    /// Writing a frame must complete within this time, and so must reading one (a
    /// client's response: counted from the end of its request's write). A server
    /// handler's own run time is not bounded by it (the client's read is). Default 30 s.
    pub request_timeout: Duration,
    /// The longest frame read: a server's requests, a client's responses. Set it from
    /// the task (`Limits::max_frame_len()`). Default 1 MiB.
    pub max_frame_len: usize,
    /// Bidirectional streams (requests) a peer may have open at once on one connection
    /// (QUIC flow control: further `open_bi` calls wait). Default 16.
    ///
    /// Times `stream_receive_window` it must not exceed `receive_window`. A request
    /// waiting for `request_memory` is not read, so the bytes its peer has already
    /// sent, up to a stream window, hold connection credit; were the open streams'
    /// windows larger than the connection's, the waiting requests could take all of
    /// it, and the request being read (the one that would free memory) would stall
    /// until the waits end.
    pub max_concurrent_streams: u32,
    /// Bidirectional streams an anonymous peer (one without a pinned certificate: a
    /// client at a leader) may have open at once on one connection; peers with a pinned
    /// certificate get `max_concurrent_streams`. At least 1, at most
    /// `max_concurrent_streams`. Default 1.
    ///
    /// Anyone can be an anonymous peer, and QUIC lets a peer send a stream window on
    /// every stream it may open before the server reads a byte. So this bounds the
    /// flow-control credit a server gives anonymous peers for bytes it has not read,
    /// whatever they do: `max_connections × anonymous_concurrent_streams ×
    /// stream_receive_window` (256 MiB with the defaults; 4 GiB if every connection had
    /// 16 streams). quinn's buffers may take up to about 2.5× the bytes they hold. A client
    /// sends one request at a time; a process sending for many clients over one
    /// connection should open several connections.
    pub anonymous_concurrent_streams: u32,
    /// Requests a server handles at once over all its connections; further streams wait
    /// in the accept loop. Default 256.
    pub max_concurrent_requests: usize,
    /// Connections a server keeps open at once, counting those still in their
    /// handshake; further connection attempts are refused. Default 1024.
    ///
    /// While an eighth of them (at least one) are in their handshake, a new attempt
    /// must first prove that it receives at its source address (QUIC Retry, RFC 9000
    /// §8.1.2, one round trip more). So a flood of handshakes from addresses the
    /// sender does not receive at (spoofed ones) holds about that many slots (up to
    /// twice as many while timed-out ones close), and leaves the rest to peers that
    /// answer. `max_connections_per_address` limits those of one real address.
    pub max_connections: usize,
    /// Connections an anonymous peer's source address (an IPv4 address, an IPv6 /64)
    /// may keep open at once, each counted until `address_linger` after it closed.
    /// Past it, an attempt from the address is refused before its handshake (after a
    /// Retry, if its address is not proved yet), or closed just after it with the
    /// reason "too many connections from this address". Where only pinned peers
    /// connect (a helper) nothing is counted; where both kinds do (a leader), a few
    /// proved attempts from a full address at a time are let through their handshake,
    /// since only it tells a pinned peer (the collector on a host shared with clients),
    /// which is served, from an anonymous one, which is closed with that reason and
    /// keeps its place for `address_linger`. Default 64 (`max_connections` still
    /// bounds all).
    ///
    /// With `address_share_percent`, it keeps one address from holding the server's
    /// connections, request slots or request memory (`crate::address`). Peers behind
    /// one NAT share an address; a load test from one host raises both.
    pub max_connections_per_address: usize,
    /// The percentage of the request slots and of the request memory that anonymous
    /// peers may hold which the requests from one source address may hold at once
    /// (at least one request of `max_frame_len`). A request beyond it waits, as for
    /// `request_memory`: past `busy_after`, it is answered busy. So one address sending
    /// requests slowly cannot lock other clients out. Default 25, between 1 and 100.
    pub address_share_percent: u8,
    /// How long a closed connection keeps its place in its address's count of
    /// `max_connections_per_address` (plus 15 round-trip times), and a failed
    /// handshake its place among the handshakes in progress. quinn keeps a closed
    /// connection in its table (counted against `max_connections`) for three probe
    /// timeouts, which a peer can stretch to about 50 s by advertising a long ack
    /// delay (and further by delaying its acknowledgements, which the round trips
    /// cover); were the place given back at once, one host opening and closing
    /// connections, or failing handshakes on purpose, could fill the table with closing
    /// ones. So an address opens at most `max_connections_per_address` connections per
    /// this time once at its limit. Default 60 s.
    pub address_linger: Duration,
    /// Bytes a peer may send on one stream before they are read (QUIC stream receive
    /// window). Default 256 KiB (on a 100 ms path, 2.5 MB/s per stream).
    pub stream_receive_window: u32,
    /// Bytes a peer may send on one connection, over all its streams, before they are
    /// read (QUIC connection receive window). Bounds what requests waiting to be
    /// handled cost a server: at most this per connection, whatever the requests'
    /// size. Default 4 MiB.
    pub receive_window: u32,
    /// Bytes a server's requests may take at once, over all its connections, from
    /// reading a frame to the end of its handler, counting
    /// [`REQUEST_COPIES`](crate::REQUEST_COPIES) times each frame's length (the frame,
    /// its decoded form, what is stored). At least one `max_frame_len` request fits,
    /// whatever this says. A request beyond it waits up to `busy_after` for room, then
    /// gets the endpoint's busy answer ([`ServerEndpoint::answer_busy_with`]) unread,
    /// or keeps waiting if there is none. Default 128 MiB.
    pub request_memory: usize,
    /// How long a request waits for room in `request_memory` before it is answered
    /// busy. Default 2 s.
    pub busy_after: Duration,
    /// The receive buffer a server asks the kernel for on its UDP socket
    /// (`SO_RCVBUF`). Many clients uploading at once overflow Linux's default
    /// (208 KiB): each datagram dropped there is lost and sent again, and QUIC's
    /// congestion control slows the sender down. Default 8 MiB; the kernel caps it
    /// at `net.core.rmem_max` ([`ServerEndpoint::udp_receive_buffer`] says what it
    /// gave). 0 keeps the system's default.
    pub udp_receive_buffer: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Some(Duration::from_secs(10)),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_frame_len: 1 << 20,
            max_concurrent_streams: 16,
            anonymous_concurrent_streams: 1,
            max_concurrent_requests: 256,
            max_connections: 1024,
            max_connections_per_address: 64,
            address_share_percent: 25,
            address_linger: Duration::from_secs(60),
            stream_receive_window: 256 << 10,
            receive_window: 4 << 20,
            request_memory: 128 << 20,
            busy_after: Duration::from_secs(2),
            udp_receive_buffer: 8 << 20,
        }
    }
}

/// Which stream limits a connection gets ([`TransportOptions::anonymous_concurrent_streams`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streams {
    /// `max_concurrent_streams` and `receive_window`.
    Full,
    /// `anonymous_concurrent_streams`, and that many stream windows for the connection.
    Anonymous,
}

impl TransportOptions {
    /// Checks the options and builds quinn's transport configuration; `keep_alive`
    /// selects whether this side sends keep-alive packets, `peers` whether the peer
    /// may open `max_concurrent_streams` streams or `anonymous_concurrent_streams`
    /// (with a connection window of that many stream windows).
    fn quinn_transport(
        &self,
        keep_alive: bool,
        peers: Streams,
    ) -> Result<quinn::TransportConfig, TransportError> {
        let bad = |what: &str| Err(TransportError::Config(what.to_owned()));
        if self.handshake_timeout.is_zero() || self.request_timeout.is_zero() {
            return bad("handshake and request timeouts must be positive");
        }
        if self.max_concurrent_streams == 0
            || self.max_concurrent_requests == 0
            || self.max_connections == 0
        {
            return bad("stream, request and connection limits must be positive");
        }
        if self.max_connections_per_address == 0 {
            return bad("max_connections_per_address must be positive");
        }
        if !(1..=100).contains(&self.address_share_percent) {
            return bad("address_share_percent must be between 1 and 100");
        }
        if self.anonymous_concurrent_streams == 0
            || self.anonymous_concurrent_streams > self.max_concurrent_streams
        {
            return bad(
                "anonymous_concurrent_streams must be between 1 and max_concurrent_streams",
            );
        }
        if self.max_concurrent_requests > Semaphore::MAX_PERMITS {
            return bad("max_concurrent_requests is above tokio's semaphore limit");
        }
        if u32::try_from(self.max_frame_len).is_err() {
            return bad("max_frame_len must fit the u32 length prefix");
        }
        if self.idle_timeout.is_zero() {
            return bad("idle_timeout must be positive");
        }
        if self.receive_window == 0 || self.stream_receive_window == 0 {
            return bad("receive windows must be positive");
        }
        if u64::from(self.max_concurrent_streams) * u64::from(self.stream_receive_window)
            > u64::from(self.receive_window)
        {
            return bad(
                "max_concurrent_streams × stream_receive_window must not exceed receive_window \
                 (streams waiting unread would hold the credit a request being read needs)",
            );
        }
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout)
            .map_err(|_| TransportError::Config("idle_timeout is too long for QUIC".into()))?;
        if let Some(k) = self.keep_alive_interval
            && (k.is_zero() || k >= self.idle_timeout)
        {
            return bad("keep_alive_interval must be positive and shorter than idle_timeout");
        }
        let (streams, window) = self.limits_for(peers);
        let mut t = quinn::TransportConfig::default();
        t.max_idle_timeout(Some(idle))
            .keep_alive_interval(if keep_alive {
                self.keep_alive_interval
            } else {
                None
            })
            .max_concurrent_bidi_streams(streams.into())
            .max_concurrent_uni_streams(0u32.into())
            .receive_window(window)
            .stream_receive_window(self.stream_receive_window.into())
            .datagram_receive_buffer_size(None);
        Ok(t)
    }

    /// The streams a peer may open at once and the connection's receive window.
    pub(crate) fn limits_for(&self, peers: Streams) -> (u32, quinn::VarInt) {
        match peers {
            Streams::Full => (self.max_concurrent_streams, self.receive_window.into()),
            Streams::Anonymous => (
                self.anonymous_concurrent_streams,
                quinn::VarInt::from_u64(
                    u64::from(self.anonymous_concurrent_streams)
                        * u64::from(self.stream_receive_window),
                )
                // Below 2^62: both factors fit in 32 bits.
                .unwrap_or(quinn::VarInt::MAX),
            ),
        }
    }

    /// How many handshakes may be in progress before a new connection attempt must
    /// prove it receives at its source address (a QUIC Retry, RFC 9000 §8.1.2):
    /// an eighth of `max_connections`, at least one.
    pub(crate) fn unvalidated_handshakes(&self) -> usize {
        (self.max_connections / 8).max(1)
    }
}

/// Who is at the other end of a connection, as TLS established it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerIdentity {
    /// The peer presented no certificate (a client; it authenticates by token).
    Anonymous,
    /// The peer presented this pinned certificate (its SHA-256 fingerprint).
    Certificate(Fingerprint),
}

impl PeerIdentity {
    /// The peer certificate's fingerprint, if it presented one.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        match self {
            PeerIdentity::Anonymous => None,
            PeerIdentity::Certificate(fp) => Some(fp),
        }
    }

    /// Reads the identity off an established quinn connection.
    pub(crate) fn of(conn: &quinn::Connection) -> Self {
        conn.peer_identity()
            .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.first().map(|c| fingerprint(c.as_ref())))
            .map_or(PeerIdentity::Anonymous, PeerIdentity::Certificate)
    }
}

impl core::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PeerIdentity::Anonymous => f.write_str("anonymous"),
            PeerIdentity::Certificate(fp) => write!(f, "cert:{}", hex::encode(fp)),
        }
    }
}

/// Request slots a server that admits both anonymous and pinned peers
/// ([`ClientAuth::Optional`], a leader) keeps for the pinned ones: anonymous peers
/// (clients) hold at most `max_concurrent_requests` minus these (at least one).
pub const PINNED_RESERVED_REQUESTS: usize = 8;

/// Connections per pinned certificate that get full stream limits on a server that
/// also admits anonymous peers (a leader); a peer's further connections keep the
/// anonymous limits, so one certificate (the collector's, perhaps stolen) cannot make
/// the server hold more unread than `PINNED_FULL_CONNECTIONS × receive_window`.
pub const PINNED_FULL_CONNECTIONS: usize = 8;

/// Request memory (KiB) such a server keeps for pinned peers, when the budget leaves
/// anonymous peers at least one largest frame besides.
pub const PINNED_RESERVED_MEMORY_KIB: usize = 1024;

/// A listening QUIC endpoint presenting a certificate. Cheap to clone (clones share the
/// socket and the request limit).
#[derive(Debug, Clone)]
pub struct ServerEndpoint {
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) options: TransportOptions,
    pub(crate) requests: Arc<Semaphore>,
    /// The share of `requests` anonymous peers may hold together: all but
    /// [`PINNED_RESERVED_REQUESTS`], kept for peers with a pinned certificate (the
    /// collector, the leader), so a crowd of slow anonymous requests cannot lock them
    /// out.
    pub(crate) anonymous_requests: Arc<Semaphore>,
    pub(crate) in_flight: Arc<InFlight>,
    /// Connections accepted whose handshake has not ended yet, or failed less than
    /// `address_linger` ago (quinn keeps them in its table while they close).
    pub(crate) handshakes: Arc<AtomicUsize>,
    /// The limits a connection starts with: anonymous ones where anonymous peers may
    /// connect (then raised for up to [`PINNED_FULL_CONNECTIONS`] connections per
    /// pinned certificate, counted here), full ones where they may not.
    pub(crate) starting_limits: Streams,
    /// Whether peers with a pinned certificate may connect (`ClientAuth::Optional` or
    /// `Required`).
    pub(crate) pinned_may_connect: bool,
    pub(crate) full_connections: Arc<std::sync::Mutex<HashMap<Fingerprint, usize>>>,
    /// `request_memory`, in KiB permits.
    pub(crate) memory: Arc<Semaphore>,
    /// The share of `memory` anonymous peers may hold together: all but
    /// [`PINNED_RESERVED_MEMORY_KIB`] (never less than one largest frame).
    pub(crate) anonymous_memory: Arc<Semaphore>,
    /// Anonymous peers' connections per source address, and each address's share of
    /// `anonymous_requests` and `anonymous_memory`.
    pub(crate) addresses: Arc<Addresses>,
    /// The frame sent to a request that finds no room in `request_memory`.
    pub(crate) busy: Option<Arc<[u8]>>,
    /// Requests answered with `busy` so far.
    pub(crate) busy_answers: Arc<AtomicU64>,
    /// Connections refused or closed so far because their address had
    /// `max_connections_per_address` already.
    pub(crate) address_refusals: Arc<AtomicU64>,
    /// The socket's receive buffer as the kernel reports it.
    pub(crate) udp_receive_buffer: usize,
}

/// Counts request streams from the start of their handling until their response is
/// acknowledged, so a graceful shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Counts one stream until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Waits until no stream is in flight.
    async fn wait_idle(&self) {
        loop {
            // Registered before the check, so a notification in between is not missed.
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One stream in flight; see [`InFlight`].
#[derive(Debug)]
pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl ServerEndpoint {
    /// Binds a UDP socket at `addr` (port 0 picks a free port) and listens with TLS
    /// 1.3, ALPN `cairn/1`, presenting `identity` and authenticating clients as
    /// `client_auth` says. Must be called inside a tokio runtime. Serve requests with
    /// [`ServerEndpoint::serve`].
    pub fn bind(
        addr: SocketAddr,
        identity: &Identity,
        client_auth: &ClientAuth,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        let tls = server_tls_config(identity, client_auth)?;
        let crypto = QuicServerConfig::try_from(tls)
            .map_err(|e| TransportError::Tls(format!("QUIC server config: {e}")))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        // Where anonymous peers may connect, every connection starts with their limits;
        // one whose peer turns out to hold a pinned certificate gets the full ones once
        // the handshake has proved it (`server::handle_connection`).
        let peers = match client_auth {
            ClientAuth::Anonymous | ClientAuth::Optional(_) => Streams::Anonymous,
            ClientAuth::Required(_) => Streams::Full,
        };
        config.transport_config(Arc::new(options.quinn_transport(false, peers)?));
        let (socket, udp_receive_buffer) =
            crate::udp::bind_with_receive_buffer(addr, options.udp_receive_buffer)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| std::io::Error::other("no async runtime found"))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            runtime,
        )?;
        let requests = Arc::new(Semaphore::new(options.max_concurrent_requests));
        let memory_kib = options
            .request_memory
            .max(
                options
                    .max_frame_len
                    .saturating_mul(crate::REQUEST_COPIES as usize),
            )
            .div_ceil(1024)
            .min(Semaphore::MAX_PERMITS);
        let frame_kib = options
            .max_frame_len
            .saturating_mul(crate::REQUEST_COPIES as usize)
            .div_ceil(1024);
        // A reserve only where both kinds of peer connect (a leader: clients and the
        // collector); with one kind, that kind has everything.
        let (reserved_kib, reserved_requests) = match client_auth {
            ClientAuth::Optional(_) => (PINNED_RESERVED_MEMORY_KIB, PINNED_RESERVED_REQUESTS),
            ClientAuth::Anonymous | ClientAuth::Required(_) => (0, 0),
        };
        let anonymous_memory_kib = memory_kib
            .saturating_sub(reserved_kib)
            .max(frame_kib.min(memory_kib));
        let anonymous_requests = options
            .max_concurrent_requests
            .saturating_sub(reserved_requests)
            .max(1);
        let addresses = Arc::new(Addresses::new(
            &options,
            anonymous_requests,
            anonymous_memory_kib,
            frame_kib,
        ));
        Ok(Self {
            endpoint,
            options,
            requests,
            addresses,
            anonymous_requests: Arc::new(Semaphore::new(anonymous_requests)),
            in_flight: Arc::new(InFlight::default()),
            handshakes: Arc::new(AtomicUsize::new(0)),
            starting_limits: peers,
            pinned_may_connect: !matches!(client_auth, ClientAuth::Anonymous),
            full_connections: Arc::default(),
            memory: Arc::new(Semaphore::new(memory_kib)),
            anonymous_memory: Arc::new(Semaphore::new(anonymous_memory_kib)),
            busy: None,
            busy_answers: Arc::new(AtomicU64::new(0)),
            address_refusals: Arc::new(AtomicU64::new(0)),
            udp_receive_buffer,
        })
    }

    /// The bound address (with the port chosen when binding port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// The options this endpoint was bound with.
    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// The UDP receive buffer the kernel gave this endpoint's socket, in bytes (Linux
    /// reports twice what it counts against `rmem_max`; see
    /// [`TransportOptions::udp_receive_buffer`]).
    pub fn udp_receive_buffer(&self) -> usize {
        self.udp_receive_buffer
    }

    /// The frame a request gets, unread, when `request_memory` has had no room for it
    /// for `busy_after` (the protocol's `Busy` error message). Set before serving.
    pub fn answer_busy_with(&mut self, frame: Vec<u8>) {
        self.busy = Some(frame.into());
    }

    /// How many requests were answered busy so far (a counter shared by the clones of
    /// this endpoint, for metrics).
    pub fn busy_answers(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.busy_answers)
    }

    /// How many connections were refused or closed so far because their source address
    /// had [`TransportOptions::max_connections_per_address`] open already (a counter
    /// shared by the clones of this endpoint, for metrics).
    pub fn address_refusals(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.address_refusals)
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    /// Closes every connection at once and stops accepting; [`ServerEndpoint::serve`]
    /// returns.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"shutdown");
    }

    /// Waits until closed connections have told their peers (call after `close`).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }

    /// Graceful shutdown: refuses new connections, waits up to `grace` until the
    /// requests being handled have been answered and their responses acknowledged by
    /// the peers, then closes every connection and waits until the peers were told.
    pub async fn shutdown(&self, grace: Duration) {
        self.endpoint.set_server_config(None);
        // Timing out only shortens the grace period: the close below ends everything.
        let _ = tokio::time::timeout(grace, self.in_flight.wait_idle()).await;
        self.close();
        self.endpoint.wait_idle().await;
    }
}

/// A QUIC endpoint that dials servers, optionally presenting a certificate.
#[derive(Debug, Clone)]
pub struct ClientEndpoint {
    endpoint: quinn::Endpoint,
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    options: TransportOptions,
    transport: Arc<quinn::TransportConfig>,
}

impl ClientEndpoint {
    /// Binds a UDP socket at `addr` (e.g. `127.0.0.1:0` or `0.0.0.0:0`). With an
    /// `identity`, every connection presents its certificate (mutual TLS towards
    /// helpers). Must be called inside a tokio runtime.
    pub fn bind(
        addr: SocketAddr,
        identity: Option<&Identity>,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        // The server opens no streams; the limits only complete the configuration.
        let transport = Arc::new(options.quinn_transport(true, Streams::Full)?);
        let key = identity.map(Identity::certified_key).transpose()?;
        let endpoint = quinn::Endpoint::client(addr)?;
        Ok(Self {
            endpoint,
            key,
            options,
            transport,
        })
    }

    /// Connects to the server at `addr`, accepting it only if its certificate's
    /// fingerprint is `pinned_server` (the task's `aggregator_fingerprint(i)`).
    ///
    /// Errors: [`TransportError::PeerNotPinned`] if the server presents another
    /// certificate, [`TransportError::Tls`] for other handshake failures (including a
    /// server that refuses our certificate during the handshake),
    /// [`TransportError::Timeout`] (kind `Handshake`), [`TransportError::Closed`] if the
    /// server is unreachable or closes, [`TransportError::Connect`] for a bad address.
    ///
    /// With TLS 1.3 a client finishes its handshake before the server has checked the
    /// client certificate, so a server that refuses our certificate may instead make the
    /// first [`Connection::request`] fail with [`TransportError::Tls`].
    pub async fn connect(
        &self,
        addr: SocketAddr,
        pinned_server: &Fingerprint,
    ) -> Result<Connection, TransportError> {
        let (tls, verifier) = pinned_client_config(*pinned_server, self.key.clone())?;
        let crypto = QuicClientConfig::try_from(tls)
            .map_err(|e| TransportError::Tls(format!("QUIC client config: {e}")))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(self.transport.clone());
        let connecting = self
            .endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let after = self.options.handshake_timeout;
        let result =
            tokio::time::timeout(after, connecting)
                .await
                .map_err(|_| TransportError::Timeout {
                    kind: TimeoutKind::Handshake,
                    after,
                })?;
        let inner = result.map_err(|e| match verifier.rejected() {
            Some(presented) => TransportError::PeerNotPinned { presented },
            None => from_connection_error(e),
        })?;
        Ok(Connection {
            inner,
            peer: PeerIdentity::Certificate(*pinned_server),
            max_frame_len: self.options.max_frame_len,
            request_timeout: self.options.request_timeout,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Closes every connection of this endpoint at once.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"done");
    }

    /// Waits until closed connections have told their peers (call after `close`).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}

/// An established connection to a pinned server. Cheap to clone; requests on clones
/// run concurrently on separate streams.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: quinn::Connection,
    peer: PeerIdentity,
    max_frame_len: usize,
    request_timeout: Duration,
}

impl Connection {
    /// Sends one request frame and returns the response frame: opens a bidirectional
    /// stream, writes `request` and ends the stream's sending side, while reading one
    /// response of at most `max_frame_len` bytes ([`TransportOptions`]). A response
    /// that comes before the request is all written (a server's busy answer to a
    /// request it did not read) is returned at once, and the rest of the request is
    /// abandoned. Opening the stream waits while the server's stream limit is reached,
    /// within the request timeout; the response has the request timeout from the end
    /// of the write.
    pub async fn request(&self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.request_with_limit(request, self.max_frame_len).await
    }

    /// [`Connection::request`] with a response limit of `max_response_len` bytes instead
    /// of the endpoint's `max_frame_len` (for a response whose size the caller knows).
    pub async fn request_with_limit(
        &self,
        request: &[u8],
        max_response_len: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let after = self.request_timeout;
        let opened = tokio::time::timeout(after, self.inner.open_bi())
            .await
            .map_err(|_| TransportError::Timeout {
                kind: TimeoutKind::Write,
                after,
            })?;
        let (mut send, mut recv) = opened.map_err(from_connection_error)?;
        let exchange = crate::frame::exchange(
            &mut send,
            &mut recv,
            request,
            max_response_len,
            after,
            |send| {
                send.finish()
                    .map_err(|e| TransportError::Closed(e.to_string()))
            },
        )
        .await;
        if !exchange.written {
            // Answered before the request was all sent: the rest is not wanted.
            let _ = send.reset(0u32.into());
        }
        exchange.response
    }

    /// The server's identity (its pinned fingerprint).
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The server's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.inner.remote_address()
    }

    /// Why the connection closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<TransportError> {
        self.inner.close_reason().map(from_connection_error)
    }

    /// Waits until the connection closes (idle timeout, peer close, loss) and says why.
    pub async fn closed(&self) -> TransportError {
        from_connection_error(self.inner.closed().await)
    }

    /// An identifier of this connection, unique among the endpoint's connections.
    pub fn stable_id(&self) -> usize {
        self.inner.stable_id()
    }

    /// Closes the connection at once; pending requests fail.
    pub fn close(&self) {
        self.inner.close(0u32.into(), b"done");
    }
}
