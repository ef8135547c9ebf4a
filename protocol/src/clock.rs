//! Time, injected.
//!
//! The protocol never reads the system clock: every step that needs the time (round
//! windows, ledger stamps, release times) takes a [`Time`] value from its caller. The
//! node reads its [`Clock`] (the system clock) once per request; tests and the
//! simulation pass fixed times, so every run is deterministic.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_saturates() {
        assert_eq!(Time(100).plus_secs(5), Time(105));
        assert_eq!(Time(u64::MAX).plus_secs(1), Time(u64::MAX));
    }
}
