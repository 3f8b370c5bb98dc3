//! Logging in: start an authorization request (code + PKCE S256, state, nonce, browser
//! binding), then complete it from the provider's response and create a session under a new id.
//!
//! Connecting (`connect`): a login started from a live session ([`Bff::start_connect`]) adds
//! that provider's tokens to the same session instead. The pending login remembers the session
//! by its key (the hash, never the id), because the provider's redirect back does not carry the
//! `SameSite=Strict` session cookie; the callback validates the ID token as for any login and
//! then adds or replaces that provider's connection, keeping the session's id and identity. The
//! primary provider cannot be connected again, and a session that ended meanwhile gets nothing.

use std::time::Duration;

use super::Bff;
use super::session::SessionError;
use crate::client::{ClientContext, user_agent_summary};
use crate::ids::{LoginBinding, Prompt, ProviderId, SessionId, SessionKey};
use crate::pending::PendingLogin;
use crate::ports::{
    CipherError, Event, INVALID_GRANT, ProviderError, SessionEndReason, StoreError,
};
use crate::return_url::ReturnUrl;
use crate::secret::constant_time_eq;
use crate::session::{Connection, Session};
use crate::time::Timestamp;
use crate::vault;

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
    /// How long the binding cookie should live: as long as the login can be completed.
    pub binding_max_age: Duration,
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
    /// The browser completing the login: its binding and user-agent summary go into the
    /// session.
    pub client: ClientContext,
}

/// Output of [`Bff::complete_login`].
#[derive(Debug)]
pub struct CompletedLogin {
    /// The new session id, for the cookie; `None` when the login connected a provider to the
    /// browser's existing session, whose id and cookie stay as they are.
    pub session_id: Option<SessionId>,
    /// The provider whose tokens joined the existing session, when the login was a connect.
    pub connected: Option<ProviderId>,
    /// How long the session cookie should live: the absolute session limit. The server decides
    /// expiry; a cookie that died at the first idle expiry would end sessions the server slid.
    pub cookie_max_age: Duration,
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
    /// A connect needs a live session: there is none, it ended before the provider answered, or
    /// the browser now holds another session than the one that started the connect.
    #[error("no session to connect the provider to")]
    NoSession,
    /// A connect named the provider the session logged in with: it has that provider's tokens.
    #[error("the session's own provider cannot be connected again")]
    PrimaryProvider,
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
    /// The provider answered with an OAuth error (e.g. `access_denied`, `login_required`), to
    /// a login whose state, binding and issuer all checked out: `return_url` is where that
    /// login wanted to go, for a host that sends the browser back there anyway (a silent
    /// login's `login_required` is an answer, not a failure).
    #[error("provider returned error {error}")]
    ProviderDenied {
        /// The OAuth `error` code, as the provider sent it.
        error: String,
        /// The login's return URL.
        return_url: ReturnUrl,
    },
    /// Neither `code` nor `error` was sent.
    #[error("authorization response without code")]
    MissingCode,
    /// The ID token failed validation.
    #[error("ID token invalid: {0}")]
    IdTokenInvalid(String),
    /// The token endpoint refused the code (`invalid_grant`); its other refusals are
    /// `Provider`.
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

impl LoginError {
    /// Whether the browser's session is over after this error (its cookie should go): only a
    /// connect that found no live session says so.
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::NoSession)
    }

    /// A stable snake-case code for this failure, for metrics: the variant, never its
    /// contents (a provider's error text or a validation detail could carry anything).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownProvider => "unknown_provider",
            Self::NoSession => "no_session",
            Self::PrimaryProvider => "provider_is_primary",
            Self::StateMismatch => "state_mismatch",
            Self::BindingMissing => "login_binding_missing",
            Self::BindingMismatch => "login_binding_mismatch",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::IssuerMissing => "issuer_missing",
            Self::ProviderDenied { .. } => "provider_denied",
            Self::MissingCode => "missing_code",
            Self::IdTokenInvalid(_) => "id_token_invalid",
            Self::CodeRejected(_) => "code_rejected",
            Self::Provider(_) => "provider_error",
            Self::Store(_) => "store_error",
            Self::Cipher(_) => "cipher_error",
        }
    }
}

