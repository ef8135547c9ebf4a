//! The prover (BBCGGI19 §4.2; draft-irtf-cfrg-vdaf §7.3, `prove`).
//!
//! 1. Run the circuit with recording oracles: gadget `g`'s call `k` stores its inputs as
//!    the values of the wire polynomials at `α^{s+k}`; the seeds go at `α^0 … α^{s−1}`.
//! 2. For each gadget, extend each wire polynomial from its `P` values on `H` to the
//!    `N ≥ deg G·(P − 1) + 1` points of a larger power-of-two domain (one inverse and
//!    `N/P − 1` forward NTTs of size `P`), evaluate the gadget pointwise there, and
//!    interpolate each output back to coefficients (one inverse NTT of size `N`).
//!    Pointwise evaluation is exact because `G(W)` has degree `< N`.

use zeroize::{Zeroize, Zeroizing};

use crate::kernels::ProofField;

use super::{
    FlpError, Gadget, GadgetOracle, GadgetShape, Validity, WireRun, check_len, check_shapes,
};
use crate::ntt::NttDomain;
use crate::polynomial::DomainExtension;

/// Proves that `input` satisfies `circuit` under `joint_rand`, with wire seeds
/// `prove_rand` (length [`Validity::prove_rand_len`], uniformly random and secret).
///
/// Returns the proof (length [`Validity::proof_len`]); layout per gadget: the seeds
/// (seed `i` of wire `j` at `i·L + j`), then each output's coefficients. Proving an
/// invalid input is not an error: the proof simply will not verify.
pub fn prove<F: ProofField, V: Validity<F> + ?Sized>(
    circuit: &V,
    input: &[F],
    prove_rand: &[F],
    joint_rand: &[F],
) -> Result<Vec<F>, FlpError> {
    check_len("input", circuit.input_len(), input.len())?;
    check_len("prove_rand", circuit.prove_rand_len(), prove_rand.len())?;
    check_len("joint_rand", circuit.joint_rand_len(), joint_rand.len())?;
    let s = circuit.num_query_points();
    let shapes = circuit.gadget_shapes();
    let gadgets = circuit.gadgets(joint_rand)?;
    check_shapes(&gadgets, &shapes)?;

    let mut oracles = Vec::with_capacity(gadgets.len());
    let mut seeds = prove_rand;
    for (gadget, shape) in gadgets.iter().zip(&shapes) {
        let (mine, rest) = seeds.split_at(s * shape.arity);
        seeds = rest;
        oracles.push(RecordingOracle::new(
            gadget.as_ref(),
            shape,
            s,
            mine,
            !circuit.calls_read_gadget_outputs(),
        ));
    }
    {
        let mut refs: Vec<&mut dyn GadgetOracle<F>> = oracles
            .iter_mut()
            .map(|o| o as &mut dyn GadgetOracle<F>)
            .collect();
        let mut output = Zeroizing::new(vec![F::ZERO; circuit.output_len()]);
        circuit.eval(&mut refs, input, joint_rand, 1, &mut output)?;
    }

    let mut proof = Vec::with_capacity(circuit.proof_len());
    for (index, (oracle, shape)) in oracles.into_iter().zip(&shapes).enumerate() {
        if oracle.calls != shape.calls {
            return Err(FlpError::CallCount {
                gadget: index,
                expected: shape.calls,
                got: oracle.calls,
            });
        }
        proof.extend_from_slice(&prove_rand_slice(prove_rand, &shapes, s, index));
        gadget_polynomials(oracle, shape, s, &mut proof)?;
    }
    Ok(proof)
}

/// The seeds of gadget `index` within `prove_rand`.
fn prove_rand_slice<F: Copy>(
    prove_rand: &[F],
    shapes: &[GadgetShape],
    s: usize,
    index: usize,
) -> Vec<F> {
    let start: usize = shapes[..index].iter().map(|g| s * g.arity).sum();
    prove_rand[start..start + s * shapes[index].arity].to_vec()
}

