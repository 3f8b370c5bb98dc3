//! Refreshing tokens, once per session even under concurrent requests on several nodes, and
//! handing out an access token that is fresh enough for an upstream call.
//!
//! Providers that rotate refresh tokens revoke the grant when one is used twice, so only the
//! request holding the session's `Lock` lease spends the refresh token; concurrent requests back
//! off through `Clock::sleep` (for up to [`REFRESH_WAIT`]) and answer with the tokens it wrote as
//! soon as they are in the store, without taking the lease in turn.

use std::time::Duration;

use super::Bff;
use super::session::SessionError;
use crate::ids::SessionId;
use crate::lifetime::Expiry;
use crate::ports::{CipherError, ProviderError, StoreError};
use crate::secret::Secret;
use crate::session::Session;
use crate::time::Timestamp;
use crate::tokens::TokenSet;
use crate::vault;

/// Output of [`Bff::refresh`].
#[derive(Debug, Clone)]
pub struct RefreshOutcome {
    /// When the new access token expires.
    pub access_token_expires_at: Option<Timestamp>,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// No session.
    #[error("no session")]
    NoSession,
    /// The session has no refresh token: log in again.
    #[error("no refresh token")]
    NoRefreshToken,
    /// The provider refused the refresh token; the session has been ended.
    #[error("refresh refused: {0}")]
    Refused(String),
    /// The session's tokens no longer open; the session has been ended.
    #[error("the session's tokens cannot be opened")]
    TokensUnreadable(#[source] CipherError),
    /// Another request held this session's refresh lease for longer than a refresh may wait.
    #[error("refresh in progress")]
    InProgress,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing the new tokens failed.
    #[error("sealing the refreshed tokens failed")]
    Sealing(#[source] CipherError),
    /// The provider failed.
    #[error(transparent)]
    Provider(ProviderError),
}

impl RefreshError {
    /// Whether the browser's session is over after this error (its cookie should go).
    pub fn ends_session(&self) -> bool {
        matches!(
            self,
            Self::NoSession | Self::Refused(_) | Self::TokensUnreadable(_)
        )
    }
}

impl From<SessionError> for RefreshError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NoSession => Self::NoSession,
            SessionError::TokensUnreadable(cause) => Self::TokensUnreadable(cause),
            SessionError::Store(e) => Self::Store(e),
            SessionError::Provider(e) => Self::Provider(e),
        }
    }
}

/// How long a refresh lease is held at most.
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How long a refresh waits for another request's refresh of the same session to finish.
const REFRESH_WAIT: Duration = Duration::from_secs(10);
/// The first and the longest pause between looks at a lease held by someone else.
const REFRESH_PAUSES: (Duration, Duration) =
    (Duration::from_millis(20), Duration::from_millis(250));
/// Attempts at writing refreshed tokens when another writer changed the session meanwhile.
const UPDATE_ATTEMPTS: usize = 3;

impl Bff {
    /// Refreshes the tokens now, once per session even under concurrent calls.
    ///
    /// # Errors
    /// See [`RefreshError`]. When the provider refuses, the session is ended.
    pub async fn refresh(&self, id: &SessionId) -> Result<RefreshOutcome, RefreshError> {
        let session = self.live_session(id).await?;
        let tokens = self.refresh_session(session).await?;
        Ok(RefreshOutcome {
            access_token_expires_at: tokens.access_token_expires_at,
        })
    }

    /// The access token for an upstream call, refreshed first when it expires within the
    /// policy's margin.
    ///
    /// # Errors
    /// See [`RefreshError`].
    pub async fn access_token_for(&self, id: &SessionId) -> Result<Secret, RefreshError> {
        let session = self.live_session(id).await?;
        Ok(self.fresh_tokens(session).await?.access_token)
    }

    /// The tokens of a live session, refreshed first (single-flight) when the access token
    /// expires within the policy's margin. The whole set, so callers can check its `scope`.
    pub(crate) async fn fresh_tokens(&self, session: Session) -> Result<TokenSet, RefreshError> {
        let now = self.ports.clock.now();
        let due = session
            .access_token_expires_at
            .is_some_and(|exp| exp <= now.plus(self.policy.refresh_margin));
        if due {
            return self.refresh_session(session).await;
        }
        Ok(self.open_tokens(&session).await?)
    }

