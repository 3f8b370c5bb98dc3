//! Claims about the user, as validated from the ID token (and userinfo).
//!
//! Claims are not secret: they are what `/bff/user` shows the app. The map is kept as JSON values
//! because providers send arbitrary claims.
//!
//! The map is shared, not copied, between clones: a session read from the memory store is a
//! clone of the stored one on every request, and its claims (a dozen strings and values) are
//! only ever read after login. Changing a clone's claims ([`Claims::merge_missing`]) copies the
//! map first, so no other clone sees it.
//!
//! A store that keeps claims as JSON text hands them over as that text ([`Claims::from_json`]),
//! parsed into the map only when something reads it: a proxied request never does (building the
//! map cost each proxied request on Redis about 2,300 instructions; BENCHMARKS.md).

use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A validated claim set.
#[derive(Clone, Default)]
pub struct Claims(Arc<Repr>);

#[derive(Clone, Default)]
struct Repr {
    /// The map, once built: at once from [`Claims::new`], on first read from
    /// [`Claims::from_json`].
    map: OnceLock<Map<String, Value>>,
    /// The JSON object text the claims came as, while the map has not been changed since.
    json: Option<Box<RawValue>>,
}

/// Claims given as JSON that is not an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the claims are JSON but not an object")]
pub struct ClaimsNotAnObject;

impl Claims {
    /// Wraps a claim map.
    pub fn new(map: Map<String, Value>) -> Self {
        Self(Arc::new(Repr {
            map: OnceLock::from(map),
            json: None,
        }))
    }

    /// Claims kept as the JSON object text `json` (already checked to be JSON by its
    /// `RawValue` type), parsed into the map when first read.
    ///
    /// # Errors
    /// [`ClaimsNotAnObject`] when `json` is a JSON array, string, number, boolean or `null`.
    pub fn from_json(json: Box<RawValue>) -> Result<Self, ClaimsNotAnObject> {
        if !json.get().trim_start().starts_with('{') {
            return Err(ClaimsNotAnObject);
        }
        Ok(Self(Arc::new(Repr {
            map: OnceLock::new(),
            json: Some(json),
        })))
    }

    /// The claims as JSON object text, for a store to keep: the text they came as, when they
    /// came as text, else the map written out.
    ///
    /// # Errors
    /// What `serde_json` says when the map cannot be written (a map of JSON values always can).
    pub fn to_json(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match &self.0.json {
            Some(json) => Ok(json.clone()),
            None => serde_json::value::to_raw_value(self.as_map()),
        }
    }

    /// The claim map.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.0.as_map()
    }

    /// Consumes the claims into their map (a copy when another clone still shares it).
    pub fn into_map(self) -> Map<String, Value> {
        match Arc::try_unwrap(self.0) {
            Ok(repr) => {
                repr.as_map();
                repr.map.into_inner().unwrap_or_default()
            }
            Err(shared) => shared.as_map().clone(),
        }
    }

    /// A string claim.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.as_map().get(name).and_then(Value::as_str)
    }

    /// `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.string("sub")
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.string("iss")
    }

    /// `sid`, the provider's session id (OIDC Front/Back-Channel Logout).
    pub fn session_id(&self) -> Option<&str> {
        self.string("sid")
    }

    /// Adds the claims of `other` that this set lacks; existing claims win.
    pub fn merge_missing(&mut self, other: &Claims) {
        let mine = self.as_map();
        if other.as_map().keys().all(|k| mine.contains_key(k)) {
            return;
        }
        let repr = Arc::make_mut(&mut self.0);
        repr.as_map();
        // The text no longer says what the map does.
        repr.json = None;
        let Some(map) = repr.map.get_mut() else {
            return;
        };
        for (k, v) in other.as_map() {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

impl Repr {
    fn as_map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            // `from_json` took valid JSON whose text starts an object, which always parses
            // into a map (the parser's nesting limit was the same when the text was checked).
            self.json
                .as_deref()
                .and_then(|json| serde_json::from_str(json.get()).ok())
                .unwrap_or_default()
        })
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.as_map() == other.as_map()
    }
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Claims").field(self.as_map()).finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Claims {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        Claims::new(map)
    }

    #[test]
    fn clones_share_one_map() {
        let stored = claims(json!({"sub": "alice", "email": "a@example.com"}));
        let read = stored.clone();
        assert!(std::ptr::eq(stored.as_map(), read.as_map()));
    }

    #[test]
    fn merging_into_a_clone_leaves_the_original_as_it_was() {
        let stored = claims(json!({"sub": "alice", "name": "Alice"}));
        let mut read = stored.clone();
        read.merge_missing(&claims(json!({"sub": "mallory", "email": "a@example.com"})));
        // Existing claims win; missing ones are added, to the clone only.
        assert_eq!(
            Value::Object(read.into_map()),
            json!({"sub": "alice", "name": "Alice", "email": "a@example.com"})
        );
        assert_eq!(
            Value::Object(stored.clone().into_map()),
            json!({"sub": "alice", "name": "Alice"})
        );
    }

    fn from_text(text: &str) -> Claims {
        Claims::from_json(RawValue::from_string(text.to_owned()).unwrap()).unwrap()
    }

    #[test]
    fn claims_from_json_text_read_as_the_map_and_write_back_as_the_same_text() {
        let text = r#"{"sub":"alice","amr":["pwd"],"n":1.5,"nested":{"a":null}}"#;
        let claims = from_text(text);
        assert_eq!(claims.to_json().unwrap().get(), text);
        assert_eq!(claims.subject(), Some("alice"));
        assert_eq!(
            claims,
            self::claims(json!({"sub": "alice", "amr": ["pwd"], "n": 1.5, "nested": {"a": null}}))
        );
        assert_eq!(claims.clone().into_map().len(), 4);
        // Map-made claims write their map.
        let made = self::claims(json!({"sub": "bob"}));
        assert_eq!(made.to_json().unwrap().get(), r#"{"sub":"bob"}"#);
    }

    #[test]
    fn json_that_is_not_an_object_is_refused() {
        for text in ["[1,2]", "\"sub\"", "null", "1", " true"] {
            let raw = RawValue::from_string(text.to_owned()).unwrap();
            assert_eq!(
                Claims::from_json(raw).unwrap_err(),
                ClaimsNotAnObject,
                "{text}"
            );
        }
        assert!(Claims::from_json(RawValue::from_string(" {}".to_owned()).unwrap()).is_ok());
    }

    #[test]
    fn merging_into_claims_from_text_writes_the_merged_map() {
        let stored = from_text(r#"{"sub":"alice"}"#);
        let mut read = stored.clone();
        read.merge_missing(&claims(json!({"email": "a@example.com"})));
        let written: Value = serde_json::from_str(read.to_json().unwrap().get()).unwrap();
        assert_eq!(written, json!({"sub": "alice", "email": "a@example.com"}));
        assert_eq!(stored.to_json().unwrap().get(), r#"{"sub":"alice"}"#);
    }

    #[test]
    fn merging_nothing_new_keeps_sharing() {
        let stored = claims(json!({"sub": "alice", "name": "Alice"}));
        let mut read = stored.clone();
        read.merge_missing(&claims(json!({"sub": "bob"})));
        assert!(std::ptr::eq(stored.as_map(), read.as_map()));
        assert_eq!(read.subject(), Some("alice"));
    }
}
