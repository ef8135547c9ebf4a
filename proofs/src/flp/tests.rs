//! Tests of the generic FLP with a small two-gadget circuit.

use super::*;
use cairn_mpc::field::{Field64, FieldElement};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

type F = Field64;

/// Valid iff every `x_i ∈ {0, 1, 2}` (i ≥ 3) and `x_2 = x_0·x_1`.
struct TestCircuit {
    len: usize,
    chunk: usize,
    query_points: usize,
}

impl TestCircuit {
    fn range_calls(&self) -> usize {
        (self.len - 3).div_ceil(self.chunk)
    }
}

impl Validity<F> for TestCircuit {
    fn input_len(&self) -> usize {
        self.len
    }
    fn output_len(&self) -> usize {
        2
    }
    fn joint_rand_len(&self) -> usize {
        self.chunk + self.range_calls()
    }
    fn num_query_points(&self) -> usize {
        self.query_points
    }
    fn gadget_shapes(&self) -> Vec<GadgetShape> {
        vec![
            GadgetShape {
                arity: self.chunk,
                degree: 3,
                num_outputs: 1,
                calls: self.range_calls(),
            },
            GadgetShape {
                arity: 2,
                degree: 2,
                num_outputs: 1,
                calls: 1,
            },
        ]
    }
    fn gadgets(&self, joint_rand: &[F]) -> Result<Vec<Box<dyn Gadget<F>>>, FlpError> {
        Ok(vec![
            Box::new(ParallelSum::weighted(
                PolyEval::range_check(3),
                joint_rand[..self.chunk].to_vec(),
            )),
            Box::new(Mul),
        ])
    }
    fn eval(
        &self,
        gadgets: &mut [&mut dyn GadgetOracle<F>],
        input: &[F],
        joint_rand: &[F],
        _num_shares: usize,
        output: &mut [F],
    ) -> Result<(), FlpError> {
        let outer = &joint_rand[self.chunk..];
        let mut out = [F::ZERO];
        let mut acc = F::ZERO;
        for (k, chunk) in input[3..].chunks(self.chunk).enumerate() {
            let mut padded = chunk.to_vec();
            padded.resize(self.chunk, F::ZERO);
            gadgets[0].call(&padded, &mut out)?;
            acc += outer[k] * out[0];
        }
        output[0] = acc;
        gadgets[1].call(&input[..2], &mut out)?;
        output[1] = out[0] - input[2];
        Ok(())
    }
}

fn random_vec(rng: &mut ChaCha20Rng, n: usize) -> Vec<F> {
    (0..n).map(|_| F::random(rng)).collect()
}

fn valid_input(rng: &mut ChaCha20Rng, len: usize) -> Vec<F> {
    let a = F::random(rng);
    let b = F::random(rng);
    let mut x = vec![a, b, a * b];
    x.extend((3..len).map(|_| F::from_u64(rng.next_u64() % 3)));
    x
}

fn split(rng: &mut ChaCha20Rng, v: &[F], n: usize) -> Vec<Vec<F>> {
    let mut shares: Vec<Vec<F>> = (1..n).map(|_| random_vec(rng, v.len())).collect();
    let mut first = v.to_vec();
    for s in &shares {
        for (f, x) in first.iter_mut().zip(s) {
            *f -= *x;
        }
    }
    shares.insert(0, first);
    shares
}

/// Runs prove → shares → query → sum → decide.
fn run(circuit: &TestCircuit, input: &[F], rng: &mut ChaCha20Rng, tamper: Option<usize>) -> bool {
    let joint_rand = random_vec(rng, circuit.joint_rand_len());
    let prove_rand = random_vec(rng, circuit.prove_rand_len());
    let query_rand = random_vec(rng, circuit.query_rand_len());
    let mut proof = prove(circuit, input, &prove_rand, &joint_rand).unwrap();
    if let Some(i) = tamper {
        proof[i] += F::ONE;
    }
    let num_shares = 3;
    let input_shares = split(rng, input, num_shares);
    let proof_shares = split(rng, &proof, num_shares);
    let mut verifier = vec![F::ZERO; circuit.verifier_len()];
    for (x, p) in input_shares.iter().zip(&proof_shares) {
        let v = query(circuit, x, p, &query_rand, &joint_rand, num_shares).unwrap();
        for (a, b) in verifier.iter_mut().zip(v) {
            *a += b;
        }
    }
    decide(circuit, &verifier, &joint_rand).unwrap()
}

