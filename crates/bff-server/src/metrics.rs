//! Prometheus metrics: the registry, the recorder of the domain's [`Events`] port, a decorator
//! that times every store call, and the `/metrics` app served on its own listener
//! (`[metrics] listen`, off by default).
//!
//! Labels carry only configured names (provider ids, route prefixes, store adapters), store
//! operation names and stable codes: never a user id, session id, token or raw path. The domain's
//! [`Event`] type has no field that could hold one, and the store decorator labels calls by
//! method name, never by argument.
//!
//! `prometheus-client` keeps the registry a value (no process-wide global), so each server (and
//! each test's server in one process) counts on its own.
//!
//! `/metrics` answers OpenMetrics text to a scraper that asks for it in `Accept` (Prometheus
//! does), and the classic Prometheus text format (0.0.4) to everything else, as the official
//! client libraries do: the same samples, without what older parsers refuse (`# EOF`, `# UNIT`,
//! the `info` type).

use std::future::Future;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bff_domain::ports::{
    Event, Events, Lock, LoginRef, PendingLoginStore, ReplayCache, SessionStore, StoreError,
};
use bff_domain::{PendingLogin, RenewalAlias, Session, SessionKey, Timestamp};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Response, Route, get, handler};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOutcomeLabels {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    route: String,
    // A number and a static name: of a proxied request's labels only the route is allocated.
    status: u16,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLatencyLabels {
    route: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    // All static or a number: a `/bff` request allocates nothing to be counted.
    endpoint: &'static str,
    status: u16,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLatencyLabels {
    endpoint: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    // Static names: a store call allocates nothing to be counted.
    adapter: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 1 ms to about 33 s, doubling: store calls sit at the low end, proxied
/// calls and provider round trips across the range.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The process's metrics. Cheap to share (`Arc`); recording takes no lock but a read lock (a
/// family's, or the kept request series').
pub struct Metrics {
    registry: Registry,
    logins_started: Family<ProviderLabel, Counter>,
    logins_completed: Family<ProviderLabel, Counter>,
    logins_failed: Family<ReasonLabel, Counter>,
    refreshes: Family<ProviderOutcomeLabels, Counter>,
    sessions_created: Family<ProviderLabel, Counter>,
    sessions_ended: Family<ReasonLabel, Counter>,
    connections_ended: Family<ReasonLabel, Counter>,
    backchannel_logouts: Family<OutcomeLabel, Counter>,
    proxy_requests: Family<ProxyLabels, Counter>,
    jwks_refetches: Family<ProviderOutcomeLabels, Counter>,
    proxy_latency: HistogramFamily<ProxyLatencyLabels>,
    endpoint_requests: Family<EndpointLabels, Counter>,
    endpoint_latency: HistogramFamily<EndpointLatencyLabels>,
    /// The series of proxied and `/bff` requests already used (see [`KeptSeries`]).
    proxy_series: KeptSeries,
    endpoint_series: KeptSeries,
    store_latency: HistogramFamily<StoreLabels>,
    store_errors: Family<StoreLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric of the server, and `bff_build_info` set.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bff");
        let metrics = Self {
            logins_started: Family::default(),
            logins_completed: Family::default(),
            logins_failed: Family::default(),
            refreshes: Family::default(),
            sessions_created: Family::default(),
            sessions_ended: Family::default(),
            connections_ended: Family::default(),
            backchannel_logouts: Family::default(),
            proxy_requests: Family::default(),
            jwks_refetches: Family::default(),
            proxy_latency: Family::new_with_constructor(latency_histogram),
            endpoint_requests: Family::default(),
            endpoint_latency: Family::new_with_constructor(latency_histogram),
            proxy_series: KeptSeries::default(),
            endpoint_series: KeptSeries::default(),
            store_latency: Family::new_with_constructor(latency_histogram),
            store_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "build",
            "The running build (always 1)",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        );
        registry.register(
            "logins_started",
            "Logins (and connects) started, by provider",
            metrics.logins_started.clone(),
        );
        registry.register(
            "logins_completed",
            "Logins (and connects) completed, by provider",
            metrics.logins_completed.clone(),
        );
        registry.register(
            "logins_failed",
            "Logins that failed to start or complete, by reason",
            metrics.logins_failed.clone(),
        );
        registry.register(
            "refreshes",
            "Token refreshes by provider and outcome (ok, refused, failed, coalesced)",
            metrics.refreshes.clone(),
        );
        registry.register(
            "sessions_created",
            "Sessions created, by provider",
            metrics.sessions_created.clone(),
        );
        registry.register(
            "sessions_ended",
            "Sessions ended, by reason",
            metrics.sessions_ended.clone(),
        );
        registry.register(
            "connections_ended",
            "Connected providers dropped from sessions that go on, by reason",
            metrics.connections_ended.clone(),
        );
        registry.register(
            "backchannel_logouts",
            "Back-channel logout requests, by outcome",
            metrics.backchannel_logouts.clone(),
        );
        registry.register(
            "proxy_requests",
            "API proxy requests by route prefix, status code and status class",
            metrics.proxy_requests.clone(),
        );
        registry.register(
            "jwks_refetches",
            "Provider key sets fetched again for an unknown kid, by provider and outcome (ok, failed)",
            metrics.jwks_refetches.clone(),
        );
        registry.register_with_unit(
            "proxy_request_duration",
            "API proxy requests until the answer's headers, by route prefix and status class",
            Unit::Seconds,
            metrics.proxy_latency.clone(),
        );
        registry.register(
            "endpoint_requests",
            "Requests to the BFF's own endpoints (/bff/...), by endpoint path below the prefix (other: none of them), status code and status class",
            metrics.endpoint_requests.clone(),
        );
        registry.register_with_unit(
            "endpoint_request_duration",
            "Requests to the BFF's own endpoints until the answer's headers, by endpoint path and status class",
            Unit::Seconds,
            metrics.endpoint_latency.clone(),
        );
        registry.register_with_unit(
            "store_call_duration",
            "Store calls by adapter and operation",
            Unit::Seconds,
            metrics.store_latency.clone(),
        );
        registry.register(
            "store_errors",
            "Store calls that failed (store unavailable), by adapter and operation",
            metrics.store_errors.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// The registry in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn store_call(
        &self,
        adapter: &'static str,
        operation: &'static str,
        elapsed: Duration,
        failed: bool,
    ) {
        self.store_latency
            .get_or_create(&StoreLabels { adapter, operation })
            .observe(elapsed.as_secs_f64());
        if failed {
            self.store_failed(adapter, operation);
        }
    }

    /// The latency histogram of one store call, sharing its series with the family's.
    fn store_latency(&self, adapter: &'static str, operation: &'static str) -> Histogram {
        self.store_latency
            .get_or_create(&StoreLabels { adapter, operation })
            .clone()
    }

    /// Counts a failed store call.
    fn store_failed(&self, adapter: &'static str, operation: &'static str) {
        self.store_errors
            .get_or_create(&StoreLabels { adapter, operation })
            .inc();
    }

    /// Counts and times a request to a `/bff` endpoint.
    fn endpoint_request(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        self.endpoint_series
            .record(endpoint, status, elapsed, |class| {
                let requests = self.endpoint_requests.get_or_create(&EndpointLabels {
                    endpoint,
                    status,
                    class,
                });
                let latency = self
                    .endpoint_latency
                    .get_or_create(&EndpointLatencyLabels { endpoint, class });
                (requests.clone(), latency.clone())
            });
    }

    /// Counts and times a proxied request.
    fn proxy_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.proxy_series.record(route, status, elapsed, |class| {
            let requests = self.proxy_requests.get_or_create(&ProxyLabels {
                route: route.to_owned(),
                status,
                class,
            });
            let latency = self.proxy_latency.get_or_create(&ProxyLatencyLabels {
                route: route.to_owned(),
                class,
            });
            (requests.clone(), latency.clone())
        });
    }
}

/// The counter and latency histogram of each request series already used, by label (an API
/// route's prefix, an endpoint's path) and status, taken from their families the first time a
/// request gets that answer: counting a request is then a short scan under a read lock instead
/// of hashing two label sets behind the families' locks (and, for a route, allocating its
/// prefix twice). Bounded: the labels are configured or fixed, times the statuses answered.
#[derive(Default)]
struct KeptSeries(RwLock<Vec<RequestSeries>>);

struct RequestSeries {
    label: Box<str>,
    status: u16,
    requests: Counter,
    latency: Histogram,
}

impl KeptSeries {
    /// Counts and times one request answered `status` under `label`; `taken` gives a series'
    /// counter and histogram from their families (with the status's class) the first time.
    fn record(
        &self,
        label: &str,
        status: u16,
        elapsed: Duration,
        taken: impl FnOnce(&'static str) -> (Counter, Histogram),
    ) {
        let seconds = elapsed.as_secs_f64();
        let observe = |series: &RequestSeries| {
            series.requests.inc();
            series.latency.observe(seconds);
        };
        let matches = |series: &&RequestSeries| series.status == status && *series.label == *label;
        {
            let kept = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = kept.iter().find(matches) {
                observe(series);
                return;
            }
        }
        let mut kept = self.0.write().unwrap_or_else(PoisonError::into_inner);
        // Another request may have added it meanwhile.
        if let Some(series) = kept.iter().find(matches) {
            observe(series);
            return;
        }
        let (requests, latency) = taken(status_class(status));
        let series = RequestSeries {
            label: label.into(),
            status,
            requests,
            latency,
        };
        observe(&series);
        kept.push(series);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

fn provider_label(provider: &bff_domain::ProviderId) -> ProviderLabel {
    ProviderLabel {
        provider: provider.as_str().to_owned(),
    }
}

fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        // hyper accepts codes up to 999 from an upstream.
        6 => "6xx",
        7 => "7xx",
        8 => "8xx",
        _ => "9xx",
    }
}

impl Events for Metrics {
    fn record(&self, event: Event<'_>) {
        match event {
            Event::LoginStarted { provider } => {
                self.logins_started
                    .get_or_create(&provider_label(provider))
                    .inc();
            }
            Event::LoginCompleted { provider } => {
                self.logins_completed
                    .get_or_create(&provider_label(provider))
                    .inc();
            }
            Event::LoginFailed { reason } => {
                self.logins_failed
                    .get_or_create(&ReasonLabel {
                        reason: reason.to_owned(),
                    })
                    .inc();
            }
            Event::Refresh { provider, outcome } => {
                self.refreshes
                    .get_or_create(&ProviderOutcomeLabels {
                        provider: provider.as_str().to_owned(),
                        outcome: outcome.as_str().to_owned(),
                    })
                    .inc();
            }
            Event::SessionCreated { provider } => {
                self.sessions_created
                    .get_or_create(&provider_label(provider))
                    .inc();
            }
            Event::SessionsEnded { reason, count } => {
                self.sessions_ended
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str().to_owned(),
                    })
                    .inc_by(count);
            }
            Event::ConnectionsEnded { reason, count } => {
                self.connections_ended
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str().to_owned(),
                    })
                    .inc_by(count);
            }
            Event::BackchannelLogout { outcome } => {
                self.backchannel_logouts
                    .get_or_create(&OutcomeLabel {
                        outcome: outcome.to_owned(),
                    })
                    .inc();
            }
            Event::ProxyRequest {
                route,
                status,
                elapsed,
            } => self.proxy_request(route, status, elapsed),
            Event::EndpointRequest {
                endpoint,
                status,
                elapsed,
            } => self.endpoint_request(endpoint, status, elapsed),
            Event::JwksRefetched { provider, ok } => {
                self.jwks_refetches
                    .get_or_create(&ProviderOutcomeLabels {
                        provider: provider.as_str().to_owned(),
                        outcome: if ok { "ok" } else { "failed" }.to_owned(),
                    })
                    .inc();
            }
            // `Event` is non-exhaustive: a new event is simply not counted until it is here.
            _ => {}
        }
    }
}

