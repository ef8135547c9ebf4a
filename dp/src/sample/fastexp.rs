//! Rigorous 64-bit fixed-point bounds on exp(−γ), the fast first round of the lazy comparison.
//!
//! Values are u128 in units of 2^−64 (so 1.0 = 2^64). For a dyadic γ = g/2^64 we split
//! γ = n + i/2^8 + j/2^16 + r with r < 2^−16 and use exp(−γ) = e^−n · e^−i/256 · e^−j/65536 ·
//! e^−r. The three tables hold integer enclosures of their entries computed once by the
//! arbitrary-precision [`super::exact::exp_neg_bounds`]; e^−r is enclosed by
//! 1 − r ≤ e^−r ≤ 1 − r + r²/2 (Taylor with alternating remainder). Products of lower bounds
//! are rounded down and of upper bounds up, so the result encloses 2^64·exp(−γ). For
//! γ ≥ 45, 2^64·e^−γ < 1 and the enclosure is [0, 1]. Width: a few units of 2^−64 plus the
//! r²/2 ≤ 2^−33 Taylor gap, which only affects how often the exact fallback runs.

use std::sync::OnceLock;

use num_bigint::BigUint;

use super::exact::exp_neg_bounds;

/// 1.0 in units of 2^−64.
pub(crate) const ONE: u128 = 1u128 << 64;
/// Above this integer part, 2^64·exp(−γ) < 1.
const MAX_INT: u64 = 45;

struct Tables {
    int: Vec<(u128, u128)>,
    hi8: Vec<(u128, u128)>,
    mid8: Vec<(u128, u128)>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let entry = |num: u64, den: u64| {
            let (lo, hi) = exp_neg_bounds(&BigUint::from(num), &BigUint::from(den), 64);
            // Both are ≤ 2^64 by construction (exp(−γ) ≤ 1 and the cap in exp_neg_bounds).
            (
                u128::try_from(&lo).unwrap_or(0),
                u128::try_from(&hi).unwrap_or(ONE),
            )
        };
        Tables {
            int: (0..MAX_INT).map(|n| entry(n, 1)).collect(),
            hi8: (0..256).map(|i| entry(i, 256)).collect(),
            mid8: (0..256).map(|j| entry(j, 65_536)).collect(),
        }
    })
}

/// ⌊a·b/2^64⌋ for a, b ≤ 2^64.
fn mul_floor(a: u128, b: u128) -> u128 {
    if a == ONE {
        b
    } else if b == ONE {
        a
    } else {
        (a * b) >> 64
    }
}

/// ⌈a·b/2^64⌉ for a, b ≤ 2^64.
fn mul_ceil(a: u128, b: u128) -> u128 {
    if a == ONE {
        b
    } else if b == ONE {
        a
    } else {
        (a * b + (ONE - 1)) >> 64
    }
}

/// Enclosure `(lo, hi)` of 2^64·exp(−γ) for any γ with `g_lo ≤ 2^64·γ ≤ g_hi`.
pub(crate) fn exp_neg_interval(g_lo: u128, g_hi: u128) -> (u128, u128) {
    (exp_neg_point(g_hi, false), exp_neg_point(g_lo, true))
}

/// Lower (`upper == false`) or upper bound of 2^64·exp(−g/2^64).
fn exp_neg_point(g: u128, upper: bool) -> u128 {
    let n = g >> 64;
    if n >= u128::from(MAX_INT) {
        return u128::from(upper);
    }
    let t = tables();
    let f = g as u64; // fractional part (truncation intended)
    let i = (f >> 56) as usize;
    let j = ((f >> 48) & 0xff) as usize;
    let r = u128::from(f & ((1u64 << 48) - 1));
    let pick = |e: (u128, u128)| if upper { e.1 } else { e.0 };
    let a = pick(t.int[n as usize]);
    let b = pick(t.hi8[i]);
    let c = pick(t.mid8[j]);
    if upper {
        let d = ONE - r + (r * r).div_ceil(1u128 << 65);
        mul_ceil(mul_ceil(mul_ceil(a, b), c), d)
    } else {
        let d = ONE - r;
        mul_floor(mul_floor(mul_floor(a, b), c), d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encloses_exact_bounds() {
        // Compare with the arbitrary-precision enclosure at a range of dyadic γ.
        let mut g: u128 = 12_345;
        for _ in 0..300 {
            g = g
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407)
                % (50u128 << 64);
            let (lo, hi) = exp_neg_interval(g, g);
            let (elo, ehi) = exp_neg_bounds(&BigUint::from(g), &(BigUint::from(1u32) << 64u32), 64);
            let elo = u128::try_from(&elo).unwrap();
            let ehi = u128::try_from(&ehi).unwrap();
            // Both enclose the same real: the intervals must overlap, and ours is valid.
            assert!(lo <= ehi && elo <= hi, "g = {g}");
            assert!(hi - lo < (1u128 << 32), "too wide at g = {g}");
        }
        assert_eq!(exp_neg_interval(0, 0), (ONE, ONE));
        assert_eq!(exp_neg_interval(60 << 64, 60 << 64), (0, 1));
    }
}
