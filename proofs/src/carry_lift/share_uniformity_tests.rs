//! The shares a client really sends are uniform: every part of an
//! aggregator's input share — its `Z_q` words, its share of the carry witness and slack
//! digits, its proof share — and every pair of shares that n − 1 corrupt aggregators
//! could hold together, for n ∈ {2, 3, 5}. A pair is tested through its sum and its
//! difference (a linear leak between two shares shows in one of them), and each share
//! against the client's own input (`share − x'`).
//!
//! Each χ² has 255 degrees of freedom. A run makes 118 of them (8 at n = 2, 30 at n = 3,
//! 80 at n = 5), each held to a false-failure rate of 4.7e−9, so the run's is below
//! 1e−6 (Bonferroni), the suite's standard. Power check: the sum of *all* n shares is
//! the secret, and the same tests must see it.

use super::*;
use crate::words::{for_each_field_chunk, for_each_word_chunk};
use cairn_mpc::prg::Usage;
use cairn_mpc::sharing::ShareContext;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const TASK: [u8; 32] = [0x51; 32];
const BITS: u32 = 8;
const D: usize = 4096;

/// Upper 4.7e−9 quantile of χ² with 255 degrees of freedom, Wilson–Hilferty:
/// 255·(1 − 2/(9·255) + z·√(2/(9·255)))³ with z = 5.74 (the normal's 4.7e−9 tail)
/// ≈ 406.9.
const CHI2_CRITICAL: f64 = 407.0;

/// One aggregator's whole input share, as the values it holds.
#[derive(Default)]
struct Share {
    words: Vec<u32>,
    witness: Vec<Field>,
    proof: Vec<Field>,
}