/// The `/metrics` app for the metrics listener: `GET /metrics` answers the registry as text,
/// OpenMetrics when `Accept` asks for it, else the classic Prometheus format; anything else
/// `404`.
pub fn metrics_app(metrics: Arc<Metrics>) -> impl Endpoint {
    Route::new().at("/metrics", get(scrape)).data(metrics)
}

#[handler]
fn scrape(req: &poem::Request, metrics: poem::web::Data<&Arc<Metrics>>) -> Response {
    let (content_type, text) = if accepts_open_metrics(req.headers()) {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            classic_text(&metrics.encode()),
        )
    };
    Response::builder()
        .status(StatusCode::OK)
        .content_type(content_type)
        .body(text)
}

/// Whether `Accept` names `application/openmetrics-text` with a quality above zero.
fn accepts_open_metrics(headers: &poem::http::HeaderMap) -> bool {
    headers
        .get_all(poem::http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media_type.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

/// OpenMetrics text (as [`Metrics::encode`] writes it) in the classic Prometheus text format
/// 0.0.4: a counter family's `# HELP` and `# TYPE` name its `_total` samples, the `info`
/// family is a `gauge` named as its `_info` sample, and the `# UNIT` and `# EOF` lines are left
/// out. Samples and label values are written alike in both formats.
fn classic_text(open_metrics: &str) -> String {
    let mut renamed: std::collections::HashMap<&str, (String, &str)> =
        std::collections::HashMap::new();
    for line in open_metrics.lines() {
        let Some((name, kind)) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        match kind {
            "counter" => renamed.insert(name, (format!("{name}_total"), "counter")),
            "info" => renamed.insert(name, (format!("{name}_info"), "gauge")),
            _ => None,
        };
    }
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            let (classic, kind) = renamed.get(name)?;
            let rest = if prefix == "# TYPE " { *kind } else { rest };
            Some(format!("{prefix}{classic} {rest}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// A store port timed and counted: every call observes `bff_store_call_duration_seconds` and,
/// when it fails with [`StoreError::Unavailable`], counts `bff_store_errors_total`, labelled by
/// the adapter's name and the method. `NotFound` and `Conflict` are answers, not failures.
pub struct Metered<S: ?Sized> {
    inner: Arc<S>,
    adapter: &'static str,
    metrics: Arc<Metrics>,
    /// The latency histogram of `get`, the call of nearly every request, taken from its family
    /// once (on the first call, so an unused store shows no series) rather than looked up by
    /// its labels (hashed, behind the family's lock) on every call ([`Self::timed_into`]).
    get_latency: OnceLock<Histogram>,
}

impl<S: ?Sized> Metered<S> {
    /// `inner`, measured under the adapter name `adapter` (`memory`, `postgres`, `redis`).
    pub fn new(inner: Arc<S>, adapter: &'static str, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            adapter,
            metrics,
            get_latency: OnceLock::new(),
        }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.timed_into(None, operation, call).await
    }

    /// [`Self::timed`], observing into `kept` (a histogram taken from the family on the first
    /// call) when given, else into the family's histogram looked up by its labels.
    async fn timed_into<T>(
        &self,
        kept: Option<&OnceLock<Histogram>>,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let failed = matches!(result, Err(StoreError::Unavailable(_)));
        match kept {
            Some(kept) => {
                kept.get_or_init(|| self.metrics.store_latency(self.adapter, operation))
                    .observe(started.elapsed().as_secs_f64());
                if failed {
                    self.metrics.store_failed(self.adapter, operation);
                }
            }
            None => {
                self.metrics
                    .store_call(self.adapter, operation, started.elapsed(), failed);
            }
        }
        result
    }
}

impl<S: ?Sized> std::fmt::Debug for Metered<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for Metered<dyn SessionStore> {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.timed("create", self.inner.create(session)).await
    }

    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.timed_into(Some(&self.get_latency), "get", self.inner.get(key, now))
            .await
    }

    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        self.timed("update", self.inner.update(session, now)).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.timed(
            "touch",
            self.inner.touch(key, last_seen_at, idle_expires_at, now),
        )
        .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.timed("delete", self.inner.delete(key)).await
    }

    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        self.timed("delete_many", self.inner.delete_many(keys))
            .await
    }

    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.timed(
            "find_by_provider_session",
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
        self.timed(
            "find_by_connection",
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
        self.timed(
            "find_by_subject",
            self.inner.find_by_subject(issuer, subject, now),
        )
        .await
    }

    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        self.timed(
            "delete_by_provider_session",
            self.inner.delete_by_provider_session(issuer, sid),
        )
        .await
    }

    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        self.timed(
            "delete_by_subject",
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
        self.timed("put_renewal", self.inner.put_renewal(old, alias, now))
            .await
    }

    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        self.timed("get_renewal", self.inner.get_renewal(old, now))
            .await
    }

    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        self.timed("sweep_expired", self.inner.sweep_expired(now, batch))
            .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.timed("check", self.inner.check()).await
    }
}

