//! The verifier: [`query`] (run by each aggregator on its shares) and [`decide`] (run on
//! the sum of the verifier shares). BBCGGI19 §4.2 and §5; draft-irtf-cfrg-vdaf §7.3
//! (`query`, `decide`).
//!
//! `query` is linear in `(input, proof)` for fixed joint and query randomness: it reads
//! the gadget outputs `p_r(α^{s+k})` off the proof share (fold the coefficients modulo
//! `x^P − 1`, one NTT of size `P`), runs the circuit on the input share with those
//! values as gadget outputs, and accumulates each wire's value at each query point
//! `t_l` as `Σ_i L_i(t_l)·W_j(α^i)` on the fly (Lagrange coefficients computed once per
//! point; no per-wire transform, no stored rows). Its cost is linear in the input
//! length.

use crate::kernels::ProofField;

use super::{FlpError, GadgetOracle, GadgetShape, Validity, WireRun, check_len, check_shapes};
use crate::ntt::NttDomain;
use crate::polynomial::{evaluate, evaluate_on_domain, lagrange_coefficients};

/// Computes this party's verifier share from its input share and proof share.
///
/// `query_rand` holds, for each gadget, `s` points; they must be pairwise distinct and
/// outside that gadget's domain `H` (else [`FlpError::BadQueryPoint`]). All parties use
/// the same joint and query randomness; `num_shares` is the number of parties.
///
/// Layout of the result: the circuit outputs, then per gadget and query point the `L`
/// wire values and the `R` proof-polynomial values.
pub fn query<F: ProofField, V: Validity<F> + ?Sized>(
    circuit: &V,
    input: &[F],
    proof: &[F],
    query_rand: &[F],
    joint_rand: &[F],
    num_shares: usize,
) -> Result<Vec<F>, FlpError> {
    check_len("input", circuit.input_len(), input.len())?;
    check_len("proof", circuit.proof_len(), proof.len())?;
    check_len("query_rand", circuit.query_rand_len(), query_rand.len())?;
    check_len("joint_rand", circuit.joint_rand_len(), joint_rand.len())?;
    if num_shares == 0 {
        return Err(FlpError::NumShares);
    }
    let s = circuit.num_query_points();
    let shapes = circuit.gadget_shapes();
    let gadgets = circuit.gadgets(joint_rand)?;
    check_shapes(&gadgets, &shapes)?;

    let mut oracles = Vec::with_capacity(shapes.len());
    let mut rest = proof;
    for (shape, points) in shapes.iter().zip(query_rand.chunks_exact(s.max(1))) {
        let (mine, tail) = rest.split_at(shape.proof_len(s));
        rest = tail;
        oracles.push(ProofOracle::new(shape, s, mine, points)?);
    }

    let mut verifier = vec![F::ZERO; circuit.output_len()];
    {
        let mut refs: Vec<&mut dyn GadgetOracle<F>> = oracles
            .iter_mut()
            .map(|o| o as &mut dyn GadgetOracle<F>)
            .collect();
        circuit.eval(&mut refs, input, joint_rand, num_shares, &mut verifier)?;
    }
    for (index, (mut oracle, shape)) in oracles.into_iter().zip(&shapes).enumerate() {
        if oracle.calls != shape.calls {
            return Err(FlpError::CallCount {
                gadget: index,
                expected: shape.calls,
                got: oracle.calls,
            });
        }
        oracle.finish();
        for l in 0..s {
            verifier.extend_from_slice(&oracle.wire_at_points[l * shape.arity..][..shape.arity]);
            verifier.extend_from_slice(
                &oracle.poly_at_points[l * shape.num_outputs..][..shape.num_outputs],
            );
        }
    }
    Ok(verifier)
}

/// Decides on the **sum** of all verifier shares: accepts iff every circuit output is
/// zero and, for every gadget and query point, `G(W(t)) = p(t)`.
pub fn decide<F: ProofField, V: Validity<F> + ?Sized>(
    circuit: &V,
    verifier: &[F],
    joint_rand: &[F],
) -> Result<bool, FlpError> {
    check_len("verifier", circuit.verifier_len(), verifier.len())?;
    check_len("joint_rand", circuit.joint_rand_len(), joint_rand.len())?;
    let s = circuit.num_query_points();
    let shapes = circuit.gadget_shapes();
    let gadgets = circuit.gadgets(joint_rand)?;
    check_shapes(&gadgets, &shapes)?;

    let (outputs, mut rest) = verifier.split_at(circuit.output_len());
    let mut ok = outputs.iter().all(|v| *v == F::ZERO);
    for (gadget, shape) in gadgets.iter().zip(&shapes) {
        let mut computed = vec![F::ZERO; shape.num_outputs];
        for _ in 0..s {
            let (wires, tail) = rest.split_at(shape.arity);
            let (claimed, tail) = tail.split_at(shape.num_outputs);
            rest = tail;
            gadget.eval(wires, &mut computed)?;
            ok &= computed == claimed;
        }
    }
    Ok(ok)
}

