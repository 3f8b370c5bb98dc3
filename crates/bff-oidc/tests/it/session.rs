//! After login: refresh, revocation (RFC 7009), userinfo, end-session URLs.

use bff_domain::ports::{IdentityProvider, ProviderError};
use bff_domain::{Claims, Secret};
use bff_oidc::{Algorithm, ClientAuthMethod};
use serde_json::{Value, json};

use crate::op::{
    ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, ClientOf as _, NONCE, NOW, Script, TestOp,
    assert_no_secret, default_op, exchange, now, start_op,
};

#[tokio::test]
async fn refresh_returns_new_tokens_and_checks_the_new_id_token() {
    let op = default_op().await;
    let p = op.provider().await;
    let tokens = p
        .refresh(&Secret::new("rt-1"), &claims_of(&op, "alice"), now())
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose(), ACCESS_TOKEN);
    assert_eq!(tokens.refresh_token.unwrap().expose(), "rt-2");
    let call = op.script().token_calls[0].clone();
    assert_eq!(call.param("grant_type"), Some("refresh_token"));
    assert_eq!(call.param("refresh_token"), Some("rt-1"));
    assert_eq!(call.auth, "basic");

    // A refreshed ID token for another user is refused.
    let err = p
        .refresh(&Secret::new("rt-1"), &claims_of(&op, "bob"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::IdTokenInvalid(r) if r == "sub"),
        "{err:?}"
    );
    // So is one for another audience.
    op.script().claim_overrides = json!({"aud": "other-client"});
    let err = p
        .refresh(&Secret::new("rt-1"), &claims_of(&op, "alice"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::IdTokenInvalid(r) if r == "aud"),
        "{err:?}"
    );
    // No ID token in the answer is fine.
    op.script().claim_overrides = json!({});
    op.script().omit_id_token = true;
    let tokens = p
        .refresh(&Secret::new("rt-1"), &claims_of(&op, "alice"), now())
        .await
        .unwrap();
    assert!(tokens.id_token.is_none());
}

#[tokio::test]
async fn a_dead_refresh_token_is_rejected_with_invalid_grant() {
    let op = default_op().await;
    let p = op.provider().await;
    let err = p
        .refresh(&Secret::new("dead"), &claims_of(&op, "alice"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected(code) if code == "invalid_grant"),
        "{err:?}"
    );
    assert_no_secret(&err);
    assert!(!format!("{err:?}").contains("dead"));
}

#[tokio::test]
async fn revocation_sends_the_refresh_token_with_its_hint_and_client_authentication() {
    let op = default_op().await;
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let mut config = op.config();
        config.client_auth = method;
        let p = op.provider_with(config).await;
        p.revoke_refresh_token(&Secret::new("rt-1")).await.unwrap();
    }
    let calls = op.script().revocations.clone();
    assert_eq!(calls.len(), 2);
    for (call, auth) in calls.iter().zip(["basic", "post"]) {
        assert_eq!(call.auth, auth);
        assert_eq!(call.client_id, CLIENT_ID);
        assert_eq!(call.client_secret, CLIENT_SECRET);
        assert_eq!(call.param("token"), Some("rt-1"));
        assert_eq!(call.param("token_type_hint"), Some("refresh_token"));
    }

    let p = op.provider().await;
    let err = p
        .revoke_refresh_token(&Secret::new("unsupported"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected(code) if code == "unsupported_token_type"),
        "{err:?}"
    );
}

#[tokio::test]
async fn without_a_revocation_endpoint_revoking_is_a_no_op() {
    let op = start_op(Script {
        metadata_overrides: json!({"revocation_endpoint": null}),
        ..Script::default()
    })
    .await;
    let p = op.provider().await;
    p.revoke_refresh_token(&Secret::new("rt-1")).await.unwrap();
    assert!(op.script().revocations.is_empty());
}

#[tokio::test]
async fn userinfo_returns_claims_for_the_same_subject_only() {
    let op = default_op().await;
    let p = op.provider().await;
    let info = p
        .userinfo(&Secret::new(ACCESS_TOKEN), "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.string("email"), Some("a@example.test"));
    assert_eq!(op.script().userinfo_bearers, vec![ACCESS_TOKEN]);

    op.script().userinfo_sub = "mallory".into();
    let err = p
        .userinfo(&Secret::new(ACCESS_TOKEN), "alice")
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol(_)), "{err:?}");
    assert_no_secret(&err);

    op.script().userinfo_sub = "alice".into();
    op.script().userinfo_jwt = true;
    let err = p
        .userinfo(&Secret::new(ACCESS_TOKEN), "alice")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Protocol(m) if m == "signed userinfo not supported"),
        "{err:?}"
    );

    let err = p
        .userinfo(&Secret::new("expired"), "alice")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected(code) if code == "invalid_token"),
        "{err:?}"
    );
}

#[tokio::test]
async fn userinfo_is_skipped_when_disabled_or_absent() {
    let op = default_op().await;
    let mut config = op.config();
    config.userinfo = false;
    let p = op.provider_with(config).await;
    assert!(
        p.userinfo(&Secret::new(ACCESS_TOKEN), "alice")
            .await
            .unwrap()
            .is_none()
    );

    let op = start_op(Script {
        metadata_overrides: json!({"userinfo_endpoint": null}),
        ..Script::default()
    })
    .await;
    let p = op.provider().await;
    assert!(
        p.userinfo(&Secret::new(ACCESS_TOKEN), "alice")
            .await
            .unwrap()
            .is_none()
    );
    assert!(op.script().userinfo_bearers.is_empty());
}

