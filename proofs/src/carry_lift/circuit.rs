//! The carry-lift validity circuit and its gadget (module docs of
//! [`crate::carry_lift`] for the argument).
//!
//! Input (length `2d + L`): `[X_0 … X_{d−1} | c_0 … c_{d−1} | δ_0 … δ_{L−1}]`, the lifted
//! vector, the carries and the base-`n` digits of the slack. The `d + L` values that
//! must lie in `{0, …, n−1}` (carries and digits) are the *range entries* `e`.
//!
//! One gadget, called `M = ⌈(d + L)/m⌉` times on `m` slots; call `k`, slot `σ` holds
//! range entry `e = k·m + σ` and `y = X_e/β_k` (zero past the end). With
//! `R_n(z) = Π_{i<n} (z − i)` it has three outputs over the same wires:
//!
//! ```text
//! G_0 = Σ_σ a0_σ·R_n(e_σ) + Σ_σ y_σ²,   G_1 = Σ_σ a1_σ·R_n(e_σ),   G_2 = Σ_σ a2_σ·R_n(e_σ)
//! ```
//!
//! and the circuit outputs are
//!
//! ```text
//! v_0 = Σ_k β_k²·G_0(k) + Σ_j n^j·δ_j − B²     (= Σ_k β_k² Σ_σ a0_σ R_n(e) + ‖X‖² + s − B²)
//! v_1 = Σ_k b1_k·G_1(k),                        v_2 = Σ_k b2_k·G_2(k)
//! ```
//!
//! with joint randomness `a0, a1, a2 ∈ (F^*)^m` and `β, b1, b2 ∈ (F^*)^M`. Feeding
//! `X/β_k` into the gadget and weighting its output by `β_k²` makes the squares count
//! exactly once while the range residuals get the random weight `a0_σ·β_k²`, so one
//! degree-`n` gadget does both checks (no extra weight wire, no degree increase).

use crate::kernels::ProofField;

use crate::flp::{FlpError, Gadget, GadgetOracle, GadgetShape, PolyEval, Validity, WireRun};
use crate::polynomial::{self, batch_inverse};

/// Number of independent random combinations (circuit outputs).
pub(crate) const COMBINATIONS: usize = 3;
/// Query points per proof.
pub(crate) const QUERY_POINTS: usize = 2;
/// Largest default chunk: keeps the verifier message `3 + 2·(2m + 3)` elements
/// `≤ 512` elements = 4 KiB.
pub(crate) const MAX_DEFAULT_CHUNK: usize = 125;

/// The circuit for one parameter set.
#[derive(Debug, Clone)]
pub(crate) struct CarryLiftCircuit<F> {
    pub(crate) dimension: usize,
    pub(crate) num_aggregators: u64,
    pub(crate) num_digits: usize,
    pub(crate) chunk: usize,
    pub(crate) calls: usize,
    /// `B²` in the field.
    pub(crate) norm_bound_sq: F,
    /// `n^j`, `j < L`.
    pub(crate) digit_weights: Vec<F>,
}

impl<F: ProofField> CarryLiftCircuit<F> {
    pub(crate) fn new(
        dimension: usize,
        num_aggregators: u64,
        num_digits: usize,
        chunk: usize,
        norm_bound_sq: F,
    ) -> Self {
        let entries = dimension + num_digits;
        let calls = entries.div_ceil(chunk.max(1));
        let base = F::from_u64(num_aggregators);
        let mut digit_weights = Vec::with_capacity(num_digits);
        let mut w = F::ONE;
        for _ in 0..num_digits {
            digit_weights.push(w);
            w *= base;
        }
        Self {
            dimension,
            num_aggregators,
            num_digits,
            chunk,
            calls,
            norm_bound_sq,
            digit_weights,
        }
    }

    /// Range entries: carries and digits.
    pub(crate) fn range_entries(&self) -> usize {
        self.dimension + self.num_digits
    }

