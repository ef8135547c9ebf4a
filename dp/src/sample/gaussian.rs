//! The discrete Gaussian N_Z(0, σ²): P(X = x) = ρ(x)/Σ_y ρ(y) with ρ(x) = exp(−x²/(2σ²)),
//! sampled exactly and fast.
//!
//! ## Algorithm: rejection from a dyadic block envelope
//! Fix σ = num/den (exact rational). Let w = 2^a be a block width (a = ⌊log₂σ⌋ − 5 for
//! σ ≥ 64, else w = 1), S an even integer scale, T = 2^(64−m) and n = 2^m columns.
//! The envelope is a measure E on the outcomes, in units of 1/S:
//! - **zero**: x = 0 with weight S/2 (sign not drawn);
//! - **body block j** (j < J): the magnitudes x ∈ [1 + jw, 1 + (j+1)w) with height
//!   H_j = ⌈S·ρ(1 + jw)⌉ each, weight w·H_j; a sign is drawn;
//! - **tail**: magnitudes x ≥ K = 1 + Jw; tail block i ≥ 0 covers [K + i·w_T, K + (i+1)·w_T)
//!   with w_T = ⌈σ⌉ and height 2^−i (i.e. 2^−i/S), total weight Σ_i w_T·2^−i = 2·w_T;
//! - **reject**: the remaining weight T − (sum of the above) ≥ 0, whose outcome is "retry".
//!
//! One trial draws a column with probability weight/T from an integer alias table (Walker,
//! Vose) whose thresholds are integers below T = 2^(64−m), so one 64-bit word gives the
//! column (top m bits) and the threshold comparison (low bits), both exactly uniform. Then:
//! - body block j: offset o uniform in [0, w), sign, and acceptance with probability
//!   a(x) = S·ρ(x)/H_j ≤ 1 (ρ decreases on x ≥ 1, so H_j ≥ S·ρ(x) on the block);
//! - tail: i ~ Geometric(1/2) (P(i) = 2^−(i+1), trailing zeros of random words), offset
//!   uniform in [0, w_T), sign, acceptance with probability a(x) = S·2^i·ρ(x) ≤ 1;
//! - zero: return 0; reject: retry.
//!
//! **Exactness.** For x ≥ 1 in body block j, one trial returns ±x with probability
//! (w·H_j/T)·(1/w)·(1/2)·(S·ρ(x)/H_j) = S·ρ(x)/(2T); in tail block i it is
//! (2w_T/T)·2^−(i+1)·(1/w_T)·(1/2)·S·2^i·ρ(x) = S·ρ(x)/(2T); and 0 is returned with probability
//! (S/2)/T = S·ρ(0)/(2T). Every outcome x ∈ Z has probability S·ρ(x)/(2T) per trial, with the
//! same constant, so the first accepted value is distributed exactly as N_Z(0, σ²).
//! The tail acceptance needs S·2^i·ρ(x) ≤ 1: K is chosen with S·ρ(K) ≤ 1 (checked with rigorous
//! bounds), which with S ≥ 2 forces K ≥ σ√(2 ln 2), hence K·w_T/σ² ≥ ln 2 and, for x in tail
//! block i, ρ(x) ≤ ρ(K + i·w_T) ≤ ρ(K)·exp(−i·K·w_T/σ²) ≤ 2^−i/S (using
//! (K + i·w_T)² ≥ K² + 2iKw_T). Only the acceptance coins involve exp; each is decided by the
//! exact lazy comparison `[U < a(x)]` (see [`super`]): precomputed per-block integer
//! thresholds on a 63−a-bit prefix of U decide most trials (`accept_below`: U < L_j/H_j ≤ a(x)
//! with L_j = ⌊S·ρ((j+1)w)⌋ the block's smallest value; `reject_from`: U ≥ S·ρ(1+jw)/H_j ≥ a(x)),
//! then a 64-bit fixed-point enclosure of exp, then arbitrary precision. The random words are
//! split into disjoint bit fields (offset, sign, prefix of U), which are independent and
//! uniform. No floating point is involved in any decision; f64 is used only to *choose* S, m,
//! and K, and every constraint those must meet (H_j ≥ S·ρ(1 + jw), S·ρ(K) ≤ 1, Σ weights ≤ T)
//! is verified with rigorous integer enclosures of ρ.
//!
//! Cost: about two 64-bit words per trial and ~1.03 trials per sample for all σ (acceptance
//! within a block is ≥ exp(−(2j+1)w²/(2σ²)) with w ≤ σ/32). Outputs are `i64`; magnitudes
//! ≥ 2^63 (probability < exp(−2^120)) are rejected, i.e. the law is conditioned on fitting.
//!
//! [`discrete_gaussian_cks20`] is Algorithm 3 of Canonne–Kamath–Steinke 2020 (discrete
//! Laplace proposal with t = ⌊σ⌋ + 1, acceptance exp(−(|Y| − σ²/t)²/(2σ²))), kept as an
//! independent reference.

