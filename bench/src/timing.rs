//! Wall-clock timing helpers: the median of a few runs (robust to a loaded machine).

use std::time::{Duration, Instant};

/// The median of `runs` timings of `f` (at least one run).
pub(crate) fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Milliseconds as `f64`.
pub(crate) fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}
