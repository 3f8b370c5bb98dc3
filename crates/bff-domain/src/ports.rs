//! The ports: what the domain needs from the outside world, written as contracts.
//!
//! Adapters implement these traits in their own crates (`bff-store-*`, `bff-oidc`,
//! `bff-crypto`). `Clock`, `Random`, `Cipher` and `Events` are defined beside the model they serve
//! (`clock`, `random`, `vault`, `events`) and re-exported here. They are object safe (`#[async_trait]`) so the server picks adapters at run
//! time as `Arc<dyn ...>`. Every store adapter passes the same contract suite
//! (`testkit::store_contract`, behind the `testkit` feature).

use std::error::Error as StdError;
use std::time::Duration;

use async_trait::async_trait;

use crate::claims::Claims;
use crate::ids::{Prompt, ProviderId, SessionKey};
use crate::pending::PendingLogin;
use crate::secret::Secret;
use crate::session::{RenewalAlias, Session};
use crate::time::Timestamp;
use crate::tokens::TokenSet;

// The ports that carry no model live beside what they serve; they are listed here too, so an
// adapter finds every port in one place.
pub use crate::clock::Clock;
pub use crate::events::{Event, Events, NoEvents, RefreshResult, SessionEndReason};
pub use crate::random::Random;
pub use crate::vault::{Cipher, CipherError};

/// A boxed error source, for causes the domain only logs.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a store can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (or has expired).
    #[error("not found")]
    NotFound,
    /// The record changed since it was read (optimistic version mismatch), or already exists.
    #[error("conflict")]
    Conflict,
    /// The store could not be reached or failed; the request must fail with 503, never be
    /// treated as "no session".
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
}

impl StoreError {
    /// Wraps a driver error as [`StoreError::Unavailable`].
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Which login at a provider a logout names: its provider session (`sid`), or, for a logout
/// without one, its user (`sub`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRef<'a> {
    /// The provider session id (`sid`).
    Session(&'a str),
    /// The subject (`sub`).
    Subject(&'a str),
}

/// Server-side sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    ///
    /// # Errors
    /// `Conflict` when a session with this key exists; `Unavailable` on store failure.
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this key, or `None` when there is none or it has expired at `now`
    /// (idle or absolute).
    ///
    /// # Errors
    /// `Unavailable` on store failure (never `Ok(None)` for an unreachable store).
    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError>;

    /// Replaces the session if its stored version equals `session.version`; the stored version
    /// becomes `session.version + 1`, which is returned.
    ///
    /// # Errors
    /// `NotFound` when absent or expired at `now`; `Conflict` on a version mismatch;
    /// `Unavailable` on store failure.
    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError>;

    /// Records use of the session: sets `last_seen_at` and moves `idle_expires_at` forward (never
    /// backward, never past the absolute expiry). Does not change the version or the tokens, so
    /// concurrent touches never lose a token update.
    ///
    /// # Errors
    /// `NotFound` when absent or expired at `now`; `Unavailable` on store failure.
    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes the session; `true` when it existed.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError>;

    /// Deletes the sessions `keys` name, each as [`delete`](Self::delete) does; returns how
    /// many existed. For a provider's logout of a user with many sessions: a store that can
    /// deletes them in a few round trips instead of one per session. The default deletes one
    /// by one. On an error, the sessions deleted before it stay deleted.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for key in keys {
            if self.delete(key).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Live sessions of the provider session `sid` at `issuer`.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;

    /// Live sessions of the user `subject` at `issuer`.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;

    /// Live sessions holding a connection (`Session::connections`) whose login was `login` at
    /// `issuer` (the connection's ID token claims `iss`, and `sid` or `sub`). A session may be
    /// returned whose connection has since changed: callers check the connection they act on.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;

    /// Deletes every session of the provider session `sid` at `issuer`; returns how many.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError>;

    /// Deletes every session of `subject` at `issuer`; returns how many.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError>;

    /// Records that the session under `old` was renewed to `alias.new_key`, until
    /// `alias.expires_at`, unless a live alias for `old` exists already: `true` when this one
    /// was recorded, `false` when another renewal got there first (its alias stands). Atomic
    /// across concurrent callers; an alias expired at `now` counts as absent.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The alias recorded for `old`, or `None` when there is none or it expired at `now`.
    ///
    /// # Errors
    /// `Unavailable` on store failure (never `Ok(None)` for an unreachable store).
    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError>;

    /// Removes at most `batch` sessions expired at `now` (and renewal aliases expired then);
    /// returns how many sessions. Callers loop while the answer equals `batch`.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError>;

    /// Whether the store answers, for `/readyz`.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn check(&self) -> Result<(), StoreError>;
}

/// Authorization requests in flight.
#[async_trait]
pub trait PendingLoginStore: Send + Sync {
    /// Stores a pending login under its `state` until its `expires_at`.
    ///
    /// # Errors
    /// `Conflict` when that state is already pending; `Unavailable` on store failure.
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError>;

