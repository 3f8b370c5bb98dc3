//! [`DeferredProvider`]: a provider whose discovery failed at start-up for a reason that may
//! pass (the provider unreachable, its JWKS unreachable), so the server can start anyway.
//!
//! Until discovery succeeds every `IdentityProvider` call answers `ProviderError::Unavailable`
//! (a login there is refused with `503`; sessions at other providers are untouched), `id()` and
//! `issuer()` come from the configuration, and the readiness check reports the last discovery
//! error. A background task retries discovery with capped exponential backoff; the first
//! success installs the discovered [`OidcProvider`] and every call is delegated to it from then
//! on. A discovery that keeps failing never stops the process: a wrong issuer found during a
//! retry is logged as an error and retried like any other failure (at start-up it is fatal, see
//! [`DeferredProvider::is_transient`]).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bff_domain::ports::{
    AuthorizationRequest, ClientToken, Events, IdentityProvider, LogoutToken, NoEvents,
    ProviderError, ProviderLogin,
};
use bff_domain::{Claims, Prompt, ProviderId, Secret, Timestamp, TokenSet};

use crate::{DiscoveryError, OidcProvider, OidcProviderConfig};

/// Backoff between discovery attempts: doubles from `initial` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct RetryBackoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryBackoff {
    /// The wait after `attempt` failed attempts (the first retry waits `initial`).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// A provider not discovered yet; see the module documentation.
pub struct DeferredProvider {
    config: OidcProviderConfig,
    discovered: OnceLock<Arc<OidcProvider>>,
    last_error: Mutex<String>,
    /// Handed to the provider once discovered.
    events: Arc<dyn Events>,
}

impl std::fmt::Debug for DeferredProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredProvider")
            .field("provider", &self.config.id)
            .field("discovered", &self.discovered.get().is_some())
            .finish_non_exhaustive()
    }
}

/// The error a call gets while the provider is not discovered.
#[derive(Debug, thiserror::Error)]
#[error("provider {0} is not discovered yet")]
pub struct NotDiscovered(String);

impl DeferredProvider {
    /// Whether a start-up discovery failure may pass by itself (the provider or its keys could
    /// not be fetched), so the server should start and retry. A wrong issuer, invalid metadata
    /// or an unusable configuration are not: they stop start-up.
    pub fn is_transient(error: &DiscoveryError) -> bool {
        matches!(
            error,
            DiscoveryError::Fetch { .. } | DiscoveryError::Jwks { .. }
        )
    }

    /// A provider for `config` whose discovery failed with `first_error`, and the background
    /// task (spawned on the current tokio runtime) that retries discovery with `backoff` until
    /// it succeeds. Abort the task to stop retrying.
    pub fn spawn(
        config: OidcProviderConfig,
        http: reqwest::Client,
        first_error: &DiscoveryError,
        backoff: RetryBackoff,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        Self::spawn_with_events(config, http, first_error, backoff, Arc::new(NoEvents))
    }

    /// [`DeferredProvider::spawn`], the provider it discovers telling `events`
    /// ([`OidcProvider::with_events`]).
    pub fn spawn_with_events(
        config: OidcProviderConfig,
        http: reqwest::Client,
        first_error: &DiscoveryError,
        backoff: RetryBackoff,
        events: Arc<dyn Events>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        tracing::warn!(
            provider = %config.id,
            error = %first_error,
            "provider discovery failed; serving without it and retrying"
        );
        let provider = Arc::new(Self {
            config,
            discovered: OnceLock::new(),
            last_error: Mutex::new(first_error.to_string()),
            events,
        });
        let task = tokio::spawn(retry_discovery(provider.clone(), http, backoff));
        (provider, task)
    }

    /// Whether discovery has succeeded.
    pub fn is_discovered(&self) -> bool {
        self.discovered.get().is_some()
    }

    /// Readiness: the discovered provider's check, or `Unavailable` with the last discovery
    /// error while there is none.
    ///
    /// # Errors
    /// `Unavailable` when the provider is not discovered or its metadata does not answer.
    pub async fn check(&self) -> Result<(), ProviderError> {
        match self.discovered.get() {
            Some(provider) => provider.check().await,
            None => {
                let last = self
                    .last_error
                    .lock()
                    .map(|e| e.clone())
                    .unwrap_or_default();
                Err(ProviderError::Unavailable(
                    format!("discovery pending: {last}").into(),
                ))
            }
        }
    }

