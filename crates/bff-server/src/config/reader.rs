//! Reads parts of the merged configuration tree into their types and collects every problem.
//!
//! Serde stops at the first error, and its errors do not say where they happened. So the tree
//! is read through [`Node`], a deserializer that knows its key path: an error leaves it carrying
//! the path of the value that caused it. [`Reader::read`] then takes that value out of the tree
//! and reads again, until the part reads cleanly: one problem per wrong key, not one per run.
//!
//! [`Node`] also types environment values by the schema: a string set by a `BFF_` variable
//! stays a string where the schema wants one, and is read as a TOML value where it wants a
//! number, a boolean, a list or a table.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use super::env::EnvOrigins;
use super::problem::{KeyPath, Problem, Segment};

/// Collects problems while the configuration is read.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    env: &'a EnvOrigins,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    /// A reader that names variables from `env`, starting with `problems`.
    pub(crate) fn new(env: &'a EnvOrigins, problems: Vec<Problem>) -> Self {
        Self { env, problems }
    }

    /// Every problem found.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Records a problem with the value at `path`.
    pub(crate) fn problem(&mut self, path: &KeyPath, message: impl Into<String>) {
        let variable = self.env.variable_for(path);
        self.problems.push(Problem::new(path, variable, message));
    }

    /// Records that `path` is not a key; `expected` are the keys allowed there. When variables
    /// put it there, each of them is named.
    pub(crate) fn unknown_key(&mut self, path: &KeyPath, expected: &[&str]) {
        let expected = if expected.is_empty() {
            String::new()
        } else {
            format!(" (expected one of: {})", expected.join(", "))
        };
        let from_env: Vec<(KeyPath, String)> = self
            .env
            .at_or_under(path)
            .map(|(set, name)| (set.clone(), name.to_owned()))
            .collect();
        if from_env.is_empty() {
            self.problem(path, format!("unknown key{expected}"));
        }
        for (set, name) in from_env {
            self.problems.push(Problem::new(
                &set,
                name,
                format!("unknown variable: there is no key {path}{expected}"),
            ));
        }
    }

    /// Reads `value`, found at `path`, as a `T`. Returns `None` when anything in it is wrong,
    /// after recording every problem: each wrong value is reported, then taken out of the tree
    /// so that reading again finds the next one.
    pub(crate) fn read<T: DeserializeOwned>(
        &mut self,
        path: &KeyPath,
        mut value: toml::Value,
    ) -> Option<T> {
        let mut taken_out: Vec<Vec<Segment>> = Vec::new();
        let mut clean = true;
        loop {
            let node = Node {
                value: value.clone(),
                path: path.clone(),
                env: self.env,
            };
            let error = match T::deserialize(node) {
                Ok(read) => return clean.then_some(read),
                Err(error) => error,
            };
            // A required key we took out ourselves is missing now: already reported.
            if !taken_out.contains(&error.path) {
                clean = false;
                self.report(path, &error);
            }
            // Take out the wrong value (a whole list for one bad item, so that the items after
            // it keep their positions), or, if it is missing, the table that needs it.
            let mut target: Vec<Segment> = error
                .path
                .iter()
                .take_while(|s| matches!(s, Segment::Key(_)))
                .cloned()
                .collect();
            loop {
                if target.is_empty() {
                    return None;
                }
                if take_out(&mut value, &target) {
                    taken_out.push(target);
                    break;
                }
                target.pop();
            }
        }
    }

    fn report(&mut self, base: &KeyPath, error: &FieldError) {
        let path = base.join(&error.path);
        match &error.kind {
            ErrorKind::Missing => self.problem(&path, "is required"),
            ErrorKind::Unknown(expected) => self.unknown_key(&path, expected),
            ErrorKind::Invalid(message) => self.problem(&path, message.clone()),
        }
    }
}

