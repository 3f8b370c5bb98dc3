//! Tests of the proxy's credential decision with the testkit fakes: fixed clock, seeded
//! randomness, scripted provider, in-memory stores.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_executor::block_on;

use crate::allowlist::{Method, Route, RouteSpec, RouteTable, TokenPolicy};
use crate::ports::{ProviderError, StoreError};
use crate::testkit::{FakeCipher, FakeProvider, SeededRandom};
use crate::*;

use crate::usecases::tests::{T0, World, login, world};

/// A table with one route at `/api` configured by `edit`.
fn table(edit: impl FnOnce(&mut RouteSpec)) -> RouteTable {
    let mut spec = RouteSpec::new("/api", "https://api.internal/v1");
    edit(&mut spec);
    RouteTable::new(vec![Route::new(spec).unwrap()]).unwrap()
}

fn credential(
    w: &World,
    table: &RouteTable,
    session: Option<&SessionId>,
) -> Result<UpstreamCredential, ProxyError> {
    let target = table.resolve(&Method::GET, "/api/orders?x=1").unwrap();
    block_on(w.bff.upstream_credential(session, &target))
}

fn bearer(value: &str) -> UpstreamCredential {
    UpstreamCredential::Bearer(Secret::new(value))
}

fn session_count(w: &World) -> usize {
    w.stores.sessions.lock().unwrap().len()
}

#[test]
fn a_user_route_gets_the_sessions_access_token() {
    let w = world();
    let id = login(&w);
    let routes = table(|_| {});
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-2")
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_none_route_never_gets_a_token_even_with_a_session() {
    let w = world();
    let id = login(&w);
    let routes = table(|s| s.token = TokenPolicy::None);
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        UpstreamCredential::None
    );
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        UpstreamCredential::None
    );
    // The session is not even looked up: a store outage does not matter to a public route.
    w.stores.fail.store(true, Ordering::SeqCst);
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        UpstreamCredential::None
    );
}

#[test]
fn a_user_route_without_a_live_session_is_no_session() {
    let w = world();
    let routes = table(|_| {});
    let err = credential(&w, &routes, None).unwrap_err();
    assert!(matches!(err, ProxyError::NoSession), "{err:?}");
    assert!(err.ends_session());

    // A well-formed id nobody issued, and a session that went idle.
    let stranger = SessionId::generate(&SeededRandom::new(7));
    let err = credential(&w, &routes, Some(&stranger)).unwrap_err();
    assert!(matches!(err, ProxyError::NoSession), "{err:?}");
    let id = login(&w);
    w.clock.advance(Duration::from_secs(601));
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(matches!(err, ProxyError::NoSession), "{err:?}");
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_token_about_to_expire_is_refreshed_first() {
    let w = world();
    let id = login(&w);
    let routes = table(|_| {});
    w.clock.advance(Duration::from_secs(275)); // inside the 30 s margin of a 300 s token
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-3")
    );
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-3")
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
}

