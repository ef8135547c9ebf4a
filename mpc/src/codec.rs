//! The byte codec every Cairn crate shares.
//!
//! Messages are encoded with [`Encode`] and decoded with [`Decode`] through a
//! [`Reader`], a cursor over the input that enforces the rules of CONTRIBUTING.md
//! ("Security habits"):
//!
//! * every read is checked against the remaining input and fails with
//!   [`CodecError::UnexpectedEnd`] instead of panicking;
//! * every length or count read off the wire is checked against a caller-given
//!   maximum **and** against the remaining input (count × the element's minimum
//!   encoded size) **before** anything is allocated, so a 4-byte prefix cannot make
//!   the decoder reserve gigabytes;
//! * [`Decode::decode`] rejects trailing bytes ([`CodecError::TrailingBytes`]), so
//!   every value has exactly one accepted encoding length;
//! * field elements must be canonical ([`CodecError::NotCanonical`]).
//!
//! Format: integers are little-endian and fixed-width; a vector is a `u32`
//! little-endian element count followed by the elements; a [`Seed`] is its 32 bytes;
//! a [`Field64`] is its 8-byte canonical encoding; a [`Usage`] is its 1-byte
//! discriminant.

use zeroize::Zeroize;

use crate::field::{Field64, FieldElement, FieldError};
use crate::prg::Usage;
use crate::secret::{SEED_LEN, SecretVec, Seed};
use crate::zq::ZqWord;

/// Errors from decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before a value was complete.
    #[error("input ended early: needed {needed} more bytes, {remaining} remain")]
    UnexpectedEnd {
        /// Bytes the next read needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A value was decoded but bytes are left over.
    #[error("{remaining} trailing bytes after the value")]
    TrailingBytes {
        /// Bytes left over.
        remaining: usize,
    },
    /// A length or count exceeds the maximum the caller allows.
    #[error("length {len} exceeds the maximum {max}")]
    LengthTooLarge {
        /// The length read off the wire.
        len: u64,
        /// The caller's maximum.
        max: usize,
    },
    /// A field element's integer is not below the modulus.
    #[error("non-canonical field element")]
    NotCanonical,
    /// A tag or value outside its allowed set (e.g. an unknown enum discriminant).
    #[error("invalid {what}")]
    InvalidValue {
        /// What was being decoded.
        what: &'static str,
    },
}

/// Types with a byte encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The exact length of the encoding, if cheaply known (used to pre-size buffers).
    fn encoded_len(&self) -> Option<usize>;

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len().unwrap_or(0));
        self.encode(&mut out);
        out
    }
}

/// Types decodable from bytes. Decoding never panics on any input.
pub trait Decode: Sized {
    /// The fewest bytes any value's encoding takes (at least 1 for every type in
    /// Cairn). Counts read off the wire are checked against
    /// `remaining / MIN_ENCODED_LEN` before allocating.
    const MIN_ENCODED_LEN: usize;

    /// Reads one value from the cursor (leaving any further bytes unread).
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError>;