use num_bigint::BigUint;
use rand_core::CryptoRng;

use super::bernoulli::bernoulli_exp_big;
use super::exact::{scaled_exp_bounds, uniform_less_than};
use super::fastexp::exp_neg_interval;
use super::laplace::DiscreteLaplace;
use super::uniform::uniform_below;
use super::{Ratio, SampleError};

/// Smallest supported σ.
pub const MIN_SIGMA: f64 = 1.0 / 64.0;
/// Largest supported σ (2^24).
pub const MAX_SIGMA: f64 = 16_777_216.0;

/// Precision (bits) of the setup's enclosures of ρ (the 64-bit fixed-point enclosure).
const SETUP_BITS: u32 = 64;

/// An exact sampler of N_Z(0, σ²) for a fixed rational σ (see the module docs).
#[derive(Debug, Clone)]
pub struct DiscreteGaussian {
    sigma: Ratio,
    /// σ² = sigma_sq_num / sigma_sq_den (for exact exponents).
    sigma_sq_num: BigUint,
    sigma_sq_den: BigUint,
    block_log2: u32,
    col_shift: u32,
    u_mask: u64,
    alias_prob: Vec<u64>,
    alias: Vec<u32>,
    blocks: Vec<Block>,
    zero_col: usize,
    tail_col: usize,
    scale: u64,
    gamma_coef_lo: u128,
    gamma_coef_hi: u128,
    gamma_shift: u32,
    tail_start: u64,
    tail_width: u64,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    start: u64,
    height: u64,
    accept_below: u64,
    reject_from: u64,
}

impl DiscreteGaussian {
    /// A sampler of N_Z(0, σ²) for σ ∈ [`MIN_SIGMA`, `MAX_SIGMA`]. Setup builds a table of a
    /// few hundred blocks (≈ 0.3 ms at σ = 2^20 in release builds); reuse the sampler.
    ///
    /// # Errors
    /// [`SampleError::SigmaOutOfRange`] outside the supported range.
    pub fn new(sigma: Ratio) -> Result<Self, SampleError> {
        let (num, den) = (u128::from(sigma.num()), u128::from(sigma.den()));
        // Exact range checks: 64·num ≥ den and num ≤ 2^24·den.
        if 64 * num < den || num > (1u128 << 24) * den {
            return Err(SampleError::SigmaOutOfRange {
                sigma: sigma.to_f64(),
                min: MIN_SIGMA,
                max: MAX_SIGMA,
            });
        }
        Setup::new(sigma).build()
    }

    /// A sampler for a float σ, converted to a rational *exactly* ([`Ratio::from_f64`]).
    ///
    /// # Errors
    /// NaN/∞/negative/unrepresentable σ as in [`Ratio::from_f64`]; zero or out of range:
    /// [`SampleError::SigmaOutOfRange`].
    pub fn from_f64(sigma: f64) -> Result<Self, SampleError> {
        let ratio = Ratio::from_f64(sigma)?;
        Self::new(ratio)
    }

    /// σ.
    pub fn sigma(&self) -> Ratio {
        self.sigma
    }