    /// Single-flight refresh: one request per session spends the refresh token (with refresh
    /// token rotation a second use would revoke the grant); concurrent ones, on any node, wait
    /// for the lease and then find the tokens it wrote.
    async fn refresh_session(&self, seen: Session) -> Result<TokenSet, RefreshError> {
        let lease = format!("refresh:{}", seen.key.as_str());
        let owner = SessionId::generate(self.ports.random.as_ref()).key();
        let (mut pause, longest_pause) = REFRESH_PAUSES;
        let mut waited = Duration::ZERO;
        loop {
            if self
                .ports
                .locks
                .try_acquire(&lease, owner.as_str(), REFRESH_LEASE)
                .await?
            {
                let result = self.refresh_unless_refreshed(seen).await;
                // A lease that cannot be released expires by itself; the refresh result stands.
                let _ = self.ports.locks.release(&lease, owner.as_str()).await;
                return result;
            }
            if waited >= REFRESH_WAIT {
                return Err(RefreshError::InProgress);
            }
            self.ports.clock.sleep(pause).await;
            waited += pause;
            pause = (pause * 2).min(longest_pause);
            // Waiters must not queue for the lease once the refresh is done: a hundred of them
            // taking turns at it lose a pause per turn, which on two nodes ran into REFRESH_WAIT.
            if let Some(tokens) = self.tokens_rewritten_since(&seen).await? {
                return Ok(tokens);
            }
        }
    }

    /// The session's tokens if they were rewritten since `seen` was read, which only a refresh
    /// does (sliding the expiry never rewrites them); `None` while they are the ones `seen` has.
    async fn tokens_rewritten_since(
        &self,
        seen: &Session,
    ) -> Result<Option<TokenSet>, RefreshError> {
        let now = self.ports.clock.now();
        let current = self
            .ports
            .sessions
            .get(&seen.key, now)
            .await?
            .ok_or(RefreshError::NoSession)?;
        if current.tokens == seen.tokens {
            return Ok(None);
        }
        Ok(Some(self.open_tokens(&current).await?))
    }

    /// Holding the lease: refreshes, unless the session changed since the caller read it (the
    /// refresh it waited for, or one that finished just before), in which case those tokens
    /// stand; a session that refresh ended is `NoSession`.
    async fn refresh_unless_refreshed(&self, seen: Session) -> Result<TokenSet, RefreshError> {
        let now = self.ports.clock.now();
        let current = self
            .ports
            .sessions
            .get(&seen.key, now)
            .await?
            .ok_or(RefreshError::NoSession)?;
        if current.version != seen.version {
            return Ok(self.open_tokens(&current).await?);
        }
        self.refresh_holding_lease(current).await
    }

    async fn refresh_holding_lease(&self, session: Session) -> Result<TokenSet, RefreshError> {
        let provider = self
            .providers
            .get(Some(&session.provider))
            .ok_or(RefreshError::NoSession)?;
        let old = self.open_tokens(&session).await?;
        let refresh_token = old
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let now = self.ports.clock.now();
        let fresh = match provider.refresh(&refresh_token, &session.claims, now).await {
            Ok(fresh) => fresh,
            Err(ProviderError::Rejected(code)) => {
                // The grant is dead: the session can no longer call APIs, so end it.
                self.ports.sessions.delete(&session.key).await?;
                return Err(RefreshError::Refused(code));
            }
            Err(e) => return Err(RefreshError::Provider(e)),
        };
        let tokens = old.refreshed_with(fresh);
        let cipher = self.ports.cipher.as_ref();
        let mut current = session;
        for _ in 0..UPDATE_ATTEMPTS {
            current.tokens =
                vault::seal(cipher, &current.key, &tokens).map_err(RefreshError::Sealing)?;
            current.access_token_expires_at = tokens.access_token_expires_at;
            // The session never outlives the refresh token the provider just said expires; a
            // refresh is a use, so the idle expiry slides within that limit.
            let mut expiry = self.policy.lifetime.bounded_by_refresh_token(
                current.created_at,
                Expiry {
                    idle: current.idle_expires_at,
                    absolute: current.absolute_expires_at,
                },
                tokens.refresh_token_expires_at,
            );
            if let Some(idle) = self.policy.lifetime.slide(now, expiry) {
                expiry.idle = idle;
            }
            current.idle_expires_at = expiry.idle;
            current.absolute_expires_at = expiry.absolute;
            match self.ports.sessions.update(&current, now).await {
                Ok(_) => return Ok(tokens),
                Err(StoreError::Conflict) => {
                    current = self
                        .ports
                        .sessions
                        .get(&current.key, now)
                        .await?
                        .ok_or(RefreshError::NoSession)?;
                }
                Err(StoreError::NotFound) => return Err(RefreshError::NoSession),
                Err(e) => return Err(e.into()),
            }
        }
        Err(RefreshError::Store(StoreError::Conflict))
    }
}
