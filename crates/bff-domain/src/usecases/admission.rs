//! The per-request gate a host runs before a use case when session ids are renewed or sessions
//! are bound to their client ([`Bff::admit_session`]); with both off it does nothing and asks no
//! store anything.
//!
//! Renewal: a session whose id is older than [`SessionRenewal::after`] gets a new id on its next
//! request. The old id stays an alias of the new one for [`SessionRenewal::grace`], so the other
//! requests of the same tab still carrying the old cookie succeed; each of them is given the new
//! id again (it is `SessionId::renewed(old id, nonce)`, the nonce kept with the alias), so a lost
//! answer does not lose the session. The steps, each safe to interrupt:
//!
//! 1. take the session's refresh leases (every provider of it), so no refresh of the old key is
//!    in flight and none starts; when one is held, renewal waits for a later request;
//! 2. record the alias with insert-if-absent: of concurrent renewals of one id exactly one goes
//!    on, the others answer with its new id once its session exists;
//! 3. re-read the session, re-seal its tokens for the new key (the vault binds them to the key),
//!    create it under the new key, delete the old key.
//!
//! An interruption after 2 leaves the old session in place and the alias pointing at nothing:
//! requests go on with the old id until the alias expires and the renewal is tried again.
//!
//! Binding: the session's stored binding is compared with the request's client; a mismatch ends
//! the session in `strict` mode and is reported (for the host's log) in `warn` mode.

use std::time::Duration;

use super::Bff;
use super::refresh::{REFRESH_LEASE, refresh_lease};
use crate::client::{BindingCheck, BindingMode, ClientContext};
use crate::ids::{ProviderId, RenewalNonce, SessionId};
use crate::lifetime::SessionRenewal;
use crate::ports::{CipherError, StoreError};
use crate::session::{RenewalAlias, Session};
use crate::time::Timestamp;
use crate::vault;

/// Output of [`Bff::admit_session`].
#[derive(Debug, Clone)]
pub struct Admission {
    /// The id the request goes on with: the one it carried, or the session's new id.
    pub id: SessionId,
    /// `id` is not the id the request carried: the host sets it as the new cookie.
    pub renewed: bool,
    /// How long the new cookie should live (until the session's absolute expiry); zero when
    /// not renewed.
    pub cookie_max_age: Duration,
    /// The outcome of the binding check; `Mismatch` only in `warn` mode (in `strict` mode it is
    /// an error), for the host to log.
    pub binding: BindingCheck,
}

/// Why a request's session was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The request's client does not match the session's binding (`strict`); the session has
    /// been ended.
    #[error("the session is bound to another client")]
    ClientMismatch,
    /// The session's tokens no longer open; the session has been ended.
    #[error("the session's tokens cannot be opened")]
    TokensUnreadable(#[source] CipherError),
    /// Sealing the tokens for the new id failed (nothing changed).
    #[error("sealing the session's tokens for its new id failed")]
    Sealing(#[source] CipherError),
    /// A store failed (503, never "logged out").
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdmissionError {
    /// Whether the browser's session is over after this error (its cookie should go).
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::ClientMismatch | Self::TokensUnreadable(_))
    }
}

impl Bff {
    /// Whether [`Bff::admit_session`] has anything to do (renewal or binding is on).
    pub fn admission_needed(&self) -> bool {
        self.policy.renewal.is_some() || self.policy.client_binding.mode() != BindingMode::Off
    }

