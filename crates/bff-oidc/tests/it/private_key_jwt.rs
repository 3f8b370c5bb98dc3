//! `private_key_jwt` client authentication: every call to the provider's token and revocation
//! endpoints carries a fresh assertion signed with the client's key (verified here against its
//! public half, as a provider would), and never a client secret; discovery refuses what the
//! provider would refuse. A certificate puts its thumbprint in every assertion.

use std::collections::HashSet;

use bff_domain::Secret;
use bff_domain::ports::IdentityProvider as _;
use bff_oidc::{
    ASSERTION_LIFETIME_SECS, AssertionAudience, ClientAssertionKey, ClientAuthMethod,
    ClientCertificate, DiscoveryError, OidcProvider, OidcProviderConfig,
};
use bff_test_op::TokenCall;
use bff_test_services::client_key::ClientKey;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::op::{CLIENT_ID, ClientOf as _, Script, TestOp, exchange, now, start_op};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A provider that accepts `private_key_jwt` with `algorithms`.
async fn op_accepting(algorithms: Value) -> TestOp {
    start_op(Script {
        metadata_overrides: json!({
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
        }),
        ..Script::default()
    })
    .await
}

/// The tests' client configuration with `private_key_jwt` and `key` under kid `bff-k1`.
fn config_with(op: &TestOp, key: &ClientKey) -> OidcProviderConfig {
    let path = key.write_private_pem("bff-oidc-client-key");
    let assertion_key = ClientAssertionKey::read(&path)
        .unwrap()
        .with_key_id("bff-k1");
    std::fs::remove_file(&path).unwrap();
    op.config().with_private_key_jwt(assertion_key)
}

