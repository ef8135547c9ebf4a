//! The validity scheme of a task, behind one byte-level interface.
//!
//! A task either proves an exact L2 bound with the carry-lift encoding
//! ([`cairn_proofs::carry_lift`]) or sends plain `b`-bit shares without a proof
//! ([`cairn_proofs::no_proof`], semi-honest clients). The state machines only see
//! this module: shares and verifier messages as byte strings of exactly known length
//! (so the wire layer can enforce sizes), a per-report [`Prepared`] state, and the
//! running [`Aggregate`].
//!
//! Both schemes aggregate into `d` elements of Field64. For carry-lift they are the
//! aggregator's shares of `Σ X`. For no-proof they are the aggregator's `b`-bit share
//! words added as integers (`N·2^b` stays far below `p`, so the field sum *is* the
//! integer sum). The integer sum must not leave the aggregator: how often it wrapped
//! past 2^b depends on the inputs and is not covered by the noise. So
//! [`Scheme::finalize_share`] reduces it mod 2^b and adds the noise mod 2^b, and
//! only `b`-bit words are released, which is what DDG-style aggregation mod 2^b
//! computes.

use cairn_mpc::codec::{CodecError, Encode, Reader};
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_proofs::carry_lift::{self, CarryLift, CarryLiftParams, InputShare, PrepState};
use cairn_proofs::no_proof::{NoProof, NoProofInputShare, NoProofParams};
use rand_core::CryptoRng;

use crate::config::{ConfigError, JointRandHash, ProofMode, TaskConfig};
use crate::ids::ReportId;
use crate::ids::TaskId;
use crate::messages::{ErrorCode, Limits};

/// Reports per aggregation job, at most. Bounds job messages and the memory a job
/// holds while it is being verified (each prepared report keeps an O(d) share).
pub const MAX_REPORTS_PER_JOB: usize = 64;

/// A report's shares as bytes, produced by the client.
pub struct ShardedReport {
    /// Sent to every aggregator.
    pub public_share: Vec<u8>,
    /// For the leader.
    pub leader_share: SecretVec<u8>,
    /// For helpers `1..n`, in order (each sealed to its helper by the client).
    pub helper_shares: Vec<SecretVec<u8>>,
}

/// An aggregator's state for one report between preparation and the decision.
pub struct Prepared {
    state: PreparedState,
}

enum PreparedState {
    CarryLift(PrepState),
    /// This aggregator's `b`-bit share words of the report.
    NoProof(SecretVec<u32>),
}

impl core::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Prepared(<redacted>)")
    }
}

/// An aggregator's running aggregate share of a round: `d` field elements, O(d)
/// whatever the number of reports (eager aggregation). Secret until released (it is
/// one share of a sum), so it is wiped on drop and prints redacted.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct Aggregate(Vec<Field64>);

impl core::fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Aggregate(<{} elements>)", self.0.len())
    }
}

impl Aggregate {
    /// The zero aggregate of dimension `d`.
    pub fn zero(d: usize) -> Self {
        Self(vec![Field64::ZERO; d])
    }

    /// The elements.
    pub fn as_slice(&self) -> &[Field64] {
        &self.0
    }

    /// Adds another aggregate (of the same dimension) into this one.
    pub fn add_assign(&mut self, other: &Aggregate) -> Result<(), cairn_mpc::vector::VectorError> {
        cairn_mpc::vector::add_assign(&mut self.0, &other.0)
    }

    /// Adds integer noise to every coordinate (each aggregator's DP noise).
    pub fn add_noise(&mut self, noise: &[i64]) {
        for (a, z) in self.0.iter_mut().zip(noise) {
            *a += Field64::from_i64(*z);
        }
    }

    /// Reduces every element (an integer below `p`, read as such) mod `2^bits` and
    /// adds `noise` mod `2^bits`: the no-proof release (module docs).
    fn reduce_mod_pow2(&mut self, bits: u8, noise: Option<&[i64]>) {
        let modulus = 1i128 << bits;
        for (i, a) in self.0.iter_mut().enumerate() {
            let z = noise.and_then(|n| n.get(i)).copied().unwrap_or(0);
            let v = (i128::from(a.as_u64()) + i128::from(z)).rem_euclid(modulus);
            // In [0, 2^bits) with bits ≤ 32: fits u64 exactly.
            *a = Field64::from_u64(v as u64);
        }
    }

