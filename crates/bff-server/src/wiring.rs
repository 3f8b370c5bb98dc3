//! Builds the service from configuration: adapters, providers, the `Bff` use cases, the HTTP app.
//!
//! This is the only place that knows every adapter.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bff_domain::ports::{
    Clock, IdentityProvider, Lock, PendingLoginStore, ReplayCache, SessionStore,
};
use bff_domain::{Bff, BffPolicy, BffPorts, Providers, SessionLifetime, Timestamp};
use bff_http::{HttpSettings, ReadinessCheck};
use bff_oidc::{DeferredProvider, OidcProvider, RetryBackoff};
use bff_store_memory::MemoryStore;
use bff_store_postgres::PostgresStore;
use bff_store_redis::RedisStore;
use bff_store_tiered::TieredSessionStore;

use crate::config::{Config, StoreKind};
use crate::metrics::{Metered, Metrics};
use crate::traced::{TracedProvider, TracedStore};

/// The system clock: the one place the server reads wall-clock time for the domain.
#[derive(Debug, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_unix_seconds(seconds)
    }

    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Building the service failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// A store could not be prepared.
    #[error("store: {0}")]
    Store(String),
    /// A provider's discovery failed.
    #[error("provider {provider}: {reason}")]
    Provider {
        /// Provider name.
        provider: String,
        /// What went wrong.
        reason: String,
    },
}

/// Everything `serve` needs.
pub struct Service {
    /// The use cases.
    pub bff: Arc<Bff>,
    /// HTTP settings.
    pub settings: Arc<HttpSettings>,
    /// `/readyz` checks.
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// The API proxy, when `[[routes]]` configures any.
    pub proxy: Option<bff_http::ApiProxy>,
    /// Background discovery of providers that were unreachable at start-up; abort on shutdown.
    pub discovery_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// What the use cases, the proxy and the stores count; served on `[metrics] listen`.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("bff", &self.bff)
            .finish_non_exhaustive()
    }
}

struct StoreReadiness {
    name: String,
    store: Arc<dyn SessionStore>,
}

#[async_trait]
impl ReadinessCheck for StoreReadiness {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), String> {
        self.store.check().await.map_err(|e| e.to_string())
    }
}

/// A provider as readiness sees it: discovered at start-up, or still retrying discovery.
enum ProviderHandle {
    Discovered(Arc<OidcProvider>),
    Deferred(Arc<DeferredProvider>),
}

struct ProviderReadiness {
    name: String,
    provider: ProviderHandle,
}

#[async_trait]
impl ReadinessCheck for ProviderReadiness {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), String> {
        let checked = match &self.provider {
            ProviderHandle::Discovered(p) => p.check().await,
            ProviderHandle::Deferred(p) => p.check().await,
        };
        checked.map_err(|e| match std::error::Error::source(&e) {
            // The cause says why (e.g. "discovery pending: cannot fetch ..."); it carries no
            // secret: discovery is unauthenticated.
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        })
    }
}

/// `/readyz` answers `503` `draining` once shutdown has begun, so load balancers stop sending
/// new requests while the in-flight ones finish.
#[derive(Debug)]
pub struct DrainingReadiness {
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl DrainingReadiness {
    /// A check that fails once `draining` is set.
    pub fn new(draining: Arc<std::sync::atomic::AtomicBool>) -> Self {
        Self { draining }
    }
}

#[async_trait]
impl ReadinessCheck for DrainingReadiness {
    fn name(&self) -> &str {
        "draining"
    }

    async fn check(&self) -> Result<(), String> {
        if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
            Err("shutting down".into())
        } else {
            Ok(())
        }
    }
}

/// The store ports as configured.
struct Stores {
    sessions: Arc<dyn SessionStore>,
    pending_logins: Arc<dyn PendingLoginStore>,
    locks: Arc<dyn Lock>,
    replay: Arc<dyn ReplayCache>,
    readiness: Vec<Arc<dyn ReadinessCheck>>,
}

fn readiness_of(name: &str, store: Arc<dyn SessionStore>) -> Arc<dyn ReadinessCheck> {
    Arc::new(StoreReadiness {
        name: format!("store:{name}"),
        store,
    })
}

fn postgres_store(config: &Config) -> Result<Arc<PostgresStore>, BuildError> {
    let pg = config
        .store
        .postgres
        .as_ref()
        .ok_or_else(|| BuildError::Config("[store.postgres] is missing".into()))?;
    PostgresStore::connect_lazy(pg)
        .map(Arc::new)
        .map_err(|e| BuildError::Config(e.to_string()))
}

fn redis_store(config: &Config) -> Result<Arc<RedisStore>, BuildError> {
    let redis = config
        .store
        .redis
        .as_ref()
        .ok_or_else(|| BuildError::Config("[store.redis] is missing".into()))?;
    RedisStore::connect_lazy(redis)
        .map(Arc::new)
        .map_err(|e| BuildError::Config(e.to_string()))
}

