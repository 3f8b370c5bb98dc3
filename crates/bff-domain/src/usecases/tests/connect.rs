//! One session, several providers: connecting `other` to a session that logged in at `main`,
//! with the testkit fakes. Identity stays the first login's; each provider's tokens are sealed,
//! refreshed, used and revoked on their own; a route never gets another provider's token.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_executor::block_on;

use super::{OTHER_ISSUER, World, login, world};
use crate::allowlist::{Method, ProxyRefusal, Route, RouteSpec, RouteTable};
use crate::ports::ProviderError;
use crate::testkit::FakeCipher;
use crate::*;

fn main_id() -> ProviderId {
    ProviderId::parse("main").unwrap()
}

fn other_id() -> ProviderId {
    ProviderId::parse("other").unwrap()
}

/// Starts connecting `other` to the session `id`; the state of the pending login.
fn start_connect(w: &World, id: &SessionId) -> (StartedLogin, String) {
    let started = block_on(w.bff.start_connect(
        id,
        StartLogin {
            provider: Some(other_id()),
            return_url: ReturnUrl::parse("/connected").unwrap(),
            prompt: None,
            style: LoginStyle::Redirect,
        },
    ))
    .unwrap();
    let pending = w.stores.pending.lock().unwrap();
    assert_eq!(pending.len(), 1);
    let state = pending.keys().next().unwrap().clone();
    (started, state)
}

fn callback(started: &StartedLogin, state: &str) -> CompleteLogin {
    CompleteLogin {
        state: state.to_owned(),
        code: Some("code-b".into()),
        issuer: Some(OTHER_ISSUER.into()),
        binding: Some(started.binding.clone()),
        // The provider's redirect back carries no `SameSite=Strict` session cookie.
        previous_session: None,
        ..CompleteLogin::default()
    }
}

/// Connects `other` to the session `id` through the use cases; `other` issues
/// `other-access-<n>` expiring 300 s after the connect.
pub(super) fn connect(w: &World, id: &SessionId) -> CompletedLogin {
    let (started, state) = start_connect(w, id);
    block_on(w.bff.complete_login(callback(&started, &state))).unwrap()
}

fn stored(w: &World, id: &SessionId) -> Option<Session> {
    w.stores.sessions.lock().unwrap().get(&id.key()).cloned()
}

fn connection_tokens(w: &World, id: &SessionId) -> TokenSet {
    let session = stored(w, id).unwrap();
    let connection = session.connection(&other_id()).unwrap();
    crate::vault::open_connection(&FakeCipher, &session.key, &other_id(), &connection.tokens)
        .unwrap()
}

fn primary_tokens(w: &World, id: &SessionId) -> TokenSet {
    let session = stored(w, id).unwrap();
    crate::vault::open(&FakeCipher, &session.key, &session.tokens).unwrap()
}

/// Routes `/a` (the session's own provider), `/main` (pinned to `main`) and `/b` (pinned to
/// `other`).
fn routes() -> RouteTable {
    let route = |path: &str, provider: Option<ProviderId>| {
        let mut spec = RouteSpec::new(path, "https://api.internal/v1");
        spec.provider = provider;
        Route::new(spec).unwrap()
    };
    RouteTable::new(vec![
        route("/a", None),
        route("/main", Some(main_id())),
        route("/b", Some(other_id())),
    ])
    .unwrap()
}

fn credential(w: &World, id: &SessionId, path: &str) -> Result<UpstreamCredential, ProxyError> {
    let table = routes();
    let target = table.resolve(&Method::GET, path).unwrap();
    block_on(w.bff.upstream_credential(Some(id), &target))
}

fn bearer(value: &str) -> UpstreamCredential {
    UpstreamCredential::Bearer(Secret::new(value))
}

fn assert_not_connected(result: Result<UpstreamCredential, ProxyError>) {
    let err = result.unwrap_err();
    match &err {
        ProxyError::Refused(refusal @ ProxyRefusal::ProviderNotConnected { required }) => {
            assert_eq!(refusal.code(), "provider_not_connected");
            assert_eq!(required, &other_id(), "the refusal names the provider");
        }
        other => panic!("expected provider_not_connected, got {other:?}"),
    }
    assert!(!err.ends_session());
}