    /// Decodes exactly one value from `bytes`: trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode_from(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// A checked cursor over an input byte string.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not yet read.
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether everything has been read.
    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Succeeds only if every byte has been read.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes {
                remaining: self.rest.len(),
            })
        }
    }

    /// The next `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.rest.len() {
            return Err(CodecError::UnexpectedEnd {
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.read_bytes(N)?);
        Ok(array)
    }

    /// One byte.
    pub fn read_u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.read_array::<1>()?[0])
    }

    /// A little-endian `u16`.
    pub fn read_u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.read_array()?))
    }

    /// A little-endian `u32`.
    pub fn read_u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.read_array()?))
    }

    /// A little-endian `u64`.
    pub fn read_u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.read_array()?))
    }

    /// A canonical field element.
    pub fn read_field<F: FieldElement>(&mut self) -> Result<F, CodecError> {
        let bytes = self.read_bytes(F::ENCODED_SIZE)?;
        F::decode(bytes).map_err(|e| match e {
            FieldError::NotCanonical => CodecError::NotCanonical,
            _ => CodecError::InvalidValue {
                what: "field element",
            },
        })
    }

    /// A `u32` count that must not exceed `max`.
    pub fn read_len_prefix(&mut self, max: usize) -> Result<usize, CodecError> {
        let len = self.read_u32()?;
        match usize::try_from(len) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(CodecError::LengthTooLarge {
                len: u64::from(len),
                max,
            }),
        }
    }

    /// A `u32` byte count (at most `max`) followed by that many bytes.
    pub fn read_bytes_with_len_prefix(&mut self, max: usize) -> Result<&'a [u8], CodecError> {
        let n = self.read_len_prefix(max)?;
        self.read_bytes(n)
    }

    /// A `u32` element count (at most `max_len`) followed by the elements. The count
    /// is checked against `max_len` and against the remaining input before the vector
    /// is allocated.
    pub fn read_vec_with_len_prefix<T: Decode>(
        &mut self,
        max_len: usize,
    ) -> Result<Vec<T>, CodecError> {
        let count = self.read_len_prefix(max_len)?;
        self.read_vec_of_len(count)
    }

    /// Exactly `count` elements (a count known from context, e.g. the task's
    /// dimension), checked against the remaining input before allocating.
    pub fn read_vec_of_len<T: Decode>(&mut self, count: usize) -> Result<Vec<T>, CodecError> {
        self.check_count::<T>(count)?;
        let mut out = Vec::with_capacity(count);
        self.read_elements(count, &mut out)?;
        Ok(out)
    }

    /// Exactly `count` `Z_{2^b}` words (`b/8` bytes each, little-endian) in one bulk
    /// pass; the byte length is checked against the remaining input before allocating.
    pub fn read_zq_vec<W: ZqWord>(&mut self, count: usize) -> Result<Vec<W>, CodecError> {
        let bytes = self.read_bytes(bulk_len(count, W::BYTES, self.rest.len())?)?;
        let mut out = vec![W::ZERO; count];
        W::decode_le_into(bytes, &mut out)
            .map_err(|_| CodecError::InvalidValue { what: "Z_q vector" })?;
        Ok(out)
    }

    /// Exactly `count` canonical field elements in one bulk pass; the byte length is
    /// checked against the remaining input before allocating.
    pub fn read_field_vec<F: FieldElement>(&mut self, count: usize) -> Result<Vec<F>, CodecError> {
        let bytes = self.read_bytes(bulk_len(count, F::ENCODED_SIZE, self.rest.len())?)?;
        let mut out = vec![F::ZERO; count];
        let mut canonical = true;
        for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(F::ENCODED_SIZE)) {
            match F::decode(chunk) {
                Ok(v) => *o = v,
                Err(_) => canonical = false,
            }
        }
        if canonical {
            Ok(out)
        } else {
            Err(CodecError::NotCanonical)
        }
    }

    /// Rejects a count whose minimum encoding is longer than the remaining input.
    fn check_count<T: Decode>(&self, count: usize) -> Result<(), CodecError> {
        let min_bytes = count.saturating_mul(T::MIN_ENCODED_LEN.max(1));
        if min_bytes > self.rest.len() {
            return Err(CodecError::UnexpectedEnd {
                needed: min_bytes,
                remaining: self.rest.len(),
            });
        }
        Ok(())
    }

    /// Appends `count` decoded elements to `out` (capacity reserved by the caller).
    fn read_elements<T: Decode>(
        &mut self,
        count: usize,
        out: &mut Vec<T>,
    ) -> Result<(), CodecError> {
        for _ in 0..count {
            out.push(T::decode_from(self)?);
        }
        Ok(())
    }
}

/// `count · size` if it fits in the remaining input, else the error a truncated
/// input gets.
fn bulk_len(count: usize, size: usize, remaining: usize) -> Result<usize, CodecError> {
    match count.checked_mul(size) {
        Some(n) => Ok(n),
        None => Err(CodecError::UnexpectedEnd {
            needed: usize::MAX,
            remaining,
        }),
    }
}

