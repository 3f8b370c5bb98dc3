//! The authorization request and the code exchange, with hostile ID tokens end to end.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff_domain::Timestamp;
use bff_domain::ports::{IdentityProvider, ProviderError};
use bff_oidc::ClientAuthMethod;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::op::{
    ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, CODE, ClientOf as _, NOW, REDIRECT_URI, Script, Signer,
    TestOp, VERIFIER, assert_no_secret, at_hash, b64, default_op, exchange, exchange_at, fixture,
    pkce_s256, sign_raw, start_op,
};

#[tokio::test]
async fn authorization_urls_carry_pkce_state_nonce_and_prompt() {
    let op = default_op().await;
    let p = op.provider().await;
    let a = p
        .authorization_request(REDIRECT_URI, Some(bff_domain::Prompt::Login))
        .unwrap();
    let b = p.authorization_request(REDIRECT_URI, None).unwrap();
    let url = url::Url::parse(&a.url).unwrap();
    assert!(a.url.starts_with(&format!("{}/authorize?", op.issuer)));
    let q = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(q("response_type").as_deref(), Some("code"));
    assert_eq!(q("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(q("redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(
        q("code_challenge"),
        Some(pkce_s256(a.pkce_verifier.expose()))
    );
    assert_eq!(q("state"), Some(a.state.clone()));
    assert_eq!(q("nonce"), Some(a.nonce.clone()));
    assert_eq!(q("prompt").as_deref(), Some("login"));
    let scopes = q("scope").unwrap();
    assert_eq!(scopes.split(' ').filter(|s| *s == "openid").count(), 1);
    assert!(scopes.split(' ').any(|s| s == "profile"));
    // Fresh values every time, with at least 128 bits of entropy.
    assert_ne!(a.state, b.state);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.pkce_verifier, b.pkce_verifier);
    assert!(URL_SAFE_NO_PAD.decode(&a.nonce).unwrap().len() >= 16);
    assert!(URL_SAFE_NO_PAD.decode(&a.state).unwrap().len() >= 16);
    assert!(a.pkce_verifier.expose().len() >= 43);
    assert!(!b.url.contains("prompt="));
    assert!(!a.url.contains(CLIENT_SECRET));
    assert!(!a.url.contains(a.pkce_verifier.expose()));
    // `openid` is added when the configuration forgot it.
    let mut config = op.config();
    config.scopes = vec!["email".into()];
    let p = op.provider_with(config).await;
    let a = p.authorization_request(REDIRECT_URI, None).unwrap();
    let url = url::Url::parse(&a.url).unwrap();
    let scope = url.query_pairs().find(|(k, _)| k == "scope").unwrap().1;
    assert_eq!(scope, "openid email");
    // A bad redirect URI is a protocol error, not a panic.
    assert!(matches!(
        p.authorization_request("not a url", None),
        Err(ProviderError::Protocol(_))
    ));
}

#[tokio::test]
async fn a_code_exchange_returns_the_tokens_and_validated_claims() {
    let op = default_op().await;
    let login = exchange(&op.provider().await).await.unwrap();
    assert_eq!(login.tokens.access_token.expose(), ACCESS_TOKEN);
    assert_eq!(login.tokens.refresh_token.unwrap().expose(), "rt-2");
    assert!(login.tokens.id_token.is_some());
    assert_eq!(
        login.tokens.access_token_expires_at,
        Some(Timestamp::from_unix_seconds(NOW + 120))
    );
    assert_eq!(login.tokens.scope.as_deref(), Some("openid profile"));
    assert_eq!(login.claims.subject(), Some("alice"));
    assert_eq!(login.claims.session_id(), Some("op-session-1"));
    // What the token endpoint received.
    let call = op.script().token_calls[0].clone();
    assert_eq!(call.param("grant_type"), Some("authorization_code"));
    assert_eq!(call.param("code"), Some(CODE));
    assert_eq!(call.param("code_verifier"), Some(VERIFIER));
    assert_eq!(call.param("redirect_uri"), Some(REDIRECT_URI));
}

#[tokio::test]
async fn a_token_response_without_scope_was_granted_the_requested_scope() {
    // RFC 6749 section 5.1: `scope` may be left out when it equals the requested scope; the
    // proxy's scope checks then see what was asked for, not "nothing".
    let op = start_op(Script {
        token_response_overrides: json!({"scope": null}),
        ..Script::default()
    })
    .await;
    let mut config = op.config();
    config.scopes = vec!["email".into(), "orders.read".into()];
    let login = exchange(&op.provider_with(config).await).await.unwrap();
    assert_eq!(
        login.tokens.scope.as_deref(),
        Some("openid email orders.read")
    );
}

#[tokio::test]
async fn refresh_expires_in_becomes_the_refresh_token_expiry() {
    // Keycloak's `refresh_expires_in`: seconds, `0` for "does not expire"; anything odd is
    // ignored rather than failing the login.
    let op = default_op().await;
    let p = op.provider().await;
    for (value, expected) in [
        (json!(600), Some(NOW + 600)),
        (json!(0), None),
        (json!("600"), None),
        (json!(-5), None),
        (Value::Null, None),
    ] {
        op.script().token_response_overrides = json!({"refresh_expires_in": value});
        let login = exchange(&p).await.unwrap();
        assert_eq!(
            login.tokens.refresh_token_expires_at,
            expected.map(Timestamp::from_unix_seconds),
            "{value}"
        );
    }
}

#[tokio::test]
async fn client_authentication_follows_the_configuration() {
    let op = default_op().await;
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let mut config = op.config();
        config.client_auth = method;
        exchange(&op.provider_with(config).await).await.unwrap();
    }
    let calls = op.script().token_calls.clone();
    let seen: Vec<_> = calls
        .iter()
        .map(|c| {
            (
                c.auth.as_str(),
                c.client_id.as_str(),
                c.client_secret.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("basic", CLIENT_ID, CLIENT_SECRET),
            ("post", CLIENT_ID, CLIENT_SECRET)
        ]
    );
}

#[tokio::test]
async fn an_oauth_error_from_the_token_endpoint_is_rejected_with_its_code() {
    let op = start_op(Script {
        token_error: Some("invalid_grant".into()),
        ..Script::default()
    })
    .await;
    let err = exchange(&op.provider().await).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected(code) if code == "invalid_grant"),
        "{err:?}"
    );
    assert_no_secret(&err);
    // A code that is not a valid OAuth error code is not passed on as is.
    op.script().token_error = Some("<script>\"alert\"</script>".into());
    let err = exchange(&op.provider().await).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected(code) if code == "invalid_error_code"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_failure_without_an_oauth_error_is_unavailable_for_every_grant() {
    let op = start_op(Script::default()).await;
    let provider = op.provider().await;
    let login = exchange(&provider).await.unwrap();
    // What each grant must make of an answer.
    type Expected = fn(&ProviderError) -> bool;
    // (status, body, expected)
    let cases: [(u16, &str, Expected); 5] = [
        // A proxy's error page while the provider is down: unavailable, as revocation says.
        (503, "<html>Service Unavailable</html>", |e| {
            matches!(e, ProviderError::Unavailable(_))
        }),
        (500, "", |e| matches!(e, ProviderError::Unavailable(_))),
        (502, "{\"message\": \"bad gateway\"}", |e| {
            matches!(e, ProviderError::Unavailable(_))
        }),
        // A server failure that still says what went wrong, in OAuth's words: that refusal.
        (
            503,
            "{\"error\": \"temporarily_unavailable\"}",
            |e| matches!(e, ProviderError::Rejected(code) if code == "temporarily_unavailable"),
        ),
        // Not a server failure: an answer that broke the protocol.
        (404, "<html>Not Found</html>", |e| {
            matches!(e, ProviderError::Protocol(_))
        }),
    ];
    for (status, body, expected) in cases {
        op.script().token_answer = Some((status, body.to_owned()));
        let errors = [
            exchange(&provider).await.unwrap_err(),
            provider
                .refresh(
                    &bff_domain::Secret::new("rt"),
                    &login.claims,
                    Timestamp::from_unix_seconds(NOW),
                )
                .await
                .unwrap_err(),
            provider
                .client_credentials(&["api".to_owned()], Timestamp::from_unix_seconds(NOW))
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert!(expected(&err), "HTTP {status} {body:?}: {err:?}");
            assert!(!err.to_string().contains("Unavailable</html>"), "{err}");
        }
    }
}

