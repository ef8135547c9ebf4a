//! The validity scheme of a task, behind one byte-level interface.
//!
//! A task either proves an exact L2 bound with the carry-lift encoding
//! ([`cairn_proofs::carry_lift`]) or sends plain `b`-bit shares without a proof
//! ([`cairn_proofs::no_proof`], semi-honest clients). The state machines only see
//! this module: shares and verifier messages as byte strings of exactly known length
//! (so the wire layer can enforce sizes), a per-report [`Prepared`] state, and the
//! running [`Aggregate`].

use cairn_mpc::codec::{CodecError, Encode, Reader};
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams, InputShare, PrepState};
use rand_core::CryptoRng;

use crate::config::{ConfigError, ProofMode, TaskConfig, TaskId};
use crate::ids::ReportId;
use crate::messages::{ErrorCode, Limits};

/// Reports per aggregation job, at most (bounds job messages).
pub const MAX_REPORTS_PER_JOB: usize = 256;

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
    state: PrepState,
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
    carry_lift: CarryLift,
    task_id: TaskId,
    num_aggregators: usize,
    dimension: usize,
}

impl Scheme {
    /// The scheme a task configures, with its parameters checked by the proofs crate
    /// (the no-wrap and soundness conditions).
    pub fn for_task(task: &TaskConfig) -> Result<Self, ConfigError> {
        if task.proof() != ProofMode::CarryLift {
            return Err(ConfigError::Invalid {
                field: "proof",
                reason: "this build supports only proof = \"carry-lift\"".into(),
            });
        }
        let mut params =
            CarryLiftParams::new(task.dimension(), task.num_aggregators(), task.norm_bound());
        params.bits = u32::from(task.bits());
        let carry_lift = CarryLift::new(params).map_err(|e| ConfigError::Invalid {
            field: "proof",
            reason: e.to_string(),
        })?;
        Ok(Self {
            carry_lift,
            task_id: task.id(),
            num_aggregators: task.num_aggregators(),
            dimension: task.dimension(),
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
        Limits {
            public_share: self.carry_lift.public_share_len(),
            leader_share: self.carry_lift.leader_share_len(),
            helper_share: self.carry_lift.helper_share_len(),
            helpers: self.num_aggregators - 1,
            reports_per_job: MAX_REPORTS_PER_JOB,
            verifier_share: self.carry_lift.verifier_share_len(),
            aggregate_share: 8 * self.dimension,
        }
    }

    /// The most reports a round may aggregate and still decode exactly.
    pub fn max_reports(&self) -> u64 {
        self.carry_lift.max_reports()
    }

    /// Client: shares and proves the quantised vector `x`.
    pub fn shard<R: CryptoRng + ?Sized>(
        &self,
        report_id: &ReportId,
        x: &[i64],
        rng: &mut R,
    ) -> Result<ShardedReport, cairn_proofs::carry_lift::CarryLiftError> {
        let report = self
            .carry_lift
            .shard(&self.task_id.0, &report_id.0, x, rng)?;
        let public_share = report.public_share.to_bytes();
        let leader_share = SecretVec::new(report.leader_share.to_bytes());
        let helper_shares = report
            .helper_shares
            .iter()
            .map(|h| SecretVec::new(h.to_bytes()))
            .collect();
        Ok(ShardedReport {
            public_share,
            leader_share,
            helper_shares,
        })
    }

    /// Aggregator `agg_id`: decodes its share, checks its joint-randomness part and
    /// computes its verifier share. Every failure maps to an [`ErrorCode`]: sizes to
    /// [`ErrorCode::WrongSize`], anything the proof machinery refuses to
    /// [`ErrorCode::ProofFailed`].
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
        let public = self
            .carry_lift
            .decode_public_share(public_share)
            .map_err(|_| ErrorCode::WrongSize)?;
        let share = if agg_id == 0 {
            InputShare::Leader(
                self.carry_lift
                    .decode_leader_share(input_share)
                    .map_err(|_| ErrorCode::BadMessage)?,
            )
        } else {
            InputShare::Helper(
                self.carry_lift
                    .decode_helper_share(input_share)
                    .map_err(|_| ErrorCode::BadMessage)?,
            )
        };
        let (state, verifier) = self
            .carry_lift
            .prepare_init(
                agg_id,
                verify_key,
                &self.task_id.0,
                &report_id.0,
                &public,
                &share,
            )
            .map_err(|_| ErrorCode::ProofFailed)?;
        Ok((Prepared { state }, verifier.to_bytes()))
    }

    /// Leader: decides a report from all `n` verifier shares (its own first, then the
    /// helpers' in order). `Err(ProofFailed)` for any failure, by design opaque.
    pub fn decide(
        &self,
        leader_state: &Prepared,
        verifier_shares: &[&[u8]],
    ) -> Result<(), ErrorCode> {
        let shares = verifier_shares
            .iter()
            .map(|b| self.carry_lift.decode_verifier_share(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ErrorCode::ProofFailed)?;
        self.carry_lift
            .decide(&leader_state.state, &shares)
            .map_err(|_| ErrorCode::ProofFailed)
    }

    /// Adds an accepted report's share into the running aggregate.
    pub fn accumulate(
        &self,
        prepared: &Prepared,
        aggregate: &mut Aggregate,
    ) -> Result<(), ErrorCode> {
        prepared
            .state
            .accumulate_into(&mut aggregate.0)
            .map_err(|_| ErrorCode::Internal)
    }

    /// Collector: sums the aggregators' (opened) aggregate shares and decodes the
    /// centred integer sum.
    pub fn unshard(&self, shares: &[Aggregate]) -> Result<Vec<i64>, ErrorCode> {
        let slices: Vec<&[Field64]> = shares.iter().map(|s| s.as_slice()).collect();
        self.carry_lift
            .unshard(&slices)
            .map_err(|_| ErrorCode::BadMessage)
    }
}
