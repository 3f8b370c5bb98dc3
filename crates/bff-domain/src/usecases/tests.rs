//! Use-case tests with a fixed clock, seeded randomness and scripted provider.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_executor::block_on;

use crate::ports::{Clock, ProviderError, StoreError};
use crate::testkit::{FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom};
use crate::*;

mod admission;
mod connect;
pub(super) mod events;

const ISSUER: &str = "https://idp.example";
pub(super) const OTHER_ISSUER: &str = "https://other.example";
pub(super) const T0: i64 = 1_700_000_000;

/// The use cases over the testkit fakes (shared with the proxy tests).
pub(super) struct World {
    pub(super) bff: Bff,
    pub(super) stores: Arc<FakeStores>,
    pub(super) clock: Arc<FixedClock>,
    pub(super) provider: Arc<FakeProvider>,
    /// The second configured provider (`other`), whose tokens are `other-access-<n>`.
    pub(super) other: Arc<FakeProvider>,
}

pub(super) fn world() -> World {
    world_with(|_| {})
}

/// [`world`] with its policy changed by `tweak`.
pub(super) fn world_with(tweak: impl FnOnce(&mut BffPolicy)) -> World {
    let stores = Arc::new(FakeStores::default());
    let clock = Arc::new(FixedClock::at(T0));
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    let other = Arc::new(FakeProvider::new("other", OTHER_ISSUER));
    other.script.lock().unwrap().token_prefix = "other-".into();
    let providers = Providers::new(
        vec![provider.clone(), other.clone()],
        ProviderId::parse("main").unwrap(),
    )
    .unwrap();
    let mut policy = BffPolicy {
        lifetime: SessionLifetime {
            idle: Duration::from_secs(600),
            absolute: Duration::from_secs(3600),
        },
        pending_login_ttl: Duration::from_secs(300),
        callback_url: "https://app.example/bff/callback".into(),
        app_redirect_url: "https://app.example/".into(),
        refresh_margin: Duration::from_secs(30),
        fetch_userinfo: true,
        renewal: None,
        client_binding: Default::default(),
    };
    tweak(&mut policy);
    let bff = Bff::new(
        BffPorts {
            sessions: stores.clone(),
            pending_logins: stores.clone(),
            locks: stores.clone(),
            replay: stores.clone(),
            cipher: Arc::new(FakeCipher),
            clock: clock.clone(),
            random: Arc::new(SeededRandom::new(42)),
        },
        providers,
        policy,
    );
    World {
        bff,
        stores,
        clock,
        provider,
        other,
    }
}

pub(super) fn start(w: &World, return_url: &str) -> (StartedLogin, String) {
    let started = block_on(w.bff.start_login(StartLogin {
        provider: None,
        return_url: ReturnUrl::parse(return_url).unwrap(),
        prompt: None,
        style: LoginStyle::Redirect,
    }))
    .unwrap();
    let state = w
        .stores
        .pending
        .lock()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    (started, state)
}

pub(super) fn callback(started: &StartedLogin, state: &str) -> CompleteLogin {
    CompleteLogin {
        state: state.to_owned(),
        code: Some("code-1".into()),
        issuer: Some(ISSUER.into()),
        binding: Some(started.binding.clone()),
        ..CompleteLogin::default()
    }
}

/// Logs alice in through the use cases; the provider issues `access-2` (expires at T0 + 300)
/// with scope `openid profile`.
pub(super) fn login(w: &World) -> SessionId {
    let (started, state) = start(w, "/app");
    block_on(w.bff.complete_login(callback(&started, &state)))
        .unwrap()
        .session_id
        .unwrap()
}

fn session_count(w: &World) -> usize {
    w.stores.sessions.lock().unwrap().len()
}

