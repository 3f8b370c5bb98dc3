//! `[store.postgres]` configuration, owned by this adapter. Values are checked as they are
//! deserialized, so a bad one is reported with its key when the file is read.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A `postgres://` URL whose password is never printed.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct DatabaseUrl(String);

/// A database URL that is not `postgres://…`. Shows the URL with its password redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be postgres://… or postgresql://… (got {0})")]
pub struct InvalidDatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL without checking it (tests and tools; connecting reports a bad one).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// Checks that `url` is a `postgres://` or `postgresql://` URL.
    ///
    /// # Errors
    /// [`InvalidDatabaseUrl`], which never shows the password.
    pub fn parse(url: &str) -> Result<Self, InvalidDatabaseUrl> {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => Ok(Self(url.to_owned())),
            _ => Err(InvalidDatabaseUrl(redacted(url))),
        }
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = InvalidDatabaseUrl;

    fn try_from(url: String) -> Result<Self, InvalidDatabaseUrl> {
        Self::parse(&url)
    }
}

/// The URL with any password replaced by `[redacted]`.
pub(crate) fn redacted(url: &str) -> String {
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
    /// Schema to use (`search_path`): letters, digits and `_`; default: the server's default
    /// (`public`).
    #[serde(default, deserialize_with = "schema_name")]
    pub schema: Option<String>,
    /// Pool size, at least 1.
    #[serde(
        default = "default_max_connections",
        deserialize_with = "greater_than_zero"
    )]
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, in milliseconds; not zero.
    #[serde(
        default = "default_acquire_timeout_ms",
        deserialize_with = "greater_than_zero"
    )]
    pub acquire_timeout_ms: u64,
    /// `statement_timeout` of every connection, in milliseconds; not zero.
    #[serde(
        default = "default_statement_timeout_ms",
        deserialize_with = "greater_than_zero"
    )]
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
}

fn schema_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let schema = String::deserialize(deserializer)?;
    if schema.is_empty()
        || !schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(serde::de::Error::custom(format!(
            "{schema:?} must be letters, digits and '_'"
        )));
    }
    Ok(Some(schema))
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

    fn parse(value: serde_json::Value) -> Result<PostgresConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn passwords_never_show() {
        let config = PostgresConfig::for_url("postgres://bff:hunter2@db:5432/bff");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(format!("{config:?}").contains("db:5432"));
        let parsed =
            parse(serde_json::json!({"url": "postgres://bff:hunter2@db:5432/bff"})).unwrap();
        assert_eq!(parsed.max_connections, 10);
        assert!(!format!("{parsed:?}").contains("hunter2"));
        let problem = parse(serde_json::json!({"url": "mysql://bff:hunter2@db/bff"})).unwrap_err();
        assert!(
            problem.contains("(got mysql://bff:[redacted]@db/bff)") && !problem.contains("hunter2"),
            "{problem}"
        );
        let problem = parse(serde_json::json!({"url": "not a url hunter2"})).unwrap_err();
        assert!(!problem.contains("hunter2"), "{problem}");
    }

    #[test]
    fn bad_values_are_refused_when_read() {
        let url = "postgres://db/bff";
        for (key, value, expected) in [
            ("schema", serde_json::json!("a;drop"), "letters, digits"),
            ("schema", serde_json::json!(""), "letters, digits"),
            ("max_connections", serde_json::json!(0), "greater than zero"),
            (
                "acquire_timeout_ms",
                serde_json::json!(0),
                "greater than zero",
            ),
            (
                "statement_timeout_ms",
                serde_json::json!(0),
                "greater than zero",
            ),
            ("pool", serde_json::json!(1), "unknown field"),
        ] {
            let mut value_map = serde_json::json!({ "url": url });
            value_map[key] = value;
            let problem = parse(value_map).unwrap_err();
            assert!(problem.contains(expected), "{key}: {problem}");
        }
    }
}
