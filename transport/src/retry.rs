//! Retry with exponential backoff and jitter, for clients.
//!
//! Uploads are idempotent by report id and leader↔helper jobs by job id (DESIGN §7), so
//! a client may resend the same request after a transient failure. [`retry_with_backoff`]
//! retries only errors that say they are retriable ([`Retriable`]): for the transport,
//! lost connections, timeouts and truncated streams ([`TransportError::is_retriable`]);
//! a caller's own error type adds the protocol errors it flags retriable (such as
//! `ErrorCode::Busy`).
//!
//! The wait before retry `k ≥ 1` is "equal jitter": with `cap_k = min(max_delay,
//! initial_delay · 2^(k−1))`, it is `cap_k / 2 + U`, `U` uniform on `[0, cap_k / 2]`
//! drawn from the injected RNG, so clients that failed together spread out while each
//! still waits at least half the exponential delay. Without jitter it is `cap_k`.

use std::future::Future;
use std::time::Duration;

use rand_core::Rng;

use crate::error::TransportError;

/// Whether an error is worth retrying.
pub trait Retriable {
    /// True if the same request may succeed later.
    fn is_retriable(&self) -> bool;
}

impl Retriable for TransportError {
    fn is_retriable(&self) -> bool {
        TransportError::is_retriable(self)
    }
}

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry). 0 is treated as 1.
    pub max_attempts: u32,
    /// The delay cap before the first retry.
    pub initial_delay: Duration,
    /// The largest delay between two attempts.
    pub max_delay: Duration,
    /// Randomise delays (equal jitter); without it delays are deterministic.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 6 attempts, 100 ms doubling up to 5 s, with jitter.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry; 0 waits nothing).
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let max = duration_nanos(self.max_delay);
        let factor = 1u64.checked_shl(retry - 1).unwrap_or(u64::MAX);
        let cap = duration_nanos(self.initial_delay)
            .saturating_mul(factor)
            .min(max);
        if !self.jitter {
            return Duration::from_nanos(cap);
        }
        let half = cap / 2;
        let spread = cap - half;
        // Modulo bias is below 2^-64·spread: irrelevant for spreading retries.
        let jitter = match spread.checked_add(1) {
            Some(n) => rng.next_u64() % n,
            None => rng.next_u64(),
        };
        Duration::from_nanos(half + jitter)
    }
}

/// Runs `operation` until it succeeds, fails with an error that is not retriable, or
/// `policy.max_attempts` attempts have failed; sleeps [`RetryPolicy::delay`] between
/// attempts. `operation` receives the attempt number (1-based). Returns the last error.
pub async fn retry_with_backoff<T, E, R, F, Fut>(
    policy: &RetryPolicy,
    rng: &mut R,
    mut operation: F,
) -> Result<T, E>
where
    E: Retriable,
    R: Rng + ?Sized,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match operation(attempt).await {
            Ok(value) => return Ok(value),
            Err(e) if attempt < attempts && e.is_retriable() => {
                let wait = policy.delay(attempt, rng);
                tracing::debug!(attempt, ?wait, "retriable failure: retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[derive(Debug, PartialEq)]
    enum FakeError {
        Transient,
        Fatal,
    }

    impl Retriable for FakeError {
        fn is_retriable(&self) -> bool {
            *self == FakeError::Transient
        }
    }

    fn policy(jitter: bool) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter,
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_without_jitter() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let got: Vec<u64> = (0..7)
            .map(|k| policy(false).delay(k, &mut rng).as_millis() as u64)
            .collect();
        assert_eq!(got, [0, 100, 200, 400, 800, 1000, 1000]);
        // Huge retry numbers saturate instead of overflowing.
        assert_eq!(
            policy(false).delay(u32::MAX, &mut rng),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn jittered_delays_stay_in_the_upper_half_and_spread() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let p = policy(true);
        for k in 1..8u32 {
            let cap = Duration::from_millis((100u64 << (k - 1)).min(1000));
            let samples: Vec<Duration> = (0..200).map(|_| p.delay(k, &mut rng)).collect();
            assert!(
                samples.iter().all(|d| *d >= cap / 2 && *d <= cap),
                "retry {k}"
            );
            let lowest = samples.iter().min().unwrap();
            let highest = samples.iter().max().unwrap();
            // 200 uniform draws cover most of the range [cap/2, cap].
            assert!(*highest - *lowest > cap / 4, "retry {k}: no spread");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retriable_errors_until_success() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut seen = Vec::new();
        let start = tokio::time::Instant::now();
        let result = retry_with_backoff(&policy(false), &mut rng, |attempt| {
            seen.push(attempt);
            async move {
                if attempt < 3 {
                    Err(FakeError::Transient)
                } else {
                    Ok(attempt * 10)
                }
            }
        })
        .await;
        assert_eq!(result, Ok(30));
        assert_eq!(seen, [1, 2, 3]);
        // Slept 100 ms then 200 ms (paused clock: exact).
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_are_not_retried() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let mut calls = 0;
        let result: Result<(), _> = retry_with_backoff(&policy(true), &mut rng, |_| {
            calls += 1;
            async { Err(FakeError::Fatal) }
        })
        .await;
        assert_eq!(result, Err(FakeError::Fatal));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_with_the_last_error() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let mut calls = 0;
        let result: Result<(), _> = retry_with_backoff(&policy(true), &mut rng, |_| {
            calls += 1;
            async { Err(FakeError::Transient) }
        })
        .await;
        assert_eq!(result, Err(FakeError::Transient));
        assert_eq!(calls, 5);
    }

    #[test]
    fn transport_errors_are_classified() {
        use crate::error::TimeoutKind;
        let retriable = [
            TransportError::Closed("lost".into()),
            TransportError::Timeout {
                kind: TimeoutKind::Read,
                after: Duration::from_secs(1),
            },
            TransportError::UnexpectedEof,
            TransportError::Io(std::io::Error::other("x")),
        ];
        let fatal = [
            TransportError::Tls("bad".into()),
            TransportError::PeerNotPinned { presented: [0; 32] },
            TransportError::FrameTooLarge { len: 10, max: 5 },
            TransportError::StreamRefused { code: 1 },
            TransportError::TrailingBytes,
            TransportError::Config("x".into()),
            TransportError::Connect("bad address".into()),
        ];
        assert!(retriable.iter().all(Retriable::is_retriable));
        assert!(!fatal.iter().any(Retriable::is_retriable));
    }
}
