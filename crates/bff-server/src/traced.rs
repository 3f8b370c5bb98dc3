//! A span around every store and provider call: decorators over the domain's ports, put
//! between the use cases and the adapters by the wiring.
//!
//! Each call runs in a `store` span (fields `adapter`, `operation`) or a `provider` span
//! (`provider`, `operation`), a child of the request's span, so a trace shows where a request's
//! time went and, at the `debug` log level, log lines written by an adapter name the call they
//! belong to. The spans are `debug` spans: the trace layer takes them at any level (its filter
//! is by target), while at the default `info` log level and without trace export they are off
//! and cost next to nothing (as `info` spans, formatted for the log layer on every call, they
//! were about 3% of `GET /bff/user`'s CPU; BENCHMARKS.md). A failed call
//! marks its span `otel.status_code = "ERROR"`. No field carries an argument: keys, tokens,
//! states and subjects stay out of traces. Decorating here keeps the spans the same for every
//! adapter and keeps `tracing` spans out of `bff-domain`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bff_domain::ports::{
    AuthorizationRequest, ClientToken, IdentityProvider, Lock, LoginRef, LogoutToken,
    PendingLoginStore, ProviderError, ProviderLogin, ReplayCache, SessionStore, StoreError,
};
use bff_domain::{
    Claims, PendingLogin, Prompt, ProviderId, RenewalAlias, Secret, Session, SessionKey, Timestamp,
    TokenSet,
};
use tracing::Instrument as _;

/// Runs `call` in `span`, marking the span when the call fails.
async fn traced<T, E>(
    span: tracing::Span,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let result = call.instrument(span.clone()).await;
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    result
}

fn store_span(adapter: &'static str, operation: &'static str) -> tracing::Span {
    tracing::debug_span!(
        "store",
        adapter,
        operation,
        otel.status_code = tracing::field::Empty
    )
}

/// Every store port of one adapter, each call in a `store` span.
#[derive(Debug)]
pub(crate) struct TracedStore<S: ?Sized> {
    adapter: &'static str,
    inner: Arc<S>,
}

impl<S: ?Sized> TracedStore<S> {
    /// `inner`, traced as `adapter` (`memory`, `postgres`, `redis`, `postgres+redis`).
    pub(crate) fn new(adapter: &'static str, inner: Arc<S>) -> Arc<Self> {
        Arc::new(Self { adapter, inner })
    }

    fn span(&self, operation: &'static str) -> tracing::Span {
        store_span(self.adapter, operation)
    }
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for TracedStore<S> {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        traced(self.span("session.create"), self.inner.create(session)).await
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        traced(self.span("session.get"), self.inner.get(key, now)).await
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        traced(self.span("session.update"), self.inner.update(session, now)).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        traced(
            self.span("session.touch"),
            self.inner.touch(key, last_seen_at, idle_expires_at, now),
        )
        .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        traced(self.span("session.delete"), self.inner.delete(key)).await
    }

    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        traced(
            self.span("session.delete_many"),
            self.inner.delete_many(keys),
        )
        .await
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        traced(
            self.span("session.find_by_provider_session"),
            self.inner.find_by_provider_session(issuer, sid, now),
        )
        .await
    }

    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        traced(
            self.span("session.find_by_connection"),
            self.inner.find_by_connection(issuer, login, now),
        )
        .await
    }

    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        traced(
            self.span("session.find_by_subject"),
            self.inner.find_by_subject(issuer, subject, now),
        )
        .await
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        traced(
            self.span("session.delete_by_provider_session"),
            self.inner.delete_by_provider_session(issuer, sid),
        )
        .await
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        traced(
            self.span("session.delete_by_subject"),
            self.inner.delete_by_subject(issuer, subject),
        )
        .await
    }

    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        traced(
            self.span("session.put_renewal"),
            self.inner.put_renewal(old, alias, now),
        )
        .await
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        traced(
            self.span("session.get_renewal"),
            self.inner.get_renewal(old, now),
        )
        .await
    }

    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        traced(
            self.span("session.sweep_expired"),
            self.inner.sweep_expired(now, batch),
        )
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        // Readiness polls call this every few seconds: a span each would be noise.
        self.inner.check().await
    }
}

#[async_trait]
impl<S: PendingLoginStore + ?Sized> PendingLoginStore for TracedStore<S> {
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError> {
        traced(self.span("pending_login.put"), self.inner.put(login)).await
    }

    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError> {
        traced(self.span("pending_login.take"), self.inner.take(state, now)).await
    }
}

