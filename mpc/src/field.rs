//! Prime fields.
//!
//! Everything the proofs and the protocol compute on secret shares happens in a prime
//! field. Cairn's first field is [`Field64`], the "Goldilocks" prime
//! `p = 2^64 − 2^32 + 1`. Two facts make it fast and convenient:
//!
//! * **Cheap reduction.** Write `ε = 2^32 − 1`. Then `2^64 ≡ ε (mod p)` and
//!   `2^96 ≡ −1 (mod p)`, so a 128-bit product `x = x_lo + 2^64·(h_lo + 2^32·h_hi)`
//!   (with `h_lo`, `h_hi` 32-bit halves of the high word) reduces to
//!   `x_lo − h_hi + ε·h_lo`, a few additions and one 32×32-bit multiplication, with no
//!   division.
//! * **Large 2-adicity.** `p − 1 = 2^32·(2^32 − 1)`, so the multiplicative group has
//!   roots of unity of every order `2^k`, `k ≤ 32`, which the number-theoretic transform
//!   (NTT) used by the proof system needs.
//!
//! Elements are always stored **canonically** (in `[0, p)`), so that encoding is
//! unique and equality is equality of representations. Arithmetic is branch-free (the
//! conditional corrections are masks), and equality is constant time via [`subtle`].
//!
//! The [`FieldElement`] trait is what the rest of Cairn is generic over; later fields
//! (e.g. a 128-bit field for smaller soundness error) implement the same trait.

use core::fmt;
use core::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use rand_core::CryptoRng;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// Errors from decoding or constructing field elements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The byte string does not have the length of an encoded element.
    #[error("a field element needs {expected} bytes, got {got}")]
    WrongLength {
        /// Bytes an encoded element takes.
        expected: usize,
        /// Bytes that were supplied.
        got: usize,
    },
    /// The integer is not below the modulus (encodings must be canonical).
    #[error("integer is not below the field modulus")]
    NotCanonical,
}

/// A prime-field element, as used by sharing, vector kernels and proofs.
///
/// Implementations store elements canonically, so `==` (which must be constant time)
/// compares values, and [`FieldElement::encode_into`] is a bijection onto the canonical
/// byte strings of length [`FieldElement::ENCODED_SIZE`].
pub trait FieldElement:
    Copy
    + Default
    + fmt::Debug
    + Eq
    + ConstantTimeEq
    + ConditionallySelectable
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + zeroize::Zeroize
    + Send
    + Sync
    + 'static
{
    /// The modulus `p`, as a 128-bit integer (large enough for every field we plan).
    const MODULUS: u128;
    /// Bytes of the little-endian canonical encoding.
    const ENCODED_SIZE: usize;
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;

    /// Reduces an unsigned integer modulo `p`.
    fn from_u64(v: u64) -> Self;

    /// Maps a signed integer to the field: `v mod p`, so `−1` becomes `p − 1`.
    fn from_i64(v: i64) -> Self {
        let magnitude = Self::from_u64(v.unsigned_abs());
        if v < 0 { -magnitude } else { magnitude }
    }

    /// The canonical integer representative in `[0, p)`.
    fn as_u128(&self) -> u128;

    /// `self^exp` by square-and-multiply. The running time depends on `exp` (public)
    /// but not on `self`.
    fn pow(&self, mut exp: u128) -> Self {
        let mut base = *self;
        let mut acc = Self::ONE;
        while exp != 0 {
            let bit = Choice::from((exp & 1) as u8);
            acc = Self::conditional_select(&acc, &(acc * base), bit);
            base = base * base;
            exp >>= 1;
        }
        acc
    }

    /// The multiplicative inverse `self^(p−2)`; zero maps to zero (callers that divide
    /// must rule out zero themselves).
    fn inv(&self) -> Self {
        self.pow(Self::MODULUS - 2)
    }

    /// Appends the canonical little-endian encoding to `out`.
    fn encode_into(&self, out: &mut Vec<u8>);

    /// Decodes exactly [`FieldElement::ENCODED_SIZE`] bytes, rejecting non-canonical
    /// integers (`≥ p`).
    fn decode(bytes: &[u8]) -> Result<Self, FieldError>;

    /// A uniformly random element, by rejection sampling (no modular bias).
    fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self;

    /// One step of rejection sampling from uniformly random bytes: reads exactly
    /// [`FieldElement::ENCODED_SIZE`] bytes as a little-endian integer, keeps its low
    /// `⌈log2 p⌉` bits, and returns the element if that integer is below `p` (else
    /// `None`, and the caller draws again). Accepted outputs are exactly uniform.
    ///
    /// Whether a candidate is rejected is visible in the running time, but a rejected
    /// candidate is discarded, so this leaks nothing about accepted values. Used by
    /// [`crate::prg::Prg::fill_field`]; fields override it with a faster version.
    fn try_from_uniform_bytes(bytes: &[u8]) -> Option<Self> {
        const MAX_BYTES: usize = 64;
        let n = Self::ENCODED_SIZE;
        if bytes.len() != n || n > MAX_BYTES {
            return None;
        }
        let mut buf = [0u8; MAX_BYTES];
        buf[..n].copy_from_slice(bytes);
        // Bit length of p − 1: every element fits, and masking to it keeps the
        // candidate uniform on [0, 2^bits) with acceptance probability > 1/2.
        let bits = (128 - (Self::MODULUS - 1).leading_zeros()) as usize;
        let full_bytes = bits / 8;
        let rest = bits % 8;
        if full_bytes < n {
            buf[full_bytes] &= ((1u16 << rest) - 1) as u8;
            buf[full_bytes + 1..n].fill(0);
        }
        Self::decode(&buf[..n]).ok()
    }

    /// `Σ a_i·b_i` over the common prefix of `a` and `b` (callers check lengths;
    /// [`crate::vector::inner_product`] does). Fields override this with lazy
    /// reduction.
    fn sum_of_products(a: &[Self], b: &[Self]) -> Self {
        a.iter()
            .zip(b)
            .fold(Self::ZERO, |acc, (&x, &y)| acc + x * y)
    }
}

