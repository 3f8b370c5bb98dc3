//! Discovery: the issuer rule, required endpoints, configuration refusals, readiness, `Debug`,
//! and what the metadata decides: the ID token algorithms and RFC 9207's `iss` requirement.

use std::time::Duration;

use bff_domain::ports::{IdentityProvider as _, ProviderError};
use bff_oidc::{Algorithm, DiscoveryError, OidcProvider, PushedAuthorization};
use serde_json::{Value, json};

use crate::op::{
    CLIENT_SECRET, ClientOf as _, Script, Signer, TestOp, default_op, exchange, start_op,
};

fn client() -> reqwest::Client {
    bff_oidc::http_client(Duration::from_secs(5), None).unwrap()
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

/// A provider advertising `algorithms` as `id_token_signing_alg_values_supported` (`null`: the
/// member is absent).
async fn advertising(algorithms: Value) -> TestOp {
    start_op(Script {
        metadata_overrides: json!({ "id_token_signing_alg_values_supported": algorithms }),
        ..Script::default()
    })
    .await
}

/// Whether a code exchange whose ID token `signer` signs (with a key the JWKS publishes) is
/// accepted; refusals must be for the algorithm.
async fn accepts(op: &TestOp, config: bff_oidc::OidcProviderConfig, signer: Signer) -> bool {
    op.script().signer = signer;
    match exchange(&op.provider_with(config).await).await {
        Ok(_) => true,
        Err(ProviderError::IdTokenInvalid(check)) if check == "alg" => false,
        Err(other) => panic!("{signer:?}: refused for something else: {other:?}"),
    }
}

#[tokio::test]
async fn without_an_allowlist_only_advertised_algorithms_are_accepted() {
    // (advertised, accepted list, ES256 token accepted, RS256 token accepted)
    let cases = [
        (json!(["RS256"]), vec![Algorithm::RS256], false, true),
        (json!(null), vec![Algorithm::RS256], false, true),
        (json!(["ES256"]), vec![Algorithm::ES256], true, false),
        (
            json!(["HS256", "ES256", "RS256"]),
            vec![Algorithm::RS256, Algorithm::ES256],
            true,
            true,
        ),
    ];
    for (advertised, expected, es256, rs256) in cases {
        let op = advertising(advertised.clone()).await;
        let config = op.config();
        assert_eq!(config.allowed_algorithms, None);
        let p = op.provider_with(config.clone()).await;
        assert_eq!(p.id_token_algorithms(), expected, "{advertised}");
        assert_eq!(
            accepts(&op, config.clone(), Signer::Ec1).await,
            es256,
            "ES256 with {advertised}"
        );
        assert_eq!(
            accepts(&op, config, Signer::Rsa).await,
            rs256,
            "RS256 with {advertised}"
        );
    }
}

#[tokio::test]
async fn a_configured_allowlist_overrides_what_the_provider_advertises() {
    let op = advertising(json!(["RS256"])).await;
    let mut config = op.config();
    config.allowed_algorithms = Some(vec![Algorithm::ES256]);
    assert!(accepts(&op, config.clone(), Signer::Ec1).await);
    assert!(!accepts(&op, config, Signer::Rsa).await);
}

#[tokio::test]
async fn a_provider_advertising_only_unsafe_algorithms_needs_an_allowlist() {
    let op = advertising(json!(["HS256", "none"])).await;
    let err = OidcProvider::discover(op.config(), client())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Config(reason) if reason.contains("id_token_algorithms")),
        "{err}"
    );
    // With one, it works.
    let mut config = op.config();
    config.allowed_algorithms = Some(vec![Algorithm::ES256]);
    assert!(accepts(&op, config, Signer::Ec1).await);
}

#[tokio::test]
async fn the_rfc_9207_iss_requirement_is_read_from_the_metadata() {
    for (advertised, required) in [
        (json!(null), false),
        (json!(false), false),
        (json!(true), true),
    ] {
        let op = start_op(Script {
            metadata_overrides: json!({
                "authorization_response_iss_parameter_supported": advertised
            }),
            ..Script::default()
        })
        .await;
        let p = op.provider().await;
        assert_eq!(
            p.requires_issuer_in_authorization_response(),
            required,
            "{advertised}"
        );
    }
}

/// Pushed authorization requests (RFC 9126): turned on without an endpoint to push to, the
/// provider is a configuration error; the endpoint must be a URL like every other one.
#[tokio::test]
async fn pushed_requests_need_an_advertised_endpoint() {
    let op = default_op().await;
    let mut config = op.config();
    config.pushed_authorization_requests = PushedAuthorization::Always;
    let err = OidcProvider::discover(config, client()).await.unwrap_err();
    let DiscoveryError::Config(reason) = &err else {
        panic!("{err}");
    };
    assert!(reason.contains("pushed_authorization_request"), "{reason}");

    let op = start_op(Script {
        metadata_overrides: json!({
            "pushed_authorization_request_endpoint": "ftp://idp.example/par"
        }),
        ..Script::default()
    })
    .await;
    let err = OidcProvider::discover(op.config(), client())
        .await
        .unwrap_err();
    let DiscoveryError::Invalid { reason, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        reason.contains("pushed_authorization_request_endpoint"),
        "{reason}"
    );
}

