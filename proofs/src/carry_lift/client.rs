//! The client: validate, encode, share, prove ([`CarryLift::shard`]).

use cairn_mpc::field::FieldElement;
use cairn_mpc::prg::Usage;
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_mpc::sharing::ShareContext;
use rand_core::CryptoRng;

use super::messages::{HelperInputShare, LeaderInputShare, PublicShare, Report};
use super::randomness::{expand_joint_rand, helper_part, joint_rand_seed, leader_part};
use super::{CarryLift, CarryLiftError, Field};
use crate::flp::{self, Validity};
use crate::kernels::ProofField;

impl CarryLift {
    /// Encodes, shares and proves the client's vector `x` for report `report_id` of task
    /// `task_id`.
    ///
    /// Refuses (typed errors, nothing is produced) a wrong length, a coordinate outside
    /// `[−q/2, q/2)`, or `‖x‖² > B²`: an honest client never sends an invalid report.
    pub fn shard<R: CryptoRng + ?Sized>(
        &self,
        task_id: &[u8; 32],
        report_id: &[u8; 16],
        x: &[i64],
        rng: &mut R,
    ) -> Result<Report, CarryLiftError> {
        let d = self.params.dimension;
        if x.len() != d {
            return Err(CarryLiftError::WrongDimension {
                expected: d,
                got: x.len(),
            });
        }
        let half_q = (self.q() / 2) as i64;
        let mut norm_sq: u128 = 0;
        for (index, v) in x.iter().enumerate() {
            if *v < -half_q || *v >= half_q {
                return Err(CarryLiftError::CoordinateOutOfRange { index });
            }
            norm_sq += u128::from(v.unsigned_abs()) * u128::from(v.unsigned_abs());
        }
        if norm_sq > self.norm_bound_sq {
            return Err(CarryLiftError::NormTooLarge);
        }

        let ctx = ShareContext::new(*task_id, *report_id);
        let helper_seeds: Vec<Seed> = (1..self.params.num_aggregators)
            .map(|_| Seed::generate(rng))
            .collect();
        // x' = x + q/2 ∈ [0, q); x'_0 = x' − Σ_j x'_j mod q.
        let shifted = SecretVec::new(x.iter().map(|v| (*v + half_q) as u32).collect::<Vec<_>>());
        let (leader_words, sums) =
            self.share_words(&ctx, shifted.expose_secret(), &helper_seeds)?;

        // Carries c_i = (S_i − x'_i)/q, then the base-n digits of the slack.
        let mut witness = SecretVec::<Field>::zeroed(self.circuit.range_entries());
        // The carry (s − x)/q: an exact division by q = 2^b, as a shift (a division
        // instruction per coordinate was a visible part of a prepare).
        let bits = self.params.bits;
        for ((w, s), xs) in witness
            .expose_secret_mut()
            .iter_mut()
            .zip(sums.expose_secret())
            .zip(shifted.expose_secret())
        {
            *w = Field::from_u64((*s - u64::from(*xs)) >> bits);
        }
        let mut slack = self.norm_bound_sq - norm_sq;
        let base = self.params.num_aggregators as u128;
        for digit in witness.expose_secret_mut()[d..].iter_mut() {
            *digit = Field::from_u64((slack % base) as u64);
            slack /= base;
        }
        self.shard_with_witness(
            &ctx,
            leader_words,
            helper_seeds,
            sums.expose_secret(),
            witness.expose_secret(),
            rng,
        )
    }

    /// `x'_0 = x' − Σ_{j≥1} x'_j mod q` and the integer sums `S = Σ_j x'_j`.
    pub(crate) fn share_words(
        &self,
        ctx: &ShareContext,
        shifted: &[u32],
        helper_seeds: &[Seed],
    ) -> Result<(SecretVec<u32>, SecretVec<u64>), CarryLiftError> {
        let mask = (self.q() - 1) as u32;
        // S accumulates the helpers' words, then x'_0 = x' − S mod q and S += x'_0.
        let mut sums = SecretVec::<u64>::zeroed(shifted.len());
        for (party, seed) in (1u8..).zip(helper_seeds) {
            let acc = sums.expose_secret_mut();
            crate::words::for_each_word_chunk(
                self.params.bits,
                seed,
                ctx,
                party,
                shifted.len(),
                |offset, words| {
                    for (a, w) in acc[offset..].iter_mut().zip(words) {
                        *a += u64::from(*w);
                    }
                },
            );
        }
        let mut leader = SecretVec::<u32>::zeroed(shifted.len());
        for ((l, s), x) in leader
            .expose_secret_mut()
            .iter_mut()
            .zip(sums.expose_secret_mut())
            .zip(shifted)
        {
            // Truncation to the low b bits is reduction mod q.
            *l = x.wrapping_sub(*s as u32) & mask;
            *s += u64::from(*l);
        }
        Ok((leader, sums))
    }

