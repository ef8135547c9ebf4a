//! Vector kernels over field and `Z_q` vectors.
//!
//! Aggregators spend their time adding share vectors of dimension `d ≈ 10^5`, and
//! the proof system computes inner products, so these loops are the hot path. They
//! are written for the optimiser: slices are zipped (no index arithmetic, hence no
//! bounds checks inside the loop), the element operations are branch-free, and lengths
//! are checked once, up front, with a typed error.
//!
//! **Lazy reduction** (inner product over [`Field64`]): every product of two canonical
//! elements is below `p² < 2^128`. Splitting each product into 64-bit halves
//! `h_i·2^64 + l_i` and summing the halves in two `u128` accumulators gives
//! `Σ a_i b_i = L + H·2^64` over the integers, with no overflow for fewer than `2^64`
//! terms. One reduction at the end uses `2^64 ≡ ε = 2^32 − 1 (mod p)`: the result is
//! `(L mod p) + (H mod p)·ε`, instead of one reduction per term.
//!
//! `Z_q` share vectors (machine words) are summed either modulo `2^b` (wrapping, as
//! the `NoProof` mode aggregates) or exactly into `u64`/field accumulators.

use crate::field::{Field64, FieldElement};
use crate::zq::ZqWord;

/// Errors from vector kernels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VectorError {
    /// The two operands have different lengths.
    #[error("vector lengths differ: {left} vs {right}")]
    LengthMismatch {
        /// Length of the first (or accumulator) operand.
        left: usize,
        /// Length of the second operand.
        right: usize,
    },
}

/// `acc ← acc + x`, element-wise.
pub fn add_assign<F: FieldElement>(acc: &mut [F], x: &[F]) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += b;
    }
    Ok(())
}

/// `acc ← acc − x`, element-wise.
pub fn sub_assign<F: FieldElement>(acc: &mut [F], x: &[F]) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a -= b;
    }
    Ok(())
}

/// `a + b` as a new vector.
pub fn add<F: FieldElement>(a: &[F], b: &[F]) -> Result<Vec<F>, VectorError> {
    check_lengths(a.len(), b.len())?;
    Ok(a.iter().zip(b).map(|(&x, &y)| x + y).collect())
}

/// `a − b` as a new vector.
pub fn sub<F: FieldElement>(a: &[F], b: &[F]) -> Result<Vec<F>, VectorError> {
    check_lengths(a.len(), b.len())?;
    Ok(a.iter().zip(b).map(|(&x, &y)| x - y).collect())
}

/// `acc ← s·acc`, element-wise.
pub fn scale_assign<F: FieldElement>(acc: &mut [F], s: F) {
    for a in acc.iter_mut() {
        *a *= s;
    }
}

/// `acc ← acc + s·x` (an "axpy"), element-wise.
pub fn add_scaled_assign<F: FieldElement>(acc: &mut [F], s: F, x: &[F]) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += s * b;
    }
    Ok(())
}

/// `Σ a_i·b_i`, with lazy reduction for [`Field64`] (module docs).
pub fn inner_product<F: FieldElement>(a: &[F], b: &[F]) -> Result<F, VectorError> {
    check_lengths(a.len(), b.len())?;
    Ok(F::sum_of_products(a, b))
}

/// `acc ← acc + x mod 2^b`, element-wise (aggregation of `Z_q` shares).
pub fn add_assign_zq<W: ZqWord>(acc: &mut [W], x: &[W]) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = a.wrapping_add(b);
    }
    Ok(())
}

/// `acc ← acc − x mod 2^b`, element-wise.
pub fn sub_assign_zq<W: ZqWord>(acc: &mut [W], x: &[W]) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = a.wrapping_sub(b);
    }
    Ok(())
}

/// `acc ← acc + x` over the integers, with `x_i ∈ [0, 2^b)` read as integers.
///
/// Exact while the sums stay below `2^64`: with `b ≤ 32` that is at least `2^32`
/// accumulated vectors; beyond that the sum wraps modulo `2^64` (documented, not
/// checked per element, so the loop stays branch-free).
pub fn accumulate_zq_into_u64<W: ZqWord>(acc: &mut [u64], x: &[W]) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = a.wrapping_add(b.to_u64());
    }
    Ok(())
}

/// `acc ← acc + x` in the field, with `x_i ∈ [0, 2^b)` read as integers (e.g. forming
/// an aggregator's field share `Σ_j x'_j − q·c` from its `Z_q` share, DESIGN.md §5).
pub fn accumulate_zq_into_field<F: FieldElement, W: ZqWord>(
    acc: &mut [F],
    x: &[W],
) -> Result<(), VectorError> {
    check_lengths(acc.len(), x.len())?;
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += F::from_u64(b.to_u64());
    }
    Ok(())
}

fn check_lengths(left: usize, right: usize) -> Result<(), VectorError> {
    if left == right {
        Ok(())
    } else {
        Err(VectorError::LengthMismatch { left, right })
    }
}

/// `2^64 mod p = ε = 2^32 − 1` for the Goldilocks prime.
const TWO_POW_64_MOD_P: u64 = 0xFFFF_FFFF;

