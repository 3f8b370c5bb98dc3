//! After login: refresh, revocation (RFC 7009), userinfo, end-session URLs.

use bff_domain::Secret;
use bff_domain::ports::{IdentityProvider, ProviderError};
use bff_oidc::ClientAuthMethod;
use serde_json::json;

use crate::op::{
    ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, Script, assert_no_secret, default_op, now, start_op,
};

#[tokio::test]
async fn refresh_returns_new_tokens_and_checks_the_new_id_token() {
    let op = default_op().await;
    let p = op.provider().await;
    let tokens = p
        .refresh(&Secret::new("rt-1"), &claims_of("alice"), now())
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
        .refresh(&Secret::new("rt-1"), &claims_of("bob"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::IdTokenInvalid(r) if r == "sub"),
        "{err:?}"
    );
    // So is one for another audience.
    op.script().claim_overrides = json!({"aud": "other-client"});
    let err = p
        .refresh(&Secret::new("rt-1"), &claims_of("alice"), now())
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
        .refresh(&Secret::new("rt-1"), &claims_of("alice"), now())
        .await
        .unwrap();
    assert!(tokens.id_token.is_none());
}

#[tokio::test]
async fn a_dead_refresh_token_is_rejected_with_invalid_grant() {
    let op = default_op().await;
    let p = op.provider().await;
    let err = p
        .refresh(&Secret::new("dead"), &claims_of("alice"), now())
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

fn claims_of(subject: &str) -> bff_domain::Claims {
    let serde_json::Value::Object(map) = serde_json::json!({"sub": subject}) else {
        unreachable!()
    };
    bff_domain::Claims::new(map)
}
