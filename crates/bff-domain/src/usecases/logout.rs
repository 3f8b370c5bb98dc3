//! Ending a session from the browser (RP-initiated logout): delete it, revoke the refresh token
//! when the provider can (the primary login's and every connected provider's), and hand back the
//! primary provider's end-session URL with a `state` that is checked when the provider sends the
//! browser back.
//!
//! A logout by `GET` link must carry the session's logout guard (a hash of the session key, see
//! `SessionView::logout_guard`), so a cross-site link cannot log the user out.

use super::Bff;
use super::session::logout_guard;
use crate::ids::{PostLogoutState, ProviderId, SessionId, SessionKey};
use crate::ports::{ProviderError, SessionEndReason, StoreError};
use crate::secret::constant_time_eq;
use crate::session::Connection;
use crate::vault;

/// Output of [`Bff::logout`].
#[derive(Debug)]
pub struct LogoutOutcome {
    /// Where to send the browser for RP-initiated logout at the provider, when it has one.
    pub logout_url: Option<String>,
    /// The `state` in `logout_url`, to keep in the browser (a short-lived cookie) and pass to
    /// [`Bff::complete_logout`] when the provider redirects back. `None` without `logout_url`.
    pub return_state: Option<PostLogoutState>,
    /// The refresh-token revocation failed (the session is gone anyway); for the log.
    pub revocation_error: Option<ProviderError>,
    /// Connected providers whose refresh-token revocation failed, each with why; for the log.
    pub connection_revocation_errors: Vec<(ProviderId, ProviderError)>,
}

/// Why a logout was refused.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// No session to end.
    #[error("no session")]
    NoSession,
    /// A `GET` logout link carried the wrong (or no) logout guard.
    #[error("logout guard mismatch")]
    LogoutGuardMismatch,
    /// The provider's redirect after logout carried no `state`, or not the one this browser
    /// sent.
    #[error("post-logout state mismatch")]
    StateMismatch,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LogoutError {
    /// Whether the browser's session is over after this error (its cookie should go).
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::NoSession)
    }
}

impl Bff {
    /// Ends the session: deletes it, revokes the refresh token when the provider can, and gives
    /// the provider's end-session URL. `expected_guard` is checked when given (logout by `GET`
    /// link).
    ///
    /// # Errors
    /// `NoSession`; `LogoutGuardMismatch`; `Store`.
    pub async fn logout(
        &self,
        id: &SessionId,
        expected_guard: Option<&str>,
    ) -> Result<LogoutOutcome, LogoutError> {
        let now = self.ports.clock.now();
        // Through a renewal alias too: the old cookie of a renewed session still logs it out
        // during the grace period, and so does the guard of a link made for that cookie.
        let session = self
            .find_session(&id.key(), now)
            .await?
            .ok_or(LogoutError::NoSession)?;
        let key = session.key.clone();
        if let Some(guard) = expected_guard
            && !constant_time_eq(guard.as_bytes(), logout_guard(&key).as_bytes())
            && !constant_time_eq(guard.as_bytes(), logout_guard(&id.key()).as_bytes())
        {
            return Err(LogoutError::LogoutGuardMismatch);
        }
        if self.ports.sessions.delete(&key).await? {
            self.sessions_ended(SessionEndReason::Logout, 1);
        }
        let mut connection_revocation_errors = Vec::new();
        for connection in &session.connections {
            if let Some(e) = self.revoke_connection(&key, connection).await {
                connection_revocation_errors.push((connection.provider.clone(), e));
            }
        }
        // Tokens that cannot be opened (rotated-out key) still let the session end.
        let tokens = vault::open(self.ports.cipher.as_ref(), &key, &session.tokens).ok();
        let Some(provider) = self.providers.get(Some(&session.provider)) else {
            return Ok(LogoutOutcome {
                logout_url: None,
                return_state: None,
                revocation_error: None,
                connection_revocation_errors,
            });
        };
        let mut revocation_error = None;
        if let Some(refresh_token) = tokens.as_ref().and_then(|t| t.refresh_token.as_ref()) {
            revocation_error = provider.revoke_refresh_token(refresh_token).await.err();
        }
        let id_token = tokens.as_ref().and_then(|t| t.id_token.as_ref());
        let state = PostLogoutState::generate(self.ports.random.as_ref());
        let logout_url = provider.end_session_url(id_token, state.expose());
        Ok(LogoutOutcome {
            return_state: logout_url.as_ref().map(|_| state),
            logout_url,
            revocation_error,
            connection_revocation_errors,
        })
    }

    /// Revokes the refresh token of a connection of the session `key`, when it has one, its
    /// tokens open and its provider is still configured; the provider's error if it failed.
    pub(super) async fn revoke_connection(
        &self,
        key: &SessionKey,
        connection: &Connection,
    ) -> Option<ProviderError> {
        let provider = self.providers.get(Some(&connection.provider))?;
        let tokens = vault::open_connection(
            self.ports.cipher.as_ref(),
            key,
            &connection.provider,
            &connection.tokens,
        )
        .ok()?;
        let refresh_token = tokens.refresh_token.as_ref()?;
        provider.revoke_refresh_token(refresh_token).await.err()
    }

    /// Checks the provider's redirect back after logout: `returned` (its `state` parameter)
    /// must be the state this browser kept (`expected`, from its cookie).
    ///
    /// # Errors
    /// `StateMismatch` when either is missing or they differ.
    pub fn complete_logout(
        &self,
        returned: Option<&str>,
        expected: Option<&PostLogoutState>,
    ) -> Result<(), LogoutError> {
        match (returned, expected) {
            (Some(returned), Some(expected)) if expected.matches(returned) => Ok(()),
            _ => Err(LogoutError::StateMismatch),
        }
    }
}
