//! Arbitrary-precision bounds on exp(−γ) and the exact lazy comparison of a uniform real.
//!
//! `exp_neg_bounds(γ, k)` returns integers `lo ≤ 2^k·exp(−γ) ≤ hi` with `hi − lo ≤ 2` for a
//! rational γ = num/den ≥ 0. Method (all integer arithmetic, so the bounds are rigorous):
//! z = γ is enclosed in fixed point, `Z_lo ≤ 2^P·γ ≤ Z_hi`, at P = k + 2⌊γ⌋ + 40 bits; for a
//! dyadic z the Taylor terms t_i = z^i/i! are enclosed by `t_i^lo = ⌊t_{i−1}^lo·z/i⌋` and
//! `t_i^hi = ⌈t_{i−1}^hi·z/i⌉`. For N odd with N > z the terms decrease from N on, so the
//! alternating series gives S_N ≤ exp(−z) ≤ S_{N+1}; replacing each term by its lower or
//! upper enclosure (by sign) keeps the inequalities. Monotonicity of exp(−·) turns the bounds
//! at Z_hi / Z_lo into bounds at γ. Rounding errors grow at most by the factor ∏ z/i ≤ e^z
//! < 2^(2⌊γ⌋+2), which the guard bits absorb; the series is cut where t_{N+1} < 2^(−k−2).

use num_bigint::{BigInt, BigUint};
use rand_core::Rng;

/// Integers `(lo, hi)` with `lo ≤ 2^bits·exp(−num/den) ≤ hi` and `hi − lo ≤ 2`.
/// `den` must be non-zero (callers guarantee it).
pub(crate) fn exp_neg_bounds(num: &BigUint, den: &BigUint, bits: u32) -> (BigUint, BigUint) {
    let one = BigUint::from(1u32);
    if num == &BigUint::ZERO {
        return (&one << bits, &one << bits);
    }
    // γ ≥ bits ⇒ 2^bits·exp(−γ) ≤ (2/e)^bits < 1.
    if num >= &(den * BigUint::from(bits)) {
        return (BigUint::ZERO, one);
    }
    // γ < bits ≤ u32::MAX, so the integer part fits.
    let gamma_int = u64::try_from(num / den).unwrap_or(u64::from(bits));
    let guard = 2 * gamma_int + 40;
    let precision = u64::from(bits) + guard;
    let scaled = num << precision;
    let z_lo = &scaled / den;
    let z_hi = if (&z_lo * den) == scaled {
        z_lo.clone()
    } else {
        &z_lo + 1u32
    };
    // Lower bound of exp(−γ) from the larger z, upper bound from the smaller.
    let (lower, _) = series_bounds(&z_hi, precision, bits);
    let (_, upper) = series_bounds(&z_lo, precision, bits);
    let shift = precision - u64::from(bits);
    let lo = if lower.sign() == num_bigint::Sign::Minus {
        BigUint::ZERO
    } else {
        lower.magnitude() >> shift
    };
    let hi_mag = upper.magnitude();
    let mut hi = hi_mag >> shift;
    if (&hi << shift) != *hi_mag {
        hi += 1u32;
    }
    let cap = &one << bits;
    if hi > cap {
        hi = cap;
    }
    (lo, hi)
}

/// Enclosure `(L, U)` of 2^P·exp(−z) for the dyadic z = `z`/2^P (see module docs).
fn series_bounds(z: &BigUint, precision: u64, bits: u32) -> (BigInt, BigInt) {
    let unit = BigUint::from(1u32) << precision;
    let stop_below = BigUint::from(1u32) << (precision - u64::from(bits)).saturating_sub(2);
    let z_int = z >> precision; // ⌊z⌋
    let mut t_lo = unit.clone();
    let mut t_hi = unit.clone();
    let mut lower = BigInt::from(unit.clone());
    let mut upper = BigInt::from(unit);
    let mut i: u64 = 0;
    loop {
        i += 1;
        // ⌊⌊A/2^P⌋/i⌋ = ⌊A/(i·2^P)⌋ and ⌈⌈A/2^P⌉/i⌉ = ⌈A/(i·2^P)⌉ for integers A ≥ 0.
        t_lo = ((&t_lo * z) >> precision) / i;
        let prod_hi = &t_hi * z;
        let mut shifted = &prod_hi >> precision;
        if (&shifted << precision) != prod_hi {
            shifted += 1u32;
        }
        let q = &shifted / i;
        t_hi = if &q * i == shifted { q } else { q + 1u32 };
        if i % 2 == 1 {
            // Odd terms are subtracted: the lower sum takes the larger enclosure.
            lower -= BigInt::from(t_hi.clone());
            upper -= BigInt::from(t_lo.clone());
        } else {
            // Even index i = N + 1: decide whether to stop with N = i − 1 odd.
            let past_peak = BigUint::from(i - 1) > z_int;
            if past_peak && t_hi < stop_below {
                upper += BigInt::from(t_hi.clone());
                return (lower, upper);
            }
            lower += BigInt::from(t_lo.clone());
            upper += BigInt::from(t_hi.clone());
        }
    }
}