/// A field with large power-of-two roots of unity, for the number-theoretic transform.
pub trait FftFriendlyField: FieldElement {
    /// The largest `k` such that `2^k` divides `p − 1`.
    const TWO_ADICITY: u32;

    /// A primitive `2^log_n`-th root of unity, for `log_n ≤ TWO_ADICITY`.
    ///
    /// # Panics
    /// Never for `log_n ≤ TWO_ADICITY`; larger `log_n` is a caller bug and returns
    /// `None` instead of panicking.
    fn root_of_unity(log_n: u32) -> Option<Self>;
}

/// `2^64 mod p = 2^32 − 1` for the Goldilocks prime.
const EPSILON: u64 = 0xFFFF_FFFF;

/// An element of the Goldilocks field `GF(2^64 − 2^32 + 1)`, stored canonically.
///
/// `repr(transparent)`: a `[Field64]` has the layout of a `[u64]`, which
/// [`Field64::raw`] and [`Field64::with_raw_mut`] rely on.
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub struct Field64(u64);

impl Field64 {
    /// The modulus `p = 2^64 − 2^32 + 1`.
    pub const MODULUS_U64: u64 = 0xFFFF_FFFF_0000_0001;

    /// A generator of the full multiplicative group (7 generates `GF(p)^*` for this
    /// prime), used to derive roots of unity.
    const MULTIPLICATIVE_GENERATOR: u64 = 7;

    /// Builds an element from an integer already known to be below `p`, or `None`.
    pub const fn new(v: u64) -> Option<Self> {
        if v < Self::MODULUS_U64 {
            Some(Self(v))
        } else {
            None
        }
    }

    /// Decodes `out.len()` canonical little-endian elements from `bytes` (exactly
    /// `8·out.len()` bytes), as [`FieldElement::decode`] one by one would, but in one
    /// pass without a branch per element: whether any was non-canonical is gathered
    /// and checked at the end, so the loop vectorises and its running time does not
    /// depend on where a bad element sits. On an error `out` is all zeros.
    pub fn decode_all(bytes: &[u8], out: &mut [Self]) -> Result<(), FieldError> {
        if bytes.len() != out.len().saturating_mul(8) {
            return Err(FieldError::WrongLength {
                expected: out.len().saturating_mul(8),
                got: bytes.len(),
            });
        }
        let mut non_canonical = false;
        for (v, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            let x = u64::from_le_bytes(word);
            non_canonical |= x >= Self::MODULUS_U64;
            *v = Self(x);
        }
        if non_canonical {
            // No element of `out` may be left at or above p.
            out.fill(Self::ZERO);
            return Err(FieldError::NotCanonical);
        }
        Ok(())
    }

