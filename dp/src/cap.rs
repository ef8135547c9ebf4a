//! What a cap on the records of a report costs in δ (record-level DP).
//!
//! A record-level report sums at most `m` sampled records (the task's
//! `max_records_per_report`, which bounds the report's norm for the proof). An
//! organisation whose Poisson sample in a round holds more than `m` records submits no
//! record that round (the SDK refuses the round, `RoundSkipped`; the KDD'99 example
//! submits an empty report). Whether that happens depends on the data, and one more
//! record makes it more likely, so the subsampled Gaussian's accountant
//! ([`crate::rdp`]), which assumes that every sampled record is summed, does not cover
//! it alone. This module bounds what it adds.
//!
//! **Theorem.** Fix neighbours `D`, `D'` that differ in one record of organisation
//! `o`, which holds at most `n` records in the larger of the two. Let `M` be the
//! mechanism with the cap, run for `T` releases, and `M'_o` the same mechanism with
//! the cap dropped for `o` alone (every record `o` samples is summed; the other
//! organisations keep their cap). Suppose the accountant's (ε, δ) holds for `M'_o` on
//! `D`, `D'`. With `β = T · Pr[Binomial(n, q) > m]`, `M` is (ε, δ + (1 + e^ε)·β)-DP.
//!
//! *Why the accountant covers `M'_o`.* Its releases compose adaptively (Mironov 2017,
//! Proposition 1): each is analysed given the outputs before it. Within one release,
//! the analysis of the subsampled Gaussian conditions on every coin but the differing
//! record's inclusion and the noise — the other records' inclusions, and so the other
//! organisations' samples, sums, rounding and skips, which depend only on their own
//! records and coins, the same under `D` and `D'` — and bounds the Rényi divergence
//! of the two outputs for each value of that condition, whose distribution is the same
//! under both; the divergence of the two mixtures over it is at most the largest of
//! those (Rényi divergence is jointly quasi-convex for every order: van Erven &
//! Harremoës, "Rényi Divergence and Kullback-Leibler Divergence", IEEE Trans. Inf.
//! Theory 60(7), 2014). Only `o`'s report sees the differing record, and `M'_o` sums
//! all of it. The noise is not part of the condition: with client noise an
//! organisation that skips sends no share of it, and the accountant's noise holds only
//! because the aggregators refuse a round with fewer reports than the task's
//! `min_honest_clients` (and `min_clients`).
//!
//! *Proof.* Run `M` and `M'_o` on the same coins (the samples and the noise). Poisson
//! sampling draws its coins whatever the outputs so far, so the two runs are identical
//! unless the event `E`, that `o`'s sample exceeds `m` in some release, occurs. With
//! `n' ≤ n` records `o` samples `Binomial(n', q)` of them, stochastically below
//! `Binomial(n, q)`, so by the union bound `Pr[E] ≤ β` on either dataset, and for every
//! set `S` of transcripts `|Pr[M(D) ∈ S] − Pr[M'_o(D) ∈ S]| ≤ β`. Hence
//! `Pr[M(D) ∈ S] ≤ Pr[M'_o(D) ∈ S] + β ≤ e^ε·Pr[M'_o(D') ∈ S] + δ + β
//! ≤ e^ε·(Pr[M(D') ∈ S] + β) + δ + β`, and symmetrically. ∎
//!
//! Taking `n` as N + 1, with N a bound on the records of every organisation (the
//! larger dataset may hold one more), covers every pair of neighbours whose
//! organisations hold at most N records each. N is then part of what is public: the
//! KDD'99 example takes its largest organisation's number of records, treating the
//! organisations' sizes as public, as it does their total (which divides the sums).
//!
//! This is the coupling argument that makes any mechanism within total-variation
//! distance β of an (ε, δ)-DP one (ε, δ + (1 + e^ε)β)-DP. Truncating an oversized
//! sample to `m` records instead of skipping the round is no better under it (the sum
//! can then differ by two records' worth), and analyses specific to truncation exist
//! (Chua et al., "Scalable DP-SGD: Shuffling vs. Poisson Subsampling", NeurIPS 2024,
//! arXiv:2411.04205; "Tighter Privacy Analysis for Truncated Poisson Sampling",
//! arXiv:2508.15089); Cairn uses the theorem above because it is short enough to check
//! here, and because choosing `m` well above `q·n` makes β negligible.
//!
//! The binomial tail is summed term by term in floating point from the exact ratio of
//! consecutive terms. Its first term's logarithm, a sum of up to 10^7 logarithms, is
//! summed with compensation and carries a bound on its rounding error, by which the
//! result is raised;
//! the rest is rounded up by a relative 10⁻⁶, far above the rounding error of the
//! products and the sum, so it stays an upper bound (and a bound that underflows is
//! returned as the smallest normal `f64`, not 0). Caps of 10^7 records and more take
//! Chernoff's bound instead, so that no input takes long.

