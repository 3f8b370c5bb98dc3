//! The BFF's own client-credentials tokens for `client` and `user_or_client` routes: one cache
//! entry per provider and scope set, shared by every session, reused until shortly before it
//! expires, and fetched single-flight.
//!
//! - **Key**: the provider and the route's required scopes as a sorted set, so two routes that
//!   need the same scopes of the same provider share one token, in whatever order they list them.
//! - **Reuse**: a token is handed out until `margin` before its expiry (the configured refresh
//!   margin), but at most until half its lifetime has passed, so a token that lives shorter than
//!   the margin is still reused rather than fetched for every call. A response without
//!   `expires_in` is taken to live [`DEFAULT_LIFETIME`]: short, because nothing says how long it
//!   really lives.
//! - **Single flight**: callers of one key queue on an async mutex (`futures_util::lock::Mutex`,
//!   which needs no runtime); the first one fetches while the others wait, and they all get its
//!   token. Concurrent callers of different keys do not wait for each other.
//! - **Failures are not cached**: a failed fetch is answered to its caller and to the callers
//!   that were already waiting for it (so an outage does not make each of them wait out its own
//!   timeout in turn), and the next caller to arrive fetches again. While the previous token has
//!   not actually expired, a failed refetch hands out that token instead of the failure.
//! - **Per process**: each node keeps and fetches its own tokens. That costs one grant per node
//!   per token lifetime, and keeps client tokens out of the shared stores.
//!
//! Time comes from the [`Clock`] port; the cache never reads the system clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::ids::ProviderId;
use crate::ports::{ClientToken, Clock, ProviderError};
use crate::secret::Secret;
use crate::time::Timestamp;

/// How long a token whose response had no `expires_in` is taken to live.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// Which token: the provider and the requested scopes, sorted and without duplicates.
pub(crate) type ClientTokenKey = (ProviderId, BTreeSet<String>);

/// A token as the cache hands it out.
#[derive(Clone, Debug)]
pub(crate) struct CachedClientToken {
    /// The access token.
    pub(crate) access_token: Secret,
    /// The granted scope, `None` when the response did not say (granted as requested).
    pub(crate) scope: Option<String>,
    /// Handed out until then; fetched again after.
    refetch_at: Timestamp,
    /// Still usable until then, when a refetch fails.
    expires_at: Timestamp,
}

impl CachedClientToken {
    /// `token` as fetched at `now`, reused until `margin` before its expiry (or half its
    /// lifetime, whichever is later).
    fn new(token: ClientToken, now: Timestamp, margin: Duration) -> Self {
        let expires_at = token
            .expires_at
            .unwrap_or_else(|| now.plus(DEFAULT_LIFETIME));
        let lifetime = now.until(expires_at);
        let refetch_at = expires_at.minus(margin.min(lifetime / 2));
        Self {
            access_token: token.access_token,
            scope: token.scope,
            refetch_at,
            expires_at,
        }
    }
}

/// The tokens of every key, each behind its own single-flight slot.
#[derive(Default)]
pub(crate) struct ClientTokenCache {
    slots: Mutex<BTreeMap<ClientTokenKey, Arc<Slot>>>,
}

impl std::fmt::Debug for ClientTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTokenCache").finish_non_exhaustive()
    }
}

/// One key's token and its fetch queue.
#[derive(Default)]
struct Slot {
    /// Fetches finished (either way), so a caller that waited can tell one happened meanwhile.
    finished: AtomicU64,
    /// Held by the caller that fetches; the others wait here.
    state: futures_util::lock::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    token: Option<CachedClientToken>,
    /// The outcome of the last fetch when it failed, for the callers that waited for it.
    last_failure: Option<Arc<ProviderError>>,
}

impl SlotState {
    /// The previous token while it has not expired, else `failure`.
    fn fallback(
        &self,
        now: Timestamp,
        failure: Arc<ProviderError>,
    ) -> Result<CachedClientToken, Arc<ProviderError>> {
        self.token
            .as_ref()
            .filter(|t| now < t.expires_at)
            .cloned()
            .ok_or(failure)
    }
}

impl ClientTokenCache {
    /// The token for `key`: the cached one while it may be reused, else the result of one
    /// `fetch` shared with every caller that waited for it.
    ///
    /// # Errors
    /// The fetch's error, shared (it is not cached: the next caller fetches again).
    pub(crate) async fn get<F, Fut>(
        &self,
        key: ClientTokenKey,
        clock: &dyn Clock,
        margin: Duration,
        fetch: F,
    ) -> Result<CachedClientToken, Arc<ProviderError>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ClientToken, ProviderError>>,
    {
        let slot = {
            // Never held across an await; a panic elsewhere cannot leave the map half-written.
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(key).or_default().clone()
        };
        let seen = slot.finished.load(Ordering::Acquire);
        let mut state = slot.state.lock().await;
        let now = clock.now();
        if let Some(token) = state.token.as_ref().filter(|t| now < t.refetch_at) {
            return Ok(token.clone());
        }
        if slot.finished.load(Ordering::Acquire) != seen
            && let Some(failure) = state.last_failure.clone()
        {
            // The fetch this caller waited for failed just now: share its answer.
            return state.fallback(now, failure);
        }
        let fetched = fetch().await;
        let now = clock.now();
        let answer = match fetched {
            Ok(token) => {
                let token = CachedClientToken::new(token, now, margin);
                state.token = Some(token.clone());
                state.last_failure = None;
                Ok(token)
            }
            Err(e) => {
                let failure = Arc::new(e);
                state.last_failure = Some(failure.clone());
                state.fallback(now, failure)
            }
        };
        slot.finished.fetch_add(1, Ordering::Release);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in: Option<u64>, now: i64) -> ClientToken {
        ClientToken {
            access_token: Secret::new("t"),
            expires_at: expires_in.map(|s| Timestamp::from_unix_seconds(now + s as i64)),
            scope: None,
        }
    }

    #[test]
    fn reuse_ends_a_margin_before_expiry_or_at_half_the_lifetime() {
        let margin = Duration::from_secs(30);
        let at = |expires_in| {
            CachedClientToken::new(
                token(expires_in, 1000),
                Timestamp::from_unix_seconds(1000),
                margin,
            )
            .refetch_at
            .unix_seconds()
        };
        assert_eq!(at(Some(300)), 1270);
        // Shorter than twice the margin: half the lifetime.
        assert_eq!(at(Some(40)), 1020);
        assert_eq!(at(Some(0)), 1000);
        // No `expires_in`: the short default lifetime.
        assert_eq!(at(None), 1030);
    }
}
