//! The tokens a session holds. They live only sealed in stores and in memory while a use case runs.

use crate::secret::Secret;
use crate::time::Timestamp;

/// Tokens from the provider's token endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    /// The access token for resource servers.
    pub access_token: Secret,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<Secret>,
    /// The raw ID token, kept for `id_token_hint` at logout.
    pub id_token: Option<Secret>,
    /// When the access token expires, from `expires_in`.
    pub access_token_expires_at: Option<Timestamp>,
    /// When the refresh token expires, when the provider said (`refresh_expires_in`, sent by
    /// Keycloak among others). Not sealed with the tokens: the session's absolute expiry, which
    /// it caps, already carries it.
    pub refresh_token_expires_at: Option<Timestamp>,
    /// Granted scopes, space separated, when the provider said.
    pub scope: Option<String>,
}

impl TokenSet {
    /// Applies a refresh response: new values replace old ones, and what the provider did not
    /// send again (a refresh token, an ID token) is kept, as RFC 6749 section 6 allows.
    pub fn refreshed_with(&self, fresh: TokenSet) -> TokenSet {
        TokenSet {
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token.or_else(|| self.refresh_token.clone()),
            id_token: fresh.id_token.or_else(|| self.id_token.clone()),
            access_token_expires_at: fresh.access_token_expires_at,
            refresh_token_expires_at: fresh
                .refresh_token_expires_at
                .or(self.refresh_token_expires_at),
            scope: fresh.scope.or_else(|| self.scope.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(access: &str, refresh: Option<&str>, id: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            id_token: id.map(Secret::new),
            access_token_expires_at: Some(Timestamp::from_unix_seconds(10)),
            refresh_token_expires_at: None,
            scope: Some("openid".into()),
        }
    }

    #[test]
    fn refresh_keeps_what_the_provider_did_not_resend() {
        let old = set("a1", Some("r1"), Some("i1"));
        let new = old.refreshed_with(set("a2", None, None));
        assert_eq!(new.access_token.expose(), "a2");
        assert_eq!(new.refresh_token.unwrap().expose(), "r1");
        assert_eq!(new.id_token.unwrap().expose(), "i1");
    }

    #[test]
    fn refresh_takes_a_rotated_refresh_token() {
        let old = set("a1", Some("r1"), Some("i1"));
        let new = old.refreshed_with(set("a2", Some("r2"), Some("i2")));
        assert_eq!(new.refresh_token.unwrap().expose(), "r2");
        assert_eq!(new.id_token.unwrap().expose(), "i2");
    }
}
