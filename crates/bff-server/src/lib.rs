//! `bff-server`: reads configuration, wires adapters into the `bff-domain` use cases and serves
//! the `bff-http` application.
//!
//! [`serve`] takes a bound listener and a shutdown future so tests can run the real server on
//! port 0 and stop it cleanly; `main` is a thin CLI around it. With `[admin]` configured it also
//! serves the operators' admin API on its own listener ([`serve_with_admin`] takes that listener
//! bound, for tests); both stop on the same shutdown. With `[metrics] listen` it serves the
//! Prometheus `GET /metrics` ([`metrics`]) on a third listener ([`serve_with_listeners`] takes
//! every extra listener bound), stopped with the others.
//!
//! Shutdown drains: when the shutdown future completes, `/readyz` turns `503 draining`; after
//! `[server] shutdown_delay_secs` the listeners stop accepting, and in-flight requests (proxied
//! streams included) get up to `shutdown_timeout_secs` to finish.

pub mod config;
pub mod conformance;
mod json_log;
mod logging;
pub mod metrics;
pub mod telemetry;
mod traced;
pub mod wiring;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use config::{Config, ConfigError};
pub use logging::{LogGuard, init_logging};
pub use telemetry::{Telemetry, TelemetryError};
pub use wiring::{BuildError, Service, build, build_with_providers};

/// Serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Building the service failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// The admin API's listener could not be bound.
    #[error("cannot listen on admin.listen {address}: {source}")]
    AdminListen {
        /// The configured address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics listener could not be bound.
    #[error("cannot listen on metrics.listen {address}: {source}")]
    MetricsListen {
        /// The configured address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An admin listener was given without an `[admin]` credential to guard it.
    #[error("an admin listener needs admin.listen and admin.token_sha256")]
    AdminNotConfigured,
}

/// Builds the service from `config` and serves it on `listener` until `shutdown` completes; with
/// `[admin]` configured, also the admin API on `admin.listen`.
///
/// # Errors
/// [`ServeError`] when building fails or a listener breaks.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let admin = match config.admin.enabled() {
        Some((address, _)) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| ServeError::AdminListen { address, source })?,
        ),
        None => None,
    };
    let metrics = match config.metrics.listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| ServeError::MetricsListen { address, source })?,
        ),
        None => None,
    };
    serve_with_listeners(
        config,
        listener,
        ExtraListeners { admin, metrics },
        shutdown,
    )
    .await
}

/// The listeners besides the browser's, bound by the caller (tests bind port 0). `None` serves
/// nothing there.
#[derive(Debug, Default)]
pub struct ExtraListeners {
    /// The admin API's; needs an `[admin]` credential.
    pub admin: Option<tokio::net::TcpListener>,
    /// Prometheus `GET /metrics`.
    pub metrics: Option<tokio::net::TcpListener>,
}

/// [`serve`] with the admin API's listener already bound (tests bind port 0); `None` serves no
/// admin API. Both servers stop when `shutdown` completes, or when either stops.
///
/// # Errors
/// [`ServeError`] when building fails, a listener breaks, or `admin_listener` is given without
/// an `[admin]` credential.
pub async fn serve_with_admin(
    config: Config,
    listener: tokio::net::TcpListener,
    admin_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let extra = ExtraListeners {
        admin: admin_listener,
        metrics: None,
    };
    serve_with_listeners(config, listener, extra, shutdown).await
}