    /// One sample of N_Z(0, σ²).
    pub fn sample<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        loop {
            let w1 = rng.next_u64();
            let col = (w1 >> self.col_shift) as usize;
            let u = w1 & self.u_mask;
            let chosen = if u < self.alias_prob[col] {
                col
            } else {
                self.alias[col] as usize
            };
            if let Some(block) = self.blocks.get(chosen) {
                let w2 = rng.next_u64();
                let offset = w2 & ((1u64 << self.block_log2) - 1);
                let negative = (w2 >> self.block_log2) & 1 == 1;
                let prefix = w2 >> (self.block_log2 + 1);
                let x = block.start + offset;
                let accept = if prefix < block.accept_below {
                    true
                } else if prefix >= block.reject_from {
                    false
                } else {
                    self.accept_body(rng, x, block.height, prefix)
                };
                if accept {
                    // x < K < 2^31 (σ ≤ 2^24), so the cast is exact.
                    let x = x as i64;
                    return if negative { -x } else { x };
                }
            } else if chosen == self.zero_col {
                return 0;
            } else if chosen == self.tail_col
                && let Some(x) = self.sample_tail(rng)
            {
                return x;
            }
        }
    }

    /// Fills `out` with independent samples of N_Z(0, σ²).
    pub fn fill<R: CryptoRng + ?Sized>(&self, rng: &mut R, out: &mut [i64]) {
        for o in out {
            *o = self.sample(rng);
        }
    }

    /// Enclosure of 2^64·x²/(2σ²) (saturating for huge values).
    fn gamma_fixed(&self, x: u64) -> (u128, u128) {
        gamma_enclosure(x, self.gamma_coef_lo, self.gamma_coef_hi, self.gamma_shift)
    }

    /// x²/(2σ²) as an exact rational (numerator, denominator).
    fn gamma_exact(&self, x: u64) -> (BigUint, BigUint) {
        let x = BigUint::from(x);
        (&x * &x * &self.sigma_sq_den, &self.sigma_sq_num << 1u32)
    }

    /// Decides `U < S·ρ(x)/H` given the `63 − a` high bits `prefix` of U.
    fn accept_body<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        x: u64,
        height: u64,
        prefix: u64,
    ) -> bool {
        let (g_lo, g_hi) = self.gamma_fixed(x);
        let (e_lo, e_hi) = exp_neg_interval(g_lo, g_hi);
        let s = u128::from(self.scale);
        let h = u128::from(height);
        // S < 2^63 and e ≤ 2^64: no overflow.
        let a_lo = s * e_lo / h;
        let a_hi = (s * e_hi).div_ceil(h);
        let shift = self.block_log2 + 1;
        let u_lo = u128::from(prefix) << shift;
        let u_hi = (u128::from(prefix) + 1) << shift;
        if u_hi <= a_lo {
            return true;
        }
        if u_lo >= a_hi {
            return false;
        }
        let (gn, gd) = self.gamma_exact(x);
        let mult = BigUint::from(self.scale);
        let div = BigUint::from(height);
        uniform_less_than(rng, prefix, 63 - self.block_log2, |bits| {
            scaled_exp_bounds(&gn, &gd, &mult, &div, bits)
        })
    }

    /// One trial in the tail: `None` on rejection.
    fn sample_tail<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Option<i64> {
        let mut level: u64 = 0;
        loop {
            let w = rng.next_u64();
            if w != 0 {
                level += u64::from(w.trailing_zeros());
                break;
            }
            level += 64;
        }
        let offset = uniform_below(rng, self.tail_width);
        let negative = rng.next_u64() & 1 == 1;
        let x = u128::from(self.tail_start)
            + u128::from(level) * u128::from(self.tail_width)
            + u128::from(offset);
        let x = u64::try_from(x).ok().filter(|&x| x <= i64::MAX as u64)?;
        let prefix = rng.next_u64();
        // Fast enclosure of 2^64·a = S·2^level·(2^64·ρ(x)) first (decides most trials).
        if level < 64 {
            let (g_lo, g_hi) = self.gamma_fixed(x);
            let (e_lo, e_hi) = exp_neg_interval(g_lo, g_hi);
            let mult = u128::from(self.scale) << level; // < 2^127
            let a_lo = mult.saturating_mul(e_lo);
            let a_hi = mult.saturating_mul(e_hi);
            if u128::from(prefix) >= a_hi {
                return None;
            }
            if u128::from(prefix) < a_lo {
                let x = x as i64; // x ≤ i64::MAX checked above
                return Some(if negative { -x } else { x });
            }
        }
        let (gn, gd) = self.gamma_exact(x);
        let mult = BigUint::from(self.scale) << level;
        let one = BigUint::from(1u32);
        let accept = uniform_less_than(rng, prefix, 64, |bits| {
            scaled_exp_bounds(&gn, &gd, &mult, &one, bits)
        });
        // x ≤ i64::MAX was checked above.
        let x = x as i64;
        accept.then_some(if negative { -x } else { x })
    }
}

/// The construction of a [`DiscreteGaussian`]: chooses (a, m, S, K) and verifies every
/// constraint of the envelope in exact integer arithmetic.
struct Setup {
    sigma: Ratio,
    sq_num: BigUint,
    sq_den: BigUint,
    block_log2: u32,
    tail_width: u64,
    gamma_coef: (u128, u128, u32),
}

