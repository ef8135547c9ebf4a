//! Zero knowledge of the verification: what an aggregator sees does not depend on the
//! (valid) input. Two-sample χ² tests on bucketised coordinates, fixed seeds:
//! - the summed verifier message, one coordinate at a time (n = 2);
//! - a corrupt aggregator's whole view, its own verifier share together with the summed
//!   verifier, and two verifier coordinates jointly, at n = 2 and 3, leader or helper;
//! - power checks: the input itself is seen, and so is a prover whose blinding (the
//!   wire seeds) is removed.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::secret::Seed;
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SAMPLES: usize = 3000;
const BUCKETS: usize = 16;
/// χ² critical value for 15 degrees of freedom at significance 1e-6/8: the suite's
/// false-failure rate of 1e-6 over the 8 coordinates tested (Bonferroni), computed from
/// the regularised incomplete gamma function (37.70 at 0.001, for comparison).
const CHI2_CRITICAL_15_DF: f64 = 61.77;

/// The summed verifier of `SAMPLES` reports of `x`, one vector per report.
fn verifiers(cl: &CarryLift, x: &[i64], seed: u8) -> Vec<Vec<Field64>> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    views(cl, x, 0, &mut rng, SAMPLES)
        .into_iter()
        .map(|v| v.sum)
        .collect()
}

fn histogram(samples: &[Vec<Field64>], coordinate: usize) -> [f64; BUCKETS] {
    let mut h = [0.0; BUCKETS];
    for s in samples {
        // Low bits of a uniform Field64 element are uniform up to ≈ 2^-32.
        h[(s[coordinate].as_u64() % BUCKETS as u64) as usize] += 1.0;
    }
    h
}

/// Two-sample χ² statistic for equal sample sizes (homogeneity test).
fn chi2_two_sample(a: &[f64; BUCKETS], b: &[f64; BUCKETS]) -> f64 {
    a.iter()
        .zip(b)
        .filter(|(x, y)| **x + **y > 0.0)
        .map(|(x, y)| (x - y).powi(2) / (x + y))
        .sum()
}

#[test]
fn verifier_distribution_does_not_depend_on_the_input() {
    let d = 12;
    let cl = CarryLift::new(CarryLiftParams::new(d, 2, 1000)).unwrap();
    let zeros = vec![0i64; d];
    let mut loud = vec![0i64; d];
    loud[0] = 600;
    loud[1] = -800; // norm exactly 1000
    let a = verifiers(&cl, &zeros, 1);
    let b = verifiers(&cl, &loud, 2);
    let len = cl.verifier_len();
    // Circuit outputs (3) are zero for both; then per query point: 2m wire values and
    // 3 polynomial values. Test a spread of wire and polynomial coordinates.
    let m = cl.chunk();
    let coordinates = [
        3,
        4,
        3 + m,
        3 + m + 1,
        3 + 2 * m,
        3 + 2 * m + 2,
        len - 1,
        len - 4,
    ];
    for &c in &coordinates {
        // The circuit's outputs are zero for every valid input, both inputs included.
        for samples in [&a, &b] {
            assert!(
                samples
                    .iter()
                    .all(|v| v[0] == Field64::ZERO && v[1] == Field64::ZERO)
            );
        }
        let stat = chi2_two_sample(&histogram(&a, c), &histogram(&b, c));
        assert!(
            stat < CHI2_CRITICAL_15_DF,
            "coordinate {c}: χ² = {stat:.1} ≥ {CHI2_CRITICAL_15_DF}"
        );
    }
}

