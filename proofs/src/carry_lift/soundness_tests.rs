//! Cheating-client tests: every case must be rejected every time. The cheating client
//! uses [`CarryLift::shard_with_witness`], which skips the client-side checks and
//! proves whatever shares and witness it is given, with honestly derived joint
//! randomness (the strongest position short of breaking the hash).

use super::*;
use cairn_mpc::secret::{SecretVec, Seed};
use cairn_mpc::sharing::ShareContext;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const TASK: [u8; 32] = [7; 32];
const REPORT: [u8; 16] = [9; 16];
const TRIALS: usize = 12;
/// Every cheating client is tried against both joint-randomness hashes.
const HASHES: [JointRandHash; 2] = [JointRandHash::Sha256, JointRandHash::Blake3];

fn lift(d: usize, n: usize, bits: u32, bound: u64, hash: JointRandHash) -> CarryLift {
    CarryLift::new(CarryLiftParams {
        dimension: d,
        num_aggregators: n,
        bits,
        norm_bound: bound,
        chunk: None,
        joint_rand_hash: hash,
    })
    .unwrap()
}

/// Runs every aggregator and decides; also checks all aggregators agree.
fn verify(
    cl: &CarryLift,
    report: Report,
    report_id: &[u8; 16],
    vk: &Seed,
) -> Result<(), CarryLiftError> {
    let (public, shares) = report.into_input_shares();
    let mut states = Vec::new();
    let mut verifiers = Vec::new();
    for (j, share) in shares.iter().enumerate() {
        let (state, v) = cl.prepare_init(j, vk, &TASK, report_id, &public, share)?;
        // The verifier share must survive its encoding.
        let bytes = cairn_mpc::codec::Encode::to_bytes(&v);
        assert_eq!(cl.decode_verifier_share(&bytes).unwrap(), v);
        states.push(state);
        verifiers.push(v);
    }
    let first = cl.decide(&states[0], &verifiers);
    for s in &states[1..] {
        assert_eq!(cl.decide(s, &verifiers), first);
    }
    first
}

/// What an honest client would share, with the pieces exposed for tampering.
struct Parts {
    ctx: ShareContext,
    leader_words: Vec<u32>,
    seeds: Vec<[u8; 32]>,
    sums: Vec<u64>,
    /// `[c | δ]`.
    witness: Vec<Field>,
}

fn honest_parts(cl: &CarryLift, x: &[i64], rng: &mut ChaCha20Rng) -> Parts {
    let ctx = ShareContext::new(TASK, REPORT);
    let q = cl.q();
    let shifted: Vec<u32> = x.iter().map(|v| (*v + (q / 2) as i64) as u32).collect();
    let seeds: Vec<[u8; 32]> = (1..cl.params.num_aggregators)
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    let seed_objs: Vec<Seed> = seeds.iter().map(|s| Seed::from_bytes(*s)).collect();
    let (words, sums) = cl.share_words(&ctx, &shifted, &seed_objs).unwrap();
    let sums = sums.expose_secret().to_vec();
    let mut witness: Vec<Field> = sums
        .iter()
        .zip(&shifted)
        .map(|(s, xs)| Field::from_u64((s - u64::from(*xs)) / q))
        .collect();
    let norm: u128 = x.iter().map(|v| (v.unsigned_abs() as u128).pow(2)).sum();
    // Out-of-bound inputs (cheaters) get digits of 0; tests replace them.
    witness.extend(slack_digits(
        cl,
        (cl.norm_bound_sq as i128 - norm as i128).max(0),
    ));
    Parts {
        ctx,
        leader_words: words.expose_secret().to_vec(),
        seeds,
        sums,
        witness,
    }
}

/// Base-n digits of a non-negative slack (panics on negative: tests only).
fn slack_digits(cl: &CarryLift, slack: i128) -> Vec<Field> {
    assert!(slack >= 0);
    let n = cl.params.num_aggregators as i128;
    let mut s = slack;
    (0..cl.num_digits())
        .map(|_| {
            let digit = s % n;
            s /= n;
            Field::from_u64(digit as u64)
        })
        .collect()
}

fn cheat(cl: &CarryLift, parts: &Parts, rng: &mut ChaCha20Rng) -> Report {
    cl.shard_with_witness(
        &parts.ctx,
        SecretVec::new(parts.leader_words.clone()),
        parts.seeds.iter().map(|s| Seed::from_bytes(*s)).collect(),
        &parts.sums,
        &parts.witness,
        rng,
    )
    .unwrap()
}

