//! The server-side session: who the user is, how long the session lives, and its sealed tokens:
//! the primary login's, and those of every provider connected to it later (`connect`), each
//! sealed on its own.

use crate::claims::Claims;
use crate::client::ClientBinding;
use crate::ids::{ProviderId, RenewalNonce, SessionKey};
use crate::ports::LoginRef;
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
    /// When the current session id was issued: at login, then at each renewal
    /// ([`crate::SessionRenewal`]). `created_at` stays the login's.
    pub id_issued_at: Timestamp,
    /// The client binding taken at login, when binding was on ([`crate::ClientBindingPolicy`]).
    pub client_binding: Option<ClientBinding>,
    /// A short summary of the login's `User-Agent` for operators (`"Firefox 133 on Linux"`),
    /// never the header itself.
    pub user_agent: Option<String>,
    /// The session ends at this time unless used again (sliding).
    pub idle_expires_at: Timestamp,
    /// The session ends at this time whatever happens.
    pub absolute_expires_at: Timestamp,
    /// When the access token expires (copied out of the sealed tokens so deciding to refresh
    /// needs no decryption).
    pub access_token_expires_at: Option<Timestamp>,
    /// Optimistic concurrency version; stores bump it on every update.
    pub version: u64,
    /// The sealed [`crate::TokenSet`] of the primary login (`provider`).
    pub tokens: Sealed,
    /// Providers connected to this session after the primary login, at most one per provider
    /// and never the primary one. They add tokens, never identity: `issuer`, `subject` and
    /// `claims` stay the primary login's.
    pub connections: Vec<Connection>,
}

/// Another provider's tokens joined to a session (`GET /bff/login?provider=b&connect=true`).
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// The connected provider.
    pub provider: ProviderId,
    /// The validated ID token claims of the connecting login, kept so a refreshed ID token from
    /// this provider can be checked against them (OIDC Core 12.2). Not the session's identity.
    pub claims: Claims,
    /// When this provider's access token expires (copied out of the sealed tokens, like
    /// [`Session::access_token_expires_at`]).
    pub access_token_expires_at: Option<Timestamp>,
    /// This provider's sealed [`crate::TokenSet`], bound to the session key and the provider.
    pub tokens: Sealed,
}

impl Connection {
    /// The logins this connection is found by ([`SessionStore::find_by_connection`]): its ID
    /// token's `iss` with its `sid`, and with its `sub`, where the claims have them. Stores
    /// index a session under each of its connections' logins.
    ///
    /// [`SessionStore::find_by_connection`]: crate::ports::SessionStore::find_by_connection
    pub fn logins(&self) -> impl Iterator<Item = (&str, LoginRef<'_>)> {
        let sid = self.claims.session_id().map(LoginRef::Session);
        let subject = self.claims.subject().map(LoginRef::Subject);
        self.claims
            .issuer()
            .into_iter()
            .flat_map(move |issuer| sid.into_iter().chain(subject).map(move |l| (issuer, l)))
    }

    /// Whether this connection's login was `login` at `issuer` (one of [`Self::logins`]).
    pub fn is_login(&self, issuer: &str, login: LoginRef<'_>) -> bool {
        self.logins().any(|found| found == (issuer, login))
    }
}

/// What is left of a session id after its renewal, stored under the old key for the grace
/// period: where the session went, and the nonce that turns the old id into the new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalAlias {
    /// The session's key now.
    pub new_key: SessionKey,
    /// With the old id, gives the new id ([`crate::SessionId::renewed`]).
    pub nonce: RenewalNonce,
    /// The end of the grace period: the old id is worth nothing after it.
    pub expires_at: Timestamp,
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

    /// The connection of `provider`, if the session has one (never the primary login).
    pub fn connection(&self, provider: &ProviderId) -> Option<&Connection> {
        self.connections.iter().find(|c| &c.provider == provider)
    }
}
