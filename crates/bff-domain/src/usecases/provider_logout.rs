//! Logout started by the provider: it tells the BFF that a provider session is over, and every
//! BFF session that came from it ends.
//!
//! - Back-channel (OpenID Connect Back-Channel Logout 1.0): the provider posts a signed logout
//!   token server to server. The token picks the provider by its `iss` (never a request
//!   parameter); that provider's adapter checks everything section 2.6 asks except replay, which
//!   is checked here through the [`ReplayCache`](crate::ports::ReplayCache) port shared by every
//!   node, so a token accepted by one node is refused by all the others. Then the sessions of
//!   that `(iss, sid)`, or of that `(iss, sub)` when the token has no `sid`, end, found through
//!   the store's indexes so the cost grows with that user's sessions only.
//! - Front-channel (OpenID Connect Front-Channel Logout 1.0): the provider's page loads the
//!   BFF's logout URL in an iframe with `iss` and `sid`. Nothing is signed, so the only effect is
//!   the one anybody knowing a provider session id could ask for anyway: ending that session.
//!
//! Only sessions of the provider that the logout concerns end: a logout token for one client
//! never ends the session of another configured client at the same issuer, and never one at
//! another issuer with the same `sub`.
//!
//! A logout from a provider that a session only *connected* (`Session::connections`) ends that
//! connection: its tokens leave the session, found through the stores' connection index
//! ([`SessionStore::find_by_connection`](crate::ports::SessionStore::find_by_connection)), and
//! the session goes on, since its identity is the first login's, at another provider. Its
//! routes for that provider then answer `provider_not_connected` until the user connects again.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::Bff;
use crate::ids::{ProviderId, SessionKey, hex_sha256};
use crate::ports::{
    Event, IdentityProvider, LoginRef, LogoutToken, ProviderError, SessionEndReason, StoreError,
};
use crate::session::Connection;
use crate::time::Timestamp;

/// How long after its `iat` a logout token without `exp` is accepted (and its `jti`
/// remembered): the specification makes `exp` optional, and a token nobody bounds would have
/// to be remembered forever.
pub const LOGOUT_TOKEN_LIFETIME_WITHOUT_EXP: Duration = Duration::from_secs(300);

/// How much longer than its lifetime a logout token's `jti` is remembered: more than any clock
/// skew a provider is sensibly configured with, so a token its adapter still accepts late (`exp`
/// plus skew) is still recognised as a replay.
const REPLAY_MARGIN: Duration = Duration::from_secs(3600);

/// Output of [`Bff::backchannel_logout`] and [`Bff::frontchannel_logout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLogoutOutcome {
    /// How many sessions ended (zero when none was live: the answer is the same, so a caller
    /// learns nothing about which sessions exist).
    pub sessions_ended: u64,
    /// How many connections ended in sessions that only connected this provider (the
    /// sessions themselves go on).
    pub connections_ended: u64,
}

/// Why a back-channel logout was refused. Nothing was deleted.
#[derive(Debug, thiserror::Error)]
pub enum BackchannelLogoutError {
    /// The logout token failed a check; the reason names it (`malformed`, `typ`, `alg`, `kid`,
    /// `signature`, `iss`, `aud`, `azp`, `iat`, `exp`, `jti`, `events`, `sub_or_sid`, `nonce`).
    #[error("logout token invalid: {0}")]
    InvalidToken(String),
    /// The token's `jti` was accepted before (by this node or another).
    #[error("logout token replayed")]
    Replayed,
    /// The provider's keys could not be reached.
    #[error(transparent)]
    Provider(ProviderError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackchannelLogoutError {
    /// A stable code for metrics: `invalid_token`, `replayed`, `provider_error`, `store_error`
    /// (the failed check is not included: it is for the log and the problem document).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidToken(_) => "invalid_token",
            Self::Replayed => "replayed",
            Self::Provider(_) => "provider_error",
            Self::Store(_) => "store_error",
        }
    }
}

