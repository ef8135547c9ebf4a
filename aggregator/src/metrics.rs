//! A node's Prometheus metrics and its health check.
//!
//! [`NodeMetrics`] holds the counters and gauges (a `prometheus-client` registry,
//! encoded in the OpenMetrics text format by that crate); [`MetricsEndpoint`] serves
//! them over plain HTTP on the node's `metrics_listen` address:
//!
//! * `GET /metrics`: the registry, text exposition format;
//! * `GET /health`: `200 ok` while the node runs and its store answers; `503` with the
//!   reason when the store (a PostgreSQL database) cannot be reached.
//!
//! Metrics (all prefixed `cairn_`):
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `reports_received_total` | counter | uploads that reached the leader (a request that does not decode counts as a received and rejected report) |
//! | `reports_accepted_total` | counter | reports verified and added to a round's aggregate |
//! | `reports_rejected_total{reason}` | counter | reports refused at upload or excluded by a job; `reason` is the protocol's `ErrorCode` string |
//! | `rounds_released_total` | counter | rounds whose aggregate share this node released |
//! | `round_latency_seconds` | histogram | leader: first upload of a round → its release (rounds opened since the node started) |
//! | `epsilon_remaining{task}` | gauge | ε left in the task's budget by this node's ledger (+Inf without noise) |
//! | `store_transaction_retries_total` | counter | PostgreSQL: transactions retried after a serialization failure or deadlock (replicas, or concurrent requests, touching the same rows) |
//! | `job_contention_total` | counter | leader on PostgreSQL: batches of queued reports, or new jobs' leases, lost to another replica sharing the database |
//! | `uploads_busy_total` | counter | leader: requests on its client port (uploads; also collect requests) answered `Busy` because `upload_memory_mib` had no room for them within `upload_wait_ms` (the clients retry) |
//! | `client_connections_refused_total` | counter | leader: client connections refused or closed because their source address (IPv4, IPv6 /64) had `client_connections_per_address` open already (the clients retry) |
//! | `hpke_pending_key_opens_total` | counter | helper: input shares opened with a key in `hpke_pending_keys` (clients already on the next task file) |
//! | `hpke_expired_key_opens_total` | counter | helper: input shares opened with a key in `hpke_expired_keys` (clients still on an old task file; once it stops growing, the key can go) |
//!
//! The endpoint holds no secret and answers only GETs; bind it on a loopback or
//! monitoring-network address.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cairn_protocol::messages::ErrorCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The listen address cannot be bound.
    #[error("binding the metrics endpoint on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

