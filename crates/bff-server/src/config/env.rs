//! `BFF_` environment variables: each one sets a key path of the configuration tree.
//!
//! `BFF_PROVIDERS__MAIN__CLIENT_SECRET=…` sets `providers.main.client_secret`: the name after
//! `BFF_`, lowercased, split at `__`. The value goes into the tree as a string, whatever it
//! looks like; only where the schema wants a number, a boolean, a list or a table is it read
//! as a TOML value (see [`EnvOrigins::is_set_here`] and the reader), so a secret of digits stays a
//! secret of digits. [`EnvOrigins`] remembers which variable set which path, so a problem, an
//! unknown key in particular, names the variable the operator actually wrote.
//! `BFF_TEST_*` belongs to the test harness (database URLs) and is not configuration.

use std::collections::BTreeMap;

use super::problem::{ENV_PREFIX, KeyPath, Problem, Segment};
/// Reserved for the test harness (`BFF_TEST_POSTGRES_URL`, ...), never read as configuration.
const TEST_ENV_PREFIX: &str = "BFF_TEST_";

/// Which variable set which key path.
#[derive(Debug, Default)]
pub(crate) struct EnvOrigins(BTreeMap<KeyPath, String>);

impl EnvOrigins {
    /// Whether a variable set exactly `path` (its value is then a string to be typed by the
    /// schema).
    pub(crate) fn is_set_here(&self, path: &KeyPath) -> bool {
        self.0.contains_key(path)
    }

    /// The variable to name for `path`: the one that set it, else the one that would.
    pub(crate) fn variable_for(&self, path: &KeyPath) -> String {
        self.0.get(path).cloned().unwrap_or_else(|| path.variable())
    }

    /// The variables that set `path` or something inside it, with the paths they set.
    pub(crate) fn at_or_under<'a>(
        &'a self,
        path: &'a KeyPath,
    ) -> impl Iterator<Item = (&'a KeyPath, &'a str)> + 'a {
        self.0
            .iter()
            .filter(move |(set, _)| set.starts_with(path))
            .map(|(set, name)| (set, name.as_str()))
    }
}

/// Writes every `BFF_` variable of `env` into `table`, in name order, and reports variables that
/// cannot be applied.
pub(crate) fn apply(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
) -> EnvOrigins {
    let mut variables: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && !name.starts_with(TEST_ENV_PREFIX))
        .collect();
    variables.sort();
    let mut origins = EnvOrigins::default();
    for (name, value) in variables {
        let keys: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if keys.iter().any(String::is_empty) {
            problems.push(Problem::new(
                &KeyPath::default(),
                name,
                "names an empty key; use __ only between keys, as in BFF_SESSION__IDLE_TIMEOUT_SECS",
            ));
            continue;
        }
        let path = KeyPath::from_segments(keys.iter().cloned().map(Segment::Key).collect());
        match insert(table, &keys, value) {
            Ok(()) => {
                origins.0.insert(path, name);
            }
            Err(blocked_at) => problems.push(Problem::new(
                &path,
                name,
                format!("cannot be set: {blocked_at} is a single value, not a table"),
            )),
        }
    }
    origins
}

/// Sets `keys` to `value` as a string, creating tables on the way; fails with the path of a
/// value that is in the way.
fn insert(table: &mut toml::Table, keys: &[String], value: String) -> Result<(), KeyPath> {
    let Some((last, parents)) = keys.split_last() else {
        return Err(KeyPath::default());
    };
    let mut current = table;
    let mut walked = KeyPath::default();
    for key in parents {
        walked = walked.key(key);
        current = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| walked.clone())?;
    }
    current.insert(last.clone(), toml::Value::String(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_land_as_strings_at_their_path() {
        let mut table: toml::Table = "[session]\nidle_timeout_secs = 5\n".parse().unwrap();
        let mut problems = Vec::new();
        let origins = apply(
            &mut table,
            vars(&[
                ("BFF_PROVIDERS__MAIN__CLIENT_SECRET", "123456"),
                ("BFF_SESSION__IDLE_TIMEOUT_SECS", "90"),
                ("BFF_TEST_POSTGRES_URL", "postgres://test"),
                ("OTHER", "x"),
            ]),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            table["providers"]["main"]["client_secret"],
            toml::Value::String("123456".into())
        );
        assert_eq!(
            table["session"]["idle_timeout_secs"],
            toml::Value::String("90".into())
        );
        assert!(!table.contains_key("test_postgres_url"));
        let secret = KeyPath::top("providers").key("main").key("client_secret");
        assert!(origins.is_set_here(&secret));
        assert_eq!(
            origins.variable_for(&secret),
            "BFF_PROVIDERS__MAIN__CLIENT_SECRET"
        );
    }

    #[test]
    fn variables_that_cannot_apply_are_named() {
        let mut table: toml::Table = "[server]\nlisten = \"127.0.0.1:1\"\n".parse().unwrap();
        let mut problems = Vec::new();
        apply(
            &mut table,
            vars(&[
                ("BFF_SERVER__LISTEN__PORT", "1"),
                ("BFF_A____B", "1"),
                ("BFF_", "1"),
            ]),
            &mut problems,
        );
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with(
            "server.listen.port (BFF_SERVER__LISTEN__PORT): cannot be set: server.listen is a single value"
        )), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("BFF_A____B: names an empty key")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("BFF_: names an empty key")),
            "{lines:?}"
        );
    }
}