/// Errors of the cap's bound.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CapError {
    /// The sampling rate is not in (0, 1].
    #[error("the sampling rate must be in (0, 1], got {0}")]
    SamplingRate(f64),
    /// ε is negative or not finite.
    #[error("ε must be finite and ≥ 0, got {0}")]
    Epsilon(f64),
    /// No record may be summed: the cap must be at least 1.
    #[error("the most records a report sums must be at least 1")]
    ZeroCap,
}

/// Relative margin added to a computed tail so that floating-point error cannot make
/// it an underestimate.
const ROUND_UP: f64 = 1.0 + 1e-6;

/// An upper bound on `Pr[Binomial(n, q) > m]`: the tail itself to a relative 10⁻⁶ for
/// `m < 10^7`, Chernoff's bound beyond. When `m` is below the binomial's mode the tail
/// is at least about one half and the bound is 1.
pub fn binomial_tail_above(n: u64, q: f64, m: u64) -> Result<f64, CapError> {
    if !(q > 0.0 && q <= 1.0) {
        return Err(CapError::SamplingRate(q));
    }
    if m >= n {
        return Ok(0.0);
    }
    // The mode is ⌊(n + 1)q⌋; from it on the terms fall. With m + 1 at or below it
    // the tail holds the mode's mass and at least half of the rest: say 1.
    let mode = ((n as f64 + 1.0) * q).floor();
    if q == 1.0 || (m as f64 + 1.0) <= mode {
        return Ok(1.0);
    }
    let k0 = m + 1;
    if k0 > MAX_TERMS {
        return Ok(chernoff(n, q, k0));
    }
    // ln C(n, k0) = Σ_{i<k0} ln((n − i)/(k0 − i)), then the k0 successes and n − k0
    // failures. Summed in turn, up to 10^7 logarithms whose partial sums grow to 10^8
    // were off by a relative 10⁻⁵ (ten times ROUND_UP), so they are summed with
    // Neumaier's compensation, whose error is at most 2u·|S| + 2k·u²·Σ|v| (Higham,
    // *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4.3; u = ε/2), and
    // `err` bounds the absolute error of the logarithm (each conversion, quotient and
    // logarithm is within a unit in the last place, and f64::EPSILON is two of those);
    // the tail is multiplied by e^err at the end.
    let eps = f64::EPSILON;
    let (mut sum, mut compensation, mut magnitudes) = (0.0f64, 0.0f64, 0.0f64);
    let mut err = 0.0f64;
    for i in 0..k0 {
        let v = ((n - i) as f64 / (k0 - i) as f64).ln();
        let t = sum + v;
        compensation += if sum.abs() >= v.abs() {
            (sum - t) + v
        } else {
            (v - t) + sum
        };
        sum = t;
        magnitudes += v.abs();
        err += 2.0 * eps + v.abs() * eps;
    }
    let mut ln_term = sum + compensation;
    err += eps * ln_term.abs() + k0 as f64 * eps * eps * magnitudes;
    let (successes, failures) = (k0 as f64 * q.ln(), (n - k0) as f64 * (-q).ln_1p());
    ln_term += successes + failures;
    err += (successes.abs() + failures.abs()) * 3.0 * eps + ln_term.abs() * 2.0 * eps;
    let odds = q / (1.0 - q);
    let mut term = ln_term.exp();
    let mut sum = 0.0f64;
    let mut k = k0;
    loop {
        sum += term;
        if k == n || term <= sum * 1e-18 || term == 0.0 {
            break;
        }
        if k - k0 >= MAX_TERMS {
            // A tail this long is not summed: Chernoff's bound stands in.
            return Ok(chernoff(n, q, k0));
        }
        // t_{k+1} / t_k = (n − k)/(k + 1) · q/(1 − q) < 1 past the mode, so the
        // remaining terms sum to less than term · r/(1 − r) < term · 2·10^7; stopping
        // once term is a 10^-18 of the sum loses less than 2·10^-11 of it, and the
        // products and sums below 10^7 terms add at most some 10^-8 relative: both
        // well inside ROUND_UP.
        term *= (n - k) as f64 / (k + 1) as f64 * odds;
        k += 1;
    }
    Ok(at_least_tiny(sum * err.exp() * ROUND_UP).min(1.0))
}