#[test]
fn connecting_a_provider_joins_the_same_session_without_changing_who_it_is() {
    let w = world();
    let id = login(&w);
    let before = stored(&w, &id).unwrap();

    let (started, state) = start_connect(&w, &id);
    // The pending login names the session by its key, never by the id the cookie carries.
    let pending = w
        .stores
        .pending
        .lock()
        .unwrap()
        .get(&state)
        .cloned()
        .unwrap();
    assert_eq!(pending.connect_to, Some(id.key()));
    assert_eq!(pending.provider, other_id());
    assert!(!format!("{pending:?}").contains(id.expose()));

    let done = block_on(w.bff.complete_login(callback(&started, &state))).unwrap();
    assert!(done.session_id.is_none(), "no new session id");
    assert_eq!(done.connected, Some(other_id()));
    assert_eq!(done.return_url.as_str(), "/connected");
    assert_eq!(
        w.stores.sessions.lock().unwrap().len(),
        1,
        "no second session"
    );
    assert_eq!(
        w.other.exchanges.lock().unwrap().clone(),
        vec![("code-b".to_owned(), "verifier-1".to_owned())],
        "the code went to the connected provider with its own PKCE verifier"
    );

    let after = stored(&w, &id).unwrap();
    assert_eq!(after.provider, before.provider);
    assert_eq!(after.issuer, before.issuer);
    assert_eq!(after.subject, before.subject);
    assert_eq!(after.claims, before.claims);
    assert_eq!(
        after.tokens, before.tokens,
        "the primary tokens are untouched"
    );
    assert_eq!(after.connections.len(), 1);
    let connection = &after.connections[0];
    assert_eq!(connection.provider, other_id());
    assert_eq!(connection.claims.string("iss"), Some(OTHER_ISSUER));
    assert_eq!(
        connection.access_token_expires_at,
        Some(Timestamp::from_unix_seconds(super::T0 + 300))
    );
    assert_eq!(
        connection_tokens(&w, &id).access_token.expose(),
        "other-access-2"
    );

    let view = block_on(w.bff.current_session(&id)).unwrap();
    assert_eq!(view.claims.issuer(), Some(super::ISSUER));
    assert_eq!(view.claims.subject(), Some("alice"));
    assert_eq!(view.provider, main_id());
    assert_eq!(view.connected_providers, vec![other_id()]);
}

#[test]
fn a_route_gets_its_own_providers_token_and_never_another() {
    let w = world();
    let id = login(&w);
    // Not connected yet, even with the session's own token due: refused, nothing refreshed.
    w.clock.advance(Duration::from_secs(275));
    assert_not_connected(credential(&w, &id, "/b/orders"));
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 0);
    w.clock.set(super::T0);

    connect(&w, &id);
    assert_eq!(
        credential(&w, &id, "/b/orders").unwrap(),
        bearer("other-access-2")
    );
    assert_eq!(
        credential(&w, &id, "/a/orders").unwrap(),
        bearer("access-2")
    );
    assert_eq!(
        credential(&w, &id, "/main/orders").unwrap(),
        bearer("access-2")
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn each_provider_refreshes_on_its_own() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    w.clock.advance(Duration::from_secs(275)); // both tokens are due

    assert_eq!(
        credential(&w, &id, "/b/x").unwrap(),
        bearer("other-access-3")
    );
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        w.provider.refreshes.load(Ordering::SeqCst),
        0,
        "only b refreshed"
    );
    assert_eq!(primary_tokens(&w, &id).access_token.expose(), "access-2");
    // b's refresh token was rotated and kept with b.
    assert_eq!(
        connection_tokens(&w, &id).refresh_token.unwrap().expose(),
        "other-refresh-3"
    );

    assert_eq!(credential(&w, &id, "/a/x").unwrap(), bearer("access-3"));
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        connection_tokens(&w, &id).access_token.expose(),
        "other-access-3"
    );
    assert!(
        w.stores.leases.lock().unwrap().is_empty(),
        "every lease released"
    );
}

