//! Fully linear proofs (FLPs) over secret-shared inputs.
//!
//! This is the proof system of Boneh, Boyle, Corrigan-Gibbs, Gilboa and Ishai, "Zero-
//! Knowledge Proofs on Secret-Shared Data via Fully Linear PCPs" (CRYPTO 2019,
//! "BBCGGI19"), §4 (FLPs for arithmetic circuits with *G-gates*, Theorem 4.3) and §5
//! (the compilation to secret-shared inputs), in the form Prio3 uses
//! (draft-irtf-cfrg-vdaf, §7.3 "A general-purpose FLP").
//!
//! # The statement
//! A [`Validity`] circuit maps an input vector `x ∈ F^ℓ` and public *joint randomness*
//! to an output vector; `x` is valid when every output is zero. Its only non-affine
//! operations are calls to *gadgets* ([`Gadget`]): small fixed polynomials `G` of
//! arity `L` and degree `deg G` (multiplication, polynomial evaluation, and
//! [`ParallelSum`], which sums many copies of a gadget so that a circuit over `d` values
//! makes about `d/chunk` calls). Because everything outside the gadgets is affine, each
//! aggregator can evaluate the circuit on its *share* of `x` (with the constant terms
//! divided by the number of shares, `num_shares`) and the shares of the outputs add up
//! to the outputs.
//!
//! # The proof (BBCGGI19 §4.2)
//! Let gadget `G` be called `M` times, with inputs `u_k ∈ F^L` on call `k`. The prover
//! picks a power-of-two domain `H = {α^0, …, α^{P−1}}` with `P ≥ M + s` (`s` = number of
//! query points, below) and, for each wire `j < L`, the polynomial `W_j` of degree `< P`
//! with
//!
//! * `W_j(α^i) = r_{i,j}` for `i < s`: fresh uniformly random **wire seeds** (these
//!   make the proof zero-knowledge, below),
//! * `W_j(α^{s+k}) = u_{k,j}`: the `j`-th input of call `k`,
//! * `W_j(α^i) = 0` for the remaining points.
//!
//! The proof is the seeds and, for every output `r` of the gadget, the coefficients of
//! `p_r = G_r(W_0, …, W_{L−1})`, of degree `≤ deg G·(P − 1)`. Since `p_r(α^{s+k}) =
//! G_r(u_k)`, the verifier can read every gadget output off the proof, so it can run the
//! whole circuit **linearly** in `(x, proof)`. That linearity is what lets each
//! aggregator work on its own shares of the input and of the proof ([`query`]), the
//! shares of the resulting *verifier* message being simply added up before
//! [`decide`].
//!
//! # The check
//! For each query point `t` (not in `H`), the verifier computes `W_j(t)` by Lagrange
//! interpolation through the seeds and the gadget inputs it sees while running the
//! circuit ([`crate::polynomial::lagrange_coefficients`]), and `p_r(t)` from the proof.
//! [`decide`] accepts iff every circuit output is zero and `G_r(W(t)) = p_r(t)` for all
//! `r` and all query points.
//!
//! **Soundness** (BBCGGI19 Theorem 4.3). If some `p_r ≠ G_r∘W`, their difference is a
//! non-zero polynomial of degree `≤ deg G·(P − 1)`, so a uniformly random `t ∉ H` is a
//! root with probability `≤ deg G·(P − 1)/(|F| − P)`; with `s` independent distinct
//! query points, `≤ (deg G·(P − 1)/(|F| − P − s))^s`, and a union bound over gadgets and
//! outputs. Otherwise `p_r = G_r∘W`, so the gadget outputs the verifier used are the true
//! ones and the circuit outputs are the true outputs: a non-zero output is caught with
//! certainty. (The circuit's own error, from combining many checks with joint
//! randomness, is the circuit's business; see [`crate::carry_lift`].)
//!
//! **Zero knowledge.** With `s` seeds per wire and `s` distinct query points outside
//! `H`, the map from the seeds to `(W_j(t_1), …, W_j(t_s))` is invertible (a
//! non-zero polynomial of degree `< P` cannot vanish on the `P − s` non-seed points of
//! `H` and on all `s` query points), so the `W_j(t_l)` are uniform and independent of
//! the input, and `p_r(t_l) = G_r(W(t_l))` is determined by them. The summed verifier
//! message therefore has the same distribution for every valid input.
//!
//! # Generalisations of Prio3's FLP used here
//! Prio3 uses one query point (`s = 1`) and single-output gadgets. Cairn allows `s ≥ 1`
//! query points (each multiplies the soundness error of the check, at the cost of `s`
//! seeds per wire) and gadgets with several outputs over the same wires (several
//! random combinations of the same gadget inputs, each its own proof polynomial, sharing
//! the wire polynomials), which the carry-lift circuit uses to reach a small soundness
//! error without repeating the whole proof.

