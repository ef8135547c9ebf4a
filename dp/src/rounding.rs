//! Fixed-point encoding by randomised rounding, and the conditional randomised rounding of
//! Kairouz–Liu–Steinke 2021.
//!
//! **Scaling.** A real x becomes y = x·2^f (a power of two, so the scaling is exact in f64
//! unless it overflows). **Unbiased randomised rounding** returns ⌊y⌋ + Bernoulli(y − ⌊y⌋),
//! so E[round(y)] = y. The fractional part y − ⌊y⌋ is computed exactly in f64 (it is a
//! dyadic rational m/2^k) and the coin is the exact integer comparison ⌊U·2^k⌋ < m on the
//! random bits of U — no floating-point random number is involved.
//!
//! **Conditional randomised rounding** (Kairouz, Liu, Steinke, "The Distributed Discrete
//! Gaussian Mechanism for Federated Learning with Secure Aggregation", ICML 2021, §4; the
//! bound is Proposition 22 of the arXiv version 2102.06387): round a vector with ‖y‖₂ ≤ c
//! independently per coordinate and *retry* until ‖ỹ‖₂² ≤ B², where
//!
//! B² = min{ (c + √d)², c² + d/4 + √(2 ln(1/β))·(c + √d/2) }.
//!
//! The first term holds deterministically (each coordinate moves by < 1); the second holds
//! for one rounding with probability ≥ 1 − β, so the expected number of attempts is
//! ≤ 1/(1 − β). The released vector then has L2 norm ≤ B, the sensitivity to use in the
//! accountant, and B² is the integer bound the validity proof checks. The retry makes the
//! rounding slightly biased (conditioned on the norm event); KLS21 bound that effect.
//! [`inflated_norm_bound_sq`] returns ⌊B²⌋ as an integer (an accepted vector has integer
//! squared norm, so ‖ỹ‖² ≤ B² ⇔ ‖ỹ‖² ≤ ⌊B²⌋).

use rand_core::CryptoRng;

use crate::clip::{ClipError, Coordinate, l2_norm};

/// Largest |x·2^f| accepted (keeps sums of many clients far from i64 overflow).
pub const MAX_SCALED: f64 = 4_611_686_018_427_387_904.0; // 2^62
/// Attempts of conditional rounding before giving up (failure probability ≤ β^1000).
pub const MAX_ATTEMPTS: u32 = 1000;

/// Errors of rounding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RoundingError {
    /// A coordinate is NaN or infinite.
    #[error("coordinate {index} is not finite")]
    NonFinite {
        /// Index of the first offending coordinate.
        index: usize,
    },
    /// |x·2^f| ≥ 2^62.
    #[error("coordinate {index} overflows the fixed-point range at {frac_bits} fractional bits")]
    Overflow {
        /// Index of the first offending coordinate.
        index: usize,
        /// The number of fractional bits f.
        frac_bits: u32,
    },
    /// f > 62.
    #[error("{0} fractional bits is too many (at most 62)")]
    TooManyFractionalBits(u32),
    /// β outside (0, 1) or c not positive and finite.
    #[error("invalid conditional-rounding parameter: {0}")]
    InvalidParameter(&'static str),
    /// The input vector is longer than the clipping bound it claims.
    #[error("input norm {norm} exceeds the clipping bound {bound}")]
    NormExceedsBound {
        /// ‖x‖₂.
        norm: f64,
        /// c.
        bound: f64,
    },
    /// Conditional rounding failed [`MAX_ATTEMPTS`] times (probability ≤ β^1000).
    #[error("conditional rounding did not meet the norm bound in {0} attempts")]
    Rejected(u32),
}

impl From<ClipError> for RoundingError {
    fn from(e: ClipError) -> Self {
        match e {
            ClipError::NonFinite { index } => RoundingError::NonFinite { index },
            _ => RoundingError::InvalidParameter("clipping bound"),
        }
    }
}

/// Scales `x` by 2^`frac_bits` and rounds each coordinate with unbiased randomised rounding.
///
/// # Errors
/// [`RoundingError::NonFinite`], [`RoundingError::Overflow`],
/// [`RoundingError::TooManyFractionalBits`].
pub fn randomized_round<T: Coordinate, R: CryptoRng + ?Sized>(
    rng: &mut R,
    x: &[T],
    frac_bits: u32,
) -> Result<Vec<i64>, RoundingError> {
    let scaled = scale(x, frac_bits)?;
    Ok(scaled.iter().map(|&y| round_one(rng, y)).collect())
}

