//! One provider's client configuration: what the server hands to [`crate::OidcProvider`].
//!
//! [`OidcProviderConfig::validate`] refuses unusable values before any network call.

use std::fmt;
use std::time::Duration;

use bff_domain::{ProviderId, Secret};
use jsonwebtoken::Algorithm;

use crate::discovery::DiscoveryError;
use crate::id_token;

fn config_error(what: &str, e: impl fmt::Display) -> DiscoveryError {
    DiscoveryError::Config(format!("{what}: {e}"))
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic (`client_secret_basic`).
    ClientSecretBasic,
    /// Form parameters (`client_secret_post`).
    ClientSecretPost,
}

/// One provider's configuration, built by the server from its configuration file.
///
/// [`OidcProviderConfig::new`] fills in the defaults; [`OidcProviderConfig::validate`] (also
/// run by [`OidcProvider::discover`]) refuses unusable values before any network call.
#[derive(Clone)]
pub struct OidcProviderConfig {
    /// Name.
    pub id: ProviderId,
    /// Issuer identifier: must equal the `issuer` of the discovery document exactly.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (redacted in `Debug`).
    pub client_secret: Secret,
    /// Token endpoint authentication.
    pub client_auth: ClientAuthMethod,
    /// Scopes (`openid` is added when missing).
    pub scopes: Vec<String>,
    /// `post_logout_redirect_uri` for RP-initiated logout.
    pub post_logout_redirect_uri: Option<String>,
    /// Allowed ID token algorithms. HMAC algorithms are refused by
    /// [`OidcProviderConfig::validate`] (`none` has no [`Algorithm`] value at all). `None`: the
    /// provider's advertised `id_token_signing_alg_values_supported` that are among
    /// [`OidcProviderConfig::default_algorithms`], or `RS256` when it advertises none (OIDC
    /// Discovery makes RS256 the one every provider supports).
    pub allowed_algorithms: Option<Vec<Algorithm>>,
    /// Tolerated clock difference for `exp`, `iat` and `nbf`.
    pub clock_skew: Duration,
    /// Time limit of each call to the provider.
    pub http_timeout: Duration,
    /// Minimum time between JWKS refetches for unknown `kid`s.
    pub jwks_refetch_interval: Duration,
    /// Call the userinfo endpoint (when the provider has one).
    pub userinfo: bool,
}

impl OidcProviderConfig {
    /// Default [`OidcProviderConfig::clock_skew`].
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
    /// Default [`OidcProviderConfig::http_timeout`].
    pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`OidcProviderConfig::jwks_refetch_interval`].
    pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

    /// A configuration with the defaults: `client_secret_basic`, scope `openid`, no
    /// post-logout redirect, [`OidcProviderConfig::default_algorithms`], 60 s skew, 10 s
    /// timeout, 30 s JWKS refetch interval, no userinfo call.
    pub fn new(
        id: ProviderId,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Self {
        Self {
            id,
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret,
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: vec!["openid".to_owned()],
            post_logout_redirect_uri: None,
            allowed_algorithms: None,
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
            http_timeout: Self::DEFAULT_HTTP_TIMEOUT,
            jwks_refetch_interval: Self::DEFAULT_JWKS_REFETCH_INTERVAL,
            userinfo: false,
        }
    }

    /// The default algorithm allowlist: RS256, PS256, ES256, ES384, EdDSA.
    pub fn default_algorithms() -> Vec<Algorithm> {
        vec![
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
    }

    /// Checks the configuration without touching the network.
    ///
    /// # Errors
    /// [`DiscoveryError::Config`] when the algorithm allowlist is empty or names an HMAC
    /// algorithm, the issuer is not an absolute `http(s)` URL without query and fragment, the
    /// client id is empty, a scope contains whitespace, the post-logout redirect URI is not a
    /// URL, or the HTTP timeout is zero.
    pub fn validate(&self) -> Result<(), DiscoveryError> {
        let configured = self.allowed_algorithms.as_deref().unwrap_or_default();
        if let Some(alg) = configured.iter().find(|a| !id_token::is_asymmetric(**a)) {
            return Err(DiscoveryError::Config(format!(
                "{alg:?} is not allowed for ID tokens (HMAC with a public JWKS is unsafe)"
            )));
        }
        if self.allowed_algorithms.as_ref().is_some_and(Vec::is_empty) {
            return Err(DiscoveryError::Config(
                "no ID token algorithm allowed".into(),
            ));
        }
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| config_error(&format!("issuer {:?}", self.issuer), e))?;
        if !matches!(issuer.scheme(), "https" | "http")
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            return Err(DiscoveryError::Config(format!(
                "issuer {:?} must be an https URL without query or fragment",
                self.issuer
            )));
        }
        if self.client_id.is_empty() {
            return Err(DiscoveryError::Config("client_id is empty".into()));
        }
        if let Some(scope) = self
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(DiscoveryError::Config(format!(
                "scope {scope:?} is empty or contains whitespace"
            )));
        }
        if let Some(uri) = &self.post_logout_redirect_uri {
            url::Url::parse(uri).map_err(|e| config_error("post_logout_redirect_uri", e))?;
        }
        if self.http_timeout.is_zero() {
            return Err(DiscoveryError::Config("http_timeout is zero".into()));
        }
        Ok(())
    }
}

impl fmt::Debug for OidcProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviderConfig")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .field("allowed_algorithms", &self.allowed_algorithms)
            .field("clock_skew", &self.clock_skew)
            .field("http_timeout", &self.http_timeout)
            .field("jwks_refetch_interval", &self.jwks_refetch_interval)
            .field("userinfo", &self.userinfo)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcProviderConfig {
        OidcProviderConfig::new(
            ProviderId::parse("test").unwrap(),
            "https://idp.example",
            "bff",
            Secret::new("s3cret"),
        )
    }

    #[test]
    fn new_uses_the_documented_defaults() {
        let c = config();
        assert_eq!(c.client_auth, ClientAuthMethod::ClientSecretBasic);
        assert_eq!(c.scopes, vec!["openid"]);
        assert_eq!(c.allowed_algorithms, None);
        assert_eq!(c.clock_skew, Duration::from_secs(60));
        assert_eq!(c.http_timeout, Duration::from_secs(10));
        assert_eq!(c.jwks_refetch_interval, Duration::from_secs(30));
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn validate_refuses_unusable_configurations() {
        type Change = fn(&mut OidcProviderConfig);
        let cases: Vec<(&str, Change)> = vec![
            ("HMAC", |c| {
                c.allowed_algorithms = Some(vec![Algorithm::HS384])
            }),
            ("no algorithm", |c| c.allowed_algorithms = Some(Vec::new())),
            ("issuer not a URL", |c| c.issuer = "idp.example".into()),
            ("issuer with query", |c| {
                c.issuer = "https://idp.example/?a=b".into()
            }),
            ("issuer with fragment", |c| {
                c.issuer = "https://idp.example/#x".into()
            }),
            ("issuer scheme", |c| c.issuer = "ftp://idp.example".into()),
            ("empty client id", |c| c.client_id.clear()),
            ("scope with space", |c| {
                c.scopes = vec!["openid email".into()]
            }),
            ("post-logout URI", |c| {
                c.post_logout_redirect_uri = Some("/x".into())
            }),
            ("zero timeout", |c| c.http_timeout = Duration::ZERO),
        ];
        for (name, change) in cases {
            let mut c = config();
            change(&mut c);
            assert!(
                matches!(c.validate(), Err(DiscoveryError::Config(_))),
                "{name}"
            );
        }
    }
}
