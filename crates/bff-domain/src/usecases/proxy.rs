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
//! - `client` and `user_or_client` need the BFF's client-credentials token, which does not exist
//!   yet: [`ProxyError::Unsupported`]. Route configuration refuses them before this is reached.
//!
//! The credential is a type rather than a bare string so that a sender-constrained form (DPoP)
//! can be added without touching the forwarder's callers.

use super::Bff;
use super::refresh::RefreshError;
use super::session::SessionError;
use crate::allowlist::{ProxyRefusal, ProxyTarget, TokenPolicy, check_provider, check_scopes};
use crate::ids::SessionId;
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
    /// The route's token policy needs a client-credentials token, which is not supported yet.
    #[error("the {} token policy is not supported yet", .0.as_str())]
    Unsupported(TokenPolicy),
}

impl ProxyError {
    /// Whether the browser's session is over after this error (its cookie should go).
    pub fn ends_session(&self) -> bool {
        match self {
            Self::NoSession => true,
            Self::Token(e) => e.ends_session(),
            Self::Refused(_) | Self::Unsupported(_) => false,
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
            TokenPolicy::User => {
                let id = session.ok_or(ProxyError::NoSession)?;
                let session = self.live_session(id).await?;
                // Before any refresh: a route this session cannot use must not spend a refresh
                // token.
                let provider = check_provider(target.route(), &session.provider, |p| {
                    session.connection(p).is_some()
                })
                .map_err(ProxyError::Refused)?;
                let tokens = self.fresh_tokens(session, &provider).await?;
                check_scopes(target.route(), tokens.scope.as_deref())
                    .map_err(ProxyError::Refused)?;
                Ok(UpstreamCredential::Bearer(tokens.access_token))
            }
            policy @ (TokenPolicy::Client | TokenPolicy::UserOrClient) => {
                Err(ProxyError::Unsupported(policy))
            }
        }
    }
}

#[cfg(test)]
mod tests;