    pub(crate) fn shape(&self) -> GadgetShape {
        GadgetShape {
            arity: 2 * self.chunk,
            degree: self.degree(),
            num_outputs: COMBINATIONS,
            calls: self.calls,
        }
    }

    fn degree(&self) -> usize {
        // R_n has degree n ≥ 2, y² has degree 2.
        (self.num_aggregators as usize).max(2)
    }
}

/// The default chunk: the smallest domain `P` (hence the smallest proof) for which the
/// chunk `⌈(d + L)/(P − 2)⌉` keeps the verifier message within 4 KiB.
pub(crate) fn default_chunk(range_entries: usize) -> usize {
    let mut p = 4usize;
    loop {
        let chunk = range_entries.div_ceil(p - QUERY_POINTS).max(1);
        if chunk <= MAX_DEFAULT_CHUNK || p >= (1 << 30) {
            return chunk;
        }
        p *= 2;
    }
}

impl<F: ProofField> Validity<F> for CarryLiftCircuit<F> {
    fn input_len(&self) -> usize {
        2 * self.dimension + self.num_digits
    }

    fn output_len(&self) -> usize {
        COMBINATIONS
    }

    fn joint_rand_len(&self) -> usize {
        COMBINATIONS * (self.chunk + self.calls)
    }

    fn num_query_points(&self) -> usize {
        QUERY_POINTS
    }

    fn calls_read_gadget_outputs(&self) -> bool {
        // Every call's inputs are slices of the circuit's input; outputs only enter
        // the final sums.
        false
    }

    fn gadget_shapes(&self) -> Vec<GadgetShape> {
        vec![self.shape()]
    }

    fn gadgets(&self, joint_rand: &[F]) -> Result<Vec<Box<dyn Gadget<F>>>, FlpError> {
        let weights = joint_rand
            .get(..COMBINATIONS * self.chunk)
            .ok_or(FlpError::Length {
                what: "joint_rand",
                expected: self.joint_rand_len(),
                got: joint_rand.len(),
            })?
            .to_vec();
        Ok(vec![Box::new(CarryLiftGadget::new(
            self.num_aggregators,
            self.chunk,
            weights,
        ))])
    }

    fn eval(
        &self,
        gadgets: &mut [&mut dyn GadgetOracle<F>],
        input: &[F],
        joint_rand: &[F],
        num_shares: usize,
        output: &mut [F],
    ) -> Result<(), FlpError> {
        let m = self.chunk;
        let calls = self.calls;
        let d = self.dimension;
        if num_shares == 0 || num_shares as u128 >= F::MODULUS {
            return Err(FlpError::NumShares);
        }
        if input.len() != self.input_len()
            || joint_rand.len() != self.joint_rand_len()
            || output.len() != COMBINATIONS
            || gadgets.len() != 1
        {
            return Err(FlpError::Length {
                what: "carry-lift circuit arguments",
                expected: self.input_len(),
                got: input.len(),
            });
        }
        let outer = &joint_rand[COMBINATIONS * m..];
        let (beta, rest) = outer.split_at(calls);
        let (b1, b2) = rest.split_at(calls);
        let mut beta_inverse = beta.to_vec();
        batch_inverse(&mut beta_inverse).map_err(|_| FlpError::ZeroJointRand)?;
        let (lifted, range) = input.split_at(d);
        let digits = &range[d..];

        let gadget = &mut *gadgets[0];
        let mut out = [F::ZERO; COMBINATIONS];
        let mut acc = [F::ZERO; COMBINATIONS];
        for k in 0..calls {
            // Call k's inputs: the range entries k·m … k·m + m − 1 and the lifted values
            // at the same indices divided by β_k, zero-padded past the ends.
            let start = k * m;
            let entries = range.get(start..).unwrap_or(&[]);
            let xs = lifted.get(start..).unwrap_or(&[]);
            let runs = [
                WireRun {
                    values: &entries[..entries.len().min(m)],
                    scale: F::ONE,
                    width: m,
                },
                WireRun {
                    values: &xs[..xs.len().min(m)],
                    scale: beta_inverse[k],
                    width: m,
                },
            ];
            gadget.call_runs(&runs, &mut out)?;
            acc[0] += beta[k] * beta[k] * out[0];
            acc[1] += b1[k] * out[1];
            acc[2] += b2[k] * out[2];
        }
        let mut slack = F::ZERO;
        for (w, digit) in self.digit_weights.iter().zip(digits) {
            slack += *w * *digit;
        }
        // Constant terms are split evenly among the shares (affine evaluation).
        let share_inverse = F::from_u64(num_shares as u64).inv();
        acc[0] += slack - self.norm_bound_sq * share_inverse;
        output.copy_from_slice(&acc);
        Ok(())
    }
}

