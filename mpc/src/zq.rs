//! The rings `Z_q` with `q = 2^b`, `b ∈ {8, 16, 32}`.
//!
//! Client inputs are shared over `Z_{2^b}` (DESIGN.md §5): machine words with wrapping
//! arithmetic are exactly the integers modulo `2^b`, so sharing, reconstruction and
//! aggregation cost one native add per coordinate, and a share travels as `b/8` bytes.
//! A uniformly random word is a uniformly random element of `Z_{2^b}` (no rejection
//! needed, unlike a prime field).
//!
//! [`ZqWord`] is implemented for `u8`, `u16` and `u32`. The wire encoding is
//! little-endian, `b/8` bytes per element; every byte string of that length is a valid
//! element.

use core::fmt;

use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// Errors from decoding `Z_q` elements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZqError {
    /// The byte string is not `count · b/8` bytes long.
    #[error("{elements} elements of {bytes_per_element} bytes need {expected} bytes, got {got}")]
    WrongLength {
        /// Elements requested.
        elements: usize,
        /// Bytes per element (`b/8`).
        bytes_per_element: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes supplied.
        got: usize,
    },
}

/// An element of `Z_{2^b}` stored in a `b`-bit machine word.
pub trait ZqWord:
    Copy
    + Default
    + fmt::Debug
    + Eq
    + Ord
    + ConstantTimeEq
    + ConditionallySelectable
    + Zeroize
    + Send
    + Sync
    + 'static
{
    /// `b`: the modulus is `q = 2^b`.
    const BITS: u32;
    /// Bytes in the little-endian encoding (`b/8`).
    const BYTES: usize;
    /// Zero.
    const ZERO: Self;

    /// `self + rhs mod 2^b`.
    fn wrapping_add(self, rhs: Self) -> Self;
    /// `self − rhs mod 2^b`.
    fn wrapping_sub(self, rhs: Self) -> Self;
    /// `−self mod 2^b`.
    fn wrapping_neg(self) -> Self;
    /// The representative in `[0, 2^b)` as a `u64`.
    fn to_u64(self) -> u64;
    /// `v mod 2^b` (keeps the low `b` bits).
    fn from_u64_truncated(v: u64) -> Self;
    /// Appends the `b/8`-byte little-endian encoding.
    fn encode_le(self, out: &mut Vec<u8>);
    /// Decodes `bytes.len() / (b/8)` elements from exactly `out.len() · b/8` bytes.
    fn decode_le_into(bytes: &[u8], out: &mut [Self]) -> Result<(), ZqError>;

    /// Decodes one element from exactly `b/8` bytes.
    fn decode_le(bytes: &[u8]) -> Result<Self, ZqError> {
        let mut one = [Self::ZERO];
        Self::decode_le_into(bytes, &mut one)?;
        Ok(one[0])
    }
}

macro_rules! impl_zq_word {
    ($t:ty) => {
        impl ZqWord for $t {
            const BITS: u32 = <$t>::BITS;
            const BYTES: usize = core::mem::size_of::<$t>();
            const ZERO: Self = 0;

            #[inline(always)]
            fn wrapping_add(self, rhs: Self) -> Self {
                <$t>::wrapping_add(self, rhs)
            }

            #[inline(always)]
            fn wrapping_sub(self, rhs: Self) -> Self {
                <$t>::wrapping_sub(self, rhs)
            }

            #[inline(always)]
            fn wrapping_neg(self) -> Self {
                <$t>::wrapping_neg(self)
            }

            #[inline(always)]
            fn to_u64(self) -> u64 {
                u64::from(self)
            }

            #[inline(always)]
            fn from_u64_truncated(v: u64) -> Self {
                // Truncation is the point: v mod 2^b.
                v as $t
            }

            #[inline]
            fn encode_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            #[inline]
            fn decode_le_into(bytes: &[u8], out: &mut [Self]) -> Result<(), ZqError> {
                const N: usize = core::mem::size_of::<$t>();
                let expected = out.len().checked_mul(N);
                if expected != Some(bytes.len()) {
                    return Err(ZqError::WrongLength {
                        elements: out.len(),
                        bytes_per_element: N,
                        expected: expected.unwrap_or(usize::MAX),
                        got: bytes.len(),
                    });
                }
                for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(N)) {
                    let mut word = [0u8; N];
                    word.copy_from_slice(chunk);
                    *o = <$t>::from_le_bytes(word);
                }
                Ok(())
            }
        }
    };
}

impl_zq_word!(u8);
impl_zq_word!(u16);
impl_zq_word!(u32);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn laws<W: ZqWord>(a: u64, b: u64) {
        let q = 1u128 << W::BITS;
        let (x, y) = (W::from_u64_truncated(a), W::from_u64_truncated(b));
        assert_eq!(u128::from(x.to_u64()), u128::from(a) % q);
        assert_eq!(
            u128::from(x.wrapping_add(y).to_u64()),
            (u128::from(x.to_u64()) + u128::from(y.to_u64())) % q
        );
        assert_eq!(
            u128::from(x.wrapping_sub(y).to_u64()),
            (u128::from(x.to_u64()) + q - u128::from(y.to_u64())) % q
        );
        assert_eq!(x.wrapping_add(x.wrapping_neg()), W::ZERO);
        let mut buf = Vec::new();
        x.encode_le(&mut buf);
        assert_eq!(buf.len(), W::BYTES);
        assert_eq!(W::decode_le(&buf), Ok(x));
    }

    proptest! {
        #[test]
        fn arithmetic_is_mod_2_pow_b(a in any::<u64>(), b in any::<u64>()) {
            laws::<u8>(a, b);
            laws::<u16>(a, b);
            laws::<u32>(a, b);
        }
    }

    #[test]
    fn decode_checks_length() {
        let mut out = [0u16; 3];
        assert_eq!(
            u16::decode_le_into(&[0u8; 5], &mut out),
            Err(ZqError::WrongLength {
                elements: 3,
                bytes_per_element: 2,
                expected: 6,
                got: 5
            })
        );
        assert!(u16::decode_le_into(&[1, 0, 2, 0, 3, 0], &mut out).is_ok());
        assert_eq!(out, [1, 2, 3]);
        assert!(u32::decode_le(&[0u8; 3]).is_err());
    }
}