#[test]
fn the_test_detects_a_leaking_statistic() {
    // Power check of the harness: the same χ² test on a coordinate of the *lifted
    // shares sum*, which is the input itself, must reject.
    let d = 12;
    let cl = CarryLift::new(CarryLiftParams::new(d, 2, 1000)).unwrap();
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let key = Seed::generate(&mut rng);
    let sample = |x: &[i64], rng: &mut ChaCha20Rng| -> [f64; BUCKETS] {
        let mut h = [0.0; BUCKETS];
        for r in 0..SAMPLES / 10 {
            let rid = (r as u128).to_le_bytes();
            let (public, shares) = cl
                .shard(&[1; 32], &rid, x, rng)
                .unwrap()
                .into_input_shares();
            let mut total = Field64::ZERO;
            for (j, share) in shares.iter().enumerate() {
                let (state, _) = cl
                    .prepare_init(j, &key, &[1; 32], &rid, &public, share)
                    .unwrap();
                total += state.into_output_share().expose_secret()[0];
            }
            h[(total.as_u64() % BUCKETS as u64) as usize] += 1.0;
        }
        h
    };
    let mut x = vec![0i64; d];
    let h0 = sample(&x, &mut rng);
    x[0] = 5;
    let h5 = sample(&x, &mut rng);
    assert!(chi2_two_sample(&h0, &h5) > CHI2_CRITICAL_15_DF);
}

/// χ² critical value for 15 degrees of freedom at 1e−6/32: the corrupt-view test below
/// makes 32 comparisons (Bonferroni to the suite's 1e−6), computed from the regularised
/// incomplete gamma function like the one above.
const CHI2_CRITICAL_15_DF_32: f64 = 65.22;

/// What corrupt aggregator `corrupt` holds after one report's verification: its own
/// verifier share and the summed verifier (the other shares follow from the two).
struct View {
    own: Vec<Field64>,
    sum: Vec<Field64>,
}

/// Views of `SAMPLES` reports of `x` among `n` aggregators, sharded with `rng`.
fn views<R: rand_core::CryptoRng>(
    cl: &CarryLift,
    x: &[i64],
    corrupt: usize,
    rng: &mut R,
    samples: usize,
) -> Vec<View> {
    let key = Seed::generate(rng);
    let task = [2; 32];
    (0..samples)
        .map(|r| {
            let report_id: [u8; 16] = (r as u128).to_le_bytes();
            let (public, shares) = cl
                .shard(&task, &report_id, x, rng)
                .unwrap()
                .into_input_shares();
            let mut sum = vec![Field64::ZERO; cl.verifier_len()];
            let mut states = Vec::new();
            let mut verifier_shares = Vec::new();
            for (j, share) in shares.iter().enumerate() {
                let (state, v) = cl
                    .prepare_init(j, &key, &task, &report_id, &public, share)
                    .unwrap();
                for (s, e) in sum.iter_mut().zip(v.values()) {
                    *s += *e;
                }
                states.push(state);
                verifier_shares.push(v);
            }
            // Every report is valid, so every one must be accepted.
            cl.decide(&states[0], &verifier_shares).unwrap();
            let own = verifier_shares[corrupt].values().to_vec();
            View { own, sum }
        })
        .collect()
}

/// Joint histogram of the low 2 bits of two field elements per sample (16 cells).
fn joint(samples: &[View], f: impl Fn(&View) -> (Field64, Field64)) -> [f64; BUCKETS] {
    let mut h = [0.0; BUCKETS];
    for s in samples {
        let (a, b) = f(s);
        h[((a.as_u64() % 4) * 4 + b.as_u64() % 4) as usize] += 1.0;
    }
    h
}

/// Wire and polynomial coordinates of the verifier, as in the test above.
fn spread(cl: &CarryLift) -> [usize; 4] {
    let m = cl.chunk();
    [3, 3 + m + 1, 3 + 2 * m + 2, cl.verifier_len() - 1]
}

/// The two inputs compared: zero, and one at the norm bound.
fn inputs(d: usize) -> (Vec<i64>, Vec<i64>) {
    let mut loud = vec![0i64; d];
    loud[0] = 600;
    loud[1] = -800;
    (vec![0i64; d], loud)
}

