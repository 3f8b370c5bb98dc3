//! Reading the current session: find it by the cookie's id, slide its idle expiry, and show the
//! app what it may see (claims, expiry, the logout link's guard). Never a token.
//!
//! A session whose sealed tokens no longer open (the vault key that sealed them was removed from
//! the configuration, or the blob is corrupt) is useless for API calls and refreshes, so it is
//! ended here, the same way for every use case: deleted, and answered as
//! [`SessionError::TokensUnreadable`], which [`SessionError::ends_session`] reports.

use super::Bff;
use super::refresh::RefreshError;
use crate::claims::Claims;
use crate::ids::{ProviderId, SessionId, SessionKey, hex};
use crate::lifetime::Expiry;
use crate::ports::{CipherError, ProviderError, SessionEndReason, StoreError};
use crate::session::Session;
use crate::time::Timestamp;
use crate::tokens::TokenSet;
use crate::vault;
use sha2::{Digest, Sha256};

/// What the app may see about the current session.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// ID token claims.
    pub claims: Claims,
    /// The provider of the session's login (its identity).
    pub provider: ProviderId,
    /// Providers connected to the session since, whose tokens API routes can use.
    pub connected_providers: Vec<ProviderId>,
    /// When the session ends unless used again.
    pub expires_at: Timestamp,
    /// When the access token expires.
    pub access_token_expires_at: Option<Timestamp>,
    /// A value bound to this session that a logout by `GET` link must carry (CSRF protection
    /// for logout links). Not a credential: it cannot be turned into the session id.
    pub logout_guard: String,
}

/// Why a session could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session cookie, an unknown one, or an expired session.
    #[error("no session")]
    NoSession,
    /// The session's tokens no longer open (vault key removed, corrupt blob); the session has
    /// been ended.
    #[error("the session's tokens cannot be opened")]
    TokensUnreadable(#[source] CipherError),
    /// A store failed (503, never "logged out").
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl SessionError {
    /// Whether the browser's session is over after this error (its cookie should go).
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::NoSession | Self::TokensUnreadable(_))
    }
}

/// The guard a logout link carries: a hash of the session key under its own label, the first
/// 128 bits of SHA-256 (`bff-logout/v1:` + key) in hex. Every `/bff/user` computes it, so the
/// label and key are hashed in place rather than joined into a new string first.
pub(crate) fn logout_guard(key: &SessionKey) -> String {
    let digest = Sha256::new()
        .chain_update(LOGOUT_GUARD_LABEL)
        .chain_update(key.as_str())
        .finalize();
    hex(&digest[..16])
}

const LOGOUT_GUARD_LABEL: &str = "bff-logout/v1:";

