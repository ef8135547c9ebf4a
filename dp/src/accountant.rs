//! zCDP accounting (pure arithmetic).
//!
//! - A discrete-Gaussian release with L2 sensitivity Δ and noise N_Z(0, σ²) per coordinate is
//!   ρ-zCDP with ρ = Δ²/(2σ²) (Canonne–Kamath–Steinke 2020, "The Discrete Gaussian for
//!   Differential Privacy", Theorem 1 for one coordinate and its multivariate form in §2 —
//!   the same ρ as the continuous Gaussian).
//! - Composition adds: ρ-zCDP followed by ρ'-zCDP is (ρ + ρ')-zCDP (Bun–Steinke 2016,
//!   "Concentrated Differential Privacy: Simplifications, Extensions, and Lower Bounds",
//!   Lemma 2.3).
//! - Conversion to (ε, δ)-DP, tight form (CKS20 §2.3, Proposition 12 / Corollary 13 of the
//!   arXiv version; the conversion OpenDP's `make_zCDP_to_approxDP` implements):
//!   ε(ρ, δ) = inf_{α>1} [ αρ + ln(1 − 1/α) − (ln α + ln δ)/(α − 1) ].
//!   We substitute α = 1 + e^t, so that ln(1 − 1/α) = t − ln α and every term is evaluated
//!   without cancellation, scan t ∈ [−60, 60] on a grid of step 1/8 for the best point and
//!   refine it by golden-section search to |Δt| < 1e−13 (the objective is smooth and, in
//!   every regime we checked, unimodal in t; any α gives a *valid* bound, so an imprecise
//!   minimiser can only overstate ε).
//! - The simple bound ε = ρ + 2√(ρ ln(1/δ)) (Bun–Steinke 2016, Proposition 1.3), for
//!   comparison; it is never smaller than the tight one.
//! - The inverse, the largest ρ with ε(ρ, δ) ≤ ε_target, by bisection on ρ (ε is increasing
//!   in ρ) to adjacent floats; the result is checked to satisfy ε(ρ, δ) ≤ ε_target·(1 − 1e−12)
//!   (a relative margin covering the evaluation error of ε), so it is conservative.

/// Errors of the accountant: invalid parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountantError {
    /// σ must be positive and finite.
    #[error("sigma {0} must be positive and finite")]
    InvalidSigma(f64),
    /// Δ must be non-negative (positive for calibration) and finite.
    #[error("sensitivity {0} must be positive and finite")]
    InvalidSensitivity(f64),
    /// δ must lie in (0, 1).
    #[error("delta {0} must lie strictly between 0 and 1")]
    InvalidDelta(f64),
    /// ε must be positive and finite.
    #[error("epsilon {0} must be positive and finite")]
    InvalidEpsilon(f64),
    /// ρ must be non-negative and finite (positive for a budget).
    #[error("rho {0} must be non-negative and finite")]
    InvalidRho(f64),
    /// The number of releases must be at least 1.
    #[error("the number of rounds must be at least 1")]
    ZeroRounds,
}

/// ρ = Δ²/(2σ²) of one discrete-Gaussian release (CKS20 Theorem 1).
///
/// # Errors
/// [`AccountantError::InvalidSensitivity`] for Δ < 0 or non-finite,
/// [`AccountantError::InvalidSigma`] for σ ≤ 0 or non-finite.
pub fn rho_discrete_gaussian(sensitivity: f64, sigma: f64) -> Result<f64, AccountantError> {
    if !(sensitivity.is_finite() && sensitivity >= 0.0) {
        return Err(AccountantError::InvalidSensitivity(sensitivity));
    }
    check_sigma(sigma)?;
    let ratio = sensitivity / sigma;
    Ok(ratio * ratio / 2.0)
}

/// Σ ρ_i: zCDP composes by addition (Bun–Steinke 2016, Lemma 2.3).
///
/// # Errors
/// [`AccountantError::InvalidRho`] for a negative or non-finite term or sum.
pub fn compose(rhos: &[f64]) -> Result<f64, AccountantError> {
    let mut total = 0.0;
    for &rho in rhos {
        check_rho(rho)?;
        total += rho;
    }
    check_rho(total)?;
    Ok(total)
}

