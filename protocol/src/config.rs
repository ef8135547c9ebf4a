//! Task configuration: what every party of a task must agree on.
//!
//! A task is described by one TOML file (`task.toml`) that the operators of all
//! aggregators, the clients and the collector share. [`TaskConfig::from_toml`] parses it
//! strictly (unknown keys are errors) and validates every parameter with a message that
//! says what to change. The [`TaskId`] is the SHA-256 hash of a canonical binary
//! encoding of the parameters, so all parties derive the same id, and changing any
//! parameter that matters for privacy or cryptography makes a different task.
//!
//! What the id covers, and what it leaves out on purpose: it covers the name, the
//! vector geometry (d, b, f, C, B), the proof mode, the noise and budget, the client
//! counts, the aggregators' roles, certificate fingerprints and HPKE keys, and the
//! collector's key. It leaves out network endpoints and the round duration, which are
//! operational: an operator can move a node to a new address without starting a new
//! task — and without a fresh, empty privacy ledger.
//!
//! # Example
//! ```
//! # use cairn_protocol::config::TaskConfig;
//! let toml = r#"
//! name = "quickstart"
//! dimension = 100
//! bits = 16
//! frac_bits = 10
//! clip_norm = 1.0
//! proof = "carry-lift"
//! min_clients = 3
//! max_clients = 1000
//! round_duration_secs = 60
//!
//! [privacy]
//! noise = "none"
//!
//! [collector]
//! hpke_public_key = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
//!
//! [[aggregators]]
//! role = "leader"
//! endpoint = "127.0.0.1:7100"
//! tls_cert_sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
//! hpke_public_key = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
//!
//! [[aggregators]]
//! role = "helper"
//! endpoint = "127.0.0.1:7101"
//! tls_cert_sha256 = "0000000000000000000000000000000000000000000000000000000000000002"
//! hpke_public_key = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
//! "#;
//! let task = TaskConfig::from_toml(toml).unwrap();
//! assert_eq!(task.num_aggregators(), 2);
//! // B defaults to ⌈C·2^f + √d⌉: the clipped norm plus the worst rounding inflation.
//! assert_eq!(task.norm_bound(), 1024 + 10);
//! ```

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hpke::HpkePublicKey;
pub use crate::ids::TaskId;

/// The Goldilocks prime `p = 2^64 − 2^32 + 1`, the proof field's modulus.
const FIELD64_MODULUS: u128 = 0xFFFF_FFFF_0000_0001;
/// Most aggregators a task may have (the sharing supports n ≤ 16).
pub const MAX_AGGREGATORS: usize = 16;
/// Largest vector dimension a task may declare (messages are sized from it).
pub const MAX_DIMENSION: u32 = 1 << 24;

/// Errors from parsing or validating a task configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML does not parse, or has unknown or missing keys.
    #[error("task configuration does not parse: {0}")]
    Toml(String),
    /// A parameter is outside its allowed range; the message says which and why.
    #[error("invalid task parameter `{field}`: {reason}")]
    Invalid {
        /// The offending key.
        field: &'static str,
        /// What is wrong and what to do about it.
        reason: String,
    },
}

impl ConfigError {
    /// An invalid value of `field`, with what is wrong and what to do about it.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// The validity check clients' reports carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProofMode {
    /// Carry-lift encoding with an FLP proof of an exact L2 bound (DESIGN §5):
    /// robust against malicious clients.
    CarryLift,
    /// Plain b-bit shares without a proof: for semi-honest clients only.
    None,
}

/// Where differential-privacy noise is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoisePlacement {
    /// No noise: the sum is exact (no DP guarantee; for testing and trusted setups).
    None,
    /// Each aggregator adds N_Z(0, σ²) to its aggregate share: DP holds if at least
    /// one aggregator is honest.
    Aggregator,
    /// Each client adds N_Z(0, σ²/n_min) (distributed discrete Gaussian): DP holds if
    /// at least `min_honest_clients` clients are honest.
    Client,
    /// Both of the above.
    Both,
}

/// The unit of privacy of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivacyUnit {
    /// A client's whole participation: one report per round, accounted in zCDP.
    #[default]
    Client,
    /// Each record of each client: Poisson-sampled, clipped per record, summed into one
    /// report per client and round, accounted with the RDP of the subsampled discrete
    /// Gaussian ([`cairn_dp::rdp`]).
    Record,
}

/// An aggregator's role in the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Accepts client uploads and drives aggregation jobs; party 0.
    Leader,
    /// Receives its sealed input shares through the leader; parties 1..n.
    Helper,
}

/// One aggregator as all parties see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorInfo {
    /// Leader or helper. Exactly one leader, listed first.
    pub role: Role,
    /// Where the aggregator listens for QUIC connections.
    pub endpoint: SocketAddr,
    /// SHA-256 of the aggregator's DER certificate, in hex: pinned by peers.
    pub tls_cert_sha256: String,
    /// The aggregator's HPKE public key, in hex: clients seal input shares to it.
    pub hpke_public_key: String,
}

