//! The operators' view of sessions: list a user's sessions, revoke one, or revoke all of them.
//!
//! Operators never see a session id or a session key. Each session is shown under an opaque
//! [`SessionHandle`]: the first 128 bits of `SHA-256("bff-admin-handle/v1:" || session key)`,
//! hex. The key is itself a SHA-256 of the cookie value, so a handle cannot be turned back into
//! a cookie (preimage of two hashes) nor used as a store key (a different hash, and only 32 hex
//! digits where a key has 64); the domain prefix keeps it distinct from the logout guard, which
//! hashes the same key under another prefix.
//!
//! A user is `(issuer, subject)`; without an issuer the use cases look at every configured
//! provider's issuer. Revoking one session looks it up among that user's sessions only (the cost
//! is that user's session count, never a scan of the store). Revoking revokes the refresh tokens
//! at the providers best effort, the first login's and every connected provider's, as logout
//! does: the sessions are gone either way.
//!
//! Each session shows the user-agent summary recorded at login (`"Firefox 133 on Linux"`: fixed
//! words and a short version, never the header). A handle follows the session key, so it changes
//! when the session id is renewed; a listing is a snapshot.

use std::collections::BTreeSet;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;

use super::Bff;
use crate::ids::{ProviderId, hex_sha256};
use crate::ports::{ProviderError, SessionEndReason, StoreError};
use crate::secret::constant_time_eq;
use crate::session::Session;
use crate::time::Timestamp;
use crate::vault;

/// Longest `sub` or `iss` the admin use cases accept (OIDC Core caps `sub` at 255 ASCII
/// characters; issuers are URLs of similar size). Longer values are refused before any store
/// call.
const MAX_IDENTIFIER_LEN: usize = 255;

/// Hex digits in a [`SessionHandle`] (128 bits).
const HANDLE_CHARS: usize = 32;

/// How many refresh tokens revoking all of a user's sessions revokes at once: a user with many
/// sessions is not revoked one provider round trip after another, nor all at once.
const CONCURRENT_REVOCATIONS: usize = 8;

/// An opaque name for one session in the admin API, derived from the session key (see the module
/// docs). It is not a credential and not a store key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(String);

impl SessionHandle {
    /// The handle of the session stored under `key`.
    fn of(session: &Session) -> Self {
        let mut handle =
            hex_sha256(format!("bff-admin-handle/v1:{}", session.key.as_str()).as_bytes());
        handle.truncate(HANDLE_CHARS);
        Self(handle)
    }

    /// Parses a handle an operator sent.
    ///
    /// # Errors
    /// [`AdminError::InvalidHandle`] unless the value is 32 lowercase hex digits.
    pub fn parse(value: &str) -> Result<Self, AdminError> {
        if value.len() == HANDLE_CHARS
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(AdminError::InvalidHandle)
        }
    }

    /// The handle as shown to operators.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One session as operators see it: no token, no session id, no session key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The opaque handle to revoke it by.
    pub handle: SessionHandle,
    /// The provider that authenticated the user.
    pub provider: ProviderId,
    /// `iss` of the session.
    pub issuer: String,
    /// `sub` of the session.
    pub subject: String,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When it was last used.
    pub last_seen_at: Timestamp,
    /// When it ends unless used again.
    pub idle_expires_at: Timestamp,
    /// When it ends whatever happens.
    pub absolute_expires_at: Timestamp,
    /// The summary of the login's `User-Agent` (`"Chrome 131 on Linux"`), when it sent one.
    pub user_agent: Option<String>,
}

/// Output of the revoking use cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// Sessions deleted.
    pub sessions: u64,
    /// Refresh tokens (the first login's and connected providers') the providers did not
    /// confirm revoking (unreachable, refused); the sessions are deleted anyway.
    pub revocation_failures: u64,
}

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `sub` is empty or too long.
    #[error("invalid subject")]
    InvalidSubject,
    /// `iss` is empty or too long.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// The handle is not 32 lowercase hex digits.
    #[error("invalid session handle")]
    InvalidHandle,
    /// No live session of that user has that handle.
    #[error("no such session")]
    NoSuchSession,
    /// A store failed; what was revoked before stays revoked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn checked(value: &str, error: AdminError) -> Result<&str, AdminError> {
    if value.is_empty() || value.len() > MAX_IDENTIFIER_LEN {
        Err(error)
    } else {
        Ok(value)
    }
}

impl Bff {
    /// The issuers a user may have sessions at: `issuer` when given, else every configured
    /// provider's (each once).
    fn admin_issuers(&self, issuer: Option<&str>) -> Result<BTreeSet<String>, AdminError> {
        match issuer {
            Some(issuer) => Ok(BTreeSet::from([checked(
                issuer,
                AdminError::InvalidIssuer,
            )?
            .to_owned()])),
            None => Ok(self
                .providers
                .all()
                .map(|p| p.issuer().to_owned())
                .collect()),
        }
    }