#[tokio::test]
async fn network_failures_and_timeouts_are_unavailable() {
    let op = start_op(Script {
        metadata_overrides: json!({"token_endpoint": "http://127.0.0.1:1/token"}),
        ..Script::default()
    })
    .await;
    let err = exchange(&op.provider().await).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_no_secret(&err);

    let op = start_op(Script {
        token_delay: Some(Duration::from_secs(3)),
        ..Script::default()
    })
    .await;
    let mut config = op.config();
    config.http_timeout = Duration::from_millis(300);
    let p = op.provider_with(config).await;
    let started = std::time::Instant::now();
    let err = exchange(&p).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn malformed_or_non_bearer_token_responses_are_protocol_errors() {
    let op = start_op(Script {
        token_response_overrides: json!({"token_type": "DPoP"}),
        ..Script::default()
    })
    .await;
    let err = exchange(&op.provider().await).await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol(_)), "{err:?}");

    op.script().token_response_overrides = json!({"access_token": null});
    let err = exchange(&op.provider().await).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Protocol(m) if m.contains("access_token")),
        "{err:?}"
    );
    assert_no_secret(&err);

    // A type error names where, never the value.
    op.script().token_response_overrides = json!({"access_token": {"v": "leak-me"}});
    let err = exchange(&op.provider().await).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, ProviderError::Protocol(_)), "{shown}");
    assert!(!shown.contains("leak-me"), "{shown}");
    assert!(shown.contains("access_token"), "{shown}");

    op.script().token_response_overrides = json!({});
    op.script().omit_id_token = true;
    let err = exchange(&op.provider().await).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::IdTokenInvalid(r) if r == "missing"),
        "{err:?}"
    );
}

