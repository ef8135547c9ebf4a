//! A zCDP privacy budget: a limit ρ_max and the ρ spent so far, which can never pass it.
//!
//! **Exact bookkeeping.** Every finite non-negative f64 is an integer multiple of 2^−1074, so
//! the budget keeps the limit and the spent total as exact integers in those units
//! (arbitrary precision). `try_spend(ρ)` accepts iff spent + ρ ≤ limit *exactly* — no float
//! rounding can let the true total of accepted spends exceed the limit, however many small
//! spends are added. The flip side is that decimal intuition does not apply: the f64 `0.1` is
//! 0.1000000000000000055…, so ten spends of `0.1` exceed a limit of `1.0` by 5.5·10^−17 and
//! the tenth is refused (nine are accepted). Derive spends from σ and Δ
//! ([`crate::accountant::rho_discrete_gaussian`]) and size the limit from ε, δ
//! ([`crate::accountant::rho_for_epsilon`]); if a plan must split a limit into k equal parts,
//! spend `limit / k` rounded down (e.g. [`Budget::equal_share`]) so that k spends fit.

use num_bigint::BigUint;

use crate::accountant::{AccountantError, epsilon_tight};

/// Errors of budget construction and queries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The limit must be positive and finite (zero, negative and NaN budgets are refused).
    #[error("budget limit {0} must be positive and finite")]
    InvalidLimit(f64),
    /// A spend must be non-negative and finite.
    #[error("spend {0} must be non-negative and finite")]
    InvalidSpend(f64),
    /// An accountant error (δ out of range, …).
    #[error(transparent)]
    Accountant(#[from] AccountantError),
}

/// A spend was refused: it would take the total past the limit. Nothing was recorded.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("spending rho = {requested} would exceed the budget (remaining {remaining})")]
pub struct BudgetExceeded {
    /// The ρ asked for.
    pub requested: f64,
    /// The ρ still available (rounded down to f64).
    pub remaining: f64,
}

/// A validated ρ ≥ 0 to spend.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rho(f64);

impl Rho {
    /// A spend of ρ.
    ///
    /// # Errors
    /// [`BudgetError::InvalidSpend`] for negative, NaN or infinite ρ.
    pub fn new(rho: f64) -> Result<Self, BudgetError> {
        if rho.is_finite() && rho >= 0.0 {
            Ok(Self(rho))
        } else {
            Err(BudgetError::InvalidSpend(rho))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// Proof of an accepted spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Receipt {
    /// ρ spent by this release.
    pub rho: f64,
    /// Total ρ spent after it (rounded up to f64).
    pub spent: f64,
    /// ρ remaining after it (rounded down to f64).
    pub remaining: f64,
    /// Number of accepted spends so far, this one included.
    pub releases: u64,
}

/// A zCDP budget (see the module docs for the exactness contract).
#[derive(Debug, Clone)]
pub struct Budget {
    limit: f64,
    limit_units: BigUint,
    spent_units: BigUint,
    releases: u64,
}

impl Budget {
    /// A fresh budget of `rho_max`.
    ///
    /// # Errors
    /// [`BudgetError::InvalidLimit`] for zero, negative, NaN or infinite limits.
    pub fn new(rho_max: f64) -> Result<Self, BudgetError> {
        if !(rho_max.is_finite() && rho_max > 0.0) {
            return Err(BudgetError::InvalidLimit(rho_max));
        }
        Ok(Self {
            limit: rho_max,
            limit_units: exact_units(rho_max),
            spent_units: BigUint::ZERO,
            releases: 0,
        })
    }

    /// Records a spend of ρ if the exact total stays ≤ the limit; otherwise records nothing.
    ///
    /// # Errors
    /// [`BudgetExceeded`] when spent + ρ > limit.
    pub fn try_spend(&mut self, rho: Rho) -> Result<Receipt, BudgetExceeded> {
        let total = &self.spent_units + exact_units(rho.0);
        if total > self.limit_units {
            return Err(BudgetExceeded {
                requested: rho.0,
                remaining: self.remaining(),
            });
        }
        self.spent_units = total;
        self.releases += 1;
        Ok(Receipt {
            rho: rho.0,
            spent: self.spent(),
            remaining: self.remaining(),
            releases: self.releases,
        })
    }

    /// The limit ρ_max.
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// ρ spent so far (rounded up to the next f64, so never understated).
    pub fn spent(&self) -> f64 {
        units_to_f64(&self.spent_units, true)
    }

    /// ρ still available (rounded down, so never overstated).
    pub fn remaining(&self) -> f64 {
        units_to_f64(&(&self.limit_units - &self.spent_units), false)
    }

    /// Number of accepted spends.
    pub fn releases(&self) -> u64 {
        self.releases
    }

    /// ε(ρ_spent, δ) with the tight conversion.
    ///
    /// # Errors
    /// [`BudgetError::Accountant`] for δ ∉ (0, 1).
    pub fn spent_epsilon(&self, delta: f64) -> Result<f64, BudgetError> {
        Ok(epsilon_tight(self.spent(), delta)?)
    }

    /// ε(ρ_max, δ) − ε(ρ_spent, δ): how much ε (at this δ) the rest of the budget can still
    /// add to the reported total. (ε does not add up across releases; ρ does, so this is the
    /// difference of the two conversions, not the ε of the remaining ρ.)
    ///
    /// # Errors
    /// [`BudgetError::Accountant`] for δ ∉ (0, 1).
    pub fn remaining_epsilon(&self, delta: f64) -> Result<f64, BudgetError> {
        let total = epsilon_tight(self.limit, delta)?;
        Ok((total - self.spent_epsilon(delta)?).max(0.0))
    }

    /// The largest f64 ρ such that `parts` spends of it fit exactly in the limit.
    ///
    /// # Errors
    /// [`BudgetError::InvalidSpend`] for `parts == 0`.
    pub fn equal_share(&self, parts: u64) -> Result<Rho, BudgetError> {
        if parts == 0 {
            return Err(BudgetError::InvalidSpend(f64::NAN));
        }
        let mut share = self.limit / parts as f64;
        let parts_big = BigUint::from(parts);
        while exact_units(share) * &parts_big > self.limit_units {
            share = f64::from_bits(share.to_bits() - 1);
        }
        Rho::new(share)
    }
}

/// x·2^1074 as an exact integer (x finite, ≥ 0).
fn exact_units(x: f64) -> BigUint {
    let bits = x.to_bits();
    let biased = (bits >> 52) & 0x7ff;
    let frac = bits & ((1u64 << 52) - 1);
    if biased == 0 {
        BigUint::from(frac)
    } else {
        BigUint::from(frac | (1u64 << 52)) << (biased - 1)
    }
}

/// The f64 next to `units`·2^−1074, rounded up or down.
fn units_to_f64(units: &BigUint, round_up: bool) -> f64 {
    let bits = units.bits();
    // Keep the top 53 bits; the rest is the rounding remainder.
    let shift = bits.saturating_sub(53);
    let top = units >> shift;
    let exact = (&top << shift) == *units;
    let mantissa = u64::try_from(&top).unwrap_or(u64::MAX) as f64;
    let scale_exp = i32::try_from(shift).unwrap_or(i32::MAX) - 1074;
    let value = mantissa * 2f64.powi(scale_exp.max(-1022)) * 2f64.powi((scale_exp + 1022).min(0));
    if exact || !round_up {
        value
    } else {
        f64::from_bits(value.to_bits() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rho(x: f64) -> Rho {
        Rho::new(x).unwrap()
    }

    #[test]
    fn zero_negative_nan_limits_are_refused() {
        for l in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(Budget::new(l), Err(BudgetError::InvalidLimit(_))));
        }
        for r in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(Rho::new(r), Err(BudgetError::InvalidSpend(_))));
        }
    }