/// Appends the coefficients of every output polynomial `G_r(W)` of one gadget.
fn gadget_polynomials<F: ProofField>(
    mut oracle: RecordingOracle<'_, F>,
    shape: &GadgetShape,
    s: usize,
    proof: &mut Vec<F>,
) -> Result<(), FlpError> {
    let p = shape.domain_size(s);
    let poly_len = shape.proof_poly_len(s);
    let small = NttDomain::<F>::at_least(p)?;
    let large = NttDomain::<F>::at_least(poly_len)?;
    let n = large.size();
    let extension = DomainExtension::new(small, large)?;
    let arity = shape.arity;

    let outputs = shape.num_outputs;
    let ratio = n / p;
    // Every buffer below holds values computed from the secret input: wiped on drop.
    let mut values = Zeroizing::new(vec![vec![F::ZERO; n]; outputs]);
    let mut point_out = Zeroizing::new(vec![F::ZERO; outputs]);

    // The deferred calls since the last whole cache line of the wires.
    oracle.flush();
    // Coset 0 is H itself: the gadget at the seed points, the recorded call outputs,
    // and G(0) at the unused points; nothing to transform. Deferred calls were not
    // evaluated: the gadget runs on all of H at once.
    if oracle.deferred {
        let mut on_h = Zeroizing::new(vec![vec![F::ZERO; p]; outputs]);
        oracle.gadget.eval_batch(&oracle.wires, &mut on_h)?;
        for (v, computed) in values.iter_mut().zip(on_h.iter()) {
            for (i, o) in computed.iter().enumerate() {
                v[i * ratio] = *o;
            }
        }
    }
    let mut seed_point = Zeroizing::new(vec![F::ZERO; arity]);
    let recorded_outputs = if oracle.deferred { 0 } else { p };
    for i in 0..recorded_outputs {
        if i >= s && i < s + oracle.calls {
            for (r, v) in values.iter_mut().enumerate() {
                v[i * ratio] = oracle.outputs[(i - s) * outputs + r];
            }
            continue;
        }
        for (sp, wire) in seed_point.iter_mut().zip(&oracle.wires) {
            *sp = wire[i];
        }
        oracle.gadget.eval(&seed_point, &mut point_out)?;
        for (v, o) in values.iter_mut().zip(point_out.iter()) {
            v[i * ratio] = *o;
        }
    }

    // Cosets 1 … r−1: extend every wire (wire-major columns), then evaluate the gadget
    // on all coset points at once.
    // The wire values on H are not needed any more: each wire is replaced in place by
    // its values on the new cosets (no new allocation when r = 2).
    let cosets = ratio - 1;
    for wire in oracle.wires.iter_mut() {
        extension.extend_cosets_in_place(wire)?;
    }
    let mut coset_outputs = Zeroizing::new(vec![vec![F::ZERO; cosets * p]; outputs]);
    oracle
        .gadget
        .eval_batch(&oracle.wires, &mut coset_outputs)?;
    // Point k = (c − 1)·P + j of the cosets is β^{j·r + c}.
    for (v, computed) in values.iter_mut().zip(coset_outputs.iter()) {
        for (k, o) in computed.iter().enumerate() {
            let (c, j) = (k / p + 1, k % p);
            v[j * ratio + c] = *o;
        }
    }
    for v in values.iter_mut() {
        extension.large().inverse(v)?;
        proof.extend_from_slice(&v[..poly_len]);
    }
    Ok(())
}

/// Records each call's inputs as wire-polynomial values and answers with the gadget.
struct RecordingOracle<'g, F: Zeroize> {
    gadget: &'g dyn Gadget<F>,
    /// `wires[j][i]` = value of wire `j` at `α^i`, `i < P`.
    wires: Vec<Vec<F>>,
    /// The gadget's outputs, call-major (`num_outputs` per call).
    outputs: Vec<F>,
    num_query_points: usize,
    max_calls: usize,
    calls: usize,
    /// The inputs of the current [`GadgetOracle::call_runs`].
    scratch: Vec<F>,
    /// Record the inputs only, answering zeros
    /// ([`super::Validity::calls_read_gadget_outputs`] is `false`).
    deferred: bool,
    /// Deferred calls' inputs not yet in `wires`, a row of `arity` values per call
    /// from the point `pending_from` on ([`RecordingOracle::flush`]).
    pending: Vec<F>,
    pending_from: usize,
}