/// Differential-privacy parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Where noise is added.
    pub noise: NoisePlacement,
    /// σ of the discrete Gaussian, in quantised units, that the accounting uses: each
    /// aggregator's noise for `aggregator`, the total client noise for `client`.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Total ε the task may spend over all rounds (required unless `noise = "none"`).
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// The δ at which ε is reported and enforced.
    #[serde(default)]
    pub delta: Option<f64>,
    /// With client noise: the number of honest clients the guarantee assumes; a round
    /// with fewer accepted reports is refused.
    #[serde(default)]
    pub min_honest_clients: Option<u32>,
    /// What one unit of privacy is: a client's whole participation (default) or each
    /// record of each client (record-level DP-SGD across silos).
    #[serde(default)]
    pub unit: PrivacyUnit,
    /// Record level: the probability with which every record is sampled into a round
    /// (Poisson sampling, per record, per round).
    #[serde(default)]
    pub sampling_rate: Option<f64>,
    /// Record level: the most sampled records one report may sum.
    #[serde(default)]
    pub max_records_per_report: Option<u32>,
}

/// The collector, as the aggregators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorInfo {
    /// The collector's HPKE public key, in hex: aggregate shares are sealed to it.
    pub hpke_public_key: String,
}

/// The raw, parsed form of `task.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    name: String,
    dimension: u32,
    bits: u8,
    frac_bits: u8,
    clip_norm: f64,
    #[serde(default)]
    norm_bound: Option<u64>,
    proof: ProofMode,
    min_clients: u32,
    max_clients: u32,
    round_duration_secs: u64,
    privacy: PrivacyConfig,
    collector: CollectorInfo,
    aggregators: Vec<AggregatorInfo>,
}

/// A validated task configuration. Construct with [`TaskConfig::from_toml`].
#[derive(Debug, Clone)]
pub struct TaskConfig {
    raw: RawTask,
    norm_bound: u64,
    aggregator_keys: Vec<HpkePublicKey>,
    aggregator_fingerprints: Vec<[u8; 32]>,
    collector_key: HpkePublicKey,
    id: TaskId,
}

