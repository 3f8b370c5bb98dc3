//! The JWKS cache through the provider: rotation, the rate-limited refetch, odd keys.

use std::time::Duration;

use bff_domain::ports::ProviderError;

use crate::op::{ClientOf as _, Signer, default_op, exchange};

fn is_kid_error(result: &Result<bff_domain::ports::ProviderLogin, ProviderError>) -> bool {
    matches!(result, Err(ProviderError::IdTokenInvalid(r)) if r == "kid")
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_further_unknown_kids_do_not_refetch() {
    let op = default_op().await;
    let mut config = op.config();
    config.jwks_refetch_interval = Duration::from_secs(3600);
    let p = op.provider_with(config).await;
    assert_eq!(op.jwks_hits(), 1, "the JWKS is loaded once at start");
    exchange(&p).await.unwrap();
    assert_eq!(op.jwks_hits(), 1, "a known kid needs no fetch");

    // The provider rotates to key 2: the unknown kid triggers one refetch, which finds it.
    {
        let mut s = op.script();
        s.publish_ec2 = true;
        s.signer = Signer::Ec2;
    }
    let login = exchange(&p).await.unwrap();
    assert_eq!(login.claims.subject(), Some("alice"));
    assert_eq!(op.jwks_hits(), 2);
    exchange(&p).await.unwrap();
    assert_eq!(op.jwks_hits(), 2, "the rotated key is cached");

    // Right after, another unknown kid: refused without hitting the JWKS again.
    op.script().kid_override = Some("k3".into());
    for _ in 0..3 {
        let result = exchange(&p).await;
        assert!(is_kid_error(&result), "{result:?}");
    }
    assert_eq!(op.jwks_hits(), 2, "refetch not rate-limited");
}

#[tokio::test]
async fn after_the_interval_an_unknown_kid_may_refetch_again() {
    let op = default_op().await;
    let mut config = op.config();
    config.jwks_refetch_interval = Duration::from_millis(300);
    let p = op.provider_with(config).await;
    op.script().kid_override = Some("k9".into());
    assert!(is_kid_error(&exchange(&p).await));
    assert!(is_kid_error(&exchange(&p).await));
    assert_eq!(op.jwks_hits(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(is_kid_error(&exchange(&p).await));
    assert_eq!(op.jwks_hits(), 3);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let op = default_op().await;
    let mut config = op.config();
    config.jwks_refetch_interval = Duration::from_secs(3600);
    let p = std::sync::Arc::new(op.provider_with(config).await);
    {
        let mut s = op.script();
        s.publish_ec2 = true;
        s.signer = Signer::Ec2;
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { exchange(&p).await })
        })
        .collect();
    for task in tasks {
        // Every caller sees the rotated key, even those that lost the race to refetch.
        task.await.unwrap().unwrap();
    }
    assert_eq!(op.jwks_hits(), 2);
}

#[tokio::test]
async fn encryption_keys_and_unknown_key_types_are_ignored() {
    let op = default_op().await;
    let p = op.provider().await;
    // The mock's JWKS has an `enc` key and a key of an unknown type; the set still loads, and a
    // token pointing at the encryption key is refused as an unknown kid.
    op.script().kid_override = Some("enc".into());
    let result = exchange(&p).await;
    assert!(is_kid_error(&result), "{result:?}");
}