/// Deferred calls are moved into the wires when the next point is a multiple of this:
/// one 64-byte cache line of each wire at once. Written a call at a time, the values
/// of one point land in `arity` wires whose equal offsets fall in the same L1 cache
/// set (the wires are allocated alike), which evicts them before the next call.
const PENDING_POINTS: usize = 8;

impl<'g, F: ProofField> RecordingOracle<'g, F> {
    fn new(
        gadget: &'g dyn Gadget<F>,
        shape: &GadgetShape,
        s: usize,
        seeds: &[F],
        deferred: bool,
    ) -> Self {
        let p = shape.domain_size(s);
        let mut wires = vec![vec![F::ZERO; p]; shape.arity];
        for (i, row) in seeds.chunks_exact(shape.arity.max(1)).enumerate() {
            for (wire, seed) in wires.iter_mut().zip(row) {
                wire[i] = *seed;
            }
        }
        Self {
            gadget,
            wires,
            outputs: Vec::with_capacity(shape.calls * shape.num_outputs),
            num_query_points: s,
            max_calls: shape.calls,
            calls: 0,
            scratch: Vec::with_capacity(shape.arity),
            deferred,
            pending: Vec::with_capacity(if deferred {
                PENDING_POINTS * shape.arity
            } else {
                0
            }),
            pending_from: s,
        }
    }

    /// Moves the pending rows into the wires, a wire at a time.
    fn flush(&mut self) {
        let arity = self.wires.len().max(1);
        let rows = self.pending.len() / arity;
        for (j, wire) in self.wires.iter_mut().enumerate() {
            let column = &mut wire[self.pending_from..self.pending_from + rows];
            for (value, row) in column.iter_mut().zip(self.pending.chunks_exact(arity)) {
                *value = row[j];
            }
        }
        self.pending.clear();
        self.pending_from = self.num_query_points + self.calls;
    }

    /// Ends a deferred call whose row has been appended to `pending`.
    fn defer(&mut self, outputs: &mut [F]) {
        self.calls += 1;
        let next = self.num_query_points + self.calls;
        if next.is_multiple_of(PENDING_POINTS) {
            self.flush();
        }
        outputs.fill(F::ZERO);
    }

    /// The point the next call's inputs go to, or an error past the declared calls.
    fn next_point(&self) -> Result<usize, FlpError> {
        if self.calls >= self.max_calls {
            return Err(FlpError::CallCount {
                gadget: usize::MAX,
                expected: self.max_calls,
                got: self.calls + 1,
            });
        }
        Ok(self.num_query_points + self.calls)
    }
}

/// The wires and the calls' inputs and outputs are the secret input's values.
impl<F> Drop for RecordingOracle<'_, F>
where
    F: Zeroize,
{
    fn drop(&mut self) {
        self.wires.zeroize();
        self.outputs.zeroize();
        self.scratch.zeroize();
        self.pending.zeroize();
    }
}

impl<F: ProofField> GadgetOracle<F> for RecordingOracle<'_, F> {
    fn call(&mut self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        check_len("gadget inputs", self.wires.len(), inputs.len())?;
        let point = self.next_point()?;
        if self.deferred {
            self.pending.extend_from_slice(inputs);
            self.defer(outputs);
            return Ok(());
        }
        for (wire, v) in self.wires.iter_mut().zip(inputs) {
            wire[point] = *v;
        }
        self.calls += 1;
        self.gadget.eval(inputs, outputs)?;
        self.outputs.extend_from_slice(outputs);
        Ok(())
    }

    fn call_runs(&mut self, runs: &[WireRun<'_, F>], outputs: &mut [F]) -> Result<(), FlpError> {
        if self.deferred {
            // Straight into the pending row, with no buffer in between.
            WireRun::check(runs, self.wires.len())?;
            self.next_point()?;
            WireRun::append_unchecked(runs, &mut self.pending);
            self.defer(outputs);
            return Ok(());
        }
        // The prover needs the inputs themselves; one buffer serves every call.
        let mut inputs = core::mem::take(&mut self.scratch);
        let result =
            WireRun::concatenate_into(runs, &mut inputs).and_then(|()| self.call(&inputs, outputs));
        self.scratch = inputs;
        result
    }
}