    /// Reduces any 64-bit integer modulo `p` (one conditional subtraction suffices
    /// because `2^64 < 2p`).
    #[inline(always)]
    pub const fn from_u64_reduced(v: u64) -> Self {
        let (reduced, borrow) = v.overflowing_sub(Self::MODULUS_U64);
        // If `v < p` the subtraction borrows and we keep `v`.
        let keep = (borrow as u64).wrapping_neg();
        Self((v & keep) | (reduced & !keep))
    }

    /// The canonical representative in `[0, p)`.
    #[inline(always)]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// `values` as their canonical representatives, in place (no copy).
    #[allow(unsafe_code)]
    pub fn raw(values: &[Self]) -> &[u64] {
        // SAFETY: `Field64` is `repr(transparent)` over `u64`, so the slice's pointer,
        // length and alignment describe `values.len()` valid `u64`s; the shared borrow
        // of `values` outlives the result, and nothing can write through it.
        unsafe { core::slice::from_raw_parts(values.as_ptr().cast::<u64>(), values.len()) }
    }

    /// Runs `f` on `values` seen in place as `u64`s (no copy), for kernels that work on
    /// machine words; afterwards, even if `f` panics, every word `f` left at or above
    /// `p` is reduced modulo `p`, so the elements are canonical again. A kernel that
    /// keeps its words below `p` loses nothing to the final pass but one comparison
    /// per element.
    #[allow(unsafe_code)]
    pub fn with_raw_mut<R>(values: &mut [Self], f: impl FnOnce(&mut [u64]) -> R) -> R {
        /// Reduces its words on drop, on the normal path and while unwinding alike.
        struct Canonicalise<'a>(&'a mut [u64]);
        impl Drop for Canonicalise<'_> {
            fn drop(&mut self) {
                for w in self.0.iter_mut() {
                    *w = Field64::from_u64_reduced(*w).0;
                }
            }
        }
        // SAFETY: `Field64` is `repr(transparent)` over `u64`, so the slice's pointer,
        // length and alignment describe `values.len()` valid `u64`s, and any bit
        // pattern is a valid `u64`. The exclusive borrow of `values` is held by the
        // guard until it drops at the end of this function, so nothing reads the
        // elements while they may be non-canonical, and the guard's drop restores
        // `Field64`'s invariant (`< p`) before the borrow ends.
        let words = unsafe {
            core::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u64>(), values.len())
        };
        let guard = Canonicalise(words);
        f(&mut *guard.0)
    }

    /// The centred representative in `(−p/2, p/2]`, for decoding signed sums.
    pub const fn to_centred_i128(self) -> i128 {
        if self.0 > Self::MODULUS_U64 / 2 {
            self.0 as i128 - Self::MODULUS_U64 as i128
        } else {
            self.0 as i128
        }
    }

    /// Reduces a 128-bit integer modulo `p` using `2^64 ≡ ε` and `2^96 ≡ −1`.
    #[inline(always)]
    pub const fn reduce_u128(x: u128) -> Self {
        let x_lo = x as u64;
        let x_hi = (x >> 64) as u64;
        let x_hi_hi = x_hi >> 32;
        let x_hi_lo = x_hi & EPSILON;

        // t0 = x_lo − x_hi_hi (mod p). On borrow, the wrapped value is too large by
        // 2^64 ≡ ε, so subtract ε. It cannot underflow again: a borrow means
        // t0 ≥ 2^64 − 2^32 + 1 > ε.
        let (t0, borrow) = x_lo.overflowing_sub(x_hi_hi);
        let t0 = t0.wrapping_sub(EPSILON & (borrow as u64).wrapping_neg());
        // t1 = x_hi_lo·ε < 2^64 (both factors are below 2^32).
        let t1 = x_hi_lo * EPSILON;
        // t0 + t1; a carry of 2^64 is worth ε, and adding it cannot carry again
        // because the wrapped sum is then at most 2^64 − 2^33 + 1.
        let (sum, carry) = t0.overflowing_add(t1);
        let sum = sum.wrapping_add(EPSILON & (carry as u64).wrapping_neg());
        Self::from_u64_reduced(sum)
    }
}