/// The carry-lift gadget (module docs): arity `2m`, degree `max(n, 2)`, 3 outputs.
#[derive(Debug, Clone)]
pub(crate) struct CarryLiftGadget<F> {
    num_aggregators: u64,
    chunk: usize,
    /// `a0 ‖ a1 ‖ a2`, `m` each.
    weights: Vec<F>,
    /// `−i` for `i < n`, the roots of `R_n` negated.
    negated_roots: Vec<F>,
}

impl<F: ProofField> CarryLiftGadget<F> {
    pub(crate) fn new(num_aggregators: u64, chunk: usize, weights: Vec<F>) -> Self {
        let negated_roots = (0..num_aggregators).map(|i| -F::from_u64(i)).collect();
        Self {
            num_aggregators,
            chunk,
            weights,
            negated_roots,
        }
    }
}

impl<F: ProofField> Gadget<F> for CarryLiftGadget<F> {
    fn arity(&self) -> usize {
        2 * self.chunk
    }

    fn degree(&self) -> usize {
        (self.num_aggregators as usize).max(2)
    }

    fn num_outputs(&self) -> usize {
        COMBINATIONS
    }

    fn eval(&self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        let m = self.chunk;
        if inputs.len() != 2 * m || outputs.len() != COMBINATIONS || self.weights.len() != 3 * m {
            return Err(FlpError::Length {
                what: "carry-lift gadget inputs",
                expected: 2 * m,
                got: inputs.len(),
            });
        }
        let (entries, ys) = inputs.split_at(m);
        let (a0, rest) = self.weights.split_at(m);
        let (a1, a2) = rest.split_at(m);
        let mut residuals = vec![F::ZERO; m];
        F::range_products(&mut residuals, entries, &self.negated_roots);
        outputs[0] = F::sum_of_products(a0, &residuals) + F::sum_of_products(ys, ys);
        outputs[1] = F::sum_of_products(a1, &residuals);
        outputs[2] = F::sum_of_products(a2, &residuals);
        Ok(())
    }

    /// [`Gadget::eval`] over many points at once ([`ProofField::range_square_sums`]).
    fn eval_batch(&self, columns: &[Vec<F>], outputs: &mut [Vec<F>]) -> Result<(), FlpError> {
        let m = self.chunk;
        let points = columns.first().map_or(0, Vec::len);
        if columns.len() != 2 * m
            || outputs.len() != COMBINATIONS
            || self.weights.len() != 3 * m
            || columns.iter().any(|c| c.len() != points)
            || outputs.iter().any(|o| o.len() != points)
        {
            return Err(FlpError::Length {
                what: "carry-lift gadget batch",
                expected: 2 * m,
                got: columns.len(),
            });
        }
        let (entries, squares) = columns.split_at(m);
        let (a0, rest) = self.weights.split_at(m);
        let (a1, a2) = rest.split_at(m);
        F::range_square_sums(entries, squares, [a0, a1, a2], &self.negated_roots, outputs);
        Ok(())
    }

