//! `cairn-dp`: the differential-privacy core of Cairn (pure arithmetic, no I/O).
//!
//! - [`accountant`]: zCDP — ρ of a release, composition, tight and simple ε(ρ, δ), inverse.
//! - [`budget`]: a ρ budget whose exact ledger can never pass its limit.
//! - [`cap`]: the δ a cap on a report's sampled records adds (an organisation whose
//!   Poisson sample is larger skips the round), from the binomial tail.
//! - [`calibrate`]: σ for a target ρ or (ε, δ); per-client σ for the distributed discrete
//!   Gaussian (KLS21, with the τ correction).
//! - [`clip`]: L2 clipping of f32/f64 vectors.
//! - [`rdp`]: Rényi DP of the Poisson-subsampled discrete Gaussian (record-level DP-SGD),
//!   composition over a fixed order grid, the improved RDP → (ε, δ) conversion.
//! - [`rounding`]: fixed point by unbiased randomised rounding; KLS21 conditional rounding.
//! - [`sample`]: exact discrete Gaussian / discrete Laplace / Bernoulli(exp(−γ)) samplers.

pub mod accountant;
pub mod budget;
pub mod calibrate;
pub mod cap;
pub mod clip;
pub mod rdp;
pub mod rounding;
pub mod sample;

pub use accountant::{
    AccountantError, epsilon_simple, epsilon_tight, rho_discrete_gaussian, rho_for_epsilon,
};
pub use budget::{Budget, BudgetError, BudgetExceeded, Receipt, Rho};
pub use calibrate::{CalibrateError, client_sigma, sigma_for_epsilon, sigma_for_rho};
pub use cap::{CapError, binomial_tail_above, cap_delta};
pub use clip::{ClipError, clip_l2, l2_norm};
pub use rdp::{RdpCurve, RdpError, epsilon_subsampled, sigma_for_epsilon_subsampled};
pub use rounding::{RoundingError, conditional_round, inflated_norm_bound_sq, randomized_round};
pub use sample::{DiscreteGaussian, DiscreteLaplace, Ratio, SampleError};
