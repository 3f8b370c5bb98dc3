//! Discovery: the issuer rule, required endpoints, configuration refusals, readiness, `Debug`.

use std::time::Duration;

use bff_oidc::{Algorithm, DiscoveryError, OidcProvider};
use serde_json::json;

use crate::op::{CLIENT_SECRET, Script, default_op, start_op};

fn client() -> reqwest::Client {
    bff_oidc::http_client(Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn discovery_refuses_a_document_for_another_issuer() {
    let op = start_op(Script {
        claimed_issuer: Some("https://evil.example".into()),
        ..Script::default()
    })
    .await;
    let err = OidcProvider::discover(op.config(), client())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::IssuerMismatch { found, .. } if found == "https://evil.example"),
        "{err}"
    );
    // A trailing slash is a different issuer too (exact comparison).
    let mut config = op.config();
    config.issuer = format!("{}/", op.issuer);
    let err = OidcProvider::discover(config, client()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::IssuerMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_required_endpoints_must_be_there_and_be_urls() {
    for (member, value) in [
        ("token_endpoint", json!(null)),
        ("jwks_uri", json!(null)),
        ("authorization_endpoint", json!("not a url")),
        ("userinfo_endpoint", json!("ftp://idp.example/userinfo")),
    ] {
        let op = start_op(Script {
            metadata_overrides: json!({ member: value }),
            ..Script::default()
        })
        .await;
        let err = OidcProvider::discover(op.config(), client())
            .await
            .unwrap_err();
        let DiscoveryError::Invalid { url, reason } = &err else {
            panic!("{member}: {err}");
        };
        assert!(url.ends_with("/.well-known/openid-configuration"), "{url}");
        assert!(reason.contains(member), "{member}: {reason}");
    }
}

#[tokio::test]
async fn an_unreachable_provider_or_jwks_is_a_clear_error() {
    let err = OidcProvider::discover(
        {
            let op = default_op().await;
            let mut c = op.config();
            c.issuer = "http://127.0.0.1:1".into();
            c
        },
        client(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Fetch { url, .. } if url == "http://127.0.0.1:1/.well-known/openid-configuration"),
        "{err}"
    );

    let op = start_op(Script {
        metadata_overrides: json!({"jwks_uri": "http://127.0.0.1:1/jwks"}),
        ..Script::default()
    })
    .await;
    let err = OidcProvider::discover(op.config(), client())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Jwks { url, .. } if url == "http://127.0.0.1:1/jwks"),
        "{err}"
    );
}

#[tokio::test]
async fn hmac_or_no_algorithm_in_the_allowlist_is_a_configuration_error() {
    let op = default_op().await;
    for algs in [
        vec![Algorithm::HS256],
        vec![Algorithm::RS256, Algorithm::HS512],
        vec![],
    ] {
        let mut config = op.config();
        config.allowed_algorithms = Some(algs.clone());
        let err = OidcProvider::discover(config, client()).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Config(_)), "{algs:?}: {err}");
    }
    // Refused before any network call.
    assert_eq!(op.jwks_hits(), 0);
}

#[tokio::test]
async fn metadata_accessors_and_readiness() {
    let op = default_op().await;
    let p = op.provider().await;
    let m = p.metadata();
    assert_eq!(m.issuer, op.issuer);
    assert_eq!(m.token_endpoint, format!("{}/token", op.issuer));
    assert_eq!(
        m.revocation_endpoint.as_deref(),
        Some(format!("{}/revoke", op.issuer).as_str())
    );
    assert_eq!(p.config().client_id, "client");
    p.check().await.unwrap();
    op.script().claimed_issuer = Some("https://other.example".into());
    assert!(p.check().await.is_err());
}

#[tokio::test]
async fn debug_output_never_shows_the_client_secret() {
    let op = default_op().await;
    let config = op.config();
    let shown = format!("{config:?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    let p = op.provider().await;
    let shown = format!("{p:?} {p:#?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
}
