//! Polynomial helpers over an [`ProofField`]: evaluation, multiplication,
//! Lagrange coefficients on a roots-of-unity domain, and re-evaluation of a polynomial
//! given by its values on a small domain over a larger one.
//!
//! Polynomials are coefficient vectors, lowest degree first. The domain of size
//! `P = 2^k` is `H = {α^0, …, α^{P−1}}` for the primitive root `α` of
//! [`NttDomain::new`]. On it, the vanishing polynomial is `Z(x) = x^P − 1`, and the
//! Lagrange basis polynomial of the point `α^i` is
//!
//! ```text
//! L_i(t) = Z(t) / (Z'(α^i)·(t − α^i)) = α^i·(t^P − 1) / (P·(t − α^i)),
//! ```
//!
//! because `Z'(α^i) = P·α^{i(P−1)} = P·α^{−i}` (Berrut–Trefethen, "Barycentric Lagrange
//! interpolation", SIAM Review 46(3), 2004, §5, roots-of-unity nodes). A polynomial of
//! degree `< P` with values `v_i` on `H` is `w(t) = Σ_i v_i·L_i(t)`: evaluating it at one
//! point `t ∉ H` costs one batch inversion and one dot product, with no transform.

use crate::kernels::ProofField;

use crate::ntt::{NttDomain, NttError, bit_reverse_permute, powers};

/// Errors from the polynomial helpers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolynomialError {
    /// An NTT domain could not be built or did not fit.
    #[error(transparent)]
    Ntt(#[from] NttError),
    /// The evaluation point lies in the interpolation domain, where the barycentric
    /// formula divides by zero.
    #[error("the evaluation point lies in the interpolation domain")]
    PointInDomain,
    /// A batch inversion met a zero.
    #[error("cannot invert zero")]
    ZeroInverse,
    /// The sizes of the inputs are inconsistent.
    #[error("inconsistent sizes: {0}")]
    Size(&'static str),
}

/// `a(x)` by Horner's rule. The empty polynomial is zero.
pub fn evaluate<F: ProofField>(coefficients: &[F], x: F) -> F {
    coefficients
        .iter()
        .rev()
        .fold(F::ZERO, |acc, c| acc * x + *c)
}

/// The product `a·b`, with `len(a) + len(b) − 1` coefficients (empty if either is
/// empty). Schoolbook for small inputs, NTT for large ones.
pub fn multiply<F: ProofField>(a: &[F], b: &[F]) -> Result<Vec<F>, PolynomialError> {
    if a.is_empty() || b.is_empty() {
        return Ok(Vec::new());
    }
    let out_len = a.len() + b.len() - 1;
    if a.len().min(b.len()) <= 32 {
        let mut out = vec![F::ZERO; out_len];
        for (i, x) in a.iter().enumerate() {
            for (o, y) in out[i..].iter_mut().zip(b) {
                *o += *x * *y;
            }
        }
        return Ok(out);
    }
    let domain = NttDomain::<F>::at_least(out_len)?;
    let mut fa = a.to_vec();
    fa.resize(domain.size(), F::ZERO);
    let mut fb = b.to_vec();
    fb.resize(domain.size(), F::ZERO);
    domain.forward(&mut fa)?;
    domain.forward(&mut fb)?;
    for (x, y) in fa.iter_mut().zip(&fb) {
        *x *= *y;
    }
    domain.inverse(&mut fa)?;
    fa.truncate(out_len);
    Ok(fa)
}

/// `a + b` (the longer length).
pub fn add<F: ProofField>(a: &[F], b: &[F]) -> Vec<F> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let mut out = long.to_vec();
    for (o, s) in out.iter_mut().zip(short) {
        *o += *s;
    }
    out
}

/// Inverts every element in place with Montgomery's trick (3 multiplications per
/// element and one inversion). Fails, leaving `values` unchanged, if any is zero.
pub fn batch_inverse<F: ProofField>(values: &mut [F]) -> Result<(), PolynomialError> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = F::ONE;
    for v in values.iter() {
        prefix.push(acc);
        acc *= *v;
    }
    if bool::from(subtle::ConstantTimeEq::ct_eq(&acc, &F::ZERO)) {
        return Err(PolynomialError::ZeroInverse);
    }
    let mut inv = acc.inv();
    for (v, before) in values.iter_mut().zip(prefix).rev() {
        let original = *v;
        *v = inv * before;
        inv *= original;
    }
    Ok(())
}