impl fmt::Debug for Field64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field64({})", self.0)
    }
}

impl fmt::Display for Field64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl ConstantTimeEq for Field64 {
    #[inline]
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Field64 {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Field64 {}

impl ConditionallySelectable for Field64 {
    #[inline]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self(u64::conditional_select(&a.0, &b.0, choice))
    }
}

impl Add for Field64 {
    type Output = Self;

    #[inline(always)]
    // The `&` builds a mask for a branch-free conditional correction.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn add(self, rhs: Self) -> Self {
        // a + b < 2p < 2^65 and p + ε = 2^64. With s = a + b mod 2^64:
        // * on carry, the true value 2^64 + s ≡ s + ε, and s + ε < p (no overflow);
        // * otherwise, s ≥ p exactly when s + ε overflows, and then s + ε − 2^64 = s − p.
        // So the result is t = s + ε mod 2^64 if either addition carried, else s.
        let (s, carry) = self.0.overflowing_add(rhs.0);
        let (t, overflow) = s.overflowing_add(EPSILON);
        let take_t = ((carry | overflow) as u64).wrapping_neg();
        Self((t & take_t) | (s & !take_t))
    }
}

impl Sub for Field64 {
    type Output = Self;

    #[inline(always)]
    // The `&` builds a mask for a branch-free conditional correction.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn sub(self, rhs: Self) -> Self {
        // On borrow the wrapped difference is a − b + 2^64; adding p means subtracting
        // 2^64 − p = ε, which cannot underflow since the wrapped value exceeds ε.
        let (d, borrow) = self.0.overflowing_sub(rhs.0);
        Self(d.wrapping_sub(EPSILON & (borrow as u64).wrapping_neg()))
    }
}

impl Mul for Field64 {
    type Output = Self;

    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        Self::reduce_u128(u128::from(self.0) * u128::from(rhs.0))
    }
}

impl Neg for Field64 {
    type Output = Self;

    #[inline(always)]
    fn neg(self) -> Self {
        Self::ZERO - self
    }
}

impl AddAssign for Field64 {
    #[inline(always)]
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl SubAssign for Field64 {
    #[inline(always)]
    fn sub_assign(&mut self, rhs: Self) {
        *self = *self - rhs;
    }
}

impl MulAssign for Field64 {
    #[inline(always)]
    fn mul_assign(&mut self, rhs: Self) {
        *self = *self * rhs;
    }
}

/// Zeroizing a `Field64` writes its default, zero.
impl zeroize::DefaultIsZeroes for Field64 {}

impl FieldElement for Field64 {
    const MODULUS: u128 = Self::MODULUS_U64 as u128;
    const ENCODED_SIZE: usize = 8;
    const ZERO: Self = Self(0);
    const ONE: Self = Self(1);

    #[inline(always)]
    fn from_u64(v: u64) -> Self {
        Self::from_u64_reduced(v)
    }

    fn as_u128(&self) -> u128 {
        u128::from(self.0)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self, FieldError> {
        let array: [u8; 8] = bytes.try_into().map_err(|_| FieldError::WrongLength {
            expected: Self::ENCODED_SIZE,
            got: bytes.len(),
        })?;
        let v = u64::from_le_bytes(array);
        // v < p exactly when v − p borrows: one branch-free subtraction. (subtle's
        // `ct_lt` gives the same answer but costs a bit-smearing loop and an
        // optimisation barrier per element, which dominated bulk decoding.) Only the
        // accept/reject outcome is branched on.
        let (_, canonical) = v.overflowing_sub(Self::MODULUS_U64);
        if canonical {
            Ok(Self(v))
        } else {
            Err(FieldError::NotCanonical)
        }
    }

    #[inline(always)]
    fn try_from_uniform_bytes(bytes: &[u8]) -> Option<Self> {
        // 2^64 − p = ε, so a random 64-bit word is rejected with probability ≈ 2^-32.
        let word: [u8; 8] = bytes.try_into().ok()?;
        Self::new(u64::from_le_bytes(word))
    }

    #[inline]
    fn sum_of_products(a: &[Self], b: &[Self]) -> Self {
        crate::vector::field64_sum_of_products(a, b)
    }

    fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        // Rejection sampling: the rejection probability per draw is ε/2^64 ≈ 2^-32,
        // so the loop practically never repeats, and the output is exactly uniform.
        loop {
            if let Some(v) = Self::new(rng.next_u64()) {
                return v;
            }
        }
    }
}

impl FftFriendlyField for Field64 {
    const TWO_ADICITY: u32 = 32;