fn chi_squared(counts: &[u64; 256]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / 256.0;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

fn word_counts(values: impl Iterator<Item = u32>) -> [u64; 256] {
    let mut counts = [0u64; 256];
    for v in values {
        counts[(v & 0xFF) as usize] += 1;
    }
    counts
}

/// 256 equal ranges of `[0, p)`.
fn field_counts(values: impl Iterator<Item = Field>) -> [u64; 256] {
    let mut counts = [0u64; 256];
    for v in values {
        counts[(v.as_u128() * 256 / Field::MODULUS) as usize] += 1;
    }
    counts
}

/// Shards `reports` reports of the structured vector `x` for `n` aggregators and returns
/// every aggregator's share (helpers' seeds expanded exactly as the helpers expand
/// them), concatenated over the reports, and `x' = x + q/2` repeated.
fn shares(n: usize, reports: usize, x: &[i64], seed: u8) -> (Vec<Share>, Vec<u32>) {
    let cl = CarryLift::new(CarryLiftParams {
        dimension: D,
        num_aggregators: n,
        bits: BITS,
        norm_bound: 400,
        chunk: None,
        joint_rand_hash: JointRandHash::default(),
    })
    .unwrap();
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut all: Vec<Share> = (0..n).map(|_| Share::default()).collect();
    let mut shifted = Vec::new();
    let entries = cl.circuit.range_entries();
    for r in 0..reports {
        let report_id = [u8::try_from(r).unwrap(); 16];
        let ctx = ShareContext::new(TASK, report_id);
        let report = cl.shard(&TASK, &report_id, x, &mut rng).unwrap();
        let leader = &report.leader_share;
        all[0].words.extend_from_slice(leader.words.expose_secret());
        all[0]
            .witness
            .extend_from_slice(leader.field_share.expose_secret());
        all[0]
            .proof
            .extend_from_slice(leader.proof_share.expose_secret());
        for (j, helper) in report.helper_shares.iter().enumerate() {
            let party = u8::try_from(j + 1).unwrap();
            let share = &mut all[j + 1];
            for_each_word_chunk(BITS, &helper.seed, &ctx, party, D, |_, w| {
                share.words.extend_from_slice(w);
            });
            for_each_field_chunk(
                &helper.seed,
                &ctx,
                party,
                Usage::FieldShare,
                entries,
                |_, v| {
                    share.witness.extend_from_slice(v);
                },
            );
            for_each_field_chunk(
                &helper.seed,
                &ctx,
                party,
                Usage::ProofShare,
                cl.proof_len(),
                |_, v| share.proof.extend_from_slice(v),
            );
        }
        shifted.extend(x.iter().map(|v| (*v + 128) as u32));
    }
    (all, shifted)
}

/// A vector with structure a leak would carry into a share: period 11, mixed signs.
fn structured_x() -> Vec<i64> {
    (0..D).map(|i| (i % 11) as i64 - 5).collect()
}

fn assert_uniform(what: &str, counts: &[u64; 256], tests: &mut usize) {
    *tests += 1;
    let chi2 = chi_squared(counts);
    assert!(chi2 < CHI2_CRITICAL, "{what}: χ² = {chi2:.1}");
}

/// Every single share, every pair's sum and difference, every share minus `x'`.
fn check(n: usize, shares: &[Share], shifted: &[u32]) -> usize {
    let mut tests = 0;
    let q_mask = (1u32 << BITS) - 1;
    for (i, a) in shares.iter().enumerate() {
        assert_uniform(
            &format!("n={n} words {i}"),
            &word_counts(a.words.iter().copied()),
            &mut tests,
        );
        assert_uniform(
            &format!("n={n} words {i} − x'"),
            &word_counts(
                a.words
                    .iter()
                    .zip(shifted)
                    .map(|(w, x)| w.wrapping_sub(*x) & q_mask),
            ),
            &mut tests,
        );
        assert_uniform(
            &format!("n={n} witness {i}"),
            &field_counts(a.witness.iter().copied()),
            &mut tests,
        );
        assert_uniform(
            &format!("n={n} proof {i}"),
            &field_counts(a.proof.iter().copied()),
            &mut tests,
        );
    }
    // Any two shares lie inside some set of n − 1 when n ≥ 3.
    if n >= 3 {
        for i in 0..n {
            for j in i + 1..n {
                let (a, b) = (&shares[i], &shares[j]);
                let words = |f: fn(u32, u32) -> u32| {
                    word_counts(
                        a.words
                            .iter()
                            .zip(&b.words)
                            .map(move |(x, y)| f(*x, *y) & q_mask),
                    )
                };
                assert_uniform(
                    &format!("n={n} words {i}+{j}"),
                    &words(u32::wrapping_add),
                    &mut tests,
                );
                assert_uniform(
                    &format!("n={n} words {i}−{j}"),
                    &words(u32::wrapping_sub),
                    &mut tests,
                );
                for (name, xs, ys) in [
                    ("witness", &a.witness, &b.witness),
                    ("proof", &a.proof, &b.proof),
                ] {
                    let sum = field_counts(xs.iter().zip(ys.iter()).map(|(x, y)| *x + *y));
                    let diff = field_counts(xs.iter().zip(ys.iter()).map(|(x, y)| *x - *y));
                    assert_uniform(&format!("n={n} {name} {i}+{j}"), &sum, &mut tests);
                    assert_uniform(&format!("n={n} {name} {i}−{j}"), &diff, &mut tests);
                }
            }
        }
    }
    tests
}

#[test]
fn every_part_of_every_share_and_every_pair_of_n_minus_1_is_uniform() {
    let x = structured_x();
    let mut total = 0;
    for (n, seed) in [(2, 1u8), (3, 2), (5, 3)] {
        let (all, shifted) = shares(n, 8, &x, seed);
        // Enough samples for χ² over 256 cells in every part.
        assert!(
            all[0].proof.len() >= 256 * 20,
            "{} proof values",
            all[0].proof.len()
        );
        total += check(n, &all, &shifted);
    }
    assert_eq!(total, 118, "the Bonferroni split above assumes 118 tests");
}

#[test]
fn the_same_tests_see_the_secret_in_all_n_shares_together() {
    let x = structured_x();
    for (n, seed) in [(2, 4u8), (3, 5)] {
        let (all, shifted) = shares(n, 4, &x, seed);
        // Σ words = x' mod q: the words' sum is exactly the structured input.
        let words: Vec<u32> = (0..all[0].words.len())
            .map(|k| all.iter().map(|s| s.words[k]).fold(0, u32::wrapping_add) & 0xFF)
            .collect();
        assert_eq!(words, shifted);
        assert!(chi_squared(&word_counts(words.into_iter())) > 10.0 * CHI2_CRITICAL);
        // Σ witness = the carries and slack digits, small integers: one bucket.
        let witness = (0..all[0].witness.len()).map(|k| {
            all.iter()
                .map(|s| s.witness[k])
                .fold(Field::ZERO, |a, b| a + b)
        });
        assert!(chi_squared(&field_counts(witness)) > 10.0 * CHI2_CRITICAL);
    }
}