impl Bff {
    /// Loads a live session and records its use (sliding expiry).
    pub(crate) async fn live_session(&self, id: &SessionId) -> Result<Session, SessionError> {
        let now = self.ports.clock.now();
        let mut session = self
            .find_session(&id.key(), now)
            .await?
            .ok_or(SessionError::NoSession)?;
        // The session's key, which differs from the id's when the id was renewed meanwhile.
        let key = session.key.clone();
        let current = Expiry {
            idle: session.idle_expires_at,
            absolute: session.absolute_expires_at,
        };
        if let Some(idle) = self.policy.lifetime.slide(now, current) {
            match self.ports.sessions.touch(&key, now, idle, now).await {
                Ok(()) => {
                    session.last_seen_at = now;
                    session.idle_expires_at = idle;
                }
                Err(StoreError::NotFound) => return Err(SessionError::NoSession),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(session)
    }

    /// The live session stored under `key`, or, when `key` was renewed within the grace
    /// period, the session it was renewed to: a request that read the old cookie (or a refresh
    /// that read the session under its old key) just before the renewal still finds its
    /// session. The alias is only looked up when renewal is on and the key is not found.
    pub(crate) async fn find_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let live = |s: &Session| !s.is_expired(now);
        if let Some(session) = self.ports.sessions.get(key, now).await?.filter(live) {
            return Ok(Some(session));
        }
        if self.policy.renewal.is_none() {
            return Ok(None);
        }
        let Some(alias) = self.ports.sessions.get_renewal(key, now).await? else {
            return Ok(None);
        };
        Ok(self
            .ports
            .sessions
            .get(&alias.new_key, now)
            .await?
            .filter(live))
    }

    /// Opens the session's tokens; when they no longer open, ends the session.
    pub(crate) async fn open_tokens(&self, session: &Session) -> Result<TokenSet, SessionError> {
        let opened = vault::open(self.ports.cipher.as_ref(), &session.key, &session.tokens);
        self.end_if_unreadable(session, opened).await
    }

    /// Opens the tokens of `provider` in the session: the primary login's when it is the
    /// session's provider, else that provider's connection's (`None` when not connected). Tokens
    /// that no longer open end the whole session, as [`Bff::open_tokens`] does.
    pub(crate) async fn open_tokens_of(
        &self,
        session: &Session,
        provider: &ProviderId,
    ) -> Result<Option<TokenSet>, SessionError> {
        if provider == &session.provider {
            return self.open_tokens(session).await.map(Some);
        }
        let Some(connection) = session.connection(provider) else {
            return Ok(None);
        };
        let opened = vault::open_connection(
            self.ports.cipher.as_ref(),
            &session.key,
            provider,
            &connection.tokens,
        );
        self.end_if_unreadable(session, opened).await.map(Some)
    }

    /// Whether the session's tokens still open, without reading them (the cipher's check only,
    /// no parsing); when they no longer open, ends the session as [`Bff::open_tokens`] does.
    async fn check_tokens_open(&self, session: &Session) -> Result<(), SessionError> {
        let opened = vault::opens(self.ports.cipher.as_ref(), &session.key, &session.tokens);
        self.end_if_unreadable(session, opened).await
    }

    async fn end_if_unreadable<T>(
        &self,
        session: &Session,
        opened: Result<T, CipherError>,
    ) -> Result<T, SessionError> {
        match opened {
            Ok(tokens) => Ok(tokens),
            Err(cause) => {
                if self.ports.sessions.delete(&session.key).await? {
                    self.sessions_ended(SessionEndReason::TokensUnreadable, 1);
                }
                Err(SessionError::TokensUnreadable(cause))
            }
        }
    }

    /// The current session, for `/bff/user` and `/bff/session`. Its tokens are checked to
    /// open too (not read: neither answer shows them), so these answers agree with refresh and
    /// API calls about a session whose tokens are lost.
    ///
    /// # Errors
    /// `NoSession`; `TokensUnreadable` (the session is ended); `Store` when the store fails.
    pub async fn current_session(&self, id: &SessionId) -> Result<SessionView, SessionError> {
        let session = self.live_session(id).await?;
        self.check_tokens_open(&session).await?;
        Ok(SessionView {
            logout_guard: logout_guard(&session.key),
            expires_at: session.expires_at(),
            access_token_expires_at: session.access_token_expires_at,
            provider: session.provider,
            connected_providers: session
                .connections
                .into_iter()
                .map(|c| c.provider)
                .collect(),
            claims: session.claims,
        })
    }

    /// Whether the session still exists and has not expired, without recording a use: for what
    /// was authorized once and then lives on by itself (a proxied WebSocket), which must end
    /// with the session (logout on any node, expiry) but must not keep it alive.
    ///
    /// # Errors
    /// `Store` when the store fails; an outage says nothing about the session.
    pub async fn session_is_live(&self, id: &SessionId) -> Result<bool, StoreError> {
        let now = self.ports.clock.now();
        Ok(self.find_session(&id.key(), now).await?.is_some())
    }

    /// The user's claims: the ID token's, plus the userinfo endpoint's when the policy asks,
    /// called with an access token refreshed first when it expires within the policy's margin
    /// (as the API proxy does), so the answer does not depend on when the app last called an
    /// API.
    ///
    /// # Errors
    /// `NoSession`; `TokensUnreadable`; `Store`; `Provider` when userinfo fails; the errors of
    /// a refresh (see [`RefreshError`]) when one was due.
    pub async fn userinfo(&self, id: &SessionId) -> Result<Claims, RefreshError> {
        let session = self.live_session(id).await?;
        if !self.policy.fetch_userinfo {
            // Opened anyway: tokens that no longer open end the session here as everywhere.
            self.open_tokens(&session).await?;
            return Ok(session.claims);
        }
        let provider_id = session.provider.clone();
        let provider = self
            .providers
            .get(Some(&provider_id))
            .ok_or(RefreshError::NoSession)?;
        let (mut claims, subject) = (session.claims.clone(), session.subject.clone());
        let tokens = self.fresh_tokens(session, &provider_id).await?;
        if let Some(extra) = provider
            .userinfo(&tokens.access_token, &subject)
            .await
            .map_err(RefreshError::Provider)?
        {
            claims.merge_missing(&extra);
        }
        Ok(claims)
    }
}
