//! The `Clock` port: the only way the domain learns the time or waits.
//!
//! `clippy.toml` bans `SystemTime::now` and `Instant::now` in this crate, so every rule runs with
//! the time its caller injects.

use std::time::Duration;

use async_trait::async_trait;

use crate::time::Timestamp;

/// The current time, and waiting.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;

    /// Waits for `duration`: the use cases back off with it while another request holds a
    /// lease. A test clock may move its own time forward instead of waiting.
    async fn sleep(&self, duration: Duration);
}