/// ρ of `rounds` identical releases of ρ each (T·ρ).
///
/// # Errors
/// [`AccountantError::ZeroRounds`], [`AccountantError::InvalidRho`].
pub fn compose_rounds(rho: f64, rounds: u64) -> Result<f64, AccountantError> {
    check_rho(rho)?;
    if rounds == 0 {
        return Err(AccountantError::ZeroRounds);
    }
    let total = rho * rounds as f64;
    check_rho(total)?;
    Ok(total)
}

/// The tight ε(ρ, δ) = inf_{α>1}[αρ + ln(1 − 1/α) − (ln α + ln δ)/(α − 1)] (CKS20 §2.3,
/// Corollary 13), clamped at 0.
///
/// # Errors
/// [`AccountantError::InvalidRho`], [`AccountantError::InvalidDelta`].
pub fn epsilon_tight(rho: f64, delta: f64) -> Result<f64, AccountantError> {
    check_rho(rho)?;
    check_delta(delta)?;
    if rho == 0.0 {
        return Ok(0.0);
    }
    let log_inv_delta = -delta.ln();
    let objective = |t: f64| {
        let a1 = t.exp(); // α − 1
        let ln_alpha = a1.ln_1p();
        (1.0 + a1) * rho + (t - ln_alpha) + (log_inv_delta - ln_alpha) / a1
    };
    // Coarse scan for the bracket.
    let step = 0.125;
    let mut best_t = -60.0;
    let mut best = f64::INFINITY;
    let mut t = -60.0;
    while t <= 60.0 {
        let v = objective(t);
        if v < best {
            best = v;
            best_t = t;
        }
        t += step;
    }
    // Golden-section refinement on [best_t − step, best_t + step].
    let (mut lo, mut hi) = (best_t - step, best_t + step);
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = hi - inv_phi * (hi - lo);
    let mut x2 = lo + inv_phi * (hi - lo);
    let (mut f1, mut f2) = (objective(x1), objective(x2));
    while hi - lo > 1e-13 {
        if f1 <= f2 {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - inv_phi * (hi - lo);
            f1 = objective(x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + inv_phi * (hi - lo);
            f2 = objective(x2);
        }
    }
    let refined = f1.min(f2).min(best);
    Ok(refined.max(0.0))
}

/// The simple bound ε = ρ + 2√(ρ ln(1/δ)) (Bun–Steinke 2016, Proposition 1.3).
///
/// # Errors
/// [`AccountantError::InvalidRho`], [`AccountantError::InvalidDelta`].
pub fn epsilon_simple(rho: f64, delta: f64) -> Result<f64, AccountantError> {
    check_rho(rho)?;
    check_delta(delta)?;
    Ok(rho + 2.0 * (rho * -delta.ln()).sqrt())
}

/// The largest ρ whose tight ε(ρ, δ) is at most `epsilon` (conservative: the returned ρ
/// satisfies `epsilon_tight(ρ, δ) ≤ epsilon·(1 − 1e−12)`).
///
/// # Errors
/// [`AccountantError::InvalidEpsilon`], [`AccountantError::InvalidDelta`].
pub fn rho_for_epsilon(epsilon: f64, delta: f64) -> Result<f64, AccountantError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(AccountantError::InvalidEpsilon(epsilon));
    }
    check_delta(delta)?;
    let target = epsilon * (1.0 - 1e-12);
    let fits = |rho: f64| epsilon_tight(rho, delta).is_ok_and(|e| e <= target);
    // ε(ρ) ≥ ρ for ρ ≥ the target: start the bracket at [0, ε] and widen if needed.
    let mut lo = 0.0f64;
    let mut hi = epsilon.max(1e-300);
    while fits(hi) {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return Err(AccountantError::InvalidEpsilon(epsilon));
        }
    }
    for _ in 0..2000 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

pub(crate) fn check_sigma(sigma: f64) -> Result<(), AccountantError> {
    if sigma.is_finite() && sigma > 0.0 {
        Ok(())
    } else {
        Err(AccountantError::InvalidSigma(sigma))
    }
}

