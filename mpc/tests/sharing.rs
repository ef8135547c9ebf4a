//! Sharing properties: reconstruction is the identity for every n and b,
//! sharing is linear, any n − 1 shares are uniform (χ²), and different domains give
//! unrelated streams.
#![allow(missing_docs, clippy::unwrap_used)]

use cairn_mpc::field::{Field64, FieldElement};
use cairn_mpc::prg::{Prg, Usage};
use cairn_mpc::secret::Seed;
use cairn_mpc::sharing::{
    MAX_PARTIES, MIN_PARTIES, ShareContext, Sharing, expand_field_share, expand_zq_share,
    reconstruct_field, reconstruct_zq, share_field, share_zq,
};
use cairn_mpc::zq::ZqWord;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn ctx(report: u8) -> ShareContext {
    ShareContext::new([0xC0; 32], [report; 16])
}

/// All n shares of a Z_q sharing, leader first.
fn zq_shares<W: ZqWord>(s: &Sharing<W>, ctx: &ShareContext, len: usize) -> Vec<Vec<W>> {
    let mut all = vec![s.leader_share.expose_secret().to_vec()];
    for (j, seed) in s.helper_seeds.iter().enumerate() {
        let party = u8::try_from(j + 1).unwrap();
        let share = expand_zq_share::<W>(seed, ctx, party, Usage::ZqShare, len).unwrap();
        all.push(share.expose_secret().to_vec());
    }
    all
}

fn field_shares(s: &Sharing<Field64>, ctx: &ShareContext, len: usize) -> Vec<Vec<Field64>> {
    let mut all = vec![s.leader_share.expose_secret().to_vec()];
    for (j, seed) in s.helper_seeds.iter().enumerate() {
        let party = u8::try_from(j + 1).unwrap();
        let share =
            expand_field_share::<Field64>(seed, ctx, party, Usage::FieldShare, len).unwrap();
        all.push(share.expose_secret().to_vec());
    }
    all
}

fn check_zq_identity_and_linearity<W: ZqWord>(rng: &mut ChaCha20Rng) {
    let len = 257;
    for n in MIN_PARTIES..=MAX_PARTIES {
        let x: Vec<W> = (0..len)
            .map(|_| W::from_u64_truncated(rng.next_u64()))
            .collect();
        let y: Vec<W> = (0..len)
            .map(|_| W::from_u64_truncated(rng.next_u64()))
            .collect();
        let (cx, cy) = (ctx(1), ctx(2));
        let sx = share_zq(&x, &cx, n, rng).unwrap();
        let sy = share_zq(&y, &cy, n, rng).unwrap();
        assert_eq!(sx.helper_seeds.len(), n - 1);
        let shares_x = zq_shares(&sx, &cx, len);
        let shares_y = zq_shares(&sy, &cy, len);
        let refs: Vec<&[W]> = shares_x.iter().map(Vec::as_slice).collect();
        assert_eq!(reconstruct_zq(&refs).unwrap(), x, "b={} n={n}", W::BITS);
        // Each party adds its two shares locally; the sums reconstruct x + y.
        let summed: Vec<Vec<W>> = shares_x
            .iter()
            .zip(&shares_y)
            .map(|(a, b)| a.iter().zip(b).map(|(&p, &q)| p.wrapping_add(q)).collect())
            .collect();
        let refs: Vec<&[W]> = summed.iter().map(Vec::as_slice).collect();
        let expected: Vec<W> = x.iter().zip(&y).map(|(&p, &q)| p.wrapping_add(q)).collect();
        assert_eq!(
            reconstruct_zq(&refs).unwrap(),
            expected,
            "b={} n={n}",
            W::BITS
        );
    }
}

#[test]
fn zq_reconstruction_and_linearity_for_every_n_and_b() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    check_zq_identity_and_linearity::<u8>(&mut rng);
    check_zq_identity_and_linearity::<u16>(&mut rng);
    check_zq_identity_and_linearity::<u32>(&mut rng);
}

#[test]
fn field_reconstruction_and_linearity_for_every_n() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let len = 257;
    for n in MIN_PARTIES..=MAX_PARTIES {
        let x: Vec<Field64> = (0..len).map(|_| Field64::random(&mut rng)).collect();
        let y: Vec<Field64> = (0..len).map(|_| Field64::random(&mut rng)).collect();
        let (cx, cy) = (ctx(3), ctx(4));
        let sx = share_field(&x, &cx, n, &mut rng).unwrap();
        let sy = share_field(&y, &cy, n, &mut rng).unwrap();
        let shares_x = field_shares(&sx, &cx, len);
        let shares_y = field_shares(&sy, &cy, len);
        let refs: Vec<&[Field64]> = shares_x.iter().map(Vec::as_slice).collect();
        assert_eq!(reconstruct_field(&refs).unwrap(), x, "n={n}");
        let summed: Vec<Vec<Field64>> = shares_x
            .iter()
            .zip(&shares_y)
            .map(|(a, b)| a.iter().zip(b).map(|(&p, &q)| p + q).collect())
            .collect();
        let refs: Vec<&[Field64]> = summed.iter().map(Vec::as_slice).collect();
        let expected: Vec<Field64> = x.iter().zip(&y).map(|(&p, &q)| p + q).collect();
        assert_eq!(reconstruct_field(&refs).unwrap(), expected, "n={n}");
    }
}

