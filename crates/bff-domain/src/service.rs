//! The use cases: start and complete a login, read the session, refresh, log out.
//!
//! [`Bff`] holds the ports and the policy; each use case is one method with its own error enum
//! naming the outcomes, which `bff-http` maps to status codes and problem types in one place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::claims::Claims;
use crate::ids::{LoginBinding, Prompt, ProviderId, SessionId, SessionKey, hex_sha256};
use crate::lifetime::{Expiry, SessionLifetime};
use crate::pending::PendingLogin;
use crate::ports::{
    Cipher, CipherError, Clock, IdentityProvider, Lock, PendingLoginStore, ProviderError, Random,
    SessionStore, StoreError,
};
use crate::return_url::ReturnUrl;
use crate::secret::{Secret, constant_time_eq};
use crate::session::Session;
use crate::time::Timestamp;
use crate::tokens::TokenSet;
use crate::vault;

/// The configured identity providers, one of them the default.
#[derive(Clone)]
pub struct Providers {
    by_id: BTreeMap<ProviderId, Arc<dyn IdentityProvider>>,
    default: ProviderId,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("ids", &self.by_id.keys().collect::<Vec<_>>())
            .field("default", &self.default)
            .finish()
    }
}

/// The default provider is not among the configured ones.
#[derive(Debug, thiserror::Error)]
#[error("default provider {0} is not configured")]
pub struct UnknownDefaultProvider(pub ProviderId);

impl Providers {
    /// Indexes `providers` by id.
    ///
    /// # Errors
    /// [`UnknownDefaultProvider`] when `default` is not one of them.
    pub fn new(
        providers: Vec<Arc<dyn IdentityProvider>>,
        default: ProviderId,
    ) -> Result<Self, UnknownDefaultProvider> {
        let by_id: BTreeMap<_, _> = providers.into_iter().map(|p| (p.id().clone(), p)).collect();
        if !by_id.contains_key(&default) {
            return Err(UnknownDefaultProvider(default));
        }
        Ok(Self { by_id, default })
    }

    /// The provider named `id`, or the default for `None`.
    pub fn get(&self, id: Option<&ProviderId>) -> Option<&Arc<dyn IdentityProvider>> {
        self.by_id.get(id.unwrap_or(&self.default))
    }

    /// Every provider.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn IdentityProvider>> {
        self.by_id.values()
    }
}

/// The adapters the use cases run on.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects; nothing useful to print
pub struct BffPorts {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Pending logins.
    pub pending_logins: Arc<dyn PendingLoginStore>,
    /// Leases for single-flight refresh.
    pub locks: Arc<dyn Lock>,
    /// The vault cipher.
    pub cipher: Arc<dyn Cipher>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn Random>,
}

/// Tunables of the use cases.
#[derive(Clone, Debug)]
pub struct BffPolicy {
    /// Session lifetimes.
    pub lifetime: SessionLifetime,
    /// How long a started login can be completed.
    pub pending_login_ttl: Duration,
    /// `redirect_uri` for redirect-style logins (the BFF's `/callback`).
    pub callback_url: String,
    /// `redirect_uri` for API-driven logins (an app page that posts its URL to `/login/end`).
    pub app_redirect_url: String,
    /// Refresh the access token when it expires within this margin.
    pub refresh_margin: Duration,
    /// Merge the provider's userinfo endpoint claims into `/userinfo` answers.
    pub fetch_userinfo: bool,
}

/// Which flavour of login: decides the `redirect_uri`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStyle {
    /// The provider redirects to the BFF's callback.
    Redirect,
    /// The provider redirects to the app, which hands the URL to the BFF.
    ApiDriven,
}

/// Input of [`Bff::start_login`].
#[derive(Clone, Debug)]
pub struct StartLogin {
    /// Which provider; `None` for the default.
    pub provider: Option<ProviderId>,
    /// Where to go afterwards.
    pub return_url: ReturnUrl,
    /// `prompt` to pass on.
    pub prompt: Option<Prompt>,
    /// Redirect or API-driven.
    pub style: LoginStyle,
}