impl TaskConfig {
    /// Parses a task file and validates its own fields; [`TaskConfig::from_toml`]
    /// (in [`crate::task`]) adds the checks of the scheme and the privacy model.
    pub(crate) fn parse_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawTask = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        Self::validate(raw)
    }

    /// The canonical TOML form (what `cairn init` writes).
    pub fn to_toml(&self) -> String {
        // Invariant: RawTask holds only TOML-representable types (strings, numbers,
        // tables and arrays of tables), so serialisation cannot fail.
        #[allow(clippy::expect_used)]
        toml::to_string_pretty(&self.raw).expect("task configs serialise to TOML")
    }

    /// The task id all parties derive.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's human-readable name.
    pub fn name(&self) -> &str {
        &self.raw.name
    }

    /// Vector dimension d.
    pub fn dimension(&self) -> usize {
        self.raw.dimension as usize
    }

    /// Bits per quantised coordinate share, b (q = 2^b).
    pub fn bits(&self) -> u8 {
        self.raw.bits
    }

    /// Fractional bits f of the fixed-point encoding.
    pub fn frac_bits(&self) -> u8 {
        self.raw.frac_bits
    }

    /// L2 clipping norm C, applied to the f32 update before quantisation.
    pub fn clip_norm(&self) -> f64 {
        self.raw.clip_norm
    }

    /// L2 norm bound B in quantised units that proofs enforce: the configured value,
    /// or by default ⌈C·2^f + √d⌉ (the clipped norm plus the largest possible
    /// randomised-rounding error, since each coordinate moves by less than 1), plus,
    /// with client noise of σ_c = σ/√n_min per coordinate, a margin
    /// [`NOISE_TAIL`]·σ_c·√d (see [`NOISE_TAIL`]).
    pub fn norm_bound(&self) -> u64 {
        self.norm_bound
    }

    /// The proof mode.
    pub fn proof(&self) -> ProofMode {
        self.raw.proof
    }

    /// Fewest valid reports a round needs before it may be released.
    pub fn min_clients(&self) -> u32 {
        self.raw.min_clients
    }

    /// Most reports a round accepts.
    pub fn max_clients(&self) -> u32 {
        self.raw.max_clients
    }

    /// How long a round stays open, in seconds.
    pub fn round_duration_secs(&self) -> u64 {
        self.raw.round_duration_secs
    }

    /// The privacy parameters.
    pub fn privacy(&self) -> &PrivacyConfig {
        &self.raw.privacy
    }

    /// The unit of privacy.
    pub fn unit(&self) -> PrivacyUnit {
        self.raw.privacy.unit
    }

    /// Record level: the per-record sampling rate q (1 at client level).
    pub fn sampling_rate(&self) -> f64 {
        self.raw.privacy.sampling_rate.unwrap_or(1.0)
    }

    /// The most records one report may sum (1 at client level).
    pub fn max_records_per_report(&self) -> u32 {
        self.raw.privacy.max_records_per_report.unwrap_or(1)
    }

    /// The aggregators, leader first.
    pub fn aggregators(&self) -> &[AggregatorInfo] {
        &self.raw.aggregators
    }

    /// Number of aggregators n.
    pub fn num_aggregators(&self) -> usize {
        self.raw.aggregators.len()
    }

    /// Aggregator `i`'s HPKE public key (parsed and checked at load).
    pub fn aggregator_hpke_key(&self, i: usize) -> Option<&HpkePublicKey> {
        self.aggregator_keys.get(i)
    }

    /// Aggregator `i`'s pinned certificate fingerprint (SHA-256 of its DER form).
    pub fn aggregator_fingerprint(&self, i: usize) -> Option<&[u8; 32]> {
        self.aggregator_fingerprints.get(i)
    }

    /// The collector's HPKE public key.
    pub fn collector_hpke_key(&self) -> &HpkePublicKey {
        &self.collector_key
    }

    fn validate(raw: RawTask) -> Result<Self, ConfigError> {
        if raw.name.is_empty() || raw.name.len() > 128 {
            return Err(ConfigError::invalid("name", "must be 1 to 128 characters"));
        }
        if raw.dimension == 0 || raw.dimension > MAX_DIMENSION {
            return Err(ConfigError::invalid(
                "dimension",
                format!("must be between 1 and {MAX_DIMENSION}"),
            ));
        }
        if !matches!(raw.bits, 8 | 16 | 32) {
            return Err(ConfigError::invalid("bits", "must be 8, 16 or 32"));
        }
        if !(raw.clip_norm.is_finite() && raw.clip_norm > 0.0) {
            return Err(ConfigError::invalid(
                "clip_norm",
                "must be a positive, finite number",
            ));
        }
        if raw.frac_bits > 40 {
            return Err(ConfigError::invalid("frac_bits", "must be at most 40"));
        }
        // The largest quantised coordinate: |x_i| ≤ C·2^f before rounding, and
        // randomised rounding moves it up by less than 1. Coordinates are encoded in
        // [−q/2, q/2), so ⌊C·2^f⌋ + 1 must stay below q/2.
        let q_half = 1u64 << (raw.bits - 1);
        // Multiplying by a power of two is exact in floating point.
        let record_clip = raw.clip_norm * 2f64.powi(i32::from(raw.frac_bits));
        validate_unit(&raw.privacy)?;
        // A report sums up to m clipped records (m = 1 at client level).
        let records = f64::from(raw.privacy.max_records_per_report.unwrap_or(1));
        let scaled_clip = record_clip * records;
        if scaled_clip.floor() + 1.0 >= q_half as f64 {
            return Err(ConfigError::invalid(
                "frac_bits",
                format!(
                    "m·C·2^f = {scaled_clip} does not fit in b = {} bits (needs < 2^{} − 1): \
                     lower frac_bits, clip_norm or max_records_per_report, or raise bits",
                    raw.bits,
                    raw.bits - 1
                ),
            ));
        }
        if let Some(sigma_client) = client_noise_sigma(&raw.privacy) {
            // Kairouz–Liu–Steinke 2021 (Theorem 1) bound the privacy of a sum of
            // discrete Gaussians for per-client σ ≥ 1/2 only.
            if sigma_client < 0.5 {
                return Err(ConfigError::invalid(
                    "privacy.sigma",
                    format!(
                        "client noise needs σ/√min_honest_clients ≥ 1/2 (KLS21, Theorem 1); \
                         it is {sigma_client:.3}: raise sigma or lower min_honest_clients"
                    ),
                ));
            }
            let reach = scaled_clip.floor() + 1.0 + NOISE_TAIL * sigma_client;
            if reach >= q_half as f64 {
                return Err(ConfigError::invalid(
                    "privacy.sigma",
                    format!(
                        "with client noise σ/√n_min = {sigma_client:.1}, coordinates reach \
                         ⌊C·2^f⌋ + 1 + {NOISE_TAIL}·σ_c = {reach:.0}, beyond b = {} bits: \
                         raise bits or min_honest_clients, or lower frac_bits",
                        raw.bits
                    ),
                ));
            }
        }
        let default_bound = default_norm_bound(scaled_clip, raw.dimension, &raw.privacy);
        let norm_bound = raw.norm_bound.unwrap_or(default_bound);
        if norm_bound == 0 {
            return Err(ConfigError::invalid("norm_bound", "must be positive"));
        }
        let n = raw.aggregators.len();
        if !(2..=MAX_AGGREGATORS).contains(&n) {
            return Err(ConfigError::invalid(
                "aggregators",
                format!("a task needs 2 to {MAX_AGGREGATORS} aggregators, found {n}"),
            ));
        }
        if raw.aggregators[0].role != Role::Leader
            || raw.aggregators[1..].iter().any(|a| a.role != Role::Helper)
        {
            return Err(ConfigError::invalid(
                "aggregators",
                "the first aggregator must be the leader and all others helpers",
            ));
        }
        if raw.min_clients == 0 || raw.max_clients < raw.min_clients {
            return Err(ConfigError::invalid(
                "min_clients",
                "need 1 ≤ min_clients ≤ max_clients",
            ));
        }
        if raw.round_duration_secs == 0 {
            return Err(ConfigError::invalid(
                "round_duration_secs",
                "must be positive",
            ));
        }
        let q = 1u128 << raw.bits;
        match raw.proof {
            ProofMode::CarryLift => {
                // DESIGN §5: every lifted coordinate X_i lies in (−n·q, n·q), so
                // ‖X‖² < d·(n·q)²; requiring that to be below p means the
                // field's sum of squares equals the integer one (no wrap-around).
                let bound = u128::from(raw.dimension) * (n as u128 * q) * (n as u128 * q);
                if bound >= FIELD64_MODULUS {
                    return Err(ConfigError::invalid(
                        "dimension",
                        format!(
                            "carry-lift needs d·(n·q)² < p; with d = {}, n = {n}, q = 2^{} \
                             it is {bound}, above p ≈ 1.8e19: lower bits or dimension",
                            raw.dimension, raw.bits
                        ),
                    ));
                }
                if u128::from(norm_bound) * u128::from(norm_bound) >= FIELD64_MODULUS {
                    return Err(ConfigError::invalid(
                        "norm_bound",
                        "B² must be below the field modulus",
                    ));
                }
            }
            ProofMode::None => {
                // DESIGN §5: without a proof the aggregators add shares mod 2^b, so the
                // whole noisy sum must fit: max_clients · max|x_i| plus the noise
                // tail (NOISE_TAIL·σ per aggregator that adds noise, and the clients'
                // noise inside max|x_i|) must stay below 2^(b−1).
                let sigma_client = client_noise_sigma(&raw.privacy).unwrap_or(0.0);
                let max_coord = (scaled_clip.floor() + 1.0 + NOISE_TAIL * sigma_client).ceil();
                let aggregator_noise = match raw.privacy.noise {
                    NoisePlacement::Aggregator | NoisePlacement::Both => {
                        NOISE_TAIL * raw.privacy.sigma.unwrap_or(0.0) * n as f64
                    }
                    _ => 0.0,
                };
                let reach = f64::from(raw.max_clients) * max_coord + aggregator_noise;
                if reach >= q_half as f64 {
                    return Err(ConfigError::invalid(
                        "max_clients",
                        format!(
                            "without a proof the noisy sum must fit in b = {} bits: \
                             max_clients · max|x_i| + {NOISE_TAIL}·σ·n_aggregators = {reach:.0} \
                             ≥ 2^{}: lower max_clients or frac_bits, or raise bits",
                            raw.bits,
                            raw.bits - 1
                        ),
                    ));
                }
            }
        }
        let mut aggregator_keys = Vec::with_capacity(n);
        let mut aggregator_fingerprints = Vec::with_capacity(n);
        for a in &raw.aggregators {
            aggregator_keys.push(HpkePublicKey::from_hex(&a.hpke_public_key).map_err(|_| {
                ConfigError::invalid(
                    "aggregators.hpke_public_key",
                    "must be 64 hex digits of an X25519 public key",
                )
            })?);
            let mut fp = [0u8; 32];
            hex::decode_to_slice(a.tls_cert_sha256.trim(), &mut fp).map_err(|_| {
                ConfigError::invalid(
                    "aggregators.tls_cert_sha256",
                    "must be 64 hex digits (SHA-256 of the DER certificate)",
                )
            })?;
            aggregator_fingerprints.push(fp);
        }
        let collector_key =
            HpkePublicKey::from_hex(&raw.collector.hpke_public_key).map_err(|_| {
                ConfigError::invalid(
                    "collector.hpke_public_key",
                    "must be 64 hex digits of an X25519 public key",
                )
            })?;
        validate_privacy(&raw.privacy, raw.min_clients)?;
        let id = canonical_id(&raw, norm_bound, &aggregator_keys, &aggregator_fingerprints);
        let task = Self {
            raw,
            norm_bound,
            aggregator_keys,
            aggregator_fingerprints,
            collector_key,
            id,
        };
        Ok(task)
    }
}