impl Setup {
    fn new(sigma: Ratio) -> Self {
        let whole = sigma.floor();
        let block_log2 = if whole >= 64 {
            (63 - whole.leading_zeros()) - 5
        } else {
            0
        };
        let sq_num = BigUint::from(sigma.num()).pow(2);
        let sq_den = BigUint::from(sigma.den()).pow(2);
        let gamma_coef = gamma_coefficient(&sq_num, &sq_den);
        Self {
            sigma,
            sq_num,
            sq_den,
            block_log2,
            tail_width: sigma.ceil().max(1),
            gamma_coef,
        }
    }

    /// Enclosure of 2^SETUP_BITS·ρ(x) (the rigorous 64-bit fixed-point enclosure; its width
    /// only costs a little acceptance rate, never exactness).
    fn rho_bounds(&self, x: u64) -> (BigUint, BigUint) {
        let (c_lo, c_hi, shift) = self.gamma_coef;
        let (g_lo, g_hi) = gamma_enclosure(x, c_lo, c_hi, shift);
        let (e_lo, e_hi) = exp_neg_interval(g_lo, g_hi);
        (BigUint::from(e_lo), BigUint::from(e_hi))
    }

    /// Is S·ρ(x) ≤ 1, proven with the upper enclosure?
    fn below_inverse_scale(&self, scale: u64, x: u64) -> bool {
        let (_, hi) = self.rho_bounds(x);
        BigUint::from(scale) * hi <= BigUint::from(1u32) << SETUP_BITS
    }

    fn build(self) -> Result<DiscreteGaussian, SampleError> {
        let w = 1u64 << self.block_log2;
        let sigma_f = self.sigma.to_f64();
        // Float estimate of the envelope mass in units of 1/S (Σ_j w·ρ(1 + jw) + 1/2): only
        // used to choose S; the weights are recomputed and checked exactly in `try_table`.
        let mut mass = 0.5;
        for j in 0u64.. {
            let x = (1 + j * w) as f64 / sigma_f;
            let rho = (-0.5 * x * x).exp();
            mass += w as f64 * rho;
            if rho < 1e-25 {
                break;
            }
        }
        for m in 2u32..=16 {
            let n = 1usize << m;
            let total = 1u64 << (64 - m);
            let mut scale = (((total as f64) * 0.998 / mass) as u64) & !1;
            while scale >= 4 {
                let blocks = self.count_blocks(scale, w);
                if blocks + 3 > n {
                    break;
                }
                if let Some(sampler) = self.try_table(m, scale, blocks) {
                    return Ok(sampler);
                }
                scale = (scale - scale / 64) & !1;
            }
        }
        // Unreachable for σ in range (m = 16 leaves room for 2^16 blocks ≫ 10·64).
        Err(SampleError::SigmaOutOfRange {
            sigma: sigma_f,
            min: MIN_SIGMA,
            max: MAX_SIGMA,
        })
    }

    /// The smallest J with S·ρ(1 + J·w) ≤ 1 (found from a float guess, then verified).
    fn count_blocks(&self, scale: u64, w: u64) -> usize {
        let sigma_f = self.sigma.to_f64();
        let guess = sigma_f * (2.0 * (scale as f64).ln()).sqrt();
        let mut j = (((guess - 1.0) / w as f64).floor() as u64).saturating_sub(2);
        while j > 0 && self.below_inverse_scale(scale, 1 + (j - 1) * w) {
            j -= 1;
        }
        while !self.below_inverse_scale(scale, 1 + j * w) {
            j += 1;
        }
        j.max(1) as usize
    }