    /// Encodes as `d` canonical 8-byte elements (what is sealed to the collector and
    /// what a node stores).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * self.0.len());
        for v in &self.0 {
            v.encode(&mut out);
        }
        out
    }

    /// Decodes exactly `d` elements.
    pub fn decode(bytes: &[u8], d: usize) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let values = r.read_vec_of_len::<Field64>(d)?;
        r.finish()?;
        Ok(Self(values))
    }
}

/// The validity scheme of one task.
#[derive(Debug, Clone)]
pub struct Scheme {
    kind: Kind,
    task_id: TaskId,
    num_aggregators: usize,
    dimension: usize,
    bits: u8,
}

#[derive(Debug, Clone)]
enum Kind {
    CarryLift(CarryLift),
    NoProof(NoProof),
}

/// Errors of sharding a client's vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// The carry-lift proof could not be made (a coordinate or the norm out of range,
    /// a wrong length).
    #[error("sharding with a carry-lift proof failed: {0}")]
    CarryLift(#[from] cairn_proofs::carry_lift::CarryLiftError),
    /// The no-proof sharing failed (a coordinate out of range, a wrong length).
    #[error("sharding without a proof failed: {0}")]
    NoProof(#[from] cairn_proofs::no_proof::NoProofError),
}

impl ShardError {
    /// Whether a coordinate or the norm is outside what the task accepts: the client's
    /// vector (or its noise) is at fault, not the code.
    pub fn is_out_of_bounds(&self) -> bool {
        use cairn_proofs::carry_lift::CarryLiftError;
        use cairn_proofs::no_proof::NoProofError;
        matches!(
            self,
            ShardError::CarryLift(
                CarryLiftError::NormTooLarge | CarryLiftError::CoordinateOutOfRange { .. }
            ) | ShardError::NoProof(NoProofError::CoordinateOutOfRange { .. })
        )
    }
}

impl Scheme {
    /// The scheme a task configures, with its parameters checked by the proofs crate
    /// (the no-wrap and soundness conditions, or the no-proof sum bound).
    pub fn for_task(task: &TaskConfig) -> Result<Self, ConfigError> {
        let invalid = |e: String| ConfigError::Invalid {
            field: "proof",
            reason: e,
        };
        let kind = match task.proof() {
            ProofMode::CarryLift => {
                let mut params = CarryLiftParams::new(
                    task.dimension(),
                    task.num_aggregators(),
                    task.norm_bound(),
                );
                params.bits = u32::from(task.bits());
                params.joint_rand_hash = match task.joint_rand_hash() {
                    JointRandHash::Sha256 => carry_lift::JointRandHash::Sha256,
                    JointRandHash::Blake3 => carry_lift::JointRandHash::Blake3,
                };
                Kind::CarryLift(CarryLift::new(params).map_err(|e| invalid(e.to_string()))?)
            }
            ProofMode::None => Kind::NoProof(
                NoProof::new(NoProofParams {
                    dimension: task.dimension(),
                    num_aggregators: task.num_aggregators(),
                    bits: u32::from(task.bits()),
                    max_clients: u64::from(task.max_clients()),
                    max_abs: crate::config::max_quantised_coordinate(task),
                })
                .map_err(|e| invalid(e.to_string()))?,
            ),
        };
        Ok(Self {
            kind,
            task_id: task.id(),
            num_aggregators: task.num_aggregators(),
            dimension: task.dimension(),
            bits: task.bits(),
        })
    }

    /// Vector dimension d.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Number of aggregators n.
    pub fn num_aggregators(&self) -> usize {
        self.num_aggregators
    }

    /// Exact byte sizes of every scheme payload, as decoding limits.
    pub fn limits(&self) -> Limits {
        let (public_share, leader_share, verifier_share) = match &self.kind {
            Kind::CarryLift(c) => (
                c.public_share_len(),
                c.leader_share_len(),
                c.verifier_share_len(),
            ),
            Kind::NoProof(np) => (0, np.leader_share_len(), 0),
        };
        Limits {
            public_share,
            leader_share,
            helper_share: 32,
            helpers: self.num_aggregators - 1,
            reports_per_job: MAX_REPORTS_PER_JOB,
            verifier_share,
            aggregate_share: 8 * self.dimension,
        }
    }

    /// The most reports a round may aggregate and still decode exactly.
    pub fn max_reports(&self) -> u64 {
        match &self.kind {
            Kind::CarryLift(c) => c.max_reports(),
            Kind::NoProof(np) => np.params().max_clients,
        }
    }

    /// Client: shares (and, with carry-lift, proves) the quantised vector `x`.
    pub fn shard<R: CryptoRng + ?Sized>(
        &self,
        report_id: &ReportId,
        x: &[i64],
        rng: &mut R,
    ) -> Result<ShardedReport, ShardError> {
        match &self.kind {
            Kind::CarryLift(c) => {
                let report = c.shard(&self.task_id.0, &report_id.0, x, rng)?;
                Ok(ShardedReport {
                    public_share: report.public_share.to_bytes(),
                    leader_share: SecretVec::new(report.leader_share.to_bytes()),
                    helper_shares: report
                        .helper_shares
                        .iter()
                        .map(|h| SecretVec::new(h.to_bytes()))
                        .collect(),
                })
            }
            Kind::NoProof(np) => {
                let (leader, helpers) = np.shard(&self.task_id.0, &report_id.0, x, rng)?;
                Ok(ShardedReport {
                    public_share: Vec::new(),
                    leader_share: SecretVec::new(leader.to_bytes()),
                    helper_shares: helpers
                        .iter()
                        .map(|h| SecretVec::new(h.to_bytes()))
                        .collect(),
                })
            }
        }
    }

    /// Aggregator `agg_id`: decodes its share, checks its joint-randomness part and
    /// computes its verifier share (empty without a proof). Every failure maps to an
    /// [`ErrorCode`]: sizes to [`ErrorCode::WrongSize`], anything the proof machinery
    /// refuses to [`ErrorCode::ProofFailed`].
    pub fn prepare(
        &self,
        agg_id: usize,
        verify_key: &Seed,
        report_id: &ReportId,
        public_share: &[u8],
        input_share: &[u8],
    ) -> Result<(Prepared, Vec<u8>), ErrorCode> {
        let limits = self.limits();
        let expected_share = if agg_id == 0 {
            limits.leader_share
        } else {
            limits.helper_share
        };
        if public_share.len() != limits.public_share || input_share.len() != expected_share {
            return Err(ErrorCode::WrongSize);
        }
        match &self.kind {
            Kind::CarryLift(c) => {
                let public = c
                    .decode_public_share(public_share)
                    .map_err(|_| ErrorCode::WrongSize)?;
                let share = if agg_id == 0 {
                    InputShare::Leader(
                        c.decode_leader_share(input_share)
                            .map_err(|_| ErrorCode::BadMessage)?,
                    )
                } else {
                    InputShare::Helper(
                        c.decode_helper_share(input_share)
                            .map_err(|_| ErrorCode::BadMessage)?,
                    )
                };
                let (state, verifier) = c
                    .prepare_init(
                        agg_id,
                        verify_key,
                        &self.task_id.0,
                        &report_id.0,
                        &public,
                        &share,
                    )
                    .map_err(|_| ErrorCode::ProofFailed)?;
                Ok((
                    Prepared {
                        state: PreparedState::CarryLift(state),
                    },
                    verifier.to_bytes(),
                ))
            }
            Kind::NoProof(np) => {
                let share = if agg_id == 0 {
                    NoProofInputShare::Leader(
                        np.decode_leader_share(input_share)
                            .map_err(|_| ErrorCode::BadMessage)?,
                    )
                } else {
                    NoProofInputShare::Helper(
                        np.decode_helper_share(input_share)
                            .map_err(|_| ErrorCode::BadMessage)?,
                    )
                };
                let mut words = SecretVec::<u32>::zeroed(self.dimension);
                np.accumulate(
                    agg_id,
                    &self.task_id.0,
                    &report_id.0,
                    &share,
                    words.expose_secret_mut(),
                )
                .map_err(|_| ErrorCode::BadMessage)?;
                Ok((
                    Prepared {
                        state: PreparedState::NoProof(words),
                    },
                    Vec::new(),
                ))
            }
        }
    }

    /// Leader: decides a report from all `n` verifier shares (its own first, then the
    /// helpers' in order). `Err(ProofFailed)` for any failure, by design opaque.
    /// Without a proof every well-formed report is accepted.
    pub fn decide(
        &self,
        leader_state: &Prepared,
        verifier_shares: &[&[u8]],
    ) -> Result<(), ErrorCode> {
        match (&self.kind, &leader_state.state) {
            (Kind::CarryLift(c), PreparedState::CarryLift(state)) => {
                let shares = verifier_shares
                    .iter()
                    .map(|b| c.decode_verifier_share(b))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| ErrorCode::ProofFailed)?;
                c.decide(state, &shares).map_err(|_| ErrorCode::ProofFailed)
            }
            (Kind::NoProof(_), PreparedState::NoProof(_)) => {
                if verifier_shares.iter().all(|v| v.is_empty()) {
                    Ok(())
                } else {
                    Err(ErrorCode::BadMessage)
                }
            }
            _ => Err(ErrorCode::Internal),
        }
    }

    /// Turns a round's aggregate share into what the aggregator releases, adding its
    /// `noise` (if any): in the field for carry-lift; for no-proof, the integer sum is
    /// reduced mod 2^b first and the noise added mod 2^b (module docs).
    pub fn finalize_share(&self, aggregate: &mut Aggregate, noise: Option<&[i64]>) {
        match &self.kind {
            Kind::CarryLift(_) => {
                if let Some(z) = noise {
                    aggregate.add_noise(z);
                }
            }
            Kind::NoProof(_) => aggregate.reduce_mod_pow2(self.bits, noise),
        }
    }

    /// Adds a report's share into a running aggregate: the helpers add accepted reports,
    /// the leader each report it prepared ([`Scheme::withdraw`] takes back a rejected one).
    pub fn accumulate(
        &self,
        prepared: &Prepared,
        aggregate: &mut Aggregate,
    ) -> Result<(), ErrorCode> {
        apply_share(prepared, aggregate, ShareOp::Add)
    }

    /// Takes a report's share back out of an aggregate that [`Scheme::accumulate`]
    /// added it to: `aggregate − share`, exact in Field64 (for no-proof too, whose
    /// words are added as field elements), so accumulating and withdrawing leave the
    /// aggregate as it was.
    pub fn withdraw(
        &self,
        prepared: &Prepared,
        aggregate: &mut Aggregate,
    ) -> Result<(), ErrorCode> {
        apply_share(prepared, aggregate, ShareOp::Subtract)
    }

    /// Collector: sums the aggregators' (opened) aggregate shares and decodes the
    /// centred integer sum.
    pub fn unshard(&self, shares: &[Aggregate]) -> Result<Vec<i64>, ErrorCode> {
        match &self.kind {
            Kind::CarryLift(c) => {
                let slices: Vec<&[Field64]> = shares.iter().map(|s| s.as_slice()).collect();
                c.unshard(&slices).map_err(|_| ErrorCode::BadMessage)
            }
            Kind::NoProof(np) => {
                // Each share is an integer (words plus noise); reduce it mod 2^b.
                let modulus = 1i128 << self.bits;
                let words: Vec<Vec<u32>> = shares
                    .iter()
                    .map(|s| {
                        s.as_slice()
                            .iter()
                            .map(|v| v.to_centred_i128().rem_euclid(modulus) as u32)
                            .collect()
                    })
                    .collect();
                let slices: Vec<&[u32]> = words.iter().map(|w| w.as_slice()).collect();
                np.unshard(&slices).map_err(|_| ErrorCode::BadMessage)
            }
        }
    }
}

