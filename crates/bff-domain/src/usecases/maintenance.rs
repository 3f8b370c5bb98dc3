//! Work that no request asks for: removing expired sessions in bounded batches. A host runs
//! [`Bff::sweep_expired`] on a timer (`bff-server` does, every `store.sweep_interval_secs`).

use super::Bff;
use crate::ports::{SessionEndReason, StoreError};

/// Sessions removed per store call; a sweep loops over batches so no single delete is unbounded.
const SWEEP_BATCH: u32 = 1000;

/// Output of [`Bff::sweep_expired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Sessions removed.
    pub removed: u64,
    /// Whether more expired sessions may remain (the batch limit was reached).
    pub more: bool,
}

impl Bff {
    /// Removes sessions that have expired, at most `max_batches` batches of 1000 per call, so
    /// one sweep is bounded; the rest waits for the next call.
    ///
    /// # Errors
    /// `Store` when the store fails (what was removed before stays removed).
    pub async fn sweep_expired(&self, max_batches: u32) -> Result<SweepOutcome, StoreError> {
        let mut removed = 0;
        for _ in 0..max_batches {
            let now = self.ports.clock.now();
            let n = self.ports.sessions.sweep_expired(now, SWEEP_BATCH).await?;
            self.sessions_ended(SessionEndReason::Expired, n);
            removed += n;
            if n < u64::from(SWEEP_BATCH) {
                return Ok(SweepOutcome {
                    removed,
                    more: false,
                });
            }
        }
        // Every allowed batch was full (or none was allowed): more may remain.
        Ok(SweepOutcome {
            removed,
            more: true,
        })
    }
}