    /// Builds the table for (m, S, J) if the envelope weights fit in T = 2^(64−m).
    fn try_table(&self, m: u32, scale: u64, count: usize) -> Option<DiscreteGaussian> {
        let w = 1u64 << self.block_log2;
        let total = 1u128 << (64 - m);
        let prefix_bits = 63 - self.block_log2;
        let unit = BigUint::from(1u32) << SETUP_BITS;
        let s_big = BigUint::from(scale);
        let mut blocks = Vec::with_capacity(count);
        let mut weights: Vec<u128> = Vec::with_capacity(1 << m);
        for j in 0..count as u64 {
            let start = 1 + j * w;
            let (_, top_hi) = self.rho_bounds(start);
            let (bottom_lo, _) = self.rho_bounds((j + 1) * w);
            // H_j = ⌈S·ρ(start)⌉ from the upper enclosure (≥ 1 since ρ > 0).
            let height_big = ceil_div(&(&s_big * &top_hi), &unit);
            let height = u64::try_from(&height_big).ok()?;
            let low = &s_big * &bottom_lo / &unit;
            let accept_below = (&low << prefix_bits) / &height_big;
            let reject_from =
                ceil_div(&((&s_big * &top_hi) << prefix_bits), &(&unit * &height_big));
            let cap = 1u64 << prefix_bits;
            blocks.push(Block {
                start,
                height,
                accept_below: u64::try_from(&accept_below).unwrap_or(cap).min(cap),
                reject_from: u64::try_from(&reject_from).unwrap_or(cap).min(cap),
            });
            weights.push(u128::from(w) * u128::from(height));
        }
        let zero_col = weights.len();
        weights.push(u128::from(scale / 2));
        let tail_col = weights.len();
        weights.push(2 * u128::from(self.tail_width));
        let used: u128 = weights.iter().sum();
        if used > total {
            return None;
        }
        weights.push(total - used);
        weights.resize(1 << m, 0);
        let (alias_prob, alias) = alias_table(&weights, total);
        let (gamma_coef_lo, gamma_coef_hi, gamma_shift) = self.gamma_coef;
        Some(DiscreteGaussian {
            sigma: self.sigma,
            sigma_sq_num: self.sq_num.clone(),
            sigma_sq_den: self.sq_den.clone(),
            block_log2: self.block_log2,
            col_shift: 64 - m,
            u_mask: u64::try_from(total - 1).ok()?,
            alias_prob,
            alias,
            blocks,
            zero_col,
            tail_col,
            scale,
            gamma_coef_lo,
            gamma_coef_hi,
            gamma_shift,
            tail_start: 1 + count as u64 * w,
            tail_width: self.tail_width,
        })
    }
}

/// Enclosure `coef_lo ≤ 2^(64+shift)/(2σ²) ≤ coef_hi` with the coefficient near 2^63
/// (shift 0 for tiny σ), so that x²·coef fits in u128 for x < 2^31. For σ ∈ [2^−6, 2^24]
/// the values fit in u128 (at most 2^75).
fn gamma_coefficient(sq_num: &BigUint, sq_den: &BigUint) -> (u128, u128, u32) {
    let numer = sq_den << 64u32;
    let denom = sq_num << 1u32;
    let excess = numer.bits() as i64 - denom.bits() as i64;
    let shift = (63 - excess).clamp(0, 120) as u32;
    let scaled = numer << shift;
    let lo = &scaled / &denom;
    let hi = ceil_div(&scaled, &denom);
    (
        u128::try_from(&lo).unwrap_or(u128::MAX),
        u128::try_from(&hi).unwrap_or(u128::MAX),
        shift,
    )
}

/// Enclosure of 2^64·x²/(2σ²) from the coefficient enclosure (saturating at u128::MAX,
/// where exp is below 2^−64 anyway).
fn gamma_enclosure(x: u64, coef_lo: u128, coef_hi: u128, shift: u32) -> (u128, u128) {
    let x2 = u128::from(x) * u128::from(x);
    let lo = x2.checked_mul(coef_lo).map_or(u128::MAX, |p| p >> shift);
    let hi = x2.checked_mul(coef_hi).map_or(u128::MAX, |p| {
        let q = p >> shift;
        if q << shift == p { q } else { q + 1 }
    });
    (lo, hi)
}

fn ceil_div(a: &BigUint, b: &BigUint) -> BigUint {
    let q = a / b;
    if &q * b == *a { q } else { q + 1u32 }
}

/// Integer alias table (Vose): column c is kept when `u < prob[c]` for u uniform in
/// [0, total), else `alias[c]`; outcome k then has probability weights[k]/total exactly
/// (requires Σ weights = total and weights.len() a power of two).
fn alias_table(weights: &[u128], total: u128) -> (Vec<u64>, Vec<u32>) {
    let n = weights.len();
    let mut scaled: Vec<u128> = weights.iter().map(|&w| w * n as u128).collect();
    let mut prob = vec![0u64; n];
    let mut alias: Vec<u32> = (0..n as u32).collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < total);
    while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
        small.pop();
        prob[s] = scaled[s] as u64;
        alias[s] = l as u32;
        scaled[l] -= total - scaled[s];
        if scaled[l] < total {
            large.pop();
            small.push(l);
        }
    }
    // Leftovers are exactly full (Σ scaled = n·total is invariant).
    for i in large.into_iter().chain(small) {
        prob[i] = total as u64;
    }
    (prob, alias)
}