#[async_trait]
impl<S: ReplayCache + ?Sized> ReplayCache for TracedStore<S> {
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        traced(
            self.span("replay.insert_if_absent"),
            self.inner.insert_if_absent(value, expires_at, now),
        )
        .await
    }

    async fn forget(&self, value: &str) -> Result<(), StoreError> {
        traced(self.span("replay.forget"), self.inner.forget(value)).await
    }
}

#[async_trait]
impl<S: Lock + ?Sized> Lock for TracedStore<S> {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        traced(
            self.span("lock.try_acquire"),
            self.inner.try_acquire(name, owner, ttl),
        )
        .await
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        traced(self.span("lock.release"), self.inner.release(name, owner)).await
    }

    async fn is_held(&self, name: &str) -> Result<bool, StoreError> {
        traced(self.span("lock.is_held"), self.inner.is_held(name)).await
    }
}

/// An identity provider whose network calls each run in a `provider` span.
pub(crate) struct TracedProvider {
    inner: Arc<dyn IdentityProvider>,
}

impl std::fmt::Debug for TracedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedProvider")
            .field("provider", self.inner.id())
            .finish_non_exhaustive()
    }
}

impl TracedProvider {
    pub(crate) fn wrap(inner: Arc<dyn IdentityProvider>) -> Arc<dyn IdentityProvider> {
        Arc::new(Self { inner })
    }

    fn span(&self, operation: &'static str) -> tracing::Span {
        tracing::debug_span!(
            "provider",
            provider = %self.inner.id(),
            operation,
            otel.status_code = tracing::field::Empty
        )
    }
}

#[async_trait]
impl IdentityProvider for TracedProvider {
    fn id(&self) -> &ProviderId {
        self.inner.id()
    }

    fn issuer(&self) -> &str {
        self.inner.issuer()
    }

    fn requires_issuer_in_authorization_response(&self) -> bool {
        self.inner.requires_issuer_in_authorization_response()
    }

    fn authorization_request(
        &self,
        redirect_uri: &str,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        // No network call: nothing to time.
        self.inner.authorization_request(redirect_uri, prompt)
    }

    async fn push_authorization_request(
        &self,
        request: AuthorizationRequest,
    ) -> Result<AuthorizationRequest, ProviderError> {
        traced(
            self.span("push_authorization_request"),
            self.inner.push_authorization_request(request),
        )
        .await
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError> {
        traced(
            self.span("exchange_code"),
            self.inner
                .exchange_code(code, pkce_verifier, redirect_uri, nonce, now),
        )
        .await
    }

    async fn refresh(
        &self,
        refresh_token: &Secret,
        original: &Claims,
        now: Timestamp,
    ) -> Result<TokenSet, ProviderError> {
        traced(
            self.span("refresh"),
            self.inner.refresh(refresh_token, original, now),
        )
        .await
    }

    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError> {
        traced(
            self.span("revoke_refresh_token"),
            self.inner.revoke_refresh_token(refresh_token),
        )
        .await
    }

    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError> {
        traced(
            self.span("userinfo"),
            self.inner.userinfo(access_token, expected_subject),
        )
        .await
    }

    async fn client_credentials(
        &self,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<ClientToken, ProviderError> {
        traced(
            self.span("client_credentials"),
            self.inner.client_credentials(scopes, now),
        )
        .await
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String> {
        self.inner.end_session_url(id_token_hint, state)
    }

    async fn validate_logout_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<LogoutToken, ProviderError> {
        traced(
            self.span("validate_logout_token"),
            self.inner.validate_logout_token(token, now),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tracing_subscriber::EnvFilter;

    use super::*;
    use crate::config::{LogFormat, TracingConfig};

    fn store_span_enabled_at(filter: &str) -> bool {
        let (subscriber, _telemetry) = crate::telemetry::subscriber(
            LogFormat::Json,
            EnvFilter::new(filter),
            &TracingConfig::default(),
            std::io::sink,
        )
        .unwrap();
        tracing::subscriber::with_default(subscriber, || !store_span("memory", "get").is_disabled())
    }

    /// Without trace export, a store span at the default `info` level is never built (the cost
    /// of one per store call showed in the profile); at `debug` it is, for the log lines.
    #[test]
    fn store_spans_cost_nothing_at_the_info_level_without_trace_export() {
        assert!(!store_span_enabled_at("info"));
        assert!(store_span_enabled_at("debug"));
    }
}