#[test]
fn the_refresh_lease_is_per_provider() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    w.clock.advance(Duration::from_secs(275));
    // Another node holds b's refresh lease of this session (and keeps it).
    let lease = format!("refresh:{}:other", id.key().as_str());
    w.stores
        .leases
        .lock()
        .unwrap()
        .insert(lease.clone(), "another-node".into());

    // a's refresh is not held up by b's lease.
    assert_eq!(credential(&w, &id, "/a/x").unwrap(), bearer("access-3"));
    // b waits for its lease and gives up without spending b's refresh token.
    let err = credential(&w, &id, "/b/x").unwrap_err();
    assert!(
        matches!(err, ProxyError::Token(RefreshError::InProgress)),
        "{err:?}"
    );
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn concurrent_refreshes_of_two_providers_lose_neither() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    w.clock.advance(Duration::from_secs(275));
    // Slow providers, so both refreshes read the same version and one update conflicts.
    w.provider.script.lock().unwrap().refresh_yields = 5;
    w.other.script.lock().unwrap().refresh_yields = 5;
    let table = routes();
    let a = table.resolve(&Method::GET, "/a/x").unwrap();
    let b = table.resolve(&Method::GET, "/b/x").unwrap();
    let (from_a, from_b) = block_on(futures_util::future::join(
        w.bff.upstream_credential(Some(&id), &a),
        w.bff.upstream_credential(Some(&id), &b),
    ));
    assert_eq!(from_a.unwrap(), bearer("access-3"));
    assert_eq!(from_b.unwrap(), bearer("other-access-3"));
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 1);
    // Both refreshed token sets are stored: neither update overwrote the other.
    assert_eq!(primary_tokens(&w, &id).access_token.expose(), "access-3");
    assert_eq!(
        connection_tokens(&w, &id).access_token.expose(),
        "other-access-3"
    );
    assert_eq!(
        stored(&w, &id).unwrap().version,
        3,
        "connect, then two refreshes"
    );
}

#[test]
fn connecting_the_primary_provider_is_refused() {
    let w = world();
    let id = login(&w);
    for provider in [None, Some(main_id())] {
        let err = block_on(w.bff.start_connect(
            &id,
            StartLogin {
                provider,
                return_url: ReturnUrl::root(),
                prompt: None,
                style: LoginStyle::Redirect,
            },
        ))
        .unwrap_err();
        assert!(matches!(err, LoginError::PrimaryProvider), "{err:?}");
        assert!(!err.ends_session());
    }
    assert!(
        w.stores.pending.lock().unwrap().is_empty(),
        "no login started"
    );
    assert!(stored(&w, &id).unwrap().connections.is_empty());
}

#[test]
fn a_connect_needs_a_live_session() {
    let w = world();
    let input = || StartLogin {
        provider: Some(other_id()),
        return_url: ReturnUrl::root(),
        prompt: None,
        style: LoginStyle::ApiDriven,
    };
    let stranger = SessionId::generate(&crate::testkit::SeededRandom::new(9));
    let err = block_on(w.bff.start_connect(&stranger, input())).unwrap_err();
    assert!(matches!(err, LoginError::NoSession), "{err:?}");
    assert!(err.ends_session());

    let id = login(&w);
    w.clock.advance(Duration::from_secs(601)); // idle
    let err = block_on(w.bff.start_connect(&id, input())).unwrap_err();
    assert!(matches!(err, LoginError::NoSession), "{err:?}");
    assert!(
        w.stores.pending.lock().unwrap().is_empty(),
        "no login started"
    );
    assert_eq!(w.other.exchanges.lock().unwrap().len(), 0);
}