#[test]
fn a_full_login_creates_one_session_with_sealed_tokens() {
    let w = world();
    let (started, state) = start(&w, "/app?x=1");
    assert!(
        started
            .authorization_url
            .contains("redirect_uri=https://app.example/bff/callback")
    );
    assert_eq!(started.expires_at.unix_seconds(), T0 + 300);
    let done = block_on(w.bff.complete_login(callback(&started, &state))).unwrap();
    assert_eq!(done.return_url.as_str(), "/app?x=1");
    assert_eq!(done.connected, None);
    let session_id = done.session_id.unwrap();
    assert_eq!(done.expires_at.unix_seconds(), T0 + 600);
    // The PKCE verifier of this login reached the token endpoint.
    let exchanges = w.provider.exchanges.lock().unwrap().clone();
    assert_eq!(
        exchanges,
        vec![("code-1".to_owned(), "verifier-1".to_owned())]
    );
    // Stored under the hash of the id, tokens sealed (no plaintext token in the blob).
    let sessions = w.stores.sessions.lock().unwrap();
    let stored = sessions.get(&session_id.key()).unwrap();
    assert_eq!(stored.subject, "alice");
    assert_eq!(stored.issuer, ISSUER);
    assert!(!sessions.contains_key(&SessionKey::from_stored(&"0".repeat(64)).unwrap()));
    drop(sessions);
    let view = block_on(w.bff.current_session(&session_id)).unwrap();
    assert_eq!(view.claims.subject(), Some("alice"));
}

#[test]
fn api_driven_logins_redirect_to_the_app() {
    let w = world();
    let started = block_on(w.bff.start_login(StartLogin {
        provider: Some(ProviderId::parse("other").unwrap()),
        return_url: ReturnUrl::root(),
        prompt: Some(Prompt::None),
        style: LoginStyle::ApiDriven,
    }))
    .unwrap();
    assert!(
        started
            .authorization_url
            .starts_with("https://other.example/authorize")
    );
    assert!(
        started
            .authorization_url
            .contains("redirect_uri=https://app.example/&prompt=none")
    );
}

#[test]
fn unknown_provider_is_refused() {
    let w = world();
    let err = block_on(w.bff.start_login(StartLogin {
        provider: Some(ProviderId::parse("nope").unwrap()),
        return_url: ReturnUrl::root(),
        prompt: None,
        style: LoginStyle::Redirect,
    }))
    .unwrap_err();
    assert!(matches!(err, LoginError::UnknownProvider));
}

#[test]
fn every_login_gets_a_new_session_id_and_ends_the_previous_one() {
    let w = world();
    let first = login(&w);
    let (started, state) = start(&w, "/");
    let mut input = callback(&started, &state);
    input.previous_session = Some(first.clone());
    let second = block_on(w.bff.complete_login(input))
        .unwrap()
        .session_id
        .unwrap();
    assert_ne!(first, second);
    assert!(matches!(
        block_on(w.bff.current_session(&first)),
        Err(SessionError::NoSession)
    ));
    assert_eq!(session_count(&w), 1);
}

#[test]
fn a_failure_ending_the_previous_session_creates_no_new_one() {
    let w = world();
    let first = login(&w);
    let (started, state) = start(&w, "/");
    let mut input = callback(&started, &state);
    input.previous_session = Some(first.clone());
    w.stores.fail_deletes.store(true, Ordering::SeqCst);
    let err = block_on(w.bff.complete_login(input)).unwrap_err();
    assert!(matches!(err, LoginError::Store(_)), "{err:?}");
    assert_eq!(session_count(&w), 1, "only the previous session exists");
    w.stores.fail_deletes.store(false, Ordering::SeqCst);
    assert!(block_on(w.bff.current_session(&first)).is_ok());
}