    /// Removes and returns the pending login for `state`, atomically: of concurrent callers
    /// with the same state, at most one gets `Some`. `None` when absent or expired at `now`.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError>;
}

/// One-time values (logout token `jti`, ...).
#[async_trait]
pub trait ReplayCache: Send + Sync {
    /// Records `value` until `expires_at`; `true` if it was new, `false` if already recorded and
    /// not expired at `now` (a replay). Atomic across concurrent callers.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Takes back `value`, so that it is new again: for a use case that recorded a value and
    /// then could not finish its work (a back-channel logout whose session store failed), so
    /// that the sender's retry is not refused as a replay. Forgetting an absent value is not an
    /// error.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn forget(&self, value: &str) -> Result<(), StoreError>;
}

/// Short leases for single-flight work across processes (token refresh).
#[async_trait]
pub trait Lock: Send + Sync {
    /// Takes the lease `name` for `owner` for `ttl`; `false` when someone else holds it.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration)
    -> Result<bool, StoreError>;

    /// Releases the lease if `owner` still holds it; `true` when it did.
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError>;

    /// Whether someone holds the lease `name` now (taken and neither released nor expired).
    ///
    /// # Errors
    /// `Unavailable` on store failure.
    async fn is_held(&self, name: &str) -> Result<bool, StoreError>;
}

/// An authorization request ready to send the browser to.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The `state` parameter in it.
    pub state: String,
    /// The `nonce` parameter in it.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge is in it.
    pub pkce_verifier: Secret,
}

/// The result of a successful code exchange.
#[derive(Debug, Clone)]
pub struct ProviderLogin {
    /// The tokens.
    pub tokens: TokenSet,
    /// The validated ID token claims (`iss`, `sub`, `aud`, `nonce` checked).
    pub claims: Claims,
}

/// An access token the BFF got for itself with the client-credentials grant (RFC 6749
/// section 4.4): no user, no refresh token. `Debug` shows the token as `[redacted]`.
#[derive(Debug, Clone)]
pub struct ClientToken {
    /// The access token.
    pub access_token: Secret,
    /// When it expires, from the response's `expires_in`; `None` when the provider did not say
    /// (the domain then keeps it only briefly).
    pub expires_at: Option<Timestamp>,
    /// The granted scope as the response states it; `None` when the response has no `scope`,
    /// which RFC 6749 section 5.1 reads as "the scope requested".
    pub scope: Option<String>,
}

/// The claims of a back-channel logout token that passed every check of OpenID Connect
/// Back-Channel Logout 1.0 section 2.6 except the replay check, which is the domain's (it owns
/// the shared [`ReplayCache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// `iss`: the provider's issuer.
    pub issuer: String,
    /// `sub`, when the token names the user.
    pub subject: Option<String>,
    /// `sid`, when the token names the provider session.
    pub provider_session_id: Option<String>,
    /// `jti`: the token's unique id.
    pub token_id: String,
    /// `iat`.
    pub issued_at: Timestamp,
    /// `exp`, when the token has one.
    pub expires_at: Option<Timestamp>,
}

/// What can go wrong talking to an identity provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused (an OAuth error code such as `invalid_grant`).
    #[error("provider refused: {0}")]
    Rejected(String),
    /// The ID token failed validation; the reason names the check, never the token.
    #[error("ID token invalid: {0}")]
    IdTokenInvalid(String),
    /// A back-channel logout token failed validation; the reason names the check (`malformed`,
    /// `typ`, `alg`, `kid`, `signature`, `iss`, `aud`, `azp`, `iat`, `exp`, `jti`, `events`,
    /// `sub_or_sid`, `nonce`), never the token.
    #[error("logout token invalid: {0}")]
    LogoutTokenInvalid(String),
    /// A response broke the protocol (userinfo `sub` mismatch, malformed JSON, ...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The provider could not be reached.
    #[error("provider unavailable")]
    Unavailable(#[source] BoxError),
}

/// The OAuth error code that says the grant itself is dead (RFC 6749 section 5.2): the one
/// refusal that ends a session or rejects a code ([`ProviderError::is_dead_grant`]).
pub(crate) const INVALID_GRANT: &str = "invalid_grant";

