//! Noise calibration: the σ to use for a privacy target.
//!
//! **Central (one discrete Gaussian).** ρ = Δ²/(2σ²) (Canonne–Kamath–Steinke 2020,
//! Theorem 1), so σ = Δ/√(2ρ). For a target (ε, δ) over T releases: ρ_total =
//! [`crate::accountant::rho_for_epsilon`]`(ε, δ)`, ρ per release = ρ_total/T.
//!
//! **Distributed (client-side) discrete Gaussian.** Each of n clients adds N_Z(0, σ²) per
//! coordinate; the sum is *not* exactly N_Z(0, nσ²), but close to it. Kairouz–Liu–Steinke
//! 2021 ("The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure
//! Aggregation", ICML 2021), Theorem 1: the sum of the n noises added to a d-dimensional
//! query of L2 sensitivity Δ is ½ε²-concentrated DP with
//!
//! ε = min{ √(Δ²/(nσ²) + 2τd), Δ/(√n·σ) + τ√d },  τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)),
//!
//! i.e. ρ = ½·min{Δ²/(nσ²) + 2τd, (Δ/(√n·σ) + τ√d)²}. (The per-order Rényi form is
//! Proposition 14 of the arXiv version 2102.06387.) τ is negligible for σ ≳ 2 but not for
//! σ ≈ 1 and large d. The guarantee needs all n = n_min clients' noise in the sum: the round
//! must be refused if fewer than n_min reports are aggregated. Units: σ and Δ in the
//! quantised (integer) units of the encoded vectors.
//!
//! All calibrations are conservative: the returned σ is checked, with the same formulas the
//! accountant uses, to give ρ(σ) ≤ the target (bumped up by ulps if float rounding says
//! otherwise).

use crate::accountant::{AccountantError, check_rho, rho_discrete_gaussian, rho_for_epsilon};
use crate::budget::Budget;

/// Errors of calibration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// The target ρ must be positive and finite.
    #[error("target rho {0} must be positive and finite")]
    InvalidRho(f64),
    /// Δ must be positive and finite.
    #[error("sensitivity {0} must be positive and finite")]
    InvalidSensitivity(f64),
    /// n (clients) and d (dimension) must be at least 1; T (rounds) too.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    /// σ must be positive and finite.
    #[error("sigma {0} must be positive and finite")]
    InvalidSigma(f64),
    /// An accountant error (ε, δ out of range).
    #[error(transparent)]
    Accountant(#[from] AccountantError),
    /// No finite σ meets the target (e.g. τ·d alone exceeds it).
    #[error("no finite sigma meets the target")]
    Unreachable,
}

/// σ = Δ/√(2ρ): the smallest σ with Δ²/(2σ²) ≤ ρ (CKS20 Theorem 1).
///
/// # Errors
/// [`CalibrateError::InvalidRho`], [`CalibrateError::InvalidSensitivity`].
pub fn sigma_for_rho(rho: f64, sensitivity: f64) -> Result<f64, CalibrateError> {
    check_target(rho)?;
    check_sensitivity(sensitivity)?;
    let mut sigma = sensitivity / (2.0 * rho).sqrt();
    while rho_discrete_gaussian(sensitivity, sigma)? > rho {
        sigma = next_up(sigma);
    }
    Ok(sigma)
}

/// σ for T discrete-Gaussian releases of sensitivity Δ under a total (ε, δ) target
/// (tight CKS20 conversion), such that T releases of ρ = Δ²/(2σ²) fit ρ(ε, δ) **exactly**
/// as a [`Budget`] counts them: σ is calibrated for the largest per-release ρ of which T
/// fit the budget ([`Budget::equal_share`]), so a ledger enforcing that budget accepts
/// all T releases (computing `T·ρ ≤ total` in floating point could round a true excess
/// away, and the T-th release would then be refused).
///
/// # Errors
/// Invalid ε, δ, Δ or T = 0.
pub fn sigma_for_epsilon(
    epsilon: f64,
    delta: f64,
    sensitivity: f64,
    rounds: u64,
) -> Result<f64, CalibrateError> {
    if rounds == 0 {
        return Err(CalibrateError::ZeroCount("rounds"));
    }
    check_sensitivity(sensitivity)?;
    let total = rho_for_epsilon(epsilon, delta)?;
    let share = Budget::new(total)
        .and_then(|b| b.equal_share(rounds))
        .map_err(|_| CalibrateError::InvalidRho(total))?
        .get();
    sigma_for_rho(share, sensitivity)
}

/// τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)) of KLS21 Theorem 1 (σ per client).
///
/// # Errors
/// [`CalibrateError::InvalidSigma`], [`CalibrateError::ZeroCount`] for n = 0.
pub fn kls21_tau(sigma: f64, clients: u64) -> Result<f64, CalibrateError> {
    check_sigma(sigma)?;
    if clients == 0 {
        return Err(CalibrateError::ZeroCount("clients"));
    }
    let c = 2.0 * std::f64::consts::PI.powi(2) * sigma * sigma;
    let mut sum = 0.0;
    for k in 1..clients {
        let term = (-c * k as f64 / (k as f64 + 1.0)).exp();
        // Terms decrease in k towards exp(−c); once below 1e−300 relative they cannot matter.
        sum += term;
        if term == 0.0 {
            break;
        }
    }
    Ok(10.0 * sum)
}

