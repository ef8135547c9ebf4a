//! Completeness: honest clients are always accepted, and the aggregate is the sum.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cairn_mpc::codec::Encode;
use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::secret::Seed;
use cairn_proofs::carry_lift::{CarryLift, CarryLiftParams, InputShare, JointRandHash, Report};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Encodes and decodes every message, runs all aggregators, decides; returns the
/// aggregators' shares of X on acceptance.
fn run(
    cl: &CarryLift,
    task: &[u8; 32],
    report_id: &[u8; 16],
    report: Report,
    key: &Seed,
) -> Option<Vec<Vec<Field64>>> {
    let public = cl
        .decode_public_share(&report.public_share.to_bytes())
        .unwrap();
    let mut shares = vec![InputShare::Leader(
        cl.decode_leader_share(&report.leader_share.to_bytes())
            .unwrap(),
    )];
    for h in &report.helper_shares {
        shares.push(InputShare::Helper(
            cl.decode_helper_share(&h.to_bytes()).unwrap(),
        ));
    }
    let mut states = Vec::new();
    let mut verifiers = Vec::new();
    for (j, share) in shares.iter().enumerate() {
        let (state, v) = cl
            .prepare_init(j, key, task, report_id, &public, share)
            .ok()?;
        states.push(state);
        verifiers.push(cl.decode_verifier_share(&v.to_bytes()).unwrap());
    }
    cl.decide(&states[0], &verifiers).ok()?;
    Some(
        states
            .into_iter()
            .map(|s| s.into_output_share().into_exposed_vec())
            .collect(),
    )
}

fn random_below(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    rng.next_u64() % bound
}

/// A vector with ‖x‖ ≤ B (or exactly B), coordinates in [−q/2, q/2).
fn honest_input(rng: &mut ChaCha20Rng, d: usize, q: i64) -> (Vec<i64>, u64) {
    let half = q / 2;
    let mut x = vec![0i64; d];
    let bound;
    match random_below(rng, 4) {
        // Exactly B with one coordinate, including the edge −q/2.
        0 => {
            let v = if random_below(rng, 4) == 0 {
                -half
            } else {
                1 + random_below(rng, (half - 1) as u64) as i64
            };
            x[random_below(rng, d as u64) as usize] = v;
            bound = v.unsigned_abs();
        }
        // Exactly B with a Pythagorean triple (3k, 4k) → 5k, when d ≥ 2.
        1 if d >= 2 => {
            let k = 1 + random_below(rng, ((half - 1) / 4) as u64) as i64;
            x[0] = 3 * k;
            x[1] = -4 * k;
            bound = 5 * k as u64;
        }
        // Random, with B ≥ ‖x‖ (B = ⌈‖x‖⌉ or more).
        _ => {
            let max = 1 + random_below(rng, half as u64);
            for v in x.iter_mut() {
                *v = random_below(rng, 2 * max) as i64 - max as i64;
            }
            let norm_sq: u128 = x.iter().map(|v| u128::from(v.unsigned_abs()).pow(2)).sum();
            let mut b = (norm_sq as f64).sqrt() as u64;
            while u128::from(b) * u128::from(b) < norm_sq {
                b += 1;
            }
            bound = b + random_below(rng, 3);
        }
    }
    (x, bound)
}

#[test]
fn one_thousand_random_honest_reports_are_accepted() {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let mut accepted = 0;
    for case in 0..1000u32 {
        let d = 1 + random_below(&mut rng, 24) as usize;
        let n = 2 + random_below(&mut rng, 2) as usize;
        let bits = if case % 2 == 0 { 8 } else { 16 };
        let (x, bound) = honest_input(&mut rng, d, 1i64 << bits);
        let cl = CarryLift::new(CarryLiftParams {
            dimension: d,
            num_aggregators: n,
            bits,
            norm_bound: bound,
            chunk: None,
            joint_rand_hash: if case % 3 == 0 {
                JointRandHash::Blake3
            } else {
                JointRandHash::Sha256
            },
        })
        .unwrap();
        let task = [case as u8; 32];
        let report_id = case.to_le_bytes().repeat(4).try_into().unwrap();
        let key = Seed::generate(&mut rng);
        let report = cl.shard(&task, &report_id, &x, &mut rng).unwrap();
        let shares = run(&cl, &task, &report_id, report, &key).unwrap_or_else(|| {
            panic!("case {case}: honest report rejected (d {d}, n {n}, b {bits}, B {bound})")
        });
        // The shares of X add up to x.
        let refs: Vec<&[Field64]> = shares.iter().map(|s| s.as_slice()).collect();
        assert_eq!(cl.unshard(&refs).unwrap(), x, "case {case}");
        accepted += 1;
    }
    assert_eq!(accepted, 1000);
}