/// The lifted vector the aggregators will see, as centred integers.
fn lifted(cl: &CarryLift, parts: &Parts) -> Vec<i128> {
    let q = Field::from_u64(cl.q());
    let half = Field::from_u64(cl.q() / 2);
    parts
        .sums
        .iter()
        .zip(&parts.witness)
        .map(|(s, c)| (Field::from_u64(*s) - q * *c - half).to_centred_i128())
        .collect()
}

fn small_input(rng: &mut ChaCha20Rng, d: usize, max: i64) -> Vec<i64> {
    (0..d)
        .map(|_| (rng.next_u64() % (2 * max as u64 + 1)) as i64 - max)
        .collect()
}

fn vk(rng: &mut ChaCha20Rng) -> Seed {
    Seed::generate(rng)
}

#[test]
fn honest_shard_through_cheat_path_is_accepted() {
    for hash in HASHES {
        // Sanity check of the harness: unmodified honest parts verify.
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        for n in [2, 3] {
            let cl = lift(20, n, 16, 1000, hash);
            let x = small_input(&mut rng, 20, 100);
            let parts = honest_parts(&cl, &x, &mut rng);
            assert_eq!(
                lifted(&cl, &parts),
                x.iter().map(|v| i128::from(*v)).collect::<Vec<_>>()
            );
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
                Ok(())
            );
        }
    }
}

#[test]
fn huge_coordinate_that_wraps_the_norm_is_rejected() {
    for hash in HASHES {
        // X_1 = ±2^48, X_2 = 1, rest 0: ‖X‖² = 2^96 + 1 ≡ 0 (mod p), so the norm equation
        // holds with the slack digits of B². Only the carry range check stops it.
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let cl = lift(8, 2, 16, 5000, hash);
        let q = Field::from_u64(cl.q());
        let half = Field::from_u64(cl.q() / 2);
        for trial in 0..TRIALS {
            let mut parts = honest_parts(&cl, &[0; 8], &mut rng);
            let target = if trial % 2 == 0 {
                Field::from_u64(1 << 48)
            } else {
                -Field::from_u64(1 << 48)
            };
            // X_i = S_i − q·c_i − q/2  ⇒  c_i = (S_i − q/2 − X_i)/q.
            parts.witness[1] = (Field::from_u64(parts.sums[1]) - half - target) * q.inv();
            parts.witness[2] = (Field::from_u64(parts.sums[2]) - half - Field::ONE) * q.inv();
            let x_lift = lifted(&cl, &parts);
            assert_eq!(x_lift[1].abs(), 1 << 48);
            let norm_mod_p = x_lift.iter().fold(Field::ZERO, |acc, v| {
                acc + Field::from_i64(*v as i64) * Field::from_i64(*v as i64)
            });
            assert_eq!(
                norm_mod_p,
                Field::ZERO,
                "the attack makes the norm wrap to 0"
            );
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
                Err(CarryLiftError::VerificationFailed),
                "trial {trial}"
            );
        }
    }
}

#[test]
fn norm_just_above_the_bound_is_rejected() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let bound = 100u64;
        let cl = lift(6, 2, 16, bound, hash);
        // The honest client refuses it.
        let mut x = vec![0i64; 6];
        x[2] = bound as i64 + 1;
        assert_eq!(
            cl.shard(&TASK, &REPORT, &x, &mut rng).err(),
            Some(CarryLiftError::NormTooLarge)
        );
        for trial in 0..TRIALS {
            // The shares and carries an honest client would make for x; the slack is forged.
            let mut parts = honest_parts(&cl, &x, &mut rng);
            parts.witness.truncate(6);
            let slack = i128::from(bound * bound) - i128::from((bound + 1) * (bound + 1));
            match trial % 3 {
                // Digits of 0 (equation off by 2B + 1).
                0 => parts.witness.extend(slack_digits(&cl, 0)),
                // The negative slack as a single field "digit".
                1 => {
                    parts.witness.extend(slack_digits(&cl, 0));
                    parts.witness[6] = Field::from_i64(slack as i64);
                }
                // All-ones digits (the largest representable slack): wrong sum.
                _ => parts.witness.extend(vec![Field::ONE; cl.num_digits()]),
            }
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
                Err(CarryLiftError::VerificationFailed),
                "trial {trial}"
            );
        }
    }
}

