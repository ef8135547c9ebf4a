//! The operating system's randomness, as a seeded CSPRNG.
//!
//! Library code takes `R: CryptoRng` so tests can be deterministic; binaries and the
//! SDK's defaults get theirs here: ChaCha20 keyed with 32 bytes from the OS
//! (`getrandom`), which is what every report id, seed and noise draw then comes from.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

/// Errors of reading OS randomness.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct OsRngError(String);

/// A ChaCha20 CSPRNG seeded from the operating system.
pub fn os_rng() -> Result<ChaCha20Rng, OsRngError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| OsRngError(e.to_string()))?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

#[cfg(test)]
mod tests {
    use rand_core::Rng;

    #[test]
    fn two_generators_differ() {
        let a = super::os_rng().unwrap().next_u64();
        let b = super::os_rng().unwrap().next_u64();
        assert_ne!(a, b);
    }
}