/// Answers gadget calls from the proof and accumulates wire values at the query points.
///
/// `W_j(t_l) = Σ_i L_i(t_l)·W_j(α^i)` is summed as the rows arrive (the seeds when the
/// oracle is made, then one row per call), lazily reduced, so no row is stored.
struct ProofOracle<F: ProofField> {
    arity: usize,
    num_outputs: usize,
    s: usize,
    /// `lagrange[l·(s + M) + i] = L_i(t_l)` for `i < s + M`.
    lagrange: Vec<F>,
    /// `p_r(α^i)` for each output `r` (row-major, `P` per output).
    poly_on_domain: Vec<F>,
    domain_size: usize,
    /// The running `W_j(t_l)` at `l·L + j`.
    sums: Vec<F::LazySum>,
    /// The current row's weight at each query point (scratch).
    weights: Vec<F>,
    /// `W_j(t_l)` at `l·L + j`, filled by [`ProofOracle::finish`].
    wire_at_points: Vec<F>,
    /// `p_r(t_l)` at `l·R + r`.
    poly_at_points: Vec<F>,
    max_calls: usize,
    calls: usize,
}

impl<F: ProofField> ProofOracle<F> {
    fn new(shape: &GadgetShape, s: usize, proof: &[F], points: &[F]) -> Result<Self, FlpError> {
        let arity = shape.arity;
        let outputs = shape.num_outputs;
        let domain = NttDomain::<F>::at_least(shape.domain_size(s))?;
        let p = domain.size();
        for (i, a) in points.iter().enumerate() {
            if points[..i].contains(a) {
                return Err(FlpError::BadQueryPoint);
            }
        }
        let used = s + shape.calls;
        let mut lagrange = Vec::with_capacity(s * used);
        for t in points {
            let coefficients =
                lagrange_coefficients(&domain, *t, used).map_err(|_| FlpError::BadQueryPoint)?;
            lagrange.extend(coefficients);
        }

        let (seeds, polys) = proof.split_at(s * arity);
        let poly_len = shape.proof_poly_len(s);
        let mut poly_on_domain = Vec::with_capacity(outputs * p);
        let mut poly_at_points = vec![F::ZERO; s * outputs];
        for (r, coefficients) in polys.chunks_exact(poly_len).enumerate() {
            poly_on_domain.extend(evaluate_on_domain(&domain, coefficients)?);
            for (l, t) in points.iter().enumerate() {
                poly_at_points[l * outputs + r] = evaluate(coefficients, *t);
            }
        }
        let mut oracle = Self {
            arity,
            num_outputs: outputs,
            s,
            lagrange,
            poly_on_domain,
            domain_size: p,
            sums: vec![F::LAZY_ZERO; s * arity],
            weights: vec![F::ZERO; s],
            wire_at_points: vec![F::ZERO; s * arity],
            poly_at_points,
            max_calls: shape.calls,
            calls: 0,
        };
        for (i, row) in seeds.chunks_exact(arity.max(1)).enumerate() {
            oracle.set_weights(i, F::ONE);
            F::add_weighted_row(&mut oracle.sums, arity, &oracle.weights, row);
        }
        Ok(oracle)
    }

    /// `weights[l] = scale·L_i(t_l)`: the weight of row `i` at each query point.
    fn set_weights(&mut self, i: usize, scale: F) {
        let used = self.s + self.max_calls;
        for (l, w) in self.weights.iter_mut().enumerate() {
            *w = self.lagrange[l * used + i] * scale;
        }
    }

    /// Checks the call count, reads the outputs of the next call off the proof and
    /// returns its row index.
    fn next_call(&mut self, outputs: &mut [F]) -> Result<usize, FlpError> {
        check_len("gadget outputs", self.num_outputs, outputs.len())?;
        if self.calls >= self.max_calls {
            return Err(FlpError::CallCount {
                gadget: usize::MAX,
                expected: self.max_calls,
                got: self.calls + 1,
            });
        }
        let point = self.s + self.calls;
        for (r, o) in outputs.iter_mut().enumerate() {
            *o = self.poly_on_domain[r * self.domain_size + point];
        }
        self.calls += 1;
        Ok(point)
    }

    /// The wire values at the query points, from the sums.
    fn finish(&mut self) {
        for (w, sum) in self.wire_at_points.iter_mut().zip(&self.sums) {
            *w = F::lazy_value(sum);
        }
    }
}

impl<F: ProofField> GadgetOracle<F> for ProofOracle<F> {
    fn call(&mut self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        check_len("gadget inputs", self.arity, inputs.len())?;
        let point = self.next_call(outputs)?;
        self.set_weights(point, F::ONE);
        F::add_weighted_row(&mut self.sums, self.arity, &self.weights, inputs);
        Ok(())
    }

    fn call_runs(&mut self, runs: &[WireRun<'_, F>], outputs: &mut [F]) -> Result<(), FlpError> {
        WireRun::check(runs, self.arity)?;
        let point = self.next_call(outputs)?;
        let mut offset = 0;
        for run in runs {
            // Zeros add nothing; the scale joins the Lagrange weight (one product per
            // query point instead of one per value).
            self.set_weights(point, run.scale);
            F::add_weighted_row(
                &mut self.sums[offset..],
                self.arity,
                &self.weights,
                run.values,
            );
            offset += run.width;
        }
        Ok(())
    }
}