/// A positive bound that underflowed to 0 stands for a value below e^-728 (the first
/// term under e^-745, times at most 2·10^7 for the rest, times e^err): the smallest
/// normal `f64`, 2.2·10^-308 ≈ e^-708, is above it, and 0 would not be an upper bound.
fn at_least_tiny(bound: f64) -> f64 {
    bound.max(f64::MIN_POSITIVE)
}

/// The most terms [`binomial_tail_above`] sums (and the most factors of C(n, k) it
/// multiplies); past it, Chernoff's bound, so that no input takes long.
const MAX_TERMS: u64 = 10_000_000;

/// Chernoff's bound `Pr[Binomial(n, q) ≥ k] ≤ exp(−n·KL(k/n ‖ q))` for `k/n > q`
/// (Hoeffding 1963, Theorem 1), with `KL(a ‖ q) = a·ln(a/q) + (1 − a)·ln((1 − a)/(1 − q))`;
/// looser than the sum, used only where the sum would be too long.
fn chernoff(n: u64, q: f64, k: u64) -> f64 {
    let a = k as f64 / n as f64;
    if a <= q {
        return 1.0;
    }
    let kl = a * (a / q).ln()
        + if a < 1.0 {
            (1.0 - a) * ((1.0 - a) / (1.0 - q)).ln()
        } else {
            0.0
        };
    // Its float error is relative n·|KL|·ε at most, far inside ROUND_UP wherever the
    // result does not underflow; Chernoff's bound itself is loose by far more.
    at_least_tiny((-(n as f64) * kl).exp() * ROUND_UP).min(1.0)
}