/// Output of [`Bff::start_login`].
#[derive(Debug)]
pub struct StartedLogin {
    /// Where to send the browser.
    pub authorization_url: String,
    /// The value of the login-binding cookie to set.
    pub binding: LoginBinding,
    /// When the binding (and the pending login) expire.
    pub expires_at: Timestamp,
}

/// Input of [`Bff::complete_login`]: the authorization response and the browser's cookies.
#[derive(Clone, Debug, Default)]
pub struct CompleteLogin {
    /// `state`.
    pub state: String,
    /// `code`, absent on error responses.
    pub code: Option<String>,
    /// `error`, on error responses.
    pub error: Option<String>,
    /// `iss` (RFC 9207), when the provider sends it.
    pub issuer: Option<String>,
    /// The login-binding cookie.
    pub binding: Option<LoginBinding>,
    /// The session cookie the browser had, which the new session replaces.
    pub previous_session: Option<SessionId>,
}

/// Output of [`Bff::complete_login`].
#[derive(Debug)]
pub struct CompletedLogin {
    /// The new session id, for the cookie.
    pub session_id: SessionId,
    /// Where to send the browser.
    pub return_url: ReturnUrl,
    /// When the session ends unless used.
    pub expires_at: Timestamp,
}

/// Why a login did not complete. No session is created in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// `provider=` names no configured provider.
    #[error("unknown provider")]
    UnknownProvider,
    /// The state is unknown, already used or expired.
    #[error("unknown, used or expired state")]
    StateMismatch,
    /// The browser did not send the login-binding cookie.
    #[error("login binding cookie missing")]
    BindingMissing,
    /// The login-binding cookie belongs to another login.
    #[error("login binding mismatch")]
    BindingMismatch,
    /// `iss` in the authorization response is not the provider's issuer (mix-up attack).
    #[error("issuer mismatch in authorization response")]
    IssuerMismatch,
    /// The provider promises `iss` in every authorization response (RFC 9207) and this one has
    /// none.
    #[error("issuer missing from authorization response")]
    IssuerMissing,
    /// The provider answered with an OAuth error (e.g. `access_denied`, `login_required`).
    #[error("provider returned error {0}")]
    ProviderDenied(String),
    /// Neither `code` nor `error` was sent.
    #[error("authorization response without code")]
    MissingCode,
    /// The ID token failed validation.
    #[error("ID token invalid: {0}")]
    IdTokenInvalid(String),
    /// The token endpoint refused the code.
    #[error("token endpoint refused: {0}")]
    CodeRejected(String),
    /// The provider failed.
    #[error(transparent)]
    Provider(ProviderError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

impl From<ProviderError> for LoginError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::IdTokenInvalid(reason) => Self::IdTokenInvalid(reason),
            ProviderError::Rejected(code) => Self::CodeRejected(code),
            other => Self::Provider(other),
        }
    }
}

/// What the app may see about the current session.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// ID token claims.
    pub claims: Claims,
    /// The provider.
    pub provider: ProviderId,
    /// When the session ends unless used again.
    pub expires_at: Timestamp,
    /// When the access token expires.
    pub access_token_expires_at: Option<Timestamp>,
    /// A value bound to this session that a `GET` logout must carry (CSRF protection for
    /// logout links). Not a credential: it cannot be turned into the session id.
    pub logout_token: String,
}

/// Why a session could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session cookie, an unknown one, or an expired session.
    #[error("no session")]
    NoSession,
    /// A store failed (503, never "logged out").
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tokens could not be opened.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

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
    /// Another request held this session's refresh lease for longer than a refresh may wait.
    #[error("refresh in progress")]
    InProgress,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tokens could not be opened or sealed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The provider failed.
    #[error(transparent)]
    Provider(ProviderError),
}