/// Removes the value at `path` (table keys only); false when there is none.
fn take_out(value: &mut toml::Value, path: &[Segment]) -> bool {
    let Some((Segment::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        let next = match (segment, current) {
            (Segment::Key(key), toml::Value::Table(table)) => table.get_mut(key),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    match current {
        toml::Value::Table(table) => table.remove(last).is_some(),
        _ => false,
    }
}

/// For `deserialize_with`: a number that must not be zero.
pub(crate) fn greater_than_zero<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default + PartialEq,
{
    let value = T::deserialize(deserializer)?;
    if value == T::default() {
        return Err(de::Error::custom("must be greater than zero"));
    }
    Ok(value)
}

/// What went wrong, and where, relative to the value being read.
#[derive(Debug)]
pub(crate) struct FieldError {
    path: Vec<Segment>,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Missing,
    Unknown(&'static [&'static str]),
    Invalid(String),
}

impl FieldError {
    /// The same error, seen from the table or list that holds the value.
    fn inside(mut self, segment: Segment) -> Self {
        self.path.insert(0, segment);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = KeyPath::from_segments(self.path.clone());
        match &self.kind {
            ErrorKind::Missing => write!(f, "{path}: is required"),
            ErrorKind::Unknown(_) => write!(f, "{path}: unknown key"),
            ErrorKind::Invalid(message) => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            path: Vec::new(),
            kind: ErrorKind::Invalid(message.to_string()),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            path: vec![Segment::Key(field.to_owned())],
            kind: ErrorKind::Missing,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self {
            path: vec![Segment::Key(field.to_owned())],
            kind: ErrorKind::Unknown(expected),
        }
    }
}

/// A value of the tree with its key path.
struct Node<'a> {
    value: toml::Value,
    path: KeyPath,
    env: &'a EnvOrigins,
}

impl Node<'_> {
    /// Where the schema wants something other than a string: a string a variable set here is
    /// read as the TOML value it spells (`90`, `true`, `["a", "b"]`, `{ id = "k" }`).
    fn typed_by_schema(self) -> Self {
        match &self.value {
            toml::Value::String(text) if self.env.is_set_here(&self.path) => {
                match toml_value(text) {
                    Some(value) => Self { value, ..self },
                    None => self,
                }
            }
            _ => self,
        }
    }
}

/// `text` as a TOML value, when it is one.
fn toml_value(text: &str) -> Option<toml::Value> {
    let mut table: toml::Table = format!("value = {text}").parse().ok()?;
    table.remove("value")
}

macro_rules! typed_by_schema {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
                self.typed_by_schema().deserialize_any(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Node<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let Node { value, path, env } = self;
        match value {
            toml::Value::String(s) => visitor.visit_string(s),
            toml::Value::Integer(i) => visitor.visit_i64(i),
            toml::Value::Float(f) => visitor.visit_f64(f),
            toml::Value::Boolean(b) => visitor.visit_bool(b),
            toml::Value::Datetime(d) => visitor.visit_string(d.to_string()),
            toml::Value::Array(items) => {
                let nodes: Vec<Node<'_>> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, value)| Node {
                        value,
                        path: path.with(Segment::Index(i)),
                        env,
                    })
                    .collect();
                visitor.visit_seq(Items(nodes.into_iter().enumerate()))
            }
            toml::Value::Table(table) => {
                let nodes: Vec<(String, Node<'_>)> = table
                    .into_iter()
                    .map(|(key, value)| {
                        let node = Node {
                            value,
                            path: path.key(&key),
                            env,
                        };
                        (key, node)
                    })
                    .collect();
                visitor.visit_map(Entries {
                    entries: nodes.into_iter(),
                    pending: None,
                })
            }
        }
    }

    typed_by_schema! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_seq deserialize_map
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.typed_by_schema().deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.typed_by_schema().deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.typed_by_schema().deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        // TOML has no null: a value that is there is `Some`.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self.value {
            toml::Value::String(name) => visitor.visit_enum(name.into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct identifier ignored_any
    }
}