/// [`serve`] with every listener already bound: the browser's, and those of `extra`. All stop
/// when `shutdown` completes, or when any of them stops.
///
/// # Errors
/// [`ServeError`] when building fails, a listener breaks, or an admin listener is given without
/// an `[admin]` credential.
pub async fn serve_with_listeners(
    config: Config,
    listener: tokio::net::TcpListener,
    extra: ExtraListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let ExtraListeners {
        admin: admin_listener,
        metrics: metrics_listener,
    } = extra;
    if config.plain_http() {
        tracing::warn!(
            "dev.allow_plain_http: serving over plain HTTP; cookies lack Secure and the __Host- prefix. Never use this in production."
        );
    }
    log_conformance(&conformance::check(&config));
    let admin_credential = match (&admin_listener, config.admin.enabled()) {
        (Some(_), Some((_, credential))) => Some(credential.clone()),
        (Some(_), None) => return Err(ServeError::AdminNotConfigured),
        (None, _) => None,
    };
    let service = build(&config).await?;
    let sweeper = tokio::spawn(sweep_expired_sessions(
        service.bff.clone(),
        Duration::from_secs(config.store.sweep_interval_secs.max(1)),
    ));
    // Set when shutdown begins: `/readyz` answers `503 draining` from then on.
    let draining = Arc::new(AtomicBool::new(false));
    let mut readiness = service.readiness.clone();
    readiness.push(Arc::new(wiring::DrainingReadiness::new(draining.clone())));
    let app = bff_http::app(
        service.bff.clone(),
        service.settings.clone(),
        readiness,
        config.server.static_dir.clone(),
        service.proxy.clone(),
    );
    let app = with_api_explorer(app, &config, &service);
    // One stop signal for both servers: the caller's shutdown, or either server ending.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = std::sync::Arc::new(stop);
    let on_shutdown = stop.clone();
    let delay = Duration::from_secs(config.server.shutdown_delay_secs);
    let drain_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
    let shutdown_watcher = tokio::spawn(async move {
        shutdown.await;
        draining.store(true, Ordering::SeqCst);
        tracing::info!(
            accepting_for_secs = delay.as_secs(),
            "draining: /readyz answers 503"
        );
        // Still accepting, so a load balancer polling `/readyz` moves traffic away first.
        tokio::time::sleep(delay).await;
        on_shutdown.send_replace(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "bff-server listening"
    );
    let limits = config.server.request_limits();
    let main_stop = stop.clone();
    let main_server = {
        let stopped = stopped.clone();
        async move {
            let result =
                bff_http::serve(listener, app, limits, until_stopped(stopped), drain_timeout).await;
            main_stop.send_replace(true);
            result
        }
    };
    let admin_bff = service.bff.clone();
    let admin_stop = stop.clone();
    let metrics_stopped = stopped.clone();
    let admin_server = async move {
        let (Some(listener), Some(credential)) = (admin_listener, admin_credential) else {
            return Ok(());
        };
        tracing::info!(
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admin = credential.fingerprint(),
            "admin API listening"
        );
        let admin_app = bff_http::limit_heads(bff_http::admin_app(admin_bff, credential), limits);
        let result = bff_http::serve(
            listener,
            admin_app,
            limits,
            until_stopped(stopped),
            drain_timeout,
        )
        .await;
        admin_stop.send_replace(true);
        result
    };
    let metrics = service.metrics.clone();
    let metrics_server = async move {
        let Some(listener) = metrics_listener else {
            return Ok(());
        };
        tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics listening");
        let metrics_app = bff_http::limit_heads(metrics::metrics_app(metrics), limits);
        let result = bff_http::serve(
            listener,
            metrics_app,
            limits,
            until_stopped(metrics_stopped),
            drain_timeout,
        )
        .await;
        stop.send_replace(true);
        result
    };
    let (main_result, admin_result, metrics_result) =
        tokio::join!(main_server, admin_server, metrics_server);
    shutdown_watcher.abort();
    sweeper.abort();
    for task in &service.discovery_tasks {
        task.abort();
    }
    // The stores' pools close when their last handle goes: the servers have dropped the apps,
    // the aborted tasks drop theirs, and this drops the service's.
    drop(service);
    main_result.map_err(ServeError::Io)?;
    admin_result.map_err(ServeError::Io)?;
    metrics_result.map_err(ServeError::Io)
}

/// The conformance self-check at start: a line per requirement (a warning per violation), then
/// the verdict, so each reads on its own in JSON and in text logs alike.
fn log_conformance(report: &conformance::Report) {
    for finding in &report.findings {
        let requirement = finding.requirement.title();
        match &finding.status {
            conformance::Status::Met(how) => {
                tracing::info!(requirement, status = "ok", how = %how, "conformance");
            }
            conformance::Status::Violated {
                key,
                why,
                allowed_by,
                ..
            } => tracing::warn!(
                requirement,
                status = "violated",
                key,
                why = %why,
                allowed_by,
                "conformance"
            ),
        }
    }
    if report.violations().next().is_some() {
        tracing::warn!(
            "NOT CONFORMANT: serving with MUSTs of {} violated, allowed by development switches. Never use this in production.",
            conformance::SPECIFICATION
        );
    } else {
        tracing::info!(
            "conformance self-check passed ({})",
            conformance::SPECIFICATION
        );
    }
}

/// `app` with the API explorer mounted at [`Config::api_explorer_path`], when there is one.
fn with_api_explorer(
    app: impl poem::Endpoint + 'static,
    config: &Config,
    service: &Service,
) -> poem::endpoint::BoxEndpoint<'static> {
    use poem::EndpointExt as _;
    let app = app.map_to_response().boxed();
    match config.api_explorer_path() {
        Some(path) => {
            tracing::info!(path, "API explorer on");
            let explorer = bff_http::api_explorer(service.bff.clone(), service.settings.clone())
                .map_to_response()
                .boxed();
            ExplorerOr {
                path,
                explorer,
                app,
            }
            .boxed()
        }
        None => app,
    }
}

/// The explorer at exactly `path`, everything else to the app. Compared on the raw path, not
/// through a `poem::Route`: a router in front of the app would answer a path it cannot decode
/// with its own plain-text 400, outside the app's problem+json answers and request log.
struct ExplorerOr {
    path: String,
    explorer: poem::endpoint::BoxEndpoint<'static>,
    app: poem::endpoint::BoxEndpoint<'static>,
}

impl poem::Endpoint for ExplorerOr {
    type Output = poem::Response;

    async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
        let path = req.uri().path();
        if path == self.path || path.strip_prefix(&*self.path) == Some("/") {
            self.explorer.call(req).await
        } else {
            self.app.call(req).await
        }
    }
}

/// At most this many batches of expired sessions are removed per tick; the rest waits.
const SWEEP_MAX_BATCHES: u32 = 100;

async fn sweep_expired_sessions(bff: std::sync::Arc<bff_domain::Bff>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        if let Err(e) = bff.sweep_expired(SWEEP_MAX_BATCHES).await {
            tracing::warn!(error = %e, "sweeping expired sessions failed");
        }
    }
}