#[test]
fn aggregate_of_many_reports_is_the_sum_and_chunk_choice_does_not_matter() {
    let mut rng = ChaCha20Rng::from_seed([43; 32]);
    let d = 50;
    for chunk in [None, Some(1), Some(7), Some(50)] {
        let cl = CarryLift::new(CarryLiftParams {
            dimension: d,
            num_aggregators: 3,
            bits: 16,
            norm_bound: 20_000,
            chunk,
            joint_rand_hash: JointRandHash::Blake3,
        })
        .unwrap();
        let task = [9; 32];
        let key = Seed::generate(&mut rng);
        let mut aggregates = vec![vec![Field64::ZERO; d]; 3];
        let mut expected = vec![0i64; d];
        for r in 0..20u8 {
            let x: Vec<i64> = (0..d)
                .map(|_| random_below(&mut rng, 4001) as i64 - 2000)
                .collect();
            for (e, v) in expected.iter_mut().zip(&x) {
                *e += v;
            }
            let report = cl.shard(&task, &[r; 16], &x, &mut rng).unwrap();
            let shares = run(&cl, &task, &[r; 16], report, &key).expect("accepted");
            for (agg, share) in aggregates.iter_mut().zip(shares) {
                for (a, s) in agg.iter_mut().zip(share) {
                    *a += s;
                }
            }
        }
        let refs: Vec<&[Field64]> = aggregates.iter().map(|a| a.as_slice()).collect();
        assert_eq!(cl.unshard(&refs).unwrap(), expected, "chunk {chunk:?}");
    }
}

#[test]
fn parameters_that_could_wrap_are_refused() {
    use cairn_proofs::carry_lift::CarryLiftError;
    // b = 32: (n·q)² = 2^66 > p for any d.
    let p32 = CarryLiftParams {
        bits: 32,
        ..CarryLiftParams::new(1, 2, 10)
    };
    assert_eq!(
        CarryLift::new(p32).err(),
        Some(CarryLiftError::FieldTooSmall)
    );
    // b = 16, n = 2: d·2^34 < p needs d < 2^30 − …; 2^29 is refused by the dimension cap,
    // n = 16: (16·2^16)² = 2^40, so d = 2^24 + 1 breaks d·(nq)² < p.
    let big = CarryLiftParams::new((1 << 24) + 1, 16, 10);
    assert_eq!(
        CarryLift::new(big).err(),
        Some(CarryLiftError::FieldTooSmall)
    );
    // A norm bound whose square (plus the worst-case norm) does not fit.
    let huge_b = CarryLiftParams::new(10, 2, 1 << 32);
    assert_eq!(
        CarryLift::new(huge_b).err(),
        Some(CarryLiftError::FieldTooSmall)
    );
    for bad in [
        CarryLiftParams::new(0, 2, 10),
        CarryLiftParams::new(10, 1, 10),
        CarryLiftParams::new(10, 17, 10),
        CarryLiftParams {
            bits: 12,
            ..CarryLiftParams::new(10, 2, 10)
        },
        CarryLiftParams {
            chunk: Some(0),
            ..CarryLiftParams::new(10, 2, 10)
        },
    ] {
        assert!(matches!(
            CarryLift::new(bad),
            Err(CarryLiftError::InvalidParams(_))
        ));
    }
}

#[test]
fn client_refuses_invalid_inputs() {
    use cairn_proofs::carry_lift::CarryLiftError;
    let mut rng = ChaCha20Rng::from_seed([44; 32]);
    let cl = CarryLift::new(CarryLiftParams {
        bits: 8,
        ..CarryLiftParams::new(3, 2, 100)
    })
    .unwrap();
    let t = [0; 32];
    let r = [0; 16];
    assert_eq!(
        cl.shard(&t, &r, &[1, 2], &mut rng).err(),
        Some(CarryLiftError::WrongDimension {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        cl.shard(&t, &r, &[0, 128, 0], &mut rng).err(),
        Some(CarryLiftError::CoordinateOutOfRange { index: 1 })
    );
    assert_eq!(
        cl.shard(&t, &r, &[0, 0, -129], &mut rng).err(),
        Some(CarryLiftError::CoordinateOutOfRange { index: 2 })
    );
    assert_eq!(
        cl.shard(&t, &r, &[60, 80, 1], &mut rng).err(),
        Some(CarryLiftError::NormTooLarge)
    );
    assert!(cl.shard(&t, &r, &[60, 80, 0], &mut rng).is_ok());
    assert!(cl.shard(&t, &r, &[-100, 0, 0], &mut rng).is_ok());
}

#[test]
fn a_report_proved_under_one_joint_rand_hash_is_refused_under_the_other() {
    // The hash is part of the task: aggregators recompute their parts with their own
    // and find the client's do not match, so nothing verifies across the two.
    let mut rng = ChaCha20Rng::from_seed([44; 32]);
    let params = |joint_rand_hash| CarryLiftParams {
        joint_rand_hash,
        ..CarryLiftParams::new(30, 2, 5_000)
    };
    let sha = CarryLift::new(params(JointRandHash::Sha256)).unwrap();
    let blake = CarryLift::new(params(JointRandHash::Blake3)).unwrap();
    let (task, report_id, key) = ([5; 32], [6; 16], Seed::generate(&mut rng));
    let x: Vec<i64> = (0..30).map(|i| i - 15).collect();
    for (client, aggregators) in [(&sha, &blake), (&blake, &sha)] {
        let report = client.shard(&task, &report_id, &x, &mut rng).unwrap();
        assert!(run(aggregators, &task, &report_id, report, &key).is_none());
        let report = client.shard(&task, &report_id, &x, &mut rng).unwrap();
        assert!(run(client, &task, &report_id, report, &key).is_some());
    }
}
