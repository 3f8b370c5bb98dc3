//! The provider's signing keys, cached.
//!
//! A token whose `kid` is unknown triggers one refetch (keys rotate), but at most once per
//! configured interval, so a stream of forged `kid`s cannot turn the BFF into a JWKS flooder.
//! The fetch at start-up does not count: the first unknown `kid` after start may refetch at
//! once, the next one only when the interval has passed since.
//!
//! Keys the `jsonwebtoken` crate cannot represent (an unknown `kty`, an unsupported curve) are
//! skipped rather than failing the whole set: providers publish keys for other purposes too.

use std::sync::Arc;
use std::time::Duration;

use bff_domain::ProviderId;
use bff_domain::ports::{Event, Events, NoEvents};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// A cached JWKS with rate-limited refetch.
pub(crate) struct JwksCache {
    url: String,
    http: reqwest::Client,
    timeout: Duration,
    refetch_interval: Duration,
    keys: RwLock<Arc<JwkSet>>,
    /// When the last unknown-`kid` refetch started; held during a refetch so concurrent
    /// callers wait for it instead of fetching again.
    last_refetch: Mutex<Option<Instant>>,
    /// Told of every unknown-`kid` refetch, under `provider`.
    events: Arc<dyn Events>,
    provider: Option<ProviderId>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("refetch_interval", &self.refetch_interval)
            .finish_non_exhaustive()
    }
}

/// The JWKS document with its keys still unparsed, so one odd key does not spoil the rest.
#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<Value>,
}

/// Fetches a JWKS document, within `timeout`.
///
/// # Errors
/// A sentence saying why (network, timeout, status, JSON). It never contains key material.
async fn fetch(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<JwkSet, String> {
    let response = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let raw: RawJwkSet =
        serde_json::from_slice(&body).map_err(|e| format!("not a JWK set: {e}"))?;
    let total = raw.keys.len();
    let keys: Vec<Jwk> = raw
        .keys
        .into_iter()
        .filter_map(|key| serde_json::from_value(key).ok())
        .collect();
    if keys.len() < total {
        tracing::debug!(
            url,
            skipped = total - keys.len(),
            "JWKS has keys this client cannot use; skipped them"
        );
    }
    Ok(JwkSet { keys })
}

impl JwksCache {
    /// Loads the keys once.
    ///
    /// # Errors
    /// When the first fetch fails.
    pub(crate) async fn load(
        http: reqwest::Client,
        url: String,
        timeout: Duration,
        refetch_interval: Duration,
    ) -> Result<Self, String> {
        let keys = fetch(&http, &url, timeout).await?;
        Ok(Self {
            url,
            http,
            timeout,
            refetch_interval,
            keys: RwLock::new(Arc::new(keys)),
            last_refetch: Mutex::new(None),
            events: Arc::new(NoEvents),
            provider: None,
        })
    }

    /// Tells `events` of each refetch, as `provider`'s.
    pub(crate) fn tell(&mut self, provider: ProviderId, events: Arc<dyn Events>) {
        self.provider = Some(provider);
        self.events = events;
    }

    fn told(&self, ok: bool) {
        if let Some(provider) = &self.provider {
            self.events.record(Event::JwksRefetched { provider, ok });
        }
    }

    /// The current key set.
    pub(crate) async fn keys(&self) -> Arc<JwkSet> {
        self.keys.read().await.clone()
    }

    /// Refetches the key set unless an unknown-`kid` refetch happened less than the interval
    /// ago; returns whether it fetched new keys. A failed refetch keeps the old keys (and still
    /// counts, so a provider that is down is not hammered either).
    pub(crate) async fn refresh_if_allowed(&self) -> bool {
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.refetch_interval) {
            return false;
        }
        *last = Some(Instant::now());
        match fetch(&self.http, &self.url, self.timeout).await {
            Ok(keys) => {
                *self.keys.write().await = Arc::new(keys);
                self.told(true);
                true
            }
            Err(reason) => {
                self.told(false);
                tracing::warn!(url = %self.url, %reason, "JWKS refetch failed; keeping the old keys");
                false
            }
        }
    }
}
