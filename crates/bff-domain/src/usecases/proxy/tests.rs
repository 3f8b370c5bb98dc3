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
fn callers_that_waited_for_a_failed_refresh_share_its_failure() {
    let w = world();
    let id = login(&w);
    let routes = table(|_| {});
    w.clock.advance(Duration::from_secs(275));
    // A slow provider that is down, so every other call waits for the first one's refresh.
    {
        let mut script = w.provider.script.lock().unwrap();
        script.refresh_yields = 5;
        script.refresh_error = Some(|| ProviderError::Unavailable("connection refused".into()));
    }
    let target = routes.resolve(&Method::GET, "/api/orders").unwrap();
    let calls = (0..20).map(|_| w.bff.upstream_credential(Some(&id), &target));
    let results = block_on(futures_util::future::join_all(calls));
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                ProxyError::Token(RefreshError::Provider(ProviderError::Unavailable(_)))
            ),
            "{err:?}"
        );
        assert!(!err.ends_session());
    }
    // One call asked the provider; the nineteen that waited did not each ask again in turn.
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(session_count(&w), 1);

    // The provider is back: the next call, which waited for nobody, refreshes.
    w.provider.script.lock().unwrap().refresh_error = None;
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-3")
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 2);
}

fn grants(w: &World) -> usize {
    w.provider.client_grant_count()
}

#[test]
fn a_client_route_gets_the_bffs_own_token_with_or_without_a_session() {
    let w = world();
    let id = login(&w);
    let routes = table(|s| {
        s.token = TokenPolicy::Client;
        s.required_scopes = vec!["reports.read".into(), "api".into()];
    });
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("client-main-1")
    );
    // One grant, asking for the route's required scopes (sorted).
    assert_eq!(
        *w.provider.client_grants.lock().unwrap(),
        vec![vec!["api".to_owned(), "reports.read".to_owned()]]
    );
    // The session is not read: a store outage does not matter, nor does a stranger's cookie.
    w.stores.fail.store(true, Ordering::SeqCst);
    let stranger = SessionId::generate(&SeededRandom::new(7));
    assert_eq!(
        credential(&w, &routes, Some(&stranger)).unwrap(),
        bearer("client-main-1")
    );
    assert_eq!(grants(&w), 1);
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_client_token_is_reused_until_the_refresh_margin_before_its_expiry() {
    let w = world();
    let routes = table(|s| s.token = TokenPolicy::Client);
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    // 300 s token, 30 s margin: reused up to T0 + 269.
    w.clock.advance(Duration::from_secs(269));
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    assert_eq!(grants(&w), 1);
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-2")
    );
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-2")
    );
    assert_eq!(grants(&w), 2);
}

#[test]
fn a_short_lived_or_undated_client_token_is_still_reused_for_a_while() {
    // 40 s lifetime, shorter than twice the 30 s margin: reused for half its life.
    let w = world();
    w.provider.script.lock().unwrap().client_token_lifetime = Some(Duration::from_secs(40));
    let routes = table(|s| s.token = TokenPolicy::Client);
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    w.clock.advance(Duration::from_secs(19));
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-2")
    );

    // No `expires_in`: taken to live 60 s, so it is fetched again after 30 s.
    let w = world();
    w.provider
        .script
        .lock()
        .unwrap()
        .client_token_without_expiry = true;
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    w.clock.advance(Duration::from_secs(29));
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-2")
    );
}

#[test]
fn concurrent_callers_wait_for_one_client_credentials_grant() {
    let w = world();
    let id = login(&w);
    // A slow provider, so every other call arrives while the first one fetches.
    w.provider.script.lock().unwrap().client_credentials_yields = 5;
    let routes = table(|s| s.token = TokenPolicy::Client);
    let target = routes.resolve(&Method::GET, "/api/orders").unwrap();
    let calls = (0..20).map(|i| {
        let session = (i % 2 == 0).then_some(&id);
        w.bff.upstream_credential(session, &target)
    });
    for result in block_on(futures_util::future::join_all(calls)) {
        assert_eq!(result.unwrap(), bearer("client-main-1"));
    }
    assert_eq!(grants(&w), 1);
}

