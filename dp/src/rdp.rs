//! Rényi DP of the Poisson-subsampled discrete Gaussian, on a fixed grid of integer
//! orders, its composition, and its conversion to (ε, δ).
//!
//! # The mechanism
//! Every record of every data holder is included in a round independently with
//! probability `q` (Poisson sampling); each data holder's sum of its included
//! records' clipped vectors is scaled and rounded once to integers (randomised
//! rounding), and the released sum receives discrete Gaussian noise `N_Z(0, σ²)^d`.
//! Two neighbouring datasets differ in one record. Rounding both datasets' sums with
//! the same uniform variables, the record changes the rounded sum by an integer
//! vector `μ` with `‖μ‖₂ ≤ Δ` (`cairn-protocol`'s `privacy` module: `Δ = C·2^f + √d`),
//! which depends on that common draw. Everything else (the other records, their
//! sampling, the rounding's uniform variables) is a common random condition; it enters
//! both output distributions as a mixture with the same weights, which cannot increase
//! a Rényi divergence (`exp((α−1)·D_α)` is jointly convex), and the bound below
//! depends on `μ` only through `‖μ‖₂ ≤ Δ`, so it suffices to bound the pair
//! `P = N_Z(0, σ²)^d`, `Q = N_Z(μ, σ²)^d` and the subsampled pair built from it:
//! `(M, P)` when the record is added and `(P, M)` when it is removed, with
//! `M = (1 − q)·P + q·Q`.
//!
//! # The add direction, exactly, at integer orders
//! With `L = Q/P = exp((2⟨μ, x⟩ − ‖μ‖²)/(2σ²))`,
//! `A_α = E_P[(M/P)^α] = Σ_{k=0}^{α} C(α, k) (1 − q)^{α−k} q^k E_P[L^k]`.
//! For an integer vector `kμ` the discrete Gaussian's moment generating function is the
//! continuous one: `Σ_{x∈ℤ} exp(−(x − kμ_i)²/(2σ²)) = Σ_{x∈ℤ} exp(−x²/(2σ²))` (a shift
//! by an integer permutes ℤ), hence `E_P[exp(k⟨μ, x⟩/σ²)] = exp(k²‖μ‖²/(2σ²))` and
//!
//! ```text
//! A_α = Σ_{k=0}^{α} C(α, k) (1 − q)^{α−k} q^k exp((k² − k)·‖μ‖²/(2σ²)),
//! ```
//!
//! increasing in `‖μ‖`, so `‖μ‖ = Δ` is the worst case. This is the closed form of
//! Mironov, Talwar and Zhang (2019), *Rényi Differential Privacy of the Sampled Gaussian
//! Mechanism*, §3.3, for the continuous Gaussian; the identity above carries it to the
//! discrete Gaussian exactly (it is not an approximation of it).
//!
//! # The remove direction is no worse
//! `B_α = E_M[(P/M)^α] ≤ A_α` for any pair swapped by an involution `φ`
//! (`P∘φ = Q`, `Q∘φ = P`); here `φ(x) = μ − x`, which maps `ℤ^d` to itself. Proof: the
//! involution gives `E_P[f(L)] = E_P[L·f(1/L)]`. With `u = (1 − q)L + q` and
//! `v = 1 − q + qL`, `A_α = E_P[v^α] = E_P[L^{1−α} u^α]` and
//! `B_α = E_P[v^{1−α}] = E_P[L^α u^{1−α}]`, so `2(A_α − B_α) = E_P[c(L)]` with
//! `c(L) = u^α L^{1−α} − L^α u^{1−α} + v^α − v^{1−α}` and `c(L) = L·c(1/L)`. For `L ≤ 1`
//! put `t = q(1 − L)`: `u = L + t`, `v = 1 − t ≥ L`, and `c(L) = h(L) − h(1 − t)` with
//! `h(s) = F(s + t, s)`, `F(x, y) = x^α y^{1−α} − y^α x^{1−α}`. `h` is non-increasing:
//! at `x/y = e^z ≥ 1`, `F_x + F_y = 2α·sinh((α − 1)z) − 2(α − 1)·sinh(αz) ≤ 0`, because
//! `sinh(kz)/k` increases with `k`. So `c(L) ≥ 0` for `L ≤ 1`, and for `L > 1` by
//! `c(L) = L·c(1/L)`. (`tests::the_remove_direction_is_dominated` checks `c ≥ 0` on a
//! grid.) The order-`α` RDP of the subsampled mechanism is therefore
//! `ε(α) = log(A_α)/(α − 1)` in both directions.
//!
//! # Other symmetric noise: the distributed discrete Gaussian
//! Neither step above needs `P` to be one discrete Gaussian. The expansion of `A_α` is
//! an identity for any pair; only `E_P[L^k]` is specific. For integer `k ≥ 2`,
//! `E_P[L^k] = exp((k − 1)·D_k(Q‖P))`, so a base pair that is ρ-zCDP at integer orders
//! (`D_k(Q‖P) ≤ k·ρ`) has `E_P[L^k] ≤ exp((k² − k)·ρ)` (and `E_P[L^0] = E_P[L] = 1`);
//! every term of `A_α` is non-negative, so replacing `‖μ‖²/(2σ²)` by that ρ bounds
//! `A_α` from above ([`RdpCurve::subsampled_zcdp`]; for one discrete Gaussian it is
//! the exact value). The remove direction needs only the involution `φ(x) = μ − x`,
//! which swaps `P` and `Q` whenever the noise is symmetric about 0 on `ℤ^d`. The sum
//! of `n` independent discrete Gaussians, each client's share of the noise, is such
//! noise, and Kairouz, Liu and Steinke (2021), *The Distributed Discrete Gaussian
//! Mechanism for Federated Learning with Secure Aggregation*, Theorem 1, give its ρ
//! ([`crate::calibrate::rho_distributed`]): [`RdpCurve::subsampled_distributed`].
//!
//! # Composition and conversion
//! RDP curves add up under composition (Mironov 2017, *Rényi Differential Privacy*,
//! Proposition 1). A curve becomes (ε, δ)-DP by the improved conversion of Balle et al.
//! (2020), *Hypothesis Testing Interpretations and Rényi Differential Privacy*,
//! Theorem 21 (also Canonne, Kamath and Steinke 2020, Proposition 12):
//! `ε(δ) = min_α [ε(α) + log(1 − 1/α) − (log δ + log α)/(α − 1)]`.
//!
//! # Orders and floating point
//! The grid is the integers `2..=256` ([`ORDERS`]): the exactness above needs integer
//! orders. Accountants that also use fractional orders in (1, 2) (Opacus,
//! dp-accounting) report a lower ε only when the best order is below 2, which happens
//! at very large ε (tens); `tests/rdp_vectors.rs` states the worst ratios. Each order's
//! value is a sum of positive terms (no cancellation), raised by a relative 10⁻¹⁰, far
//! above its float error, and every value is rounded up to the next `f64` after every
//! addition, so a ledger that sums curves can only over-estimate what was spent.

