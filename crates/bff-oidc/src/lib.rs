//! OpenID Connect client adapter: implements `bff_domain::ports::IdentityProvider`.
//!
//! - [`discovery`]: the provider metadata document (its `issuer` must equal the configured one).
//! - [`jwks`]: the signing keys, cached, refetched on an unknown `kid` at most once per interval.
//! - [`id_token`]: ID token validation, a pure function of the token, the keys, the
//!   expectations and the current time, so every rule is tested with fixed time.
//! - [`provider`]: [`OidcProvider`], which runs the protocol steps with the `oauth2` crate
//!   (PKCE S256, code exchange, refresh, revocation) and adds the OIDC parts (nonce, ID token,
//!   userinfo, end-session URL).
//!
//! Architecture invariant: no store adapter; no token, code, verifier or secret is logged or put
//! into an error message.

pub mod config;
pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod provider;

use std::time::Duration;

pub use config::{
    ClientAuthMethod, HttpUrl, Issuer, OidcProviderConfig, ProviderSection, SettingError,
    parse_algorithm,
};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use jsonwebtoken::Algorithm;
pub use provider::OidcProvider;

/// An HTTP client for talking to providers: bounded timeouts and **no redirects** (a token
/// endpoint that redirects could leak credentials to another host; the oauth2 crate recommends
/// this).
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("bff-server/", env!("CARGO_PKG_VERSION")))
        .build()
}
