//! OpenID Provider metadata (OpenID Connect Discovery 1.0).
//!
//! The document must name exactly the configured issuer (section 4.3) and carry the
//! authorization, token and JWKS endpoints. When the issuer is `https`, every endpoint must be
//! `https` too: a document that sends tokens or secrets over cleartext is refused. (A plain
//! `http` issuer is accepted for local development only; its endpoints may then be `http`.)

use std::time::Duration;

use serde::Deserialize;

/// The parts of the metadata document the BFF uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    /// Issuer identifier.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// JWKS URI.
    pub jwks_uri: String,
    /// Userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// RP-initiated logout endpoint.
    pub end_session_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// RFC 9126 pushed authorization request endpoint: used when advertised, unless the
    /// provider's configuration turns pushed requests off (`PushedAuthorization`).
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126 section 5: the provider accepts authorization requests only when pushed.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// The algorithms the provider signs ID tokens with.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: every authorization response carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// How clients may authenticate at the token endpoint; absent means `client_secret_basic`
    /// only (OIDC Discovery section 3).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// The algorithms the provider accepts for `private_key_jwt` assertions; absent when it
    /// does not say.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
}

/// Discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The document could not be fetched.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// Where.
        url: String,
        /// Why (no secrets: discovery is unauthenticated).
        reason: String,
    },
    /// The document is not valid metadata.
    #[error("invalid metadata at {url}: {reason}")]
    Invalid {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The document names another issuer (OIDC Discovery section 4.3).
    #[error("metadata issuer {found:?} does not equal the configured issuer {expected:?}")]
    IssuerMismatch {
        /// Configured.
        expected: String,
        /// In the document.
        found: String,
    },
    /// The JWKS could not be loaded.
    #[error("cannot load the JWKS at {url}: {reason}")]
    Jwks {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The configuration is unusable.
    #[error("invalid provider configuration: {0}")]
    Config(String),
}

/// The discovery document URL for `issuer`.
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Fetches and checks the metadata of `issuer`, within `timeout`.
///
/// # Errors
/// [`DiscoveryError`] when it cannot be fetched, is malformed, names another issuer, or has an
/// endpoint that is not an absolute URL (or not `https` under an `https` issuer).
pub(crate) async fn fetch(
    http: &reqwest::Client,
    issuer: &str,
    timeout: Duration,
) -> Result<ProviderMetadata, DiscoveryError> {
    let url = discovery_url(issuer);
    let response =
        http.get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| DiscoveryError::Fetch {
                url: url.clone(),
                reason: e.without_url().to_string(),
            })?;
    if !response.status().is_success() {
        return Err(DiscoveryError::Fetch {
            url,
            reason: format!("HTTP {}", response.status()),
        });
    }
    let body = response.bytes().await.map_err(|e| DiscoveryError::Fetch {
        url: url.clone(),
        reason: e.without_url().to_string(),
    })?;
    let metadata: ProviderMetadata =
        serde_json::from_slice(&body).map_err(|e| DiscoveryError::Invalid {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: metadata.issuer,
        });
    }
    check_endpoints(&metadata).map_err(|reason| DiscoveryError::Invalid { url, reason })?;
    Ok(metadata)
}

/// Every endpoint is an absolute `http(s)` URL without a fragment, and `https` when the issuer
/// is.
fn check_endpoints(metadata: &ProviderMetadata) -> Result<(), String> {
    let secure = metadata.issuer.starts_with("https://");
    let endpoints = [
        (
            "authorization_endpoint",
            Some(&metadata.authorization_endpoint),
        ),
        ("token_endpoint", Some(&metadata.token_endpoint)),
        ("jwks_uri", Some(&metadata.jwks_uri)),
        ("userinfo_endpoint", metadata.userinfo_endpoint.as_ref()),
        (
            "end_session_endpoint",
            metadata.end_session_endpoint.as_ref(),
        ),
        ("revocation_endpoint", metadata.revocation_endpoint.as_ref()),
        (
            "pushed_authorization_request_endpoint",
            metadata.pushed_authorization_request_endpoint.as_ref(),
        ),
    ];
    for (name, value) in endpoints {
        let Some(value) = value else { continue };
        let parsed = url::Url::parse(value).map_err(|e| format!("{name} is not a URL: {e}"))?;
        let scheme_ok = match parsed.scheme() {
            "https" => true,
            "http" => !secure,
            _ => false,
        };
        if !scheme_ok {
            return Err(format!(
                "{name} must be an https URL (got scheme {:?})",
                parsed.scheme()
            ));
        }
        if parsed.fragment().is_some() {
            return Err(format!("{name} must not have a fragment"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(issuer: &str, endpoint: &str) -> ProviderMetadata {
        ProviderMetadata {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: endpoint.into(),
            jwks_uri: format!("{issuer}/jwks"),
            userinfo_endpoint: None,
            end_session_endpoint: None,
            revocation_endpoint: None,
            pushed_authorization_request_endpoint: None,
            require_pushed_authorization_requests: false,
            authorization_response_iss_parameter_supported: false,
            id_token_signing_alg_values_supported: Vec::new(),
            token_endpoint_auth_methods_supported: None,
            token_endpoint_auth_signing_alg_values_supported: None,
        }
    }

    #[test]
    fn an_https_issuer_needs_https_endpoints() {
        let ok = metadata("https://idp.example", "https://idp.example/token");
        assert!(check_endpoints(&ok).is_ok());
        let cleartext = metadata("https://idp.example", "http://idp.example/token");
        let reason = check_endpoints(&cleartext).unwrap_err();
        assert!(reason.contains("token_endpoint"), "{reason}");
        // A development issuer on plain http may use http endpoints.
        let dev = metadata("http://localhost:9000", "http://localhost:9000/token");
        assert!(check_endpoints(&dev).is_ok());
        let fragment = metadata("https://idp.example", "https://idp.example/token#x");
        assert!(check_endpoints(&fragment).is_err());
    }

    #[test]
    fn the_discovery_url_drops_a_trailing_slash() {
        assert_eq!(
            discovery_url("https://idp.example/realms/a/"),
            "https://idp.example/realms/a/.well-known/openid-configuration"
        );
    }
}