/// The items of a list, each with its path.
struct Items<'a>(std::iter::Enumerate<std::vec::IntoIter<Node<'a>>>);

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = FieldError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FieldError> {
        match self.0.next() {
            Some((i, node)) => seed
                .deserialize(node)
                .map(Some)
                .map_err(|e| e.inside(Segment::Index(i))),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a table, each value with its path.
struct Entries<'a> {
    entries: std::vec::IntoIter<(String, Node<'a>)>,
    pending: Option<(String, Node<'a>)>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, node));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let (key, node) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(node)
            .map_err(|e| e.inside(Segment::Key(key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
        #[serde(default, deserialize_with = "greater_than_zero")]
        size: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        label: String,
        #[serde(default)]
        count: u64,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        names: Vec<String>,
        inner: Option<Inner>,
    }

    fn read(text: &str, env: &[(&str, &str)]) -> (Option<Outer>, Vec<String>) {
        let mut table: toml::Table = text.parse().unwrap();
        let mut problems = Vec::new();
        let origins = super::super::env::apply(
            &mut table,
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            &mut problems,
        );
        let mut reader = Reader::new(&origins, problems);
        let outer = table
            .remove("outer")
            .unwrap_or(toml::Value::Table(toml::Table::new()));
        let read = reader.read(&KeyPath::top("outer"), outer);
        let lines = reader
            .into_problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        (read, lines)
    }

    #[test]
    fn every_wrong_key_is_reported_with_its_path() {
        let (read, problems) = read(
            "[outer]\nlabel = 1\ncount = \"x\"\nnames = [\"a\", 2]\ntypo = 1\n[outer.inner]\nsize = 0\n",
            &[],
        );
        assert!(read.is_none());
        let expected = [
            "outer.count (BFF_OUTER__COUNT): invalid type: string \"x\", expected u64",
            "outer.inner.size (BFF_OUTER__INNER__SIZE): must be greater than zero",
            "outer.inner.name (BFF_OUTER__INNER__NAME): is required",
            "outer.label (BFF_OUTER__LABEL): invalid type: integer `1`, expected a string",
            "outer.names[1] (BFF_OUTER__NAMES): invalid type: integer `2`, expected a string",
            "outer.typo (BFF_OUTER__TYPO): unknown key (expected one of: label, count, on, names, inner)",
        ];
        for line in expected {
            assert!(problems.contains(&line.to_owned()), "{line}\n{problems:#?}");
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn a_missing_required_key_is_reported_once() {
        let (read, problems) = read("[outer]\ncount = 1\n", &[]);
        assert!(read.is_none());
        assert_eq!(problems, ["outer.label (BFF_OUTER__LABEL): is required"]);
    }

    #[test]
    fn environment_strings_are_typed_by_the_schema() {
        let (read, problems) = read(
            "[outer]\nlabel = \"file\"\n",
            &[
                ("BFF_OUTER__LABEL", "123456"),
                ("BFF_OUTER__COUNT", "90"),
                ("BFF_OUTER__ON", "true"),
                ("BFF_OUTER__NAMES", "[\"a\", \"b\"]"),
                ("BFF_OUTER__INNER", "{ name = \"n\", size = 3 }"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let read = read.unwrap();
        assert_eq!(read.label, "123456");
        assert_eq!(read.count, 90);
        assert!(read.on);
        assert_eq!(read.names, ["a", "b"]);
        let inner = read.inner.unwrap();
        assert_eq!((inner.name.as_str(), inner.size), ("n", 3));
    }

    #[test]
    fn file_strings_are_not_retyped_and_bad_env_values_name_their_variable() {
        let (_, problems) = read("[outer]\nlabel = \"l\"\ncount = \"90\"\n", &[]);
        assert_eq!(
            problems,
            ["outer.count (BFF_OUTER__COUNT): invalid type: string \"90\", expected u64"]
        );
        let (_, problems) = read(
            "[outer]\nlabel = \"l\"\n",
            &[("BFF_OUTER__ON", "yes"), ("bff_outer__count", "1")],
        );
        assert_eq!(
            problems,
            ["outer.on (BFF_OUTER__ON): invalid type: string \"yes\", expected a boolean"]
        );
    }

    #[test]
    fn unknown_keys_from_variables_name_each_variable() {
        let (_, problems) = read(
            "[outer]\nlabel = \"l\"\n",
            &[("BFF_OUTER__TYPO__A", "1"), ("BFF_OUTER__TYPO__B", "2")],
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].starts_with(
                "outer.typo.a (BFF_OUTER__TYPO__A): unknown variable: there is no key outer.typo"
            ),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with("outer.typo.b (BFF_OUTER__TYPO__B): unknown variable"),
            "{problems:#?}"
        );
    }
}