/// Applies the Postgres migrations (for `bff-server migrate` and `migrate_on_start`).
///
/// # Errors
/// [`BuildError::Store`] when there is no Postgres store or a migration fails.
pub async fn migrate(config: &Config) -> Result<(), BuildError> {
    postgres_store(config)?
        .migrate()
        .await
        .map_err(|e| BuildError::Store(e.to_string()))
}

/// Every store port of `adapter`, each call timed and counted in `metrics`.
fn metered<S>(store: &Arc<S>, adapter: &'static str, metrics: &Arc<Metrics>) -> Stores
where
    S: SessionStore + PendingLoginStore + Lock + ReplayCache + 'static,
{
    let sessions: Arc<dyn SessionStore> = store.clone();
    let pending_logins: Arc<dyn PendingLoginStore> = store.clone();
    let locks: Arc<dyn Lock> = store.clone();
    let replay: Arc<dyn ReplayCache> = store.clone();
    Stores {
        sessions: Arc::new(Metered::new(sessions, adapter, metrics.clone())),
        pending_logins: Arc::new(Metered::new(pending_logins, adapter, metrics.clone())),
        locks: Arc::new(Metered::new(locks, adapter, metrics.clone())),
        replay: Arc::new(Metered::new(replay, adapter, metrics.clone())),
        readiness: Vec::new(),
    }
}

async fn build_stores(config: &Config, metrics: &Arc<Metrics>) -> Result<Stores, BuildError> {
    let migrate_on_start = config
        .store
        .postgres
        .as_ref()
        .is_some_and(|p| p.migrate_on_start);
    Ok(match config.store.kind {
        StoreKind::Memory => {
            let store = TracedStore::new("memory", Arc::new(MemoryStore::new()));
            Stores {
                readiness: vec![readiness_of("memory", store.clone())],
                ..metered(&store, "memory", metrics)
            }
        }
        StoreKind::Postgres => {
            let store = postgres_store(config)?;
            if migrate_on_start {
                migrate(config).await?;
            }
            let store = TracedStore::new("postgres", store);
            Stores {
                readiness: vec![readiness_of("postgres", store.clone())],
                ..metered(&store, "postgres", metrics)
            }
        }
        StoreKind::Redis => {
            let store = TracedStore::new("redis", redis_store(config)?);
            Stores {
                readiness: vec![readiness_of("redis", store.clone())],
                ..metered(&store, "redis", metrics)
            }
        }
        StoreKind::PostgresRedis => {
            let record = postgres_store(config)?;
            if migrate_on_start {
                migrate(config).await?;
            }
            let cache = redis_store(config)?;
            // Each tier measured on its own, so an outage shows which one it is; the tiered
            // store's calls are one span each, the cache's other ports a span of their own.
            let record_tier = metered(&record, "postgres", metrics).sessions;
            let cache_tier = metered(&cache, "redis", metrics).sessions;
            let cache_ports = metered(&TracedStore::new("redis", cache.clone()), "redis", metrics);
            Stores {
                sessions: TracedStore::new(
                    "postgres+redis",
                    Arc::new(TieredSessionStore::new(record_tier, cache_tier)),
                ),
                readiness: vec![
                    readiness_of("postgres", record),
                    readiness_of("redis", cache),
                ],
                ..cache_ports
            }
        }
    })
}

/// Builds the service: discovers every provider, creates the stores and the cipher. A provider
/// that cannot be reached is served as a [`DeferredProvider`] (logins there `503`, `/readyz`
/// `503` naming it) while discovery is retried in the background.
///
/// # Errors
/// [`BuildError`] when a provider's metadata is wrong (another issuer, invalid) or the
/// configuration is unusable.
pub async fn build(config: &Config) -> Result<Service, BuildError> {
    let metrics = Arc::new(Metrics::new());
    let (providers, readiness, tasks) =
        discover_providers(config, RetryBackoff::default(), &metrics).await?;
    let mut service = build_with_metrics(config, providers, readiness, metrics).await?;
    service.discovery_tasks = tasks;
    Ok(service)
}

/// The providers, their readiness checks and the background discovery tasks of the deferred
/// ones.
type DiscoveredProviders = (
    Vec<Arc<dyn IdentityProvider>>,
    Vec<Arc<dyn ReadinessCheck>>,
    Vec<tokio::task::JoinHandle<()>>,
);

/// Discovers every configured provider, with a readiness check for each. One that cannot be
/// reached now is deferred: discovery is retried with `backoff`.
async fn discover_providers(
    config: &Config,
    backoff: RetryBackoff,
    metrics: &Arc<Metrics>,
) -> Result<DiscoveredProviders, BuildError> {
    // The provider sends the browser back here after logout; the endpoint checks the logout
    // `state` and continues to `/`.
    let post_logout_return = format!(
        "{}{}/logout/callback",
        config.public_base(),
        config.http.prefix
    );
    let mut readiness: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
    let mut providers: Vec<Arc<dyn IdentityProvider>> = Vec::new();
    let mut tasks = Vec::new();
    for (id, section) in &config.providers {
        let oidc_config = section.to_config(
            id.clone(),
            &post_logout_return,
            config.session.fetch_userinfo,
        );
        let failed = |reason: String| BuildError::Provider {
            provider: id.to_string(),
            reason,
        };
        let http = bff_oidc::http_client(section.http_timeout, section.ca_file.as_ref())
            .map_err(|e| failed(e.to_string()))?;
        let handle = match OidcProvider::discover(oidc_config.clone(), http.clone()).await {
            Ok(discovered) => {
                let discovered = Arc::new(discovered.with_events(metrics.clone()));
                providers.push(discovered.clone());
                ProviderHandle::Discovered(discovered)
            }
            Err(e) if DeferredProvider::is_transient(&e) => {
                let (deferred, task) = DeferredProvider::spawn_with_events(
                    oidc_config,
                    http,
                    &e,
                    backoff,
                    metrics.clone(),
                );
                tasks.push(task);
                providers.push(deferred.clone());
                ProviderHandle::Deferred(deferred)
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        readiness.push(Arc::new(ProviderReadiness {
            name: format!("provider:{id}"),
            provider: handle,
        }));
    }
    Ok((providers, readiness, tasks))
}

/// [`build`] with the identity providers given instead of discovered, so a benchmark can serve
/// the real wiring (stores, cipher, policy, proxy) with an in-process provider. `readiness`
/// holds the providers' checks; the stores' are put before them.
///
/// # Errors
/// [`BuildError`] when the configuration is unusable.
pub async fn build_with_providers(
    config: &Config,
    providers: Vec<Arc<dyn IdentityProvider>>,
    readiness: Vec<Arc<dyn ReadinessCheck>>,
) -> Result<Service, BuildError> {
    build_with_metrics(config, providers, readiness, Arc::new(Metrics::new())).await
}

/// [`build_with_providers`] counting into `metrics` (which the providers may already tell).
async fn build_with_metrics(
    config: &Config,
    providers: Vec<Arc<dyn IdentityProvider>>,
    mut readiness: Vec<Arc<dyn ReadinessCheck>>,
    metrics: Arc<Metrics>,
) -> Result<Service, BuildError> {
    let cipher = bff_crypto::VaultCipher::new(config.vault_keys.clone());
    let default_redirect = format!("{}/", config.public_base());
    let providers = providers.into_iter().map(TracedProvider::wrap).collect();
    let providers = Providers::new(providers, config.default_provider.clone())
        .map_err(|e| BuildError::Config(e.to_string()))?;

    let stores = build_stores(config, &metrics).await?;
    readiness.splice(0..0, stores.readiness);
    let (sessions, pending_logins, locks, replay) = (
        stores.sessions,
        stores.pending_logins,
        stores.locks,
        stores.replay,
    );

    let prefix = &config.http.prefix;
    let policy = BffPolicy {
        lifetime: SessionLifetime {
            idle: Duration::from_secs(config.session.idle_timeout_secs),
            absolute: Duration::from_secs(config.session.absolute_timeout_secs),
        },
        pending_login_ttl: Duration::from_secs(config.session.login_timeout_secs),
        callback_url: format!("{}{prefix}/callback", config.public_base()),
        app_redirect_url: config
            .server
            .app_redirect_url
            .as_ref()
            .map_or(default_redirect, |url| url.as_str().to_owned()),
        refresh_margin: Duration::from_secs(config.session.refresh_margin_secs),
        fetch_userinfo: config.session.fetch_userinfo,
        renewal: config.session.renewal(),
        client_binding: config.session.client_binding(),
    };
    let bff = Bff::new(
        BffPorts {
            sessions: sessions.clone(),
            pending_logins,
            locks,
            replay,
            cipher: Arc::new(cipher),
            clock: Arc::new(SystemClock),
            random: Arc::new(bff_crypto::SystemRandom::new()),
        },
        providers,
        policy,
    )
    .with_events(metrics.clone());
    let bff = Arc::new(bff);
    let settings = Arc::new(config.http_settings());
    let proxy = if config.routes.routes().is_empty() {
        None
    } else {
        let proxy = bff_http::ApiProxy::new(
            bff.clone(),
            settings.clone(),
            config.routes.clone(),
            &config.upstream_trust,
        )
        .map_err(|e| BuildError::Config(format!("routes: {e}")))?
        .with_trusted_proxies(config.trusted_proxies());
        Some(proxy)
    };
    Ok(Service {
        bff,
        settings,
        readiness,
        proxy,
        discovery_tasks: Vec::new(),
        metrics,
    })
}