/// `Σ a_i·b_i` over Field64 with lazy reduction (module docs): the low and high 64-bit
/// halves of the products are summed in two `u128` accumulators (two independent
/// add-with-carry chains, no overflow for fewer than 2^64 terms) and reduced once.
/// Called through [`FieldElement::sum_of_products`]; zips, so it reads the common
/// prefix of `a` and `b`.
pub(crate) fn field64_sum_of_products(a: &[Field64], b: &[Field64]) -> Field64 {
    let mut low: u128 = 0;
    let mut high: u128 = 0;
    for (x, y) in a.iter().zip(b) {
        let product = u128::from(x.as_u64()) * u128::from(y.as_u64());
        low += u128::from(product as u64);
        high += product >> 64;
    }
    Field64::reduce_u128(low) + Field64::reduce_u128(high) * Field64::from_u64(TWO_POW_64_MOD_P)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u128 = Field64::MODULUS;

    fn arb_vec(len: usize) -> impl Strategy<Value = Vec<Field64>> {
        proptest::collection::vec(
            prop_oneof![
                (0..Field64::MODULUS_U64).prop_map(|v| Field64::new(v).unwrap()),
                // Near p, so products and sums are as large as possible.
                (0u64..3).prop_map(|k| Field64::new(Field64::MODULUS_U64 - 1 - k).unwrap()),
            ],
            len,
        )
    }

    fn pair() -> impl Strategy<Value = (Vec<Field64>, Vec<Field64>)> {
        (0usize..300).prop_flat_map(|n| (arb_vec(n), arb_vec(n)))
    }

    proptest! {
        #[test]
        fn inner_product_matches_bigint((a, b) in pair()) {
            let expected = a.iter().zip(&b).fold(0u128, |acc, (x, y)| {
                (acc + (x.as_u128() * y.as_u128()) % P) % P
            });
            prop_assert_eq!(inner_product(&a, &b).unwrap().as_u128(), expected);
        }

        #[test]
        fn add_sub_scale_elementwise((a, b) in pair(), s in 0..Field64::MODULUS_U64) {
            let s = Field64::new(s).unwrap();
            let sum = add(&a, &b).unwrap();
            let diff = sub(&a, &b).unwrap();
            let mut acc = a.clone();
            add_assign(&mut acc, &b).unwrap();
            prop_assert_eq!(&acc, &sum);
            sub_assign(&mut acc, &b).unwrap();
            prop_assert_eq!(&acc, &a);
            let mut axpy = a.clone();
            add_scaled_assign(&mut axpy, s, &b).unwrap();
            let mut scaled = b.clone();
            scale_assign(&mut scaled, s);
            for i in 0..a.len() {
                prop_assert_eq!(sum[i].as_u128(), (a[i].as_u128() + b[i].as_u128()) % P);
                prop_assert_eq!(diff[i].as_u128(), (a[i].as_u128() + P - b[i].as_u128()) % P);
                prop_assert_eq!(scaled[i].as_u128(), (s.as_u128() * b[i].as_u128()) % P);
                prop_assert_eq!(axpy[i], a[i] + scaled[i]);
            }
        }

        #[test]
        fn zq_accumulators(xs in proptest::collection::vec(any::<u16>(), 0..200)) {
            let mut wrapped = vec![0xFFF0u16; xs.len()];
            let mut wide = vec![0xFFF0u64; xs.len()];
            let mut field = vec![Field64::from_u64(0xFFF0); xs.len()];
            add_assign_zq(&mut wrapped, &xs).unwrap();
            accumulate_zq_into_u64(&mut wide, &xs).unwrap();
            accumulate_zq_into_field(&mut field, &xs).unwrap();
            for i in 0..xs.len() {
                let exact = 0xFFF0u64 + u64::from(xs[i]);
                prop_assert_eq!(u64::from(wrapped[i]), exact % 65536);
                prop_assert_eq!(wide[i], exact);
                prop_assert_eq!(field[i].as_u64(), exact);
            }
            sub_assign_zq(&mut wrapped, &xs).unwrap();
            prop_assert!(wrapped.iter().all(|&w| w == 0xFFF0));
        }
    }

    #[test]
    fn inner_product_of_many_maximal_terms_wraps_correctly() {
        // 10 000 maximal products: both halves of every product are large.
        let m = Field64::new(Field64::MODULUS_U64 - 1).unwrap();
        let a = vec![m; 10_000];
        // (p−1)² ≡ 1, so the sum is 10 000.
        assert_eq!(inner_product(&a, &a).unwrap(), Field64::from_u64(10_000));
    }

    #[test]
    fn length_mismatch_is_a_typed_error() {
        let mut a = vec![Field64::ONE; 3];
        let b = vec![Field64::ONE; 4];
        let err = VectorError::LengthMismatch { left: 3, right: 4 };
        assert_eq!(add_assign(&mut a, &b), Err(err.clone()));
        assert_eq!(sub_assign(&mut a, &b), Err(err.clone()));
        assert_eq!(add(&a, &b), Err(err.clone()));
        assert_eq!(sub(&a, &b), Err(err.clone()));
        assert_eq!(inner_product(&a, &b), Err(err.clone()));
        assert_eq!(
            add_scaled_assign(&mut a, Field64::ONE, &b),
            Err(err.clone())
        );
        assert_eq!(
            accumulate_zq_into_field(&mut a, &[1u8; 4]),
            Err(err.clone())
        );
        assert_eq!(
            accumulate_zq_into_u64(&mut [0u64; 3], &[1u8; 4]),
            Err(err.clone())
        );
        assert_eq!(add_assign_zq(&mut [0u8; 3], &[1u8; 4]), Err(err.clone()));
        assert_eq!(sub_assign_zq(&mut [0u8; 3], &[1u8; 4]), Err(err));
        assert_eq!(
            a,
            vec![Field64::ONE; 3],
            "a failed call leaves the accumulator alone"
        );
    }
}
