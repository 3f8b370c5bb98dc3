//! `[store.redis]` configuration, owned by this adapter.

use std::fmt;

use serde::Deserialize;

/// A Redis URL whose password is never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
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
    /// Pool size.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Bound on every command, including waiting for a connection, in milliseconds.
    #[serde(default = "default_timeout_ms")]
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

    /// Problems with these values, one line each.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match url::Url::parse(self.url.expose()) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss") => {}
            _ => problems.push(format!(
                "store.redis.url must be redis://… or rediss://… (got {})",
                redacted(self.url.expose())
            )),
        }
        if self.pool_size == 0 {
            problems.push("store.redis.pool_size must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            problems.push("store.redis.timeout_ms must be greater than zero".into());
        }
        problems
    }
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

    #[test]
    fn passwords_never_show() {
        let config = RedisConfig::for_url("redis://:hunter2@cache:6379/0");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(config.validate().is_empty());
        assert!(!RedisConfig::for_url("http://x").validate().is_empty());
    }
}
