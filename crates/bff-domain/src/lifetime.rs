//! Session lifetime rules: an idle timeout that slides with use, under a hard absolute limit.

use std::time::Duration;

use crate::time::Timestamp;

/// How long sessions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetime {
    /// A session not used for this long ends.
    pub idle: Duration,
    /// No session lives longer than this, however busy.
    pub absolute: Duration,
}

impl Default for SessionLifetime {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
        }
    }
}

/// The expiry times of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// Sliding expiry.
    pub idle: Timestamp,
    /// Hard expiry.
    pub absolute: Timestamp,
}

impl SessionLifetime {
    /// Expiry times of a session created at `now`.
    pub fn for_new_session(&self, now: Timestamp) -> Expiry {
        let absolute = now.plus(self.absolute);
        Expiry {
            idle: now.plus(self.idle).min(absolute),
            absolute,
        }
    }

    /// The new idle expiry when a session is used at `now`, or `None` when it is not worth a
    /// write: sliding only moves forward, never past the absolute expiry, and skips moves shorter
    /// than a tenth of the idle timeout so a busy session is not written on every request.
    pub fn slide(&self, now: Timestamp, current: Expiry) -> Option<Timestamp> {
        let proposed = now.plus(self.idle).min(current.absolute);
        let threshold = (self.idle / 10).max(Duration::from_secs(1));
        (proposed > current.idle && current.idle.until(proposed) >= threshold).then_some(proposed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: u64 = 600;
    const ABSOLUTE: u64 = 3600;

    fn lifetime() -> SessionLifetime {
        SessionLifetime {
            idle: Duration::from_secs(IDLE),
            absolute: Duration::from_secs(ABSOLUTE),
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s)
    }

    #[test]
    fn new_sessions_get_both_expiries() {
        let e = lifetime().for_new_session(t(1000));
        assert_eq!(e.idle, t(1600));
        assert_eq!(e.absolute, t(4600));
    }

    #[test]
    fn idle_never_exceeds_absolute_even_when_configured_longer() {
        let l = SessionLifetime {
            idle: Duration::from_secs(7200),
            absolute: Duration::from_secs(3600),
        };
        let e = l.for_new_session(t(0));
        assert_eq!(e.idle, t(3600));
    }

    #[test]
    fn sliding_table() {
        // (now, current idle expiry, absolute expiry, expected new idle expiry)
        let cases: &[(i64, i64, i64, Option<i64>)] = &[
            // Used shortly after creation: less than idle/10 gained, no write.
            (10, 600, 3600, None),
            // Used later: slides to now + idle.
            (100, 600, 3600, Some(700)),
            // Near the absolute limit: capped there.
            (3500, 3400, 3600, Some(3600)),
            // Already at the absolute limit: nothing to move.
            (3550, 3600, 3600, None),
            // Clock went backwards: never shortens.
            (0, 900, 3600, None),
        ];
        for &(now, idle, absolute, expected) in cases {
            let got = lifetime().slide(
                t(now),
                Expiry {
                    idle: t(idle),
                    absolute: t(absolute),
                },
            );
            assert_eq!(got, expected.map(t), "now={now} idle={idle} abs={absolute}");
        }
    }
}