/// χ² statistic of observed counts against the uniform distribution.
fn chi_squared(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| {
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum()
}

/// Upper 10^-6 quantile of χ² with 255 degrees of freedom (Wilson–Hilferty
/// approximation: 255·(1 − 2/(9·255) + 4.753·√(2/(9·255)))³ ≈ 377).
const CHI2_255_CRITICAL: f64 = 377.0;

/// Joint histogram of two byte vectors, bucketed by the top 4 bits of each (256 cells).
fn joint_counts(a: &[u8], b: &[u8]) -> Vec<u64> {
    let mut counts = vec![0u64; 256];
    for (&p, &q) in a.iter().zip(b) {
        counts[usize::from(p >> 4) * 16 + usize::from(q >> 4)] += 1;
    }
    counts
}

#[test]
fn any_n_minus_1_shares_are_uniform() {
    // n = 3 over Z_{2^8}, d = 10^5 coordinates, for a constant and a structured input:
    // every single share, and every pair of shares (any n − 1 = 2 of them), must be
    // uniform whatever the input.
    let d = 100_000;
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let inputs: [Vec<u8>; 2] = [vec![0xAB; d], (0..d).map(|i| (i % 7) as u8).collect()];
    for x in &inputs {
        let c = ctx(5);
        let sharing = share_zq(x, &c, 3, &mut rng).unwrap();
        let shares = zq_shares(&sharing, &c, d);
        for s in &shares {
            let mut counts = vec![0u64; 256];
            for &v in s {
                counts[usize::from(v)] += 1;
            }
            let chi2 = chi_squared(&counts);
            assert!(chi2 < CHI2_255_CRITICAL, "single share χ² = {chi2}");
        }
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            let chi2 = chi_squared(&joint_counts(&shares[i], &shares[j]));
            assert!(chi2 < CHI2_255_CRITICAL, "shares {i},{j}: χ² = {chi2}");
        }
        // Sanity check of the test's power: all n shares together are *not* uniform
        // (they sum to x), and the test sees it.
        let sum: Vec<u8> = (0..d)
            .map(|k| {
                shares[0][k]
                    .wrapping_add(shares[1][k])
                    .wrapping_add(shares[2][k])
            })
            .collect();
        assert!(chi_squared(&joint_counts(&sum, &shares[0])) > 10.0 * CHI2_255_CRITICAL);
    }
}

#[test]
fn field_shares_are_uniform() {
    // Single Field64 shares, bucketed into 256 equal ranges of [0, p).
    let d = 100_000;
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let x = vec![Field64::from_u64(12345); d];
    let c = ctx(6);
    let sharing = share_field(&x, &c, 2, &mut rng).unwrap();
    for s in field_shares(&sharing, &c, d) {
        let mut counts = vec![0u64; 256];
        for v in &s {
            counts[(v.as_u128() * 256 / Field64::MODULUS) as usize] += 1;
        }
        let chi2 = chi_squared(&counts);
        assert!(chi2 < CHI2_255_CRITICAL, "χ² = {chi2}");
    }
}

#[test]
fn different_domains_give_unrelated_streams() {
    // The same seed expanded for another report id, party or usage: the pairs
    // (stream_a[i], stream_b[i]) are jointly uniform (independent streams).
    let d = 100_000;
    let seed = Seed::from_bytes([7; 32]);
    let base = ctx(8).domain(1, Usage::ZqShare);
    let expand = |domain| {
        let mut out = vec![0u8; d];
        Prg::new(&seed, &domain).fill_zq(&mut out);
        out
    };
    let reference = expand(base);
    let mut next_report = base;
    next_report.report_id[15] ^= 1;
    for other in [
        next_report,
        cairn_mpc::Domain { party: 2, ..base },
        cairn_mpc::Domain {
            usage: Usage::FieldShare,
            ..base
        },
    ] {
        let chi2 = chi_squared(&joint_counts(&reference, &expand(other)));
        assert!(chi2 < CHI2_255_CRITICAL, "{other:?}: χ² = {chi2}");
    }
    // Power check: the same domain gives a perfectly correlated (non-uniform) pair.
    assert!(chi_squared(&joint_counts(&reference, &expand(base))) > 10.0 * CHI2_255_CRITICAL);
}