/// Appends `Z_{2^b}` words without a length prefix (the format of
/// [`Reader::read_zq_vec`]).
pub fn encode_zq_slice<W: ZqWord>(words: &[W], out: &mut Vec<u8>) {
    out.reserve(words.len().saturating_mul(W::BYTES));
    for &w in words {
        w.encode_le(out);
    }
}

/// Appends field elements without a length prefix (the format of
/// [`Reader::read_field_vec`]).
pub fn encode_field_slice<F: FieldElement>(values: &[F], out: &mut Vec<u8>) {
    out.reserve(values.len().saturating_mul(F::ENCODED_SIZE));
    for v in values {
        v.encode_into(out);
    }
}

/// Writes a `u32` element count followed by the elements (the format
/// [`Reader::read_vec_with_len_prefix`] reads).
///
/// Vectors in Cairn have far fewer than `2^32` elements; a longer slice is a caller
/// bug, and its count would be written saturated at `u32::MAX` (which no decoder
/// accepts against a sane maximum).
pub fn encode_with_len_prefix<T: Encode>(items: &[T], out: &mut Vec<u8>) {
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for item in items {
        item.encode(out);
    }
}

/// The encoded length of `items` with a length prefix, if every element knows its own.
pub fn encoded_len_with_prefix<T: Encode>(items: &[T]) -> Option<usize> {
    items
        .iter()
        .try_fold(4usize, |acc, item| acc.checked_add(item.encoded_len()?))
}

macro_rules! impl_codec_uint {
    ($t:ty, $read:ident) => {
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn encoded_len(&self) -> Option<usize> {
                Some(core::mem::size_of::<$t>())
            }
        }

        impl Decode for $t {
            const MIN_ENCODED_LEN: usize = core::mem::size_of::<$t>();

            fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
                reader.$read()
            }
        }
    };
}

impl_codec_uint!(u8, read_u8);
impl_codec_uint!(u16, read_u16);
impl_codec_uint!(u32, read_u32);
impl_codec_uint!(u64, read_u64);

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(N)
    }
}

impl<const N: usize> Decode for [u8; N] {
    const MIN_ENCODED_LEN: usize = N;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.read_array()
    }
}

impl Encode for Field64 {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_into(out);
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(Self::ENCODED_SIZE)
    }
}

impl Decode for Field64 {
    const MIN_ENCODED_LEN: usize = Self::ENCODED_SIZE;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.read_field()
    }
}

impl Encode for Usage {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.as_u8());
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(1)
    }
}

impl Decode for Usage {
    const MIN_ENCODED_LEN: usize = 1;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Usage::from_u8(reader.read_u8()?).ok_or(CodecError::InvalidValue { what: "usage" })
    }
}

/// A seed travels as its 32 bytes (inside an HPKE ciphertext, never in the clear).
impl Encode for Seed {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.expose_secret());
    }

    fn encoded_len(&self) -> Option<usize> {
        Some(SEED_LEN)
    }
}

impl Decode for Seed {
    const MIN_ENCODED_LEN: usize = SEED_LEN;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut bytes: [u8; SEED_LEN] = reader.read_array()?;
        let seed = Seed::from_bytes(bytes);
        bytes.zeroize();
        Ok(seed)
    }
}

/// `u32` count, then the elements. Decoding bounds the count by the remaining input
/// only; protocol messages should prefer [`Reader::read_vec_with_len_prefix`] with a
/// task-derived maximum.
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_with_len_prefix(self, out);
    }

    fn encoded_len(&self) -> Option<usize> {
        encoded_len_with_prefix(self)
    }
}

impl<T: Decode> Decode for Vec<T> {
    const MIN_ENCODED_LEN: usize = 4;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.read_vec_with_len_prefix(usize::MAX)
    }
}

/// Same format as `Vec<T>`; the decoded values land directly in a zeroizing vector.
impl<T: Encode + Zeroize> Encode for SecretVec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_with_len_prefix(self.expose_secret(), out);
    }

    fn encoded_len(&self) -> Option<usize> {
        encoded_len_with_prefix(self.expose_secret())
    }
}

