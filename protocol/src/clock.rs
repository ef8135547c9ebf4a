//! Time, injected.
//!
//! The protocol never reads the system clock: rounds open and close, and ledger entries
//! are stamped, through a [`Clock`] the caller provides. The node passes a
//! [`SystemClock`]-like implementation; tests and the simulation pass a [`ManualClock`]
//! they advance by hand, so every run is deterministic.

use core::sync::atomic::{AtomicU64, Ordering};

/// Seconds since the Unix epoch, the only unit of time the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// The time `secs` seconds later, saturating at the end of representable time.
    pub fn plus_secs(self, secs: u64) -> Time {
        Time(self.0.saturating_add(secs))
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Time;
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    secs: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Time) -> Self {
        Self {
            secs: AtomicU64::new(start.0),
        }
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.secs.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock to `time` (it may go backwards: tests use this to model skew).
    pub fn set(&self, time: Time) {
        self.secs.store(time.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        Time(self.secs.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Time(100));
        assert_eq!(clock.now(), Time(100));
        clock.advance(5);
        assert_eq!(clock.now(), Time(105));
        clock.set(Time(7));
        assert_eq!(clock.now(), Time(7));
        assert_eq!(Time(u64::MAX).plus_secs(1), Time(u64::MAX));
    }
}