/// Client noise is assumed to stay within `NOISE_TAIL·σ_c` in every coordinate. The
/// discrete Gaussian `N_Z(0, σ_c²)` is σ_c-subgaussian (Canonne–Kamath–Steinke 2020),
/// so `P(|z_i| ≥ t·σ_c) ≤ 2·e^(−t²/2)`; with `t = 12` and a union bound over
/// `d ≤ 2^24` coordinates the probability that any coordinate exceeds it is below
/// `2^−78`. Then `‖z‖ ≤ t·σ_c·√d`, the margin the default norm bound adds, and each
/// coordinate stays inside `[−q/2, q/2)` if `⌊C·2^f⌋ + 1 + t·σ_c < q/2` (checked). A
/// client whose noise falls outside (practically never) gets a typed error and retries.
pub const NOISE_TAIL: f64 = 12.0;

/// The largest `|x_i|` an honest client sends: `⌊C·2^f⌋ + 1` after randomised rounding,
/// plus [`NOISE_TAIL`]`·σ_c` with client noise.
pub fn max_quantised_coordinate(task: &TaskConfig) -> u64 {
    let records = f64::from(task.max_records_per_report());
    let scaled_clip = task.clip_norm() * 2f64.powi(i32::from(task.frac_bits())) * records;
    let noise = client_noise_sigma(task.privacy()).map_or(0.0, |s| NOISE_TAIL * s);
    (scaled_clip.floor() + 1.0 + noise).ceil() as u64
}