/// Output of [`Bff::logout`].
#[derive(Debug)]
pub struct LogoutOutcome {
    /// Where to send the browser for RP-initiated logout at the provider, when it has one.
    pub logout_url: Option<String>,
    /// The refresh-token revocation failed (the session is gone anyway); for the log.
    pub revocation_error: Option<ProviderError>,
}

/// Why a logout was refused.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// No session to end.
    #[error("no session")]
    NoSession,
    /// A `GET` logout carried the wrong (or no) logout token.
    #[error("logout token mismatch")]
    LogoutTokenMismatch,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// The BFF's use cases over its ports.
#[derive(Clone)]
pub struct Bff {
    ports: BffPorts,
    providers: Providers,
    policy: BffPolicy,
}

impl std::fmt::Debug for Bff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bff")
            .field("providers", &self.providers)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn logout_token(key: &SessionKey) -> String {
    let mut token = hex_sha256(format!("bff-logout/v1:{}", key.as_str()).as_bytes());
    token.truncate(32);
    token
}

impl Bff {
    /// Builds the service.
    pub fn new(ports: BffPorts, providers: Providers, policy: BffPolicy) -> Self {
        Self {
            ports,
            providers,
            policy,
        }
    }

    /// The configured providers.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The policy.
    pub fn policy(&self) -> &BffPolicy {
        &self.policy
    }

    /// The ports (for readiness checks and background sweeps).
    pub fn ports(&self) -> &BffPorts {
        &self.ports
    }

    /// Starts a login: builds the authorization request and remembers it for the callback.
    ///
    /// # Errors
    /// `UnknownProvider`; `Provider` when the request cannot be built; `Store`.
    pub async fn start_login(&self, input: StartLogin) -> Result<StartedLogin, LoginError> {
        let provider = self
            .providers
            .get(input.provider.as_ref())
            .ok_or(LoginError::UnknownProvider)?;
        let redirect_uri = match input.style {
            LoginStyle::Redirect => &self.policy.callback_url,
            LoginStyle::ApiDriven => &self.policy.app_redirect_url,
        };
        let request = provider.authorization_request(redirect_uri, input.prompt)?;
        let binding = LoginBinding::generate(self.ports.random.as_ref());
        let now = self.ports.clock.now();
        let expires_at = now.plus(self.policy.pending_login_ttl);
        let sealed_verifier = vault::seal_verifier(
            self.ports.cipher.as_ref(),
            &request.state,
            &request.pkce_verifier,
        )?;
        self.ports
            .pending_logins
            .put(&PendingLogin {
                state: request.state,
                provider: provider.id().clone(),
                sealed_verifier,
                nonce: request.nonce,
                redirect_uri: redirect_uri.clone(),
                return_url: input.return_url,
                binding_hash: binding.hash(),
                created_at: now,
                expires_at,
            })
            .await?;
        Ok(StartedLogin {
            authorization_url: request.url,
            binding,
            expires_at,
        })
    }