/// The smallest order of the grid.
pub const MIN_ORDER: u32 = 2;
/// The largest order of the grid.
pub const MAX_ORDER: u32 = 256;
/// Number of orders on the grid.
pub const NUM_ORDERS: usize = (MAX_ORDER - MIN_ORDER + 1) as usize;

/// The orders of the grid, ascending.
pub fn orders() -> impl Iterator<Item = u32> {
    MIN_ORDER..=MAX_ORDER
}

/// The orders, for documentation and reports: `2..=256`.
pub const ORDERS: core::ops::RangeInclusive<u32> = MIN_ORDER..=MAX_ORDER;

/// Errors of the RDP accountant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RdpError {
    /// The sampling rate is not in (0, 1].
    #[error("the sampling rate must be in (0, 1], got {0}")]
    SamplingRate(f64),
    /// σ or the sensitivity is not positive and finite.
    #[error("{0} must be positive and finite, got {1}")]
    NotPositive(&'static str, f64),
    /// δ is not in (0, 1).
    #[error("δ must lie strictly between 0 and 1, got {0}")]
    Delta(f64),
    /// A curve of the wrong length (a stored curve that does not match the grid).
    #[error("an RDP curve has {got} orders, the grid has {expected}")]
    Length {
        /// The grid's size.
        expected: usize,
        /// The curve's.
        got: usize,
    },
    /// A value that is negative or NaN.
    #[error("an RDP value is negative or NaN")]
    BadValue,
    /// Parameters outside what the distributed discrete Gaussian's bound covers.
    #[error(
        "the distributed discrete Gaussian needs at least one client, one coordinate and \
         σ per client ≥ 1/2 (KLS21, Theorem 1); got σ_c = {sigma_client}, {clients} clients, \
         d = {dim}"
    )]
    Distributed {
        /// σ per client.
        sigma_client: f64,
        /// Clients assumed honest.
        clients: u64,
        /// Dimension.
        dim: u64,
    },
    /// No σ up to the search limit meets the target.
    #[error("no σ up to {0} meets the target ε")]
    Unreachable(f64),
}