mod gadget;
mod prove;
mod query;

pub use gadget::{Gadget, Mul, ParallelSum, PolyEval};
pub use prove::prove;
pub use query::{decide, query};

use crate::kernels::ProofField;

use crate::ntt::NttError;
use crate::polynomial::PolynomialError;

/// Errors from the proof system. (A proof that does not verify is not an error:
/// [`decide`] returns `false`.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlpError {
    /// A vector has the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    Length {
        /// Which vector.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Supplied length.
        got: usize,
    },
    /// The circuit called a gadget a different number of times than it declared.
    #[error("gadget {gadget} was called {got} times, the circuit declares {expected}")]
    CallCount {
        /// Gadget index.
        gadget: usize,
        /// Declared calls.
        expected: usize,
        /// Actual calls.
        got: usize,
    },
    /// The gadgets built by the circuit do not match its declared shapes (or have no
    /// inputs).
    #[error("gadget {0} does not match the circuit's declared shape")]
    ShapeMismatch(usize),
    /// Two query points coincide or one lies in the interpolation domain (the caller
    /// must sample them outside `H` and distinct).
    #[error("query points must be distinct and outside the interpolation domain")]
    BadQueryPoint,
    /// `num_shares` is zero or not invertible in the field.
    #[error("invalid number of shares")]
    NumShares,
    /// A joint-randomness value the circuit needs to invert is zero.
    #[error("joint randomness contains a zero where a non-zero value is required")]
    ZeroJointRand,
    /// The sizes are too large for the field's NTT domains.
    #[error(transparent)]
    Ntt(#[from] NttError),
    /// A polynomial helper failed.
    #[error(transparent)]
    Polynomial(#[from] PolynomialError),
}

/// The shape of one gadget in a circuit: what the proof and verifier sizes depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GadgetShape {
    /// Number of inputs `L`.
    pub arity: usize,
    /// Total degree `deg G`.
    pub degree: usize,
    /// Number of outputs (proof polynomials).
    pub num_outputs: usize,
    /// Number of calls `M` the circuit makes.
    pub calls: usize,
}

impl GadgetShape {
    /// `P`: the smallest power of two `≥ calls + num_query_points`.
    pub fn domain_size(&self, num_query_points: usize) -> usize {
        (self.calls + num_query_points)
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
    }

    /// Coefficients of each proof polynomial: `deg G·(P − 1) + 1`.
    pub fn proof_poly_len(&self, num_query_points: usize) -> usize {
        self.degree
            .saturating_mul(self.domain_size(num_query_points) - 1)
            .saturating_add(1)
    }

    /// Elements of the proof for this gadget: `s·L` seeds and the polynomials.
    pub fn proof_len(&self, num_query_points: usize) -> usize {
        (num_query_points * self.arity)
            .saturating_add(self.num_outputs * self.proof_poly_len(num_query_points))
    }

    /// Elements of the verifier message for this gadget: per query point, the `L` wire
    /// values and the outputs' polynomial values.
    pub fn verifier_len(&self, num_query_points: usize) -> usize {
        num_query_points * (self.arity + self.num_outputs)
    }
}