#[test]
fn concurrent_calls_with_a_due_token_refresh_once() {
    let w = world();
    let id = login(&w);
    let routes = table(|_| {});
    w.clock.advance(Duration::from_secs(275));
    // A slow provider, so every other call finds the first one's lease.
    w.provider.script.lock().unwrap().refresh_yields = 5;
    let target = routes.resolve(&Method::GET, "/api/orders").unwrap();
    let calls = (0..20).map(|_| w.bff.upstream_credential(Some(&id), &target));
    let results = block_on(futures_util::future::join_all(calls));
    for result in results {
        assert_eq!(result.unwrap(), bearer("access-3"));
    }
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_route_of_another_provider_is_refused_without_spending_the_refresh_token() {
    let w = world();
    let id = login(&w);
    let routes = table(|s| s.provider = Some(ProviderId::parse("other").unwrap()));
    w.clock.advance(Duration::from_secs(275)); // due, yet no refresh may happen
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    match &err {
        ProxyError::Refused(refusal) => {
            assert_eq!(refusal.code(), "provider_not_connected");
            assert!(matches!(
                refusal,
                allowlist::ProxyRefusal::ProviderNotConnected { required } if required.as_str() == "other"
            ));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!err.ends_session());
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(session_count(&w), 1);

    // Naming the session's own provider is the same as naming none.
    let routes = table(|s| s.provider = Some(ProviderId::parse("main").unwrap()));
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-3")
    );
}

#[test]
fn required_scopes_are_checked_against_the_granted_ones() {
    let w = world();
    let id = login(&w);
    let granted = table(|s| s.required_scopes = vec!["profile".into(), "openid".into()]);
    assert_eq!(
        credential(&w, &granted, Some(&id)).unwrap(),
        bearer("access-2")
    );

    let missing = table(|s| {
        s.required_scopes = vec![
            "profile".into(),
            "orders.read".into(),
            "profile:write".into(),
        ]
    });
    let err = credential(&w, &missing, Some(&id)).unwrap_err();
    match &err {
        ProxyError::Refused(allowlist::ProxyRefusal::InsufficientScope { missing }) => {
            assert_eq!(
                missing,
                &["orders.read".to_owned(), "profile:write".to_owned()]
            );
        }
        other => panic!("expected insufficient_scope, got {other:?}"),
    }
    assert!(!err.ends_session());
    assert_eq!(session_count(&w), 1);
}

#[test]
fn scopes_are_checked_on_the_refreshed_tokens() {
    let w = world();
    let id = login(&w);
    // The stored token set lost its scope (a provider that stopped saying); the refresh
    // brings `openid profile` back, and that is what counts.
    {
        let mut sessions = w.stores.sessions.lock().unwrap();
        let session = sessions.get_mut(&id.key()).unwrap();
        let key = session.key.clone();
        let mut tokens = FakeProvider::tokens(2, Timestamp::from_unix_seconds(T0));
        tokens.scope = None;
        session.tokens = crate::vault::seal(&FakeCipher, &key, &tokens).unwrap();
    }
    let routes = table(|s| s.required_scopes = vec!["profile".into()]);
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(matches!(err, ProxyError::Refused(_)), "{err:?}");
    w.clock.advance(Duration::from_secs(275));
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-3")
    );
}

#[test]
fn a_refused_refresh_ends_the_session() {
    let w = world();
    let id = login(&w);
    let routes = table(|_| {});
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    w.clock.advance(Duration::from_secs(275));
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(
        matches!(&err, ProxyError::Token(RefreshError::Refused(code)) if code == "invalid_grant"),
        "{err:?}"
    );
    assert!(err.ends_session());
    assert_eq!(session_count(&w), 0);
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(matches!(err, ProxyError::NoSession), "{err:?}");
}

#[test]
fn outages_keep_the_session() {
    // The store is down.
    let w = world();
    let id = login(&w);
    let routes = table(|_| {});
    w.stores.fail.store(true, Ordering::SeqCst);
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(
        matches!(
            err,
            ProxyError::Token(RefreshError::Store(StoreError::Unavailable(_)))
        ),
        "{err:?}"
    );
    assert!(!err.ends_session());
    w.stores.fail.store(false, Ordering::SeqCst);
    assert_eq!(session_count(&w), 1);

    // The provider is down while a refresh is due.
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Unavailable("connection refused".into()));
    w.clock.advance(Duration::from_secs(275));
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(
        matches!(
            err,
            ProxyError::Token(RefreshError::Provider(ProviderError::Unavailable(_)))
        ),
        "{err:?}"
    );
    assert!(!err.ends_session());
    assert_eq!(session_count(&w), 1);
}

#[test]
fn client_credentials_are_not_supported_yet() {
    let w = world();
    let id = login(&w);
    for policy in [TokenPolicy::Client, TokenPolicy::UserOrClient] {
        let routes = table(|s| s.token = policy);
        for session in [None, Some(&id)] {
            let err = credential(&w, &routes, session).unwrap_err();
            assert!(
                matches!(err, ProxyError::Unsupported(p) if p == policy),
                "{err:?}"
            );
            assert!(!err.ends_session());
            assert!(err.to_string().contains(policy.as_str()));
        }
    }
}

#[test]
fn a_credential_never_shows_its_token() {
    let shown = format!("{:?}", bearer("access-secret-value"));
    assert!(!shown.contains("access-secret-value"), "{shown}");
}