    /// `v − Σ_{j≥1} expand(seed_j, usage)`: the leader's explicit share of `v`.
    fn leader_field_share(
        &self,
        v: &[Field],
        ctx: &ShareContext,
        helper_seeds: &[Seed],
        usage: Usage,
    ) -> Result<SecretVec<Field>, CarryLiftError> {
        let mut share = SecretVec::new(v.to_vec());
        for (party, seed) in (1u8..).zip(helper_seeds) {
            let acc = share.expose_secret_mut();
            crate::words::for_each_field_chunk(seed, ctx, party, usage, v.len(), |offset, h| {
                Field::sub_assign(&mut acc[offset..offset + h.len()], h);
            });
        }
        Ok(share)
    }

    /// Shares the claimed witness `(c, δ)` over `F_p`, derives the joint randomness,
    /// proves, and shares the proof. `sums[i] = Σ_j x'_{j,i}` must match the `Z_q`
    /// shares (the lifted input is computed from them and the claimed carries, exactly
    /// as the aggregators will). Tests call this directly to play a cheating client.
    pub(crate) fn shard_with_witness<R: CryptoRng + ?Sized>(
        &self,
        ctx: &ShareContext,
        leader_words: SecretVec<u32>,
        helper_seeds: Vec<Seed>,
        sums: &[u64],
        witness: &[Field],
        rng: &mut R,
    ) -> Result<Report, CarryLiftError> {
        let d = self.params.dimension;
        let field_share =
            self.leader_field_share(witness, ctx, &helper_seeds, Usage::FieldShare)?;

        let blind = Seed::generate(rng);
        let mut parts = Vec::with_capacity(self.params.num_aggregators);
        parts.push(leader_part(
            self.params.joint_rand_hash,
            ctx,
            &blind,
            leader_words.expose_secret(),
            self.word_bytes(),
            field_share.expose_secret(),
        ));
        for (party, seed) in (1u8..).zip(&helper_seeds) {
            parts.push(helper_part(self.params.joint_rand_hash, ctx, party, seed));
        }
        let seed = joint_rand_seed(self.params.joint_rand_hash, ctx, &parts);
        let joint_rand = expand_joint_rand(ctx, &seed, self.circuit.joint_rand_len());

        // The FLP input [X | c | δ] with X_i = S_i − q·c_i − q/2.
        let q = Field::from_u64(self.q());
        let half_q = Field::from_u64(self.q() / 2);
        let mut input = SecretVec::<Field>::zeroed(self.circuit.input_len());
        {
            let (lifted, rest) = input.expose_secret_mut().split_at_mut(d);
            Field::lift(lifted, sums, witness, q, half_q);
            rest.copy_from_slice(witness);
        }
        let prove_rand = SecretVec::new(
            (0..self.circuit.prove_rand_len())
                .map(|_| Field::random(rng))
                .collect::<Vec<_>>(),
        );
        let proof = SecretVec::new(flp::prove(
            &self.circuit,
            input.expose_secret(),
            prove_rand.expose_secret(),
            &joint_rand,
        )?);
        let proof_share =
            self.leader_field_share(proof.expose_secret(), ctx, &helper_seeds, Usage::ProofShare)?;

        Ok(Report {
            public_share: PublicShare { parts },
            leader_share: LeaderInputShare {
                blind,
                words: leader_words,
                word_bytes: self.word_bytes(),
                field_share,
                proof_share,
            },
            helper_shares: helper_seeds
                .into_iter()
                .map(|seed| HelperInputShare { seed })
                .collect(),
        })
    }
}
