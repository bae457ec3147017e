//! Time as a plain value: the core never reads a clock; every input carries `now`.
//!
//! Two clocks: `now` is monotonic (every timer runs on it), and the wall clock (Unix
//! milliseconds) is `now` plus a [`WallOffset`] the driver keeps current. Validity checks
//! (delegation expiry, message issue times, record expiry and versions) read the wall
//! clock, so a jump of the system clock changes what is valid but cannot fire or freeze
//! the timers.

use core::ops::{Add, Sub};

/// Monotonic milliseconds since an origin chosen by the driver (virtual time in the
/// simulator, `performance` time in the browser).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

/// A span of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms)
    }
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s * 1000)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

impl Instant {
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

/// The wall clock as an offset from the monotonic one: `wall = now + offset` (zero: the
/// driver's `now` is wall time already, as in the simulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WallOffset(pub i64);

impl WallOffset {
    /// The offset that makes `wall(now)` read `wall_ms`.
    pub fn between(now: Instant, wall_ms: u64) -> WallOffset {
        let signed = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        WallOffset(signed(wall_ms).saturating_sub(signed(now.0)))
    }
    /// Wall-clock milliseconds at monotonic `now`.
    pub fn wall(self, now: Instant) -> Instant {
        Instant(now.0.saturating_add_signed(self.0))
    }
    /// The monotonic instant at which the wall clock reads `wall`.
    pub fn mono(self, wall: Instant) -> Instant {
        Instant(wall.0.saturating_add_signed(self.0.checked_neg().unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_and_monotonic_convert_both_ways_and_saturate() {
        let w = WallOffset::between(Instant(5_000), 1_700_000_000_000);
        assert_eq!(w.wall(Instant(6_000)), Instant(1_700_000_001_000));
        assert_eq!(w.mono(Instant(1_700_000_001_000)), Instant(6_000));
        assert_eq!(w.mono(Instant(0)), Instant(0), "before the monotonic origin");
        let back = WallOffset::between(Instant(u64::MAX), 0);
        assert_eq!(back.wall(Instant(0)), Instant(0));
        assert_eq!(WallOffset::default().wall(Instant(42)), Instant(42));
    }
}