/// ρ of the distributed discrete Gaussian (KLS21 Theorem 1): n clients each add
/// N_Z(0, σ²) to each of d coordinates of a query with L2 sensitivity Δ;
/// ρ = ½·min{Δ²/(nσ²) + 2τd, (Δ/(√n·σ) + τ√d)²}.
///
/// # Errors
/// Invalid σ or Δ, n = 0 or d = 0.
pub fn rho_distributed(
    sensitivity: f64,
    sigma: f64,
    clients: u64,
    dim: u64,
) -> Result<f64, CalibrateError> {
    check_sensitivity(sensitivity)?;
    if dim == 0 {
        return Err(CalibrateError::ZeroCount("dim"));
    }
    let tau = kls21_tau(sigma, clients)?;
    let n = clients as f64;
    let d = dim as f64;
    let scale = sensitivity / (n.sqrt() * sigma);
    let first = scale * scale + 2.0 * tau * d;
    let second = (scale + tau * d.sqrt()).powi(2);
    Ok(0.5 * first.min(second))
}

/// The smallest per-client σ (to float precision, rounded up) with
/// [`rho_distributed`]`(Δ, σ, n_min, d) ≤ ρ` — the client-side noise for a round that
/// aggregates at least n_min reports.
///
/// # Errors
/// Invalid ρ or Δ, n_min = 0 or d = 0, [`CalibrateError::Unreachable`].
pub fn client_sigma(
    rho: f64,
    sensitivity: f64,
    min_clients: u64,
    dim: u64,
) -> Result<f64, CalibrateError> {
    check_target(rho)?;
    check_sensitivity(sensitivity)?;
    if min_clients == 0 {
        return Err(CalibrateError::ZeroCount("clients"));
    }
    if dim == 0 {
        return Err(CalibrateError::ZeroCount("dim"));
    }
    let fits = |sigma: f64| rho_distributed(sensitivity, sigma, min_clients, dim).map(|r| r <= rho);
    // Without τ the answer is Δ/√(2ρn); τ > 0 only raises ρ, so start there.
    let base = sensitivity / (2.0 * rho * min_clients as f64).sqrt();
    check_sigma(base).map_err(|_| CalibrateError::Unreachable)?;
    if fits(base)? {
        return Ok(base);
    }
    let (mut lo, mut hi) = (base, base * 2.0);
    while !fits(hi)? {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return Err(CalibrateError::Unreachable);
        }
    }
    loop {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            return Ok(hi);
        }
        if fits(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
}

fn check_target(rho: f64) -> Result<(), CalibrateError> {
    if check_rho(rho).is_ok() && rho > 0.0 {
        Ok(())
    } else {
        Err(CalibrateError::InvalidRho(rho))
    }
}

fn check_sensitivity(sensitivity: f64) -> Result<(), CalibrateError> {
    if sensitivity.is_finite() && sensitivity > 0.0 {
        Ok(())
    } else {
        Err(CalibrateError::InvalidSensitivity(sensitivity))
    }
}

fn check_sigma(sigma: f64) -> Result<(), CalibrateError> {
    if sigma.is_finite() && sigma > 0.0 {
        Ok(())
    } else {
        Err(CalibrateError::InvalidSigma(sigma))
    }
}

fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct File {
        rho_cases: Vec<RhoCase>,
        client_sigma_cases: Vec<SigmaCase>,
    }

    #[derive(Deserialize)]
    struct RhoCase {
        sensitivity: f64,
        sigma: f64,
        clients: u64,
        dim: u64,
        tau: f64,
        rho: f64,
    }

    #[derive(Deserialize)]
    struct SigmaCase {
        rho: f64,
        sensitivity: f64,
        clients: u64,
        dim: u64,
        client_sigma: f64,
    }

    fn vectors() -> File {
        serde_json::from_str(include_str!("../testvectors/kls21_ddg.json")).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(f64::MIN_POSITIVE)
    }

    /// Values from dp/testvectors/gen_kls21.py (Python stdlib, independent implementation).
    #[test]
    fn kls21_accounting_matches_python_reference() {
        for c in vectors().rho_cases {
            let tau = kls21_tau(c.sigma, c.clients).unwrap();
            assert!(
                close(tau, c.tau, 1e-12) || (tau == 0.0 && c.tau == 0.0),
                "τ {tau} vs {}",
                c.tau
            );
            let rho = rho_distributed(c.sensitivity, c.sigma, c.clients, c.dim).unwrap();
            assert!(close(rho, c.rho, 1e-12), "ρ {rho} vs {}", c.rho);
        }
    }

    #[test]
    fn client_sigma_matches_python_reference_and_is_conservative() {
        for c in vectors().client_sigma_cases {
            let sigma = client_sigma(c.rho, c.sensitivity, c.clients, c.dim).unwrap();
            assert!(
                close(sigma, c.client_sigma, 1e-12),
                "σ {sigma} vs {}",
                c.client_sigma
            );
            assert!(rho_distributed(c.sensitivity, sigma, c.clients, c.dim).unwrap() <= c.rho);
        }
    }

    #[test]
    fn one_client_is_the_central_mechanism() {
        let rho = rho_distributed(3.0, 2.0, 1, 1000).unwrap();
        assert_eq!(rho, rho_discrete_gaussian(3.0, 2.0).unwrap());
        assert_eq!(kls21_tau(0.5, 1).unwrap(), 0.0);
    }

    #[test]
    fn central_calibration_is_conservative() {
        // Δ = 1, ρ = 0.125 ⇒ σ = 2 exactly.
        assert_eq!(sigma_for_rho(0.125, 1.0).unwrap(), 2.0);
        for &(eps, delta, t) in &[(1.0, 1e-5, 1u64), (8.0, 1e-6, 100), (0.5, 1e-9, 7)] {
            let sigma = sigma_for_epsilon(eps, delta, 1.0, t).unwrap();
            let rho = rho_discrete_gaussian(1.0, sigma).unwrap() * t as f64;
            let eps_back = crate::accountant::epsilon_tight(rho, delta).unwrap();
            assert!(
                eps_back <= eps && eps_back > eps * (1.0 - 1e-9),
                "{eps_back} vs {eps}"
            );
        }
        // All T releases fit a budget that counts exactly (the demo's case: Δ = 16416,
        // ε = 8, δ = 1e-6, T = 3, where f64 arithmetic said they fit and they did not).
        for &(eps, delta, sens, t) in &[
            (8.0, 1e-6, 16416.0, 3u64),
            (4.0, 1e-6, 1028.0, 10),
            (1.0, 1e-5, 1.0, 7),
        ] {
            let sigma = sigma_for_epsilon(eps, delta, sens, t).unwrap();
            let rho = crate::budget::Rho::new(rho_discrete_gaussian(sens, sigma).unwrap()).unwrap();
            let mut budget = Budget::new(rho_for_epsilon(eps, delta).unwrap()).unwrap();
            for release in 0..t {
                assert!(
                    budget.try_spend(rho).is_ok(),
                    "release {release} of {t} refused"
                );
            }
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(
            sigma_for_rho(0.0, 1.0),
            Err(CalibrateError::InvalidRho(_))
        ));
        assert!(matches!(
            sigma_for_rho(f64::NAN, 1.0),
            Err(CalibrateError::InvalidRho(_))
        ));
        assert!(matches!(
            sigma_for_rho(1.0, 0.0),
            Err(CalibrateError::InvalidSensitivity(_))
        ));
        assert!(matches!(
            sigma_for_epsilon(1.0, 1e-5, 1.0, 0),
            Err(CalibrateError::ZeroCount(_))
        ));
        assert!(matches!(
            sigma_for_epsilon(0.0, 1e-5, 1.0, 1),
            Err(CalibrateError::Accountant(AccountantError::InvalidEpsilon(
                _
            )))
        ));
        assert!(matches!(
            sigma_for_epsilon(1.0, 1.0, 1.0, 1),
            Err(CalibrateError::Accountant(AccountantError::InvalidDelta(_)))
        ));
        assert!(matches!(
            kls21_tau(-1.0, 3),
            Err(CalibrateError::InvalidSigma(_))
        ));
        assert!(matches!(
            client_sigma(1.0, 1.0, 0, 1),
            Err(CalibrateError::ZeroCount(_))
        ));
        assert!(matches!(
            client_sigma(1.0, 1.0, 1, 0),
            Err(CalibrateError::ZeroCount(_))
        ));
    }

    #[test]
    fn client_sigma_widens_its_bracket_when_tau_dominates() {
        // A large ρ with many coordinates: at twice the τ-free σ = Δ/√(2ρn) the KLS21
        // τ term still dominates, so the search doubles its upper end several times.
        let (rho, clients, dim) = (50.0, 10, 1_000_000);
        let base = 1.0 / (2.0 * rho * clients as f64).sqrt();
        assert!(rho_distributed(1.0, 2.0 * base, clients, dim).unwrap() > rho);
        let sigma = client_sigma(rho, 1.0, clients, dim).unwrap();
        assert!(sigma > 4.0 * base, "σ = {sigma}");
        assert!(rho_distributed(1.0, sigma, clients, dim).unwrap() <= rho);
        assert!(rho_distributed(1.0, sigma * (1.0 - 1e-9), clients, dim).unwrap() > rho);
    }

    #[test]
    fn a_zero_or_negative_client_sigma_is_refused() {
        for sigma in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(kls21_tau(sigma, 3), Err(CalibrateError::InvalidSigma(_))),
                "σ = {sigma}"
            );
            assert!(rho_distributed(1.0, sigma, 3, 10).is_err(), "σ = {sigma}");
        }
    }
}