pub(crate) fn check_rho(rho: f64) -> Result<(), AccountantError> {
    if rho.is_finite() && rho >= 0.0 {
        Ok(())
    } else {
        Err(AccountantError::InvalidRho(rho))
    }
}

pub(crate) fn check_delta(delta: f64) -> Result<(), AccountantError> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(AccountantError::InvalidDelta(delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_formula_and_composition() {
        assert_eq!(rho_discrete_gaussian(1.0, 2.0).unwrap(), 0.125);
        assert_eq!(rho_discrete_gaussian(0.0, 2.0).unwrap(), 0.0);
        assert_eq!(compose(&[0.125, 0.5, 1.0]).unwrap(), 1.625);
        assert_eq!(compose_rounds(0.125, 10).unwrap(), 1.25);
        assert_eq!(compose(&[]).unwrap(), 0.0);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                rho_discrete_gaussian(1.0, s),
                Err(AccountantError::InvalidSigma(_))
            ));
        }
        assert!(rho_discrete_gaussian(f64::NAN, 1.0).is_err());
        assert!(rho_discrete_gaussian(-1.0, 1.0).is_err());
        for d in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                epsilon_tight(1.0, d),
                Err(AccountantError::InvalidDelta(_))
            ));
            assert!(matches!(
                epsilon_simple(1.0, d),
                Err(AccountantError::InvalidDelta(_))
            ));
            assert!(matches!(
                rho_for_epsilon(1.0, d),
                Err(AccountantError::InvalidDelta(_))
            ));
        }
        for e in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                rho_for_epsilon(e, 1e-5),
                Err(AccountantError::InvalidEpsilon(_))
            ));
        }
        assert!(matches!(
            epsilon_tight(f64::NAN, 1e-5),
            Err(AccountantError::InvalidRho(_))
        ));
        assert!(matches!(
            compose(&[1.0, -0.5]),
            Err(AccountantError::InvalidRho(_))
        ));
        assert_eq!(compose_rounds(1.0, 0), Err(AccountantError::ZeroRounds));
    }

    #[test]
    fn tight_is_below_simple_and_monotone() {
        let mut previous = 0.0;
        for i in 1..200 {
            let rho = f64::from(i) * 0.05;
            let tight = epsilon_tight(rho, 1e-6).unwrap();
            let simple = epsilon_simple(rho, 1e-6).unwrap();
            assert!(tight <= simple + 1e-12, "ρ = {rho}");
            assert!(tight > previous);
            previous = tight;
        }
    }

    #[test]
    fn inverse_is_conservative_and_tight() {
        for &(eps, delta) in &[
            (0.1, 1e-5),
            (1.0, 1e-5),
            (3.0, 1e-9),
            (8.0, 1e-6),
            (50.0, 0.01),
        ] {
            let rho = rho_for_epsilon(eps, delta).unwrap();
            let back = epsilon_tight(rho, delta).unwrap();
            assert!(back <= eps, "ε = {eps}: ε(ρ) = {back}");
            assert!(
                back >= eps * (1.0 - 1e-9),
                "ε = {eps}: ε(ρ) = {back} too loose"
            );
        }
    }

    #[test]
    fn the_inverse_widens_its_bracket_where_epsilon_is_below_rho() {
        // At a large δ the tight ε(ρ) falls below ρ, so [0, ε] does not bracket the
        // answer and the search must widen it (its doubling loop).
        for &(eps, delta) in &[(0.5, 0.5), (2.0, 0.9)] {
            assert!(
                epsilon_tight(eps, delta).unwrap() < eps,
                "the premise, at δ = {delta}"
            );
            let rho = rho_for_epsilon(eps, delta).unwrap();
            assert!(rho > eps, "ρ = {rho}");
            let back = epsilon_tight(rho, delta).unwrap();
            assert!(back <= eps, "ε = {eps}: ε(ρ) = {back}");
            assert!(
                back >= eps * (1.0 - 1e-9),
                "ε = {eps}: ε(ρ) = {back} too loose"
            );
        }
    }
}
