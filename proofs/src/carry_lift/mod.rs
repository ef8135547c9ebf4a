//! Carry-lift: an exact L2-norm bound on a secret-shared vector for ≈ 10 bytes per
//! parameter (DESIGN.md §5).
//!
//! # Encoding
//! Let `q = 2^b` and let the client's quantised vector be `x ∈ [−q/2, q/2)^d` with
//! `‖x‖² ≤ B²` (`B` in quantised units, a task parameter). The client shifts it to
//! `x' = x + q/2 ∈ [0, q)^d` and shares it additively over `Z_q` among the `n`
//! aggregators: helper `j ≥ 1` expands `x'_j ∈ Z_q^d` from its 32-byte seed (usage
//! `ZqShare`), the leader gets `x'_0 = x' − Σ_{j≥1} x'_j mod q` as `b`-bit words. Over the
//! integers `S = Σ_j x'_j = x' + q·c` with *carries* `c_i ∈ {0, …, n−1}`. The client also
//! shares over the proof field `F_p` (Field64, `p = 2^64 − 2^32 + 1`) the vector
//! `(c, δ)`, where `δ_0 … δ_{L−1}` are the base-`n` digits of the *slack*
//! `s = B² − ‖x‖² ≥ 0` (`L` = number of base-`n` digits of `B²`; for `n = 2` these are
//! the bits of `s`). Helper parts expand from the same seed (usage `FieldShare`), the
//! leader's part is explicit.
//!
//! Aggregator `j` forms its `F_p` share of the *lifted* vector locally and affinely:
//! `X^{(j)} = x'_j − q·c^{(j)} − [j = 0]·q/2` (its `b`-bit words read as field elements),
//! so that `Σ_j X^{(j)} = S − q·c − q/2 = X`. For an honest client `X = x`. The
//! aggregate is `Σ X` over accepted reports, in `F_p`, decoded as centred integers
//! ([`CarryLift::unshard`]).
//!
//! # What the proof checks
//! 1. every carry and every slack digit lies in `{0, …, n−1}`: `R_n(z) = Π_{i<n}(z − i) = 0`;
//! 2. `‖X‖² + Σ_j n^j·δ_j − B² = 0` in `F_p`.
//!
//! The circuit has one gadget, called `M = ⌈(d + L)/m⌉` times on `m` slots; slot `σ` of
//! call `k` holds range entry `e = k·m + σ` (a carry or a digit) and `y = X_e/β_k`. Its
//! three outputs share the wires: `G_0 = Σ_σ a0_σ R_n(e_σ) + Σ_σ y_σ²`,
//! `G_r = Σ_σ ar_σ R_n(e_σ)` (`r = 1, 2`), and the circuit outputs are
//! `v_0 = Σ_k β_k² G_0(k) + Σ_j n^j δ_j − B²` (the squares count exactly once since
//! `β_k²·(X/β_k)² = X²`, the residuals get the random weights `a0_σ β_k²`),
//! `v_1 = Σ_k b1_k G_1(k)`, `v_2 = Σ_k b2_k G_2(k)`, with joint randomness
//! `a0, a1, a2 ∈ (F^*)^m`, `β, b1, b2 ∈ (F^*)^M`.
//!
//! ## Why `X` cannot wrap, and why the bound is exact
//! The `Z_q` shares are **structurally** bounded: the leader's share travels as
//! `b`-bit words and the helpers' shares expand as `b`-bit words, so every
//! `x'_{j,i} ∈ [0, q)` and `S_i ∈ [0, n(q − 1)]` whatever the client does. Once check 1
//! holds, `c_i ∈ {0, …, n−1}`, so the integer `S_i − q·c_i − q/2` lies in
//! `[−(n − ½)q, n(q − 1) − q/2] ⊂ (−nq, nq)`: **every `X_i` is a small integer**, and
//! `0 ≤ Σ X_i² < d·(nq)²`. The slack `s = Σ n^j δ_j` with digits in `{0, …, n−1}` is an
//! integer in `[0, n^L − 1]`. Construction requires `d·(nq)² + n^L ≤ p`
//! ([`CarryLiftError::FieldTooSmall`]), so `0 ≤ ‖X‖² + s < p`; and `0 ≤ B² < n^L ≤ p`.
//! Two integers in `[0, p)` that are congruent mod `p` are equal, so check 2 gives
//! `‖X‖² = B² − s ≤ B²` **over the integers**: the norm bound is exact, no
//! approximation, no wrap-around.
//!
//! ## Why a wrong carry is caught
//! A client who wants a coordinate outside the range (say `X_1 = 2^48`, which with
//! `X_2 = 1` gives `X_1² + X_2² = 2^96 + 1 ≡ 0 mod p`, a norm that wraps to zero) must
//! make `S_1 − q·c_1 − q/2 = 2^48` with `S_1 < nq`, i.e. claim a carry
//! `c_1 ∉ {0, …, n−1}` (a field element like `(S_1 − q/2 − 2^48)/q`). Then
//! `R_n(c_1) ≠ 0` and check 1 fails. A carry *inside* `{0, …, n−1}` but different from
//! the true one shifts `X_i` by a multiple of `q` while keeping it in `(−nq, nq)`; the
//! norm check then applies to that shifted `X`, which is what gets aggregated, so the
//! aggregate still only receives vectors of norm `≤ B`. (Such a client can move a
//! coordinate outside `[−q/2, q/2)`, but its whole contribution still has norm `≤ B`,
//! which is what robustness and the DP sensitivity rely on.)
//!
//! ## Not promised
//! * Honest noise or honest rounding: the proof bounds the norm of the contributed
//!   `X`; it cannot tell whether the client clipped, rounded or added its DP noise share
//!   honestly, nor whether `X` has anything to do with the client's data. `B` must
//!   include the rounding inflation and any client noise, or honest clients get rejected
//!   (the client refuses to produce an invalid report: [`CarryLiftError::NormTooLarge`]).
//! * Per-coordinate ranges beyond what the norm implies (`|X_i| ≤ B`).
//! * Freshness: replays of the *same* report id must be caught by the protocol's
//!   anti-replay store; a report re-sent under *another* id fails (helper seeds expand
//!   per report id and the joint-randomness parts hash it).
//! * Anything against malicious aggregators: a deviating aggregator can make a valid
//!   report fail or spoil the aggregate (DESIGN §2); it learns nothing more than its
//!   shares and the zero-knowledge verifier message.
//!
//! # Randomness
//! * **Joint randomness** (Fiat–Shamir over the shares, as in Prio3's joint
//!   randomness derivation, draft-irtf-cfrg-vdaf §7): aggregator `j`'s *part* is
//!   `SHA-256(label ‖ version ‖ task ‖ report ‖ j ‖ seed_j)` for a helper (its whole
//!   input share is the expansion of `seed_j` under this task and report) and
//!   `SHA-256(label ‖ version ‖ task ‖ report ‖ 0 ‖ blind ‖ x'_0 ‖ (c, δ)^{(0)})` for the
//!   leader (the 32-byte `blind` in the leader's share keeps the part from being a
//!   checkable hash of a low-entropy input). The client publishes all parts
//!   ([`PublicShare`]); each aggregator recomputes its own and rejects on mismatch; the
//!   seed is `SHA-256(label ‖ version ‖ task ‖ report ‖ n ‖ part_0 ‖ … ‖ part_{n−1})`, and
//!   every verifier share carries it so all aggregators provably used the same one.
//!   The hash is a parameter ([`JointRandHash`]): SHA-256, or BLAKE3 in its place in
//!   all three formulas. The argument below needs only that it be collision-resistant
//!   and behave as a random oracle, which both are taken to be.
//! * **Query randomness**: from the per-task 32-byte verify key shared by the
//!   aggregators (a secret [`Seed`](cairn_mpc::secret::Seed)) and the report id, so the
//!   client cannot predict or grind it.
//! * **Wire seeds**: from the client's RNG; helper proof shares expand from the helper
//!   seed (usage `ProofShare`), the leader's proof share is `π − Σ_{j≥1} π_j`.
//!
//! # Soundness error (a cheating client's success probability per report)
//! One FLP proof ([`crate::flp`]) with one gadget of degree `n` called `M` times on a
//! domain of size `P ≥ M + 2`, **three** independent random combinations of the checks
//! (three gadget outputs sharing the wires) and **two** query points.
//!
//! * *Combination error* (the only grindable part). If some range residual
//!   `e = R_n(·) ≠ 0`, each output is a non-zero polynomial in the joint randomness:
//!   `v_0 = Σ_k β_k² Σ_σ a0_σ e_{kσ} + E` has degree 3, `v_1, v_2` degree 2, in
//!   independent variables drawn uniformly from `F^*`. By the Schwartz–Zippel lemma
//!   (Schwartz, J. ACM 27(4), 1980; Zippel, EUROSAM 1979: a non-zero polynomial of total
//!   degree `D` vanishes at a uniform point of `S^k` with probability `≤ D/|S|`), and
//!   by the independence of the three combinations, all three vanish with probability
//!   `≤ 3/(p−1) · (2/(p−1))² = 12/(p−1)³ ≈ 2^-188.4` per Fiat–Shamir attempt. If every
//!   residual is zero, `v_0 = ‖X‖² + s − B²` is not random: non-zero means rejection.
//!   A client who grinds the hash `2^g` times succeeds here with probability
//!   `≤ 2^g·2^-188.4`.
//! * *Check error* (not grindable: the query points come from the verify key). If the
//!   client's proof polynomials are not `G_r∘W`, the two distinct query points are both
//!   roots of the difference with probability `≤ (n(P−1)/(p−P−2))²` per output
//!   (BBCGGI19 Theorem 4.3, applied twice); union over 3 outputs.
//!
//! Total: `ε ≤ 2^g·12/(p−1)³ + 3·(n(P−1)/(p−P−2))²`. At `d = 10^5`, `n = 2`, `b = 16`
//! (`P = 1024`): `ε ≤ 2^(g−188.4) + 2^-104.4`, below `2^-64` for any `g ≤ 124` hash
//! evaluations. With `n = 16` and `P = 2^20`: `3·(2^24/2^64)² = 2^-78.4`. The constructor
//! refuses parameters whose check error exceeds `2^-70`
//! ([`CarryLiftError::SoundnessTooWeak`]); [`CarryLift::soundness_error_log2`] computes
//! the bound. Compared with three independent Prio3-style proofs, one proof with three
//! outputs and two query points has the same combination error, a smaller check error,
//! and a third of the prover's transforms.
//!
//! # Sizes (bytes)
//! * Leader share: `32` (blind) `+ d·b/8` (`x'_0`) `+ 8(d + L)` (`(c, δ)` share)
//!   `+ 8·proof_len`. At `b = 16` that is `≈ 10` bytes per parameter plus the proof,
//!   `8·(4m + 3(n(P−1)+1))` bytes (`≈ 0.5` B/param at `d = 10^5`).
//! * Helper share: one 32-byte seed. Public share: `32·n`.
//! * Verifier share: `32 + 8·(3 + 2(2m + 3))` (≤ 4 KiB with the default chunk).
//!
//! The exact figures for a parameter set come from the `*_len` methods of
//! [`CarryLift`] and are printed by the `carry_lift` bench.
//!
//! # Changes to DESIGN.md §5 (and why)
//! * **The no-wrap condition is `d·(nq)² + n^L ≤ p`, not `d·(nq)² < p`.** The norm
//!   equation is `‖X‖² + s ≡ B² (mod p)`; it is exact only if the *left side* cannot
//!   wrap, and the slack `s` can be as large as its digit representation allows, so its
//!   range must be counted too.
//! * **Slack digits are base `n`**, checked by the same polynomial `R_n` as the carries
//!   (for `n = 2`, the main case, this is exactly the bit decomposition of the design).
//!   A separate 0/1 check would need a second gadget; `R_n` already makes every digit a
//!   small non-negative integer, which is all the exactness argument needs.
//! * **One proof with three random combinations and two query points** instead of
//!   several independent proofs: the same grinding-resistant combination error
//!   (`12/(p−1)³` per attempt), a smaller check error, and one set of wire
//!   polynomials, so the prover's transforms are done once, not three times.
//! * **A blind in the leader's joint-randomness part** (as Prio3 does): without it, the
//!   part is a public hash of the leader's share, and a helper who knows its own share
//!   could test guesses of a low-entropy input against it.
//! * What is aggregated is `X`, not `x`: a client may legitimately shift a coordinate
//!   by a multiple of `q` with an in-range wrong carry (above); the guarantee is
//!   `‖X‖ ≤ B` for every accepted contribution, which is what robustness and the DP
//!   sensitivity need.