/// σ_c = σ/√n_min when the clients add noise and the parameters are usable.
fn client_noise_sigma(privacy: &PrivacyConfig) -> Option<f64> {
    if !matches!(privacy.noise, NoisePlacement::Client | NoisePlacement::Both) {
        return None;
    }
    let (sigma, n_min) = (privacy.sigma?, privacy.min_honest_clients?);
    let sigma_client = sigma / f64::from(n_min.max(1)).sqrt();
    (sigma_client.is_finite() && sigma_client > 0.0).then_some(sigma_client)
}

fn default_norm_bound(scaled_clip: f64, dimension: u32, privacy: &PrivacyConfig) -> u64 {
    let sqrt_d = f64::from(dimension).sqrt();
    let mut bound = scaled_clip + sqrt_d;
    if let Some(sigma_client) = client_noise_sigma(privacy) {
        bound += NOISE_TAIL * sigma_client * sqrt_d;
    }
    bound.ceil() as u64
}

/// The record-level settings: present and in range with `unit = "record"`, absent
/// otherwise.
fn validate_unit(p: &PrivacyConfig) -> Result<(), ConfigError> {
    match p.unit {
        PrivacyUnit::Client => {
            if p.sampling_rate.is_some() || p.max_records_per_report.is_some() {
                return Err(ConfigError::invalid(
                    "privacy.sampling_rate",
                    "sampling_rate and max_records_per_report are only for unit = \"record\"",
                ));
            }
            Ok(())
        }
        PrivacyUnit::Record => {
            match p.sampling_rate {
                Some(q) if q > 0.0 && q <= 1.0 => {}
                Some(q) => {
                    return Err(ConfigError::invalid(
                        "privacy.sampling_rate",
                        format!("must be in (0, 1], got {q}"),
                    ));
                }
                None => {
                    return Err(ConfigError::invalid(
                        "privacy.sampling_rate",
                        "unit = \"record\" needs sampling_rate (in (0, 1])",
                    ));
                }
            }
            match p.max_records_per_report {
                Some(m) if m >= 1 => {}
                _ => {
                    return Err(ConfigError::invalid(
                        "privacy.max_records_per_report",
                        "unit = \"record\" needs max_records_per_report ≥ 1",
                    ));
                }
            }
            if !matches!(p.noise, NoisePlacement::Aggregator | NoisePlacement::None) {
                return Err(ConfigError::invalid(
                    "privacy.noise",
                    "unit = \"record\" is accounted for aggregator noise only (noise = \
                     \"aggregator\", or \"none\" for testing)",
                ));
            }
            Ok(())
        }
    }
}

fn validate_privacy(p: &PrivacyConfig, min_clients: u32) -> Result<(), ConfigError> {
    if p.noise == NoisePlacement::None {
        if p.sigma.is_some() || p.min_honest_clients.is_some() {
            return Err(ConfigError::invalid(
                "privacy",
                "noise = \"none\" takes no sigma or min_honest_clients",
            ));
        }
        return Ok(());
    }
    match p.sigma {
        Some(s) if s.is_finite() && s > 0.0 => {}
        _ => {
            return Err(ConfigError::invalid(
                "privacy.sigma",
                "must be a positive, finite number",
            ));
        }
    }
    match p.epsilon {
        Some(e) if e.is_finite() && e > 0.0 => {}
        _ => {
            return Err(ConfigError::invalid(
                "privacy.epsilon",
                "must be a positive, finite number",
            ));
        }
    }
    match p.delta {
        Some(d) if d > 0.0 && d < 1.0 => {}
        _ => {
            return Err(ConfigError::invalid(
                "privacy.delta",
                "must lie strictly between 0 and 1",
            ));
        }
    }
    let needs_clients = matches!(p.noise, NoisePlacement::Client | NoisePlacement::Both);
    match (needs_clients, p.min_honest_clients) {
        (true, Some(k)) if k >= 1 && k <= min_clients => Ok(()),
        (true, _) => Err(ConfigError::invalid(
            "privacy.min_honest_clients",
            "client noise needs 1 ≤ min_honest_clients ≤ min_clients",
        )),
        (false, Some(_)) => Err(ConfigError::invalid(
            "privacy.min_honest_clients",
            "only meaningful with noise = \"client\" or \"both\"",
        )),
        (false, None) => Ok(()),
    }
}