/// One hostile ID token: how to make it from the good claims, and the check it must fail.
struct Case {
    name: &'static str,
    token: Box<dyn Fn(&TestOp) -> String>,
    now: i64,
    expected: Option<&'static str>,
}

fn claims_with(op: &TestOp, changes: Value) -> Value {
    let mut claims = op.good_claims(Algorithm::ES256);
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn signed(changes: Value) -> Box<dyn Fn(&TestOp) -> String> {
    Box::new(move |op| Signer::Ec1.sign(Some("k1"), &claims_with(op, changes.clone())))
}

fn case(name: &'static str, token: Box<dyn Fn(&TestOp) -> String>, expected: &'static str) -> Case {
    Case {
        name,
        token,
        now: NOW,
        expected: Some(expected),
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "tampered payload",
            Box::new(|op| {
                let good = Signer::Ec1.sign(Some("k1"), &op.good_claims(Algorithm::ES256));
                let parts: Vec<&str> = good.split('.').collect();
                let forged = b64(&claims_with(op, json!({"sub": "admin"})));
                format!("{}.{forged}.{}", parts[0], parts[2])
            }),
            "signature",
        ),
        case(
            "alg none",
            Box::new(|op| {
                let header = b64(&json!({"alg": "none", "kid": "k1"}));
                format!("{header}.{}.", b64(&op.good_claims(Algorithm::ES256)))
            }),
            "alg",
        ),
        case(
            "HS256 with the RSA public key as secret",
            Box::new(|op| {
                let secret = EncodingKey::from_secret(fixture("rsa_public_pem").as_bytes());
                sign_raw(
                    Algorithm::HS256,
                    Some("rsa"),
                    &secret,
                    &op.good_claims(Algorithm::HS256),
                )
            }),
            "alg",
        ),
        case(
            "RS384 is not in the allowlist",
            Box::new(|op| {
                sign_raw(
                    Algorithm::RS384,
                    Some("rsa"),
                    &Signer::Rsa.key(),
                    &op.good_claims(Algorithm::RS384),
                )
            }),
            "alg",
        ),
        case(
            "wrong iss",
            signed(json!({"iss": "https://evil.example"})),
            "iss",
        ),
        case("wrong aud", signed(json!({"aud": "someone-else"})), "aud"),
        case(
            "several audiences without azp",
            signed(json!({"aud": [CLIENT_ID, "api"]})),
            "azp",
        ),
        case(
            "several audiences with a wrong azp",
            signed(json!({"aud": [CLIENT_ID, "api"], "azp": "api"})),
            "azp",
        ),
        case(
            "iat far in the future",
            signed(json!({"iat": NOW + 3600})),
            "iat",
        ),
        case("wrong nonce", signed(json!({"nonce": "other"})), "nonce"),
        case("missing nonce", signed(json!({"nonce": null})), "nonce"),
        case(
            "wrong at_hash",
            signed(json!({"at_hash": at_hash(Algorithm::ES256, "x")})),
            "at_hash",
        ),
        case("missing sub", signed(json!({"sub": null})), "sub"),
        case(
            "signed by a key the provider does not publish",
            Box::new(|op| Signer::Ec2.sign(Some("k1"), &op.good_claims(Algorithm::ES256))),
            "signature",
        ),
        Case {
            name: "expired beyond the skew",
            token: signed(json!({})),
            now: NOW + 300 + 61,
            expected: Some("exp"),
        },
        Case {
            name: "expired within the skew",
            token: signed(json!({})),
            now: NOW + 300 + 59,
            expected: None,
        },
        Case {
            name: "several audiences with our azp",
            token: signed(json!({"aud": [CLIENT_ID, "api"], "azp": CLIENT_ID})),
            now: NOW,
            expected: None,
        },
        Case {
            name: "RS256 from the RSA key",
            token: Box::new(|op| Signer::Rsa.sign(Some("rsa"), &op.good_claims(Algorithm::RS256))),
            now: NOW,
            expected: None,
        },
    ]
}

#[tokio::test]
async fn hostile_id_tokens_are_refused_naming_the_failed_check() {
    let op = default_op().await;
    let p = op.provider().await;
    for case in cases() {
        let token = (case.token)(&op);
        op.script().raw_id_token = Some(token.clone());
        let result = exchange_at(&p, Timestamp::from_unix_seconds(case.now)).await;
        match (case.expected, result) {
            (None, Ok(login)) => assert_eq!(login.claims.subject(), Some("alice"), "{}", case.name),
            (Some(reason), Err(err)) => {
                assert!(
                    matches!(&err, ProviderError::IdTokenInvalid(r) if r == reason),
                    "{}: expected {reason}, got {err:?}",
                    case.name
                );
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(&token), "{}: token in error", case.name);
                assert_no_secret(&err);
            }
            (expected, got) => panic!("{}: expected {expected:?}, got {got:?}", case.name),
        }
    }
    // None of these needed a JWKS refetch (every kid was known).
    assert_eq!(op.jwks_hits(), 1);
}
