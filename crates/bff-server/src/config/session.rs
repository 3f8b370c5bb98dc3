//! `[session]`: session lifetimes, in seconds, and the userinfo switch.

use serde::Deserialize;

use super::reader::greater_than_zero;

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// `idle_timeout_secs`: a session unused this long ends; default 1800, not zero.
    #[serde(deserialize_with = "greater_than_zero")]
    pub idle_timeout_secs: u64,
    /// `absolute_timeout_secs`: no session lives longer; default 43200, not zero.
    #[serde(deserialize_with = "greater_than_zero")]
    pub absolute_timeout_secs: u64,
    /// `login_timeout_secs`: a started login must complete within this; default 600, not zero.
    #[serde(deserialize_with = "greater_than_zero")]
    pub login_timeout_secs: u64,
    /// `refresh_margin_secs`: refresh access tokens this long before they expire; default 60.
    pub refresh_margin_secs: u64,
    /// `fetch_userinfo`: merge the provider's userinfo endpoint into `/bff/userinfo`.
    pub fetch_userinfo: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 60 * 60,
            login_timeout_secs: 10 * 60,
            refresh_margin_secs: 60,
            fetch_userinfo: false,
        }
    }
}
