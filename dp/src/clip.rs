//! L2 clipping of real vectors: x ↦ x·min(1, C/‖x‖₂).
//!
//! The norm is computed in f64 for both f32 and f64 inputs, with an exact power-of-two
//! scaling so that squaring cannot overflow (‖x‖ = 2^e·‖x/2^e‖ with 2^e > max|x_i|).
//! Rounding of the clipped products can leave the norm a hair above C; the factor is
//! then shrunk by a relative 2^−40, 2^−39, … until the clipped vector's norm, computed
//! by the same [`l2_norm`], is ≤ C. So `l2_norm(clipped) ≤ C` holds exactly as
//! computed, which is what downstream bounds (randomised rounding, the validity proof)
//! rely on. NaN/±∞ coordinates are a typed error (never silently clamped).

/// Errors of clipping.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClipError {
    /// A coordinate is NaN or infinite.
    #[error("coordinate {index} is not finite")]
    NonFinite {
        /// Index of the first offending coordinate.
        index: usize,
    },
    /// The clipping bound is not a positive finite number.
    #[error("clipping bound {0} must be positive and finite")]
    InvalidBound(f64),
}

/// A real coordinate type (f32 or f64).
pub trait Coordinate: Copy {
    /// The value as f64 (exact for f32 and f64).
    fn to_f64(self) -> f64;
    /// The nearest value of this type.
    fn from_f64(x: f64) -> Self;
}

impl Coordinate for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> Self {
        x
    }
}

impl Coordinate for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

/// What clipping did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipOutcome {
    /// ‖x‖₂ before clipping.
    pub norm_before: f64,
    /// ‖x‖₂ after clipping (≤ the bound).
    pub norm_after: f64,
    /// Whether the vector was scaled down.
    pub clipped: bool,
}

/// ‖x‖₂ in f64, overflow-free.
///
/// The coordinates are scaled by a power of two, `2^−e` with `2^e > max|x_i|`, so the
/// scaling is exact (a product by a power of two only moves the exponent), every
/// scaled square is below 4 and the sum cannot overflow. The sum runs in [`LANES`]
/// independent accumulators, which the compiler keeps in vector registers: one
/// sequential sum would wait on each addition's latency.
///
/// # Errors
/// [`ClipError::NonFinite`] at the first NaN/±∞ coordinate.
pub fn l2_norm<T: Coordinate>(x: &[T]) -> Result<f64, ClipError> {
    let mut max_abs = [0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, v) in max_abs.iter_mut().zip(chunk) {
            // NaN compares false and leaves `m` unchanged; `∞` wins. Both are caught
            // below, by the finiteness of the scaled sum.
            let a = v.to_f64().abs();
            *m = if a > *m { a } else { *m };
        }
    }
    for (m, v) in max_abs.iter_mut().zip(tail) {
        let a = v.to_f64().abs();
        *m = if a > *m { a } else { *m };
    }
    let max_abs = max_abs.iter().fold(0f64, |a, &b| if b > a { b } else { a });
    if !max_abs.is_finite() {
        return Err(first_non_finite(x));
    }
    if max_abs == 0.0 {
        // All zeros, or a NaN among zeros.
        return match x.iter().position(|v| !v.to_f64().is_finite()) {
            Some(index) => Err(ClipError::NonFinite { index }),
            None => Ok(0.0),
        };
    }
    // 2^e > max_abs ≥ 2^(e−1), with max_abs normal or subnormal: e ∈ [−1073, 1024].
    // The scale 2^−e is applied in two exact factors, as 2^−e alone may not be a
    // finite f64 (e = −1073).
    let e = exponent_above(max_abs);
    let (s1, s2) = (pow2(-(e / 2)), pow2(-(e - e / 2)));
    let mut sums = [0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (s, v) in sums.iter_mut().zip(chunk) {
            let v = v.to_f64() * s1 * s2;
            *s += v * v;
        }
    }
    for (s, v) in sums.iter_mut().zip(tail) {
        let v = v.to_f64() * s1 * s2;
        *s += v * v;
    }
    let sum: f64 = sums.iter().sum();
    if !sum.is_finite() {
        // A NaN among finite values.
        return Err(first_non_finite(x));
    }
    Ok(sum.sqrt() * pow2(e / 2) * pow2(e - e / 2))
}

/// Independent partial sums in [`l2_norm`]: eight f64 lanes fill two AVX2 registers
/// (or one AVX-512 register).
const LANES: usize = 8;

/// The error for the first NaN/±∞ coordinate of `x`, which has one.
fn first_non_finite<T: Coordinate>(x: &[T]) -> ClipError {
    let index = x
        .iter()
        .position(|v| !v.to_f64().is_finite())
        .unwrap_or(x.len());
    ClipError::NonFinite { index }
}

/// The least `e` with `2^e > m`, for a finite `m > 0`.
fn exponent_above(m: f64) -> i32 {
    let biased = ((m.to_bits() >> 52) & 0x7FF) as i32;
    if biased == 0 {
        // Subnormal: m = mantissa · 2^−1074, with mantissa < 2^52.
        let mantissa = m.to_bits() & ((1 << 52) - 1);
        (64 - mantissa.leading_zeros()) as i32 - 1074
    } else {
        // Normal: 2^(biased − 1023) ≤ m < 2^(biased − 1022).
        biased - 1022
    }
}