    fn ready(&self) -> Result<&OidcProvider, ProviderError> {
        self.discovered.get().map(AsRef::as_ref).ok_or_else(|| {
            ProviderError::Unavailable(Box::new(NotDiscovered(self.config.id.to_string())))
        })
    }
}

async fn retry_discovery(
    provider: Arc<DeferredProvider>,
    http: reqwest::Client,
    backoff: RetryBackoff,
) {
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(backoff.delay(attempt)).await;
        match OidcProvider::discover(provider.config.clone(), http.clone()).await {
            Ok(discovered) => {
                // `discover` wrote the `info` line already; the failed attempts are warnings.
                tracing::debug!(provider = %provider.config.id, attempt, "provider discovered");
                let discovered = discovered.with_events(provider.events.clone());
                let _ = provider.discovered.set(Arc::new(discovered));
                return;
            }
            Err(e) => {
                if DeferredProvider::is_transient(&e) {
                    tracing::warn!(provider = %provider.config.id, attempt, error = %e, "provider discovery failed");
                } else {
                    tracing::error!(provider = %provider.config.id, attempt, error = %e, "provider discovery refused the metadata");
                }
                if let Ok(mut last) = provider.last_error.lock() {
                    *last = e.to_string();
                }
            }
        }
    }
}

#[async_trait]
impl IdentityProvider for DeferredProvider {
    fn id(&self) -> &ProviderId {
        &self.config.id
    }

    fn issuer(&self) -> &str {
        &self.config.issuer
    }

    fn requires_issuer_in_authorization_response(&self) -> bool {
        // Before discovery no authorization request is made, so no response can arrive; the
        // strict answer is the safe one.
        self.discovered
            .get()
            .is_none_or(|p| p.requires_issuer_in_authorization_response())
    }

    fn authorization_request(
        &self,
        redirect_uri: &str,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        self.ready()?.authorization_request(redirect_uri, prompt)
    }

    async fn push_authorization_request(
        &self,
        request: AuthorizationRequest,
    ) -> Result<AuthorizationRequest, ProviderError> {
        self.ready()?.push_authorization_request(request).await
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError> {
        self.ready()?
            .exchange_code(code, pkce_verifier, redirect_uri, nonce, now)
            .await
    }

    async fn refresh(
        &self,
        refresh_token: &Secret,
        original: &Claims,
        now: Timestamp,
    ) -> Result<TokenSet, ProviderError> {
        self.ready()?.refresh(refresh_token, original, now).await
    }

    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError> {
        self.ready()?.revoke_refresh_token(refresh_token).await
    }

    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError> {
        self.ready()?.userinfo(access_token, expected_subject).await
    }

    async fn client_credentials(
        &self,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<ClientToken, ProviderError> {
        self.ready()?.client_credentials(scopes, now).await
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String> {
        self.discovered
            .get()
            .and_then(|p| p.end_session_url(id_token_hint, state))
    }

    async fn validate_logout_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<LogoutToken, ProviderError> {
        self.ready()?.validate_logout_token(token, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let backoff = RetryBackoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
        };
        let delays: Vec<_> = (1..=6).map(|a| backoff.delay(a)).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis)
        );
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn only_fetch_failures_are_transient() {
        let fetch = DiscoveryError::Fetch {
            url: "u".into(),
            reason: "refused".into(),
        };
        let jwks = DiscoveryError::Jwks {
            url: "u".into(),
            reason: "refused".into(),
        };
        let mismatch = DiscoveryError::IssuerMismatch {
            expected: "a".into(),
            found: "b".into(),
        };
        let invalid = DiscoveryError::Invalid {
            url: "u".into(),
            reason: "json".into(),
        };
        assert!(DeferredProvider::is_transient(&fetch));
        assert!(DeferredProvider::is_transient(&jwks));
        assert!(!DeferredProvider::is_transient(&mismatch));
        assert!(!DeferredProvider::is_transient(&invalid));
        assert!(!DeferredProvider::is_transient(&DiscoveryError::Config(
            "x".into()
        )));
    }
}