/// SHA-256 over a canonical, unambiguous encoding (fixed-width integers, floats as
/// IEEE-754 bits, length-prefixed strings) of the parameters the id covers.
fn canonical_id(
    raw: &RawTask,
    norm_bound: u64,
    keys: &[HpkePublicKey],
    fingerprints: &[[u8; 32]],
) -> TaskId {
    let mut h = Sha256::new();
    h.update(b"cairn/1 task id");
    let put_str = |h: &mut Sha256, s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    let put_opt_f64 = |h: &mut Sha256, v: Option<f64>| match v {
        Some(v) => {
            h.update([1]);
            h.update(v.to_bits().to_le_bytes());
        }
        None => h.update([0]),
    };
    put_str(&mut h, &raw.name);
    h.update(raw.dimension.to_le_bytes());
    h.update([raw.bits, raw.frac_bits]);
    h.update(raw.clip_norm.to_bits().to_le_bytes());
    h.update(norm_bound.to_le_bytes());
    h.update([match raw.proof {
        ProofMode::CarryLift => 1,
        ProofMode::None => 0,
    }]);
    h.update(raw.min_clients.to_le_bytes());
    h.update(raw.max_clients.to_le_bytes());
    h.update([match raw.privacy.noise {
        NoisePlacement::None => 0,
        NoisePlacement::Aggregator => 1,
        NoisePlacement::Client => 2,
        NoisePlacement::Both => 3,
    }]);
    put_opt_f64(&mut h, raw.privacy.sigma);
    put_opt_f64(&mut h, raw.privacy.epsilon);
    put_opt_f64(&mut h, raw.privacy.delta);
    match raw.privacy.min_honest_clients {
        Some(k) => {
            h.update([1]);
            h.update(k.to_le_bytes());
        }
        None => h.update([0]),
    }
    // The unit of privacy and its sampling are part of the task: changing them makes
    // another task (and another ledger), never a silent change of an existing one.
    h.update([match raw.privacy.unit {
        PrivacyUnit::Client => 0,
        PrivacyUnit::Record => 1,
    }]);
    put_opt_f64(&mut h, raw.privacy.sampling_rate);
    match raw.privacy.max_records_per_report {
        Some(m) => {
            h.update([1]);
            h.update(m.to_le_bytes());
        }
        None => h.update([0]),
    }
    h.update((keys.len() as u64).to_le_bytes());
    for (i, (key, fp)) in keys.iter().zip(fingerprints).enumerate() {
        h.update([u8::from(i == 0)]);
        h.update(key.as_bytes());
        h.update(fp);
    }
    let mut collector = [0u8; 32];
    if let Ok(k) = HpkePublicKey::from_hex(&raw.collector.hpke_public_key) {
        collector = *k.as_bytes();
    }
    h.update(collector);
    TaskId(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const KEY_B: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

    fn sample(extra_task: &str, privacy: &str) -> String {
        format!(
            r#"
name = "t"
dimension = 1000
bits = 16
frac_bits = 8
clip_norm = 1.0
proof = "carry-lift"
min_clients = 5
max_clients = 100
round_duration_secs = 60
{extra_task}

[privacy]
{privacy}

[collector]
hpke_public_key = "{KEY_B}"

[[aggregators]]
role = "leader"
endpoint = "127.0.0.1:7100"
tls_cert_sha256 = "{fp1}"
hpke_public_key = "{KEY_A}"

[[aggregators]]
role = "helper"
endpoint = "127.0.0.1:7101"
tls_cert_sha256 = "{fp2}"
hpke_public_key = "{KEY_B}"
"#,
            fp1 = "11".repeat(32),
            fp2 = "22".repeat(32),
        )
    }

    const AGG_NOISE: &str = "noise = \"aggregator\"\nsigma = 1000.0\nepsilon = 4.0\ndelta = 1e-6";

    fn field_of(err: ConfigError) -> &'static str {
        match err {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_derives_defaults() {
        let task = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
        assert_eq!(task.dimension(), 1000);
        // ⌈256 + √1000⌉ = ⌈287.62⌉.
        assert_eq!(task.norm_bound(), 288);
        assert_eq!(task.num_aggregators(), 2);
        assert_eq!(task.aggregator_fingerprint(1), Some(&[0x22; 32]));
    }

    #[test]
    fn task_id_is_stable_and_covers_parameters_but_not_endpoints() {
        let a = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
        let b = TaskConfig::from_toml(&sample("", AGG_NOISE)).unwrap();
        assert_eq!(a.id(), b.id());
        let moved = sample("", AGG_NOISE).replace("127.0.0.1:7101", "127.0.0.1:9999");
        assert_eq!(TaskConfig::from_toml(&moved).unwrap().id(), a.id());
        let more_budget = sample("", &AGG_NOISE.replace("epsilon = 4.0", "epsilon = 4.5"));
        assert_ne!(TaskConfig::from_toml(&more_budget).unwrap().id(), a.id());
        let other_bound = sample("norm_bound = 300", AGG_NOISE);
        assert_ne!(TaskConfig::from_toml(&other_bound).unwrap().id(), a.id());
        // The canonical TOML round-trips to the same task.
        assert_eq!(TaskConfig::from_toml(&a.to_toml()).unwrap().id(), a.id());
    }

    #[test]
    fn every_parameter_that_matters_changes_the_task_id() {
        let base = sample("", AGG_NOISE);
        let id = TaskConfig::from_toml(&base).unwrap().id();
        let changes: &[(&str, &str)] = &[
            ("name = \"t\"", "name = \"u\""),
            ("dimension = 1000", "dimension = 999"),
            ("bits = 16", "bits = 32"),
            ("frac_bits = 8", "frac_bits = 7"),
            ("clip_norm = 1.0", "clip_norm = 0.5"),
            ("min_clients = 5", "min_clients = 6"),
            ("max_clients = 100", "max_clients = 101"),
            ("sigma = 1000.0", "sigma = 1001.0"),
            ("epsilon = 4.0", "epsilon = 4.5"),
            ("delta = 1e-6", "delta = 1e-7"),
            (&"11".repeat(32), &"33".repeat(32)),
            (
                KEY_A,
                "0900000000000000000000000000000000000000000000000000000000000000",
            ),
        ];
        for (from, to) in changes {
            let changed = base.replacen(from, to, 1);
            assert_ne!(changed, base, "{from} not in the sample");
            match TaskConfig::from_toml(&changed) {
                Ok(t) => assert_ne!(t.id(), id, "changing {from} kept the task id"),
                // bits = 32 breaks the carry-lift no-wrap bound: a different task anyway.
                Err(e) => assert_eq!(*from, "bits = 16", "{from}: {e}"),
            }
        }
        for (extra, privacy) in [
            ("norm_bound = 300", AGG_NOISE.to_owned()),
            (
                "",
                AGG_NOISE.to_owned()
                    + "\nunit = \"record\"\nsampling_rate = 0.5\nmax_records_per_report = 2",
            ),
        ] {
            let t = TaskConfig::from_toml(&sample(extra, &privacy)).unwrap();
            assert_ne!(t.id(), id, "{extra} {privacy}");
        }
        // The noise placement (client vs both at the same parameters).
        let placement = |noise: &str| {
            let privacy = format!(
                "noise = \"{noise}\"\nsigma = 1000.0\nepsilon = 1e9\ndelta = 1e-6\nmin_honest_clients = 5"
            );
            TaskConfig::from_toml(&sample("", &privacy)).unwrap().id()
        };
        assert_ne!(placement("client"), placement("both"));
        // The collector's key too (replacing the collector key, not the helper's).
        let other = base.replacen(
            &format!("[collector]\nhpke_public_key = \"{KEY_B}\""),
            &format!("[collector]\nhpke_public_key = \"{KEY_A}\""),
            1,
        );
        assert_ne!(TaskConfig::from_toml(&other).unwrap().id(), id);
        // Operational settings do not: the round duration and the endpoints.
        let op = base.replace("round_duration_secs = 60", "round_duration_secs = 61");
        assert_eq!(TaskConfig::from_toml(&op).unwrap().id(), id);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = TaskConfig::from_toml(&sample("colour = \"red\"", AGG_NOISE)).unwrap_err();
        assert!(matches!(err, ConfigError::Toml(_)), "{err:?}");
        let err =
            TaskConfig::from_toml(&sample("", &format!("{AGG_NOISE}\nextra = 1"))).unwrap_err();
        assert!(matches!(err, ConfigError::Toml(_)), "{err:?}");
    }

    #[test]
    fn clip_that_does_not_fit_in_b_bits_is_rejected_with_a_clear_message() {
        let text = sample("", AGG_NOISE).replace("frac_bits = 8", "frac_bits = 15");
        let err = TaskConfig::from_toml(&text).unwrap_err();
        assert!(
            err.to_string().contains("does not fit in b = 16 bits"),
            "{err}"
        );
    }

    #[test]
    fn carry_lift_no_wrap_condition_is_enforced() {
        // d·(2·2^32)² ≥ p for any d ≥ 1 with b = 32.
        let text = sample("", AGG_NOISE).replace("bits = 16", "bits = 32");
        let err = TaskConfig::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("d·(n·q)² < p"), "{err}");
        // b = 16, n = 2: d·2^34 < p ⇔ d < 2^30 − 2^−2 …: the largest allowed d is fine.
        let ok = sample("", "noise = \"none\"").replace("dimension = 1000", "dimension = 16777216");
        assert!(TaskConfig::from_toml(&ok).is_ok());
    }

    #[test]
    fn no_proof_mode_needs_the_sum_to_fit() {
        let text =
            sample("", "noise = \"none\"").replace("proof = \"carry-lift\"", "proof = \"none\"");
        // max_clients · (256 + 1) = 25 700 < 2^15: fits.
        assert!(TaskConfig::from_toml(&text).is_ok());
        // max_clients · (256 + 1) = 51 400 ≥ 2^15: the sum would not fit in 16 bits.
        let too_many = text.replace("max_clients = 100", "max_clients = 200");
        assert_eq!(
            field_of(TaskConfig::from_toml(&too_many).unwrap_err()),
            "max_clients"
        );
    }

    #[test]
    fn no_proof_mode_counts_the_aggregators_noise_tail_in_the_sum() {
        // 100 · 257 = 25 700 fits in 2^15 = 32 768 without noise; with σ = 200 at two
        // aggregators the tail adds 12 · 200 · 2 = 4 800 (fits), with σ = 400 it adds
        // 9 600 (does not).
        let with_sigma = |sigma: &str| {
            sample(
                "",
                &format!("noise = \"aggregator\"\nsigma = {sigma}\nepsilon = 1000.0\ndelta = 1e-6"),
            )
            .replace("proof = \"carry-lift\"", "proof = \"none\"")
        };
        assert!(TaskConfig::from_toml(&with_sigma("200.0")).is_ok());
        assert_eq!(
            field_of(TaskConfig::from_toml(&with_sigma("400.0")).unwrap_err()),
            "max_clients"
        );
    }

    #[test]
    fn client_noise_below_one_half_per_client_is_refused() {
        // σ/√n_min = 2/√25 = 0.4 < 1/2 (KLS21 needs ≥ 1/2).
        let text = sample(
            "",
            "noise = \"client\"\nsigma = 2.0\nepsilon = 1000.0\ndelta = 1e-6\nmin_honest_clients = 5",
        )
        .replace("min_clients = 5", "min_clients = 25")
        .replace("min_honest_clients = 5", "min_honest_clients = 25");
        let err = TaskConfig::from_toml(&text).unwrap_err();
        assert_eq!(field_of(err.clone()), "privacy.sigma", "{err}");
        assert!(err.to_string().contains("1/2"), "{err}");
    }

    #[test]
    fn without_a_proof_the_noise_is_charged_for_an_honest_update_whatever_b_says() {
        // A configured B of 10 is far below Δ = 256 + √1000 ≈ 287.6: with a proof the
        // accounting may use B (the proof enforces it), without one it must use Δ.
        let privacy = "noise = \"aggregator\"\nsigma = 200.0\nepsilon = 1000.0\ndelta = 1e-6";
        let proven = TaskConfig::from_toml(&sample("norm_bound = 10", privacy)).unwrap();
        let unproven = TaskConfig::from_toml(
            &sample("norm_bound = 10", privacy)
                .replace("proof = \"carry-lift\"", "proof = \"none\""),
        )
        .unwrap();
        assert_eq!(crate::privacy::aggregator_sensitivity(&proven), 10.0);
        let delta = 256.0 + 1000f64.sqrt();
        assert_eq!(crate::privacy::aggregator_sensitivity(&unproven), delta);
        let rho = crate::privacy::Privacy::for_task(&unproven)
            .unwrap()
            .rho_per_release();
        // ρ = Δ²/(2σ²) (CKS20 Theorem 14).
        assert!((rho - delta * delta / (2.0 * 200.0 * 200.0)).abs() < 1e-12);
    }

    #[test]
    fn bad_values_get_typed_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("dimension = 1000", "dimension = 0", "dimension"),
            ("bits = 16", "bits = 12", "bits"),
            ("clip_norm = 1.0", "clip_norm = -1.0", "clip_norm"),
            ("clip_norm = 1.0", "clip_norm = nan", "clip_norm"),
            ("min_clients = 5", "min_clients = 0", "min_clients"),
            ("min_clients = 5", "min_clients = 500", "min_clients"),
            (
                "round_duration_secs = 60",
                "round_duration_secs = 0",
                "round_duration_secs",
            ),
            ("sigma = 1000.0", "sigma = 0.0", "privacy.sigma"),
            ("epsilon = 4.0", "epsilon = -1.0", "privacy.epsilon"),
            ("delta = 1e-6", "delta = 1.0", "privacy.delta"),
            ("role = \"helper\"", "role = \"leader\"", "aggregators"),
            (KEY_A, "abcd", "aggregators.hpke_public_key"),
        ];
        for (from, to, field) in cases {
            let text = sample("", AGG_NOISE).replacen(from, to, 1);
            assert_ne!(text, sample("", AGG_NOISE), "case {to} did not apply");
            let err = TaskConfig::from_toml(&text).unwrap_err();
            assert_eq!(field_of(err), *field, "case {to}");
        }
    }

    #[test]
    fn a_budget_too_small_for_one_release_is_refused_at_load() {
        // B = 288 and σ = 1: one release costs ρ = 288²/2 ≈ 41 472, far above ε = 4.
        let tiny = AGG_NOISE.replace("sigma = 1000.0", "sigma = 1.0");
        let err = TaskConfig::from_toml(&sample("", &tiny)).unwrap_err();
        assert_eq!(field_of(err.clone()), "privacy.epsilon");
        assert!(
            err.to_string().contains("too small for even one release"),
            "{err}"
        );
    }

    #[test]
    fn client_noise_needs_min_honest_clients() {
        let client = AGG_NOISE.replace("\"aggregator\"", "\"client\"");
        let err = TaskConfig::from_toml(&sample("", &client)).unwrap_err();
        assert_eq!(field_of(err), "privacy.min_honest_clients");
        let ok = format!("{client}\nmin_honest_clients = 5");
        assert!(TaskConfig::from_toml(&sample("", &ok)).is_ok());
    }
}
