//! The host's own `Clock` adapter: wall-clock seconds for the domain, tokio's timer for its
//! back-off waits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bff_domain::Timestamp;
use bff_domain::ports::Clock;

/// System time and `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

#[async_trait::async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        // A clock before 1970 is a broken machine; 0 makes every session look expired, which
        // fails closed.
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        Timestamp::from_unix_seconds(seconds)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn now_is_the_system_time_and_sleep_waits() {
        let clock = TokioClock;
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let before = clock.now().unix_seconds();
        assert!(before.abs_diff(i64::try_from(system).unwrap()) <= 1);

        let started = std::time::Instant::now();
        clock.sleep(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
