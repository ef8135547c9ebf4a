//! The aggregators: [`CarryLift::prepare_init`] (lift + query, per aggregator),
//! [`CarryLift::decide`] (on all verifier shares) and [`CarryLift::unshard`] (the
//! collector's decoding of the summed aggregate shares).

use core::fmt;

use cairn_mpc::field::FieldElement;
use cairn_mpc::prg::Usage;
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_mpc::sharing::{self, ShareContext};
use subtle::ConstantTimeEq;

use super::circuit::QUERY_POINTS;
use super::messages::{InputShare, PublicShare, VerifierShare};
use super::randomness::{
    expand_joint_rand, helper_part, joint_rand_seed, leader_part, query_points,
};
use super::{CarryLift, CarryLiftError, Field};
use crate::flp::{self, Validity};
use crate::kernels::ProofField;
use crate::words::{for_each_field_chunk, for_each_word_chunk};

/// An aggregator's state between [`CarryLift::prepare_init`] and
/// [`CarryLift::decide`]: its share of the lifted vector `X` (its contribution to the
/// aggregate once the report is accepted) and the joint randomness.
pub struct PrepState {
    output_share: SecretVec<Field>,
    joint_rand: Vec<Field>,
    joint_rand_seed: [u8; 32],
}

impl PrepState {
    /// Adds this aggregator's share of `X` into a running aggregate share (call only
    /// after the report was accepted).
    pub fn accumulate_into(&self, aggregate: &mut [Field]) -> Result<(), CarryLiftError> {
        cairn_mpc::vector::add_assign(aggregate, self.output_share.expose_secret())
            .map_err(|_| CarryLiftError::Aggregate("aggregate length differs from d"))
    }

    /// Takes this aggregator's share of `X` back out of a running aggregate share that
    /// [`PrepState::accumulate_into`] added it to (exact in the field): for an
    /// aggregator that adds each share as it prepares it, before the decision.
    pub fn withdraw_from(&self, aggregate: &mut [Field]) -> Result<(), CarryLiftError> {
        cairn_mpc::vector::sub_assign(aggregate, self.output_share.expose_secret())
            .map_err(|_| CarryLiftError::Aggregate("aggregate length differs from d"))
    }

    /// This aggregator's share of `X`.
    pub fn into_output_share(self) -> SecretVec<Field> {
        self.output_share
    }
}

impl fmt::Debug for PrepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrepState(<redacted {} values>)",
            self.output_share.len()
        )
    }
}

/// Constant-time comparison of a recomputed joint-randomness part with the claim.
fn check_part(mine: &[u8; 32], claimed: &[u8; 32]) -> Result<(), CarryLiftError> {
    if bool::from(mine.ct_eq(claimed)) {
        Ok(())
    } else {
        Err(CarryLiftError::VerificationFailed)
    }
}