impl ProviderError {
    /// Whether the provider said the grant itself is dead: `invalid_grant` (RFC 6749 section
    /// 5.2: the code or refresh token is invalid, expired, revoked or was issued to another
    /// client). Any other refusal (`invalid_client`, `unauthorized_client`, `invalid_scope`,
    /// ...) is about how this server asked, a configuration to fix, and says nothing about
    /// the user's grant: a session outlives it.
    pub fn is_dead_grant(&self) -> bool {
        matches!(self, Self::Rejected(code) if code == INVALID_GRANT)
    }
}

/// One configured OpenID Provider, as the domain uses it.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The configured name.
    fn id(&self) -> &ProviderId;

    /// The issuer identifier (from discovery, equal to the configured one).
    fn issuer(&self) -> &str;

    /// Whether every authorization response must carry `iss` (RFC 9207 section 2.4: the
    /// provider's metadata says `authorization_response_iss_parameter_supported: true`). When
    /// `true`, a response without `iss` is refused before the code is sent anywhere.
    fn requires_issuer_in_authorization_response(&self) -> bool;

    /// A fresh authorization request (state, nonce, PKCE S256) for `redirect_uri`.
    ///
    /// # Errors
    /// `Protocol` when the request cannot be built (bad redirect URI).
    fn authorization_request(
        &self,
        redirect_uri: &str,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, ProviderError>;

    /// `request` as the browser is sent it. Unchanged by default; a provider that takes
    /// pushed authorization requests (RFC 9126) sends the request's parameters to the provider
    /// first and answers a URL that carries only the reference it got back, so no login
    /// parameter passes through the browser. A wrapper of another provider must pass this on.
    ///
    /// # Errors
    /// `Unavailable` when the provider cannot be reached; `Protocol` when it refuses the
    /// request or answers something else than a reference.
    async fn push_authorization_request(
        &self,
        request: AuthorizationRequest,
    ) -> Result<AuthorizationRequest, ProviderError> {
        Ok(request)
    }

    /// Exchanges `code` and validates the ID token against `nonce` at `now`.
    ///
    /// # Errors
    /// `Rejected` when the token endpoint refuses; `IdTokenInvalid` when validation fails;
    /// `Unavailable` when the provider cannot be reached.
    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError>;

    /// Uses a refresh token. A new ID token in the answer is validated at `now` against the
    /// session's `original` ID token claims (OIDC Core 12.2: same `iss` and `sub`, the same
    /// `nonce` when it carries one, an unchanged `auth_time`).
    ///
    /// # Errors
    /// `Rejected` (e.g. `invalid_grant`) when the provider refuses; `IdTokenInvalid` when the new
    /// ID token fails those checks; `Unavailable` otherwise.
    async fn refresh(
        &self,
        refresh_token: &Secret,
        original: &Claims,
        now: Timestamp,
    ) -> Result<TokenSet, ProviderError>;

    /// Revokes a refresh token (RFC 7009). `Ok` when the provider has no revocation endpoint.
    ///
    /// # Errors
    /// `Rejected` or `Unavailable`.
    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError>;

    /// Claims from the userinfo endpoint; `sub` must equal `expected_subject`. `Ok(None)` when
    /// the provider has no userinfo endpoint.
    ///
    /// # Errors
    /// `Protocol` on a `sub` mismatch; `Rejected` or `Unavailable` otherwise.
    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError>;

    /// An access token for the BFF itself (client-credentials grant, RFC 6749 section 4.4),
    /// asking for `scopes` (none: the provider's default), with the configured client
    /// authentication; `now` dates its expiry.
    ///
    /// # Errors
    /// `Rejected` when the token endpoint refuses (`unauthorized_client`, `invalid_scope`,
    /// ...); `Protocol` when the answer is malformed or not a `Bearer` token; `Unavailable`
    /// when the provider cannot be reached.
    async fn client_credentials(
        &self,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<ClientToken, ProviderError>;

    /// The RP-initiated logout URL carrying `state` (checked when the provider redirects back),
    /// or `None` when the provider has no end-session endpoint.
    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String>;

    /// Validates a back-channel logout token at `now` as OpenID Connect Back-Channel Logout 1.0
    /// section 2.6 says: signed with one of this provider's keys and allowed algorithms (never
    /// `none`, never HMAC), `typ` `logout+jwt` (or the tolerated `JWT`), `iss` this issuer,
    /// `aud` this client (and `azp` with several audiences), `iat` not in the future, `exp` not
    /// past when present, a `jti`, the back-channel logout event, `sub` or `sid`, no `nonce`.
    /// Whether the `jti` was seen before is not checked here.
    ///
    /// # Errors
    /// `LogoutTokenInvalid(check)` naming the first failed check; `Unavailable` when the
    /// provider's keys cannot be reached.
    async fn validate_logout_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<LogoutToken, ProviderError>;
}