    /// Completes a login from the authorization response: checks state, browser binding and
    /// issuer, exchanges the code, validates the ID token and creates a session under a new id.
    ///
    /// The pending login is consumed before any check, so a state can never be tried twice.
    ///
    /// # Errors
    /// See [`LoginError`]; no session exists afterwards in any error case.
    pub async fn complete_login(&self, input: CompleteLogin) -> Result<CompletedLogin, LoginError> {
        let now = self.ports.clock.now();
        let pending = self
            .ports
            .pending_logins
            .take(&input.state, now)
            .await?
            .ok_or(LoginError::StateMismatch)?;
        let binding = input.binding.ok_or(LoginError::BindingMissing)?;
        if !binding.matches(&pending.binding_hash) {
            return Err(LoginError::BindingMismatch);
        }
        let provider = self
            .providers
            .get(Some(&pending.provider))
            .ok_or(LoginError::UnknownProvider)?;
        match &input.issuer {
            Some(iss) if !constant_time_eq(iss.as_bytes(), provider.issuer().as_bytes()) => {
                return Err(LoginError::IssuerMismatch);
            }
            // RFC 9207 section 2.4: a provider that always sends `iss` did not send this one.
            None if provider.requires_issuer_in_authorization_response() => {
                return Err(LoginError::IssuerMissing);
            }
            _ => {}
        }
        if let Some(error) = input.error {
            return Err(LoginError::ProviderDenied(error));
        }
        let code = input.code.ok_or(LoginError::MissingCode)?;
        let pkce_verifier = vault::open_verifier(
            self.ports.cipher.as_ref(),
            &pending.state,
            &pending.sealed_verifier,
        )?;
        let login = provider
            .exchange_code(
                &code,
                &pkce_verifier,
                &pending.redirect_uri,
                &pending.nonce,
                now,
            )
            .await?;
        let subject = login
            .claims
            .subject()
            .ok_or_else(|| LoginError::IdTokenInvalid("no sub".into()))?
            .to_owned();
        // The adapter validated `iss`; take the provider's own value rather than trust the map.
        let issuer = provider.issuer().to_owned();

        let session_id = SessionId::generate(self.ports.random.as_ref());
        let key = session_id.key();
        let expiry = self.policy.lifetime.for_new_session(now);
        let session = Session {
            tokens: vault::seal(self.ports.cipher.as_ref(), &key, &login.tokens)?,
            key,
            provider: provider.id().clone(),
            issuer,
            subject,
            provider_session_id: login.claims.session_id().map(str::to_owned),
            access_token_expires_at: login.tokens.access_token_expires_at,
            claims: login.claims,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: expiry.idle,
            absolute_expires_at: expiry.absolute,
            version: 0,
        };
        // A browser that logs in again leaves its old session behind: end it first, so a store
        // failure here leaves no new session behind either.
        if let Some(previous) = input.previous_session {
            self.ports.sessions.delete(&previous.key()).await?;
        }
        self.ports.sessions.create(&session).await?;
        Ok(CompletedLogin {
            session_id,
            return_url: pending.return_url,
            expires_at: session.expires_at(),
        })
    }

