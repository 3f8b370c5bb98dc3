//! The server-side session: who the user is, how long the session lives, and its sealed tokens.

use crate::claims::Claims;
use crate::ids::{ProviderId, SessionKey};
use crate::time::Timestamp;
use crate::vault::Sealed;

/// A logged-in session as stores keep it.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Hash of the session id (the cookie value); the id itself is never stored.
    pub key: SessionKey,
    /// The provider that authenticated the user.
    pub provider: ProviderId,
    /// `iss` of the ID token.
    pub issuer: String,
    /// `sub` of the ID token.
    pub subject: String,
    /// `sid` of the ID token, for back-channel and front-channel logout.
    pub provider_session_id: Option<String>,
    /// Validated ID token claims, shown by `/bff/user`.
    pub claims: Claims,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When the session was last used.
    pub last_seen_at: Timestamp,
    /// The session ends at this time unless used again (sliding).
    pub idle_expires_at: Timestamp,
    /// The session ends at this time whatever happens.
    pub absolute_expires_at: Timestamp,
    /// When the access token expires (copied out of the sealed tokens so deciding to refresh
    /// needs no decryption).
    pub access_token_expires_at: Option<Timestamp>,
    /// Optimistic concurrency version; stores bump it on every update.
    pub version: u64,
    /// The sealed [`crate::TokenSet`].
    pub tokens: Sealed,
}

impl Session {
    /// When the session ends if not used again: the earlier of the idle and absolute expiry.
    pub fn expires_at(&self) -> Timestamp {
        self.idle_expires_at.min(self.absolute_expires_at)
    }

    /// Whether the session has ended at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at()
    }
}