    fn root_of_unity(log_n: u32) -> Option<Self> {
        if log_n > Self::TWO_ADICITY {
            return None;
        }
        // g^((p−1)/2^log_n) has order exactly 2^log_n because g generates GF(p)^*.
        let exp = (Self::MODULUS_U64 - 1) >> log_n;
        Some(Self(Self::MULTIPLICATIVE_GENERATOR).pow(u128::from(exp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u128 = Field64::MODULUS_U64 as u128;

    fn arb_field() -> impl Strategy<Value = Field64> {
        prop_oneof![
            (0..Field64::MODULUS_U64).prop_map(Field64),
            // Edge values: near zero and near p, where carries and borrows happen.
            (0u64..4).prop_map(Field64),
            (0u64..4).prop_map(|k| Field64(Field64::MODULUS_U64 - 1 - k)),
            (0u64..4).prop_map(|k| Field64(EPSILON - 1 + k)),
        ]
    }

    proptest! {
        #[test]
        fn add_matches_bigint(a in arb_field(), b in arb_field()) {
            prop_assert_eq!((a + b).as_u128(), (a.as_u128() + b.as_u128()) % P);
        }

        #[test]
        fn sub_matches_bigint(a in arb_field(), b in arb_field()) {
            prop_assert_eq!((a - b).as_u128(), (a.as_u128() + P - b.as_u128()) % P);
        }

        #[test]
        fn mul_matches_bigint(a in arb_field(), b in arb_field()) {
            prop_assert_eq!((a * b).as_u128(), (a.as_u128() * b.as_u128()) % P);
        }

        #[test]
        fn reduce_u128_matches_bigint(x in any::<u128>()) {
            prop_assert_eq!(Field64::reduce_u128(x).as_u128(), x % P);
        }

        #[test]
        fn from_u64_reduces(v in any::<u64>()) {
            prop_assert_eq!(Field64::from_u64(v).as_u128(), u128::from(v) % P);
        }

        #[test]
        fn ring_laws(a in arb_field(), b in arb_field(), c in arb_field()) {
            prop_assert_eq!(a + b, b + a);
            prop_assert_eq!(a * b, b * a);
            prop_assert_eq!((a + b) + c, a + (b + c));
            prop_assert_eq!((a * b) * c, a * (b * c));
            prop_assert_eq!(a * (b + c), a * b + a * c);
            prop_assert_eq!(a + Field64::ZERO, a);
            prop_assert_eq!(a * Field64::ONE, a);
            prop_assert_eq!(a + (-a), Field64::ZERO);
            prop_assert_eq!(a - b + b, a);
        }

        #[test]
        fn inverse(a in arb_field()) {
            if a != Field64::ZERO {
                prop_assert_eq!(a * a.inv(), Field64::ONE);
            }
        }

        #[test]
        fn encode_decode_roundtrip(a in arb_field()) {
            let mut buf = Vec::new();
            a.encode_into(&mut buf);
            prop_assert_eq!(buf.len(), Field64::ENCODED_SIZE);
            prop_assert_eq!(Field64::decode(&buf), Ok(a));
        }

        #[test]
        fn from_i64_is_signed(v in any::<i64>()) {
            let expected = (i128::from(v)).rem_euclid(P as i128) as u128;
            prop_assert_eq!(Field64::from_i64(v).as_u128(), expected);
            prop_assert_eq!(Field64::from_i64(v).to_centred_i128(), i128::from(v));
        }
    }

    #[test]
    fn bulk_decoding_agrees_with_decoding_one_by_one() {
        let values = [
            0u64,
            1,
            12345,
            Field64::MODULUS_U64 - 1,
            u64::from(u32::MAX),
        ];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = [Field64::ZERO; 5];
        Field64::decode_all(&bytes, &mut out).unwrap();
        for (o, b) in out.iter().zip(bytes.chunks_exact(8)) {
            assert_eq!(*o, Field64::decode(b).unwrap());
        }
        for bad in [Field64::MODULUS_U64, u64::MAX] {
            for at in [0, 2, 4] {
                let mut bytes = bytes.clone();
                bytes[8 * at..8 * at + 8].copy_from_slice(&bad.to_le_bytes());
                assert_eq!(
                    Field64::decode_all(&bytes, &mut out),
                    Err(FieldError::NotCanonical),
                    "{bad:#x} at {at}"
                );
                assert!(out.iter().all(|v| *v == Field64::ZERO), "out is cleared");
            }
        }
        assert!(matches!(
            Field64::decode_all(&bytes[..39], &mut out),
            Err(FieldError::WrongLength {
                expected: 40,
                got: 39
            })
        ));
    }

    #[test]
    fn decode_rejects_non_canonical_and_bad_length() {
        let p_bytes = Field64::MODULUS_U64.to_le_bytes();
        assert_eq!(Field64::decode(&p_bytes), Err(FieldError::NotCanonical));
        assert_eq!(
            Field64::decode(&u64::MAX.to_le_bytes()),
            Err(FieldError::NotCanonical)
        );
        assert_eq!(
            Field64::decode(&[0u8; 7]),
            Err(FieldError::WrongLength {
                expected: 8,
                got: 7
            })
        );
        assert_eq!(
            Field64::decode(&[0u8; 9]),
            Err(FieldError::WrongLength {
                expected: 8,
                got: 9
            })
        );
    }

    #[test]
    fn roots_of_unity_have_exact_order() {
        for log_n in 0..=Field64::TWO_ADICITY {
            let w = Field64::root_of_unity(log_n).unwrap();
            assert_eq!(
                w.pow(1u128 << log_n),
                Field64::ONE,
                "order divides 2^{log_n}"
            );
            if log_n > 0 {
                assert_ne!(
                    w.pow(1u128 << (log_n - 1)),
                    Field64::ONE,
                    "order is exactly 2^{log_n}"
                );
            }
        }
        assert!(Field64::root_of_unity(33).is_none());
    }

    #[test]
    fn generator_has_full_order() {
        // 7 generates GF(p)^* iff 7^((p−1)/q) ≠ 1 for every prime q | p − 1.
        // p − 1 = 2^32 · 3 · 5 · 17 · 257 · 65537.
        let g = Field64(Field64::MULTIPLICATIVE_GENERATOR);
        for q in [2u64, 3, 5, 17, 257, 65537] {
            let e = (Field64::MODULUS_U64 - 1) / q;
            assert_ne!(g.pow(u128::from(e)), Field64::ONE, "q = {q}");
        }
    }

    #[test]
    fn raw_views_are_the_canonical_words_in_place() {
        let mut values: Vec<Field64> = [0, 1, EPSILON, Field64::MODULUS_U64 - 1]
            .into_iter()
            .map(Field64)
            .collect();
        let expected: Vec<u64> = values.iter().map(|v| v.as_u64()).collect();
        assert_eq!(Field64::raw(&values), expected.as_slice());
        let address = values.as_ptr() as usize;
        Field64::with_raw_mut(&mut values, |words| {
            assert_eq!(words.as_ptr() as usize, address, "a view, not a copy");
            assert_eq!(words, expected.as_slice());
            words[0] = 5;
        });
        assert_eq!(values[0], Field64(5));
    }

    #[test]
    fn raw_words_left_at_or_above_p_are_reduced() {
        let mut values = vec![Field64::ZERO; 4];
        let p = Field64::MODULUS_U64;
        Field64::with_raw_mut(&mut values, |words| {
            words.copy_from_slice(&[p, p + 1, u64::MAX, p - 1]);
        });
        let reduced: Vec<u64> = values.iter().map(|v| v.as_u64()).collect();
        assert_eq!(reduced, [0, 1, u64::MAX - p, p - 1]);
    }

    #[test]
    fn raw_words_are_reduced_even_when_the_kernel_panics() {
        let mut values = vec![Field64::ZERO; 3];
        let p = Field64::MODULUS_U64;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Field64::with_raw_mut(&mut values, |words| {
                words.copy_from_slice(&[u64::MAX, p, 7]);
                panic!("a kernel failing half-way");
            })
        }));
        assert!(outcome.is_err());
        let reduced: Vec<u64> = values.iter().map(|v| v.as_u64()).collect();
        assert_eq!(reduced, [u64::MAX - p, 0, 7], "canonical after the unwind");
    }
}
