//! Exact samplers for differentially private noise.
//!
//! Everything here is **exact**: given perfect random bits, the output distribution is exactly
//! the stated one, with no floating-point approximation anywhere. All randomness is drawn from
//! an injected `R: rand_core::CryptoRng` (in production a CSPRNG such as ChaCha20).
//!
//! - [`Ratio`]: positive rationals `num/den` (u64), the exact parameters of the samplers; an
//!   `f64` converts to a `Ratio` *exactly* (every finite binary float is a dyadic rational) or
//!   not at all.
//! - [`bernoulli_exp`]: Bernoulli(exp(−γ)) for rational γ ≥ 0 by lazy exact comparison of a
//!   uniform real with exp(−γ) (see *The exactness tool* below), and
//!   [`bernoulli_exp_cks20`], the literal Algorithm 1 of Canonne–Kamath–Steinke 2020, kept
//!   as a cross-check.
//! - [`DiscreteLaplace`]: Algorithm 2 of CKS20 ("The Discrete Gaussian for Differential
//!   Privacy", NeurIPS 2020), with the fast exact Bernoulli coins.
//! - [`poisson_subsample`]: Poisson subsampling (each item kept with probability q), the
//!   sampling of record-level DP-SGD.
//! - [`DiscreteGaussian`]: N_Z(0, σ²) by rejection from a dyadic block envelope, exact and fast
//!   (≈ 2 random words per sample); its module docs give the proof of exactness. CKS20
//!   Algorithm 3 is provided as [`discrete_gaussian_cks20`], the slower textbook reference.
//!
//! ## The exactness tool: lazy comparison
//! A Bernoulli(p) coin is `[U < p]` for a uniform real U ∈ [0, 1). We draw U's binary
//! expansion lazily, 64 bits at a time, and compare it with rigorous integer bounds
//! `lo ≤ 2^k·p ≤ hi`. If U's known prefix lies entirely below `lo` or above `hi` the answer is
//! exact; otherwise we draw 64 more bits of U and tighten the bounds on p. The first round uses
//! 64-bit fixed-point tables (`fastexp`), later rounds arbitrary-precision integers (`exact`).
//! Since p is irrational (exp of a non-zero rational, Lindemann) or known exactly, the loop
//! ends with probability 1, and the outcome is `[U < p]` exactly.

//!
//! ## Timing
//! The samplers are rejection samplers: how many random words they draw and which branch
//! they take depend on the value sampled, so their running time is variable and correlated
//! with the (secret) noise. They are exact in distribution, not constant-time; a local
//! timing attacker on the sampling host is outside what they defend against.

mod bernoulli;
mod exact;
mod fastexp;
mod gaussian;
mod laplace;
mod poisson;
mod ratio;
mod uniform;

pub use bernoulli::{bernoulli_exp, bernoulli_exp_cks20, bernoulli_ratio};
pub use gaussian::{DiscreteGaussian, MAX_SIGMA, MIN_SIGMA, discrete_gaussian_cks20};
pub use laplace::DiscreteLaplace;
pub use poisson::poisson_subsample;
pub use ratio::Ratio;
pub use uniform::uniform_below;

/// Errors of the samplers: bad parameters only (sampling itself cannot fail).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// A denominator was zero.
    #[error("denominator must be positive")]
    ZeroDenominator,
    /// A float parameter was NaN or infinite.
    #[error("parameter {0} is not finite")]
    NotFinite(f64),
    /// A parameter was negative, or zero where a positive value is needed.
    #[error("parameter {0} must be positive")]
    NotPositive(f64),
    /// A float is finite but not representable as a ratio of two u64 (too small or too large).
    #[error("parameter {0} is not exactly representable as u64/u64")]
    NotRepresentable(f64),
    /// σ outside the supported range [`MIN_SIGMA`, `MAX_SIGMA`].
    #[error("sigma {sigma} outside the supported range [{min}, {max}]")]
    SigmaOutOfRange {
        /// The σ given.
        sigma: f64,
        /// Smallest supported σ.
        min: f64,
        /// Largest supported σ.
        max: f64,
    },
}
