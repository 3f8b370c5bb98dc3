//! Puts the adapters into `bff_domain::Bff`: the OIDC provider found through discovery, the
//! in-memory stores, the vault cipher, the system random source and this host's tokio clock.
//!
//! The same adapters `bff-server` wires from its configuration file, here from a plain struct.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bff_crypto::{SystemRandom, VaultCipher};
use bff_domain::ports::Random as _;
use bff_domain::{Bff, BffPolicy, BffPorts, ProviderId, Providers, Secret, SessionLifetime};
use bff_oidc::{OidcProvider, OidcProviderConfig};
use bff_store_memory::MemoryStore;

use crate::clock::TokioClock;
use crate::site::PublicSite;

/// The one provider's name (the domain supports several; this host configures one).
const PROVIDER: &str = "main";
/// How long a started login can be completed.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Time limit of each call to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the host needs to know.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where browsers reach the host; the callback is `{origin}/callback`.
    pub site: PublicSite,
    /// The provider's issuer identifier (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client registered at the provider for this host.
    pub client_id: String,
    /// Its secret (`client_secret_basic`); redacted in `Debug`.
    pub client_secret: Secret,
    /// The vault key (32 bytes, base64). `None`: a fresh random key, which is enough while the
    /// sessions it seals live in this process's memory anyway.
    pub vault_key: Option<Secret>,
}

/// The host could not be wired.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The vault key is not 32 bytes of base64.
    #[error("vault key: {0}")]
    VaultKey(#[from] bff_crypto::KeyError),
    /// The HTTP client for the provider could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(String),
    /// Discovery failed or the provider configuration is unusable.
    #[error("provider {issuer}: {reason}")]
    Provider {
        /// The configured issuer.
        issuer: String,
        /// What went wrong.
        reason: String,
    },
}

fn random_vault_key(random: &SystemRandom) -> Secret {
    let mut key = [0u8; 32];
    random.fill(&mut key);
    Secret::new(STANDARD.encode(key))
}

/// Builds the use cases over real adapters; discovers the provider (a network call).
///
/// # Errors
/// [`WiringError`] when the vault key is unusable or the provider cannot be discovered.
pub async fn build_bff(config: &HostConfig) -> Result<Bff, WiringError> {
    let random = SystemRandom::new();
    let vault_key = config
        .vault_key
        .clone()
        .unwrap_or_else(|| random_vault_key(&random));
    let cipher = VaultCipher::from_base64_keys([("k1", vault_key.expose())])?;

    let provider_error = |reason: String| WiringError::Provider {
        issuer: config.issuer.clone(),
        reason,
    };
    let id = ProviderId::parse(PROVIDER).map_err(|e| provider_error(e.to_string()))?;
    let mut oidc = OidcProviderConfig::new(
        id.clone(),
        config.issuer.clone(),
        config.client_id.clone(),
        config.client_secret.clone(),
    );
    oidc.scopes = ["openid", "profile", "email"].map(String::from).to_vec();
    oidc.http_timeout = PROVIDER_TIMEOUT;
    let http = bff_oidc::http_client(PROVIDER_TIMEOUT, None)
        .map_err(|e| WiringError::HttpClient(e.to_string()))?;
    let provider = OidcProvider::discover(oidc, http)
        .await
        .map_err(|e| provider_error(e.to_string()))?;
    let providers =
        Providers::new(vec![Arc::new(provider)], id).map_err(|e| provider_error(e.to_string()))?;

    let store = Arc::new(MemoryStore::new());
    let ports = BffPorts {
        sessions: store.clone(),
        pending_logins: store.clone(),
        locks: store.clone(),
        replay: store,
        cipher: Arc::new(cipher),
        clock: Arc::new(TokioClock),
        random: Arc::new(random),
    };
    let policy = BffPolicy {
        lifetime: SessionLifetime::default(),
        pending_login_ttl: LOGIN_TIMEOUT,
        callback_url: config.site.url("/callback"),
        // Only for API-driven logins, which this host does not offer.
        app_redirect_url: config.site.url("/"),
        refresh_margin: Duration::from_secs(60),
        fetch_userinfo: false,
        renewal: None,
        client_binding: Default::default(),
    };
    Ok(Bff::new(ports, providers, policy))
}
