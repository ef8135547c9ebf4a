//! Gadgets: the non-affine building blocks of validity circuits (BBCGGI19 §4.1,
//! "G-gates"; draft-irtf-cfrg-vdaf §7.3, gadgets).
//!
//! A gadget is a fixed polynomial map `G: F^L → F^R` of total degree `deg G`. The proof
//! system needs it two ways: on values (the prover's circuit run, the verifier's
//! decision) and on polynomials (the proof polynomial `G(W_0, …, W_{L−1})`). The prover
//! in this crate computes the latter by evaluating `G` pointwise on a large enough NTT
//! domain, which only needs [`Gadget::eval`]; [`Gadget::eval_poly`] is the direct
//! coefficient-form definition, kept for reference and cross-checked in tests.

use crate::kernels::ProofField;

use super::FlpError;
use crate::polynomial;

/// A polynomial map `F^arity → F^num_outputs` of total degree `degree`.
pub trait Gadget<F: ProofField>: Send + Sync {
    /// Number of inputs.
    fn arity(&self) -> usize;
    /// Total degree of every output (an upper bound).
    fn degree(&self) -> usize;
    /// Number of outputs.
    fn num_outputs(&self) -> usize {
        1
    }
    /// Evaluates on values: `inputs.len() == arity`, `outputs.len() == num_outputs`.
    fn eval(&self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError>;
    /// Evaluates on polynomials (coefficient vectors): one output polynomial per output.
    fn eval_poly(&self, inputs: &[Vec<F>]) -> Result<Vec<Vec<F>>, FlpError>;

    /// Evaluates at many points at once, column-wise: `columns[j][i]` is input `j` at
    /// point `i`, `outputs[r][i]` receives output `r` at point `i`. The default gathers
    /// each point and calls [`Gadget::eval`]; gadgets that are sums of per-slot terms
    /// override it with streaming vector kernels (the prover's hot loop).
    fn eval_batch(&self, columns: &[Vec<F>], outputs: &mut [Vec<F>]) -> Result<(), FlpError> {
        super::check_len("batch columns", self.arity(), columns.len())?;
        super::check_len("batch outputs", self.num_outputs(), outputs.len())?;
        let points = columns.first().map_or(0, Vec::len);
        // A point of the prover's wires and the gadget's values there: secret, wiped.
        let mut point = zeroize::Zeroizing::new(vec![F::ZERO; self.arity()]);
        let mut out = zeroize::Zeroizing::new(vec![F::ZERO; self.num_outputs()]);
        for i in 0..points {
            for (p, c) in point.iter_mut().zip(columns) {
                *p = c.get(i).copied().unwrap_or(F::ZERO);
            }
            self.eval(&point, &mut out)?;
            for (o, v) in outputs.iter_mut().zip(out.iter()) {
                if let Some(slot) = o.get_mut(i) {
                    *slot = *v;
                }
            }
        }
        Ok(())
    }
}

fn check_io<F: ProofField, G: Gadget<F> + ?Sized>(
    gadget: &G,
    inputs: usize,
    outputs: usize,
) -> Result<(), FlpError> {
    super::check_len("gadget inputs", gadget.arity(), inputs)?;
    super::check_len("gadget outputs", gadget.num_outputs(), outputs)
}

/// `G(a, b) = a·b`: arity 2, degree 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mul;

impl<F: ProofField> Gadget<F> for Mul {
    fn arity(&self) -> usize {
        2
    }

    fn degree(&self) -> usize {
        2
    }

    fn eval(&self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        check_io::<F, _>(self, inputs.len(), outputs.len())?;
        outputs[0] = inputs[0] * inputs[1];
        Ok(())
    }

    fn eval_poly(&self, inputs: &[Vec<F>]) -> Result<Vec<Vec<F>>, FlpError> {
        check_io::<F, _>(self, inputs.len(), 1)?;
        Ok(vec![polynomial::multiply(&inputs[0], &inputs[1])?])
    }
}

/// `G(x) = p(x)` for a fixed univariate polynomial `p` (coefficients, lowest first):
/// arity 1, degree `deg p`.
#[derive(Debug, Clone)]
pub struct PolyEval<F> {
    coefficients: Vec<F>,
    degree: usize,
}

impl<F: ProofField> PolyEval<F> {
    /// The gadget for `p`; trailing zero coefficients are dropped.
    pub fn new(coefficients: Vec<F>) -> Self {
        let mut coefficients = coefficients;
        while coefficients.last() == Some(&F::ZERO) {
            coefficients.pop();
        }
        let degree = coefficients.len().saturating_sub(1);
        Self {
            coefficients,
            degree,
        }
    }