/// The Lagrange coefficients `L_i(t)` of the first `count` points `α^0, …, α^{count−1}`
/// of `domain` (module docs). Fails if `t` lies in the domain (`t^P = 1`).
pub fn lagrange_coefficients<F: ProofField>(
    domain: &NttDomain<F>,
    t: F,
    count: usize,
) -> Result<Vec<F>, PolynomialError> {
    if count > domain.size() {
        return Err(PolynomialError::Size("more points than the domain has"));
    }
    let vanishing = t.pow(domain.size() as u128) - F::ONE;
    if vanishing == F::ZERO {
        return Err(PolynomialError::PointInDomain);
    }
    let nodes = powers(domain.generator(), count);
    let mut denominators: Vec<F> = nodes.iter().map(|a| t - *a).collect();
    batch_inverse(&mut denominators)?;
    let scale = vanishing * domain.size_inverse();
    Ok(nodes
        .iter()
        .zip(denominators)
        .map(|(a, d)| *a * d * scale)
        .collect())
}

/// Re-evaluation from a small domain (size `P`) to a large one (size `N = r·P`), with
/// the per-coset tables computed once and shared by every polynomial extended.
///
/// The large domain's generator `β` satisfies `β^r = α`, so the point `β^{jr+c}` is
/// `α^j·β^c`: coset `c` of the small domain. Coset 0 holds the input values; coset `c`
/// is one NTT of the coefficients scaled by `β^{c·j}`. Cost per polynomial: one
/// inverse and `r − 1` forward transforms of size `P` (cheaper than interpolating and
/// running one transform of size `N`).
#[derive(Debug, Clone)]
pub struct DomainExtension<F> {
    small: NttDomain<F>,
    large: NttDomain<F>,
    /// For each coset `c ≥ 1`: `P^{-1}·β^{c·j}`, `j < P` (the `P^{-1}` of the inverse
    /// transform is folded in), in bit-reversed order of `j`: the coefficients they
    /// scale come out of the inverse transform in that order, and go into the forward
    /// one so (no bit-reversal pass either way).
    shifts: Vec<Vec<F>>,
}

impl<F: ProofField> DomainExtension<F> {
    /// Tables for extending from `small` to `large` (`large.size()` a multiple of
    /// `small.size()`).
    pub fn new(small: NttDomain<F>, large: NttDomain<F>) -> Result<Self, PolynomialError> {
        let p = small.size();
        let n = large.size();
        if n < p || !n.is_multiple_of(p) {
            return Err(PolynomialError::Size("large domain must be a multiple"));
        }
        let beta = large.generator();
        let mut shift = F::ONE;
        let mut shifts = Vec::with_capacity(n / p - 1);
        for _ in 1..n / p {
            shift *= beta;
            let mut table = powers(shift, p);
            let unscaled = table.clone();
            F::scale_into(&mut table, &unscaled, small.size_inverse());
            bit_reverse_permute(&mut table);
            shifts.push(table);
        }
        Ok(Self {
            small,
            large,
            shifts,
        })
    }

    /// The large domain.
    pub fn large(&self) -> &NttDomain<F> {
        &self.large
    }

    /// The values on cosets `1 … r−1` only (coset 0 is the input itself): `out` has
    /// length `(r − 1)·P`, coset `c` at `(c − 1)·P + j` (the point `α^j·β^c`).
    pub fn extend_cosets(&self, values: &[F], out: &mut [F]) -> Result<(), PolynomialError> {
        let p = self.small.size();
        if values.len() != p || out.len() != self.shifts.len() * p {
            return Err(PolynomialError::Size("extend_cosets"));
        }
        // The coefficients of a secret polynomial, wiped on drop.
        let mut coefficients = zeroize::Zeroizing::new(values.to_vec());
        self.small
            .inverse_unscaled_to_bit_reversed(&mut coefficients)?;
        for (coset, shifts) in out.chunks_exact_mut(p.max(1)).zip(&self.shifts) {
            F::mul_into(coset, &coefficients, shifts);
            self.small.forward_from_bit_reversed(coset)?;
        }
        Ok(())
    }

