//! Exact Bernoulli coins: rational p, and exp(−γ) for rational γ ≥ 0.
//!
//! [`bernoulli_exp`] is the fast one: it is the lazy comparison `[U < exp(−γ)]` (module docs
//! of [`super`]) whose first round compares a 64-bit prefix of U with the 64-bit fixed-point
//! enclosure of exp(−γ); the arbitrary-precision fallback runs with probability ≲ 2^−30.
//! [`bernoulli_exp_cks20`] is the literal Algorithm 1 of Canonne–Kamath–Steinke 2020
//! (Bernoulli(exp(−γ)) for γ ∈ [0, 1] by the von Neumann-style series K = 1, 2, …, and
//! γ > 1 as ⌊γ⌋ independent Bernoulli(exp(−1)) and one Bernoulli(exp(−(γ − ⌊γ⌋)))); both are
//! exact, the second serves as an independent cross-check in the tests.

use num_bigint::BigUint;
use rand_core::Rng;

use super::Ratio;
use super::exact::{exp_neg_bounds, uniform_less_than};
use super::fastexp::exp_neg_interval;
use super::uniform::uniform_below_u128;

/// Bernoulli(num/den) exactly (`num ≥ den` gives `true`).
pub fn bernoulli_ratio<R: Rng + ?Sized>(rng: &mut R, p: Ratio) -> bool {
    if p.num() >= p.den() {
        return true;
    }
    uniform_below_u128(rng, u128::from(p.den())) < u128::from(p.num())
}

/// Bernoulli(exp(−γ)) exactly, for rational γ ≥ 0 (lazy comparison, ≈ one 64-bit word).
pub fn bernoulli_exp<R: Rng + ?Sized>(rng: &mut R, gamma: Ratio) -> bool {
    let (g_lo, g_hi) = gamma_fixed(gamma);
    let (e_lo, e_hi) = exp_neg_interval(g_lo, g_hi);
    let r = rng.next_u64();
    let r_lo = u128::from(r);
    // U ∈ [r, r+1)·2^−64: U < e_lo·2^−64 whenever r + 1 ≤ e_lo, i.e. r < e_lo.
    if r_lo < e_lo {
        return true;
    }
    if r_lo >= e_hi {
        return false;
    }
    let num = BigUint::from(gamma.num());
    let den = BigUint::from(gamma.den());
    uniform_less_than(rng, r, 64, |bits| exp_neg_bounds(&num, &den, bits))
}

/// Bernoulli(exp(−num/den)) exactly for big rationals (`den > 0`), as [`bernoulli_exp`].
pub(crate) fn bernoulli_exp_big<R: Rng + ?Sized>(
    rng: &mut R,
    num: &BigUint,
    den: &BigUint,
) -> bool {
    let scaled = num << 64u32;
    let g_lo = &scaled / den;
    let g_hi = if &g_lo * den == scaled {
        g_lo.clone()
    } else {
        &g_lo + 1u32
    };
    // Beyond u128 the exponent is astronomically large: enclosure [0, 1] units.
    let (e_lo, e_hi) = match (u128::try_from(&g_lo), u128::try_from(&g_hi)) {
        (Ok(lo), Ok(hi)) => exp_neg_interval(lo, hi),
        _ => (0, 1),
    };
    let r = rng.next_u64();
    if u128::from(r) < e_lo {
        return true;
    }
    if u128::from(r) >= e_hi {
        return false;
    }
    uniform_less_than(rng, r, 64, |bits| exp_neg_bounds(num, den, bits))
}

/// Enclosure of 2^64·γ, saturating (γ ≥ 2^63 is far beyond where exp(−γ) matters).
fn gamma_fixed(gamma: Ratio) -> (u128, u128) {
    let scaled = u128::from(gamma.num()) << 64;
    let den = u128::from(gamma.den());
    let lo = scaled / den;
    let hi = if lo * den == scaled { lo } else { lo + 1 };
    (lo, hi)
}

/// Bernoulli(exp(−γ)) by Algorithm 1 of Canonne–Kamath–Steinke 2020 (exact, slower).
pub fn bernoulli_exp_cks20<R: Rng + ?Sized>(rng: &mut R, gamma: Ratio) -> bool {
    let whole = gamma.floor();
    let one = Ratio::from_integer(1);
    for _ in 0..whole {
        if !bernoulli_exp_unit(rng, one) {
            return false;
        }
    }
    let frac_num = gamma.num() - whole * gamma.den();
    bernoulli_exp_unit(rng, Ratio::new(frac_num, gamma.den()).unwrap_or(one))
}

/// CKS20 Algorithm 1 for γ ∈ [0, 1]: draw A_k ~ Bernoulli(γ/k) for k = 1, 2, … until the
/// first failure at k = K; return `K` odd. P(K > k) = γ^k/k!, so P(K odd) = exp(−γ).
fn bernoulli_exp_unit<R: Rng + ?Sized>(rng: &mut R, gamma: Ratio) -> bool {
    let mut k: u128 = 1;
    loop {
        // A ~ Bernoulli(num/(den·k)).
        let den = u128::from(gamma.den()) * k;
        if uniform_below_u128(rng, den) >= u128::from(gamma.num()) {
            return k % 2 == 1;
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Both coins have mean exp(−γ): check with a 6-sigma binomial band.
    #[test]
    fn coins_have_the_right_mean() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let n = 200_000u32;
        for (num, den) in [(0u64, 1u64), (1, 3), (1, 1), (5, 2), (7, 1 << 40), (3, 1)] {
            let gamma = Ratio::new(num, den).unwrap();
            let p = (-(num as f64) / den as f64).exp();
            let band = 6.0 * (p * (1.0 - p) / f64::from(n)).sqrt() + 1e-12;
            let fast = (0..n).filter(|_| bernoulli_exp(&mut rng, gamma)).count();
            let slow = (0..n)
                .filter(|_| bernoulli_exp_cks20(&mut rng, gamma))
                .count();
            for (name, hits) in [("fast", fast), ("cks20", slow)] {
                let mean = hits as f64 / f64::from(n);
                assert!(
                    (mean - p).abs() <= band,
                    "{name} γ={num}/{den}: {mean} vs {p}"
                );
            }
        }
        let half = Ratio::new(1, 2).unwrap();
        let hits = (0..n).filter(|_| bernoulli_ratio(&mut rng, half)).count();
        assert!((hits as f64 / f64::from(n) - 0.5).abs() < 0.007);
    }

    #[test]
    fn huge_gamma_is_almost_never_true() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let gamma = Ratio::from_integer(1 << 40);
        assert!((0..10_000).all(|_| !bernoulli_exp(&mut rng, gamma)));
    }
}