/// Whether [`apply_share`] adds a report's share or takes it back.
#[derive(Clone, Copy)]
enum ShareOp {
    Add,
    Subtract,
}

/// `aggregate ± share` for one prepared report ([`Scheme::accumulate`],
/// [`Scheme::withdraw`]); a share of another dimension is refused before anything is
/// changed.
fn apply_share(
    prepared: &Prepared,
    aggregate: &mut Aggregate,
    op: ShareOp,
) -> Result<(), ErrorCode> {
    match &prepared.state {
        PreparedState::CarryLift(state) => match op {
            ShareOp::Add => state.accumulate_into(&mut aggregate.0),
            ShareOp::Subtract => state.withdraw_from(&mut aggregate.0),
        }
        .map_err(|_| ErrorCode::Internal),
        PreparedState::NoProof(words) => {
            if words.len() != aggregate.0.len() {
                return Err(ErrorCode::Internal);
            }
            let words = words
                .expose_secret()
                .iter()
                .map(|w| Field64::from_u64(u64::from(*w)));
            for (a, w) in aggregate.0.iter_mut().zip(words) {
                match op {
                    ShareOp::Add => *a += w,
                    ShareOp::Subtract => *a -= w,
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::field::FieldElement;

    fn no_proof_scheme() -> Scheme {
        let toml = r#"
name = "np"
dimension = 3
bits = 8
frac_bits = 0
clip_norm = 1.0
proof = "none"
min_clients = 1
max_clients = 10
round_duration_secs = 60
[privacy]
noise = "none"
[collector]
hpke_public_key = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
[[aggregators]]
role = "leader"
endpoint = "127.0.0.1:7100"
tls_cert_sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
hpke_public_key = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
[[aggregators]]
role = "helper"
endpoint = "127.0.0.1:7101"
tls_cert_sha256 = "2222222222222222222222222222222222222222222222222222222222222222"
hpke_public_key = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
"#;
        Scheme::for_task(&TaskConfig::from_toml(toml).unwrap()).unwrap()
    }

    #[test]
    fn a_no_proof_release_is_b_bit_words_so_wrap_arounds_stay_hidden() {
        let scheme = no_proof_scheme();
        // Integer sums of b-bit words: 700 = 2·256 + 188 wrapped twice, 255 never.
        let mut share = Aggregate(vec![
            Field64::from_u64(700),
            Field64::from_u64(255),
            Field64::from_u64(0),
        ]);
        scheme.finalize_share(&mut share, Some(&[3, 1, -1]));
        let words: Vec<u64> = share.as_slice().iter().map(|v| v.as_u64()).collect();
        // (700 + 3) mod 256, (255 + 1) mod 256, (0 − 1) mod 256.
        assert_eq!(words, vec![191, 0, 255]);
        assert!(words.iter().all(|w| *w < 256));
    }

    #[test]
    fn a_withdrawn_no_proof_report_leaves_the_aggregate_as_without_it() {
        let scheme = no_proof_scheme();
        let report = |w: [u32; 3]| Prepared {
            state: PreparedState::NoProof(SecretVec::new(w.to_vec())),
        };
        let (a, b, c) = (
            report([255, 0, 7]),
            report([1, 255, 200]),
            report([9, 9, 9]),
        );
        let mut with_all = Aggregate::zero(3);
        for r in [&a, &b, &c] {
            scheme.accumulate(r, &mut with_all).unwrap();
        }
        scheme.withdraw(&b, &mut with_all).unwrap();
        let mut without_b = Aggregate::zero(3);
        for r in [&a, &c] {
            scheme.accumulate(r, &mut without_b).unwrap();
        }
        assert_eq!(with_all, without_b);
        let mut other = Aggregate::zero(4);
        assert_eq!(scheme.withdraw(&a, &mut other), Err(ErrorCode::Internal));
        assert_eq!(other, Aggregate::zero(4));
    }
}
