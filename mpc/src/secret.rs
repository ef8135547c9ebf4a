//! Secret types: seeds and share vectors.
//!
//! A secret is anything whose disclosure to one aggregator (or to an observer) would
//! reveal a client's input: the 32-byte [`Seed`] a helper expands into its share, and
//! share vectors ([`SecretVec`]). Both follow the same rules (CONTRIBUTING.md,
//! "Security habits"):
//!
//! * **no `Clone`**: a secret has one owner, and copies must be explicit;
//! * **zeroized on drop** (`zeroize`), so freed memory does not keep the secret;
//! * **redacted `Debug`**: logging a secret prints only its shape;
//! * **constant-time comparison** ([`subtle::ConstantTimeEq`]).
//!
//! Reading the bytes needs an explicit call (`expose_secret`), which makes every use
//! easy to find in review.

use core::fmt;

use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes in a [`Seed`].
pub const SEED_LEN: usize = 32;

/// A 32-byte secret seed, e.g. a helper's share of a report (expanded by
/// [`crate::prg::Prg`]).
///
/// Not `Clone`; zeroized on drop; `Debug` prints `Seed(<redacted>)`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Seed([u8; SEED_LEN]);

impl Seed {
    /// Draws a fresh uniformly random seed from a cryptographic RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; SEED_LEN];
        rng.fill_bytes(&mut bytes);
        let seed = Self(bytes);
        bytes.zeroize();
        seed
    }

    /// Wraps existing secret bytes. The caller should zeroize its own copy.
    pub const fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret bytes. Every call site is a place where the secret is used.
    pub const fn expose_secret(&self) -> &[u8; SEED_LEN] {
        &self.0
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl ConstantTimeEq for Seed {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Seed {
    /// Constant-time equality.
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Seed {}

/// A vector of secret values (e.g. a share vector), zeroized on drop.
///
/// Not `Clone`; `Debug` prints only the length. Equality is constant time in the
/// contents (the lengths are public).
///
/// On drop each value is wiped by its own `zeroize` and the spare capacity byte by
/// byte, so `T` must be a type whose `zeroize` leaves none of the secret in its bytes:
/// the integers and field elements this holds, which have no padding.
pub struct SecretVec<T: Zeroize + 'static>(Vec<T>);

impl<T: Zeroize + 'static> SecretVec<T> {
    /// Takes ownership of a vector of secrets.
    ///
    /// Build the vector at its final size before wrapping it: reallocations of a
    /// growing `Vec` leave copies behind that this type cannot erase.
    pub const fn new(values: Vec<T>) -> Self {
        Self(values)
    }

    /// A vector of `len` default (zero) values, to be filled in place.
    pub fn zeroed(len: usize) -> Self
    where
        T: Default + Clone,
    {
        Self(vec![T::default(); len])
    }

    /// Read access to the secret values.
    pub fn expose_secret(&self) -> &[T] {
        &self.0
    }

    /// Write access to the secret values.
    pub fn expose_secret_mut(&mut self) -> &mut [T] {
        &mut self.0
    }

    /// Number of values (public).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Gives up the protection and returns the plain vector (which is then *not*
    /// zeroized on drop). Use only where the values stop being secret, e.g. an
    /// aggregate that is about to be released.
    pub fn into_exposed_vec(mut self) -> Vec<T> {
        core::mem::take(&mut self.0)
    }
}

impl<T: Zeroize + 'static> Drop for SecretVec<T> {
    fn drop(&mut self) {
        // Every byte of the capacity is zeroed once. (`Vec::zeroize` zeroes the
        // values, then the whole capacity again; its byte vectors are written one
        // volatile byte at a time, and a share on the wire is ~1 MB at d = 10^5.)
        self.0.spare_capacity_mut().zeroize();
        let values: &mut dyn core::any::Any = &mut self.0;
        match values.downcast_mut::<Vec<u8>>() {
            Some(bytes) => wipe_slice(bytes),
            None => {
                for v in self.0.iter_mut() {
                    v.zeroize();
                }
            }
        }
        self.0.clear();
    }
}

/// Zeroes `bytes` with volatile stores: the unaligned ends byte by byte, the middle
/// a `u64` at a time.
fn wipe_slice(bytes: &mut [u8]) {
    let (head, words, tail) = bytemuck::pod_align_to_mut::<u8, u64>(bytes);
    head.zeroize();
    words.zeroize();
    tail.zeroize();
}

impl<T: Zeroize + 'static> ZeroizeOnDrop for SecretVec<T> {}

impl<T: Zeroize + 'static> From<Vec<T>> for SecretVec<T> {
    fn from(values: Vec<T>) -> Self {
        Self::new(values)
    }
}