impl<T: Decode + Zeroize> Decode for SecretVec<T> {
    const MIN_ENCODED_LEN: usize = 4;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let count = reader.read_len_prefix(usize::MAX)?;
        reader.check_count::<T>(count)?;
        // Full capacity up front: the vector is never reallocated (which would leave
        // unzeroized copies), and a failure half-way wipes what was decoded.
        let mut values = Vec::with_capacity(count);
        match reader.read_elements(count, &mut values) {
            Ok(()) => Ok(SecretVec::new(values)),
            Err(e) => {
                values.zeroize();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_roundtrip_little_endian() {
        assert_eq!(0x0102u16.to_bytes(), vec![2, 1]);
        assert_eq!(0x01020304u32.to_bytes(), vec![4, 3, 2, 1]);
        assert_eq!(u64::decode(&[1, 0, 0, 0, 0, 0, 0, 0]), Ok(1));
        assert_eq!(<[u8; 3]>::decode(&[7, 8, 9]), Ok([7, 8, 9]));
        let v = vec![Field64::from_u64(5), Field64::from_u64(6)];
        let bytes = v.to_bytes();
        assert_eq!(bytes.len(), 4 + 16);
        assert_eq!(v.encoded_len(), Some(20));
        assert_eq!(&bytes[..4], &[2, 0, 0, 0]);
        assert_eq!(Vec::<Field64>::decode(&bytes), Ok(v));
    }

    #[test]
    fn seed_and_secret_vec_roundtrip() {
        let seed = Seed::from_bytes([3; 32]);
        assert_eq!(
            Seed::decode(&seed.to_bytes()),
            Ok(Seed::from_bytes([3; 32]))
        );
        let shares = SecretVec::new(vec![1u16, 2, 3]);
        let bytes = shares.to_bytes();
        assert_eq!(bytes, vec![3, 0, 0, 0, 1, 0, 2, 0, 3, 0]);
        assert_eq!(SecretVec::<u16>::decode(&bytes), Ok(shares));
    }

    #[test]
    fn bulk_vectors_roundtrip_and_check_lengths() {
        let words = [1u16, 0xFFFF, 7];
        let field = [Field64::from_u64(3), Field64::ZERO - Field64::ONE];
        let mut bytes = Vec::new();
        encode_zq_slice(&words, &mut bytes);
        encode_field_slice(&field, &mut bytes);
        assert_eq!(bytes.len(), 6 + 16);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_zq_vec::<u16>(3).unwrap(), words);
        assert_eq!(r.read_field_vec::<Field64>(2).unwrap(), field);
        assert_eq!(r.finish(), Ok(()));

        let mut r = Reader::new(&bytes);
        assert_eq!(
            r.read_zq_vec::<u32>(6),
            Err(CodecError::UnexpectedEnd {
                needed: 24,
                remaining: 22
            })
        );
        assert!(matches!(
            Reader::new(&bytes).read_field_vec::<Field64>(usize::MAX),
            Err(CodecError::UnexpectedEnd { .. })
        ));
        let p = Field64::MODULUS_U64.to_le_bytes();
        assert_eq!(
            Reader::new(&p).read_field_vec::<Field64>(1),
            Err(CodecError::NotCanonical)
        );
    }

    #[test]
    fn reader_sequence_and_finish() {
        let bytes = [1u8, 2, 0, 5, 0, 0, 0, 0xAA, 0xBB];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_u8(), Ok(1));
        assert_eq!(r.read_u16(), Ok(2));
        assert_eq!(r.read_u32(), Ok(5));
        assert_eq!(r.remaining(), 2);
        assert_eq!(
            r.clone().finish(),
            Err(CodecError::TrailingBytes { remaining: 2 })
        );
        assert_eq!(r.read_bytes(2), Ok(&[0xAA, 0xBB][..]));
        assert!(r.is_empty());
        assert_eq!(r.finish(), Ok(()));
    }
}
