//! Points in time as whole Unix seconds, and arithmetic on them that never panics.
//!
//! OAuth and OIDC speak in NumericDate (seconds since the epoch), so the domain does too. The
//! current time always comes from the [`crate::clock::Clock`] port.

use std::fmt;
use std::time::Duration;

/// A point in time, in whole seconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The given number of seconds since the epoch.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Seconds since the epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// `self + duration`, saturating at the far future.
    pub fn plus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs))
    }

    /// `self - duration`, saturating at the far past.
    pub fn minus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(secs))
    }

    /// The time from `self` until `later`, or zero when `later` is not after `self`.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let t = Timestamp::from_unix_seconds(i64::MAX - 1);
        assert_eq!(t.plus(Duration::from_secs(10)).unix_seconds(), i64::MAX);
        let t = Timestamp::from_unix_seconds(i64::MIN + 1);
        assert_eq!(t.minus(Duration::from_secs(10)).unix_seconds(), i64::MIN);
    }

    #[test]
    fn until_is_zero_for_the_past() {
        let t = Timestamp::from_unix_seconds(100);
        assert_eq!(t.until(Timestamp::from_unix_seconds(50)), Duration::ZERO);
        assert_eq!(
            t.until(Timestamp::from_unix_seconds(160)),
            Duration::from_secs(60)
        );
    }
}
