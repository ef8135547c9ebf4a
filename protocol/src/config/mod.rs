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
//! counts, the aggregators' roles and certificate fingerprints, and the collector's
//! key (and, for the carry-lift proof, its joint-randomness hash: `joint_rand_hash =
//! "blake3"`, or `"sha256"`, the default when the key is absent). It leaves out network endpoints and the round duration, which are
//! operational: an operator can move a node to a new address without starting a new
//! task — and without a fresh, empty privacy ledger. It also leaves out the
//! aggregators' HPKE keys, which rotate ([`crate::keyring`]): a rotation keeps the
//! task, its client credentials and its ledger. Like every other field, the key
//! reaches clients only through this file, which must come to them authentically.
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
/// Most replica endpoints one aggregator may list besides its own.
pub const MAX_REPLICA_ENDPOINTS: usize = 64;
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

/// The hash of the carry-lift proof's joint randomness (Fiat–Shamir over the shares),
/// key `joint_rand_hash`. A task file without the key means SHA-256, as every task
/// file written before the choice existed does; `cairn init` writes `"blake3"`, which
/// hashes the leader's share about four times as fast. Either is sound (module docs of
/// `cairn_proofs::carry_lift`); changing it makes another task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JointRandHash {
    /// SHA-256, the default.
    Sha256,
    /// BLAKE3.
    Blake3,
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
    /// Further endpoints of the same aggregator: replicas that share its TLS identity,
    /// HPKE key and database (`store = "postgres"`). Each client, collector and leader
    /// starts at one of [`endpoints`](Self::endpoints) chosen at random and moves to
    /// the next when a connection fails. Not part of the task id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_endpoints: Vec<SocketAddr>,
    /// SHA-256 of the aggregator's DER certificate, in hex: pinned by peers.
    pub tls_cert_sha256: String,
    /// The aggregator's HPKE public key, in hex: clients seal input shares to it.
    /// The aggregator's *active* key ([`crate::keyring`]); not part of the task id,
    /// so rotating it keeps the task.
    pub hpke_public_key: String,
}

impl AggregatorInfo {
    /// Every endpoint of this aggregator: [`endpoint`](Self::endpoint) first, then
    /// the replicas', without repeats.
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        let mut all = vec![self.endpoint];
        for e in &self.replica_endpoints {
            if !all.contains(e) {
                all.push(*e);
            }
        }
        all
    }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    joint_rand_hash: Option<JointRandHash>,
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
        let raw: RawTask =
            toml::from_str(text).map_err(|e| ConfigError::Toml(toml_error_message(&e)))?;
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

    /// The carry-lift proof's joint-randomness hash (SHA-256 unless the file says
    /// otherwise).
    pub fn joint_rand_hash(&self) -> JointRandHash {
        self.raw.joint_rand_hash.unwrap_or(JointRandHash::Sha256)
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
}

/// Client noise is assumed to stay within `NOISE_TAIL·σ_c` in every coordinate. The
/// discrete Gaussian `N_Z(0, σ_c²)` is σ_c-subgaussian (Canonne–Kamath–Steinke 2020),
/// so `P(|z_i| ≥ t·σ_c) ≤ 2·e^(−t²/2)`; with `t = 12` and a union bound over
/// `d ≤ 2^24` coordinates the probability that any coordinate exceeds it is below
/// `2^−78`. Then `‖z‖ ≤ t·σ_c·√d`, the margin the default norm bound adds, and each
/// coordinate stays inside `[−q/2, q/2)` if `⌊C·2^f⌋ + 1 + t·σ_c < q/2` (checked). A
/// client whose noise falls outside (practically never) gets a typed error and retries.
/// Whether it retries depends on its update too, but only on that event of
/// probability below `2^−78`, so by the coupling argument of `cairn_dp::cap` the
/// retries add at most `(1 + e^ε)·T·n·2^−78` to δ over `T` rounds of `n` clients
/// (below `10^−13` for `T = 10^4`, `n = 10^3`, `ε = 8`); it is not charged.
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

mod id;
mod validate;

#[cfg(test)]
mod tests;

/// A TOML parse error as its message and position only: the parser's display quotes
/// the offending line, and a secret file passed by mistake (a key where a task or node
/// file belongs) must not end up in an error message or a log.
pub fn toml_error_message(e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("{} (at byte {})", e.message(), span.start),
        None => e.message().to_owned(),
    }
}