impl CarryLift {
    /// Aggregator `agg_id` (0 = leader) checks its joint-randomness part, lifts its
    /// share to `F_p` and computes its verifier share.
    ///
    /// `verify_key` is the task's secret verify key, identical at every aggregator.
    /// A joint-randomness part that does not match this aggregator's share yields
    /// [`CarryLiftError::VerificationFailed`] (reject the report).
    pub fn prepare_init(
        &self,
        agg_id: usize,
        verify_key: &Seed,
        task_id: &[u8; 32],
        report_id: &[u8; 16],
        public_share: &PublicShare,
        input_share: &InputShare,
    ) -> Result<(PrepState, VerifierShare), CarryLiftError> {
        let n = self.params.num_aggregators;
        let d = self.params.dimension;
        if agg_id >= n {
            return Err(CarryLiftError::AggregatorId(agg_id));
        }
        if public_share.parts.len() != n {
            return Err(CarryLiftError::VerificationFailed);
        }
        let ctx = ShareContext::new(*task_id, *report_id);
        let party = u8::try_from(agg_id).map_err(|_| CarryLiftError::AggregatorId(agg_id))?;

        // This aggregator's share of the FLP input [X | c | δ], built in place:
        // X^(j) = x'_j − q·c^(j) − [j = 0]·q/2.
        let q = Field::from_u64(self.q());
        let entries = self.circuit.range_entries();
        let mut input = SecretVec::<Field>::zeroed(self.circuit.input_len());
        let expanded_proof;
        let proof_share = match (agg_id, input_share) {
            (0, InputShare::Leader(share)) => {
                if share.words.len() != d
                    || share.field_share.len() != entries
                    || share.proof_share.len() != self.proof_len()
                {
                    return Err(CarryLiftError::VerificationFailed);
                }
                let part = leader_part(
                    self.params.joint_rand_hash,
                    &ctx,
                    &share.blind,
                    share.words.expose_secret(),
                    self.word_bytes(),
                    share.field_share.expose_secret(),
                );
                check_part(&part, &public_share.parts[0])?;
                let (lifted, rest) = input.expose_secret_mut().split_at_mut(d);
                rest.copy_from_slice(share.field_share.expose_secret());
                let half_q = Field::from_u64(self.q() / 2);
                Field::lift(lifted, share.words.expose_secret(), &rest[..d], q, half_q);
                share.proof_share.expose_secret()
            }
            (j, InputShare::Helper(share)) if j > 0 => {
                let seed = &share.seed;
                check_part(
                    &helper_part(self.params.joint_rand_hash, &ctx, party, seed),
                    &public_share.parts[j],
                )?;
                let (lifted, rest) = input.expose_secret_mut().split_at_mut(d);
                for_each_field_chunk(seed, &ctx, party, Usage::FieldShare, entries, |o, v| {
                    rest[o..o + v.len()].copy_from_slice(v);
                });
                let carries = &rest[..d];
                for_each_word_chunk(self.params.bits, seed, &ctx, party, d, |o, words| {
                    let n = words.len();
                    Field::lift(
                        &mut lifted[o..o + n],
                        words,
                        &carries[o..o + n],
                        q,
                        Field::ZERO,
                    );
                });
                expanded_proof = sharing::expand_field_share::<Field>(
                    seed,
                    &ctx,
                    party,
                    Usage::ProofShare,
                    self.proof_len(),
                )?;
                expanded_proof.expose_secret()
            }
            _ => return Err(CarryLiftError::AggregatorId(agg_id)),
        };
        let joint_rand_seed =
            joint_rand_seed(self.params.joint_rand_hash, &ctx, &public_share.parts);
        let joint_rand = expand_joint_rand(&ctx, &joint_rand_seed, self.circuit.joint_rand_len());
        let points = query_points(&ctx, verify_key, self.domain_size(), QUERY_POINTS);
        let values = flp::query(
            &self.circuit,
            input.expose_secret(),
            proof_share,
            &points,
            &joint_rand,
            n,
        )?;
        let output_share = SecretVec::new(input.expose_secret()[..d].to_vec());
        Ok((
            PrepState {
                output_share,
                joint_rand,
                joint_rand_seed,
            },
            VerifierShare {
                joint_rand_seed,
                values,
            },
        ))
    }

    /// Sums the verifier shares of all `n` aggregators (in any order) and decides.
    /// Every share must carry the joint-randomness seed of `state`. Any failure is the
    /// single opaque [`CarryLiftError::VerificationFailed`].
    pub fn decide(
        &self,
        state: &PrepState,
        verifier_shares: &[VerifierShare],
    ) -> Result<(), CarryLiftError> {
        let fail = CarryLiftError::VerificationFailed;
        if verifier_shares.len() != self.params.num_aggregators {
            return Err(fail);
        }
        let mut sum = vec![Field::ZERO; self.verifier_len()];
        for share in verifier_shares {
            if share.values.len() != sum.len()
                || !bool::from(share.joint_rand_seed.ct_eq(&state.joint_rand_seed))
            {
                return Err(fail);
            }
            for (s, v) in sum.iter_mut().zip(&share.values) {
                *s += *v;
            }
        }
        match flp::decide(&self.circuit, &sum, &state.joint_rand) {
            Ok(true) => Ok(()),
            _ => Err(fail),
        }
    }

    /// The collector: adds the aggregators' aggregate shares (each `Σ X^{(j)}` over the
    /// accepted reports) and decodes the centred integers `Σ X`. Exact while at most
    /// [`CarryLift::max_reports`] reports were aggregated.
    pub fn unshard(&self, aggregate_shares: &[&[Field]]) -> Result<Vec<i64>, CarryLiftError> {
        let d = self.params.dimension;
        if aggregate_shares.is_empty() || aggregate_shares.iter().any(|s| s.len() != d) {
            return Err(CarryLiftError::Aggregate("need shares of length d"));
        }
        let mut sum = vec![Field::ZERO; d];
        for share in aggregate_shares {
            for (s, v) in sum.iter_mut().zip(*share) {
                *s += *v;
            }
        }
        sum.iter()
            .map(|v| {
                i64::try_from(v.to_centred_i128())
                    .map_err(|_| CarryLiftError::Aggregate("value does not fit i64"))
            })
            .collect()
    }
}