    fn eval_poly(&self, inputs: &[Vec<F>]) -> Result<Vec<Vec<F>>, FlpError> {
        let m = self.chunk;
        if inputs.len() != 2 * m || self.weights.len() != 3 * m {
            return Err(FlpError::Length {
                what: "carry-lift gadget inputs",
                expected: 2 * m,
                got: inputs.len(),
            });
        }
        let range = PolyEval::<F>::range_check(self.num_aggregators);
        let mut outputs = vec![Vec::new(); COMBINATIONS];
        for sigma in 0..m {
            let r = range.eval_poly(&inputs[sigma..=sigma])?.remove(0);
            let y_squared = polynomial::multiply(&inputs[m + sigma], &inputs[m + sigma])?;
            for (c, output) in outputs.iter_mut().enumerate() {
                let w = self.weights[c * m + sigma];
                let weighted: Vec<F> = r.iter().map(|v| *v * w).collect();
                *output = polynomial::add(output, &weighted);
            }
            outputs[0] = polynomial::add(&outputs[0], &y_squared);
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::field::{Field64, FieldElement};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn random(rng: &mut ChaCha20Rng, n: usize) -> Vec<Field64> {
        (0..n).map(|_| Field64::random(rng)).collect()
    }

    #[test]
    fn batch_and_polynomial_evaluation_match_pointwise_evaluation() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        for n in [2u64, 3, 5] {
            let m = 4;
            let gadget = CarryLiftGadget::new(n, m, random(&mut rng, 3 * m));
            // Batch over 9 points.
            let columns: Vec<Vec<Field64>> = (0..2 * m).map(|_| random(&mut rng, 9)).collect();
            let mut batch = vec![vec![Field64::ZERO; 9]; COMBINATIONS];
            gadget.eval_batch(&columns, &mut batch).unwrap();
            for i in 0..9 {
                let point: Vec<Field64> = columns.iter().map(|c| c[i]).collect();
                let mut out = [Field64::ZERO; COMBINATIONS];
                gadget.eval(&point, &mut out).unwrap();
                for r in 0..COMBINATIONS {
                    assert_eq!(batch[r][i], out[r]);
                }
            }
            // Polynomials of degree 2 evaluated at a point agree with eval there.
            let polys: Vec<Vec<Field64>> = (0..2 * m).map(|_| random(&mut rng, 3)).collect();
            let out_polys = gadget.eval_poly(&polys).unwrap();
            let t = Field64::random(&mut rng);
            let point: Vec<Field64> = polys.iter().map(|p| polynomial::evaluate(p, t)).collect();
            let mut out = [Field64::ZERO; COMBINATIONS];
            gadget.eval(&point, &mut out).unwrap();
            for r in 0..COMBINATIONS {
                assert_eq!(polynomial::evaluate(&out_polys[r], t), out[r]);
                assert!(out_polys[r].len() <= 2 * n as usize + 1);
            }
        }
    }

    #[test]
    fn range_polynomial_vanishes_exactly_on_the_allowed_values() {
        let gadget = CarryLiftGadget::new(3, 1, vec![Field64::ONE; 3]);
        let eval = |c: Field64| {
            let mut out = [Field64::ZERO; COMBINATIONS];
            gadget.eval(&[c, Field64::ZERO], &mut out).unwrap();
            out[1]
        };
        for c in 0..3 {
            assert_eq!(eval(Field64::from_u64(c)), Field64::ZERO);
        }
        assert_ne!(eval(Field64::from_u64(3)), Field64::ZERO);
        assert_ne!(eval(-Field64::ONE), Field64::ZERO);
    }

    #[test]
    fn default_chunk_keeps_the_verifier_within_4_kib() {
        for entries in [1usize, 10, 1_000, 10_034, 100_034, 1_000_040] {
            let m = default_chunk(entries);
            assert!(m <= MAX_DEFAULT_CHUNK);
            let verifier_bytes = 8 * (3 + QUERY_POINTS * (2 * m + 3));
            assert!(
                verifier_bytes <= 4096,
                "entries {entries}: {verifier_bytes} B"
            );
        }
    }
}