/// ⌊B²⌋ for the conditional randomised rounding of KLS21 (Proposition 22, arXiv
/// 2102.06387): B² = min{(c + √d)², c² + d/4 + √(2 ln(1/β))·(c + √d/2)}, with c the L2
/// bound *in scaled units* (c = C·2^f), d the dimension and β ∈ (0, 1).
///
/// # Errors
/// [`RoundingError::InvalidParameter`] for c ≤ 0 or non-finite, or β ∉ (0, 1).
pub fn inflated_norm_bound_sq(c: f64, dim: usize, beta: f64) -> Result<u128, RoundingError> {
    if !(c.is_finite() && c > 0.0) {
        return Err(RoundingError::InvalidParameter(
            "c must be positive and finite",
        ));
    }
    if !(beta > 0.0 && beta < 1.0) {
        return Err(RoundingError::InvalidParameter("beta must be in (0, 1)"));
    }
    let d = dim as f64;
    let deterministic = (c + d.sqrt()).powi(2);
    let probabilistic = c * c + d / 4.0 + (2.0 * (1.0 / beta).ln()).sqrt() * (c + d.sqrt() / 2.0);
    // Both are finite and positive; the cast saturates only beyond 2^128.
    Ok(deterministic.min(probabilistic).floor() as u128)
}

/// Conditional randomised rounding (KLS21): scales by 2^`frac_bits`, rounds, and retries
/// until ‖ỹ‖₂² ≤ [`inflated_norm_bound_sq`]`(clip·2^f, d, β)`. Returns the vector and the
/// bound it satisfies. `x` must already be clipped to L2 norm ≤ `clip`.
///
/// # Errors
/// As [`randomized_round`] and [`inflated_norm_bound_sq`];
/// [`RoundingError::NormExceedsBound`] if ‖x‖₂ > clip; [`RoundingError::Rejected`] after
/// [`MAX_ATTEMPTS`] failures.
pub fn conditional_round<T: Coordinate, R: CryptoRng + ?Sized>(
    rng: &mut R,
    x: &[T],
    frac_bits: u32,
    clip: f64,
    beta: f64,
) -> Result<(Vec<i64>, u128), RoundingError> {
    if !(clip.is_finite() && clip > 0.0) {
        return Err(RoundingError::InvalidParameter(
            "clip must be positive and finite",
        ));
    }
    let norm = l2_norm(x)?;
    if norm > clip {
        return Err(RoundingError::NormExceedsBound { norm, bound: clip });
    }
    let scaled = scale(x, frac_bits)?;
    let c = clip * 2f64.powi(i32::try_from(frac_bits).unwrap_or(62));
    let bound_sq = inflated_norm_bound_sq(c, x.len(), beta)?;
    let mut out = vec![0i64; scaled.len()];
    for _ in 0..MAX_ATTEMPTS {
        let mut norm_sq: u128 = 0;
        for (o, &y) in out.iter_mut().zip(&scaled) {
            *o = round_one(rng, y);
            norm_sq = norm_sq.saturating_add(u128::from(o.unsigned_abs()).pow(2));
        }
        if norm_sq <= bound_sq {
            return Ok((out, bound_sq));
        }
    }
    Err(RoundingError::Rejected(MAX_ATTEMPTS))
}

/// x·2^f as f64 (exact), with range checks.
fn scale<T: Coordinate>(x: &[T], frac_bits: u32) -> Result<Vec<f64>, RoundingError> {
    if frac_bits > 62 {
        return Err(RoundingError::TooManyFractionalBits(frac_bits));
    }
    let factor = (1u64 << frac_bits) as f64;
    x.iter()
        .enumerate()
        .map(|(index, v)| {
            let v = v.to_f64();
            if !v.is_finite() {
                return Err(RoundingError::NonFinite { index });
            }
            let y = v * factor;
            if y.abs() >= MAX_SCALED {
                return Err(RoundingError::Overflow { index, frac_bits });
            }
            Ok(y)
        })
        .collect()
}

/// ⌊y⌋ + Bernoulli(y − ⌊y⌋) for |y| < 2^62.
fn round_one<R: CryptoRng + ?Sized>(rng: &mut R, y: f64) -> i64 {
    let floor = y.floor();
    // Exact: y − ⌊y⌋ is representable (same binade or below), in [0, 1).
    let frac = y - floor;
    // |y| < 2^62, so ⌊y⌋ fits in i64.
    let base = floor as i64;
    if frac > 0.0 && bernoulli_dyadic(rng, frac) {
        base + 1
    } else {
        base
    }
}