#[test]
fn a_session_that_ended_during_the_connect_gets_nothing() {
    let w = world();
    let id = login(&w);
    let (started, state) = start_connect(&w, &id);
    block_on(w.bff.logout(&id, None)).unwrap();
    let err = block_on(w.bff.complete_login(callback(&started, &state))).unwrap_err();
    assert!(matches!(err, LoginError::NoSession), "{err:?}");
    assert!(
        w.stores.sessions.lock().unwrap().is_empty(),
        "no session created"
    );
    assert!(
        w.other.exchanges.lock().unwrap().is_empty(),
        "the code was not even spent"
    );
    // The state is used up.
    let err = block_on(w.bff.complete_login(callback(&started, &state))).unwrap_err();
    assert!(matches!(err, LoginError::StateMismatch), "{err:?}");
}

#[test]
fn a_session_that_ends_while_the_code_is_exchanged_gets_nothing() {
    let w = world();
    let id = login(&w);
    let (started, state) = start_connect(&w, &id);
    w.other.script.lock().unwrap().exchange_yields = 3;
    let (connected, logged_out) = block_on(futures_util::future::join(
        w.bff.complete_login(callback(&started, &state)),
        async {
            // Runs while the token endpoint is answering.
            crate::testkit::yield_once().await;
            w.bff.logout(&id, None).await
        },
    ));
    logged_out.unwrap();
    let err = connected.unwrap_err();
    assert!(matches!(err, LoginError::NoSession), "{err:?}");
    assert_eq!(
        w.other.exchanges.lock().unwrap().len(),
        1,
        "the code was exchanged while the session ended"
    );
    assert!(
        w.stores.sessions.lock().unwrap().is_empty(),
        "nothing stored"
    );
}

#[test]
fn a_connect_finished_in_a_browser_with_another_session_is_refused() {
    let w = world();
    let id = login(&w);
    let newer = login(&w);
    let (started, state) = start_connect(&w, &id);
    // The browser now holds another (live) session than the one that started the connect.
    let mut input = callback(&started, &state);
    input.previous_session = Some(newer.clone());
    let err = block_on(w.bff.complete_login(input)).unwrap_err();
    assert!(matches!(err, LoginError::NoSession), "{err:?}");
    assert!(stored(&w, &id).unwrap().connections.is_empty());
    assert!(stored(&w, &newer).unwrap().connections.is_empty());

    // With its own session cookie (API-driven style) the connect goes through.
    let (started, state) = start_connect(&w, &id);
    let mut input = callback(&started, &state);
    input.previous_session = Some(id.clone());
    block_on(w.bff.complete_login(input)).unwrap();
    assert_eq!(stored(&w, &id).unwrap().connections.len(), 1);
}

#[test]
fn connecting_again_replaces_the_connection() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    connect(&w, &id);
    let session = stored(&w, &id).unwrap();
    assert_eq!(session.connections.len(), 1, "one connection per provider");
    assert_eq!(
        connection_tokens(&w, &id).access_token.expose(),
        "other-access-4"
    );
    // The replaced grant is not revoked: a provider that reused it for the new login would
    // revoke the new tokens with it.
    assert!(w.other.revoked.lock().unwrap().is_empty());
    assert!(w.provider.revoked.lock().unwrap().is_empty());
}

#[test]
fn logout_revokes_every_connected_providers_refresh_token() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    let outcome = block_on(w.bff.logout(&id, None)).unwrap();
    assert!(outcome.revocation_error.is_none());
    assert!(outcome.connection_revocation_errors.is_empty());
    assert_eq!(
        w.provider.revoked.lock().unwrap().clone(),
        vec!["refresh-2".to_owned()]
    );
    assert_eq!(
        w.other.revoked.lock().unwrap().clone(),
        vec!["other-refresh-2".to_owned()]
    );
    assert!(stored(&w, &id).is_none());
    // The end-session redirect is the primary provider's.
    assert!(outcome.logout_url.unwrap().starts_with(super::ISSUER));
}

