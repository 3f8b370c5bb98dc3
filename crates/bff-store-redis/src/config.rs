//! `[store.redis]` configuration, owned by this adapter. Values are checked as they are
//! deserialized, so a bad one is reported with its key when the file is read.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A `redis://` or `rediss://` URL whose password is never printed.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RedisUrl(String);

/// A Redis URL that is not `redis://…` or `rediss://…`. Shows the URL with its password
/// redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be redis://… or rediss://… (got {0})")]
pub struct InvalidRedisUrl(String);

impl RedisUrl {
    /// Wraps a URL without checking it (tests and tools; connecting reports a bad one).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// Checks that `url` is a `redis://` or `rediss://` URL.
    ///
    /// # Errors
    /// [`InvalidRedisUrl`], which never shows the password.
    pub fn parse(url: &str) -> Result<Self, InvalidRedisUrl> {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss") => Ok(Self(url.to_owned())),
            _ => Err(InvalidRedisUrl(redacted(url))),
        }
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RedisUrl {
    type Error = InvalidRedisUrl;

    fn try_from(url: String) -> Result<Self, InvalidRedisUrl> {
        Self::parse(&url)
    }
}

fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Brackets would be percent-encoded inside the URL: put them in afterwards.
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string().replacen(":REDACTED@", ":[redacted]@", 1)
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[unparsable url]".into(),
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

/// `[store.redis]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:6379[/db]` or `rediss://…` for TLS.
    pub url: RedisUrl,
    /// Pool size, at least 1.
    #[serde(default = "default_pool_size", deserialize_with = "greater_than_zero")]
    pub pool_size: usize,
    /// Bound on every command, including waiting for a connection, in milliseconds; not zero.
    #[serde(default = "default_timeout_ms", deserialize_with = "greater_than_zero")]
    pub timeout_ms: u64,
    /// Prefix of every key, so several deployments can share a server.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

impl RedisConfig {
    /// Defaults for `url`.
    pub fn for_url(url: &str) -> Self {
        Self {
            url: RedisUrl::new(url),
            pool_size: default_pool_size(),
            timeout_ms: default_timeout_ms(),
            key_prefix: default_prefix(),
        }
    }
}

fn greater_than_zero<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default + PartialEq,
{
    let value = T::deserialize(deserializer)?;
    if value == T::default() {
        return Err(serde::de::Error::custom("must be greater than zero"));
    }
    Ok(value)
}

fn default_pool_size() -> usize {
    16
}

fn default_timeout_ms() -> u64 {
    1_000
}

fn default_prefix() -> String {
    "bff:".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<RedisConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn passwords_never_show() {
        let config = RedisConfig::for_url("redis://:hunter2@cache:6379/0");
        assert!(!format!("{config:?}").contains("hunter2"));
        let parsed = parse(serde_json::json!({"url": "rediss://:hunter2@cache:6379/0"})).unwrap();
        assert_eq!(parsed.pool_size, 16);
        assert!(!format!("{parsed:?}").contains("hunter2"));
        let problem = parse(serde_json::json!({"url": "http://:hunter2@cache"})).unwrap_err();
        assert!(
            problem.contains("(got http://:[redacted]@cache/)") && !problem.contains("hunter2"),
            "{problem}"
        );
    }

    #[test]
    fn bad_values_are_refused_when_read() {
        for (key, expected) in [
            ("pool_size", "greater than zero"),
            ("timeout_ms", "greater than zero"),
        ] {
            let mut value = serde_json::json!({ "url": "redis://cache" });
            value[key] = 0.into();
            let problem = parse(value).unwrap_err();
            assert!(problem.contains(expected), "{key}: {problem}");
        }
    }
}