/// N_Z(0, σ²) by Algorithm 3 of Canonne–Kamath–Steinke 2020: Y ~ Lap_Z(t), t = ⌊σ⌋ + 1,
/// accepted with probability exp(−(|Y| − σ²/t)²/(2σ²)). Exact but slower than
/// [`DiscreteGaussian`]; kept as an independent reference.
///
/// # Errors
/// [`SampleError::NotPositive`] for σ = 0.
pub fn discrete_gaussian_cks20<R: CryptoRng + ?Sized>(
    rng: &mut R,
    sigma: Ratio,
) -> Result<i64, SampleError> {
    if sigma.num() == 0 {
        return Err(SampleError::NotPositive(0.0));
    }
    let t = sigma.floor() + 1;
    let laplace = DiscreteLaplace::new(Ratio::from_integer(t))?;
    let (n2, d2) = (
        BigUint::from(sigma.num()).pow(2),
        BigUint::from(sigma.den()).pow(2),
    );
    let t_big = BigUint::from(t);
    loop {
        let y = laplace.sample(rng);
        // (|Y| − σ²/t)²/(2σ²) = (|Y|·d²·t − n²)² / (2·n²·d²·t²).
        let a = BigUint::from(y.unsigned_abs()) * &d2 * &t_big;
        let diff = if a >= n2 { &a - &n2 } else { &n2 - &a };
        let num = &diff * &diff;
        let den = (&n2 << 1u32) * &d2 * &t_big * &t_big;
        if bernoulli_exp_big(rng, &num, &den) {
            return Ok(y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_table_is_exact() {
        let weights = [5u128, 0, 9, 2];
        let total = 16u128;
        let (prob, alias) = alias_table(&weights, total);
        // Probability of outcome k = Σ_c [c == k]·prob[c] + [alias[c] == k]·(total − prob[c]).
        let mut mass = [0u128; 4];
        for c in 0..4 {
            mass[c] += u128::from(prob[c]);
            mass[alias[c] as usize] += total - u128::from(prob[c]);
        }
        let scaled: Vec<u128> = weights.iter().map(|w| w * 4).collect();
        assert_eq!(mass.to_vec(), scaled);
    }

    /// The tail path is reached with probability ~2^−30 per sample, so exercise it directly:
    /// accepted magnitudes start at K and follow ρ (mean excess over K against the exact
    /// conditional mean).
    #[test]
    fn tail_follows_rho() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let sigma = 40.0f64;
        let sampler = DiscreteGaussian::from_f64(sigma).unwrap();
        let k = sampler.tail_start as i64;
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let mut excess = Vec::new();
        for _ in 0..100_000 {
            if let Some(x) = sampler.sample_tail(&mut rng) {
                assert!(x.abs() >= k);
                excess.push((x.abs() - k) as f64);
            }
        }
        assert!(excess.len() > 2_000, "{}", excess.len());
        // Exact E[X − K | X ≥ K] and its variance under ρ, relative to ρ(K).
        let w = |d: f64| (-((2.0 * k as f64) * d + d * d) / (2.0 * sigma * sigma)).exp();
        let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for d in 0..2_000 {
            let d = f64::from(d);
            z += w(d);
            m1 += d * w(d);
            m2 += d * d * w(d);
        }
        let (mean, var) = (m1 / z, m2 / z - (m1 / z).powi(2));
        let got = excess.iter().sum::<f64>() / excess.len() as f64;
        assert!(
            (got - mean).abs() < 6.0 * (var / excess.len() as f64).sqrt(),
            "{got} vs {mean}"
        );
    }

    #[test]
    fn range_checks() {
        assert!(DiscreteGaussian::from_f64(0.0).is_err());
        assert!(DiscreteGaussian::from_f64(-1.0).is_err());
        assert!(DiscreteGaussian::from_f64(f64::NAN).is_err());
        assert!(DiscreteGaussian::from_f64(f64::INFINITY).is_err());
        assert!(DiscreteGaussian::from_f64(1e-3).is_err());
        assert!(DiscreteGaussian::from_f64(3e7).is_err());
        for s in [
            MIN_SIGMA,
            0.5,
            1.0,
            3.7,
            64.0,
            1000.5,
            1_048_576.0,
            MAX_SIGMA,
        ] {
            let g = DiscreteGaussian::from_f64(s).unwrap();
            assert!(g.blocks.len() + 3 <= g.alias.len());
        }
    }
}