/// The δ the cap adds (module docs): `(1 + e^ε) · releases · Pr[Binomial(records + 1,
/// q) > max_records]`, at most 1, where `records` is the most records any one
/// organisation holds (the differing record may be one more) and ε the total the
/// accountant grants.
pub fn cap_delta(
    records: u64,
    q: f64,
    max_records: u64,
    releases: u64,
    epsilon: f64,
) -> Result<f64, CapError> {
    if max_records == 0 {
        return Err(CapError::ZeroCap);
    }
    if !(epsilon.is_finite() && epsilon >= 0.0) {
        return Err(CapError::Epsilon(epsilon));
    }
    let tail = binomial_tail_above(records.saturating_add(1), q, max_records)?;
    if tail == 0.0 {
        return Ok(0.0);
    }
    Ok(((1.0 + epsilon.exp()) * releases as f64 * tail).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) {
        // An upper bound within the documented relative 10⁻⁶ (plus float noise).
        assert!(got >= want * (1.0 - 1e-12), "{got} below {want}");
        assert!(got <= want * (1.0 + 2e-6), "{got} too far above {want}");
    }

    /// Exact values: sums of C(n, k)·q^k·(1 − q)^(n−k) in rational arithmetic
    /// (Python's `fractions.Fraction` of the same `f64` q, `math.comb`), rounded to 16
    /// digits.
    #[test]
    fn the_tail_matches_exact_rational_sums() {
        close(binomial_tail_above(10, 0.5, 7).unwrap(), 5.468_75e-2);
        close(
            binomial_tail_above(1571, 0.04, 100).unwrap(),
            3.537_725_432_012_797e-6,
        );
        close(
            binomial_tail_above(1571, 0.04, 127).unwrap(),
            9.225_832_449_529_248e-14,
        );
        close(
            binomial_tail_above(1101, 0.04, 100).unwrap(),
            3.132_302_879_078_276e-14,
        );
        close(
            binomial_tail_above(200, 0.25, 80).unwrap(),
            1.078_832_737_237_312e-6,
        );
    }

    /// Chernoff's bound is above the exact tail, and a cap too large to sum takes it
    /// at once.
    #[test]
    fn huge_inputs_take_the_chernoff_bound() {
        for (n, q, k) in [(1571u64, 0.04, 101u64), (1571, 0.04, 128), (200, 0.25, 81)] {
            let exact = binomial_tail_above(n, q, k - 1).unwrap();
            assert!(chernoff(n, q, k) >= exact, "{n} {q} {k}");
        }
        let start = std::time::Instant::now();
        let t = binomial_tail_above(u64::MAX / 2, 1e-9, 100_000_000_000).unwrap();
        assert!((0.0..=1.0).contains(&t));
        let t = binomial_tail_above(1_000_000_000_000, 0.01, 10_000_100).unwrap();
        assert!(t > 0.0 && t <= 1.0, "{t}");
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    /// A cap of 9 million: the first term's logarithm sums 9 million logarithms, whose
    /// rounding alone put it a relative 1.03·10⁻⁵ low, ten times ROUND_UP, before the
    /// running error bound. The references are the tail summed at 40 digits
    /// (`mpmath` 1.3: log-gamma for the first term, then the terms' ratio, to a
    /// relative 10⁻²⁵).
    #[test]
    fn a_long_first_term_stays_an_upper_bound() {
        for (m, exact) in [
            (9_018_000u64, 9.972_717_447_869_026e-10),
            (9_015_000, 2.883_562_123_866_329e-7),
        ] {
            let got = binomial_tail_above(1_000_000_000_000, 9e-6, m).unwrap();
            assert!(got >= exact, "{m}: {got} below {exact}");
            assert!(got <= exact * 1.001, "{m}: {got} too far above {exact}");
        }
        // A bound that underflows is the smallest normal f64, never 0.
        assert_eq!(
            binomial_tail_above(1_000, 0.001, 999).unwrap(),
            f64::MIN_POSITIVE
        );
    }

    #[test]
    fn edges() {
        assert_eq!(binomial_tail_above(100, 0.3, 100).unwrap(), 0.0);
        assert_eq!(binomial_tail_above(100, 0.3, 250).unwrap(), 0.0);
        assert_eq!(binomial_tail_above(100, 1.0, 99).unwrap(), 1.0);
        // At or below the mode (30 of 100 at q = 0.3): the bound is 1.
        assert_eq!(binomial_tail_above(100, 0.3, 20).unwrap(), 1.0);
        // Pr[X > n − 1] = q^n.
        close(binomial_tail_above(20, 0.9, 19).unwrap(), 0.9f64.powi(20));
    }

    #[test]
    fn the_tail_falls_with_the_cap_and_grows_with_records_and_rate() {
        let mut last = 1.0;
        for m in 60..160 {
            let t = binomial_tail_above(1571, 0.04, m).unwrap();
            assert!(t <= last, "m = {m}");
            last = t;
        }
        let mut last = 0.0;
        for n in (500..3000).step_by(50) {
            let t = binomial_tail_above(n, 0.04, 100).unwrap();
            assert!(t >= last, "n = {n}");
            last = t;
        }
        let mut last = 0.0;
        for i in 1..80 {
            let t = binomial_tail_above(1571, f64::from(i) * 1e-3, 100).unwrap();
            assert!(t >= last, "q = {i}e-3");
            last = t;
        }
    }

    #[test]
    fn cap_delta_is_the_theorems_bound() {
        let tail = binomial_tail_above(1571, 0.04, 127).unwrap();
        let d = cap_delta(1570, 0.04, 127, 600, 1.0).unwrap();
        assert_eq!(d, (1.0 + 1f64.exp()) * 600.0 * tail);
        assert_eq!(cap_delta(1570, 0.04, 100, 600, 8.0).unwrap(), 1.0);
        assert_eq!(cap_delta(50, 0.04, 100, 600, 8.0).unwrap(), 0.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        for q in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(
                matches!(
                    binomial_tail_above(10, q, 3),
                    Err(CapError::SamplingRate(_))
                ),
                "q = {q}"
            );
            assert!(matches!(
                cap_delta(10, q, 3, 1, 1.0),
                Err(CapError::SamplingRate(_))
            ));
        }
        assert_eq!(cap_delta(10, 0.1, 0, 1, 1.0), Err(CapError::ZeroCap));
        assert!(matches!(
            cap_delta(10, 0.1, 3, 1, -1.0),
            Err(CapError::Epsilon(_))
        ));
        assert!(matches!(
            cap_delta(10, 0.1, 3, 1, f64::INFINITY),
            Err(CapError::Epsilon(_))
        ));
    }
}