#[test]
fn callback_rejections_create_no_session() {
    type Tamper = fn(&mut CompleteLogin);
    type Expect = fn(&LoginError) -> bool;
    let cases: &[(&str, Tamper, Expect)] = &[
        (
            "wrong state",
            |c| c.state = "forged".into(),
            |e| matches!(e, LoginError::StateMismatch),
        ),
        (
            "no binding cookie",
            |c| c.binding = None,
            |e| matches!(e, LoginError::BindingMissing),
        ),
        (
            "someone else's binding",
            |c| c.binding = Some(LoginBinding::generate(&SeededRandom::new(999))),
            |e| matches!(e, LoginError::BindingMismatch),
        ),
        (
            "iss of another provider",
            |c| c.issuer = Some("https://evil.example".into()),
            |e| matches!(e, LoginError::IssuerMismatch),
        ),
        (
            "provider error",
            |c| {
                c.code = None;
                c.error = Some("access_denied".into());
            },
            |e| matches!(e, LoginError::ProviderDenied { error, return_url } if error == "access_denied" && return_url.as_str() == "/orders"),
        ),
        (
            "no code",
            |c| c.code = None,
            |e| matches!(e, LoginError::MissingCode),
        ),
    ];
    for (name, tamper, expected) in cases {
        let w = world();
        let (started, state) = start(&w, "/orders");
        let mut input = callback(&started, &state);
        tamper(&mut input);
        let err = block_on(w.bff.complete_login(input)).unwrap_err();
        assert!(expected(&err), "{name}: got {err:?}");
        assert_eq!(session_count(&w), 0, "{name}: session created");
        // Whatever went wrong, the state is spent.
        assert!(w.stores.pending.lock().unwrap().is_empty() || *name == "wrong state");
    }
}

#[test]
fn a_provider_that_promises_iss_must_send_it() {
    let w = world();
    w.provider.script.lock().unwrap().requires_iss = true;
    let (started, state) = start(&w, "/");
    let mut input = callback(&started, &state);
    input.issuer = None;
    let err = block_on(w.bff.complete_login(input)).unwrap_err();
    assert!(matches!(err, LoginError::IssuerMissing), "{err:?}");
    assert_eq!(session_count(&w), 0);
    assert!(w.provider.exchanges.lock().unwrap().is_empty(), "code sent");

    // With `iss` present the same provider completes the login.
    let (started, state) = start(&w, "/");
    block_on(w.bff.complete_login(callback(&started, &state))).unwrap();
    assert_eq!(session_count(&w), 1);
}

#[test]
fn a_state_works_once() {
    let w = world();
    let (started, state) = start(&w, "/");
    block_on(w.bff.complete_login(callback(&started, &state))).unwrap();
    let err = block_on(w.bff.complete_login(callback(&started, &state))).unwrap_err();
    assert!(matches!(err, LoginError::StateMismatch));
    assert_eq!(session_count(&w), 1);
}

#[test]
fn a_pending_login_expires() {
    let w = world();
    let (started, state) = start(&w, "/");
    w.clock.advance(Duration::from_secs(301));
    let err = block_on(w.bff.complete_login(callback(&started, &state))).unwrap_err();
    assert!(matches!(err, LoginError::StateMismatch));
}

#[test]
fn invalid_id_tokens_create_no_session() {
    let w = world();
    w.provider.script.lock().unwrap().exchange_error =
        Some(|| ProviderError::IdTokenInvalid("bad signature".into()));
    let (started, state) = start(&w, "/");
    let err = block_on(w.bff.complete_login(callback(&started, &state))).unwrap_err();
    assert!(matches!(err, LoginError::IdTokenInvalid(_)));
    assert_eq!(session_count(&w), 0);
}

#[test]
fn sessions_slide_then_hit_the_absolute_limit() {
    let w = world();
    let id = login(&w);
    // Used every 500 s (idle 600 s): stays alive until the absolute limit of 3600 s.
    for step in 1..=7 {
        w.clock.advance(Duration::from_secs(500));
        let result = block_on(w.bff.current_session(&id));
        assert!(result.is_ok(), "step {step}: {result:?}");
    }
    w.clock.set(T0 + 3600);
    assert!(matches!(
        block_on(w.bff.current_session(&id)),
        Err(SessionError::NoSession)
    ));
}