    /// `Π_{k<n} (x − k)`, whose roots are exactly `{0, …, n−1}` (for `n < p`).
    pub fn range_check(n: u64) -> Self {
        let mut coefficients = vec![F::ONE];
        for k in 0..n {
            // Multiply by (x − k).
            let mut next = vec![F::ZERO; coefficients.len() + 1];
            for (i, c) in coefficients.iter().enumerate() {
                next[i + 1] += *c;
                next[i] -= *c * F::from_u64(k);
            }
            coefficients = next;
        }
        Self::new(coefficients)
    }

    /// The coefficients of `p`.
    pub fn coefficients(&self) -> &[F] {
        &self.coefficients
    }

    /// `p(x)` by Horner's rule.
    pub fn evaluate(&self, x: F) -> F {
        polynomial::evaluate(&self.coefficients, x)
    }
}

impl<F: ProofField> Gadget<F> for PolyEval<F> {
    fn arity(&self) -> usize {
        1
    }

    fn degree(&self) -> usize {
        self.degree
    }

    fn eval(&self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        check_io::<F, _>(self, inputs.len(), outputs.len())?;
        outputs[0] = self.evaluate(inputs[0]);
        Ok(())
    }

    fn eval_poly(&self, inputs: &[Vec<F>]) -> Result<Vec<Vec<F>>, FlpError> {
        check_io::<F, _>(self, inputs.len(), 1)?;
        // Horner over polynomials: acc ← acc·x + c.
        let mut acc: Vec<F> = Vec::new();
        for c in self.coefficients.iter().rev() {
            acc = polynomial::multiply(&acc, &inputs[0])?;
            acc = polynomial::add(&acc, &[*c]);
        }
        Ok(vec![acc])
    }
}

/// `Σ_{s < chunks} w_s·G(inputs of slot s)`: `chunks` copies of an inner gadget on
/// consecutive slices of the inputs, summed (optionally with public weights `w_s`).
///
/// This is Prio3's `ParallelSum` (draft-irtf-cfrg-vdaf §7.3): a circuit over `d`
/// values calls it `⌈d/chunks⌉` times instead of calling the inner gadget `d` times, so
/// the proof (dominated by the proof polynomial, `≈ deg G·d/chunks` elements) and the
/// verifier message (dominated by the `chunks·L` wire values) are both `O(√d)` for
/// `chunks ≈ √d`. Same degree as the inner gadget; one output per inner output.
#[derive(Debug, Clone)]
pub struct ParallelSum<F, G> {
    inner: G,
    chunks: usize,
    weights: Option<Vec<F>>,
}

impl<F: ProofField, G: Gadget<F>> ParallelSum<F, G> {
    /// `chunks` unweighted copies of `inner`.
    pub fn new(inner: G, chunks: usize) -> Self {
        Self {
            inner,
            chunks,
            weights: None,
        }
    }

    /// `weights.len()` copies of `inner`, copy `s` multiplied by `weights[s]`.
    pub fn weighted(inner: G, weights: Vec<F>) -> Self {
        Self {
            inner,
            chunks: weights.len(),
            weights: Some(weights),
        }
    }

    fn weight(&self, slot: usize) -> F {
        self.weights
            .as_ref()
            .and_then(|w| w.get(slot).copied())
            .unwrap_or(F::ONE)
    }
}

impl<F: ProofField, G: Gadget<F>> Gadget<F> for ParallelSum<F, G> {
    fn arity(&self) -> usize {
        self.chunks * self.inner.arity()
    }

    fn degree(&self) -> usize {
        self.inner.degree()
    }

    fn num_outputs(&self) -> usize {
        self.inner.num_outputs()
    }

    fn eval(&self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        check_io::<F, _>(self, inputs.len(), outputs.len())?;
        outputs.fill(F::ZERO);
        let mut slot_out = vec![F::ZERO; self.inner.num_outputs()];
        for (slot, chunk) in inputs.chunks_exact(self.inner.arity().max(1)).enumerate() {
            self.inner.eval(chunk, &mut slot_out)?;
            let w = self.weight(slot);
            for (o, v) in outputs.iter_mut().zip(&slot_out) {
                *o += w * *v;
            }
        }
        Ok(())
    }

    fn eval_poly(&self, inputs: &[Vec<F>]) -> Result<Vec<Vec<F>>, FlpError> {
        check_io::<F, _>(self, inputs.len(), self.num_outputs())?;
        let mut outputs = vec![Vec::new(); self.num_outputs()];
        for (slot, chunk) in inputs.chunks_exact(self.inner.arity().max(1)).enumerate() {
            let w = self.weight(slot);
            for (o, p) in outputs.iter_mut().zip(self.inner.eval_poly(chunk)?) {
                let scaled: Vec<F> = p.iter().map(|c| *c * w).collect();
                *o = polynomial::add(o, &scaled);
            }
        }
        Ok(outputs)
    }
}