/// Why a front-channel logout was refused. Nothing was deleted.
#[derive(Debug, thiserror::Error)]
pub enum FrontchannelLogoutError {
    /// `iss` is missing or not the issuer of a configured provider.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// `sid` is missing or empty.
    #[error("missing sid")]
    MissingSid,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Output of [`Bff::frontchannel_logout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontchannelLogoutOutcome {
    /// How many sessions ended.
    pub sessions_ended: u64,
    /// How many connections ended in sessions that only connected this provider.
    pub connections_ended: u64,
    /// The provider's origin (`scheme://host[:port]` of its issuer): the only one allowed to
    /// frame the answer.
    pub provider_origin: String,
}

/// The `iss` of a compact JWS, read without checking anything: only to pick the provider whose
/// keys and rules then check the whole token. `Err` names the check that failed: `malformed`
/// for anything but three segments with a JSON object in the middle, `iss` without one.
fn unverified_issuer(token: &str) -> Result<String, &'static str> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed");
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "malformed")?;
    let claims: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| "malformed")?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or("iss")
}

/// Whether a refusal only says that the token is addressed to another client (`aud`, `azp`).
/// When several configured clients share an issuer, a token for one of them fails these checks
/// at the others, so any other reason is the more telling one to report.
fn is_addressing_check(reason: &str) -> bool {
    matches!(reason, "aud" | "azp")
}

/// The `ReplayCache` value of a logout token: issuer and `jti` together (two providers may
/// use the same `jti`), hashed so its length is fixed whatever the token carries.
fn replay_value(token: &LogoutToken) -> String {
    let joined = format!("{}\n{}", token.issuer, token.token_id);
    format!("logout-jti:{}", hex_sha256(joined.as_bytes()))
}

impl Bff {
    /// Ends the sessions a back-channel logout token names (`logout_token` as the provider
    /// posted it): picks the providers by the token's `iss`, lets one of them validate it,
    /// refuses a `jti` seen before, then ends every live session of that provider with the
    /// token's `sid` (and its `sub`, when it has both), or with its `sub` when it has no `sid`.
    ///
    /// The `jti` is recorded before any session is deleted, so a replay can never end a session
    /// the user started after the logout (a `sub`-only token would match it).
    ///
    /// # Errors
    /// `InvalidToken` naming the failed check; `Replayed`; `Provider` when the provider's keys
    /// cannot be reached; nothing is deleted on these. `Store`: when the store fails while
    /// sessions are being ended, those not reached yet stay, and the `jti` is taken back
    /// ([`ReplayCache::forget`](crate::ports::ReplayCache::forget)), so the provider's retry of
    /// that token ends them (unless the replay cache failed too, when the retry is refused as a
    /// replay).
    pub async fn backchannel_logout(
        &self,
        logout_token: &str,
    ) -> Result<ProviderLogoutOutcome, BackchannelLogoutError> {
        let result = self.end_backchannel_sessions(logout_token).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        self.events.record(Event::BackchannelLogout { outcome });
        result
    }