#[test]
fn honest_proofs_are_accepted() {
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    for (len, chunk, s) in [(4, 1, 1), (20, 4, 1), (50, 7, 2), (103, 10, 3)] {
        let circuit = TestCircuit {
            len,
            chunk,
            query_points: s,
        };
        for _ in 0..5 {
            let x = valid_input(&mut rng, len);
            let jr = random_vec(&mut rng, circuit.joint_rand_len());
            assert!(circuit.is_valid(&x, &jr).unwrap());
            assert!(
                run(&circuit, &x, &mut rng, None),
                "len {len} chunk {chunk} s {s}"
            );
        }
    }
}

#[test]
fn invalid_inputs_and_tampered_proofs_are_rejected() {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let circuit = TestCircuit {
        len: 40,
        chunk: 6,
        query_points: 2,
    };
    for trial in 0..30 {
        // An entry out of range, or a wrong product.
        let mut x = valid_input(&mut rng, 40);
        if trial % 2 == 0 {
            x[3 + (trial % 37)] = F::from_u64(3 + trial as u64);
        } else {
            x[2] += F::ONE;
        }
        assert!(
            !run(&circuit, &x, &mut rng, None),
            "invalid input, trial {trial}"
        );
        // A valid input with any one proof element changed.
        let x = valid_input(&mut rng, 40);
        let position = (rng.next_u64() as usize) % circuit.proof_len();
        assert!(
            !run(&circuit, &x, &mut rng, Some(position)),
            "tampered element {position}"
        );
    }
}

#[test]
fn prover_polynomial_equals_eval_poly_of_wire_polynomials() {
    // Rebuild the wire polynomials from the proof's seeds and the inputs, and check the
    // proof polynomial against the coefficient-form definition `eval_poly`.
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let circuit = TestCircuit {
        len: 23,
        chunk: 4,
        query_points: 2,
    };
    let x = valid_input(&mut rng, 23);
    let joint_rand = random_vec(&mut rng, circuit.joint_rand_len());
    let prove_rand = random_vec(&mut rng, circuit.prove_rand_len());
    let proof = prove(&circuit, &x, &prove_rand, &joint_rand).unwrap();
    let shape = circuit.gadget_shapes()[0];
    let s = 2;
    let p = shape.domain_size(s);
    let domain = crate::ntt::NttDomain::<F>::at_least(p).unwrap();
    let mut wires = vec![vec![F::ZERO; p]; shape.arity];
    for i in 0..s {
        for j in 0..shape.arity {
            wires[j][i] = prove_rand[i * shape.arity + j];
        }
    }
    for (k, chunk) in x[3..].chunks(4).enumerate() {
        for (j, v) in chunk.iter().enumerate() {
            wires[j][s + k] = *v;
        }
    }
    for w in &mut wires {
        domain.inverse(w).unwrap();
    }
    let gadget = &circuit.gadgets(&joint_rand).unwrap()[0];
    let expected = gadget.eval_poly(&wires).unwrap().remove(0);
    let got = &proof[s * shape.arity..][..shape.proof_poly_len(s)];
    let mut expected = expected;
    expected.resize(got.len(), F::ZERO);
    assert_eq!(got, &expected[..]);
}

#[test]
fn length_errors_are_reported() {
    let circuit = TestCircuit {
        len: 10,
        chunk: 3,
        query_points: 1,
    };
    let jr = vec![F::ONE; circuit.joint_rand_len()];
    assert!(matches!(
        prove(
            &circuit,
            &[F::ZERO; 9],
            &vec![F::ZERO; circuit.prove_rand_len()],
            &jr
        ),
        Err(FlpError::Length { what: "input", .. })
    ));
    assert!(matches!(
        query(&circuit, &[F::ZERO; 10], &[F::ZERO; 3], &[F::ONE], &jr, 2),
        Err(FlpError::Length { what: "proof", .. })
    ));
    assert!(matches!(
        decide(&circuit, &[F::ZERO; 2], &jr),
        Err(FlpError::Length { .. })
    ));
}