/// `2^k` for `k ∈ [−1022, 1023]`, exactly.
fn pow2(k: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&k), "2^{k} is not a normal f64");
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Clips `x` in place to L2 norm at most `bound`.
///
/// # Errors
/// [`ClipError::InvalidBound`] unless `bound` is positive and finite;
/// [`ClipError::NonFinite`] for NaN/±∞ coordinates (then `x` is unchanged).
pub fn clip_l2<T: Coordinate>(x: &mut [T], bound: f64) -> Result<ClipOutcome, ClipError> {
    if !(bound.is_finite() && bound > 0.0) {
        return Err(ClipError::InvalidBound(bound));
    }
    let norm_before = l2_norm(x)?;
    if norm_before <= bound {
        return Ok(ClipOutcome {
            norm_before,
            norm_after: norm_before,
            clipped: false,
        });
    }
    let original: Vec<T> = x.to_vec();
    let mut factor = bound / norm_before;
    // Shrink steps double (2^−40, 2^−39, …) so that even f32 rounding (relative 2^−24) is
    // absorbed within a few dozen passes.
    let mut step = 2f64.powi(-40);
    loop {
        for (dst, &src) in x.iter_mut().zip(&original) {
            *dst = T::from_f64(src.to_f64() * factor);
        }
        let norm_after = l2_norm(x)?;
        if norm_after <= bound {
            return Ok(ClipOutcome {
                norm_before,
                norm_after,
                clipped: true,
            });
        }
        factor *= 1.0 - step;
        step = (step * 2.0).min(0.5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clips_long_vectors_and_keeps_short_ones() {
        let mut v = vec![3.0f64, 4.0];
        let out = clip_l2(&mut v, 1.0).unwrap();
        assert!(out.clipped);
        assert_eq!(out.norm_before, 5.0);
        assert!((v[0] - 0.6).abs() < 1e-15 && (v[1] - 0.8).abs() < 1e-15);
        let mut w = vec![0.3f32, 0.4];
        let out = clip_l2(&mut w, 1.0).unwrap();
        assert!(!out.clipped);
        assert_eq!(w, vec![0.3f32, 0.4]);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let mut v = vec![1e300f64, 1e300];
        assert!((l2_norm(&v).unwrap() / (1e300 * 2f64.sqrt()) - 1.0).abs() < 1e-15);
        clip_l2(&mut v, 2.0).unwrap();
        assert!(l2_norm(&v).unwrap() <= 2.0);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut v = vec![1.0f32, f32::NAN];
        assert_eq!(clip_l2(&mut v, 1.0), Err(ClipError::NonFinite { index: 1 }));
        let mut v = vec![f64::INFINITY];
        assert_eq!(clip_l2(&mut v, 1.0), Err(ClipError::NonFinite { index: 0 }));
        let mut v = vec![1.0f64];
        for b in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                clip_l2(&mut v, b),
                Err(ClipError::InvalidBound(_))
            ));
        }
    }

    /// The norm by the textbook formula: max-abs division, one sequential sum.
    fn reference_norm(x: &[f64]) -> f64 {
        let m = x.iter().fold(0f64, |a, v| a.max(v.abs()));
        if m == 0.0 {
            return 0.0;
        }
        m * x.iter().map(|v| (v / m) * (v / m)).sum::<f64>().sqrt()
    }

    #[test]
    fn the_first_non_finite_coordinate_is_named_wherever_it_is() {
        // In the lanes, in the tail, among zeros, and after an earlier NaN or ∞.
        for len in [1, 7, 8, 9, 17, 100] {
            for index in [0, len / 2, len - 1] {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    for fill in [0.0, 1.5] {
                        let mut v = vec![fill; len];
                        v[index] = bad;
                        if index + 1 < len {
                            v[len - 1] = f64::NAN;
                        }
                        assert_eq!(l2_norm(&v), Err(ClipError::NonFinite { index }));
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_magnitudes_keep_their_norm() {
        let tiny = f64::from_bits(1); // 2^−1074, the least subnormal
        assert_eq!(l2_norm(&[tiny]).unwrap(), tiny);
        assert_eq!(l2_norm(&[-f64::MAX]).unwrap(), f64::MAX);
        assert_eq!(l2_norm(&[3.0 * tiny, 4.0 * tiny]).unwrap(), 5.0 * tiny);
        let big = 2f64.powi(1020);
        assert_eq!(l2_norm(&[3.0 * big, -4.0 * big]).unwrap(), 5.0 * big);
        assert_eq!(l2_norm(&[0.0f32; 9]).unwrap(), 0.0);
        assert_eq!(l2_norm::<f32>(&[]).unwrap(), 0.0);
    }

    proptest! {
        #[test]
        fn the_lane_sum_agrees_with_the_textbook_norm(
            mantissas in proptest::collection::vec(-1f64..1.0, 0..40),
            exponent in -1070i32..1020,
        ) {
            let x: Vec<f64> = mantissas.iter().map(|m| m * 2f64.powi(exponent)).collect();
            let (fast, reference) = (l2_norm(&x).unwrap(), reference_norm(&x));
            // Both are within a few ulps of the true norm (tiny coordinates lose bits as
            // subnormals either way).
            prop_assert!((fast - reference).abs() <= 1e-13 * reference, "{fast} vs {reference}");
        }

        #[test]
        fn clipped_norm_never_exceeds_bound(
            v in proptest::collection::vec(-1e6f32..1e6, 1..200),
            bound in 1e-3f64..1e3,
        ) {
            let mut v = v;
            let before = v.clone();
            let out = clip_l2(&mut v, bound).unwrap();
            prop_assert!(l2_norm(&v).unwrap() <= bound);
            prop_assert!(out.norm_after <= bound);
            if !out.clipped {
                prop_assert_eq!(v, before);
            }
        }
    }
}
