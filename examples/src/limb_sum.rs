//! [`LimbSum`]: exact sums of large non-negative values through a narrow secure sum.
//!
//! Cairn encodes every coordinate in b = 16-bit fixed point and clips every report to
//! L2 norm C, so one coordinate carries about 15 bits relative to C. The standardisation
//! statistics `[Σx, Σx², n]` of an organisation span from ~10⁻¹ to ~10⁶ and the
//! variance σ² = Σx²/n − μ² cancels digits, so 15 bits relative to the largest one are
//! not enough. [`LimbSum`] therefore writes each value as a fixed-point integer
//! V = round(v · 2^F) (F = [`LimbLayout::value_frac_bits`]) in base 2^k digits ("limbs"),
//!
//! V = a₀ + a₁·2^k + … + a_{L−1}·2^{k(L−1)},  0 ≤ a_l < 2^k,
//!
//! and submits the L digits of every value as L coordinates of the inner task, each
//! digit a as the real number a·2^−f, which the task's fixed-point encoding represents
//! exactly (f = the inner task's fractional bits, no rounding happens). Summation is
//! linear, so from the released digit sums A_l = Σ_org a_l (exact integers, no carries
//! needed: they are recombined in f64, exact while the total stays below 2^53) the sum of the values is
//! Σ_org V = Σ_l A_l·2^{kl}, then divided by 2^F. k is the largest digit width for which
//! even a vector of all-maximal digits has norm ≤ C, so the client never clips:
//! (2^k − 1)·√(d·L)·2^−f ≤ C.
//!
//! This needs an exact (noise-free) inner sum: a digit sum that is not an integer is
//! reported as [`LimbError::NotExact`] rather than amplified by 2^{kl}.

use thiserror::Error;

use crate::secure_sum::{Aggregate, SecureSum, SecureSumError};

/// How values are split into digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimbLayout {
    /// Digits per value (L).
    pub limbs: u32,
    /// Bits per digit (k).
    pub limb_bits: u32,
    /// The inner task's fractional bits f: a digit a is submitted as a·2^−f.
    pub unit_bits: u32,
    /// Fractional bits F of the values' integer encoding.
    pub value_frac_bits: u32,
}

