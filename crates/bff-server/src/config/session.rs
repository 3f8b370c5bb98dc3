//! `[session]`: session lifetimes, in seconds, the userinfo switch, session id renewal and
//! client binding.

use bff_domain::{BindingMode, ClientBindingPolicy, SessionRenewal};
use serde::{Deserialize, Deserializer, de};
use std::time::Duration;

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
    /// `rekey_after_secs`: give a session a new id (and cookie) on its first request once its
    /// id is this old; 0 (the default) never does. Costs one store read per request.
    pub rekey_after_secs: u64,
    /// `rekey_grace_secs`: how long the old id keeps working after a renewal, for requests
    /// already on their way with the old cookie; default 60, not zero.
    #[serde(deserialize_with = "greater_than_zero")]
    pub rekey_grace_secs: u64,
    /// `client_binding`: `off` (default), `warn` (a request from another client is logged) or
    /// `strict` (it ends the session, `401 session_binding_mismatch`).
    pub client_binding: ClientBindingSetting,
    /// `client_binding_ipv4_prefix`: also bind to the client's IPv4 network of this prefix
    /// length (0 to 32, e.g. 24); absent: the address is not part of the binding.
    #[serde(deserialize_with = "ipv4_prefix")]
    pub client_binding_ipv4_prefix: Option<u8>,
    /// `client_binding_ipv6_prefix`: the same for IPv6 (0 to 128, e.g. 64).
    #[serde(deserialize_with = "ipv6_prefix")]
    pub client_binding_ipv6_prefix: Option<u8>,
}

/// `client_binding`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientBindingSetting {
    /// No binding.
    #[default]
    Off,
    /// Log a mismatch.
    Warn,
    /// End the session on a mismatch.
    Strict,
}

fn prefix<'de, D: Deserializer<'de>>(deserializer: D, max: u8) -> Result<Option<u8>, D::Error> {
    let value = u8::deserialize(deserializer)?;
    if value > max {
        return Err(de::Error::custom(format!("must be 0 to {max}")));
    }
    Ok(Some(value))
}

fn ipv4_prefix<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u8>, D::Error> {
    prefix(deserializer, 32)
}

fn ipv6_prefix<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u8>, D::Error> {
    prefix(deserializer, 128)
}

impl SessionConfig {
    /// Session id renewal, when `rekey_after_secs` is set.
    pub fn renewal(&self) -> Option<SessionRenewal> {
        (self.rekey_after_secs > 0).then(|| SessionRenewal {
            after: Duration::from_secs(self.rekey_after_secs),
            grace: Duration::from_secs(self.rekey_grace_secs),
        })
    }

    /// The client binding policy (prefix lengths were checked as they were read).
    pub fn client_binding(&self) -> ClientBindingPolicy {
        let mode = match self.client_binding {
            ClientBindingSetting::Off => BindingMode::Off,
            ClientBindingSetting::Warn => BindingMode::Warn,
            ClientBindingSetting::Strict => BindingMode::Strict,
        };
        ClientBindingPolicy::new(
            mode,
            self.client_binding_ipv4_prefix,
            self.client_binding_ipv6_prefix,
        )
        .unwrap_or_default()
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 60 * 60,
            login_timeout_secs: 10 * 60,
            refresh_margin_secs: 60,
            fetch_userinfo: false,
            rekey_after_secs: 0,
            rekey_grace_secs: 60,
            client_binding: ClientBindingSetting::Off,
            client_binding_ipv4_prefix: None,
            client_binding_ipv6_prefix: None,
        }
    }
}
