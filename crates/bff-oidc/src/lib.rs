//! OpenID Connect client adapter: implements `bff_domain::ports::IdentityProvider`.
//!
//! The public surface is what the server wires: [`OidcProviderConfig`] in, [`OidcProvider`]
//! out of [`OidcProvider::discover`] (or a [`DiscoveryError`]), [`DeferredProvider`] for a
//! provider unreachable at start-up, and [`http_client`]. Inside:
//!
//! - `config`: one provider's client configuration, checked before any network call.
//! - `client_assertion`: `private_key_jwt` client authentication, the signed JWT sent instead
//!   of a client secret.
//! - `discovery`: the provider metadata document (its `issuer` must equal the configured one).
//! - `deferred`: [`DeferredProvider`], a provider unreachable at start-up: `Unavailable` until
//!   a background task's discovery (capped exponential backoff) succeeds.
//! - `jwks`: the signing keys, cached, refetched on an unknown `kid` at most once per interval.
//! - `id_token`: ID token validation, a pure function of the token, the keys, the
//!   expectations and the current time, so every rule is tested with fixed time.
//! - `logout_token`: back-channel logout token validation (Back-Channel Logout 1.0 section
//!   2.6), pure like `id_token` and built on its signature and audience checks.
//! - `provider`: [`OidcProvider`] and one module per protocol step (authorization request,
//!   token endpoint, userinfo, end-session URL), with the `oauth2` crate doing PKCE S256, code
//!   exchange, refresh and revocation.
//!
//! Architecture invariant: no store adapter; no token, code, verifier or secret is logged or put
//! into an error message.

mod client_assertion;
mod config;
mod deferred;
mod discovery;
mod id_token;
mod jwks;
mod logout_token;
mod provider;

use std::time::Duration;

pub use client_assertion::{
    ASSERTION_LIFETIME_SECS, AssertionAudience, ClientAssertionKey, ClientCertificate, KeyKind,
};
pub use config::{
    CaCertificates, ClientAuthMethod, HttpUrl, Issuer, OidcProviderConfig, ProviderSection,
    PushedAuthorization, SettingError, parse_algorithm,
};
pub use deferred::{DeferredProvider, NotDiscovered, RetryBackoff};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use jsonwebtoken::Algorithm;
pub use provider::OidcProvider;

/// An HTTP client for talking to providers: bounded timeouts and **no redirects** (a token
/// endpoint that redirects could leak credentials to another host; the oauth2 crate recommends
/// this). HTTPS is verified against the built-in web PKI roots, or only against `ca` when
/// given (a provider's `ca_file`).
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client(
    timeout: Duration,
    ca: Option<&CaCertificates>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("bff-server/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        builder = builder.tls_built_in_root_certs(false);
        for certificate in ca.certificates() {
            builder = builder.add_root_certificate(certificate.clone());
        }
    }
    builder.build()
}
