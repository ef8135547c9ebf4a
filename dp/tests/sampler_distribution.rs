//! Goodness of fit of the exact samplers: χ² and Kolmogorov–Smirnov against the exact pmf
//! (10^6 samples, fixed seeds, so the assertions are deterministic), and two-sample tests
//! against OpenDP's samplers (OpenDP draws from its own unseeded RNG: those assertions fail
//! with probability ≤ 1e-6 by construction of the thresholds).
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

use cairn_dp::sample::{DiscreteGaussian, DiscreteLaplace, Ratio, discrete_gaussian_cks20};
use dashu::rational::RBig;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Significance level of every test: a correct sampler fails with probability ≤ 1e-6.
const ALPHA: f64 = 1e-6;
/// √n·D above which a one-sample KS test rejects at level 1e-6: the Kolmogorov tail
/// 2·exp(−2t²) = 1e-6 (conservative for discrete distributions).
const KS_ONE_SAMPLE: f64 = 2.69;

/// The exact law restricted to [−radius, radius] (mass outside < 1e-30 for the radii used).
struct Pmf {
    lo: i64,
    probs: Vec<f64>,
}

impl Pmf {
    /// ρ(k)/Σρ for the unnormalised weights `rho`, summed over a wide range (12σ covers all
    /// but e^−72 of the mass) with compensated summation.
    fn new(radius: i64, rho: impl Fn(i64) -> f64) -> Self {
        let weights: Vec<f64> = (-radius..=radius).map(&rho).collect();
        // Kahan (compensated) summation.
        let (mut total, mut carry) = (0.0f64, 0.0f64);
        for &w in &weights {
            let y = w - carry;
            let t = total + y;
            carry = (t - total) - y;
            total = t;
        }
        Self {
            lo: -radius,
            probs: weights.into_iter().map(|w| w / total).collect(),
        }
    }

    fn gaussian(sigma: f64) -> Self {
        let radius = (12.0 * sigma).ceil() as i64 + 5;
        Self::new(radius, |k| {
            (-(k as f64).powi(2) / (2.0 * sigma * sigma)).exp()
        })
    }

    fn laplace(scale: f64) -> Self {
        let radius = (75.0 * scale).ceil() as i64 + 5;
        Self::new(radius, |k| (-(k.abs() as f64) / scale).exp())
    }
}

/// Regularised upper incomplete gamma Q(a, x) (series / continued fraction, as in Numerical
/// Recipes §6.2), for χ² p-values: P(χ²_df > s) = Q(df/2, s/2).
fn gamma_q(a: f64, x: f64) -> f64 {
    let ln_gamma_a = ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - ln_gamma_a).exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (-x + a * x.ln() - ln_gamma_a).exp() * h
    }
}