#[test]
fn carries_outside_the_range_are_rejected_even_with_a_consistent_slack() {
    for hash in HASHES {
        // b = 8 and a large B, so the shifted coordinate still fits the norm and the
        // cheater can supply a *correct* slack for the lifted vector: only the range
        // check on the carry catches it.
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        for n in [2usize, 3] {
            let cl = lift(10, n, 8, 5000, hash);
            for trial in 0..TRIALS {
                let x = small_input(&mut rng, 10, 50);
                let mut parts = honest_parts(&cl, &x, &mut rng);
                let i = trial % 10;
                parts.witness[i] = if trial % 2 == 0 {
                    Field::from_u64(n as u64)
                } else {
                    -Field::ONE
                };
                let x_lift = lifted(&cl, &parts);
                let norm: i128 = x_lift.iter().map(|v| v * v).sum();
                let slack = i128::from(cl.norm_bound_sq as u64) - norm;
                assert!(slack >= 0, "test setup: the shifted vector fits the bound");
                parts.witness.truncate(10);
                parts.witness.extend(slack_digits(&cl, slack));
                let key = vk(&mut rng);
                assert_eq!(
                    verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
                    Err(CarryLiftError::VerificationFailed),
                    "n {n} trial {trial}"
                );
            }
        }
    }
}

#[test]
fn carry_off_by_one_with_a_compensating_carry_is_rejected() {
    for hash in HASHES {
        // x at norm exactly B; c_i + 1 and c_j − 1 (both stay in {0, 1}) keep Σ X but raise
        // ‖X‖² by 2q² + 2q(x_j − x_i) > 0. The cheater keeps the honest slack.
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let cl = lift(4, 2, 8, 100, hash);
        let x = vec![60i64, -80, 0, 0]; // 3600 + 6400 = 100².
        let mut done = 0;
        while done < TRIALS {
            let mut parts = honest_parts(&cl, &x, &mut rng);
            let zero = (0..4).find(|i| parts.witness[*i] == Field::ZERO);
            let one = (0..4).find(|i| parts.witness[*i] == Field::ONE);
            let (Some(i), Some(j)) = (zero, one) else {
                continue;
            };
            parts.witness[i] += Field::ONE;
            parts.witness[j] -= Field::ONE;
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
                Err(CarryLiftError::VerificationFailed)
            );
            done += 1;
        }
    }
}

#[test]
fn in_range_wrong_carry_with_valid_norm_contributes_only_a_bounded_vector() {
    for hash in HASHES {
        // Documented behaviour (module docs): a wrong carry inside {0, …, n−1} shifts X_i by
        // q; if the shifted X still has norm ≤ B and the slack matches, the report is
        // valid, and what is aggregated is exactly that X.
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let cl = lift(3, 2, 8, 1000, hash);
        let x = vec![10i64, 0, 0];
        let mut parts = honest_parts(&cl, &x, &mut rng);
        parts.witness[0] = Field::ONE - parts.witness[0];
        let x_lift = lifted(&cl, &parts);
        let norm: i128 = x_lift.iter().map(|v| v * v).sum();
        assert!(norm <= 1_000_000);
        parts.witness.truncate(3);
        parts.witness.extend(slack_digits(&cl, 1_000_000 - norm));
        let key = vk(&mut rng);
        assert_eq!(
            verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
            Ok(())
        );
    }
}

#[test]
fn wrong_slack_decompositions_are_rejected() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let cl = lift(5, 2, 16, 1000, hash);
        for trial in 0..TRIALS {
            let x = small_input(&mut rng, 5, 100);
            let mut parts = honest_parts(&cl, &x, &mut rng);
            let digits = 5..5 + cl.num_digits();
            let k = digits.start + trial % cl.num_digits();
            if trial % 2 == 0 {
                // Flip one bit.
                parts.witness[k] = Field::ONE - parts.witness[k];
            } else {
                // Same value with a non-binary digit: 2·2^k instead of 2^(k+1)... when the
                // next bit is set, move it down as a digit 2; else put a 2 and fix nothing.
                let next = k + 1;
                if next < digits.end && parts.witness[next] == Field::ONE {
                    parts.witness[next] = Field::ZERO;
                    parts.witness[k] += Field::from_u64(2);
                } else {
                    parts.witness[k] = Field::from_u64(2);
                }
            }
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, cheat(&cl, &parts, &mut rng), &REPORT, &key),
                Err(CarryLiftError::VerificationFailed),
                "trial {trial}"
            );
        }
    }
}