#[test]
fn a_failed_client_credentials_grant_is_not_cached() {
    let w = world();
    let routes = table(|s| s.token = TokenPolicy::Client);
    w.provider.script.lock().unwrap().client_credentials_error =
        Some(|| ProviderError::Unavailable("connection refused".into()));
    let err = credential(&w, &routes, None).unwrap_err();
    match &err {
        ProxyError::ClientToken(cause) => {
            assert!(
                matches!(**cause, ProviderError::Unavailable(_)),
                "{cause:?}"
            );
        }
        other => panic!("expected a client-token error, got {other:?}"),
    }
    assert!(!err.ends_session());
    // The very next call asks again, and a refusal is passed on as such.
    w.provider.script.lock().unwrap().client_credentials_error =
        Some(|| ProviderError::Rejected("unauthorized_client".into()));
    let err = credential(&w, &routes, None).unwrap_err();
    assert!(
        matches!(&err, ProxyError::ClientToken(cause) if matches!(&**cause, ProviderError::Rejected(code) if code == "unauthorized_client")),
        "{err:?}"
    );
    w.provider.script.lock().unwrap().client_credentials_error = None;
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-3")
    );
    assert_eq!(grants(&w), 3);
}

#[test]
fn callers_waiting_for_a_failing_grant_share_its_failure() {
    let w = world();
    let routes = table(|s| s.token = TokenPolicy::Client);
    {
        let mut script = w.provider.script.lock().unwrap();
        script.client_credentials_yields = 5;
        script.client_credentials_error = Some(|| ProviderError::Unavailable("timed out".into()));
    }
    let target = routes.resolve(&Method::GET, "/api/orders").unwrap();
    let calls = (0..10).map(|_| w.bff.upstream_credential(None, &target));
    for result in block_on(futures_util::future::join_all(calls)) {
        assert!(
            matches!(result, Err(ProxyError::ClientToken(_))),
            "{result:?}"
        );
    }
    // One outage, one wait: not ten grants attempted one after the other.
    assert_eq!(grants(&w), 1);
    w.provider.script.lock().unwrap().client_credentials_error = None;
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-2")
    );
}

#[test]
fn a_failed_refetch_hands_out_the_previous_token_until_it_expires() {
    let w = world();
    let routes = table(|s| s.token = TokenPolicy::Client);
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    w.provider.script.lock().unwrap().client_credentials_error =
        Some(|| ProviderError::Unavailable("connection refused".into()));
    w.clock.advance(Duration::from_secs(290)); // due, not expired
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    assert_eq!(grants(&w), 3, "each call after the failure tried again");
    w.clock.advance(Duration::from_secs(10)); // expired
    let err = credential(&w, &routes, None).unwrap_err();
    assert!(matches!(err, ProxyError::ClientToken(_)), "{err:?}");
}

#[test]
fn client_tokens_are_kept_per_provider_and_scope_set() {
    let w = world();
    let spec = |prefix: &str, scopes: &[&str], provider: Option<&str>| {
        let mut spec = RouteSpec::new(prefix, "https://api.internal/v1");
        spec.token = TokenPolicy::Client;
        spec.required_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        spec.provider = provider.map(|p| ProviderId::parse(p).unwrap());
        Route::new(spec).unwrap()
    };
    let routes = RouteTable::new(vec![
        spec("/ab", &["a", "b"], None),
        spec("/ba", &["b", "a", "b"], Some("main")),
        spec("/a", &["a"], None),
        spec("/other", &["a", "b"], Some("other")),
    ])
    .unwrap();
    let get = |path: &str| {
        let target = routes.resolve(&Method::GET, path).unwrap();
        block_on(w.bff.upstream_credential(None, &target)).unwrap()
    };
    assert_eq!(get("/ab/x"), bearer("client-main-1"));
    assert_eq!(get("/ba/x"), bearer("client-main-1"));
    assert_eq!(get("/a/x"), bearer("client-main-2"));
    assert_eq!(get("/other/x"), bearer("client-other-1"));
    assert_eq!(get("/ab/y"), bearer("client-main-1"));
    assert_eq!(grants(&w), 2);
}

