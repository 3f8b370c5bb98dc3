//! Where a configuration value lives, and a problem with it as the one line an operator reads.
//!
//! Every problem names the key path and the environment variable that sets it:
//! `providers.main.client_auth (BFF_PROVIDERS__MAIN__CLIENT_AUTH): must be …`.

use std::fmt;

/// Prefix of every configuration variable: a key path's variable is this, then its keys in
/// upper case joined by `__`.
pub(crate) const ENV_PREFIX: &str = "BFF_";

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Segment {
    /// A table key.
    Key(String),
    /// A position in a list.
    Index(usize),
}

/// A key path in the configuration tree, such as `vault_keys[0].key`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The path of a top-level key.
    pub(crate) fn top(key: &str) -> Self {
        Self(vec![Segment::Key(key.to_owned())])
    }

    /// The path of a dotted key of tables, such as `http.session_cookie`.
    pub(crate) fn dotted(keys: &str) -> Self {
        Self(
            keys.split('.')
                .map(|k| Segment::Key(k.to_owned()))
                .collect(),
        )
    }

    /// A path from its segments.
    pub(crate) fn from_segments(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    /// This path plus `key`.
    pub(crate) fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_owned()))
    }

    /// This path plus `segment`.
    pub(crate) fn with(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }

    /// This path followed by `relative`.
    pub(crate) fn join(&self, relative: &[Segment]) -> Self {
        let mut segments = self.0.clone();
        segments.extend_from_slice(relative);
        Self(segments)
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub(crate) fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The variable that sets this path: `BFF_` and the keys in upper case joined by `__`.
    /// Inside a list that is the variable of the whole list (`vault_keys[0].key` is set by
    /// `BFF_VAULT_KEYS`).
    pub(crate) fn variable(&self) -> String {
        let keys: Vec<String> = self
            .0
            .iter()
            .map_while(|s| match s {
                Segment::Key(k) => Some(k.to_ascii_uppercase()),
                Segment::Index(_) => None,
            })
            .collect();
        format!("{ENV_PREFIX}{}", keys.join("__"))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One configuration problem: `{path} ({variable}): {message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    path: String,
    variable: String,
    message: String,
}

impl Problem {
    /// A problem with the value at `path`, which `variable` sets.
    pub(crate) fn new(path: &KeyPath, variable: String, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            variable,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.variable, self.message)
        } else {
            write!(f, "{} ({}): {}", self.path, self.variable, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_written_and_name_their_variable() {
        let path = KeyPath::top("providers").key("main").key("client_auth");
        assert_eq!(path.to_string(), "providers.main.client_auth");
        assert_eq!(path.variable(), "BFF_PROVIDERS__MAIN__CLIENT_AUTH");
        let in_list = KeyPath::top("vault_keys")
            .with(Segment::Index(1))
            .key("key");
        assert_eq!(in_list.to_string(), "vault_keys[1].key");
        assert_eq!(in_list.variable(), "BFF_VAULT_KEYS");
        assert!(in_list.starts_with(&KeyPath::top("vault_keys")));
        assert!(!KeyPath::top("vault_keys").starts_with(&in_list));
        let problem = Problem::new(&path, path.variable(), "must be x");
        assert_eq!(
            problem.to_string(),
            "providers.main.client_auth (BFF_PROVIDERS__MAIN__CLIENT_AUTH): must be x"
        );
    }
}