    async fn end_backchannel_sessions(
        &self,
        logout_token: &str,
    ) -> Result<ProviderLogoutOutcome, BackchannelLogoutError> {
        let now = self.ports.clock.now();
        let issuer = unverified_issuer(logout_token)
            .map_err(|check| BackchannelLogoutError::InvalidToken(check.into()))?;
        let candidates: Vec<&Arc<dyn IdentityProvider>> =
            self.providers.with_issuer(&issuer).collect();
        if candidates.is_empty() {
            return Err(BackchannelLogoutError::InvalidToken("iss".into()));
        }
        let (provider, token) = validate_with_any(&candidates, logout_token, now).await?;
        if token.expires_at.is_none()
            && now >= token.issued_at.plus(LOGOUT_TOKEN_LIFETIME_WITHOUT_EXP)
        {
            // Without `exp`, a token older than the bounded lifetime is refused as stale.
            return Err(BackchannelLogoutError::InvalidToken("iat".into()));
        }
        let remember_until = token
            .expires_at
            .unwrap_or_else(|| token.issued_at.plus(LOGOUT_TOKEN_LIFETIME_WITHOUT_EXP))
            .max(now)
            .plus(REPLAY_MARGIN);
        let jti = replay_value(&token);
        if !self
            .ports
            .replay
            .insert_if_absent(&jti, remember_until, now)
            .await?
        {
            return Err(BackchannelLogoutError::Replayed);
        }
        let ended = match self
            .end_provider_sessions(
                std::slice::from_ref(&provider),
                &token.issuer,
                token.provider_session_id.as_deref(),
                token.subject.as_deref(),
                now,
            )
            .await
        {
            Ok(ended) => ended,
            Err(err) => {
                // The logout did not finish: the provider's retry of this token must not be
                // refused as a replay. If the cache cannot forget either, that is the outcome
                // the error already reports (the store is failing), so its own error is dropped.
                let _ = self.ports.replay.forget(&jti).await;
                return Err(err.into());
            }
        };
        self.sessions_ended(SessionEndReason::BackchannelLogout, ended.sessions);
        self.connections_ended(SessionEndReason::BackchannelLogout, ended.connections);
        Ok(ProviderLogoutOutcome {
            sessions_ended: ended.sessions,
            connections_ended: ended.connections,
        })
    }

    /// Ends the sessions of the provider session `sid` at `issuer` (the query of a
    /// front-channel logout request), for every configured provider with that issuer.
    ///
    /// # Errors
    /// `UnknownIssuer` when `issuer` is missing or not configured; `MissingSid`; `Store`.
    pub async fn frontchannel_logout(
        &self,
        issuer: Option<&str>,
        sid: Option<&str>,
    ) -> Result<FrontchannelLogoutOutcome, FrontchannelLogoutError> {
        let now = self.ports.clock.now();
        let issuer = issuer.ok_or(FrontchannelLogoutError::UnknownIssuer)?;
        let providers: Vec<ProviderId> = self
            .providers
            .with_issuer(issuer)
            .map(|p| p.id().clone())
            .collect();
        if providers.is_empty() {
            return Err(FrontchannelLogoutError::UnknownIssuer);
        }
        let provider_origin = url::Url::parse(issuer)
            .map_err(|_| FrontchannelLogoutError::UnknownIssuer)?
            .origin()
            .ascii_serialization();
        let sid = sid
            .filter(|s| !s.is_empty())
            .ok_or(FrontchannelLogoutError::MissingSid)?;
        let ended = self
            .end_provider_sessions(&providers, issuer, Some(sid), None, now)
            .await?;
        self.sessions_ended(SessionEndReason::FrontchannelLogout, ended.sessions);
        self.connections_ended(SessionEndReason::FrontchannelLogout, ended.connections);
        Ok(FrontchannelLogoutOutcome {
            sessions_ended: ended.sessions,
            connections_ended: ended.connections,
            provider_origin,
        })
    }

    /// Deletes the live sessions of `providers` at `issuer` with provider session `sid` (and
    /// subject `subject` when both are given), or with subject `subject` when there is no
    /// `sid`. Found through the store's `(issuer, sid)` / `(issuer, sub)` index, so the work is
    /// proportional to that user's sessions.
    async fn end_provider_sessions(
        &self,
        providers: &[ProviderId],
        issuer: &str,
        sid: Option<&str>,
        subject: Option<&str>,
        now: Timestamp,
    ) -> Result<Ended, StoreError> {
        let (login, sessions) = match (sid, subject) {
            (Some(sid), _) => (
                LoginRef::Session(sid),
                self.ports
                    .sessions
                    .find_by_provider_session(issuer, sid, now)
                    .await?,
            ),
            (None, Some(subject)) => (
                LoginRef::Subject(subject),
                self.ports
                    .sessions
                    .find_by_subject(issuer, subject, now)
                    .await?,
            ),
            (None, None) => return Ok(Ended::default()),
        };
        // The stores already matched the index; this repeats it so that a store returning too
        // much can never end another user's session.
        let keys: Vec<SessionKey> = sessions
            .into_iter()
            .filter(|session| {
                session.issuer == issuer
                    && providers.contains(&session.provider)
                    && sid.is_none_or(|sid| session.provider_session_id.as_deref() == Some(sid))
                    && subject.is_none_or(|subject| session.subject == subject)
            })
            .map(|session| session.key)
            .collect();
        // One call for them all: a user signed in on many devices is a few round trips.
        let sessions = self.ports.sessions.delete_many(&keys).await?;
        let connections = self
            .end_connections(providers, issuer, login, subject, now)
            .await?;
        Ok(Ended {
            sessions,
            connections,
        })
    }