/// Whether a login's request is pushed: by default when the provider offers it, always when
/// configured so, never when turned off, and whatever the configuration says when the provider
/// requires it (`require_pushed_authorization_requests`). The test provider's endpoint answers
/// `404`, so a pushed request shows as that refusal and an unpushed one comes back unchanged.
#[tokio::test]
async fn requests_are_pushed_when_offered_unless_off_and_always_when_required() {
    use PushedAuthorization::{Always, IfOffered, Off};
    // (configured, offered, required, pushed)
    for (configured, offered, required, pushed) in [
        (IfOffered, true, false, true),
        (IfOffered, false, false, false),
        (IfOffered, true, true, true),
        (Always, true, false, true),
        (Always, true, true, true),
        (Off, true, false, false),
        (Off, false, false, false),
        (Off, true, true, true),
    ] {
        let case = format!("{configured:?}, offered {offered}, required {required}");
        let probe = default_op().await;
        let mut metadata = json!({ "require_pushed_authorization_requests": required });
        if offered {
            metadata["pushed_authorization_request_endpoint"] =
                json!(format!("{}/par", probe.issuer));
        }
        let op = start_op(Script {
            metadata_overrides: metadata,
            ..Script::default()
        })
        .await;
        let mut config = op.config();
        config.pushed_authorization_requests = configured;
        let provider = op.provider_with(config).await;
        let request = provider
            .authorization_request("https://app.example/bff/callback", None)
            .unwrap();
        let url = request.url.clone();
        match provider.push_authorization_request(request).await {
            Ok(unchanged) => {
                assert!(!pushed, "{case}: not pushed");
                assert_eq!(unchanged.url, url);
            }
            Err(ProviderError::Protocol(reason)) => {
                assert!(pushed, "{case}: pushed: {reason}");
                assert!(reason.contains("HTTP 404"), "{reason}");
            }
            Err(other) => panic!("{case}: {other:?}"),
        }
    }
}

/// A provider that requires pushed requests and advertises no endpoint to push to cannot be
/// logged in at, whatever the configuration says: a configuration error at discovery, not a
/// login that fails at the provider.
#[tokio::test]
async fn a_provider_requiring_pushed_requests_without_an_endpoint_is_refused() {
    for configured in [
        PushedAuthorization::IfOffered,
        PushedAuthorization::Always,
        PushedAuthorization::Off,
    ] {
        let op = start_op(Script {
            metadata_overrides: json!({ "require_pushed_authorization_requests": true }),
            ..Script::default()
        })
        .await;
        let mut config = op.config();
        config.pushed_authorization_requests = configured;
        let err = OidcProvider::discover(config, client()).await.unwrap_err();
        let DiscoveryError::Config(reason) = &err else {
            panic!("{configured:?}: {err}");
        };
        assert!(reason.contains("pushed_authorization_request"), "{reason}");
    }
}

/// A client authentication the provider's `token_endpoint_auth_methods_supported` leaves out
/// is a configuration error at discovery, naming what the provider accepts; one it lists, or a
/// provider that lists nothing, is fine.
#[tokio::test]
async fn a_client_authentication_the_provider_does_not_list_is_refused() {
    use bff_oidc::ClientAuthMethod::{ClientSecretBasic, ClientSecretPost};
    // (configured, advertised, accepted)
    for (configured, advertised, accepted) in [
        (
            ClientSecretPost,
            Some(json!(["client_secret_basic"])),
            false,
        ),
        (ClientSecretBasic, Some(json!(["private_key_jwt"])), false),
        (ClientSecretBasic, Some(json!([])), false),
        (
            ClientSecretPost,
            Some(json!(["private_key_jwt", "client_secret_post"])),
            true,
        ),
        (
            ClientSecretBasic,
            Some(json!(["client_secret_basic"])),
            true,
        ),
        (ClientSecretPost, None, true),
    ] {
        let case = format!("{configured:?} against {advertised:?}");
        // `null` takes the test provider's own list out of its metadata.
        let metadata =
            json!({ "token_endpoint_auth_methods_supported": advertised.unwrap_or(Value::Null) });
        let op = start_op(Script {
            metadata_overrides: metadata,
            ..Script::default()
        })
        .await;
        let mut config = op.config();
        config.client_auth = configured;
        match OidcProvider::discover(config, client()).await {
            Ok(_) => assert!(accepted, "{case}: accepted"),
            Err(DiscoveryError::Config(reason)) => {
                assert!(!accepted, "{case}: refused: {reason}");
                assert!(
                    reason.contains("client_auth") && reason.contains(configured.as_str()),
                    "{case}: {reason}"
                );
            }
            Err(other) => panic!("{case}: {other}"),
        }
    }
}
