//! `cairn-dp`: the differential-privacy core of Cairn (pure arithmetic, no I/O).
//!
//! - [`sample`]: exact discrete Gaussian / discrete Laplace / Bernoulli(exp(−γ)) samplers.

pub mod sample;

pub use sample::{DiscreteGaussian, DiscreteLaplace, Ratio, SampleError};