#[test]
fn session_liveness_is_read_without_recording_a_use() {
    let w = world();
    let id = login(&w);
    let key = id.key();
    let idle_at_login = w.stores.sessions.lock().unwrap()[&key].idle_expires_at;
    w.clock.advance(Duration::from_secs(300)); // any use now would slide a 600 s idle expiry
    assert!(block_on(w.bff.session_is_live(&id)).unwrap());
    assert_eq!(
        w.stores.sessions.lock().unwrap()[&key].idle_expires_at,
        idle_at_login
    );
    w.clock.advance(Duration::from_secs(301)); // past the idle expiry
    assert!(!block_on(w.bff.session_is_live(&id)).unwrap());

    let id = login(&w);
    block_on(w.bff.logout(&id, None)).unwrap();
    assert!(!block_on(w.bff.session_is_live(&id)).unwrap());

    let id = login(&w);
    w.stores.fail.store(true, Ordering::SeqCst);
    assert!(
        block_on(w.bff.session_is_live(&id)).is_err(),
        "an outage is not an answer"
    );
}

#[test]
fn an_idle_session_ends() {
    let w = world();
    let id = login(&w);
    w.clock.advance(Duration::from_secs(600));
    assert!(matches!(
        block_on(w.bff.current_session(&id)),
        Err(SessionError::NoSession)
    ));
}

#[test]
fn a_store_outage_is_not_a_logout() {
    let w = world();
    let id = login(&w);
    w.stores.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        block_on(w.bff.current_session(&id)),
        Err(SessionError::Store(StoreError::Unavailable(_)))
    ));
    w.stores.fail.store(false, Ordering::SeqCst);
    assert!(block_on(w.bff.current_session(&id)).is_ok());
}

#[test]
fn refresh_replaces_tokens_and_keeps_the_id_token() {
    let w = world();
    let id = login(&w);
    w.clock.advance(Duration::from_secs(100));
    let out = block_on(w.bff.refresh(&id)).unwrap();
    assert_eq!(
        out.access_token_expires_at.unwrap().unix_seconds(),
        T0 + 400
    );
    let token = block_on(w.bff.access_token_for(&id)).unwrap();
    assert_eq!(token.expose(), "access-3");
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    // Logout still has the original ID token for the hint.
    let logout = block_on(w.bff.logout(&id, None)).unwrap();
    assert!(
        logout
            .logout_url
            .unwrap()
            .contains("id_token_hint=idtoken-2&")
    );
    // The rotated refresh token is the one revoked.
    assert_eq!(
        *w.provider.revoked.lock().unwrap(),
        vec!["refresh-3".to_owned()]
    );
}

