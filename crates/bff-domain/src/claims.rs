//! Claims about the user, as validated from the ID token (and userinfo).
//!
//! Claims are not secret: they are what `/bff/user` shows the app. The map is kept as JSON values
//! because providers send arbitrary claims.
//!
//! The map is shared, not copied, between clones: a session read from the memory store is a
//! clone of the stored one on every request, and its claims (a dozen strings and values) are
//! only ever read after login. Changing a clone's claims ([`Claims::merge_missing`]) copies the
//! map first, so no other clone sees it.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A validated claim set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims(Arc<Map<String, Value>>);

impl Claims {
    /// Wraps a claim map.
    pub fn new(map: Map<String, Value>) -> Self {
        Self(Arc::new(map))
    }

    /// The claim map.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Consumes the claims into their map (a copy when another clone still shares it).
    pub fn into_map(self) -> Map<String, Value> {
        Arc::unwrap_or_clone(self.0)
    }

    /// A string claim.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
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
        if other.0.keys().all(|k| self.0.contains_key(k)) {
            return;
        }
        let map = Arc::make_mut(&mut self.0);
        for (k, v) in other.0.iter() {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
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

    #[test]
    fn merging_nothing_new_keeps_sharing() {
        let stored = claims(json!({"sub": "alice", "name": "Alice"}));
        let mut read = stored.clone();
        read.merge_missing(&claims(json!({"sub": "bob"})));
        assert!(std::ptr::eq(stored.as_map(), read.as_map()));
        assert_eq!(read.subject(), Some("alice"));
    }
}