    /// Live sessions of `subject` at `issuer` (every configured issuer when `None`).
    async fn sessions_of(
        &self,
        subject: &str,
        issuer: Option<&str>,
    ) -> Result<Vec<Session>, AdminError> {
        let subject = checked(subject, AdminError::InvalidSubject)?;
        let issuers = self.admin_issuers(issuer)?;
        let now = self.ports.clock.now();
        let mut sessions = Vec::new();
        for issuer in &issuers {
            sessions.extend(
                self.ports
                    .sessions
                    .find_by_subject(issuer, subject, now)
                    .await?,
            );
        }
        sessions
            .sort_by(|a, b| (a.created_at, a.key.as_str()).cmp(&(b.created_at, b.key.as_str())));
        Ok(sessions)
    }

    /// The live sessions of `subject` at `issuer` (every configured issuer when `None`), oldest
    /// first.
    ///
    /// # Errors
    /// `InvalidSubject`, `InvalidIssuer`; `Store`.
    pub async fn admin_list_sessions(
        &self,
        subject: &str,
        issuer: Option<&str>,
    ) -> Result<Vec<SessionSummary>, AdminError> {
        Ok(self
            .sessions_of(subject, issuer)
            .await?
            .into_iter()
            .map(|s| SessionSummary {
                handle: SessionHandle::of(&s),
                provider: s.provider,
                issuer: s.issuer,
                subject: s.subject,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                idle_expires_at: s.idle_expires_at,
                absolute_expires_at: s.absolute_expires_at,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// Revokes the session of `subject` (at `issuer`, or any configured issuer) with `handle`,
    /// and its refresh tokens at the providers, best effort (see [`Self::admin_revoke_all`]).
    ///
    /// # Errors
    /// `InvalidSubject`, `InvalidIssuer`; `NoSuchSession` when none of the user's live sessions
    /// has that handle; `Store`.
    pub async fn admin_revoke_session(
        &self,
        subject: &str,
        issuer: Option<&str>,
        handle: &SessionHandle,
    ) -> Result<Revoked, AdminError> {
        let session = self
            .sessions_of(subject, issuer)
            .await?
            .into_iter()
            .find(|s| constant_time_eq(SessionHandle::of(s).0.as_bytes(), handle.0.as_bytes()))
            .ok_or(AdminError::NoSuchSession)?;
        let deleted = self.ports.sessions.delete(&session.key).await?;
        self.sessions_ended(SessionEndReason::Admin, u64::from(deleted));
        if !deleted {
            // Ended between the lookup and the delete (logout, expiry): nothing left to revoke.
            return Err(AdminError::NoSuchSession);
        }
        let revocation_failures = self.revoke_refresh_tokens(&[session]).await;
        Ok(Revoked {
            sessions: 1,
            revocation_failures,
        })
    }

    /// Revokes every session of `subject` (at `issuer`, or every configured issuer) and their
    /// refresh tokens at the providers, the first login's and every connected provider's,
    /// best effort.
    ///
    /// # Errors
    /// `InvalidSubject`, `InvalidIssuer`; `Store` (sessions deleted before stay deleted).
    pub async fn admin_revoke_all(
        &self,
        subject: &str,
        issuer: Option<&str>,
    ) -> Result<Revoked, AdminError> {
        // Read first: the refresh tokens to revoke are in the sessions about to be deleted.
        let sessions = self.sessions_of(subject, issuer).await?;
        let mut deleted = 0;
        for issuer in self.admin_issuers(issuer)? {
            deleted += self
                .ports
                .sessions
                .delete_by_subject(&issuer, subject)
                .await?;
        }
        self.sessions_ended(SessionEndReason::Admin, deleted);
        let revocation_failures = self.revoke_refresh_tokens(&sessions).await;
        Ok(Revoked {
            sessions: deleted,
            revocation_failures,
        })
    }

    /// Revokes the refresh tokens of deleted `sessions`, the first login's and every connected
    /// provider's, as logout does, [`CONCURRENT_REVOCATIONS`] at a time; returns how many the
    /// providers did not confirm. Tokens that no longer open and providers no longer configured
    /// are skipped (nothing to revoke with).
    async fn revoke_refresh_tokens(&self, sessions: &[Session]) -> u64 {
        // Boxed in a loop rather than through iterator closures: closures over borrowed sessions
        // make the future's `Send` proof fail for the HTTP handlers that await it.
        let mut revocations: Vec<BoxFuture<'_, Option<ProviderError>>> = Vec::new();
        for session in sessions {
            revocations.push(Box::pin(self.revoke_first_login(session)));
            for connection in &session.connections {
                revocations.push(Box::pin(self.revoke_connection(&session.key, connection)));
            }
        }
        futures_util::stream::iter(revocations)
            .buffer_unordered(CONCURRENT_REVOCATIONS)
            .fold(0, |failures, failed| {
                std::future::ready(failures + u64::from(failed.is_some()))
            })
            .await
    }

    /// Revokes the refresh token of a deleted session's first login, when it has one, its tokens
    /// open and its provider is still configured; the provider's error if it failed.
    async fn revoke_first_login(&self, session: &Session) -> Option<ProviderError> {
        let provider = self.providers.get(Some(&session.provider))?;
        let tokens = vault::open(self.ports.cipher.as_ref(), &session.key, &session.tokens).ok()?;
        let refresh_token = tokens.refresh_token.as_ref()?;
        provider.revoke_refresh_token(refresh_token).await.err()
    }
}

#[cfg(test)]
mod tests;