/// A gadget as the circuit sees it while it is evaluated: the prover's recording
/// oracle, or the verifier's proof-reading oracle.
pub trait GadgetOracle<F: ProofField> {
    /// One call of the gadget: `outputs` receives its outputs for `inputs`.
    fn call(&mut self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError>;

    /// One call whose inputs are `runs` laid end to end, each run's values multiplied
    /// by its scale and followed by zeros up to its width; the widths add up to the
    /// gadget's arity. The same call as [`GadgetOracle::call`] on those inputs, but the
    /// verifier never forms them: the wire values enter its sums linearly, so it folds
    /// each scale into its interpolation weights and skips the zeros.
    fn call_runs(&mut self, runs: &[WireRun<'_, F>], outputs: &mut [F]) -> Result<(), FlpError> {
        let mut inputs = Vec::new();
        WireRun::concatenate_into(runs, &mut inputs)?;
        self.call(&inputs, outputs)
    }
}

/// A run of one call's gadget inputs ([`GadgetOracle::call_runs`]): `scale·values[i]`
/// for `i < values.len()`, then zeros up to `width`.
#[derive(Debug, Clone, Copy)]
pub struct WireRun<'a, F> {
    /// The unscaled values (at most `width`; more is a length error).
    pub values: &'a [F],
    /// The factor every value is multiplied by.
    pub scale: F,
    /// The run's number of inputs.
    pub width: usize,
}

impl<F: ProofField> WireRun<'_, F> {
    /// Replaces `inputs` with the inputs the runs stand for; a run with more values
    /// than its width is a length error.
    pub fn concatenate_into(runs: &[Self], inputs: &mut Vec<F>) -> Result<(), FlpError> {
        Self::check_values(runs)?;
        inputs.clear();
        Self::append_unchecked(runs, inputs);
        Ok(())
    }

    /// Appends the inputs the runs stand for to `inputs`, for runs already checked
    /// ([`WireRun::check_values`]).
    fn append_unchecked(runs: &[Self], inputs: &mut Vec<F>) {
        for run in runs {
            let start = inputs.len();
            inputs.resize(start + run.width, F::ZERO);
            let row = &mut inputs[start..start + run.values.len()];
            if run.scale == F::ONE {
                row.copy_from_slice(run.values);
            } else {
                F::scale_into(row, run.values, run.scale);
            }
        }
    }

    /// Checks that the runs' widths add up to `arity` and that no run has more values
    /// than its width.
    fn check(runs: &[Self], arity: usize) -> Result<(), FlpError> {
        let width = runs
            .iter()
            .try_fold(0usize, |sum, r| sum.checked_add(r.width))
            .unwrap_or(usize::MAX);
        check_len("gadget inputs", arity, width)?;
        Self::check_values(runs)
    }

    /// Checks that no run has more values than its width.
    fn check_values(runs: &[Self]) -> Result<(), FlpError> {
        match runs.iter().find(|r| r.values.len() > r.width) {
            Some(run) => Err(FlpError::Length {
                what: "wire run",
                expected: run.width,
                got: run.values.len(),
            }),
            None => Ok(()),
        }
    }
}

/// A validity circuit: affine except for gadget calls (module docs).
pub trait Validity<F: ProofField> {
    /// Length of the input vector.
    fn input_len(&self) -> usize;
    /// Number of circuit outputs (all must be zero for a valid input).
    fn output_len(&self) -> usize;
    /// Number of joint-randomness elements.
    fn joint_rand_len(&self) -> usize;
    /// Number `s` of query points per gadget (and of wire seeds per wire).
    fn num_query_points(&self) -> usize {
        1
    }
    /// The gadgets' shapes, in the order of the `gadgets` argument of
    /// [`Validity::eval`].
    fn gadget_shapes(&self) -> Vec<GadgetShape>;
    /// The gadgets themselves, which may depend on the joint randomness.
    fn gadgets(&self, joint_rand: &[F]) -> Result<Vec<Box<dyn Gadget<F>>>, FlpError>;
    /// Evaluates the circuit on `input` (the whole input, or one of `num_shares`
    /// additive shares of it), writing `output_len()` values into `output`. Must be
    /// affine in `input` and the gadget outputs, with constant terms divided by
    /// `num_shares`, and must call gadget `i` exactly `gadget_shapes()[i].calls` times.
    fn eval(
        &self,
        gadgets: &mut [&mut dyn GadgetOracle<F>],
        input: &[F],
        joint_rand: &[F],
        num_shares: usize,
        output: &mut [F],
    ) -> Result<(), FlpError>;

