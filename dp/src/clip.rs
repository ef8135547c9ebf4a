//! L2 clipping of real vectors: x ↦ x·min(1, C/‖x‖₂).
//!
//! The norm is computed in f64 for both f32 and f64 inputs, with max-abs scaling so that
//! squaring cannot overflow (‖x‖ = m·‖x/m‖ with m = max|x_i|). After scaling, rounding of
//! the products can leave the norm a hair above C; the factor is then shrunk by a relative
//! 2^−40, 2^−39, … until the clipped vector's norm, computed by the same [`l2_norm`], is
//! ≤ C. So `l2_norm(clipped) ≤ C` holds exactly as computed, which is what downstream
//! bounds (randomised rounding, the validity proof) rely on. NaN/±∞ coordinates are a typed
//! error (never silently clamped).

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
/// # Errors
/// [`ClipError::NonFinite`] at the first NaN/±∞ coordinate.
pub fn l2_norm<T: Coordinate>(x: &[T]) -> Result<f64, ClipError> {
    let mut max_abs: f64 = 0.0;
    for (index, v) in x.iter().enumerate() {
        let v = v.to_f64();
        if !v.is_finite() {
            return Err(ClipError::NonFinite { index });
        }
        max_abs = max_abs.max(v.abs());
    }
    if max_abs == 0.0 {
        return Ok(0.0);
    }
    let sum: f64 = x
        .iter()
        .map(|v| {
            let s = v.to_f64() / max_abs;
            s * s
        })
        .sum();
    Ok(max_abs * sum.sqrt())
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

    proptest! {
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