/// An operator revoking a user's sessions revokes what logout would: the first login's
/// refresh token and every connected provider's, and counts the ones a provider refused.
#[test]
fn admin_revocation_revokes_every_connected_providers_refresh_token() {
    let w = world();
    let first = login(&w);
    connect(&w, &first);
    let second = login(&w);
    w.other.script.lock().unwrap().revoke_error =
        Some(|| ProviderError::Unavailable("down".into()));
    let revoked = block_on(w.bff.admin_revoke_all("alice", None)).unwrap();
    assert_eq!(revoked.sessions, 2);
    assert_eq!(
        revoked.revocation_failures, 1,
        "the connected provider's refusal"
    );
    let mut first_logins = w.provider.revoked.lock().unwrap().clone();
    first_logins.sort();
    assert_eq!(first_logins, ["refresh-2", "refresh-4"]);
    assert_eq!(
        w.other.revoked.lock().unwrap().clone(),
        vec!["other-refresh-2".to_owned()]
    );
    assert!(stored(&w, &first).is_none());
    assert!(stored(&w, &second).is_none());

    // One session by its handle: its connection too.
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    let listed = block_on(w.bff.admin_list_sessions("alice", None)).unwrap();
    let revoked = block_on(w.bff.admin_revoke_session("alice", None, &listed[0].handle)).unwrap();
    assert_eq!((revoked.sessions, revoked.revocation_failures), (1, 0));
    assert_eq!(w.provider.revoked.lock().unwrap().len(), 1);
    assert_eq!(w.other.revoked.lock().unwrap().len(), 1);
}

#[test]
fn a_refused_refresh_of_a_connection_drops_only_that_connection() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    w.other.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    w.clock.advance(Duration::from_secs(275));
    assert_not_connected(credential(&w, &id, "/b/x"));
    let session = stored(&w, &id).expect("the session goes on");
    assert!(
        session.connections.is_empty(),
        "the dead connection is gone"
    );
    assert_eq!(credential(&w, &id, "/a/x").unwrap(), bearer("access-3"));
    // Now simply not connected: no further refresh attempt at b.
    assert_not_connected(credential(&w, &id, "/b/x"));
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_connection_refresh_refused_for_the_clients_credentials_keeps_the_connection() {
    let w = world();
    let id = login(&w);
    connect(&w, &id);
    w.other.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_client".into()));
    w.clock.advance(Duration::from_secs(275));
    let err = credential(&w, &id, "/b/x").unwrap_err();
    assert!(
        matches!(&err, ProxyError::Token(RefreshError::Provider(e)) if !e.is_dead_grant()),
        "{err:?}"
    );
    assert!(!err.ends_session());
    let session = stored(&w, &id).expect("the session goes on");
    assert_eq!(session.connections.len(), 1, "the connection is kept");
    // The provider accepts again: the same connection refreshes.
    w.other.script.lock().unwrap().refresh_error = None;
    assert!(credential(&w, &id, "/b/x").is_ok());
    assert_eq!(w.other.refreshes.load(Ordering::SeqCst), 2);
}

#[test]
fn a_connection_copied_into_another_session_does_not_open() {
    let w = world();
    let victim = login(&w);
    connect(&w, &victim);
    let attacker = login(&w);
    // A writer to the store copies the victim's connection into the attacker's session.
    {
        let mut sessions = w.stores.sessions.lock().unwrap();
        let stolen = sessions.get(&victim.key()).unwrap().connections[0].clone();
        sessions
            .get_mut(&attacker.key())
            .unwrap()
            .connections
            .push(stolen);
    }
    let err = credential(&w, &attacker, "/b/x").unwrap_err();
    assert!(
        matches!(err, ProxyError::Token(RefreshError::TokensUnreadable(_))),
        "{err:?}"
    );
    assert!(err.ends_session());
    assert!(
        stored(&w, &attacker).is_none(),
        "the tampered session is ended"
    );
    assert_eq!(
        credential(&w, &victim, "/b/x").unwrap(),
        bearer("other-access-2")
    );
}