    /// Like [`DomainExtension::extend_cosets`], replacing `values` (length `P`) by the
    /// coset values (length `(r − 1)·P`); for `r = 2` this allocates nothing.
    pub fn extend_cosets_in_place(&self, values: &mut Vec<F>) -> Result<(), PolynomialError> {
        let p = self.small.size();
        if values.len() != p {
            return Err(PolynomialError::Size("extend_cosets_in_place"));
        }
        match self.shifts.as_slice() {
            [] => values.clear(),
            [only] => self.small.inverse_scale_forward(values, only)?,
            many => {
                self.small.inverse_unscaled_to_bit_reversed(values)?;
                let coefficients = zeroize::Zeroizing::new(core::mem::take(values));
                let mut out = vec![F::ZERO; many.len() * p];
                for (coset, shifts) in out.chunks_exact_mut(p.max(1)).zip(many) {
                    F::mul_into(coset, &coefficients, shifts);
                    self.small.forward_from_bit_reversed(coset)?;
                }
                *values = out;
            }
        }
        Ok(())
    }

    /// `out` (length `N`, natural order) ← values on the large domain of the polynomial
    /// of degree `< P` whose values on the small domain are `values`.
    pub fn extend(&self, values: &[F], out: &mut [F]) -> Result<(), PolynomialError> {
        let p = self.small.size();
        let n = self.large.size();
        if values.len() != p || out.len() != n {
            return Err(PolynomialError::Size("extend"));
        }
        let r = n / p;
        // The coefficients of a secret polynomial, wiped on drop.
        let mut coefficients = zeroize::Zeroizing::new(values.to_vec());
        self.small
            .inverse_unscaled_to_bit_reversed(&mut coefficients)?;
        for (j, v) in values.iter().enumerate() {
            out[j * r] = *v;
        }
        let mut scaled = zeroize::Zeroizing::new(vec![F::ZERO; p]);
        for (c, shifts) in (1..r).zip(&self.shifts) {
            F::mul_into(&mut scaled, &coefficients, shifts);
            self.small.forward_from_bit_reversed(&mut scaled)?;
            for (j, v) in scaled.iter().enumerate() {
                out[j * r + c] = *v;
            }
        }
        Ok(())
    }
}

/// One-off [`DomainExtension::extend`] (builds the tables each call).
pub fn extend_evaluations<F: ProofField>(
    small: &NttDomain<F>,
    large: &NttDomain<F>,
    values: &[F],
    out: &mut [F],
) -> Result<(), PolynomialError> {
    DomainExtension::new(small.clone(), large.clone())?.extend(values, out)
}

