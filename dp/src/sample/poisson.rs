//! Poisson subsampling: every item is kept independently with probability `q`.
//!
//! This is the sampling the subsampled-Gaussian accountant ([`crate::rdp`]) assumes:
//! independent, per record, per round, with a fresh draw every round. Each coin is an
//! exact Bernoulli(q) ([`bernoulli_ratio`]) for the `f64` q read exactly as a dyadic
//! rational, fed by the caller's CSPRNG. Which records were sampled is the silo's
//! secret: the amplification by subsampling holds only if nobody else learns it.

use rand_core::CryptoRng;

use super::{Ratio, SampleError, bernoulli_ratio};

/// The indices in `0..n` of a Poisson sample with rate `q ∈ (0, 1]`, ascending.
pub fn poisson_subsample<R: CryptoRng + ?Sized>(
    n: usize,
    q: f64,
    rng: &mut R,
) -> Result<Vec<usize>, SampleError> {
    if !(q > 0.0 && q <= 1.0) {
        return Err(SampleError::NotPositive(q));
    }
    if q == 1.0 {
        return Ok((0..n).collect());
    }
    let p = Ratio::from_f64(q)?;
    Ok((0..n).filter(|_| bernoulli_ratio(rng, p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn the_inclusion_rate_is_q() {
        // 10^6 coins at q = 0.01: the count is Binomial(10^6, 0.01), mean 10^4 and
        // standard deviation 99.5; |count − mean| > 6 sd has probability < 2e−9.
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let n = 1_000_000;
        let sample = poisson_subsample(n, 0.01, &mut rng).unwrap();
        let sd = (n as f64 * 0.01 * 0.99).sqrt();
        assert!(
            (sample.len() as f64 - 10_000.0).abs() <= 6.0 * sd,
            "{}",
            sample.len()
        );
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        // Each position is kept at rate q too: the first and second halves agree.
        let first = sample.iter().filter(|i| **i < n / 2).count() as f64;
        let half_sd = (n as f64 / 2.0 * 0.01 * 0.99).sqrt();
        assert!((first - 5_000.0).abs() <= 6.0 * half_sd, "{first}");
        // q = 0.3 on another seed.
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let k = poisson_subsample(200_000, 0.3, &mut rng).unwrap().len() as f64;
        let sd = (200_000.0f64 * 0.3 * 0.7).sqrt();
        assert!((k - 60_000.0).abs() <= 6.0 * sd, "{k}");
    }

    #[test]
    fn bad_rates_are_refused_and_one_keeps_everything() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        assert!(poisson_subsample(10, 0.0, &mut rng).is_err());
        assert!(poisson_subsample(10, 1.5, &mut rng).is_err());
        assert!(poisson_subsample(10, f64::NAN, &mut rng).is_err());
        assert_eq!(
            poisson_subsample(5, 1.0, &mut rng).unwrap(),
            vec![0, 1, 2, 3, 4]
        );
    }
}
