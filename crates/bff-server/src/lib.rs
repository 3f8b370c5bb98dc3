//! `bff-server`: reads configuration, wires adapters into the `bff-domain` use cases and serves
//! the `bff-http` application.
//!
//! [`serve`] takes a bound listener and a shutdown future so tests can run the real server on
//! port 0 and stop it cleanly; `main` is a thin CLI around it.

pub mod config;
mod logging;
pub mod wiring;

use std::future::Future;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor as _, TcpAcceptor};

pub use config::{Config, ConfigError};
pub use logging::{LogGuard, init_logging};
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