/// Why a limb-encoded submission or release failed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum LimbError {
    /// No digit width fits the inner task's clip norm.
    #[error("no digit width fits: C·2^f = {scaled_clip} over √(d·L) = {root}")]
    NoFit {
        /// C·2^f of the inner task.
        scaled_clip: f64,
        /// √(d·L).
        root: f64,
    },
    /// The layout is out of range (L·k must be at most 52, f at most 40).
    #[error("invalid layout: {0}")]
    Layout(&'static str),
    /// A value is negative (only non-negative values are encoded).
    #[error("value {index} is negative ({value})")]
    Negative {
        /// Position.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A value needs more than L·k bits at F fractional bits.
    #[error("value {index} ({value}) does not fit in {bits} bits at 2^-{frac} resolution")]
    Overflow {
        /// Position.
        index: usize,
        /// The value.
        value: f32,
        /// L·k.
        bits: u32,
        /// F.
        frac: u32,
    },
    /// A released digit sum is not an integer number of units (the inner sum is noisy).
    #[error("digit sum {index} is not exact ({value} units): limb encoding needs a noise-free sum")]
    NotExact {
        /// Position in the inner vector.
        index: usize,
        /// The digit sum in units of 2^−f.
        value: f64,
    },
}

impl From<LimbError> for SecureSumError {
    fn from(e: LimbError) -> Self {
        SecureSumError::Backend(Box::new(e))
    }
}

impl LimbLayout {
    /// The widest digits for `dimension` values of `limbs` digits each, in an inner task
    /// with clip norm `clip_norm` and `unit_bits` fractional bits, with values encoded at
    /// `value_frac_bits` fractional bits.
    pub fn fit(
        dimension: usize,
        limbs: u32,
        clip_norm: f64,
        unit_bits: u32,
        value_frac_bits: u32,
    ) -> Result<Self, LimbError> {
        if limbs == 0 || dimension == 0 || unit_bits > 40 {
            return Err(LimbError::Layout("need L ≥ 1, d ≥ 1 and f ≤ 40"));
        }
        let scaled_clip = clip_norm * 2f64.powi(unit_bits as i32);
        let root = (dimension as f64 * f64::from(limbs)).sqrt();
        // Largest k ≤ 24 (digits stay exact in f32), with L·k ≤ 52 (a value is an exact
        // f64 integer; the recombined sum is exact while it stays below 2^53) and (2^k − 1)·root ≤ C·2^f.
        let cap = 24.min(52 / limbs);
        let mut limb_bits = 0;
        while limb_bits < cap && (2f64.powi(limb_bits as i32 + 1) - 1.0) * root <= scaled_clip {
            limb_bits += 1;
        }
        if limb_bits == 0 {
            return Err(LimbError::NoFit { scaled_clip, root });
        }
        let layout = Self {
            limbs,
            limb_bits,
            unit_bits,
            value_frac_bits,
        };
        if layout.total_bits() > 52 || value_frac_bits > layout.total_bits() {
            return Err(LimbError::Layout(
                "L·k must be at most 52 and F at most L·k",
            ));
        }
        Ok(layout)
    }

    /// L·k: the bits of a value's integer encoding.
    pub fn total_bits(&self) -> u32 {
        self.limbs * self.limb_bits
    }

    /// Largest value that can be encoded.
    pub fn max_value(&self) -> f64 {
        (2f64.powi(self.total_bits() as i32) - 1.0) / 2f64.powi(self.value_frac_bits as i32)
    }

    /// The digits of `values`, value-major (digit l of value j at `j·L + l`), each as a
    /// real number a·2^−f.
    pub fn encode(&self, values: &[f32]) -> Result<Vec<f32>, LimbError> {
        let bits = self.total_bits();
        let scale = 2f64.powi(self.value_frac_bits as i32);
        let unit = 2f64.powi(-(self.unit_bits as i32));
        let base = 1u64 << self.limb_bits;
        let mut out = Vec::with_capacity(values.len() * self.limbs as usize);
        for (index, &value) in values.iter().enumerate() {
            if value.is_sign_negative() && value != 0.0 {
                return Err(LimbError::Negative { index, value });
            }
            let scaled = (f64::from(value) * scale).round();
            if !scaled.is_finite() || scaled >= 2f64.powi(bits as i32) {
                return Err(LimbError::Overflow {
                    index,
                    value,
                    bits,
                    frac: self.value_frac_bits,
                });
            }
            // 0 ≤ scaled < 2^52: the conversion is exact.
            let mut integer = scaled as u64;
            for _ in 0..self.limbs {
                // A digit is below 2^k ≤ 2^24 and a·2^−f is a power-of-two scaling:
                // exact in f32.
                out.push(((integer % base) as f64 * unit) as f32);
                integer /= base;
            }
        }
        Ok(out)
    }

    /// The sums of the values from the released digit sums (see the module docs).
    pub fn decode(&self, digit_sums: &[f64]) -> Result<Vec<f64>, LimbError> {
        let unit_inverse = 2f64.powi(self.unit_bits as i32);
        let scale_inverse = 2f64.powi(-(self.value_frac_bits as i32));
        let mut out = Vec::with_capacity(digit_sums.len() / self.limbs as usize);
        for (j, digits) in digit_sums.chunks(self.limbs as usize).enumerate() {
            let mut total = 0.0;
            for (l, &sum) in digits.iter().enumerate() {
                let units = sum * unit_inverse;
                let integer = units.round();
                if (units - integer).abs() > 1e-6 {
                    return Err(LimbError::NotExact {
                        index: j * self.limbs as usize + l,
                        value: units,
                    });
                }
                total += integer * 2f64.powi((self.limb_bits as usize * l) as i32);
            }
            out.push(total * scale_inverse);
        }
        Ok(out)
    }
}

/// A [`SecureSum`] of non-negative values of `dimension` coordinates, carried exactly by
/// an inner secure sum of `dimension · L` digits.
#[derive(Debug)]
pub struct LimbSum<S> {
    inner: S,
    layout: LimbLayout,
    dimension: usize,
}

impl<S: SecureSum> LimbSum<S> {
    /// Wraps `inner`, whose dimension must be `dimension · layout.limbs`.
    pub fn new(inner: S, dimension: usize, layout: LimbLayout) -> Result<Self, SecureSumError> {
        let expected = dimension * layout.limbs as usize;
        if inner.dimension() != expected {
            return Err(SecureSumError::Dimension {
                expected,
                found: inner.dimension(),
            });
        }
        Ok(Self {
            inner,
            layout,
            dimension,
        })
    }

    /// The digit layout.
    pub fn layout(&self) -> &LimbLayout {
        &self.layout
    }

    /// The inner backend.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: SecureSum> SecureSum for LimbSum<S> {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn submit(&mut self, org: usize, round: u32, update: &[f32]) -> Result<(), SecureSumError> {
        crate::secure_sum::check_update(self.dimension, update)?;
        let digits = self.layout.encode(update)?;
        self.inner.submit(org, round, &digits)
    }

    fn collect(&mut self, round: u32) -> Result<Aggregate, SecureSumError> {
        let aggregate = self.inner.collect(round)?;
        Ok(Aggregate {
            sum: self.layout.decode(&aggregate.sum)?,
            count: aggregate.count,
            epsilon_spent: aggregate.epsilon_spent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure_sum::PlaintextSum;

    #[test]
    fn fit_keeps_the_worst_case_digit_vector_inside_the_clip() {
        let layout = LimbLayout::fit(77, 5, 1.0, 14, 16).unwrap();
        let root = (77.0f64 * 5.0).sqrt();
        let max_norm = (2f64.powi(layout.limb_bits as i32) - 1.0) * root;
        assert!(max_norm <= 2f64.powi(14));
        // One more bit would not fit.
        assert!((2f64.powi(layout.limb_bits as i32 + 1) - 1.0) * root > 2f64.powi(14));
        assert!(matches!(
            LimbLayout::fit(77, 5, 1.0, 0, 0),
            Err(LimbError::NoFit { .. })
        ));
    }

    #[test]
    fn digits_round_trip_and_sum_exactly() {
        let layout = LimbLayout::fit(3, 5, 1.0, 14, 16).unwrap();
        let mut s = LimbSum::new(PlaintextSum::new(15), 3, layout).unwrap();
        let a = [1_234_567.5f32, 0.125, 0.0];
        let b = [7.0f32, 3.0e5, 0.2];
        s.submit(0, 0, &a).unwrap();
        s.submit(1, 0, &b).unwrap();
        let out = s.collect(0).unwrap();
        assert_eq!(out.count, 2);
        for j in 0..3 {
            let want = f64::from(a[j]) + f64::from(b[j]);
            // Each value is rounded to 2^-16 once.
            assert!((out.sum[j] - want).abs() <= 2.0 * 2f64.powi(-17), "{j}");
        }
        // The digit vector of large values stays within the clip norm.
        let digits = layout
            .encode(&[(layout.max_value() * 0.999) as f32; 3])
            .unwrap();
        let norm: f64 = digits
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(norm <= 1.0, "{norm}");
    }

    #[test]
    fn rejects_what_it_cannot_carry() {
        let layout = LimbLayout::fit(1, 2, 1.0, 14, 4).unwrap();
        assert!(matches!(
            layout.encode(&[-1.0]),
            Err(LimbError::Negative { index: 0, .. })
        ));
        let too_big = (layout.max_value() * 2.0) as f32;
        assert!(matches!(
            layout.encode(&[too_big]),
            Err(LimbError::Overflow { index: 0, .. })
        ));
        // A noisy digit sum is refused rather than amplified.
        assert!(matches!(
            layout.decode(&[0.5 * 2f64.powi(-14), 0.0]),
            Err(LimbError::NotExact { index: 0, .. })
        ));
    }
}