    /// Admits the session `id` for a request from `client`: follows a renewal alias to the
    /// session's new id, checks the client binding, and renews the id when it is due (see the
    /// module docs). An id without a session passes unchanged: the use case that follows
    /// answers `NoSession` as usual.
    ///
    /// # Errors
    /// `ClientMismatch` (strict binding; the session is ended); `TokensUnreadable` (the session
    /// is ended); `Sealing`; `Store` when a store fails.
    pub async fn admit_session(
        &self,
        id: SessionId,
        client: &ClientContext,
    ) -> Result<Admission, AdmissionError> {
        if !self.admission_needed() {
            return Ok(Admission {
                id,
                renewed: false,
                cookie_max_age: Duration::ZERO,
                binding: BindingCheck::NotChecked,
            });
        }
        let now = self.ports.clock.now();
        let own = self
            .ports
            .sessions
            .get(&id.key(), now)
            .await?
            .filter(|s| !s.is_expired(now));
        let (id, session, renewed) = match own {
            Some(session) => (id, session, false),
            None => match self.renewed_session(&id, now).await? {
                Some((new_id, session)) => (new_id, session, true),
                None => {
                    return Ok(Admission {
                        id,
                        renewed: false,
                        cookie_max_age: Duration::ZERO,
                        binding: BindingCheck::NotChecked,
                    });
                }
            },
        };
        let binding = self
            .policy
            .client_binding
            .check(session.client_binding.as_ref(), client);
        if binding == BindingCheck::Mismatch
            && self.policy.client_binding.mode() == BindingMode::Strict
        {
            self.ports.sessions.delete(&session.key).await?;
            return Err(AdmissionError::ClientMismatch);
        }
        if let Some(renewal) = self.policy.renewal
            && !renewed
            && renewal.is_due(session.id_issued_at, now)
            && let Some(new_id) = self.renew(&id, &session, renewal, now).await?
        {
            return Ok(Admission {
                id: new_id,
                renewed: true,
                cookie_max_age: now.until(session.absolute_expires_at),
                binding,
            });
        }
        Ok(Admission {
            id,
            renewed,
            cookie_max_age: if renewed {
                now.until(session.absolute_expires_at)
            } else {
                Duration::ZERO
            },
            binding,
        })
    }

    /// The id under which the session of `id` lives now, without recording a use: `id` itself,
    /// the id it was renewed to (within the grace period), or `None` once the session is gone.
    /// For what outlives the request that authorized it (a proxied WebSocket), so it follows
    /// its session through renewals instead of losing it when the old id's grace period ends.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; an outage says nothing about the session.
    pub async fn current_session_id(
        &self,
        id: &SessionId,
    ) -> Result<Option<SessionId>, StoreError> {
        let now = self.ports.clock.now();
        let own = self.ports.sessions.get(&id.key(), now).await?;
        if own.is_some_and(|s| !s.is_expired(now)) {
            return Ok(Some(id.clone()));
        }
        Ok(self
            .renewed_session(id, now)
            .await?
            .map(|(new_id, _)| new_id))
    }

