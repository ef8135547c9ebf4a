//! Vector kernels over field and `Z_q` vectors.

use crate::field::{Field64, FieldElement};

/// `2^128 mod p` for the Goldilocks prime: `(2^64)^2 ≡ ε^2 = 2^64 − 2^33 + 1`.
const TWO_POW_128_MOD_P: u64 = 0xFFFF_FFFE_0000_0001;

/// `Σ a_i·b_i` over Field64 with lazy reduction: the 128-bit products are summed in a
/// `u128` and the wrap-arounds (each worth `2^128`) counted; one reduction at the end.
pub(crate) fn field64_sum_of_products(a: &[Field64], b: &[Field64]) -> Field64 {
    let mut acc: u128 = 0;
    let mut wraps: u64 = 0;
    for (x, y) in a.iter().zip(b) {
        let product = u128::from(x.as_u64()) * u128::from(y.as_u64());
        let (sum, carry) = acc.overflowing_add(product);
        acc = sum;
        wraps += u64::from(carry);
    }
    Field64::reduce_u128(acc) + Field64::from_u64(wraps) * Field64::from_u64(TWO_POW_128_MOD_P)
}