mod aggregator;
mod circuit;
mod client;
mod messages;
mod randomness;

pub use aggregator::PrepState;
pub use messages::{
    HelperInputShare, InputShare, LeaderInputShare, PublicShare, Report, VerifierShare,
};
pub use randomness::JointRandHash;

use cairn_mpc::codec::CodecError;
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::sharing::SharingError;

use crate::flp::{FlpError, Validity};
use circuit::{CarryLiftCircuit, QUERY_POINTS, default_chunk};

/// The proof field.
pub type Field = Field64;

/// Errors of the carry-lift encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CarryLiftError {
    /// The parameters are invalid (dimension, aggregators, bits, chunk).
    #[error("invalid carry-lift parameters: {0}")]
    InvalidParams(&'static str),
    /// `d·(n·q)² + n^L ≤ p` fails: `‖X‖²` could wrap modulo `p`.
    #[error("d·(n·q)² + n^L must not exceed the field modulus (the norm could wrap)")]
    FieldTooSmall,
    /// The query-check soundness error for these sizes exceeds `2^-70`.
    #[error("the proof's soundness error for these parameters is too large")]
    SoundnessTooWeak,
    /// The input vector has the wrong length.
    #[error("input has {got} coordinates, the task has {expected}")]
    WrongDimension {
        /// The task's dimension.
        expected: usize,
        /// The input's length.
        got: usize,
    },
    /// A coordinate is outside `[−q/2, q/2)`.
    #[error("coordinate {index} is outside [−q/2, q/2)")]
    CoordinateOutOfRange {
        /// Its index.
        index: usize,
    },
    /// `‖x‖² > B²`: an honest client never produces an invalid report.
    #[error("the input's squared norm exceeds B²")]
    NormTooLarge,
    /// The aggregator index is out of range or does not match the share's kind.
    #[error("invalid aggregator id {0}")]
    AggregatorId(usize),
    /// The report did not verify (any reason: proof, joint randomness, tampering).
    #[error("verification failed")]
    VerificationFailed,
    /// A message could not be decoded.
    #[error("malformed message: {0}")]
    Decode(#[from] CodecError),
    /// An aggregate value does not fit an `i64`, or aggregate shares have wrong lengths.
    #[error("invalid aggregate: {0}")]
    Aggregate(&'static str),
    /// Internal proof-system error (a bug or inconsistent sizes).
    #[error(transparent)]
    Flp(#[from] FlpError),
    /// Internal sharing error.
    #[error(transparent)]
    Sharing(#[from] SharingError),
}

/// Task parameters of the carry-lift encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarryLiftParams {
    /// `d`, the vector length (`≥ 1`).
    pub dimension: usize,
    /// `n`, the number of aggregators (`2..=16`).
    pub num_aggregators: usize,
    /// `b`: shares live in `Z_{2^b}`, `b ∈ {8, 16, 32}` (32 needs a field wider than
    /// Field64 and is refused by [`CarryLift::new`] for now).
    pub bits: u32,
    /// `B`, the L2-norm bound in quantised units.
    pub norm_bound: u64,
    /// Gadget chunk `m` (slots per call); `None` picks the default (the smallest proof
    /// whose verifier message fits 4 KiB).
    pub chunk: Option<usize>,
    /// The hash of the joint-randomness parts and seed.
    pub joint_rand_hash: JointRandHash,
}

impl CarryLiftParams {
    /// Parameters with the default `b = 16` and the default chunk.
    pub fn new(dimension: usize, num_aggregators: usize, norm_bound: u64) -> Self {
        Self {
            dimension,
            num_aggregators,
            bits: 16,
            norm_bound,
            chunk: None,
            joint_rand_hash: JointRandHash::Sha256,
        }
    }
}

/// The carry-lift encoding and proof for one parameter set: client ([`CarryLift::shard`]),
/// aggregators ([`CarryLift::prepare_init`], [`CarryLift::decide`]) and collector
/// ([`CarryLift::unshard`]).
#[derive(Debug, Clone)]
pub struct CarryLift {
    params: CarryLiftParams,
    /// `B²`.
    norm_bound_sq: u128,
    circuit: CarryLiftCircuit<Field>,
}

impl CarryLift {
    /// Validates the parameters (module docs: no-wrap and soundness conditions).
    pub fn new(params: CarryLiftParams) -> Result<Self, CarryLiftError> {
        let d = params.dimension;
        let n = params.num_aggregators;
        if d == 0 || d > (1 << 28) {
            return Err(CarryLiftError::InvalidParams(
                "dimension must be in 1..=2^28",
            ));
        }
        if !(2..=16).contains(&n) {
            return Err(CarryLiftError::InvalidParams("aggregators must be 2..=16"));
        }
        if !matches!(params.bits, 8 | 16 | 32) {
            return Err(CarryLiftError::InvalidParams("bits must be 8, 16 or 32"));
        }
        let norm_bound_sq = u128::from(params.norm_bound) * u128::from(params.norm_bound);
        let n128 = n as u128;
        // L = number of base-n digits of B² (smallest L with n^L > B²).
        let mut num_digits = 0usize;
        let mut n_pow_l: u128 = 1;
        while n_pow_l <= norm_bound_sq {
            n_pow_l = n_pow_l
                .checked_mul(n128)
                .ok_or(CarryLiftError::FieldTooSmall)?;
            num_digits += 1;
        }
        let q = 1u128 << params.bits;
        let nq = n128 * q;
        let max_norm = nq
            .checked_mul(nq)
            .and_then(|v| v.checked_mul(d as u128))
            .ok_or(CarryLiftError::FieldTooSmall)?;
        let total = max_norm
            .checked_add(n_pow_l)
            .ok_or(CarryLiftError::FieldTooSmall)?;
        if total > Field::MODULUS {
            return Err(CarryLiftError::FieldTooSmall);
        }
        let entries = d + num_digits;
        let chunk = match params.chunk {
            Some(0) => return Err(CarryLiftError::InvalidParams("chunk must be positive")),
            Some(m) => m.min(entries),
            None => default_chunk(entries),
        };
        let norm_field = Field::from_u64(
            u64::try_from(norm_bound_sq).map_err(|_| CarryLiftError::FieldTooSmall)?,
        );
        let circuit = CarryLiftCircuit::new(d, n as u64, num_digits, chunk, norm_field);
        let this = Self {
            params,
            norm_bound_sq,
            circuit,
        };
        if this.check_error_log2() > -70.0 {
            return Err(CarryLiftError::SoundnessTooWeak);
        }
        Ok(this)
    }

    /// The parameters.
    pub fn params(&self) -> &CarryLiftParams {
        &self.params
    }

    /// `L`, the number of slack digits.
    pub fn num_digits(&self) -> usize {
        self.circuit.num_digits
    }

    /// The gadget chunk `m` in use.
    pub fn chunk(&self) -> usize {
        self.circuit.chunk
    }

    /// The interpolation domain size `P`.
    pub fn domain_size(&self) -> usize {
        self.circuit.shape().domain_size(QUERY_POINTS)
    }

    /// Field elements in a proof (and in the leader's proof share).
    pub fn proof_len(&self) -> usize {
        self.circuit.proof_len()
    }

    /// Field elements in a verifier message.
    pub fn verifier_len(&self) -> usize {
        self.circuit.verifier_len()
    }

    /// Bytes of an encoded [`PublicShare`].
    pub fn public_share_len(&self) -> usize {
        32 * self.params.num_aggregators
    }

    /// Bytes of an encoded [`LeaderInputShare`].
    pub fn leader_share_len(&self) -> usize {
        32 + self.params.dimension * self.word_bytes()
            + 8 * (self.circuit.range_entries() + self.proof_len())
    }

    /// Bytes of an encoded [`HelperInputShare`].
    pub fn helper_share_len(&self) -> usize {
        32
    }

    /// Bytes of an encoded [`VerifierShare`].
    pub fn verifier_share_len(&self) -> usize {
        32 + 8 * self.verifier_len()
    }

    /// `log2` of the soundness bound of the module docs for a client that evaluates
    /// the Fiat–Shamir hash `2^grinding_bits` times:
    /// `2^g·12/(p−1)³ + 3·(n(P−1)/(p−P−2))²`.
    pub fn soundness_error_log2(&self, grinding_bits: u32) -> f64 {
        let p = Field::MODULUS as f64;
        let combination = f64::from(grinding_bits) + (12.0f64).log2() - 3.0 * (p - 1.0).log2();
        let check = self.check_error_log2();
        let hi = combination.max(check);
        let lo = combination.min(check);
        hi + (1.0 + (lo - hi).exp2()).log2()
    }

    /// `log2(3·(n(P−1)/(p−P−2))²)`.
    fn check_error_log2(&self) -> f64 {
        let p = Field::MODULUS as f64;
        let domain = self.domain_size() as f64;
        let degree = (self.params.num_aggregators as f64).max(2.0);
        (3.0f64).log2() + 2.0 * (degree * (domain - 1.0) / (p - domain - 2.0)).log2()
    }

    /// The most reports whose aggregate [`CarryLift::unshard`] decodes exactly: every
    /// accepted `X` has `|X_i| ≤ B`, so `N·B < p/2` keeps the centred decoding exact.
    pub fn max_reports(&self) -> u64 {
        let half = (Field::MODULUS / 2) as u64;
        half.checked_div(self.params.norm_bound.max(1))
            .unwrap_or(u64::MAX)
    }

    fn q(&self) -> u64 {
        1u64 << self.params.bits
    }

    fn word_bytes(&self) -> usize {
        (self.params.bits / 8) as usize
    }
}

#[cfg(test)]
mod share_uniformity_tests;
#[cfg(test)]
mod soundness_tests;
