//! Refreshing tokens, once per session and provider even under concurrent requests on several
//! nodes, and handing out an access token that is fresh enough for an upstream call.
//!
//! Providers that rotate refresh tokens revoke the grant when one is used twice, so only the
//! request holding the `Lock` lease of that session's provider (`refresh:<key>:<provider>`)
//! spends its refresh token; concurrent requests back off through `Clock::sleep` (for up to
//! [`REFRESH_WAIT`]) and answer with the tokens it wrote as soon as they are in the store, without
//! taking the lease in turn. A session's primary login and
//! each connected provider refresh on their own: different leases, and each writes only its own
//! tokens back with a version-checked update, re-reading on a conflict, so refreshing two
//! providers at once loses neither.
//!
//! A refresh that fails without ending anything (the provider is down, or refuses this
//! server's client authentication) is remembered for [`FAILURE_MEMORY`] under a lease of its
//! own (`refresh-failed:<key>:<provider>`): the requests that waited on it see that lease held
//! ([`Lock::is_held`](crate::ports::Lock::is_held)) and answer with that failure, instead of
//! each taking the refresh lease in turn to ask the provider again, which a hundred concurrent
//! calls of one session did, one after another.

use std::time::Duration;

use super::Bff;
use super::session::SessionError;
use crate::ids::{ProviderId, SessionId, SessionKey};
use crate::lifetime::Expiry;
use crate::ports::{
    CipherError, Event, INVALID_GRANT, ProviderError, RefreshResult, SessionEndReason, StoreError,
};
use crate::secret::Secret;
use crate::session::Session;
use crate::time::Timestamp;
use crate::tokens::TokenSet;
use crate::vault;
use crate::vault::Sealed;

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
    /// The provider refused the refresh token (`invalid_grant`); the session has been ended.
    /// Its other refusals (`invalid_client`, ...) are `Provider`, and the session stays.
    #[error("refresh refused: {0}")]
    Refused(String),
    /// The session's tokens no longer open; the session has been ended.
    #[error("the session's tokens cannot be opened")]
    TokensUnreadable(#[source] CipherError),
    /// Another request held this session's refresh lease for longer than a refresh may wait.
    #[error("refresh in progress")]
    InProgress,
    /// The session holds no tokens of this provider: it was never connected, or its refresh
    /// was refused and the connection dropped (the session itself goes on).
    #[error("provider {0} is not connected to the session")]
    NotConnected(ProviderId),
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

/// The name of the lease that makes refreshing `provider`'s tokens of the session `key`
/// single-flight; renewing the session id takes it too, so the two never overlap.
pub(crate) fn refresh_lease(key: &SessionKey, provider: &ProviderId) -> String {
    format!("refresh:{}:{}", key.as_str(), provider.as_str())
}

/// The name of the lease held for [`FAILURE_MEMORY`] after a refresh of `provider`'s tokens of
/// the session `key` failed: while it is held, requests that waited for a refresh share that
/// failure. Only the holder of [`refresh_lease`] takes it; it is never released.
fn failed_refresh_mark(key: &SessionKey, provider: &ProviderId) -> String {
    format!("refresh-failed:{}:{}", key.as_str(), provider.as_str())
}

/// How long a failed refresh answers for the requests that waited on it: several of their
/// longest pauses between looks, much shorter than the pause a user would notice before a
/// retry asks the provider again.
pub(crate) const FAILURE_MEMORY: Duration = Duration::from_secs(2);

/// The failure of a request that waited for another request's refresh, which failed.
#[derive(Debug, thiserror::Error)]
#[error("the refresh this request waited for failed moments ago")]
struct WaitedForAFailedRefresh;

/// How long a refresh lease is held at most.
pub(crate) const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How long a refresh waits for another request's refresh of the same session to finish.
const REFRESH_WAIT: Duration = Duration::from_secs(10);
/// The first and the longest pause between looks at a lease held by someone else.
const REFRESH_PAUSES: (Duration, Duration) =
    (Duration::from_millis(20), Duration::from_millis(250));
/// Attempts at writing refreshed tokens when another writer changed the session meanwhile.
const UPDATE_ATTEMPTS: usize = 3;

impl Bff {
    /// Refreshes the primary login's tokens now, once per session even under concurrent calls.
    ///
    /// # Errors
    /// See [`RefreshError`]. When the provider refuses, the session is ended.
    pub async fn refresh(&self, id: &SessionId) -> Result<RefreshOutcome, RefreshError> {
        let session = self.live_session(id).await?;
        let provider = session.provider.clone();
        let tokens = self.refresh_session(session, &provider).await?;
        Ok(RefreshOutcome {
            access_token_expires_at: tokens.access_token_expires_at,
        })
    }

    /// The primary login's access token for an upstream call, refreshed first when it expires
    /// within the policy's margin.
    ///
    /// # Errors
    /// See [`RefreshError`].
    pub async fn access_token_for(&self, id: &SessionId) -> Result<Secret, RefreshError> {
        let session = self.live_session(id).await?;
        let provider = session.provider.clone();
        Ok(self.fresh_tokens(session, &provider).await?.access_token)
    }

    /// The tokens of `provider` in a live session (the primary login's, or a connection's),
    /// refreshed first (single-flight) when the access token expires within the policy's
    /// margin. The whole set, so callers can check its `scope`. Never another provider's.
    pub(crate) async fn fresh_tokens(
        &self,
        session: Session,
        provider: &ProviderId,
    ) -> Result<TokenSet, RefreshError> {
        let (_, expires_at) =
            slot(&session, provider).ok_or_else(|| RefreshError::NotConnected(provider.clone()))?;
        let now = self.ports.clock.now();
        let due = expires_at.is_some_and(|exp| exp <= now.plus(self.policy.refresh_margin));
        if due {
            // Boxed: the refresh's state machine is large and rarely needed; inline, every
            // proxied request's future would carry (and move) it.
            return Box::pin(self.refresh_session(session, provider)).await;
        }
        self.open_tokens_of(&session, provider)
            .await?
            .ok_or_else(|| RefreshError::NotConnected(provider.clone()))
    }

    /// Single-flight refresh: one request per session and provider spends the refresh token
    /// (with refresh token rotation a second use would revoke the grant); concurrent ones, on
    /// any node, wait for the lease and then find the tokens it wrote.
    async fn refresh_session(
        &self,
        seen: Session,
        provider: &ProviderId,
    ) -> Result<TokenSet, RefreshError> {
        let lease = refresh_lease(&seen.key, provider);
        let failure = failed_refresh_mark(&seen.key, provider);
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
                let waited_for_another = waited > Duration::ZERO;
                let result = self
                    .refresh_unless_refreshed(seen, provider, waited_for_another, &failure)
                    .await;
                // A lease that cannot be released expires by itself; the refresh result stands.
                let _ = self.ports.locks.release(&lease, owner.as_str()).await;
                return result;
            }
            if waited >= REFRESH_WAIT {
                self.refresh_ended(provider, RefreshResult::Failed);
                return Err(RefreshError::InProgress);
            }
            self.ports.clock.sleep(pause).await;
            waited += pause;
            pause = (pause * 2).min(longest_pause);
            // Waiters must not queue for the lease once the refresh is done: a hundred of them
            // taking turns at it lose a pause per turn, which on two nodes ran into REFRESH_WAIT.
            if let (_, Some(tokens)) = self.read_again(&seen, provider).await? {
                self.refresh_ended(provider, RefreshResult::Coalesced);
                return Ok(tokens);
            }
            // Nor once it failed: all of them at once, not one per turn at the lease.
            if self.ports.locks.is_held(&failure).await? {
                return Err(self.shared_failure(provider));
            }
        }
    }

    /// The answer of a request that waited for a refresh that failed moments ago.
    fn shared_failure(&self, provider: &ProviderId) -> RefreshError {
        self.refresh_ended(provider, RefreshResult::Failed);
        RefreshError::Provider(ProviderError::Unavailable(Box::new(
            WaitedForAFailedRefresh,
        )))
    }

    /// The session as stored now, with `provider`'s tokens if they were rewritten since `seen`
    /// was read, which only a refresh (or a new connect) does (sliding the expiry never rewrites
    /// them); `None` while they are the ones `seen` has. Only this provider's tokens count:
    /// another provider's refresh changes the version, not these.
    async fn read_again(
        &self,
        seen: &Session,
        provider: &ProviderId,
    ) -> Result<(Session, Option<TokenSet>), RefreshError> {
        let now = self.ports.clock.now();
        // Through a renewal alias too: a refresh that read the session under its old key
        // writes the tokens to the session it became.
        let current = self
            .find_session(&seen.key, now)
            .await?
            .ok_or(RefreshError::NoSession)?;
        let seen_tokens = slot(seen, provider).map(|(sealed, _)| sealed);
        let rewritten = match slot(&current, provider) {
            None => return Err(RefreshError::NotConnected(provider.clone())),
            Some((sealed, _)) if Some(sealed) == seen_tokens => None,
            Some(_) => Some(
                self.open_tokens_of(&current, provider)
                    .await?
                    .ok_or_else(|| RefreshError::NotConnected(provider.clone()))?,
            ),
        };
        Ok((current, rewritten))
    }

    /// Holding the lease: refreshes, unless this provider's tokens changed since the caller
    /// read the session (the refresh it waited for, or one that finished just before), in which
    /// case those tokens stand; a session that refresh ended is `NoSession`. A caller that
    /// `waited_for_another` while a refresh failed moments ago (the `failure` lease is held)
    /// shares that failure instead of asking the provider again; a refresh that fails here
    /// takes that lease for such waiters.
    async fn refresh_unless_refreshed(
        &self,
        seen: Session,
        provider: &ProviderId,
        waited_for_another: bool,
        failure: &str,
    ) -> Result<TokenSet, RefreshError> {
        let current = match self.read_again(&seen, provider).await? {
            (_, Some(tokens)) => {
                self.refresh_ended(provider, RefreshResult::Coalesced);
                return Ok(tokens);
            }
            (current, None) => current,
        };
        let locks = &self.ports.locks;
        if waited_for_another && locks.is_held(failure).await? {
            return Err(self.shared_failure(provider));
        }
        let result = self.refresh_holding_lease(current, provider).await;
        if let Err(RefreshError::Provider(_)) = &result {
            // Best effort: without it, waiters ask the provider themselves, as before.
            let _ = locks.try_acquire(failure, "failed", FAILURE_MEMORY).await;
        }
        result
    }

    async fn refresh_holding_lease(
        &self,
        session: Session,
        provider_id: &ProviderId,
    ) -> Result<TokenSet, RefreshError> {
        let primary = provider_id == &session.provider;
        let provider = match self.providers.get(Some(provider_id)) {
            Some(provider) => provider,
            None if primary => return Err(RefreshError::NoSession),
            None => return Err(RefreshError::NotConnected(provider_id.clone())),
        };
        let old = self
            .open_tokens_of(&session, provider_id)
            .await?
            .ok_or_else(|| RefreshError::NotConnected(provider_id.clone()))?;
        let refresh_token = old
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let original_claims = match session.connection(provider_id) {
            Some(connection) => &connection.claims,
            None => &session.claims,
        };
        let now = self.ports.clock.now();
        let refreshed = provider.refresh(&refresh_token, original_claims, now).await;
        self.refresh_ended(
            provider_id,
            match &refreshed {
                Ok(_) => RefreshResult::Refreshed,
                Err(e) if e.is_dead_grant() => RefreshResult::Refused,
                Err(_) => RefreshResult::Failed,
            },
        );
        let fresh = match refreshed {
            Ok(fresh) => fresh,
            // Only `invalid_grant` ends anything: a provider refusing this server's client
            // authentication (a rotated secret or key) must not log every user out.
            Err(ProviderError::Rejected(code)) if primary && code == INVALID_GRANT => {
                // The grant is dead: the session can no longer call APIs, so end it.
                if self.ports.sessions.delete(&session.key).await? {
                    self.sessions_ended(SessionEndReason::RefreshRefused, 1);
                }
                return Err(RefreshError::Refused(code));
            }
            Err(e) if e.is_dead_grant() => {
                // A connected provider's grant is dead: drop that connection; the session and
                // its identity go on, and the app can connect the provider again.
                let refused = session.connection(provider_id).map(|c| c.tokens.clone());
                if let Some(refused) = refused {
                    self.drop_connection(session, provider_id, &refused, now)
                        .await?;
                }
                return Err(RefreshError::NotConnected(provider_id.clone()));
            }
            Err(e) => return Err(RefreshError::Provider(e)),
        };
        let tokens = old.refreshed_with(fresh);
        let cipher = self.ports.cipher.as_ref();
        let refreshed_from = slot(&session, provider_id).map(|(sealed, _)| sealed.clone());
        let mut current = session;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut expiry = Expiry {
                idle: current.idle_expires_at,
                absolute: current.absolute_expires_at,
            };
            if primary {
                current.tokens =
                    vault::seal(cipher, &current.key, &tokens).map_err(RefreshError::Sealing)?;
                current.access_token_expires_at = tokens.access_token_expires_at;
                // The session never outlives the refresh token its provider just said expires.
                expiry = self.policy.lifetime.bounded_by_refresh_token(
                    current.created_at,
                    expiry,
                    tokens.refresh_token_expires_at,
                );
            } else {
                let key = current.key.clone();
                let connection = current
                    .connections
                    .iter_mut()
                    .find(|c| &c.provider == provider_id)
                    .ok_or_else(|| RefreshError::NotConnected(provider_id.clone()))?;
                connection.tokens = vault::seal_connection(cipher, &key, provider_id, &tokens)
                    .map_err(RefreshError::Sealing)?;
                connection.access_token_expires_at = tokens.access_token_expires_at;
            }
            // A refresh is a use, so the idle expiry slides within the absolute limit.
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
                    // Someone else wrote the session (a touch does not conflict): another
                    // provider's refresh, whose tokens the retry keeps, or a new connect of this
                    // provider, whose newer grant wins over this refresh of the old one.
                    let now_stored = slot(&current, provider_id).map(|(sealed, _)| sealed);
                    if now_stored != refreshed_from.as_ref() {
                        return self
                            .open_tokens_of(&current, provider_id)
                            .await?
                            .ok_or_else(|| RefreshError::NotConnected(provider_id.clone()));
                    }
                }
                Err(StoreError::NotFound) => return Err(RefreshError::NoSession),
                Err(e) => return Err(e.into()),
            }
        }
        Err(RefreshError::Store(StoreError::Conflict))
    }

    fn refresh_ended(&self, provider: &ProviderId, outcome: RefreshResult) {
        self.events.record(Event::Refresh { provider, outcome });
    }

    /// Removes `provider`'s connection holding the `refused` tokens from the session
    /// (version-checked, re-reading on a conflict). A session that is gone has nothing to
    /// remove, and a connection made again meanwhile (other tokens) stays.
    async fn drop_connection(
        &self,
        session: Session,
        provider: &ProviderId,
        refused: &Sealed,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut current = session;
        for _ in 0..UPDATE_ATTEMPTS {
            if current.connection(provider).map(|c| &c.tokens) != Some(refused) {
                return Ok(());
            }
            current.connections.retain(|c| &c.provider != provider);
            match self.ports.sessions.update(&current, now).await {
                Ok(_) | Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::Conflict) => {
                    match self.ports.sessions.get(&current.key, now).await? {
                        Some(fresh) => current = fresh,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}

/// The sealed tokens of `provider` in the session and when their access token expires: the
/// primary login's or a connection's; `None` when the session has none of that provider.
fn slot<'s>(
    session: &'s Session,
    provider: &ProviderId,
) -> Option<(&'s Sealed, Option<Timestamp>)> {
    if provider == &session.provider {
        return Some((&session.tokens, session.access_token_expires_at));
    }
    session
        .connection(provider)
        .map(|c| (&c.tokens, c.access_token_expires_at))
}