    /// Whether anything the circuit does with its oracles may depend on the outputs of
    /// earlier calls: the inputs of later calls, how many calls it makes, which
    /// branch it takes, whether it fails. When `false`, the prover records each
    /// call's inputs without evaluating the gadget (the oracle answers zeros), and
    /// evaluates it afterwards on all the points at once ([`Gadget::eval_batch`]):
    /// proving needs the outputs only as values of the gadget polynomial. The
    /// circuit's own output while proving is then meaningless; the prover never reads
    /// it. A circuit that answers `false` wrongly gets proofs that do not verify (the
    /// verifier is not affected). `true` (always safe) unless the circuit overrides it.
    fn calls_read_gadget_outputs(&self) -> bool {
        true
    }

    /// Elements of a proof.
    fn proof_len(&self) -> usize {
        let s = self.num_query_points();
        self.gadget_shapes().iter().map(|g| g.proof_len(s)).sum()
    }

    /// Elements of a verifier message.
    fn verifier_len(&self) -> usize {
        let s = self.num_query_points();
        self.output_len()
            + self
                .gadget_shapes()
                .iter()
                .map(|g| g.verifier_len(s))
                .sum::<usize>()
    }

    /// Elements of query randomness: one point per gadget and query point.
    fn query_rand_len(&self) -> usize {
        self.gadget_shapes().len() * self.num_query_points()
    }

    /// Elements of the prover's randomness (the wire seeds).
    fn prove_rand_len(&self) -> usize {
        let s = self.num_query_points();
        self.gadget_shapes().iter().map(|g| s * g.arity).sum()
    }

    /// Evaluates the circuit directly (no proof) and reports whether every output is
    /// zero: the definition of a valid input, used in tests.
    fn is_valid(&self, input: &[F], joint_rand: &[F]) -> Result<bool, FlpError> {
        let gadgets = self.gadgets(joint_rand)?;
        let mut oracles: Vec<DirectOracle<'_, F>> = gadgets
            .iter()
            .map(|g| DirectOracle { gadget: g.as_ref() })
            .collect();
        let mut refs: Vec<&mut dyn GadgetOracle<F>> = oracles
            .iter_mut()
            .map(|o| o as &mut dyn GadgetOracle<F>)
            .collect();
        let mut output = vec![F::ZERO; self.output_len()];
        self.eval(&mut refs, input, joint_rand, 1, &mut output)?;
        Ok(output.iter().all(|v| *v == F::ZERO))
    }
}

/// Calls the gadget itself.
struct DirectOracle<'g, F> {
    gadget: &'g dyn Gadget<F>,
}

impl<F: ProofField> GadgetOracle<F> for DirectOracle<'_, F> {
    fn call(&mut self, inputs: &[F], outputs: &mut [F]) -> Result<(), FlpError> {
        self.gadget.eval(inputs, outputs)
    }
}

/// Checks that built gadgets match the declared shapes.
fn check_shapes<F: ProofField>(
    gadgets: &[Box<dyn Gadget<F>>],
    shapes: &[GadgetShape],
) -> Result<(), FlpError> {
    if gadgets.len() != shapes.len() {
        return Err(FlpError::Length {
            what: "gadgets",
            expected: shapes.len(),
            got: gadgets.len(),
        });
    }
    for (i, (g, s)) in gadgets.iter().zip(shapes).enumerate() {
        if s.arity == 0
            || g.arity() != s.arity
            || g.degree() != s.degree
            || g.num_outputs() != s.num_outputs
        {
            return Err(FlpError::ShapeMismatch(i));
        }
    }
    Ok(())
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), FlpError> {
    if expected == got {
        Ok(())
    } else {
        Err(FlpError::Length {
            what,
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests;