#[test]
fn access_tokens_near_expiry_are_refreshed_first() {
    let w = world();
    let id = login(&w);
    assert_eq!(
        block_on(w.bff.access_token_for(&id)).unwrap().expose(),
        "access-2"
    );
    w.clock.advance(Duration::from_secs(280)); // within the 30 s margin of a 300 s token
    assert_eq!(
        block_on(w.bff.access_token_for(&id)).unwrap().expose(),
        "access-3"
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
}

/// The stored expiries of the one session: (idle, absolute), relative to `T0`.
fn stored_expiry(w: &World) -> (i64, i64) {
    let sessions = w.stores.sessions.lock().unwrap();
    let session = sessions.values().next().unwrap();
    (
        session.idle_expires_at.unix_seconds() - T0,
        session.absolute_expires_at.unix_seconds() - T0,
    )
}

#[test]
fn a_session_ends_when_the_refresh_token_the_provider_announced_expires() {
    // Idle 600 s, absolute 3600 s; the provider says the refresh token lives 300 s.
    let w = world();
    w.provider.script.lock().unwrap().refresh_expires_in = Some(300);
    let id = login(&w);
    assert_eq!(stored_expiry(&w), (300, 300));
    w.clock.set(T0 + 299);
    assert!(block_on(w.bff.current_session(&id)).is_ok());
    w.clock.set(T0 + 300);
    assert!(matches!(
        block_on(w.bff.current_session(&id)),
        Err(SessionError::NoSession)
    ));
}

#[test]
fn a_refreshed_refresh_token_moves_the_limit_but_never_past_the_configured_one() {
    let w = world();
    w.provider.script.lock().unwrap().refresh_expires_in = Some(300);
    let id = login(&w);
    // At 200 s the refresh brings a refresh token for another 1000 s: the session may live to
    // 1200 s, and the refresh, a use, slides the idle expiry to 800 s.
    w.clock.set(T0 + 200);
    w.provider.script.lock().unwrap().refresh_expires_in = Some(1000);
    block_on(w.bff.refresh(&id)).unwrap();
    assert_eq!(stored_expiry(&w), (800, 1200));
    w.clock.set(T0 + 700);
    assert!(block_on(w.bff.current_session(&id)).is_ok());
    w.clock.set(T0 + 1199);
    assert!(block_on(w.bff.current_session(&id)).is_ok());
    // A refresh token for a day: the configured absolute limit (3600 s) stands.
    w.provider.script.lock().unwrap().refresh_expires_in = Some(86_400);
    block_on(w.bff.refresh(&id)).unwrap();
    assert_eq!(stored_expiry(&w).1, 3600);
    // A refresh that says nothing leaves the limit where it is.
    w.clock.set(T0 + 1700);
    w.provider.script.lock().unwrap().refresh_expires_in = None;
    block_on(w.bff.refresh(&id)).unwrap();
    assert_eq!(stored_expiry(&w), (2300, 3600));
    w.clock.set(T0 + 3600);
    assert!(block_on(w.bff.current_session(&id)).is_err());
}

#[test]
fn a_refresh_token_announced_as_short_lived_shortens_a_live_session() {
    let w = world();
    let id = login(&w);
    assert_eq!(stored_expiry(&w), (600, 3600));
    w.clock.set(T0 + 100);
    w.provider.script.lock().unwrap().refresh_expires_in = Some(150);
    block_on(w.bff.refresh(&id)).unwrap();
    // (Stores never move the idle expiry backward; the earlier of the two is what counts.)
    let (idle, absolute) = stored_expiry(&w);
    assert_eq!((idle.min(absolute), absolute), (250, 250));
    w.clock.set(T0 + 249);
    assert!(block_on(w.bff.current_session(&id)).is_ok());
    w.clock.set(T0 + 250);
    assert!(block_on(w.bff.current_session(&id)).is_err());
}

#[test]
fn a_refused_refresh_ends_the_session() {
    let w = world();
    let id = login(&w);
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    let err = block_on(w.bff.refresh(&id)).unwrap_err();
    assert!(matches!(err, RefreshError::Refused(code) if code == "invalid_grant"));
    assert_eq!(session_count(&w), 0);
}

#[test]
fn only_a_dead_grant_ends_the_session_other_refusals_keep_it() {
    // (the provider's refusal, whether the session is ended)
    let cases: [(fn() -> ProviderError, bool); 5] = [
        (|| ProviderError::Rejected("invalid_grant".into()), true),
        // This server's client authentication or request: a rotated secret or key must not
        // log every user out.
        (|| ProviderError::Rejected("invalid_client".into()), false),
        (
            || ProviderError::Rejected("unauthorized_client".into()),
            false,
        ),
        (|| ProviderError::Rejected("invalid_scope".into()), false),
        (|| ProviderError::Rejected("invalid_request".into()), false),
    ];
    for (refusal, ends) in cases {
        let w = world();
        let id = login(&w);
        w.provider.script.lock().unwrap().refresh_error = Some(refusal);
        let err = block_on(w.bff.refresh(&id)).unwrap_err();
        assert_eq!(err.ends_session(), ends, "{err:?}");
        assert_eq!(session_count(&w), usize::from(!ends), "{err:?}");
        if ends {
            assert!(matches!(err, RefreshError::Refused(_)), "{err:?}");
            continue;
        }
        assert!(
            matches!(&err, RefreshError::Provider(e) if !e.is_dead_grant()),
            "{err:?}"
        );
        // Once the provider accepts again (the configuration fixed), the same session refreshes.
        w.provider.script.lock().unwrap().refresh_error = None;
        block_on(w.bff.refresh(&id)).unwrap();
    }
}

#[test]
fn only_invalid_grant_at_the_code_exchange_is_a_rejected_code() {
    type Case = (fn() -> ProviderError, &'static str);
    let cases: [Case; 3] = [
        (
            || ProviderError::Rejected("invalid_grant".into()),
            "code_rejected",
        ),
        (
            || ProviderError::Rejected("invalid_client".into()),
            "provider_error",
        ),
        (
            || ProviderError::Rejected("unauthorized_client".into()),
            "provider_error",
        ),
    ];
    for (refusal, reason) in cases {
        let w = world();
        w.provider.script.lock().unwrap().exchange_error = Some(refusal);
        let (started, state) = start(&w, "/");
        let err = block_on(w.bff.complete_login(callback(&started, &state))).unwrap_err();
        assert_eq!(err.reason(), reason, "{err:?}");
        assert_eq!(session_count(&w), 0);
    }
}

#[test]
fn a_refresh_stuck_elsewhere_is_waited_for_then_refused_not_repeated() {
    let w = world();
    let id = login(&w);
    // The lease of this session's primary provider (each provider refreshes under its own).
    let lease = format!("refresh:{}:main", id.key().as_str());
    w.stores
        .leases
        .lock()
        .unwrap()
        .insert(lease, "other-node".into());
    let before = w.clock.now();
    let err = block_on(w.bff.refresh(&id)).unwrap_err();
    assert!(matches!(err, RefreshError::InProgress));
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
    // It waited about REFRESH_WAIT (the test clock moves by what it sleeps), then gave up.
    let waited = w.clock.now().unix_seconds() - before.unix_seconds();
    assert!((5..=15).contains(&waited), "waited {waited} s");
}

/// A request waiting for a refresh that another node holds the lease for answers with the
/// tokens that refresh wrote as soon as they are in the store, without taking the lease in turn.
#[test]
fn a_waiting_request_takes_the_refreshed_tokens_without_queueing_for_the_lease() {
    use crate::ports::SessionStore;

    let w = world();
    let id = login(&w);
    let lease = format!("refresh:{}:main", id.key().as_str());
    w.stores
        .leases
        .lock()
        .unwrap()
        .insert(lease.clone(), "other-node".into());
    let before = w.clock.now();
    let written_elsewhere = Timestamp::from_unix_seconds(T0 + 900);
    let (waiter, ()) = block_on(async {
        futures_util::join!(w.bff.refresh(&id), async {
            // The other node's refresh writes its tokens while it still holds the lease.
            crate::testkit::yield_once().await;
            let now = w.clock.now();
            let mut session = w.stores.get(&id.key(), now).await.unwrap().unwrap();
            let mut tokens =
                crate::vault::open(&FakeCipher, &session.key, &session.tokens).unwrap();
            tokens.access_token = Secret::new("access-from-the-other-node".to_owned());
            tokens.access_token_expires_at = Some(written_elsewhere);
            session.tokens = crate::vault::seal(&FakeCipher, &session.key, &tokens).unwrap();
            session.access_token_expires_at = Some(written_elsewhere);
            w.stores.update(&session, now).await.unwrap();
        })
    });
    assert_eq!(
        waiter.unwrap().access_token_expires_at,
        Some(written_elsewhere)
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(
        w.stores
            .leases
            .lock()
            .unwrap()
            .get(&lease)
            .map(String::as_str),
        Some("other-node"),
        "the waiter took the lease"
    );
    let waited = w.clock.now().unix_seconds() - before.unix_seconds();
    assert!(waited < 2, "waited {waited} s for tokens already written");
}

#[test]
fn concurrent_refreshes_spend_the_refresh_token_once_and_share_the_result() {
    let w = world();
    let id = login(&w);
    // The provider answers slowly, so the second refresh finds the first one's lease.
    w.provider.script.lock().unwrap().refresh_yields = 3;
    let (first, second) =
        block_on(async { futures_util::join!(w.bff.refresh(&id), w.bff.refresh(&id)) });
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        first.unwrap().access_token_expires_at,
        second.unwrap().access_token_expires_at,
        "the waiting request answers with the refreshed tokens"
    );
    assert_eq!(
        block_on(w.bff.access_token_for(&id)).unwrap().expose(),
        "access-3",
        "the session holds the one refresh's tokens (login issued access-2)"
    );
    // The next explicit refresh spends the new refresh token (one more provider call).
    block_on(w.bff.refresh(&id)).unwrap();
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 2);
}

#[test]
fn logout_by_link_needs_the_session_logout_guard() {
    let w = world();
    let id = login(&w);
    let view = block_on(w.bff.current_session(&id)).unwrap();
    assert!(!view.logout_guard.contains(id.expose()));
    let err = block_on(w.bff.logout(&id, Some("forged"))).unwrap_err();
    assert!(matches!(err, LogoutError::LogoutGuardMismatch));
    assert_eq!(session_count(&w), 1);
    block_on(w.bff.logout(&id, Some(&view.logout_guard))).unwrap();
    assert_eq!(session_count(&w), 0);
    assert!(matches!(
        block_on(w.bff.logout(&id, None)),
        Err(LogoutError::NoSession)
    ));
}

#[test]
fn userinfo_is_called_with_a_fresh_access_token() {
    let w = world();
    let id = login(&w);
    block_on(w.bff.userinfo(&id)).unwrap();
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
    let first = w.provider.userinfo_tokens.lock().unwrap()[0].clone();
    // Within the refresh margin of the access token's expiry: refreshed first, once.
    w.clock.advance(Duration::from_secs(275));
    let claims = block_on(w.bff.userinfo(&id)).unwrap();
    assert_eq!(claims.string("email"), Some("alice@example.test"));
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    let used = w.provider.userinfo_tokens.lock().unwrap()[1].clone();
    assert_ne!(used, first, "userinfo got the token about to expire");
    assert_eq!(
        block_on(w.bff.access_token_for(&id)).unwrap().expose(),
        used
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    // A refresh the provider refuses (`invalid_grant`) ends the session here too.
    w.clock.advance(Duration::from_secs(290));
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    let err = block_on(w.bff.userinfo(&id)).unwrap_err();
    assert!(err.ends_session(), "{err:?}");
    assert_eq!(session_count(&w), 0);
}

#[test]
fn userinfo_merges_provider_claims_without_overriding() {
    let w = world();
    let id = login(&w);
    let claims = block_on(w.bff.userinfo(&id)).unwrap();
    assert_eq!(claims.string("name"), Some("Alice"));
    assert_eq!(claims.string("email"), Some("alice@example.test"));
}

#[test]
fn cookie_lifetimes_come_with_the_login() {
    let w = world();
    let (started, state) = start(&w, "/");
    assert_eq!(started.binding_max_age, Duration::from_secs(300));
    let done = block_on(w.bff.complete_login(callback(&started, &state))).unwrap();
    // The session cookie lives as long as the absolute limit, not the first idle expiry.
    assert_eq!(done.cookie_max_age, Duration::from_secs(3600));
}

/// Makes the session's sealed tokens unopenable, as removing its vault key from the
/// configuration would.
fn lose_the_vault_key(w: &World, id: &SessionId) {
    let mut sessions = w.stores.sessions.lock().unwrap();
    let session = sessions.get_mut(&id.key()).unwrap();
    session.tokens.key_id = "removed-key".into();
}

#[test]
fn a_session_whose_tokens_no_longer_open_is_ended_the_same_way_everywhere() {
    type Call = fn(&World, &SessionId) -> (bool, String);
    let calls: &[(&str, Call)] = &[
        ("current_session", |w, id| {
            let e = block_on(w.bff.current_session(id)).unwrap_err();
            (e.ends_session(), format!("{e:?}"))
        }),
        ("userinfo", |w, id| {
            let e = block_on(w.bff.userinfo(id)).unwrap_err();
            (e.ends_session(), format!("{e:?}"))
        }),
        ("refresh", |w, id| {
            let e = block_on(w.bff.refresh(id)).unwrap_err();
            (e.ends_session(), format!("{e:?}"))
        }),
        ("access_token_for", |w, id| {
            let e = block_on(w.bff.access_token_for(id)).unwrap_err();
            (e.ends_session(), format!("{e:?}"))
        }),
    ];
    for (name, call) in calls {
        let w = world();
        let id = login(&w);
        lose_the_vault_key(&w, &id);
        let (ends, shown) = call(&w, &id);
        assert!(ends, "{name}: {shown}");
        assert!(shown.starts_with("TokensUnreadable"), "{name}: {shown}");
        assert_eq!(session_count(&w), 0, "{name}: session kept");
        assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0, "{name}");
        // Every other use case now agrees: there is no session.
        assert!(matches!(
            block_on(w.bff.current_session(&id)),
            Err(SessionError::NoSession)
        ));
        assert!(matches!(
            block_on(w.bff.refresh(&id)),
            Err(RefreshError::NoSession)
        ));
    }
}

#[test]
fn only_errors_that_end_the_session_say_so() {
    assert!(SessionError::NoSession.ends_session());
    assert!(!SessionError::Store(StoreError::unavailable("down")).ends_session());
    assert!(RefreshError::Refused("invalid_grant".into()).ends_session());
    assert!(!RefreshError::InProgress.ends_session());
    assert!(!RefreshError::NoRefreshToken.ends_session());
    assert!(
        !RefreshError::Provider(ProviderError::Unavailable("down".into())).ends_session(),
        "a provider outage keeps the session"
    );
    assert!(!LogoutError::LogoutGuardMismatch.ends_session());
}

#[test]
fn the_post_logout_redirect_must_carry_this_browsers_state() {
    let w = world();
    let id = login(&w);
    let out = block_on(w.bff.logout(&id, None)).unwrap();
    let state = out.return_state.expect("a state with a logout URL");
    let url = out.logout_url.unwrap();
    assert!(url.ends_with(&format!("state={}", state.expose())), "{url}");
    w.bff
        .complete_logout(Some(state.expose()), Some(&state))
        .unwrap();

    let other = PostLogoutState::generate(&SeededRandom::new(5));
    for (returned, expected) in [
        (None, Some(&state)),
        (Some(state.expose()), None),
        (Some(other.expose()), Some(&state)),
        (Some(""), Some(&state)),
    ] {
        assert!(matches!(
            w.bff.complete_logout(returned, expected),
            Err(LogoutError::StateMismatch)
        ));
    }
}

#[test]
fn sweeping_removes_expired_sessions_in_bounded_batches() {
    let w = world();
    let live = login(&w);
    let _expired = login(&w);
    {
        let mut sessions = w.stores.sessions.lock().unwrap();
        for s in sessions.values_mut() {
            if s.key != live.key() {
                s.idle_expires_at = Timestamp::from_unix_seconds(T0 - 1);
            }
        }
    }
    assert_eq!(
        block_on(w.bff.sweep_expired(0)).unwrap(),
        SweepOutcome {
            removed: 0,
            more: true
        }
    );
    let out = block_on(w.bff.sweep_expired(10)).unwrap();
    assert_eq!(
        out,
        SweepOutcome {
            removed: 1,
            more: false
        }
    );
    assert_eq!(session_count(&w), 1);
    assert!(block_on(w.bff.current_session(&live)).is_ok());
    w.stores.fail.store(true, Ordering::SeqCst);
    assert!(block_on(w.bff.sweep_expired(10)).is_err());
}

#[test]
fn the_logout_guard_is_the_first_half_of_the_labelled_session_key_hash() {
    let key = SessionId::parse(&"a".repeat(43)).unwrap().key();
    let mut joined = crate::ids::hex_sha256(format!("bff-logout/v1:{}", key.as_str()).as_bytes());
    joined.truncate(32);
    assert_eq!(super::session::logout_guard(&key), joined);
}