/// Decides `U < a` exactly for U uniform on [0, 1) whose first `prefix_bits` bits are
/// `prefix`, drawing further bits of U from `rng` as needed. `bounds(k)` must return integers
/// `lo ≤ 2^k·a ≤ hi` whose gap stays bounded as k grows; then the loop ends with
/// probability 1 unless `a` is a dyadic rational, in which case it ends once U's prefix
/// straddles no boundary (also with probability 1).
pub(crate) fn uniform_less_than<R: Rng + ?Sized>(
    rng: &mut R,
    prefix: u64,
    prefix_bits: u32,
    mut bounds: impl FnMut(u32) -> (BigUint, BigUint),
) -> bool {
    let mut u = BigUint::from(prefix);
    let mut bits = prefix_bits;
    loop {
        let (lo, hi) = bounds(bits);
        // U < (u + 1)·2^−bits ≤ lo·2^−bits ≤ a when u + 1 ≤ lo, i.e. u < lo.
        if u < lo {
            return true;
        }
        if u >= hi {
            return false;
        }
        u = (u << 64u32) + rng.next_u64();
        bits += 64;
    }
}

/// Bounds `lo ≤ 2^bits·mult·exp(−γ)/div ≤ hi` (gap ≤ 4) for the lazy comparison.
pub(crate) fn scaled_exp_bounds(
    gamma_num: &BigUint,
    gamma_den: &BigUint,
    mult: &BigUint,
    div: &BigUint,
    bits: u32,
) -> (BigUint, BigUint) {
    let extra = u32::try_from(mult.bits().saturating_sub(div.bits()) + 2).unwrap_or(u32::MAX);
    let (elo, ehi) = exp_neg_bounds(gamma_num, gamma_den, bits.saturating_add(extra));
    let scale = div << extra;
    let lo = (mult * elo) / &scale;
    let hi_num = mult * ehi;
    let q = &hi_num / &scale;
    let hi = if &q * &scale == hi_num { q } else { q + 1u32 };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(x: u64) -> BigUint {
        BigUint::from(x)
    }

    /// exp(−1) = 0.36787944117144232159552377016146086744581113103176... (decimal digits
    /// from the series, independently known); 2^64·exp(−1) = 6786177901268885274.73...
    #[test]
    fn bounds_enclose_known_values() {
        let (lo, hi) = exp_neg_bounds(&big(1), &big(1), 64);
        let lo = u64::try_from(&lo).unwrap();
        let hi = u64::try_from(&hi).unwrap();
        assert!(lo <= 6_786_177_901_268_885_274 && 6_786_177_901_268_885_275 <= hi);
        assert!(hi - lo <= 2);
        // exp(−0) = 1 exactly.
        let (lo, hi) = exp_neg_bounds(&big(0), &big(7), 10);
        assert_eq!((lo, hi), (big(1024), big(1024)));
        // γ = 100 at 64 bits: below one unit.
        let (lo, hi) = exp_neg_bounds(&big(100), &big(1), 64);
        assert_eq!((lo, hi), (big(0), big(1)));
    }

    #[test]
    fn bounds_agree_with_f64_and_are_tight() {
        for &(n, d) in &[(1u64, 3u64), (5, 2), (44, 1), (123_456, 1000), (7, 1 << 40)] {
            let (lo, hi) = exp_neg_bounds(&big(n), &big(d), 80);
            assert!(&hi - &lo <= big(2));
            let approx = (-(n as f64) / d as f64).exp();
            let scaled = lo.to_u64_digits();
            let lo_f = scaled.iter().rev().fold(0.0f64, |acc, &w| {
                acc * 18_446_744_073_709_551_616.0 + w as f64
            }) / 2f64.powi(80);
            assert!(
                (lo_f - approx).abs() <= 1e-14 * approx + 2f64.powi(-79),
                "{n}/{d}"
            );
        }
    }

    /// The arbitrary-precision path alone (no 64-bit prefix): mean of [U < a] is a, for an
    /// irrational a = exp(−γ) and a dyadic one (bounds exact).
    #[test]
    fn lazy_comparison_is_unbiased() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let n = 20_000u32;
        let (num, den) = (big(3), big(4));
        let hits = (0..n)
            .filter(|_| uniform_less_than(&mut rng, 0, 0, |b| exp_neg_bounds(&num, &den, b)))
            .count();
        let p = (-0.75f64).exp();
        let band = 6.0 * (p * (1.0 - p) / f64::from(n)).sqrt();
        assert!((hits as f64 / f64::from(n) - p).abs() < band);
        // a = 5/8 exactly.
        let hits = (0..n)
            .filter(|_| {
                uniform_less_than(&mut rng, 0, 0, |b| {
                    let scaled = big(5) << b;
                    let lo = &scaled >> 3u32;
                    let hi = if (&lo << 3u32) == scaled {
                        lo.clone()
                    } else {
                        &lo + 1u32
                    };
                    (lo, hi)
                })
            })
            .count();
        assert!((hits as f64 / f64::from(n) - 0.625).abs() < 6.0 * (0.625f64 * 0.375 / 2e4).sqrt());
    }

    #[test]
    fn bounds_refine_consistently() {
        // Bounds at higher precision lie inside the coarser ones.
        let (n, d) = (big(17), big(11));
        let (lo64, hi64) = exp_neg_bounds(&n, &d, 64);
        let (lo200, hi200) = exp_neg_bounds(&n, &d, 200);
        assert!((&lo64 << 136u32) <= hi200 && lo200 <= (&hi64 << 136u32));
    }
}