    /// The new id and live session that `id` was renewed to, within the grace period.
    async fn renewed_session(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<(SessionId, Session)>, StoreError> {
        if self.policy.renewal.is_none() {
            return Ok(None);
        }
        let Some(alias) = self.ports.sessions.get_renewal(&id.key(), now).await? else {
            return Ok(None);
        };
        let new_id = id.renewed(&alias.nonce);
        // Only this id and the stored nonce give the alias's key; anything else is not this
        // id's renewal (a store that was written to by someone else).
        if new_id.key() != alias.new_key {
            return Ok(None);
        }
        Ok(self
            .ports
            .sessions
            .get(&alias.new_key, now)
            .await?
            .filter(|s| !s.is_expired(now))
            .map(|session| (new_id, session)))
    }

    /// Renews the id of `session` holding its refresh leases; `None` when it is not renewed now
    /// (a refresh is in flight, or the session went meanwhile).
    async fn renew(
        &self,
        id: &SessionId,
        session: &Session,
        renewal: SessionRenewal,
        now: Timestamp,
    ) -> Result<Option<SessionId>, AdmissionError> {
        let owner = SessionId::generate(self.ports.random.as_ref()).key();
        let providers: Vec<&ProviderId> = std::iter::once(&session.provider)
            .chain(session.connections.iter().map(|c| &c.provider))
            .collect();
        let mut held = Vec::with_capacity(providers.len());
        let mut all_taken = true;
        for provider in providers {
            let lease = refresh_lease(&session.key, provider);
            match self
                .ports
                .locks
                .try_acquire(&lease, owner.as_str(), REFRESH_LEASE)
                .await
            {
                Ok(true) => held.push(lease),
                Ok(false) => {
                    all_taken = false;
                    break;
                }
                Err(e) => {
                    self.release_all(&held, owner.as_str()).await;
                    return Err(e.into());
                }
            }
        }
        let result = if all_taken {
            self.renew_holding_leases(id, renewal, now).await
        } else {
            Ok(None)
        };
        self.release_all(&held, owner.as_str()).await;
        result
    }

    async fn release_all(&self, leases: &[String], owner: &str) {
        for lease in leases {
            // A lease that cannot be released expires by itself.
            let _ = self.ports.locks.release(lease, owner).await;
        }
    }

    async fn renew_holding_leases(
        &self,
        id: &SessionId,
        renewal: SessionRenewal,
        now: Timestamp,
    ) -> Result<Option<SessionId>, AdmissionError> {
        let old_key = id.key();
        let nonce = RenewalNonce::generate(self.ports.random.as_ref());
        let new_id = id.renewed(&nonce);
        let alias = RenewalAlias {
            new_key: new_id.key(),
            nonce,
            expires_at: now.plus(renewal.grace),
        };
        if !self
            .ports
            .sessions
            .put_renewal(&old_key, &alias, now)
            .await?
        {
            // Another request renewed this id first. Once its session exists that is the one;
            // the old key, if it is still there (its deletion failed), can go.
            let Some((their_id, _)) = self.renewed_session(id, now).await? else {
                return Ok(None);
            };
            let _ = self.ports.sessions.delete(&old_key).await;
            return Ok(Some(their_id));
        }
        // Re-read under the leases, so the tokens copied are the latest.
        let Some(current) = self
            .ports
            .sessions
            .get(&old_key, now)
            .await?
            .filter(|s| !s.is_expired(now))
        else {
            return Ok(None);
        };
        let renewed = match self.resealed(&current, &alias, now) {
            Ok(renewed) => renewed,
            Err(Resealing::Unreadable(cause)) => {
                self.ports.sessions.delete(&old_key).await?;
                return Err(AdmissionError::TokensUnreadable(cause));
            }
            Err(Resealing::Sealing(cause)) => return Err(AdmissionError::Sealing(cause)),
        };
        self.ports.sessions.create(&renewed).await?;
        self.ports.sessions.delete(&old_key).await?;
        Ok(Some(new_id))
    }

    /// `session` under the alias's new key: every sealed token set opened with the old key and
    /// sealed again for the new one, the id's issue time now, a fresh version.
    fn resealed(
        &self,
        session: &Session,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<Session, Resealing> {
        let cipher = self.ports.cipher.as_ref();
        let tokens =
            vault::open(cipher, &session.key, &session.tokens).map_err(Resealing::Unreadable)?;
        let mut renewed = session.clone();
        renewed.key = alias.new_key.clone();
        renewed.tokens = vault::seal(cipher, &renewed.key, &tokens).map_err(Resealing::Sealing)?;
        for connection in &mut renewed.connections {
            let tokens = vault::open_connection(
                cipher,
                &session.key,
                &connection.provider,
                &connection.tokens,
            )
            .map_err(Resealing::Unreadable)?;
            connection.tokens =
                vault::seal_connection(cipher, &alias.new_key, &connection.provider, &tokens)
                    .map_err(Resealing::Sealing)?;
        }
        renewed.id_issued_at = now;
        renewed.last_seen_at = now;
        renewed.version = 0;
        Ok(renewed)
    }
}

enum Resealing {
    Unreadable(CipherError),
    Sealing(CipherError),
}
