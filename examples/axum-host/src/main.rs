//! Runs the axum host by hand: configuration from `AXUM_HOST_*` environment variables (see the
//! library's docs), the provider discovered at start, expired sessions swept every minute.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bff_domain::Secret;
use bff_example_axum::{HostConfig, PublicSite, app, build_bff};

const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:3000";
/// Sweep at most this many batches of expired sessions per minute.
const SWEEP_BATCHES: u32 = 10;

fn required(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is required"))
}

fn optional(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn config_from_env() -> Result<(HostConfig, String), String> {
    let site = PublicSite::parse(&optional("AXUM_HOST_PUBLIC_URL", DEFAULT_PUBLIC_URL))
        .map_err(|e| e.to_string())?;
    let config = HostConfig {
        site,
        issuer: required("AXUM_HOST_ISSUER")?,
        client_id: required("AXUM_HOST_CLIENT_ID")?,
        client_secret: Secret::new(required("AXUM_HOST_CLIENT_SECRET")?),
        vault_key: std::env::var("AXUM_HOST_VAULT_KEY").ok().map(Secret::new),
    };
    Ok((config, optional("AXUM_HOST_LISTEN", DEFAULT_LISTEN)))
}

async fn run() -> Result<(), String> {
    let (config, listen) = config_from_env()?;
    let bff = Arc::new(build_bff(&config).await.map_err(|e| e.to_string())?);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("listen on {listen}: {e}"))?;
    let sweeper = bff.clone();
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            if let Err(e) = sweeper.sweep_expired(SWEEP_BATCHES).await {
                tracing::warn!(error = %e, "sweeping expired sessions failed");
            }
        }
    });
    tracing::info!(
        "serving {} on {listen}; log in at {}",
        config.site.origin(),
        config.site.url("/login")
    );
    axum::serve(listener, app(bff, config.site))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
