//! `bff-server`: reads configuration, wires adapters into the `bff-domain` use cases and serves
//! the `bff-http` application.
//!
//! [`serve`] takes a bound listener and a shutdown future so tests can run the real server on
//! port 0 and stop it cleanly; `main` is a thin CLI around it.

pub mod config;
pub mod wiring;

use std::future::Future;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor as _, TcpAcceptor};

pub use config::{Config, ConfigError};
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
}

/// Builds the service from `config` and serves it on `listener` until `shutdown` completes.
///
/// # Errors
/// [`ServeError`] when building fails or the listener breaks.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.plain_http() {
        tracing::warn!(
            "dev.allow_plain_http: serving over plain HTTP; cookies lack Secure and the __Host- prefix. Never use this in production."
        );
    }
    let service = build(&config).await?;
    let sweeper = tokio::spawn(sweep_expired_sessions(
        service.bff.clone(),
        Duration::from_secs(config.store.sweep_interval_secs.max(1)),
    ));
    let app = bff_http::app(
        service.bff.clone(),
        service.settings.clone(),
        service.readiness.clone(),
        config.server.static_dir.clone(),
        service.proxy.clone(),
    );
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    tracing::info!(address = ?acceptor.local_addr(), "bff-server listening");
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(5)))
        .await;
    sweeper.abort();
    result.map_err(ServeError::Io)
}

/// Installs the process's log subscriber: one line per event on standard output, the level
/// from `RUST_LOG` (default `info`). `main` and the benchmark's server (`cargo xtask bench
/// proxy`) both call it, so the benchmark pays for the same logging as production.
pub fn init_logging() {
    // Colour only for a terminal: escape codes in a log file or a collector are noise.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