/// The largest two-sample χ² over the corrupt aggregator's joint views: its own verifier
/// share with the summed verifier at one coordinate, and the summed verifier at two
/// coordinates together.
fn largest_view_statistic(a: &[View], b: &[View], coordinates: &[usize; 4]) -> (f64, String) {
    let mut worst = (0.0, String::new());
    let mut consider = |stat: f64, what: String| {
        if stat > worst.0 {
            worst = (stat, what);
        }
    };
    for &c in coordinates {
        let f = |v: &View| (v.own[c], v.sum[c]);
        consider(
            chi2_two_sample(&joint(a, f), &joint(b, f)),
            format!("own share and sum at {c}"),
        );
    }
    for pair in coordinates
        .windows(2)
        .chain([[coordinates[0], coordinates[3]].as_slice()])
    {
        let (c1, c2) = (pair[0], pair[1]);
        let f = |v: &View| (v.sum[c1], v.sum[c2]);
        consider(
            chi2_two_sample(&joint(a, f), &joint(b, f)),
            format!("sum at {c1} and {c2}"),
        );
    }
    worst
}

#[test]
fn a_corrupt_aggregators_view_does_not_depend_on_the_input() {
    // n = 2 and 3; the corrupt party is the leader or the last helper; per view, 4
    // own-and-sum joints and 4 two-coordinate joints of the summed verifier: 2·2·8 = 32
    // statistics, each held to 1e−6/32 (the largest per view is checked).
    let d = 12;
    let (zeros, loud) = inputs(d);
    let mut comparisons = 0;
    for n in [2usize, 3] {
        let cl = CarryLift::new(CarryLiftParams::new(d, n, 1000)).unwrap();
        for corrupt in [0, n - 1] {
            let seed = (10 * n + corrupt) as u8;
            let a = views(
                &cl,
                &zeros,
                corrupt,
                &mut ChaCha20Rng::from_seed([seed; 32]),
                SAMPLES,
            );
            let b = views(
                &cl,
                &loud,
                corrupt,
                &mut ChaCha20Rng::from_seed([seed + 100; 32]),
                SAMPLES,
            );
            let (stat, what) = largest_view_statistic(&a, &b, &spread(&cl));
            println!("n = {n}, corrupt {corrupt}: largest χ² {stat:.1} ({what})");
            comparisons += 8;
            assert!(
                stat < CHI2_CRITICAL_15_DF_32,
                "n = {n}, corrupt {corrupt}: {what}: χ² = {stat:.1}"
            );
        }
    }
    assert_eq!(comparisons, 32);
}

/// Hands the client real randomness for seeds and blinds (`fill_bytes`) but zeros for
/// every field element it draws (`next_u64`): in `CarryLift::shard` those are exactly the
/// prover's wire seeds, the blinding of the proof.
struct NoBlindingRng {
    inner: ChaCha20Rng,
    zeroed: usize,
}

impl rand_core::TryRng for NoBlindingRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(rand_core::Rng::next_u32(&mut self.inner))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.zeroed += 1;
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rand_core::Rng::fill_bytes(&mut self.inner, dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for NoBlindingRng {}

#[test]
fn the_view_test_sees_a_prover_without_blinding() {
    // Power check: the same statistic, same sizes, on a prover whose wire seeds are
    // zero, must reject for every (n, corrupt party) the test above passes.
    let d = 12;
    let (zeros, loud) = inputs(d);
    for n in [2usize, 3] {
        let cl = CarryLift::new(CarryLiftParams::new(d, n, 1000)).unwrap();
        for corrupt in [0, n - 1] {
            let rng = |s: u8| NoBlindingRng {
                inner: ChaCha20Rng::from_seed([s; 32]),
                zeroed: 0,
            };
            let (mut ra, mut rb) = (rng(1), rng(2));
            let a = views(&cl, &zeros, corrupt, &mut ra, SAMPLES);
            let b = views(&cl, &loud, corrupt, &mut rb, SAMPLES);
            assert!(ra.zeroed > 0 && rb.zeroed > 0, "no blinding was drawn");
            let (stat, what) = largest_view_statistic(&a, &b, &spread(&cl));
            println!("unblinded, n = {n}, corrupt {corrupt}: largest χ² {stat:.1} ({what})");
            assert!(
                stat > CHI2_CRITICAL_15_DF_32,
                "n = {n}, corrupt {corrupt}: unblinded prover not seen ({what}: χ² = {stat:.1})"
            );
        }
    }
}
