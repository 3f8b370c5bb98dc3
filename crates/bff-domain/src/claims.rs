//! Claims about the user, as validated from the ID token (and userinfo).
//!
//! Claims are not secret: they are what `/bff/user` shows the app. The map is kept as JSON values
//! because providers send arbitrary claims.

use serde_json::{Map, Value};

/// A validated claim set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// Wraps a claim map.
    pub fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// The claim map.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Consumes the claims into their map.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
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
        for (k, v) in &other.0 {
            self.0.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}