/// ln Γ(x) by Lanczos (g = 7, n = 9), accurate to ~1e-15 for x > 0.
fn ln_gamma(x: f64) -> f64 {
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Contiguous bins of the support, each with probability ≥ 1/64 (tails merged into the end
/// bins). Returns the upper bound (inclusive) of each bin and its probability.
fn bins(pmf: &Pmf) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    let mut mass = 0.0;
    for (i, &p) in pmf.probs.iter().enumerate() {
        mass += p;
        if mass >= 1.0 / 64.0 {
            out.push((pmf.lo + i as i64, mass));
            mass = 0.0;
        }
    }
    if let Some(last) = out.last_mut() {
        last.1 += mass;
        last.0 = i64::MAX;
    }
    out
}

fn bin_index(bins: &[(i64, f64)], x: i64) -> usize {
    bins.partition_point(|&(hi, _)| hi < x)
}

/// One-sample χ² p-value of `samples` against `pmf`.
fn chi2_p_value(pmf: &Pmf, samples: &[i64]) -> f64 {
    let bins = bins(pmf);
    let mut counts = vec![0u64; bins.len()];
    for &x in samples {
        counts[bin_index(&bins, x)] += 1;
    }
    let n = samples.len() as f64;
    let stat: f64 = counts
        .iter()
        .zip(&bins)
        .map(|(&c, &(_, p))| (c as f64 - n * p).powi(2) / (n * p))
        .sum();
    gamma_q((bins.len() - 1) as f64 / 2.0, stat / 2.0)
}

/// √n · sup_k |F_n(k) − F(k)| over the support.
fn ks_statistic(pmf: &Pmf, samples: &[i64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let mut cdf = 0.0;
    let mut idx = 0usize;
    // Samples left of the table count as below its first point.
    let mut d: f64 = 0.0;
    for (i, &p) in pmf.probs.iter().enumerate() {
        let k = pmf.lo + i as i64;
        cdf += p;
        idx += sorted[idx..].partition_point(|&x| x <= k);
        d = d.max((idx as f64 / n - cdf).abs());
    }
    d * n.sqrt()
}

fn check_one_sample(name: &str, pmf: &Pmf, samples: &[i64]) {
    let p = chi2_p_value(pmf, samples);
    let ks = ks_statistic(pmf, samples);
    assert!(p > ALPHA, "{name}: χ² p-value {p:e}");
    assert!(ks < KS_ONE_SAMPLE, "{name}: √n·D = {ks}");
}

#[test]
fn discrete_gaussian_matches_exact_pmf() {
    // σ = 0.5, 1, 3.7 (not an integer: 3.7 as f64 is an exact dyadic rational), 32 (w = 1),
    // 1000.5 and 2^20 (block width > 1).
    for (i, sigma) in [0.5, 1.0, 3.7, 32.0, 1000.5, 1_048_576.0]
        .into_iter()
        .enumerate()
    {
        let sampler = DiscreteGaussian::from_f64(sigma).unwrap();
        let mut rng = ChaCha20Rng::from_seed([10 + i as u8; 32]);
        let mut samples = vec![0i64; 1_000_000];
        sampler.fill(&mut rng, &mut samples);
        let pmf = Pmf::gaussian(sigma);
        check_one_sample(&format!("σ = {sigma}"), &pmf, &samples);
        // Second moment against the exact variance of N_Z(0, σ²).
        let var = samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / 1e6;
        let exact: f64 = pmf
            .probs
            .iter()
            .enumerate()
            .map(|(k, p)| p * ((pmf.lo + k as i64) as f64).powi(2))
            .sum();
        // Standard error of the sample second moment ≈ √(2/n)·var; 6 standard errors.
        assert!(
            (var - exact).abs() < 6.0 * (2.0f64 / 1e6).sqrt() * exact,
            "σ = {sigma}"
        );
    }
}

#[test]
fn discrete_gaussian_rational_sigma() {
    let sigma = Ratio::new(7, 3).unwrap();
    let sampler = DiscreteGaussian::new(sigma).unwrap();
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let mut samples = vec![0i64; 1_000_000];
    sampler.fill(&mut rng, &mut samples);
    check_one_sample("σ = 7/3", &Pmf::gaussian(7.0 / 3.0), &samples);
}

#[test]
fn a_wrong_sigma_is_detected() {
    // Power check: samples for σ = 10 must fail the test against σ = 10.1.
    let sampler = DiscreteGaussian::from_f64(10.0).unwrap();
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let mut samples = vec![0i64; 1_000_000];
    sampler.fill(&mut rng, &mut samples);
    assert!(chi2_p_value(&Pmf::gaussian(10.1), &samples) < ALPHA);
    assert!(ks_statistic(&Pmf::gaussian(10.1), &samples) > KS_ONE_SAMPLE);
}

#[test]
fn cks20_reference_matches_exact_pmf() {
    for (i, sigma) in [1.0, 5.5, 300.0].into_iter().enumerate() {
        let mut rng = ChaCha20Rng::from_seed([20 + i as u8; 32]);
        let ratio = Ratio::from_f64(sigma).unwrap();
        let samples: Vec<i64> = (0..100_000)
            .map(|_| discrete_gaussian_cks20(&mut rng, ratio).unwrap())
            .collect();
        check_one_sample(
            &format!("CKS20 σ = {sigma}"),
            &Pmf::gaussian(sigma),
            &samples,
        );
    }
}

#[test]
fn discrete_laplace_matches_exact_pmf() {
    for (i, scale) in [0.5, 1.0, 2.5, 100.0].into_iter().enumerate() {
        let sampler = DiscreteLaplace::from_f64(scale).unwrap();
        let mut rng = ChaCha20Rng::from_seed([30 + i as u8; 32]);
        let mut samples = vec![0i64; 1_000_000];
        sampler.fill(&mut rng, &mut samples);
        check_one_sample(
            &format!("Laplace t = {scale}"),
            &Pmf::laplace(scale),
            &samples,
        );
    }
}

/// Two-sample χ² (homogeneity) p-value of two samples over the bins of `pmf`.
fn two_sample_chi2_p_value(pmf: &Pmf, a: &[i64], b: &[i64]) -> f64 {
    let bins = bins(pmf);
    let mut ca = vec![0f64; bins.len()];
    let mut cb = vec![0f64; bins.len()];
    for &x in a {
        ca[bin_index(&bins, x)] += 1.0;
    }
    for &x in b {
        cb[bin_index(&bins, x)] += 1.0;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let mut stat = 0.0;
    let mut used = 0;
    for (&x, &y) in ca.iter().zip(&cb) {
        if x + y == 0.0 {
            continue;
        }
        used += 1;
        let total = x + y;
        let ea = total * na / (na + nb);
        let eb = total * nb / (na + nb);
        stat += (x - ea).powi(2) / ea + (y - eb).powi(2) / eb;
    }
    gamma_q((used - 1) as f64 / 2.0, stat / 2.0)
}

/// Two-sample KS statistic D·√(nm/(n+m)).
fn two_sample_ks(a: &[i64], b: &[i64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d): (usize, usize, f64) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        i += a[i..].partition_point(|&v| v <= x);
        j += b[j..].partition_point(|&v| v <= x);
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d * (n * m / (n + m)).sqrt()
}

#[test]
fn discrete_gaussian_agrees_with_opendp() {
    for (i, sigma) in [1u32, 7, 1024].into_iter().enumerate() {
        let ours_sampler = DiscreteGaussian::new(Ratio::from_integer(u64::from(sigma))).unwrap();
        let mut rng = ChaCha20Rng::from_seed([50 + i as u8; 32]);
        let mut ours = vec![0i64; 200_000];
        ours_sampler.fill(&mut rng, &mut ours);
        let scale = RBig::from(sigma);
        let theirs: Vec<i64> = (0..20_000)
            .map(|_| {
                let x = opendp::traits::samplers::sample_discrete_gaussian(scale.clone()).unwrap();
                i64::try_from(x).unwrap()
            })
            .collect();
        let pmf = Pmf::gaussian(f64::from(sigma));
        let p = two_sample_chi2_p_value(&pmf, &ours, &theirs);
        assert!(p > ALPHA, "σ = {sigma}: two-sample χ² p = {p:e}");
        let ks = two_sample_ks(&ours, &theirs);
        assert!(ks < KS_ONE_SAMPLE, "σ = {sigma}: two-sample KS {ks}");
    }
}

#[test]
fn discrete_laplace_agrees_with_opendp() {
    let scale = 3u32;
    let ours_sampler = DiscreteLaplace::new(Ratio::from_integer(u64::from(scale))).unwrap();
    let mut rng = ChaCha20Rng::from_seed([60; 32]);
    let mut ours = vec![0i64; 200_000];
    ours_sampler.fill(&mut rng, &mut ours);
    let theirs: Vec<i64> = (0..20_000)
        .map(|_| {
            let x = opendp::traits::samplers::sample_discrete_laplace(RBig::from(scale)).unwrap();
            i64::try_from(x).unwrap()
        })
        .collect();
    let pmf = Pmf::laplace(f64::from(scale));
    assert!(two_sample_chi2_p_value(&pmf, &ours, &theirs) > ALPHA);
    assert!(two_sample_ks(&ours, &theirs) < KS_ONE_SAMPLE);
}

#[test]
fn seeded_sampling_is_deterministic() {
    let sampler = DiscreteGaussian::from_f64(12.25).unwrap();
    let draw = |seed| {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let mut out = vec![0i64; 1000];
        sampler.fill(&mut rng, &mut out);
        out
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn chi2_helpers_match_known_quantiles() {
    // Known values: P(χ²_1 > 3.841458820694124) = 0.05, P(χ²_10 > 29.58829844507442) = 0.001.
    assert!((gamma_q(0.5, 3.841_458_820_694_124 / 2.0) - 0.05).abs() < 1e-10);
    assert!((gamma_q(5.0, 29.588_298_445_074_42 / 2.0) - 0.001).abs() < 1e-12);
}

/// χ² p-value of the residues `x mod m` of `samples` against the uniform law on 0..m.
///
/// For N_Z(0, σ²) the residue law mod m is uniform up to terms of order
/// exp(−2π²σ²/m²) (Poisson summation), below 1e−300 when σ/m ≥ 20: so uniform is exact
/// in f64 for the moduli used here.
fn residue_chi2_p_value(samples: &[i64], m: i64) -> f64 {
    let mut counts = vec![0u64; m as usize];
    for &x in samples {
        counts[x.rem_euclid(m) as usize] += 1;
    }
    let expected = samples.len() as f64 / m as f64;
    let stat: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    gamma_q((m - 1) as f64 / 2.0, stat / 2.0)
}

#[test]
fn low_bits_and_block_offsets_are_uniform_at_large_sigma() {
    // The sampler draws an offset inside blocks of width w = 2^(⌊log₂σ⌋ − 5) and a sign:
    // a bias there (say, only even values, or only the start of each block) would pass
    // a χ² over wide bins. Residues mod 2, mod w and mod 3 (not a power of two) must be
    // uniform.
    for (i, (sigma, block)) in [(1000.5, 16i64), (1_048_576.0, 1 << 15)]
        .into_iter()
        .enumerate()
    {
        let sampler = DiscreteGaussian::from_f64(sigma).unwrap();
        let mut rng = ChaCha20Rng::from_seed([60 + i as u8; 32]);
        let mut samples = vec![0i64; 1_000_000];
        sampler.fill(&mut rng, &mut samples);
        for m in [2, 3, block] {
            let p = residue_chi2_p_value(&samples, m);
            assert!(p > ALPHA, "σ = {sigma}: residues mod {m}: p = {p:e}");
        }
        // Power: the same samples made even, or snapped to block starts, fail.
        let even: Vec<i64> = samples.iter().map(|x| x - x.rem_euclid(2)).collect();
        assert!(residue_chi2_p_value(&even, 2) < ALPHA);
        let snapped: Vec<i64> = samples
            .iter()
            .map(|x| x - x.rem_euclid(block) + (x.rem_euclid(block) / 2))
            .collect();
        assert!(residue_chi2_p_value(&snapped, block) < ALPHA);
    }
}
