//! The client-credentials grant: the BFF's own token for API routes, with either client
//! authentication, the requested scopes, its expiry, and every failure as the port's error.

use std::time::Duration;

use bff_domain::ports::{IdentityProvider, ProviderError};
use bff_oidc::ClientAuthMethod;
use bff_test_op::CLIENT_ACCESS_TOKEN;
use serde_json::json;

use crate::op::{
    CLIENT_ID, CLIENT_SECRET, ClientOf as _, NOW, Script, assert_no_secret, default_op, now,
    start_op,
};

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_client_token_is_asked_for_with_the_scopes_and_either_client_authentication() {
    let op = default_op().await;
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let mut config = op.config();
        config.client_auth = method;
        let p = op.provider_with(config).await;
        let token = p
            .client_credentials(&scopes(&["reports.read", "api"]), now())
            .await
            .unwrap();
        assert_eq!(token.access_token.expose(), CLIENT_ACCESS_TOKEN);
        assert_eq!(token.expires_at.unwrap().unix_seconds(), NOW + 120);
        assert_eq!(token.scope.as_deref(), Some("reports.read api"));
        // Debug never shows the token.
        assert!(!format!("{token:?}").contains(CLIENT_ACCESS_TOKEN));
    }
    let calls = op.script().token_calls.clone();
    assert_eq!(calls.len(), 2);
    for (call, auth) in calls.iter().zip(["basic", "post"]) {
        assert_eq!(call.auth, auth);
        assert_eq!(call.client_id, CLIENT_ID);
        assert_eq!(call.client_secret, CLIENT_SECRET);
        assert_eq!(call.param("grant_type"), Some("client_credentials"));
        assert_eq!(call.param("scope"), Some("reports.read api"));
        assert_eq!(call.param("code"), None);
    }
}

#[tokio::test]
async fn without_scopes_no_scope_is_sent_and_a_silent_answer_keeps_none() {
    let op = start_op(Script {
        token_response_overrides: json!({"expires_in": null}),
        ..Script::default()
    })
    .await;
    let p = op.provider().await;
    let token = p.client_credentials(&[], now()).await.unwrap();
    assert_eq!(op.script().token_calls[0].param("scope"), None);
    // Neither `scope` nor `expires_in` in the answer: the domain decides what that means.
    assert_eq!(token.scope, None);
    assert_eq!(token.expires_at, None);
}

#[tokio::test]
async fn a_refused_grant_is_rejected_with_its_code() {
    let op = start_op(Script {
        token_error: Some("unauthorized_client".into()),
        ..Script::default()
    })
    .await;
    let err = op
        .provider()
        .await
        .client_credentials(&scopes(&["api"]), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected(code) if code == "unauthorized_client"),
        "{err:?}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn a_non_bearer_or_malformed_answer_is_a_protocol_error() {
    for overrides in [
        json!({"token_type": "DPoP"}),
        json!({"access_token": null}),
        json!({"expires_in": "soon"}),
    ] {
        let op = start_op(Script {
            token_response_overrides: overrides.clone(),
            ..Script::default()
        })
        .await;
        let err = op
            .provider()
            .await
            .client_credentials(&[], now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::Protocol(_)),
            "{overrides}: {err:?}"
        );
        assert!(!format!("{err} {err:?}").contains(CLIENT_ACCESS_TOKEN));
    }
}

#[tokio::test]
async fn an_unreachable_or_slow_token_endpoint_is_unavailable() {
    let op = start_op(Script {
        metadata_overrides: json!({"token_endpoint": "http://127.0.0.1:1/token"}),
        ..Script::default()
    })
    .await;
    let err = op
        .provider()
        .await
        .client_credentials(&[], now())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");

    let op = start_op(Script {
        token_delay: Some(Duration::from_secs(3)),
        ..Script::default()
    })
    .await;
    let mut config = op.config();
    config.http_timeout = Duration::from_millis(300);
    let p = op.provider_with(config).await;
    let started = std::time::Instant::now();
    let err = p.client_credentials(&[], now()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
