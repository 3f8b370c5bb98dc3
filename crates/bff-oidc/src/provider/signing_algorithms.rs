//! Which algorithms an ID token may be signed with.
//!
//! The configured allowlist when there is one. Otherwise the provider's advertised
//! `id_token_signing_alg_values_supported` narrowed to
//! [`OidcProviderConfig::default_algorithms`], so a key the provider publishes for some other
//! purpose (or algorithm) cannot sign an ID token it never said it would sign; `RS256` when it
//! advertises nothing (OIDC Discovery makes RS256 the one every provider supports). A provider
//! that advertises only algorithms outside that set needs an explicit allowlist.

use jsonwebtoken::Algorithm;

use crate::config::OidcProviderConfig;
use crate::discovery::{DiscoveryError, ProviderMetadata};

/// The ID token algorithms to accept for `config` at the provider described by `metadata`.
pub(super) fn id_token_algorithms(
    config: &OidcProviderConfig,
    metadata: &ProviderMetadata,
) -> Result<Vec<Algorithm>, DiscoveryError> {
    if let Some(configured) = &config.allowed_algorithms {
        return Ok(configured.clone());
    }
    let advertised = &metadata.id_token_signing_alg_values_supported;
    if advertised.is_empty() {
        return Ok(vec![Algorithm::RS256]);
    }
    let accepted: Vec<Algorithm> = OidcProviderConfig::default_algorithms()
        .into_iter()
        .filter(|alg| {
            advertised
                .iter()
                .any(|name| name.parse::<Algorithm>().ok() == Some(*alg))
        })
        .collect();
    if accepted.is_empty() {
        return Err(DiscoveryError::Config(format!(
            "the provider signs ID tokens only with {advertised:?}, none of which is allowed by default; set id_token_algorithms"
        )));
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use bff_domain::{ProviderId, Secret};
    use serde_json::json;

    use super::*;

    fn config(configured: Option<Vec<Algorithm>>) -> OidcProviderConfig {
        let mut config = OidcProviderConfig::new(
            ProviderId::parse("test").unwrap(),
            "https://idp.example",
            "bff",
            Secret::new("s3cret"),
        );
        config.allowed_algorithms = configured;
        config
    }

    fn advertising(algorithms: Option<&[&str]>) -> ProviderMetadata {
        let mut doc = json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/authorize",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
        });
        if let Some(algorithms) = algorithms {
            doc["id_token_signing_alg_values_supported"] = json!(algorithms);
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn the_advertised_algorithms_narrow_the_default_set() {
        use Algorithm::*;
        // (name, advertised, accepted)
        type Case = (
            &'static str,
            Option<&'static [&'static str]>,
            Vec<Algorithm>,
        );
        let cases: Vec<Case> = vec![
            ("member absent", None, vec![RS256]),
            ("empty list", Some(&[]), vec![RS256]),
            ("RS256 only", Some(&["RS256"]), vec![RS256]),
            ("ES256 only", Some(&["ES256"]), vec![ES256]),
            (
                "all of the default set, in another order",
                Some(&["EdDSA", "ES384", "ES256", "PS256", "RS256"]),
                vec![RS256, PS256, ES256, ES384, EdDSA],
            ),
            (
                "HMAC, none, unknown and non-default names are dropped",
                Some(&["HS256", "none", "ES512", "RS384", "PS512", "RS256"]),
                vec![RS256],
            ),
            // JWA names are case-sensitive.
            ("lower-case name", Some(&["es256", "RS256"]), vec![RS256]),
        ];
        for (name, advertised, expected) in cases {
            let accepted = id_token_algorithms(&config(None), &advertising(advertised)).unwrap();
            assert_eq!(accepted, expected, "{name}");
        }
    }

    #[test]
    fn a_configured_allowlist_wins_over_the_metadata() {
        let accepted = id_token_algorithms(
            &config(Some(vec![Algorithm::ES256])),
            &advertising(Some(&["RS256"])),
        )
        .unwrap();
        assert_eq!(accepted, vec![Algorithm::ES256]);
        let accepted = id_token_algorithms(
            &config(Some(vec![Algorithm::RS384])),
            &advertising(Some(&["HS256"])),
        )
        .unwrap();
        assert_eq!(accepted, vec![Algorithm::RS384]);
    }

    #[test]
    fn a_provider_advertising_nothing_usable_needs_an_allowlist() {
        for advertised in [&["HS256"][..], &["none"], &["HS512", "none", "RS384"]] {
            let err =
                id_token_algorithms(&config(None), &advertising(Some(advertised))).unwrap_err();
            let DiscoveryError::Config(reason) = &err else {
                panic!("{advertised:?}: {err}");
            };
            assert!(reason.contains("id_token_algorithms"), "{reason}");
        }
    }
}