#[test]
fn query_points_in_domain_or_repeated_are_refused() {
    let mut rng = ChaCha20Rng::from_seed([13; 32]);
    let circuit = TestCircuit {
        len: 10,
        chunk: 3,
        query_points: 2,
    };
    let x = valid_input(&mut rng, 10);
    let jr = random_vec(&mut rng, circuit.joint_rand_len());
    let pr = random_vec(&mut rng, circuit.prove_rand_len());
    let proof = prove(&circuit, &x, &pr, &jr).unwrap();
    let t = F::random(&mut rng);
    let u = F::random(&mut rng);
    let repeated = [t, t, u, F::random(&mut rng)];
    assert_eq!(
        query(&circuit, &x, &proof, &repeated, &jr, 1),
        Err(FlpError::BadQueryPoint)
    );
    let in_domain = [F::ONE, t, u, F::random(&mut rng)];
    assert_eq!(
        query(&circuit, &x, &proof, &in_domain, &jr, 1),
        Err(FlpError::BadQueryPoint)
    );
}

/// [`TestCircuit`] with the product checked as `(s·x_0)·(x_1/s)`, its calls made
/// through [`GadgetOracle::call_runs`] (the range chunks unpadded, the run's width pads
/// them; the product as two scaled runs) when `by_runs`, else through
/// [`GadgetOracle::call`] on the inputs formed here. `overlong` makes one run longer
/// than its width.
struct RunsCircuit {
    inner: TestCircuit,
    scale: F,
    by_runs: bool,
    overlong: bool,
    /// Declares that no call reads a gadget output, so the prover defers evaluating
    /// the gadgets ([`Validity::calls_read_gadget_outputs`]).
    deferred: bool,
}