    #[test]
    fn exact_edge_spends() {
        // 0.5 + 0.5 = 1.0 exactly: both fit, nothing more does.
        let mut b = Budget::new(1.0).unwrap();
        assert!(b.try_spend(rho(0.5)).is_ok());
        let last = b.try_spend(rho(0.5)).unwrap();
        assert_eq!((last.spent, last.remaining, last.releases), (1.0, 0.0, 2));
        assert!(b.try_spend(rho(f64::from_bits(1))).is_err());
        assert!(b.try_spend(rho(0.0)).is_ok());
    }

    #[test]
    fn ten_tenths_do_not_fit_in_one() {
        // The f64 0.1 exceeds 1/10, so the tenth spend would pass 1.0 and is refused.
        let mut b = Budget::new(1.0).unwrap();
        for i in 1..=9 {
            assert_eq!(b.try_spend(rho(0.1)).unwrap().releases, i);
        }
        let err = b.try_spend(rho(0.1)).unwrap_err();
        assert_eq!(err.requested, 0.1);
        assert!(err.remaining < 0.1 && err.remaining > 0.0999999);
        assert_eq!(b.releases(), 9);
        // The documented remedy: equal shares that provably fit.
        let mut b = Budget::new(1.0).unwrap();
        let share = b.equal_share(10).unwrap();
        for _ in 0..10 {
            b.try_spend(share).unwrap();
        }
        assert!(b.try_spend(share).is_err());
    }

    #[test]
    fn many_tiny_spends_never_overshoot() {
        // Float summation of 1e6 spends of 1e−6 drifts; the exact ledger does not.
        let mut b = Budget::new(1.0).unwrap();
        let mut accepted = 0u32;
        while b.try_spend(rho(1e-6)).is_ok() {
            accepted += 1;
        }
        // 1e−6 as f64 is slightly *below* 10^−6 (exact rational check in Python:
        // Fraction(1e-6) * 10**6 <= 1), so exactly 10^6 spends fit; a float running sum
        // reaches 1.0000000000079 and would have refused the last ones.
        assert_eq!(accepted, 1_000_000);
        assert!(b.spent() <= 1.0);
    }

    #[test]
    fn epsilon_views() {
        let mut b = Budget::new(2.0).unwrap();
        let full = epsilon_tight(2.0, 1e-5).unwrap();
        assert!((b.remaining_epsilon(1e-5).unwrap() - full).abs() < 1e-12);
        b.try_spend(rho(0.125)).unwrap();
        let spent = b.spent_epsilon(1e-5).unwrap();
        // CSV section C: σ = 2, Δ = 1, one release (ρ = 0.125) gives ε = 2.1657155451754853.
        assert!((spent - 2.165_715_545_175_485_3).abs() < 1e-9);
        assert!((b.remaining_epsilon(1e-5).unwrap() - (full - spent)).abs() < 1e-12);
        assert!(b.spent_epsilon(0.0).is_err());
    }

    #[test]
    fn unit_conversions_round_trip() {
        for x in [0.0, 1.0, 0.1, 1e-300, 5e-324, 123.456, 1e300] {
            assert_eq!(units_to_f64(&exact_units(x), true), x);
            assert_eq!(units_to_f64(&exact_units(x), false), x);
        }
    }
}