#[async_trait]
impl PendingLoginStore for Metered<dyn PendingLoginStore> {
    async fn put(&self, login: &PendingLogin) -> Result<(), StoreError> {
        self.timed("pending_put", self.inner.put(login)).await
    }

    async fn take(&self, state: &str, now: Timestamp) -> Result<Option<PendingLogin>, StoreError> {
        self.timed("pending_take", self.inner.take(state, now))
            .await
    }
}

#[async_trait]
impl ReplayCache for Metered<dyn ReplayCache> {
    async fn insert_if_absent(
        &self,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.timed(
            "replay_insert",
            self.inner.insert_if_absent(value, expires_at, now),
        )
        .await
    }

    async fn forget(&self, value: &str) -> Result<(), StoreError> {
        self.timed("replay_forget", self.inner.forget(value)).await
    }
}

#[async_trait]
impl Lock for Metered<dyn Lock> {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.timed("lock_acquire", self.inner.try_acquire(name, owner, ttl))
            .await
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        self.timed("lock_release", self.inner.release(name, owner))
            .await
    }

    async fn is_held(&self, name: &str) -> Result<bool, StoreError> {
        self.timed("lock_is_held", self.inner.is_held(name)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::Ordering;

    use bff_domain::SessionId;
    use bff_domain::testkit::{FakeStores, SeededRandom};

    use super::*;

    /// Endpoint requests land in the series of their own endpoint and status, counted and timed,
    /// whether the series was kept already or not.
    /// The classic rendering carries every sample of the OpenMetrics one, unchanged, and each
    /// sample's family is declared under the sample's own name with a classic type.
    #[test]
    fn the_classic_format_has_the_same_samples_under_classic_declarations() {
        let metrics = Metrics::new();
        metrics.endpoint_request("/user", 200, Duration::from_millis(3));
        let open_metrics = metrics.encode();
        let classic = classic_text(&open_metrics);
        let samples = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert!(!samples(&open_metrics).is_empty());
        assert_eq!(samples(&classic), samples(&open_metrics));
        assert!(
            !classic.contains("# EOF") && !classic.contains("# UNIT "),
            "{classic}"
        );
        let declared: Vec<(&str, &str)> = classic
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
            .collect();
        assert!(declared.contains(&("bff_endpoint_requests_total", "counter")));
        assert!(declared.contains(&("bff_build_info", "gauge")));
        assert!(
            declared.contains(&("bff_endpoint_request_duration_seconds", "histogram")),
            "{classic}"
        );
        for (name, kind) in &declared {
            assert!(
                ["counter", "gauge", "histogram"].contains(kind),
                "{name} {kind}"
            );
            let help = format!("# HELP {name} ");
            assert!(classic.contains(&help), "no {help}");
        }
        for sample in samples(&classic) {
            let name = sample.split(['{', ' ']).next().unwrap();
            assert!(
                declared.iter().any(|(family, kind)| name == *family
                    || (*kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|suffix| name == format!("{family}{suffix}")))),
                "{sample} has no declaration"
            );
        }
    }

    #[test]
    fn open_metrics_is_what_accept_asks_for_with_a_quality_above_zero() {
        use poem::http::{HeaderMap, HeaderValue, header};
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
            version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, open_metrics) in [
            (Some(prometheus), true),
            (Some("Application/OpenMetrics-Text"), true),
            (
                Some("text/plain, application/openmetrics-text; q=0.2"),
                true,
            ),
            (None, false),
            (Some("*/*"), false),
            (Some("text/plain;version=0.0.4"), false),
            (Some("application/openmetrics-text;q=0"), false),
            (Some("application/openmetrics-textual"), false),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(accept) = accept {
                headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
            }
            assert_eq!(accepts_open_metrics(&headers), open_metrics, "{accept:?}");
        }
    }

    #[test]
    fn endpoint_requests_are_counted_by_endpoint_and_status() {
        let metrics = Metrics::new();
        let answers = [
            ("/user", 200, 3),
            ("/user", 401, 2),
            ("/callback", 200, 1),
            ("/callback", 502, 1),
            ("other", 404, 4),
        ];
        // Interleaved, so kept series are found among others.
        for round in 0..4 {
            for (endpoint, status, times) in answers {
                if round < times {
                    metrics.endpoint_request(endpoint, status, Duration::from_millis(3));
                }
            }
        }
        let text = metrics.encode();
        for line in [
            r#"bff_endpoint_requests_total{endpoint="/user",status="200",class="2xx"} 3"#,
            r#"bff_endpoint_requests_total{endpoint="/user",status="401",class="4xx"} 2"#,
            r#"bff_endpoint_requests_total{endpoint="/callback",status="200",class="2xx"} 1"#,
            r#"bff_endpoint_requests_total{endpoint="/callback",status="502",class="5xx"} 1"#,
            r#"bff_endpoint_requests_total{endpoint="other",status="404",class="4xx"} 4"#,
            r#"bff_endpoint_request_duration_seconds_count{endpoint="/user",class="2xx"} 3"#,
            r#"bff_endpoint_request_duration_seconds_count{endpoint="/user",class="4xx"} 2"#,
            r#"bff_endpoint_request_duration_seconds_count{endpoint="/callback",class="5xx"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert_eq!(metrics.endpoint_series.len(), answers.len());
    }

    /// Connections dropped from sessions that go on are counted apart from ended sessions.
    #[test]
    fn ended_connections_are_counted_by_reason() {
        let metrics = Metrics::new();
        metrics.record(Event::ConnectionsEnded {
            reason: bff_domain::ports::SessionEndReason::BackchannelLogout,
            count: 2,
        });
        let text = metrics.encode();
        let line = r#"bff_connections_ended_total{reason="backchannel_logout"} 2"#;
        assert!(text.contains(line), "{line} not in\n{text}");
        assert!(!text.contains("bff_sessions_ended_total{"), "{text}");
    }

    /// Proxied requests too, by route prefix (a configured, not a static, string) and status.
    #[test]
    fn proxied_requests_are_counted_by_route_and_status() {
        let metrics = Metrics::new();
        for (route, status) in [
            ("/api", 200),
            ("/api/admin", 200),
            ("/api", 502),
            ("/api", 200),
        ] {
            let route = route.to_owned();
            metrics.record(Event::ProxyRequest {
                route: &route,
                status,
                elapsed: Duration::from_millis(20),
            });
        }
        let text = metrics.encode();
        for line in [
            r#"bff_proxy_requests_total{route="/api",status="200",class="2xx"} 2"#,
            r#"bff_proxy_requests_total{route="/api/admin",status="200",class="2xx"} 1"#,
            r#"bff_proxy_requests_total{route="/api",status="502",class="5xx"} 1"#,
            r#"bff_proxy_request_duration_seconds_count{route="/api",class="2xx"} 2"#,
            r#"bff_proxy_request_duration_seconds_count{route="/api",class="5xx"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert_eq!(metrics.proxy_series.len(), 3);
    }

    /// Session reads, the call kept apart from the others for speed, are observed in the same
    /// series as every other call, and a failed one is counted as an error.
    #[tokio::test]
    async fn session_reads_are_observed_and_failed_ones_counted() {
        let metrics = Arc::new(Metrics::new());
        let stores = Arc::new(FakeStores::default());
        let sessions: Arc<dyn SessionStore> = stores.clone();
        let metered = Metered::new(sessions, "memory", metrics.clone());
        let key = SessionId::generate(&SeededRandom::new(7)).key();
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        assert!(metered.get(&key, now).await.unwrap().is_none());
        assert!(metered.get(&key, now).await.unwrap().is_none());
        assert!(!metrics.encode().contains("bff_store_errors_total{"));
        stores.fail.store(true, Ordering::SeqCst);
        assert!(metered.get(&key, now).await.is_err());
        metered.delete(&key).await.unwrap_err();
        let text = metrics.encode();
        for line in [
            r#"bff_store_call_duration_seconds_count{adapter="memory",operation="get"} 3"#,
            r#"bff_store_errors_total{adapter="memory",operation="get"} 1"#,
            r#"bff_store_call_duration_seconds_count{adapter="memory",operation="delete"} 1"#,
            r#"bff_store_errors_total{adapter="memory",operation="delete"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
