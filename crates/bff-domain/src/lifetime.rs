//! Session lifetime rules: an idle timeout that slides with use, under a hard absolute limit,
//! which the provider's refresh token expiry lowers: a session never outlives the refresh token
//! the provider said expires.

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

/// Session id renewal: a session whose id was issued `after` ago gets a new id on its next
/// use; the old id stays usable for `grace`, as an alias of the new one, so requests of the same
/// tab that still carry the old cookie succeed (and learn the new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRenewal {
    /// Age of a session id after which it is renewed.
    pub after: Duration,
    /// How long the old id keeps working after its renewal.
    pub grace: Duration,
}

impl SessionRenewal {
    /// Whether an id issued at `issued_at` is due for renewal at `now`.
    pub fn is_due(&self, issued_at: Timestamp, now: Timestamp) -> bool {
        now >= issued_at.plus(self.after)
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

    /// `expiry` of a session created at `created_at` once the provider said its (new) refresh
    /// token expires at `refresh_token_expires_at`: the absolute expiry becomes that time, but
    /// never later than the configured limit from creation (so a rotated refresh token that
    /// lives longer may move it forward, up to that limit), and the idle expiry stays within
    /// it. Unchanged when the provider did not say.
    pub fn bounded_by_refresh_token(
        &self,
        created_at: Timestamp,
        expiry: Expiry,
        refresh_token_expires_at: Option<Timestamp>,
    ) -> Expiry {
        let Some(limit) = refresh_token_expires_at else {
            return expiry;
        };
        let absolute = created_at.plus(self.absolute).min(limit);
        Expiry {
            idle: expiry.idle.min(absolute),
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
    fn the_refresh_token_expiry_bounds_the_absolute_expiry_table() {
        let created = t(1000);
        let fresh = lifetime().for_new_session(created); // idle 1600, absolute 4600
        // (current idle, current absolute, refresh token expiry, expected idle, absolute)
        let cases: &[(Expiry, Option<i64>, (i64, i64))] = &[
            // Not said: unchanged.
            (fresh, None, (1600, 4600)),
            // Earlier than the configured limit: the session ends with the refresh token.
            (fresh, Some(2000), (1600, 2000)),
            (fresh, Some(1200), (1200, 1200)),
            // Later than the configured limit: the limit stands.
            (fresh, Some(9000), (1600, 4600)),
            // A rotated refresh token living longer moves a lowered limit forward, not past
            // the configured one.
            (
                Expiry {
                    idle: t(1800),
                    absolute: t(2000),
                },
                Some(3000),
                (1800, 3000),
            ),
            (
                Expiry {
                    idle: t(1800),
                    absolute: t(2000),
                },
                Some(9000),
                (1800, 4600),
            ),
        ];
        for &(current, refresh, (idle, absolute)) in cases {
            let got = lifetime().bounded_by_refresh_token(created, current, refresh.map(t));
            assert_eq!(
                got,
                Expiry {
                    idle: t(idle),
                    absolute: t(absolute)
                },
                "{current:?} {refresh:?}"
            );
        }
    }

    #[test]
    fn renewal_is_due_once_the_id_is_old_enough() {
        let renewal = SessionRenewal {
            after: Duration::from_secs(3600),
            grace: Duration::from_secs(60),
        };
        assert!(!renewal.is_due(t(1000), t(1000)));
        assert!(!renewal.is_due(t(1000), t(4599)));
        assert!(renewal.is_due(t(1000), t(4600)));
        // A clock that went backwards never makes an id due.
        assert!(!renewal.is_due(t(1000), t(10)));
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
