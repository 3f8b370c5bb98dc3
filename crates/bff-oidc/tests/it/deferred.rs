//! A provider unreachable at start-up ([`DeferredProvider`]): `Unavailable` for every call and a
//! readiness error naming why, while its background task retries discovery (through a wrong
//! issuer, which is never accepted), then everything delegated once discovery succeeds.

use std::time::{Duration, Instant};

use bff_domain::ports::{IdentityProvider as _, ProviderError};
use bff_domain::{Claims, Secret};
use bff_oidc::{DeferredProvider, OidcProvider, RetryBackoff};
use serde_json::json;

use crate::op::{ClientOf as _, NONCE, REDIRECT_URI, Script, VERIFIER, now, start_op};

fn client() -> reqwest::Client {
    bff_oidc::http_client(Duration::from_secs(5), None).unwrap()
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> bool {
    matches!(result, Err(ProviderError::Unavailable(_)))
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deferred_provider_is_unavailable_until_its_discovery_succeeds() {
    // The JWKS cannot be fetched: discovery fails in a way that may pass.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_jwks = format!("http://{}/jwks", refused.local_addr().unwrap());
    drop(refused);
    let op = start_op(Script {
        metadata_overrides: json!({ "jwks_uri": refused_jwks }),
        ..Script::default()
    })
    .await;
    let first = OidcProvider::discover(op.config(), client())
        .await
        .unwrap_err();
    assert!(DeferredProvider::is_transient(&first), "{first}");
    let backoff = RetryBackoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    let (provider, task) = DeferredProvider::spawn(op.config(), client(), &first, backoff);

    // Identity from the configuration; every call refused as retryable.
    assert_eq!(provider.id().as_str(), "test");
    assert_eq!(provider.issuer(), op.issuer);
    assert!(!provider.is_discovered());
    assert!(unavailable(
        provider.authorization_request(REDIRECT_URI, None)
    ));
    assert!(unavailable(
        provider
            .exchange_code("code", &Secret::new(VERIFIER), REDIRECT_URI, NONCE, now())
            .await
    ));
    let claims = Claims::new(
        json!({"iss": op.issuer, "sub": "alice"})
            .as_object()
            .unwrap()
            .clone(),
    );
    assert!(unavailable(
        provider.refresh(&Secret::new("rt"), &claims, now()).await
    ));
    assert!(unavailable(provider.client_credentials(&[], now()).await));
    assert!(unavailable(
        provider.validate_logout_token("x.y.z", now()).await
    ));
    assert_eq!(provider.end_session_url(None, "state"), None);
    assert!(provider.requires_issuer_in_authorization_response());
    let not_ready = provider.check().await.unwrap_err();
    let why = std::error::Error::source(&not_ready).unwrap().to_string();
    assert!(why.contains("discovery pending"), "{why}");
    assert!(why.contains("JWKS"), "{why}");
    assert!(!why.contains(crate::op::CLIENT_SECRET), "{why}");

    // The provider comes back claiming another issuer: retried, never accepted.
    {
        let mut script = op.script();
        script.metadata_overrides = json!({});
        script.claimed_issuer = Some("https://evil.example".into());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let err = provider.check().await.unwrap_err();
        let why = std::error::Error::source(&err).unwrap().to_string();
        if why.contains("does not equal the configured issuer") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wrong issuer reported: {why}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!provider.is_discovered());
    assert!(unavailable(
        provider.authorization_request(REDIRECT_URI, None)
    ));

    // Its own issuer again: discovered, and the calls go through.
    op.script().claimed_issuer = None;
    wait_until("discovery succeeds", || provider.is_discovered()).await;
    let request = provider
        .authorization_request(REDIRECT_URI, None)
        .expect("discovered");
    assert!(
        request.url.starts_with(&op.issuer),
        "the provider's authorization endpoint: {}",
        request.url
    );
    provider.check().await.expect("ready");
    wait_until("the retry task ends", || task.is_finished()).await;
}