#[tokio::test]
async fn end_session_urls_carry_the_hint_the_redirect_and_the_client() {
    let op = default_op().await;
    let p = op.provider().await;
    let url = p
        .end_session_url(Some(&Secret::new("the.id.token")), "st-1")
        .unwrap();
    assert_eq!(
        url,
        format!(
            "{}/logout?x=1&id_token_hint=the.id.token&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2F&client_id={CLIENT_ID}&state=st-1",
            op.issuer
        )
    );
    let mut config = op.config();
    config.post_logout_redirect_uri = None;
    let p = op.provider_with(config).await;
    assert_eq!(
        p.end_session_url(None, "st-1").unwrap(),
        format!("{}/logout?x=1&client_id={CLIENT_ID}&state=st-1", op.issuer)
    );

    let op = start_op(Script {
        metadata_overrides: json!({"end_session_endpoint": null}),
        ..Script::default()
    })
    .await;
    assert!(op.provider().await.end_session_url(None, "st-1").is_none());
}

/// The claims of the session's original ID token (from the code exchange) for `subject`.
fn claims_of(op: &TestOp, subject: &str) -> Claims {
    original(op, json!({ "sub": subject }))
}

/// The claims of a good original ID token with `changes` (`null` removes a claim).
fn original(op: &TestOp, changes: Value) -> Claims {
    let Value::Object(mut map) = op.good_claims(Algorithm::ES256) else {
        unreachable!()
    };
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            map.remove(name);
        } else {
            map.insert(name.clone(), value.clone());
        }
    }
    Claims::new(map)
}

#[tokio::test]
async fn the_original_claims_of_a_real_login_pass_a_refresh() {
    // Guards the table below: the claims the code exchange returned, unchanged, are what the
    // domain hands to refresh, and an honest refreshed token matches them.
    let op = default_op().await;
    let p = op.provider().await;
    let login = exchange(&p).await.unwrap();
    let tokens = p
        .refresh(&Secret::new("rt-1"), &login.claims, now())
        .await
        .unwrap();
    assert!(tokens.id_token.is_some());
}

#[tokio::test]
async fn a_refreshed_id_token_must_describe_the_original_authentication() {
    const AUTH_TIME: i64 = NOW - 3600;
    let op = default_op().await;
    let p = op.provider().await;
    // (what, the original's changes, the refreshed token's changes, the failed check or none)
    let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
        (
            "the original nonce repeated, auth_time kept",
            json!({"auth_time": AUTH_TIME}),
            json!({"nonce": NONCE, "auth_time": AUTH_TIME}),
            None,
        ),
        (
            "auth_time left out (OIDC Core 12.2 only constrains it when present)",
            json!({"auth_time": AUTH_TIME}),
            json!({}),
            None,
        ),
        (
            "another nonce",
            json!({}),
            json!({"nonce": "other"}),
            Some("nonce"),
        ),
        (
            "a nonce although the original had none",
            json!({"nonce": null}),
            json!({"nonce": NONCE}),
            Some("nonce"),
        ),
        (
            "another auth_time: a new authentication",
            json!({"auth_time": AUTH_TIME}),
            json!({"auth_time": AUTH_TIME + 60}),
            Some("auth_time"),
        ),
        (
            "an auth_time although the original had none",
            json!({}),
            json!({"auth_time": AUTH_TIME}),
            Some("auth_time"),
        ),
        (
            "the session's original came from another issuer value",
            json!({"iss": "https://old-issuer.example"}),
            json!({}),
            Some("iss"),
        ),
        (
            "another subject",
            json!({"sub": "bob"}),
            json!({}),
            Some("sub"),
        ),
    ];
    for (what, original_changes, refreshed_changes, expected) in cases {
        op.script().claim_overrides = refreshed_changes;
        let result = p
            .refresh(
                &Secret::new("rt-1"),
                &original(&op, original_changes),
                now(),
            )
            .await;
        match (expected, result) {
            (None, Ok(tokens)) => assert!(tokens.id_token.is_some(), "{what}"),
            (Some(check), Err(err)) => {
                assert!(
                    matches!(&err, ProviderError::IdTokenInvalid(r) if r == check),
                    "{what}: expected {check}, got {err:?}"
                );
                assert_no_secret(&err);
                let shown = format!("{err} {err:?}");
                for content in ["old-issuer", "bob", "other", &AUTH_TIME.to_string()] {
                    assert!(!shown.contains(content), "{what}: {content} in {shown}");
                }
            }
            (expected, got) => panic!("{what}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[tokio::test]
async fn a_session_without_sub_does_not_spend_its_refresh_token() {
    let op = default_op().await;
    let p = op.provider().await;
    let err = p
        .refresh(
            &Secret::new("rt-1"),
            &original(&op, json!({"sub": null})),
            now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::IdTokenInvalid(r) if r == "sub"),
        "{err:?}"
    );
    assert!(op.script().token_calls.is_empty());
}
