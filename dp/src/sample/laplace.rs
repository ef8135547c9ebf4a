//! The discrete Laplace distribution Lap_Z(t): P(X = x) ∝ exp(−|x|/t) on the integers.
//!
//! Algorithm 2 of Canonne–Kamath–Steinke 2020 ("The Discrete Gaussian for Differential
//! Privacy", NeurIPS 2020), for the rational scale t = num/den (their t/s with t = num,
//! s = den): draw U uniform in {0, …, num−1} and accept it with probability exp(−U/num);
//! draw V ~ Geometric(1 − e^−1) as the number of successes of Bernoulli(e^−1) before the
//! first failure; X = U + num·V is then Geometric(1 − e^−1/num); Y = ⌊X/den⌋ is
//! Geometric(1 − e^−den/num); a fair sign B, rejecting (B = 1, Y = 0), gives ±Y ~ Lap_Z(t).
//! The coins are the exact lazy Bernoulli(exp(−γ)) of [`super::bernoulli_exp`].
//!
//! The output is an `i64`: the (astronomically unlikely, probability < exp(−2^62/t))
//! magnitudes ≥ 2^63 are rejected and redrawn, i.e. the law is Lap_Z(t) conditioned on
//! fitting in an i64.

use rand_core::CryptoRng;

use super::bernoulli::bernoulli_exp;
use super::uniform::uniform_below;
use super::{Ratio, SampleError};

/// An exact sampler of the discrete Laplace distribution with rational scale t > 0.
#[derive(Debug, Clone)]
pub struct DiscreteLaplace {
    scale: Ratio,
}

impl DiscreteLaplace {
    /// A sampler of Lap_Z(scale).
    ///
    /// # Errors
    /// [`SampleError::NotPositive`] if `scale` is zero.
    pub fn new(scale: Ratio) -> Result<Self, SampleError> {
        if scale.num() == 0 {
            return Err(SampleError::NotPositive(0.0));
        }
        Ok(Self { scale })
    }

    /// A sampler of Lap_Z(scale) for a float scale, converted exactly ([`Ratio::from_f64`]).
    ///
    /// # Errors
    /// As [`Ratio::from_f64`], and [`SampleError::NotPositive`] for zero.
    pub fn from_f64(scale: f64) -> Result<Self, SampleError> {
        Self::new(Ratio::from_f64(scale)?)
    }

    /// The scale t.
    pub fn scale(&self) -> Ratio {
        self.scale
    }

    /// One sample.
    pub fn sample<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        let t = self.scale.num();
        let s = self.scale.den();
        let one = Ratio::from_integer(1);
        loop {
            let u = uniform_below(rng, t);
            if !bernoulli_exp(rng, Ratio::raw(u, t)) {
                continue;
            }
            let mut v: u128 = 0;
            while bernoulli_exp(rng, one) {
                v += 1;
            }
            let x = u128::from(u) + u128::from(t) * v;
            let y = x / u128::from(s);
            let negative = rng.next_u64() & 1 == 1;
            if negative && y == 0 {
                continue;
            }
            let Ok(y) = i64::try_from(y) else { continue };
            return if negative { -y } else { y };
        }
    }

    /// Fills `out` with independent samples.
    pub fn fill<R: CryptoRng + ?Sized>(&self, rng: &mut R, out: &mut [i64]) {
        for o in out {
            *o = self.sample(rng);
        }
    }
}