    /// Records that `count` connections ended for `reason` (nothing for zero).
    fn connections_ended(&self, reason: SessionEndReason, count: u64) {
        if count > 0 {
            self.events
                .record(Event::ConnectionsEnded { reason, count });
        }
    }

    /// Drops the connections whose login was `login` at `issuer` (of `subject` too, when the
    /// logout names one beside its `sid`, as for a first login) from the sessions that made
    /// them, for any of `providers`: that provider's tokens leave the session, and the session,
    /// whose identity is another provider's login, goes on. Returns how many were dropped.
    async fn end_connections(
        &self,
        providers: &[ProviderId],
        issuer: &str,
        login: LoginRef<'_>,
        subject: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let ends = |connection: &Connection| {
            providers.contains(&connection.provider)
                && connection.is_login(issuer, login)
                && subject.is_none_or(|subject| connection.claims.subject() == Some(subject))
        };
        let mut dropped = 0;
        for found in self
            .ports
            .sessions
            .find_by_connection(issuer, login, now)
            .await?
        {
            let mut session = found;
            // A request may update the session meanwhile (a refresh): read it again and retry,
            // a bounded number of times, so the logout is not lost to a busy session.
            for _ in 0..UPDATE_ATTEMPTS {
                let before = session.connections.len();
                session.connections.retain(|c| !ends(c));
                let removed = (before - session.connections.len()) as u64;
                if removed == 0 {
                    break;
                }
                match self.ports.sessions.update(&session, now).await {
                    Ok(_) => {
                        dropped += removed;
                        break;
                    }
                    Err(StoreError::Conflict) => {
                        match self.ports.sessions.get(&session.key, now).await? {
                            Some(fresh) => session = fresh,
                            None => break,
                        }
                    }
                    // Ended meanwhile: nothing is left to drop.
                    Err(StoreError::NotFound) => break,
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(dropped)
    }
}

/// How many tries dropping a connection gets against concurrent updates of its session.
const UPDATE_ATTEMPTS: usize = 8;

/// What a provider's logout ended.
#[derive(Debug, Default)]
struct Ended {
    sessions: u64,
    connections: u64,
}

/// Validates `token` with the first of `candidates` (providers sharing its issuer) that
/// accepts it.
async fn validate_with_any(
    candidates: &[&Arc<dyn IdentityProvider>],
    token: &str,
    now: Timestamp,
) -> Result<(ProviderId, LogoutToken), BackchannelLogoutError> {
    let mut refusal: Option<String> = None;
    for provider in candidates {
        match provider.validate_logout_token(token, now).await {
            Ok(validated) => return Ok((provider.id().clone(), validated)),
            Err(ProviderError::LogoutTokenInvalid(reason)) => {
                // Keep the most telling reason: one that is not just "addressed to another
                // client" wins over one that is.
                let better = refusal
                    .as_deref()
                    .is_none_or(|kept| is_addressing_check(kept) && !is_addressing_check(&reason));
                if better {
                    refusal = Some(reason);
                }
            }
            Err(other) => return Err(BackchannelLogoutError::Provider(other)),
        }
    }
    Err(BackchannelLogoutError::InvalidToken(
        refusal.unwrap_or_else(|| "iss".into()),
    ))
}

#[cfg(test)]
mod tests;