/// An RDP curve: `ε(α)` for every order of the grid ([`ORDERS`]), never rounded down.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpCurve(Vec<f64>);

impl RdpCurve {
    /// The zero curve (nothing spent).
    pub fn zero() -> Self {
        Self(vec![0.0; NUM_ORDERS])
    }

    /// A curve from stored values; refuses a wrong length, negatives and NaN.
    pub fn from_values(values: Vec<f64>) -> Result<Self, RdpError> {
        if values.len() != NUM_ORDERS {
            return Err(RdpError::Length {
                expected: NUM_ORDERS,
                got: values.len(),
            });
        }
        if values.iter().any(|v| v.is_nan() || *v < 0.0) {
            return Err(RdpError::BadValue);
        }
        Ok(Self(values))
    }

    /// The values, one per order of the grid, ascending.
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    /// The RDP of one release of the Poisson-subsampled discrete Gaussian with L2
    /// sensitivity `sensitivity`, noise `sigma` and sampling rate `q` (module docs).
    /// With `q = 1` it is `α·Δ²/(2σ²)`, the discrete Gaussian's own curve.
    pub fn subsampled_discrete_gaussian(
        sensitivity: f64,
        sigma: f64,
        q: f64,
    ) -> Result<Self, RdpError> {
        check_positive("sensitivity", sensitivity)?;
        check_positive("σ", sigma)?;
        Self::subsampled_zcdp(sensitivity * sensitivity / (2.0 * sigma * sigma), q)
    }

    /// An upper bound on the RDP of one release of a Poisson-subsampled mechanism
    /// whose noise is symmetric about 0 on `ℤ^d` and whose base pair is ρ-zCDP at
    /// integer orders (module docs, "Other symmetric noise"). Exact for one discrete
    /// Gaussian with `ρ = Δ²/(2σ²)`.
    pub fn subsampled_zcdp(rho: f64, q: f64) -> Result<Self, RdpError> {
        check_positive("ρ", rho)?;
        if !(q > 0.0 && q <= 1.0) {
            return Err(RdpError::SamplingRate(q));
        }
        let values = orders()
            .map(|alpha| round_up(order_value(alpha, q, rho)))
            .collect();
        Ok(Self(values))
    }

    /// The RDP of one release of the Poisson-subsampled distributed discrete Gaussian:
    /// at least `clients` clients each add `N_Z(0, σ_c²)`, `σ_c = sigma/√clients`, to
    /// each of `dim` coordinates of a sum with L2 sensitivity `sensitivity` (module
    /// docs; ρ from Kairouz–Liu–Steinke 2021, Theorem 1, which needs `σ_c ≥ 1/2`).
    pub fn subsampled_distributed(
        sensitivity: f64,
        sigma: f64,
        clients: u64,
        dim: u64,
        q: f64,
    ) -> Result<Self, RdpError> {
        check_positive("sensitivity", sensitivity)?;
        check_positive("σ", sigma)?;
        let sigma_client = sigma / (clients.max(1) as f64).sqrt();
        if sigma_client < 0.5 || clients == 0 || dim == 0 {
            return Err(RdpError::Distributed {
                sigma_client,
                clients,
                dim,
            });
        }
        let rho = crate::calibrate::rho_distributed(sensitivity, sigma_client, clients, dim)
            .map_err(|_| RdpError::Distributed {
                sigma_client,
                clients,
                dim,
            })?;
        Self::subsampled_zcdp(rho, q)
    }