impl<T: Zeroize + 'static> fmt::Debug for SecretVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretVec(<{} redacted values>)", self.0.len())
    }
}

impl<T: Zeroize + ConstantTimeEq + 'static> ConstantTimeEq for SecretVec<T> {
    fn ct_eq(&self, other: &Self) -> Choice {
        // `subtle` compares slices of different lengths as unequal (lengths are public).
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl<T: Zeroize + ConstantTimeEq + 'static> PartialEq for SecretVec<T> {
    /// Constant-time equality in the contents.
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl<T: Zeroize + ConstantTimeEq + 'static> Eq for SecretVec<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn byte_slices_are_wiped_whole_at_every_alignment() {
        // Every start offset within a word and lengths around word boundaries: the
        // bytes of the slice end up zero, the bytes around it are untouched.
        for offset in 0..8 {
            for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000] {
                let mut buffer = vec![0xA5u8; 1100];
                wipe_slice(&mut buffer[offset..offset + len]);
                let (before, rest) = buffer.split_at(offset);
                let (wiped, after) = rest.split_at(len);
                assert!(wiped.iter().all(|b| *b == 0), "offset {offset}, len {len}");
                assert!(before.iter().chain(after).all(|b| *b == 0xA5));
            }
        }
    }

    #[test]
    fn debug_is_redacted() {
        let seed = Seed::from_bytes([0xAB; SEED_LEN]);
        let shown = format!("{seed:?}");
        assert_eq!(shown, "Seed(<redacted>)");
        assert!(!shown.to_lowercase().contains("ab"));

        let v = SecretVec::new(vec![0xABCDu16; 3]);
        let shown = format!("{v:?}");
        assert!(shown.contains('3'));
        assert!(
            !shown.contains("43981"),
            "value 0xABCD must not appear: {shown}"
        );
    }

    #[test]
    fn generate_uses_the_rng_and_differs() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
        let a = Seed::generate(&mut rng);
        let b = Seed::generate(&mut rng);
        assert_ne!(a, b);
        let mut rng2 = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
        assert_eq!(a, Seed::generate(&mut rng2), "deterministic given the rng");
    }

    #[test]
    fn ct_eq_compares_contents() {
        let a = Seed::from_bytes([1; 32]);
        let mut other = [1; 32];
        other[31] = 2;
        assert!(bool::from(a.ct_eq(&Seed::from_bytes([1; 32]))));
        assert!(!bool::from(a.ct_eq(&Seed::from_bytes(other))));

        let x = SecretVec::new(vec![1u32, 2, 3]);
        assert_eq!(x, SecretVec::new(vec![1u32, 2, 3]));
        assert_ne!(x, SecretVec::new(vec![1u32, 2, 4]));
        assert_ne!(x, SecretVec::new(vec![1u32, 2]));
    }

    #[test]
    fn zeroize_clears_seed_and_vec() {
        let mut seed = Seed::from_bytes([9; 32]);
        seed.zeroize();
        assert_eq!(seed.expose_secret(), &[0u8; 32]);

        let mut v = SecretVec::new(vec![5u64; 4]);
        v.0.zeroize();
        assert!(
            v.is_empty(),
            "Vec::zeroize clears the vector after wiping it"
        );
    }

    #[test]
    fn into_exposed_vec_returns_contents() {
        let v = SecretVec::new(vec![1u8, 2, 3]);
        assert_eq!(v.len(), 3);
        assert_eq!(v.into_exposed_vec(), vec![1, 2, 3]);
    }
}
