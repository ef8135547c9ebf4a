//! Small deterministic sampling helpers on top of a `rand_core` generator.
//!
//! Every random choice of the example (splits, initial weights, minibatch order) goes
//! through these functions with a seeded ChaCha generator, so a run is reproducible.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// A uniform integer in `0..n` by rejection sampling (no modulo bias); `n` must be > 0.
pub fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    debug_assert!(n > 0);
    let n = n as u64;
    // Largest multiple of n that fits in u64; values at or above it are rejected.
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let x = rng.next_u64();
        if x < zone {
            // x % n < n, which came from a usize.
            return (x % n) as usize;
        }
    }
}

/// Shuffles `items` in place (Fisher–Yates).
pub fn shuffle<T, R: Rng + ?Sized>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i + 1);
        items.swap(i, j);
    }
}

/// A uniform `f64` in `[0, 1)` with 53 random bits.
pub fn uniform_unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A generator for one purpose, derived from the run seed and a label and index, so
/// that independent parts of a run (each organisation, each round) draw independent
/// streams whatever order they run in.
pub fn derive_rng(seed: u64, purpose: &str, index: u64) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    for (i, b) in purpose.bytes().take(16).enumerate() {
        key[16 + i] = b;
    }
    ChaCha20Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_below_covers_range_evenly() {
        let mut rng = derive_rng(1, "test", 0);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[uniform_below(&mut rng, 6)] += 1;
        }
        // Expected 10 000 each; 5 standard deviations ≈ 456.
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        shuffle(&mut derive_rng(7, "s", 1), &mut a);
        shuffle(&mut derive_rng(7, "s", 1), &mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn derived_streams_differ() {
        let x = derive_rng(3, "org", 0).next_u64();
        assert_ne!(x, derive_rng(3, "org", 1).next_u64());
        assert_ne!(x, derive_rng(3, "round", 0).next_u64());
        assert_ne!(x, derive_rng(4, "org", 0).next_u64());
        let u = uniform_unit(&mut derive_rng(3, "u", 0));
        assert!((0.0..1.0).contains(&u));
    }
}