    /// The larger of the two curves at every order: a bound valid for whichever of two
    /// mechanisms (or trust assumptions) holds.
    pub fn max(&self, other: &RdpCurve) -> RdpCurve {
        RdpCurve(
            self.0
                .iter()
                .zip(&other.0)
                .map(|(a, b)| a.max(*b))
                .collect(),
        )
    }

    /// This curve composed with `other` (values added, rounded up).
    pub fn compose(&self, other: &RdpCurve) -> RdpCurve {
        RdpCurve(
            self.0
                .iter()
                .zip(&other.0)
                .map(|(a, b)| round_up(a + b))
                .collect(),
        )
    }

    /// `rounds` compositions of this curve.
    pub fn times(&self, rounds: u64) -> RdpCurve {
        RdpCurve(self.0.iter().map(|v| round_up(v * rounds as f64)).collect())
    }

    /// ε at `delta`, and the order that attains it (module docs, Balle et al. 2020
    /// Theorem 21). Never negative.
    pub fn epsilon(&self, delta: f64) -> Result<(f64, u32), RdpError> {
        if !(delta > 0.0 && delta < 1.0) {
            return Err(RdpError::Delta(delta));
        }
        let mut best = (f64::INFINITY, MIN_ORDER);
        for (alpha, rdp) in orders().zip(&self.0) {
            let a = f64::from(alpha);
            let eps = rdp + (-1.0 / a).ln_1p() - (delta.ln() + a.ln()) / (a - 1.0);
            if eps < best.0 {
                best = (eps, alpha);
            }
        }
        Ok((round_up(best.0.max(0.0)), best.1))
    }
}

/// ε of `rounds` releases of the subsampled discrete Gaussian, at `delta`.
pub fn epsilon_subsampled(
    sensitivity: f64,
    sigma: f64,
    q: f64,
    rounds: u64,
    delta: f64,
) -> Result<f64, RdpError> {
    Ok(
        RdpCurve::subsampled_discrete_gaussian(sensitivity, sigma, q)?
            .times(rounds)
            .epsilon(delta)?
            .0,
    )
}

/// The smallest σ (to a relative precision of 1e−6, rounded up) whose `rounds`
/// releases at sampling rate `q` spend at most `epsilon` at `delta`.
pub fn sigma_for_epsilon_subsampled(
    epsilon: f64,
    delta: f64,
    sensitivity: f64,
    q: f64,
    rounds: u64,
) -> Result<f64, RdpError> {
    check_positive("sensitivity", sensitivity)?;
    smallest_sigma(epsilon, sensitivity * 1e-6, sensitivity, |sigma| {
        epsilon_subsampled(sensitivity, sigma, q, rounds.max(1), delta)
    })
}

/// ε of `rounds` releases of the subsampled distributed discrete Gaussian
/// ([`RdpCurve::subsampled_distributed`]), at `delta`.
pub fn epsilon_subsampled_distributed(
    sensitivity: f64,
    sigma: f64,
    clients: u64,
    dim: u64,
    q: f64,
    rounds: u64,
    delta: f64,
) -> Result<f64, RdpError> {
    Ok(
        RdpCurve::subsampled_distributed(sensitivity, sigma, clients, dim, q)?
            .times(rounds)
            .epsilon(delta)?
            .0,
    )
}

