//! The API proxy's credential decision: which credential, if any, a request that the allowlist
//! resolved (a [`ProxyTarget`]) carries upstream.
//!
//! - `none` routes get [`UpstreamCredential::None`], with or without a session: the session is
//!   not even looked up, so a public upstream never sees a token by mistake.
//! - `user` routes need a live session holding tokens of the route's provider
//!   ([`check_provider`]: the session's own provider when the route names none, else the named
//!   one, which must be the session's own or connected to it; never another provider's token
//!   instead), then that provider's access token, refreshed first through the single-flight
//!   path (per session and provider) when it expires within the policy's margin, and only then
//!   the route's required scopes are checked against that token set's granted `scope`
//!   ([`check_scopes`]).
//! - `client` routes get the BFF's own client-credentials token of the route's provider (the
//!   default provider when the route names none), asking for the route's required scopes, with
//!   or without a session (the session is not read). The token comes from the process's cache
//!   (`client_tokens`: shared by every session, reused until shortly before it expires,
//!   fetched single-flight); the scopes are then checked against the granted `scope` when the
//!   provider states one.
//! - `user_or_client` routes follow the `user` rules when the browser has a live session, and
//!   get the client token when it has none (no cookie, or one whose session is gone). A live
//!   session that may not use the route is refused as on a `user` route, not downgraded.
//!
//! The credential is a type rather than a bare string so that a sender-constrained form (DPoP)
//! can be added without touching the forwarder's callers.

mod client_tokens;

use std::sync::Arc;

pub(crate) use client_tokens::ClientTokenCache;

use super::Bff;
use super::refresh::RefreshError;
use super::session::SessionError;
use crate::allowlist::{ProxyRefusal, ProxyTarget, TokenPolicy, check_provider, check_scopes};
use crate::ids::{ProviderId, SessionId};
use crate::ports::ProviderError;
use crate::secret::Secret;

/// What the forwarder attaches to the upstream request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamCredential {
    /// Nothing: the upstream gets no `Authorization` header at all.
    None,
    /// `Authorization: Bearer <token>`. `Debug` shows `[redacted]`.
    Bearer(Secret),
}

/// Why no credential could be decided for a proxied request.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The route needs the user's token and there is no live session.
    #[error("no session")]
    NoSession,
    /// The session cannot use this route: a provider it has not connected
    /// (`provider_not_connected`) or missing scopes (`insufficient_scope`).
    #[error(transparent)]
    Refused(ProxyRefusal),
    /// Getting a fresh access token failed: the provider refused the refresh (the session is
    /// ended), the tokens no longer open (ended too), or a store or the provider is down (the
    /// session is kept). Never [`RefreshError::NoSession`], which is [`ProxyError::NoSession`],
    /// nor [`RefreshError::NotConnected`], which is a [`ProxyRefusal::ProviderNotConnected`].
    #[error(transparent)]
    Token(RefreshError),
    /// The BFF's client-credentials token could not be had: the provider refused the grant,
    /// answered malformed, or could not be reached. Every caller that waited for the same fetch
    /// gets the same error, hence the `Arc`.
    #[error("no client-credentials token")]
    ClientToken(#[source] Arc<ProviderError>),
    /// The route names a provider that is not configured (route configuration checks this, so
    /// only a host that skipped the check gets here).
    #[error("provider {0} is not configured")]
    UnknownProvider(ProviderId),
}

impl ProxyError {
    /// Whether the browser's session is over after this error (its cookie should go).
    pub fn ends_session(&self) -> bool {
        match self {
            Self::NoSession => true,
            Self::Token(e) => e.ends_session(),
            Self::Refused(_) | Self::ClientToken(_) | Self::UnknownProvider(_) => false,
        }
    }
}

impl From<RefreshError> for ProxyError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::NoSession => Self::NoSession,
            RefreshError::NotConnected(required) => {
                Self::Refused(ProxyRefusal::ProviderNotConnected { required })
            }
            other => Self::Token(other),
        }
    }
}

impl From<SessionError> for ProxyError {
    fn from(e: SessionError) -> Self {
        RefreshError::from(e).into()
    }
}

impl Bff {
    /// The credential for a request the allowlist resolved to `target`, for the browser whose
    /// session cookie carried `session` (if any).
    ///
    /// # Errors
    /// See [`ProxyError`]. A refused refresh ends the session.
    pub async fn upstream_credential(
        &self,
        session: Option<&SessionId>,
        target: &ProxyTarget<'_>,
    ) -> Result<UpstreamCredential, ProxyError> {
        match target.token() {
            TokenPolicy::None => Ok(UpstreamCredential::None),
            TokenPolicy::User => self.user_credential(session, target).await,
            TokenPolicy::Client => self.client_credential(target).await,
            TokenPolicy::UserOrClient => match self.user_credential(session, target).await {
                // No live session (no cookie, an unknown or expired one): the BFF's own token.
                Err(ProxyError::NoSession) => self.client_credential(target).await,
                user => user,
            },
        }
    }

    /// The session's access token for a route that takes the user's token.
    async fn user_credential(
        &self,
        session: Option<&SessionId>,
        target: &ProxyTarget<'_>,
    ) -> Result<UpstreamCredential, ProxyError> {
        let id = session.ok_or(ProxyError::NoSession)?;
        let session = self.live_session(id).await?;
        // Before any refresh: a route this session cannot use must not spend a refresh token.
        let provider = check_provider(target.route(), &session.provider, |p| {
            session.connection(p).is_some()
        })
        .map_err(ProxyError::Refused)?;
        let tokens = self.fresh_tokens(session, &provider).await?;
        check_scopes(target.route(), tokens.scope.as_deref()).map_err(ProxyError::Refused)?;
        Ok(UpstreamCredential::Bearer(tokens.access_token))
    }

    /// The BFF's client-credentials token for the route's provider and required scopes.
    async fn client_credential(
        &self,
        target: &ProxyTarget<'_>,
    ) -> Result<UpstreamCredential, ProxyError> {
        let route = target.route();
        // `None` is the default provider, which always exists; only a named one can be missing.
        let Some(provider) = self.providers.get(route.provider()) else {
            let named = route.provider().cloned();
            return Err(ProxyError::UnknownProvider(
                named.unwrap_or_else(|| self.providers.default.clone()),
            ));
        };
        let key = (provider.id().clone(), route.required_scopes().clone());
        let token = self
            .client_tokens
            .get(
                key,
                self.ports.clock.as_ref(),
                self.policy.refresh_margin,
                || async {
                    let scopes: Vec<String> = route.required_scopes().iter().cloned().collect();
                    provider
                        .client_credentials(&scopes, self.ports.clock.now())
                        .await
                },
            )
            .await
            .map_err(ProxyError::ClientToken)?;
        // No `scope` in the answer: granted as requested (RFC 6749 section 5.1).
        if token.scope.is_some() {
            check_scopes(route, token.scope.as_deref()).map_err(ProxyError::Refused)?;
        }
        Ok(UpstreamCredential::Bearer(token.access_token))
    }
}

#[cfg(test)]
mod tests;
