//! `[store.postgres]` configuration, owned by this adapter.

use std::fmt;

use serde::Deserialize;

/// A database URL whose password is never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The URL with any password replaced by `[redacted]`.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[unparsable url]".into(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

/// `[store.postgres]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:5432/database`.
    pub url: DatabaseUrl,
    /// Schema to use (`search_path`); default: the server's default (`public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// Pool size.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, in milliseconds.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// `statement_timeout` of every connection, in milliseconds.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// Apply migrations at start-up (otherwise run `bff-server migrate`).
    #[serde(default)]
    pub migrate_on_start: bool,
}

impl PostgresConfig {
    /// Defaults for `url`.
    pub fn for_url(url: &str) -> Self {
        Self {
            url: DatabaseUrl::new(url),
            schema: None,
            max_connections: default_max_connections(),
            acquire_timeout_ms: default_acquire_timeout_ms(),
            statement_timeout_ms: default_statement_timeout_ms(),
            migrate_on_start: false,
        }
    }

    /// Problems with these values, one line each.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match url::Url::parse(self.url.expose()) {
            Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => {}
            _ => problems.push(format!(
                "store.postgres.url must be postgres://… (got {})",
                redacted(self.url.expose())
            )),
        }
        if let Some(schema) = &self.schema
            && (schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            problems.push(format!(
                "store.postgres.schema {schema:?} must be letters, digits and '_'"
            ));
        }
        if self.max_connections == 0 {
            problems.push("store.postgres.max_connections must be at least 1".into());
        }
        if self.acquire_timeout_ms == 0 || self.statement_timeout_ms == 0 {
            problems.push("store.postgres timeouts must be greater than zero".into());
        }
        problems
    }
}

fn default_max_connections() -> u32 {
    10
}

fn default_acquire_timeout_ms() -> u64 {
    2_000
}

fn default_statement_timeout_ms() -> u64 {
    5_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let config = PostgresConfig::for_url("postgres://bff:hunter2@db:5432/bff");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(format!("{config:?}").contains("db:5432"));
        assert!(config.validate().is_empty());
        let bad = PostgresConfig::for_url("mysql://bff:hunter2@db/bff");
        let problems = bad.validate().join("\n");
        assert!(
            problems.contains("postgres://") && !problems.contains("hunter2"),
            "{problems}"
        );
    }
}