/// The values `a(α^0), …, a(α^{P−1})` of a polynomial with any number of coefficients on
/// the domain of size `P`: since `α^P = 1`, `a` is first reduced modulo `x^P − 1`
/// (coefficient `j` folds onto `j mod P`), then transformed.
pub fn evaluate_on_domain<F: ProofField>(
    domain: &NttDomain<F>,
    coefficients: &[F],
) -> Result<Vec<F>, PolynomialError> {
    let p = domain.size();
    let mut folded = vec![F::ZERO; p];
    for chunk in coefficients.chunks(p) {
        for (f, c) in folded.iter_mut().zip(chunk) {
            *f += *c;
        }
    }
    domain.forward(&mut folded)?;
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_mpc::field::{Field64, FieldElement};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn random_vec(rng: &mut ChaCha20Rng, n: usize) -> Vec<Field64> {
        (0..n).map(|_| Field64::random(rng)).collect()
    }

    fn naive_multiply(a: &[Field64], b: &[Field64]) -> Vec<Field64> {
        let mut out = vec![Field64::ZERO; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += *x * *y;
            }
        }
        out
    }

    #[test]
    fn multiply_matches_schoolbook_on_both_paths() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        for (la, lb) in [(1, 1), (3, 7), (33, 40), (100, 257), (64, 64)] {
            let a = random_vec(&mut rng, la);
            let b = random_vec(&mut rng, lb);
            assert_eq!(multiply(&a, &b).unwrap(), naive_multiply(&a, &b));
        }
        assert!(
            multiply::<Field64>(&[], &[Field64::ONE])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn batch_inverse_inverts_and_rejects_zero() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let original = random_vec(&mut rng, 50);
        let mut v = original.clone();
        batch_inverse(&mut v).unwrap();
        for (a, b) in original.iter().zip(&v) {
            assert_eq!(*a * *b, Field64::ONE);
        }
        let mut with_zero = vec![Field64::ONE, Field64::ZERO, Field64::ONE];
        assert_eq!(
            batch_inverse(&mut with_zero),
            Err(PolynomialError::ZeroInverse)
        );
        assert_eq!(with_zero[1], Field64::ZERO, "unchanged on failure");
    }

    #[test]
    fn lagrange_interpolation_matches_horner() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let domain = NttDomain::<Field64>::new(5).unwrap();
        let coefficients = random_vec(&mut rng, 32);
        let mut values = coefficients.clone();
        domain.forward(&mut values).unwrap();
        let t = Field64::random(&mut rng);
        let lagrange = lagrange_coefficients(&domain, t, 32).unwrap();
        let via_lagrange = values
            .iter()
            .zip(&lagrange)
            .fold(Field64::ZERO, |acc, (v, l)| acc + *v * *l);
        assert_eq!(via_lagrange, evaluate(&coefficients, t));
        assert_eq!(
            lagrange_coefficients(&domain, domain.generator().pow(7), 32),
            Err(PolynomialError::PointInDomain)
        );
    }

    #[test]
    fn extend_evaluations_matches_direct_evaluation() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let small = NttDomain::<Field64>::new(4).unwrap();
        for log_large in 4..=7 {
            let large = NttDomain::<Field64>::new(log_large).unwrap();
            let coefficients = random_vec(&mut rng, 16);
            let mut values = coefficients.clone();
            small.forward(&mut values).unwrap();
            let mut out = vec![Field64::ZERO; large.size()];
            extend_evaluations(&small, &large, &values, &mut out).unwrap();
            let mut x = Field64::ONE;
            for v in &out {
                assert_eq!(*v, evaluate(&coefficients, x));
                x *= large.generator();
            }
        }
    }

    #[test]
    fn extending_in_place_gives_the_other_cosets_of_extend() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        for log_small in 0..=5 {
            let small = NttDomain::<Field64>::new(log_small).unwrap();
            let p = small.size();
            for log_ratio in 0..=2 {
                let large = NttDomain::<Field64>::new(log_small + log_ratio).unwrap();
                let r = large.size() / p;
                let extension = DomainExtension::new(small.clone(), large.clone()).unwrap();
                let values = random_vec(&mut rng, p);
                let mut whole = vec![Field64::ZERO; large.size()];
                extension.extend(&values, &mut whole).unwrap();
                let mut in_place = values.clone();
                extension.extend_cosets_in_place(&mut in_place).unwrap();
                let mut other = vec![Field64::ZERO; (r - 1) * p];
                extension.extend_cosets(&values, &mut other).unwrap();
                assert_eq!(in_place, other, "P = {p}, r = {r}");
                for (k, v) in in_place.iter().enumerate() {
                    let (c, j) = (k / p + 1, k % p);
                    assert_eq!(*v, whole[j * r + c], "P = {p}, r = {r}, point {k}");
                }
            }
        }
    }

    #[test]
    fn evaluate_on_domain_folds_long_polynomials() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let domain = NttDomain::<Field64>::new(3).unwrap();
        let coefficients = random_vec(&mut rng, 21);
        let values = evaluate_on_domain(&domain, &coefficients).unwrap();
        let mut x = Field64::ONE;
        for v in values {
            assert_eq!(v, evaluate(&coefficients, x));
            x *= domain.generator();
        }
    }
}
