//! Exact uniform integers.

use rand_core::Rng;

/// A uniform integer in `[0, n)` (exact; `n = 0` returns 0).
///
/// Lemire's multiply-and-reject ("Fast Random Integer Generation in an Interval", ACM TOMACS
/// 2019, Algorithm 5): the high word of `x·n` for a uniform 64-bit `x` is uniform once the
/// low word is outside the `2^64 mod n` biased values.
pub fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// A uniform integer in `[0, n)` for u128 bounds, by rejection on the covering power of two.
pub(crate) fn uniform_below_u128<R: Rng + ?Sized>(rng: &mut R, n: u128) -> u128 {
    if n <= 1 {
        return 0;
    }
    let bits = 128 - (n - 1).leading_zeros();
    loop {
        let x = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        let x = if bits == 128 {
            x
        } else {
            x & ((1u128 << bits) - 1)
        };
        if x < n {
            return x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn uniform_counts_are_balanced() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        for n in [1u64, 3, 7, 10] {
            let mut counts = vec![0u32; n as usize];
            let draws = 30_000;
            for _ in 0..draws {
                counts[uniform_below(&mut rng, n) as usize] += 1;
            }
            let expect = f64::from(draws) / n as f64;
            let chi2: f64 = counts
                .iter()
                .map(|&c| (f64::from(c) - expect).powi(2) / expect)
                .sum();
            // df ≤ 9: the 1e-6 upper quantile of χ²_9 is about 44.
            assert!(chi2 < 44.0, "n = {n}, chi2 = {chi2}");
        }
        for _ in 0..1000 {
            assert!(uniform_below_u128(&mut rng, 5) < 5);
        }
    }
}