type ReasonLabel = [(&'static str, &'static str); 1];
type TaskLabel = [(&'static str, String); 1];

/// The counters and gauges of one node.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    received: Counter,
    accepted: Counter,
    rejected: Family<ReasonLabel, Counter>,
    rounds_released: Counter,
    round_latency: Histogram,
    epsilon_remaining: Family<TaskLabel, Gauge<f64, AtomicU64>>,
    rounds: Mutex<RoundTimes>,
    watched: Arc<Watched>,
}

/// Counters kept elsewhere (the store, the protocol's leader) as shared atomics, read
/// on each scrape.
#[derive(Debug, Default)]
struct Watched(Mutex<Vec<WatchedCounter>>);

#[derive(Debug)]
struct WatchedCounter {
    name: &'static str,
    help: &'static str,
    value: Arc<AtomicU64>,
}

impl prometheus_client::collector::Collector for Watched {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let counters = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for c in counters.iter() {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(
                c.value.load(std::sync::atomic::Ordering::Relaxed),
            );
            let metric = encoder.encode_descriptor(c.name, c.help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Per-round bookkeeping for the latency histogram and for counting a release once.
#[derive(Debug, Default)]
struct RoundTimes {
    first_upload: HashMap<u32, Instant>,
    released: HashSet<u32>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cairn");
        let received = Counter::default();
        let accepted = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let rounds_released = Counter::default();
        // 0.1 s … ~1.8 h in factors of 2.
        let round_latency = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        let epsilon_remaining = Family::<TaskLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "reports_received",
            "Uploads that reached the leader",
            received.clone(),
        );
        registry.register(
            "reports_accepted",
            "Reports verified and added to a round's aggregate",
            accepted.clone(),
        );
        registry.register(
            "reports_rejected",
            "Reports refused at upload or excluded by an aggregation job, by reason",
            rejected.clone(),
        );
        registry.register(
            "rounds_released",
            "Rounds whose aggregate share this node released",
            rounds_released.clone(),
        );
        registry.register_with_unit(
            "round_latency",
            "Time from a round's first upload to its release (leader)",
            prometheus_client::registry::Unit::Seconds,
            round_latency.clone(),
        );
        registry.register(
            "epsilon_remaining",
            "Epsilon left in the task's budget, by this node's ledger",
            epsilon_remaining.clone(),
        );
        let watched = Arc::new(Watched::default());
        registry.register_collector(Box::new(Arc::clone(&watched)));
        Self {
            registry,
            watched,
            received,
            accepted,
            rejected,
            rounds_released,
            round_latency,
            epsilon_remaining,
            rounds: Mutex::new(RoundTimes::default()),
        }
    }

    /// Serves `value` (a counter kept by the store or the protocol) as `cairn_{name}_total`.
    pub fn watch_counter(&self, name: &'static str, help: &'static str, value: Arc<AtomicU64>) {
        self.watched
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(WatchedCounter { name, help, value });
    }

    /// An upload reached the leader; `round` when it decoded.
    pub fn report_received(&self, round: Option<u32>) {
        self.received.inc();
        if let Some(round) = round {
            let mut rounds = self.lock_rounds();
            if !rounds.released.contains(&round) {
                rounds
                    .first_upload
                    .entry(round)
                    .or_insert_with(Instant::now);
            }
        }
    }

    /// `n` reports were verified and aggregated.
    pub fn reports_accepted(&self, n: u64) {
        self.accepted.inc_by(n);
    }

    /// A report was refused (at upload or by a job).
    pub fn report_rejected(&self, code: ErrorCode) {
        self.rejected
            .get_or_create(&[("reason", code.as_str())])
            .inc();
    }

    /// This node released its share of `round` (a repeated release of the same round,
    /// answered from the store, is counted once).
    pub fn round_released(&self, round: u32) {
        let mut rounds = self.lock_rounds();
        if !rounds.released.insert(round) {
            return;
        }
        self.rounds_released.inc();
        if let Some(first) = rounds.first_upload.remove(&round) {
            self.round_latency.observe(first.elapsed().as_secs_f64());
        }
    }

    /// Sets the ε left for `task_id_hex`.
    pub fn set_epsilon_remaining(&self, task_id_hex: &str, epsilon: f64) {
        self.epsilon_remaining
            .get_or_create(&[("task", task_id_hex.to_owned())])
            .set(epsilon);
    }

    /// The registry in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would leave a partial text.
        if encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }

    fn lock_rounds(&self) -> std::sync::MutexGuard<'_, RoundTimes> {
        // Only timestamps and round numbers: a poisoned lock is safe to reuse.
        self.rounds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `/health` asks: `Ok` when healthy, else why not.
pub type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The HTTP endpoint serving `/metrics` and `/health`; stops when dropped.
pub struct MetricsEndpoint {
    server: Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Binds `addr` and serves `metrics` on a thread of its own.
    pub fn start(
        addr: SocketAddr,
        metrics: Arc<NodeMetrics>,
        health: HealthCheck,
    ) -> Result<Self, MetricsError> {
        let server = tiny_http::Server::http(addr).map_err(|e| MetricsError::Bind {
            addr,
            reason: e.to_string(),
        })?;
        let local_addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| MetricsError::Bind {
                addr,
                reason: "not an IP listener".into(),
            })?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("cairn-metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    respond(request, &metrics, &*health);
                }
            })
            .map_err(|e| MetricsError::Bind {
                addr,
                reason: e.to_string(),
            })?;
        Ok(Self {
            server,
            local_addr,
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    request: tiny_http::Request,
    metrics: &NodeMetrics,
    health: &(dyn Fn() -> Result<(), String> + Send + Sync),
) {
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let (status, content_type, body) = if *request.method() != tiny_http::Method::Get {
        (405, "text/plain; charset=utf-8", "only GET\n".to_owned())
    } else {
        match path.as_str() {
            "/metrics" => (
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.render(),
            ),
            "/health" => match health() {
                Ok(()) => (200, "text/plain; charset=utf-8", "ok\n".to_owned()),
                Err(why) => (
                    503,
                    "text/plain; charset=utf-8",
                    format!("unhealthy: {why}\n"),
                ),
            },
            _ => (
                404,
                "text/plain; charset=utf-8",
                "not found: try /metrics or /health\n".to_owned(),
            ),
        }
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        response.add_header(h);
    }
    // A client that hung up is not our problem.
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let m = NodeMetrics::new();
        m.report_received(Some(0));
        m.report_received(None);
        m.reports_accepted(3);
        m.report_rejected(ErrorCode::Replay);
        m.report_rejected(ErrorCode::Replay);
        m.round_released(0);
        m.round_released(0);
        m.set_epsilon_remaining("ab", 1.5);
        let text = m.render();
        assert!(text.contains("cairn_reports_received_total 2"), "{text}");
        assert!(text.contains("cairn_reports_accepted_total 3"), "{text}");
        assert!(
            text.contains("cairn_reports_rejected_total{reason=\"replay\"} 2"),
            "{text}"
        );
        assert!(text.contains("cairn_rounds_released_total 1"), "{text}");
        assert!(
            text.contains("cairn_round_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("cairn_epsilon_remaining{task=\"ab\"} 1.5"),
            "{text}"
        );
    }

    #[test]
    fn watched_counters_are_read_on_each_scrape() {
        let m = NodeMetrics::new();
        let retries = Arc::new(AtomicU64::new(0));
        m.watch_counter("store_transaction_retries", "retries", Arc::clone(&retries));
        assert!(
            m.render()
                .contains("cairn_store_transaction_retries_total 0"),
            "{}",
            m.render()
        );
        retries.fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("# TYPE cairn_store_transaction_retries counter"),
            "{text}"
        );
        assert!(
            text.contains("cairn_store_transaction_retries_total 3"),
            "{text}"
        );
    }
}
