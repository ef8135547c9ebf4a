//! Exact positive rationals `num/den` with u64 parts, the parameters of the samplers.
//!
//! A finite `f64` is a dyadic rational m·2^e, so it converts *exactly* to `num/den` with
//! `den` a power of two, provided both parts fit in a u64 after reduction (roughly
//! 2^−63 < x < 2^64 with at most 63 fractional bits). Nothing is rounded: a value that does
//! not fit is an error.

use super::SampleError;

/// A non-negative rational `num/den` in lowest terms, `den ≥ 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    num: u64,
    den: u64,
}

impl Ratio {
    /// `num/den`, reduced to lowest terms.
    ///
    /// # Errors
    /// [`SampleError::ZeroDenominator`] if `den == 0`.
    pub fn new(num: u64, den: u64) -> Result<Self, SampleError> {
        if den == 0 {
            return Err(SampleError::ZeroDenominator);
        }
        let g = gcd(num, den);
        Ok(Self {
            num: num / g,
            den: den / g,
        })
    }

    /// `num/den` without reduction; the caller guarantees `den > 0`.
    pub(crate) const fn raw(num: u64, den: u64) -> Self {
        Self { num, den }
    }

    /// The integer `n` as a ratio.
    pub const fn from_integer(n: u64) -> Self {
        Self { num: n, den: 1 }
    }

    /// The exact value of a finite, non-negative `f64`.
    ///
    /// # Errors
    /// [`SampleError::NotFinite`] for NaN/±∞, [`SampleError::NotPositive`] for negative
    /// values, [`SampleError::NotRepresentable`] if the reduced parts do not fit in u64.
    pub fn from_f64(x: f64) -> Result<Self, SampleError> {
        if !x.is_finite() {
            return Err(SampleError::NotFinite(x));
        }
        if x < 0.0 {
            return Err(SampleError::NotPositive(x));
        }
        if x == 0.0 {
            return Ok(Self { num: 0, den: 1 });
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        // x = mantissa · 2^exp exactly (subnormals have no implicit bit).
        let (mut mantissa, mut exp) = if biased == 0 {
            (frac, -1074i64)
        } else {
            (frac | (1u64 << 52), biased - 1075)
        };
        let tz = i64::from(mantissa.trailing_zeros());
        mantissa >>= tz;
        exp += tz;
        if exp >= 0 {
            let shift = u32::try_from(exp).map_err(|_| SampleError::NotRepresentable(x))?;
            if shift >= 64 || mantissa.leading_zeros() < shift {
                return Err(SampleError::NotRepresentable(x));
            }
            Ok(Self {
                num: mantissa << shift,
                den: 1,
            })
        } else if exp < -63 {
            Err(SampleError::NotRepresentable(x))
        } else {
            Ok(Self {
                num: mantissa,
                den: 1u64 << (-exp),
            })
        }
    }

    /// Numerator (lowest terms).
    pub const fn num(&self) -> u64 {
        self.num
    }

    /// Denominator (lowest terms, ≥ 1).
    pub const fn den(&self) -> u64 {
        self.den
    }

    /// The nearest `f64` (for display and planning only; samplers never use it).
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// `⌊num/den⌋`.
    pub const fn floor(&self) -> u64 {
        self.num / self.den
    }

    /// `⌈num/den⌉`.
    pub const fn ceil(&self) -> u64 {
        self.num.div_ceil(self.den)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_f64_is_exact() {
        let r = Ratio::from_f64(0.1).unwrap();
        // 0.1 as f64 is 3602879701896397 / 2^55.
        assert_eq!((r.num(), r.den()), (3_602_879_701_896_397, 1 << 55));
        assert_eq!(r.to_f64(), 0.1);
        let r = Ratio::from_f64(1_048_576.0).unwrap();
        assert_eq!((r.num(), r.den()), (1 << 20, 1));
        let r = Ratio::from_f64(2.5).unwrap();
        assert_eq!((r.num(), r.den()), (5, 2));
    }

    proptest::proptest! {
        /// Exact conversion: num/den recovers the float bit for bit.
        #[test]
        fn from_f64_round_trips(x in 1e-9f64..1e12) {
            let r = Ratio::from_f64(x).unwrap();
            proptest::prop_assert_eq!(r.to_f64(), x);
            proptest::prop_assert!(r.den().is_power_of_two());
        }
    }

    #[test]
    fn from_f64_rejects_bad_values() {
        assert!(matches!(
            Ratio::from_f64(f64::NAN),
            Err(SampleError::NotFinite(_))
        ));
        assert!(matches!(
            Ratio::from_f64(f64::INFINITY),
            Err(SampleError::NotFinite(_))
        ));
        assert!(matches!(
            Ratio::from_f64(-1.0),
            Err(SampleError::NotPositive(_))
        ));
        assert!(matches!(
            Ratio::from_f64(1e-30),
            Err(SampleError::NotRepresentable(_))
        ));
        assert!(matches!(
            Ratio::from_f64(1e30),
            Err(SampleError::NotRepresentable(_))
        ));
        assert!(Ratio::new(1, 0).is_err());
        assert_eq!(Ratio::new(6, 4).unwrap(), Ratio::new(3, 2).unwrap());
    }
}