fn honest_report(cl: &CarryLift, rng: &mut ChaCha20Rng) -> Report {
    let x = small_input(rng, cl.params.dimension, 20);
    cl.shard(&TASK, &REPORT, &x, rng).unwrap()
}

#[test]
fn tampered_leader_proof_share_is_rejected() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let cl = lift(30, 3, 16, 1000, hash);
        for _ in 0..TRIALS {
            let mut report = honest_report(&cl, &mut rng);
            let proof = report.leader_share.proof_share.expose_secret_mut();
            let i = (rng.next_u64() as usize) % proof.len();
            proof[i] += Field::from_u64(1 + rng.next_u64() % 1000);
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, report, &REPORT, &key),
                Err(CarryLiftError::VerificationFailed)
            );
        }
    }
}

#[test]
fn tampered_shares_fail_the_joint_randomness_check() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let cl = lift(12, 3, 16, 1000, hash);
        for trial in 0..TRIALS {
            let mut report = honest_report(&cl, &mut rng);
            match trial % 3 {
                0 => {
                    let mut bytes = *report.helper_shares[trial % 2].seed.expose_secret();
                    bytes[trial % 32] ^= 1;
                    report.helper_shares[trial % 2] =
                        HelperInputShare::from_seed(Seed::from_bytes(bytes));
                }
                1 => report.leader_share.words.expose_secret_mut()[trial % 12] ^= 1,
                _ => report.leader_share.field_share.expose_secret_mut()[trial % 12] += Field::ONE,
            }
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, report, &REPORT, &key),
                Err(CarryLiftError::VerificationFailed)
            );
        }
    }
}

#[test]
fn joint_randomness_claims_that_do_not_match_the_shares_are_rejected() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([10; 32]);
        let cl = lift(12, 3, 16, 1000, hash);
        for trial in 0..TRIALS {
            let mut report = honest_report(&cl, &mut rng);
            let j = trial % 3;
            report.public_share.parts[j][trial % 32] ^= 0x80;
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, report, &REPORT, &key),
                Err(CarryLiftError::VerificationFailed)
            );
        }
        // A client that proves under joint randomness derived from *other* parts and
        // claims those parts: the aggregators' own parts do not match.
        let mut report = honest_report(&cl, &mut rng);
        let other = honest_report(&cl, &mut rng);
        report.public_share = other.public_share;
        let key = vk(&mut rng);
        assert_eq!(
            verify(&cl, report, &REPORT, &key),
            Err(CarryLiftError::VerificationFailed)
        );
    }
}

#[test]
fn report_replayed_under_another_id_is_rejected() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([11; 32]);
        let cl = lift(12, 2, 16, 1000, hash);
        for trial in 0..TRIALS {
            let report = honest_report(&cl, &mut rng);
            let mut other_id = REPORT;
            other_id[trial % 16] ^= 1;
            let key = vk(&mut rng);
            assert_eq!(
                verify(&cl, report, &other_id, &key),
                Err(CarryLiftError::VerificationFailed)
            );
        }
    }
}

#[test]
fn mismatched_joint_rand_seed_in_a_verifier_share_is_rejected() {
    for hash in HASHES {
        let mut rng = ChaCha20Rng::from_seed([12; 32]);
        let cl = lift(12, 2, 16, 1000, hash);
        let (public, shares) = honest_report(&cl, &mut rng).into_input_shares();
        let key = vk(&mut rng);
        let (s0, v0) = cl
            .prepare_init(0, &key, &TASK, &REPORT, &public, &shares[0])
            .unwrap();
        let (_, mut v1) = cl
            .prepare_init(1, &key, &TASK, &REPORT, &public, &shares[1])
            .unwrap();
        assert_eq!(cl.decide(&s0, &[v0.clone(), v1.clone()]), Ok(()));
        v1.joint_rand_seed[0] ^= 1;
        assert_eq!(
            cl.decide(&s0, &[v0, v1]),
            Err(CarryLiftError::VerificationFailed)
        );
    }
}