impl From<ProviderError> for LoginError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::IdTokenInvalid(reason) => Self::IdTokenInvalid(reason),
            // The code is bad (expired, used, another client's, a wrong PKCE verifier); any
            // other refusal is about this server's request (`invalid_client`), not the code.
            ProviderError::Rejected(code) if code == INVALID_GRANT => Self::CodeRejected(code),
            other => Self::Provider(other),
        }
    }
}

impl Bff {
    /// Starts a login: builds the authorization request and remembers it for the callback.
    ///
    /// # Errors
    /// `UnknownProvider`; `Provider` when the request cannot be built; `Store`.
    pub async fn start_login(&self, input: StartLogin) -> Result<StartedLogin, LoginError> {
        self.start_authorization(input, None).await
    }

    /// Starts a login that connects its provider to the live session `session` (same user, same
    /// session): the callback adds that provider's tokens to it instead of creating a session.
    ///
    /// # Errors
    /// `NoSession` without a live session; `PrimaryProvider` when `input.provider` (or the
    /// default) is the session's own; otherwise as [`Bff::start_login`].
    pub async fn start_connect(
        &self,
        session: &SessionId,
        input: StartLogin,
    ) -> Result<StartedLogin, LoginError> {
        let session = match self
            .connectable_session(session, input.provider.as_ref())
            .await
        {
            Ok(session) => session,
            Err(e) => {
                self.events
                    .record(Event::LoginFailed { reason: e.reason() });
                return Err(e);
            }
        };
        self.start_authorization(input, Some(session)).await
    }

    /// The key of the live session `session` when `provider` (or the default) can be connected
    /// to it.
    async fn connectable_session(
        &self,
        session: &SessionId,
        provider: Option<&ProviderId>,
    ) -> Result<SessionKey, LoginError> {
        let provider = self
            .providers
            .get(provider)
            .ok_or(LoginError::UnknownProvider)?
            .id()
            .clone();
        let session = match self.live_session(session).await {
            Ok(session) => session,
            Err(SessionError::Store(e)) => return Err(LoginError::Store(e)),
            Err(SessionError::Provider(e)) => return Err(LoginError::Provider(e)),
            Err(SessionError::NoSession | SessionError::TokensUnreadable(_)) => {
                return Err(LoginError::NoSession);
            }
        };
        if provider == session.provider {
            return Err(LoginError::PrimaryProvider);
        }
        Ok(session.key)
    }

    /// [`Self::authorization`], counted: started, or failed with its reason.
    async fn start_authorization(
        &self,
        input: StartLogin,
        connect_to: Option<SessionKey>,
    ) -> Result<StartedLogin, LoginError> {
        let result = self.authorization(input, connect_to).await;
        match &result {
            Ok((_, provider)) => self.events.record(Event::LoginStarted { provider }),
            Err(e) => self
                .events
                .record(Event::LoginFailed { reason: e.reason() }),
        }
        result.map(|(started, _)| started)
    }