/// Bernoulli(p) for p ∈ (0, 1) a binary float, exactly: p = m/2^k, and U < p ⇔
/// ⌊U·2^k⌋ < m, decided on the first k bits of U (drawn 64 at a time; for k > 64 the leading
/// k − 64 bits must all be zero since m < 2^53).
fn bernoulli_dyadic<R: CryptoRng + ?Sized>(rng: &mut R, p: f64) -> bool {
    let bits = p.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mantissa, exp) = if biased == 0 {
        (frac, -1074i64)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    // p = mantissa · 2^exp with exp < 0 since p < 1; k = −exp.
    let k = (-exp) as u64;
    if k <= 64 {
        let prefix = rng.next_u64() >> (64 - k);
        return prefix < mantissa;
    }
    let mut leading = k - 64;
    while leading >= 64 {
        if rng.next_u64() != 0 {
            return false;
        }
        leading -= 64;
    }
    if leading > 0 && rng.next_u64() >> (64 - leading) != 0 {
        return false;
    }
    rng.next_u64() < mantissa
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn rounding_is_unbiased_and_adjacent() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let x = [0.3f64, -1.7, 2.0, 1e-20, -0.5];
        let n = 100_000u32;
        let mut sums = [0f64; 5];
        for _ in 0..n {
            let r = randomized_round(&mut rng, &x, 0).unwrap();
            for ((s, &v), &xi) in sums.iter_mut().zip(&r).zip(&x) {
                assert!(v == xi.floor() as i64 || v == xi.ceil() as i64);
                *s += v as f64;
            }
        }
        for (&s, &xi) in sums.iter().zip(&x) {
            let frac = xi - xi.floor();
            let sd = (frac * (1.0 - frac) / f64::from(n)).sqrt();
            assert!((s / f64::from(n) - xi).abs() <= 6.0 * sd + 1e-12, "{xi}");
        }
    }

    proptest::proptest! {
        /// Every output is ⌊x·2^f⌋ or ⌈x·2^f⌉, for any finite input in range.
        #[test]
        fn rounds_to_a_neighbour(
            x in proptest::collection::vec(-1e9f64..1e9, 1..50),
            f in 0u32..20,
            seed in proptest::prelude::any::<[u8; 32]>(),
        ) {
            let mut rng = ChaCha20Rng::from_seed(seed);
            let out = randomized_round(&mut rng, &x, f).unwrap();
            for (&v, &xi) in out.iter().zip(&x) {
                let y = xi * (1u64 << f) as f64;
                proptest::prop_assert!(v == y.floor() as i64 || v == y.ceil() as i64);
            }
        }
    }

    #[test]
    fn tiny_fractions_use_long_prefixes() {
        // p = 2^−70: essentially never true, and exercises the k > 64 branch.
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        assert!((0..10_000).all(|_| !bernoulli_dyadic(&mut rng, 2f64.powi(-70))));
        // p = 1/2 via the k ≤ 64 branch (k = 1).
        let hits = (0..100_000)
            .filter(|_| bernoulli_dyadic(&mut rng, 0.5))
            .count();
        assert!((hits as f64 / 1e5 - 0.5).abs() < 0.006);
    }

    #[test]
    fn scaling_is_exact_and_checked() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        assert_eq!(
            randomized_round(&mut rng, &[1.5f32, -2.25], 2).unwrap(),
            vec![6, -9]
        );
        assert_eq!(
            randomized_round(&mut rng, &[f32::NAN], 2),
            Err(RoundingError::NonFinite { index: 0 })
        );
        assert!(matches!(
            randomized_round(&mut rng, &[1e18f64], 16),
            Err(RoundingError::Overflow { index: 0, .. })
        ));
        assert!(randomized_round(&mut rng, &[1.0f64], 63).is_err());
    }

    /// Reference values computed by hand from the formula:
    /// c = 10, d = 100, β = e^−2 ⇒ √(2 ln(1/β)) = 2: second term 100 + 25 + 2·(10 + 5) = 155,
    /// first (10 + 10)² = 400 ⇒ 155. With β = 1e−300 the second term exceeds the first.
    #[test]
    fn inflated_bound_matches_formula() {
        assert_eq!(
            inflated_norm_bound_sq(10.0, 100, (-2.0f64).exp()).unwrap(),
            155
        );
        // c = 3, d = 1, β → tiny: (3 + 1)² = 16 < 9 + 0.25 + √(2·690.8)·3.5 ≈ 139.3.
        assert_eq!(inflated_norm_bound_sq(3.0, 1, 1e-300).unwrap(), 16);
        assert!(inflated_norm_bound_sq(0.0, 1, 0.5).is_err());
        assert!(inflated_norm_bound_sq(1.0, 1, 0.0).is_err());
        assert!(inflated_norm_bound_sq(1.0, 1, 1.0).is_err());
        assert!(inflated_norm_bound_sq(1.0, 1, f64::NAN).is_err());
    }

    #[test]
    fn conditional_rounding_meets_its_bound() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let d = 1000;
        // A vector on the sphere of radius 1, 8 fractional bits (c = 256 scaled units).
        let x: Vec<f32> = (0..d)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let norm = (d as f32).sqrt();
        let x: Vec<f32> = x.iter().map(|v| v / norm * 0.999_999).collect();
        for _ in 0..50 {
            let (v, bound) = conditional_round(&mut rng, &x, 8, 1.0, 1e-3).unwrap();
            let sq: u128 = v.iter().map(|&a| u128::from(a.unsigned_abs()).pow(2)).sum();
            assert!(sq <= bound);
            // Plain randomised rounding may exceed c² = 65536 (inflation), but stays below
            // the bound; the bound is below the deterministic (c + √d)².
            assert!(bound < (256.0 + (d as f64).sqrt()).powi(2) as u128);
        }
        assert!(matches!(
            conditional_round(&mut rng, &[2.0f64], 8, 1.0, 0.1),
            Err(RoundingError::NormExceedsBound { .. })
        ));
    }
}