/// A back-channel logout token from `other` for `sub` (and `sid`, when given), with `jti`.
fn other_logout_token(w: &World, jti: &str, sub: &str, sid: Option<&str>) -> String {
    let now = crate::ports::Clock::now(w.clock.as_ref()).unix_seconds();
    let mut claims = serde_json::json!({
        "iss": OTHER_ISSUER, "aud": "other", "jti": jti, "iat": now - 5,
        "exp": now + 120, "sub": sub,
    });
    if let Some(sid) = sid {
        claims["sid"] = sid.into();
    }
    crate::testkit::FakeProvider::logout_token(&claims)
}

/// A back-channel logout from a provider the session only connected ends that connection: its
/// tokens leave the session, whose identity and first login's tokens stay, and its routes then
/// answer `provider_not_connected`.
#[test]
fn a_back_channel_logout_of_a_connected_provider_ends_that_connection_only() {
    let (w, events) = super::events::recorded_world();
    let id = login(&w);
    connect(&w, &id);
    let connected = stored(&w, &id).unwrap();
    let subject = connected
        .connection(&other_id())
        .unwrap()
        .claims
        .subject()
        .unwrap()
        .to_owned();
    let primary_before = primary_tokens(&w, &id);

    // Another user of `other`: nothing ends.
    let stranger = other_logout_token(&w, "jti-stranger", "somebody-else", None);
    let outcome = block_on(w.bff.backchannel_logout(&stranger)).unwrap();
    assert_eq!((outcome.sessions_ended, outcome.connections_ended), (0, 0));
    assert!(stored(&w, &id).unwrap().connection(&other_id()).is_some());

    events.take();
    let token = other_logout_token(&w, "jti-connected", &subject, None);
    let outcome = block_on(w.bff.backchannel_logout(&token)).unwrap();
    assert_eq!(
        outcome.sessions_ended, 0,
        "the session is the first login's"
    );
    assert_eq!(outcome.connections_ended, 1);
    assert_eq!(
        events.take(),
        [
            "connections_ended backchannel_logout 1",
            "backchannel_logout ok"
        ]
    );
    let after = stored(&w, &id).expect("the session lives on");
    assert!(
        after.connection(&other_id()).is_none(),
        "the connection ended"
    );
    assert_eq!(
        (&after.issuer, &after.subject),
        (&connected.issuer, &connected.subject)
    );
    assert_eq!(primary_tokens(&w, &id), primary_before);
    assert_not_connected(credential(&w, &id, "/b/x"));
    // The first login's routes still work.
    assert!(credential(&w, &id, "/a/x").is_ok());
}

/// With a `sid` in the connect's ID token, a back-channel logout of that provider session and a
/// front-channel one both find the connection by it, and only a logout of that `sid` does.
#[test]
fn a_connected_provider_session_ends_by_its_sid_through_either_channel() {
    for front in [false, true] {
        let w = world();
        w.other.script.lock().unwrap().sid = Some("other-sid-1".into());
        let id = login(&w);
        connect(&w, &id);
        let subject = stored(&w, &id)
            .unwrap()
            .connection(&other_id())
            .unwrap()
            .claims
            .subject()
            .unwrap()
            .to_owned();
        let end = |sid: &str, jti: &str| {
            if front {
                block_on(w.bff.frontchannel_logout(Some(OTHER_ISSUER), Some(sid)))
                    .unwrap()
                    .connections_ended
            } else {
                let token = other_logout_token(&w, jti, &subject, Some(sid));
                block_on(w.bff.backchannel_logout(&token))
                    .unwrap()
                    .connections_ended
            }
        };
        assert_eq!(end("other-sid-2", "jti-1"), 0, "another provider session");
        assert!(stored(&w, &id).unwrap().connection(&other_id()).is_some());
        if !front {
            // The right `sid` with another user's `sub`: not this login.
            let token = other_logout_token(&w, "jti-3", "somebody-else", Some("other-sid-1"));
            let outcome = block_on(w.bff.backchannel_logout(&token)).unwrap();
            assert_eq!(outcome.connections_ended, 0);
        }
        assert_eq!(end("other-sid-1", "jti-2"), 1, "front channel: {front}");
        let after = stored(&w, &id).expect("the session lives on");
        assert!(after.connection(&other_id()).is_none());
    }
}