/// The smallest total σ (σ per client `σ/√clients`; relative precision 1e−6, rounded
/// up) whose `rounds` releases of the subsampled distributed discrete Gaussian spend
/// at most `epsilon` at `delta`. Never below `σ_c = 1/2` per client.
pub fn sigma_for_epsilon_subsampled_distributed(
    epsilon: f64,
    delta: f64,
    sensitivity: f64,
    clients: u64,
    dim: u64,
    q: f64,
    rounds: u64,
) -> Result<f64, RdpError> {
    check_positive("sensitivity", sensitivity)?;
    let floor = 0.5 * (clients.max(1) as f64).sqrt() * (1.0 + 1e-9);
    smallest_sigma(epsilon, floor, floor.max(sensitivity), |sigma| {
        epsilon_subsampled_distributed(sensitivity, sigma, clients, dim, q, rounds.max(1), delta)
    })
}

/// Bisection (geometric) for the smallest σ in `[lo, ∞)` with `spends(σ) ≤ epsilon`,
/// starting from `hi` and doubling it while it spends too much; `spends` must fall as
/// σ grows.
fn smallest_sigma(
    epsilon: f64,
    lo: f64,
    hi: f64,
    spends: impl Fn(f64) -> Result<f64, RdpError>,
) -> Result<f64, RdpError> {
    check_positive("ε", epsilon)?;
    let (mut lo, mut hi) = (lo, hi.max(lo));
    let limit = hi * 1e9;
    while spends(hi)? > epsilon {
        hi *= 2.0;
        if hi > limit {
            return Err(RdpError::Unreachable(limit));
        }
    }
    // The floor itself may already meet the target (client noise at σ_c = 1/2).
    if spends(lo).is_ok_and(|e| e <= epsilon) {
        return Ok(lo);
    }
    while hi / lo > 1.0 + 1e-6 {
        let mid = (lo * hi).sqrt();
        if spends(mid)? > epsilon {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

/// `ε(α) = log(A_α)/(α − 1)` with `c = Δ²/(2σ²)`, or a ρ bounding it (module docs),
/// by log-sum-exp.
fn order_value(alpha: u32, q: f64, c: f64) -> f64 {
    let a = f64::from(alpha);
    if q >= 1.0 {
        return a * c;
    }
    // A_α = Σ_k C(α, k)(1 − q)^(α−k) q^k e^((k²−k)c), and the binomial weights sum to
    // 1, so A_α − 1 = Σ_{k≥2} C(α, k)(1 − q)^(α−k) q^k (e^((k²−k)c) − 1): terms all
    // positive (k = 0 and 1 give 0), summed in logs without the cancellation of taking
    // ln A_α from terms that nearly sum to 1, which lost up to a relative 10⁻⁵ when
    // the release costs little (small q, large σ).
    let (log_q, log_1mq) = (q.ln(), (-q).ln_1p());
    let mut log_binom = f64::from(alpha).ln(); // log C(α, 1)
    let mut terms = Vec::with_capacity(alpha as usize);
    for k in 2..=alpha {
        log_binom += f64::from(alpha - k + 1).ln() - f64::from(k).ln();
        let kf = f64::from(k);
        terms.push(log_binom + (a - kf) * log_1mq + kf * log_q + ln_exp_m1((kf * kf - kf) * c));
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return 0.0;
    }
    let log_a_minus_1 = max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln();
    // ln A_α = ln(1 + e^x), x = ln(A_α − 1), without overflow for large x.
    let log_a = if log_a_minus_1 > 0.0 {
        log_a_minus_1 + (-log_a_minus_1).exp().ln_1p()
    } else {
        log_a_minus_1.exp().ln_1p()
    };
    (log_a / (a - 1.0)).max(0.0)
}

/// `ln(e^x − 1)` for `x > 0`, accurate for small and for large `x`.
fn ln_exp_m1(x: f64) -> f64 {
    if x > 1.0 {
        x + (-(-x).exp()).ln_1p()
    } else {
        x.exp_m1().ln()
    }
}

/// A relative margin far above the float error of [`order_value`] (a sum of positive
/// terms, each within some 10⁻¹³ relative of its value for exponents up to the
/// thousands), so rounded values stay upper bounds.
fn round_up(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        (v * (1.0 + 1e-10)).next_up()
    }
}

fn check_positive(what: &'static str, v: f64) -> Result<(), RdpError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(RdpError::NotPositive(what, v))
    }
}

#[cfg(test)]
mod tests;