    /// Loads a live session and records its use (sliding expiry).
    async fn live_session(&self, id: &SessionId) -> Result<Session, SessionError> {
        let now = self.ports.clock.now();
        let key = id.key();
        let mut session = self
            .ports
            .sessions
            .get(&key, now)
            .await?
            .filter(|s| !s.is_expired(now))
            .ok_or(SessionError::NoSession)?;
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

    /// The current session, for `/bff/user` and `/bff/session`.
    ///
    /// # Errors
    /// `NoSession`; `Store` when the store fails.
    pub async fn current_session(&self, id: &SessionId) -> Result<SessionView, SessionError> {
        let session = self.live_session(id).await?;
        Ok(SessionView {
            logout_token: logout_token(&session.key),
            expires_at: session.expires_at(),
            access_token_expires_at: session.access_token_expires_at,
            provider: session.provider,
            claims: session.claims,
        })
    }

    /// The user's claims: the ID token's, plus the userinfo endpoint's when the policy asks.
    ///
    /// # Errors
    /// `NoSession`; `Store`; `Cipher`; `Provider` when userinfo fails.
    pub async fn userinfo(&self, id: &SessionId) -> Result<Claims, SessionError> {
        let session = self.live_session(id).await?;
        let mut claims = session.claims.clone();
        if self.policy.fetch_userinfo {
            let provider = self
                .providers
                .get(Some(&session.provider))
                .ok_or(SessionError::NoSession)?;
            let tokens = vault::open(self.ports.cipher.as_ref(), &session.key, &session.tokens)?;
            if let Some(extra) = provider
                .userinfo(&tokens.access_token, &session.subject)
                .await?
            {
                claims.merge_missing(&extra);
            }
        }
        Ok(claims)
    }

    /// Refreshes the tokens now, once per session even under concurrent calls.
    ///
    /// # Errors
    /// See [`RefreshError`]. When the provider refuses, the session is ended.
    pub async fn refresh(&self, id: &SessionId) -> Result<RefreshOutcome, RefreshError> {
        let session = self.live_session(id).await.map_err(session_to_refresh)?;
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
        let session = self.live_session(id).await.map_err(session_to_refresh)?;
        let now = self.ports.clock.now();
        let due = session
            .access_token_expires_at
            .is_some_and(|exp| exp <= now.plus(self.policy.refresh_margin));
        if due {
            return Ok(self.refresh_session(session).await?.access_token);
        }
        let tokens = vault::open(self.ports.cipher.as_ref(), &session.key, &session.tokens)?;
        Ok(tokens.access_token)
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
        }
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
            return Ok(vault::open(
                self.ports.cipher.as_ref(),
                &current.key,
                &current.tokens,
            )?);
        }
        self.refresh_holding_lease(current).await
    }

    async fn refresh_holding_lease(&self, session: Session) -> Result<TokenSet, RefreshError> {
        let cipher = self.ports.cipher.as_ref();
        let provider = self
            .providers
            .get(Some(&session.provider))
            .ok_or(RefreshError::NoSession)?;
        let old = vault::open(cipher, &session.key, &session.tokens)?;
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
        let mut current = session;
        for _ in 0..UPDATE_ATTEMPTS {
            current.tokens = vault::seal(cipher, &current.key, &tokens)?;
            current.access_token_expires_at = tokens.access_token_expires_at;
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

    /// Ends the session: deletes it, revokes the refresh token when the provider can, and gives
    /// the provider's end-session URL. `expected_logout_token` is checked when given (logout by
    /// `GET` link).
    ///
    /// # Errors
    /// `NoSession`; `LogoutTokenMismatch`; `Store`.
    pub async fn logout(
        &self,
        id: &SessionId,
        expected_logout_token: Option<&str>,
    ) -> Result<LogoutOutcome, LogoutError> {
        let now = self.ports.clock.now();
        let key = id.key();
        let session = self
            .ports
            .sessions
            .get(&key, now)
            .await?
            .ok_or(LogoutError::NoSession)?;
        if let Some(token) = expected_logout_token
            && !constant_time_eq(token.as_bytes(), logout_token(&key).as_bytes())
        {
            return Err(LogoutError::LogoutTokenMismatch);
        }
        self.ports.sessions.delete(&key).await?;
        // Tokens that cannot be opened (rotated-out key) still let the session end.
        let tokens = vault::open(self.ports.cipher.as_ref(), &key, &session.tokens).ok();
        let Some(provider) = self.providers.get(Some(&session.provider)) else {
            return Ok(LogoutOutcome {
                logout_url: None,
                revocation_error: None,
            });
        };
        let mut revocation_error = None;
        if let Some(refresh_token) = tokens.as_ref().and_then(|t| t.refresh_token.as_ref()) {
            revocation_error = provider.revoke_refresh_token(refresh_token).await.err();
        }
        let id_token = tokens.as_ref().and_then(|t| t.id_token.as_ref());
        Ok(LogoutOutcome {
            // TODO(issue 6): remember this state for the post-logout redirect and check it there.
            logout_url: provider.end_session_url(
                id_token,
                &LoginBinding::generate(self.ports.random.as_ref()).hash(),
            ),
            revocation_error,
        })
    }
}

fn session_to_refresh(e: SessionError) -> RefreshError {
    match e {
        SessionError::NoSession => RefreshError::NoSession,
        SessionError::Store(e) => RefreshError::Store(e),
        SessionError::Cipher(e) => RefreshError::Cipher(e),
        SessionError::Provider(e) => RefreshError::Provider(e),
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