impl RunsCircuit {
    fn call(
        &self,
        gadget: &mut dyn GadgetOracle<F>,
        runs: &[WireRun<'_, F>],
        out: &mut [F],
    ) -> Result<(), FlpError> {
        if self.by_runs {
            return gadget.call_runs(runs, out);
        }
        let mut inputs = Vec::new();
        for run in runs {
            inputs.extend(run.values.iter().map(|v| *v * run.scale));
            inputs.resize(inputs.len() - run.values.len() + run.width, F::ZERO);
        }
        gadget.call(&inputs, out)
    }
}

impl Validity<F> for RunsCircuit {
    fn input_len(&self) -> usize {
        self.inner.input_len()
    }
    fn output_len(&self) -> usize {
        self.inner.output_len()
    }
    fn joint_rand_len(&self) -> usize {
        self.inner.joint_rand_len()
    }
    fn num_query_points(&self) -> usize {
        self.inner.num_query_points()
    }
    fn gadget_shapes(&self) -> Vec<GadgetShape> {
        self.inner.gadget_shapes()
    }
    fn gadgets(&self, joint_rand: &[F]) -> Result<Vec<Box<dyn Gadget<F>>>, FlpError> {
        self.inner.gadgets(joint_rand)
    }
    fn calls_read_gadget_outputs(&self) -> bool {
        !self.deferred
    }
    fn eval(
        &self,
        gadgets: &mut [&mut dyn GadgetOracle<F>],
        input: &[F],
        joint_rand: &[F],
        _num_shares: usize,
        output: &mut [F],
    ) -> Result<(), FlpError> {
        let chunk = self.inner.chunk;
        let outer = &joint_rand[chunk..];
        let mut out = [F::ZERO];
        let mut acc = F::ZERO;
        for (k, values) in input[3..].chunks(chunk).enumerate() {
            let run = WireRun {
                values,
                scale: F::ONE,
                width: chunk,
            };
            self.call(&mut *gadgets[0], &[run], &mut out)?;
            acc += outer[k] * out[0];
        }
        output[0] = acc;
        let first = if self.overlong {
            &input[..2]
        } else {
            &input[..1]
        };
        let runs = [
            WireRun {
                values: first,
                scale: self.scale,
                width: 1,
            },
            WireRun {
                values: &input[1..2],
                scale: self.scale.inv(),
                width: 1,
            },
        ];
        self.call(&mut *gadgets[1], &runs, &mut out)?;
        output[1] = out[0] - input[2];
        Ok(())
    }
}

#[test]
fn calls_by_runs_prove_and_verify_exactly_as_calls_by_inputs() {
    let mut rng = ChaCha20Rng::from_seed([14; 32]);
    for (len, chunk, s) in [(4, 1, 1), (23, 4, 2), (50, 7, 2), (103, 10, 3)] {
        let scale = F::random(&mut rng);
        let circuit = |by_runs, deferred| RunsCircuit {
            inner: TestCircuit {
                len,
                chunk,
                query_points: s,
            },
            scale,
            by_runs,
            overlong: false,
            deferred,
        };
        let (by_inputs, by_runs) = (circuit(false, false), circuit(true, false));
        let x = valid_input(&mut rng, len);
        let jr = random_vec(&mut rng, by_runs.joint_rand_len());
        let pr = random_vec(&mut rng, by_runs.prove_rand_len());
        let qr = random_vec(&mut rng, by_runs.query_rand_len());
        let proof = prove(&by_inputs, &x, &pr, &jr).unwrap();
        assert_eq!(prove(&by_runs, &x, &pr, &jr).unwrap(), proof);
        // Deferring the gadgets to one batch over the domain changes no proof, and an
        // invalid input's proof neither.
        assert_eq!(prove(&circuit(true, true), &x, &pr, &jr).unwrap(), proof);
        assert_eq!(prove(&circuit(false, true), &x, &pr, &jr).unwrap(), proof);
        let mut invalid = x.clone();
        invalid[len - 1] = F::from_u64(7);
        assert_eq!(
            prove(&circuit(true, true), &invalid, &pr, &jr).unwrap(),
            prove(&by_inputs, &invalid, &pr, &jr).unwrap()
        );
        // One share of three: the verifier's sums see shares, not valid inputs.
        let shares = split(&mut rng, &x, 3);
        let proofs = split(&mut rng, &proof, 3);
        let verifier = query(&by_runs, &shares[1], &proofs[1], &qr, &jr, 3).unwrap();
        assert_eq!(
            verifier,
            query(&by_inputs, &shares[1], &proofs[1], &qr, &jr, 3).unwrap(),
            "len {len} chunk {chunk} s {s}"
        );
        let mut bad = valid_input(&mut rng, len);
        bad[2] += F::ONE;
        assert!(by_runs.is_valid(&x, &jr).unwrap());
        assert!(!by_runs.is_valid(&bad, &jr).unwrap());
    }
}

#[test]
fn a_run_longer_than_its_width_is_a_length_error() {
    let mut rng = ChaCha20Rng::from_seed([15; 32]);
    let circuit = RunsCircuit {
        inner: TestCircuit {
            len: 10,
            chunk: 3,
            query_points: 2,
        },
        scale: F::ONE,
        by_runs: true,
        overlong: true,
        deferred: false,
    };
    let x = valid_input(&mut rng, 10);
    let jr = random_vec(&mut rng, circuit.joint_rand_len());
    let pr = random_vec(&mut rng, circuit.prove_rand_len());
    let qr = random_vec(&mut rng, circuit.query_rand_len());
    let overlong = |e: &FlpError| {
        matches!(
            e,
            FlpError::Length {
                what: "wire run",
                ..
            }
        )
    };
    assert!(prove(&circuit, &x, &pr, &jr).is_err_and(|e| overlong(&e)));
    let deferred = RunsCircuit {
        deferred: true,
        inner: TestCircuit { ..circuit.inner },
        ..circuit
    };
    assert!(prove(&deferred, &x, &pr, &jr).is_err_and(|e| overlong(&e)));
    let proof = prove(&circuit.inner, &x, &pr, &jr).unwrap();
    assert!(query(&circuit, &x, &proof, &qr, &jr, 1).is_err_and(|e| overlong(&e)));
    assert!(circuit.is_valid(&x, &jr).is_err_and(|e| overlong(&e)));
}