/// Checks that `call` authenticated with a valid assertion for `audience` signed by `key`
/// and nothing else; its `jti`.
fn checked_assertion(call: &TokenCall, key: &ClientKey, audience: &str) -> String {
    assert_eq!(call.auth, "private_key_jwt", "{:?}", call.form);
    assert_eq!(call.client_id, CLIENT_ID);
    assert_eq!(call.param("client_secret"), None);
    assert_eq!(call.param("client_assertion_type"), Some(JWT_BEARER));
    let assertion = call.param("client_assertion").unwrap();
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("bff-k1"));
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.sub = Some(CLIENT_ID.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let public = DecodingKey::from_ec_pem(key.public_pem().as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<Value>(assertion, &public, &validation)
        .unwrap()
        .claims;
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, ASSERTION_LIFETIME_SECS);
    claims["jti"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_call_carries_a_fresh_assertion_signed_by_the_client_key_and_no_secret() {
    let op = op_accepting(json!(["RS256", "ES256"])).await;
    let key = ClientKey::generate();
    let p = op.provider_with(config_with(&op, &key)).await;

    let login = exchange(&p).await.unwrap();
    p.refresh(&Secret::new("rt-1"), &login.claims, now())
        .await
        .unwrap();
    p.client_credentials(&["api".to_owned()], now())
        .await
        .unwrap();
    p.revoke_refresh_token(&Secret::new("rt-1")).await.unwrap();

    let script = op.script();
    let calls: Vec<&TokenCall> = script
        .token_calls
        .iter()
        .chain(&script.revocations)
        .collect();
    let grants: Vec<Option<&str>> = script
        .token_calls
        .iter()
        .map(|c| c.param("grant_type"))
        .collect();
    assert_eq!(
        grants,
        [
            Some("authorization_code"),
            Some("refresh_token"),
            Some("client_credentials")
        ]
    );
    assert_eq!(script.revocations.len(), 1);
    let mut ids = HashSet::new();
    for call in calls {
        let jti = checked_assertion(call, &key, &op.issuer);
        assert!(ids.insert(jti), "an assertion's jti was used twice");
    }
}

#[tokio::test]
async fn the_audience_can_be_the_token_endpoint() {
    let op = op_accepting(json!(["ES256"])).await;
    let key = ClientKey::generate();
    let mut config = config_with(&op, &key);
    config.client_assertion_audience = AssertionAudience::TokenEndpoint;
    let p = op.provider_with(config).await;
    exchange(&p).await.unwrap();
    let token_endpoint = p.metadata().token_endpoint.clone();
    assert_ne!(token_endpoint, op.issuer);
    checked_assertion(&op.script().token_calls[0], &key, &token_endpoint);
}

#[tokio::test]
async fn discovery_refuses_what_the_provider_would_refuse() {
    let key = ClientKey::generate();
    // (what the provider advertises, what the refusal must mention)
    let cases: [(Value, &[&str]); 3] = [
        // The method is not listed.
        (
            json!({"token_endpoint_auth_methods_supported": ["client_secret_basic"]}),
            &["client_auth", "private_key_jwt", "client_secret_basic"],
        ),
        // The key's algorithm is not listed.
        (
            json!({
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
            }),
            &["private_key", "ES256", "RS256, PS256"],
        ),
        // No algorithm at all.
        (
            json!({
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": [],
            }),
            &["private_key", "ES256"],
        ),
    ];
    for (advertised, mentioned) in cases {
        let op = start_op(Script {
            metadata_overrides: advertised.clone(),
            ..Script::default()
        })
        .await;
        let err = OidcProvider::discover(
            config_with(&op, &key),
            bff_oidc::http_client(std::time::Duration::from_secs(5), None).unwrap(),
        )
        .await
        .unwrap_err();
        let DiscoveryError::Config(reason) = &err else {
            panic!("{advertised}: {err:?}");
        };
        for word in mentioned {
            assert!(reason.contains(word), "{advertised}: {reason}");
        }
    }
}

#[tokio::test]
async fn a_credential_that_does_not_fit_the_method_is_refused_by_validation() {
    let op = op_accepting(json!(["ES256"])).await;
    let key = || {
        let path = ClientKey::generate().write_private_pem("bff-oidc-client-key");
        let key = ClientAssertionKey::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        key
    };
    // `private_key_jwt` without a key.
    let mut no_key = op.config();
    no_key.client_auth = ClientAuthMethod::PrivateKeyJwt;
    no_key.client_secret = Secret::new("");
    // `private_key_jwt` with a secret as well.
    let mut with_secret = op.config().with_private_key_jwt(key());
    with_secret.client_secret = Secret::new("also-a-secret");
    // A secret method with a key.
    let mut secret_and_key = op.config();
    secret_and_key.private_key = Some(key());
    // A secret method with an empty secret.
    let mut empty_secret = op.config();
    empty_secret.client_secret = Secret::new("");
    let cases = [
        (no_key, "private_key: is required"),
        (with_secret, "client_secret: is not used"),
        (
            secret_and_key,
            "private_key: is used only with private_key_jwt",
        ),
        (empty_secret, "client_secret: must not be empty"),
    ];
    for (config, expected) in cases {
        let err = config.validate().unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(expected), "{shown}");
        assert!(!shown.contains("also-a-secret"), "{shown}");
    }
    // And the configurations that fit pass.
    op.config().validate().unwrap();
    op.config().with_private_key_jwt(key()).validate().unwrap();
}

#[tokio::test]
async fn a_provider_that_finds_keys_by_certificate_gets_the_thumbprint_in_every_assertion() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    // As Entra ID: `private_key_jwt` listed, no assertion algorithms, keys registered as
    // certificates.
    let op = start_op(Script {
        metadata_overrides: json!({
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }),
        ..Script::default()
    })
    .await;
    let key = ClientKey::generate();
    let certificate_path = key.write_certificate_pem("bff-oidc-client-cert");
    let certificate_pem = std::fs::read_to_string(&certificate_path).unwrap();
    let certificate = ClientCertificate::read(&certificate_path).unwrap();
    std::fs::remove_file(&certificate_path).unwrap();
    let mut config = config_with(&op, &key);
    let assertion_key = config
        .private_key
        .take()
        .unwrap()
        .with_algorithm(Algorithm::ES256)
        .unwrap()
        .with_certificate(certificate)
        .unwrap();
    config.private_key = Some(assertion_key);
    config.client_assertion_audience = AssertionAudience::TokenEndpoint;
    let p = op.provider_with(config).await;
    exchange(&p).await.unwrap();
    p.client_credentials(&["api".to_owned()], now())
        .await
        .unwrap();

    // The thumbprint over the certificate's DER, computed here from the PEM.
    let body: String = certificate_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).unwrap();
    let expected = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(&der));
    let token_endpoint = p.metadata().token_endpoint.clone();
    let script = op.script();
    assert_eq!(script.token_calls.len(), 2);
    for call in &script.token_calls {
        checked_assertion(call, &key, &token_endpoint);
        let header = jsonwebtoken::decode_header(call.param("client_assertion").unwrap()).unwrap();
        assert_eq!(header.x5t_s256.as_deref(), Some(expected.as_str()));
        assert!(header.x5t.is_some());
    }
}