#[test]
fn a_client_token_granted_fewer_scopes_is_insufficient_scope() {
    let w = world();
    let routes = table(|s| {
        s.token = TokenPolicy::Client;
        s.required_scopes = vec!["a".into(), "b".into()];
    });
    w.provider.script.lock().unwrap().client_token_scope = Some(Some("a other".into()));
    let err = credential(&w, &routes, None).unwrap_err();
    assert!(
        matches!(&err, ProxyError::Refused(allowlist::ProxyRefusal::InsufficientScope { missing }) if missing == &["b".to_owned()]),
        "{err:?}"
    );
    // The answer is a fact until the token is due: not asked again for every call.
    assert!(credential(&w, &routes, None).is_err());
    assert_eq!(grants(&w), 1);

    // No `scope` in the answer: granted as requested.
    let w = world();
    w.provider.script.lock().unwrap().client_token_scope = Some(None);
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
}

#[test]
fn a_client_route_of_a_provider_that_is_not_configured_is_refused() {
    let w = world();
    let routes = table(|s| {
        s.token = TokenPolicy::Client;
        s.provider = Some(ProviderId::parse("nobody").unwrap());
    });
    let err = credential(&w, &routes, None).unwrap_err();
    assert!(
        matches!(&err, ProxyError::UnknownProvider(p) if p.as_str() == "nobody"),
        "{err:?}"
    );
    assert!(!err.ends_session());
    assert_eq!(grants(&w), 0);
}

#[test]
fn a_user_or_client_route_takes_the_users_token_when_there_is_a_live_session() {
    let w = world();
    let routes = table(|s| s.token = TokenPolicy::UserOrClient);
    assert_eq!(
        credential(&w, &routes, None).unwrap(),
        bearer("client-main-1")
    );
    let id = login(&w);
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-2")
    );
    // A cookie whose session nobody knows: the client token.
    let stranger = SessionId::generate(&SeededRandom::new(7));
    assert_eq!(
        credential(&w, &routes, Some(&stranger)).unwrap(),
        bearer("client-main-1")
    );
    // The user's token is refreshed as on a `user` route.
    w.clock.advance(Duration::from_secs(275));
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("access-3")
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    // A session gone idle: the client token again (fetched anew, the first one being due).
    w.clock.advance(Duration::from_secs(601));
    assert_eq!(
        credential(&w, &routes, Some(&id)).unwrap(),
        bearer("client-main-2")
    );
    assert_eq!(grants(&w), 2);
}

#[test]
fn a_user_or_client_route_refuses_a_session_that_may_not_use_it() {
    let w = world();
    let id = login(&w);
    let routes = table(|s| {
        s.token = TokenPolicy::UserOrClient;
        s.provider = Some(ProviderId::parse("other").unwrap());
    });
    let err = credential(&w, &routes, Some(&id)).unwrap_err();
    assert!(
        matches!(&err, ProxyError::Refused(refusal) if refusal.code() == "provider_not_connected"),
        "{err:?}"
    );
    let scoped = table(|s| {
        s.token = TokenPolicy::UserOrClient;
        s.required_scopes = vec!["orders.read".into()];
    });
    let err = credential(&w, &scoped, Some(&id)).unwrap_err();
    assert!(
        matches!(&err, ProxyError::Refused(refusal) if refusal.code() == "insufficient_scope"),
        "{err:?}"
    );
    // A refused refresh is not downgraded to the client token either: the session ends.
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    w.clock.advance(Duration::from_secs(275));
    let plain = table(|s| s.token = TokenPolicy::UserOrClient);
    let err = credential(&w, &plain, Some(&id)).unwrap_err();
    assert!(err.ends_session(), "{err:?}");
    assert_eq!(grants(&w), 0);
}

#[test]
fn a_credential_never_shows_its_token() {
    let shown = format!("{:?}", bearer("access-secret-value"));
    assert!(!shown.contains("access-secret-value"), "{shown}");
}
