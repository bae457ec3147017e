//! Time as a plain value: the core never reads a clock; every input carries `now`.

use core::ops::{Add, Sub};

/// Milliseconds since an arbitrary origin chosen by the driver (virtual time in the
/// simulator, `performance.now()` in the browser).
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