    async fn authorization(
        &self,
        input: StartLogin,
        connect_to: Option<SessionKey>,
    ) -> Result<(StartedLogin, ProviderId), LoginError> {
        let provider = self
            .providers
            .get(input.provider.as_ref())
            .ok_or(LoginError::UnknownProvider)?;
        let redirect_uri = match input.style {
            LoginStyle::Redirect => &self.policy.callback_url,
            LoginStyle::ApiDriven => &self.policy.app_redirect_url,
        };
        let request = provider.authorization_request(redirect_uri, input.prompt)?;
        let request = provider.push_authorization_request(request).await?;
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
                connect_to,
            })
            .await?;
        Ok((
            StartedLogin {
                authorization_url: request.url,
                binding,
                binding_max_age: self.policy.pending_login_ttl,
                expires_at,
            },
            provider.id().clone(),
        ))
    }

    /// Completes a login from the authorization response: checks state, browser binding and
    /// issuer, exchanges the code, validates the ID token and creates a session under a new id,
    /// or, for a connect, adds the provider's tokens to the session that started it.
    ///
    /// The pending login is consumed before any check, so a state can never be tried twice.
    ///
    /// # Errors
    /// See [`LoginError`]; no session exists afterwards in any error case, and a failed connect
    /// leaves the session as it was.
    pub async fn complete_login(&self, input: CompleteLogin) -> Result<CompletedLogin, LoginError> {
        let result = self.finish_login(input).await;
        match &result {
            Ok((completed, provider)) => {
                self.events.record(Event::LoginCompleted { provider });
                if completed.session_id.is_some() {
                    self.events.record(Event::SessionCreated { provider });
                }
            }
            Err(e) => self
                .events
                .record(Event::LoginFailed { reason: e.reason() }),
        }
        result.map(|(completed, _)| completed)
    }

    /// [`Self::complete_login`] uncounted; also says which provider logged the user in.
    async fn finish_login(
        &self,
        input: CompleteLogin,
    ) -> Result<(CompletedLogin, ProviderId), LoginError> {
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
            return Err(LoginError::ProviderDenied {
                error,
                return_url: pending.return_url,
            });
        }
        let code = input.code.ok_or(LoginError::MissingCode)?;
        if let Some(target) = &pending.connect_to {
            // Before the code is spent: a connect whose session is gone, or is no longer this
            // browser's, has nothing to join.
            let previous = input.previous_session.as_ref().map(SessionId::key);
            if previous.is_some_and(|key| &key != target)
                || self.ports.sessions.get(target, now).await?.is_none()
            {
                return Err(LoginError::NoSession);
            }
        }
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
        if let Some(target) = pending.connect_to {
            let connection = Connection {
                provider: provider.id().clone(),
                access_token_expires_at: login.tokens.access_token_expires_at,
                tokens: vault::seal_connection(
                    self.ports.cipher.as_ref(),
                    &target,
                    provider.id(),
                    &login.tokens,
                )?,
                claims: login.claims,
            };
            let expires_at = self.connect(&target, connection, now).await?;
            let completed = CompletedLogin {
                session_id: None,
                connected: Some(provider.id().clone()),
                cookie_max_age: self.policy.lifetime.absolute,
                return_url: pending.return_url,
                expires_at,
            };
            return Ok((completed, provider.id().clone()));
        }

        let session_id = SessionId::generate(self.ports.random.as_ref());
        let key = session_id.key();
        let expiry = self.policy.lifetime.bounded_by_refresh_token(
            now,
            self.policy.lifetime.for_new_session(now),
            login.tokens.refresh_token_expires_at,
        );
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
            id_issued_at: now,
            client_binding: self.policy.client_binding.binding_for(&input.client),
            user_agent: input.client.user_agent.as_deref().map(user_agent_summary),
            idle_expires_at: expiry.idle,
            absolute_expires_at: expiry.absolute,
            version: 0,
            connections: Vec::new(),
        };
        // A browser that logs in again leaves its old session behind: end it first, so a store
        // failure here leaves no new session behind either.
        if let Some(previous) = input.previous_session
            && self.ports.sessions.delete(&previous.key()).await?
        {
            self.sessions_ended(SessionEndReason::Replaced, 1);
        }
        self.ports.sessions.create(&session).await?;
        let completed = CompletedLogin {
            session_id: Some(session_id),
            connected: None,
            cookie_max_age: self.policy.lifetime.absolute,
            return_url: pending.return_url,
            expires_at: session.expires_at(),
        };
        Ok((completed, session.provider))
    }

    /// Adds `connection` to the session `key`, in place of an earlier connection of the same
    /// provider, with a version-checked update that re-reads on a conflict so a concurrent
    /// refresh is never lost. Returns when the session ends unless used.
    ///
    /// The replaced connection's refresh token is not revoked, as a new login does not revoke
    /// the session it replaces: providers that reuse the user's grant for the new login (the
    /// local `oidc-provider` does) revoke the whole grant with it, new tokens included.
    async fn connect(
        &self,
        key: &SessionKey,
        connection: Connection,
        now: Timestamp,
    ) -> Result<Timestamp, LoginError> {
        for _ in 0..CONNECT_ATTEMPTS {
            let mut session = self
                .ports
                .sessions
                .get(key, now)
                .await?
                .ok_or(LoginError::NoSession)?;
            if session.provider == connection.provider {
                return Err(LoginError::PrimaryProvider);
            }
            session
                .connections
                .retain(|c| c.provider != connection.provider);
            session.connections.push(connection.clone());
            match self.ports.sessions.update(&session, now).await {
                Ok(_) => return Ok(session.expires_at()),
                Err(StoreError::Conflict) => {}
                Err(StoreError::NotFound) => return Err(LoginError::NoSession),
                Err(e) => return Err(e.into()),
            }
        }
        Err(LoginError::Store(StoreError::Conflict))
    }
}

/// Attempts at adding a connection when other writers change the session meanwhile.
const CONNECT_ATTEMPTS: usize = 3;
