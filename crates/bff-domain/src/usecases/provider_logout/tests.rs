//! Provider-initiated logout rules with a fixed clock: which sessions end, replay across nodes
//! (two `Bff`s over one replay cache), and refusals that delete nothing.

use std::sync::Arc;
use std::time::Duration;

use futures_executor::block_on;
use serde_json::{Value, json};

use crate::ports::{ProviderError, SessionStore};
use crate::testkit::{FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom};
use crate::*;

const ISSUER: &str = "https://idp.example";
const OTHER_ISSUER: &str = "https://other.example";
const T0: i64 = 1_700_000_000;

struct World {
    stores: Arc<FakeStores>,
    clock: Arc<FixedClock>,
    providers: Providers,
}

/// Three providers: `main` and `second` (two clients of one issuer) and `other` (another
/// issuer whose users have the same `sub`s).
fn world() -> World {
    let providers = Providers::new(
        vec![
            Arc::new(FakeProvider::new("main", ISSUER)),
            Arc::new(FakeProvider::new("second", ISSUER)),
            Arc::new(FakeProvider::new("other", OTHER_ISSUER)),
        ],
        ProviderId::parse("main").unwrap(),
    )
    .unwrap();
    World {
        stores: Arc::new(FakeStores::default()),
        clock: Arc::new(FixedClock::at(T0)),
        providers,
    }
}

impl World {
    /// A node: a `Bff` over the shared stores (as every node shares Redis or Postgres).
    fn node(&self) -> Bff {
        Bff::new(
            BffPorts {
                sessions: self.stores.clone(),
                pending_logins: self.stores.clone(),
                locks: self.stores.clone(),
                replay: self.stores.clone(),
                cipher: Arc::new(FakeCipher),
                clock: self.clock.clone(),
                random: Arc::new(SeededRandom::new(1)),
            },
            self.providers.clone(),
            BffPolicy {
                lifetime: SessionLifetime::default(),
                pending_login_ttl: Duration::from_secs(300),
                callback_url: "https://app.example/bff/callback".into(),
                app_redirect_url: "https://app.example/".into(),
                refresh_margin: Duration::from_secs(30),
                fetch_userinfo: false,
                renewal: None,
                client_binding: Default::default(),
            },
        )
    }

    /// Stores a live session `name` of `subject` at `provider`/`issuer` with provider session
    /// `sid`.
    fn session(&self, name: &str, provider: &str, issuer: &str, subject: &str, sid: Option<&str>) {
        let key = SessionId::parse(&format!("{name:_<43}")).unwrap().key();
        let now = Timestamp::from_unix_seconds(T0);
        let session = Session {
            key,
            provider: ProviderId::parse(provider).unwrap(),
            issuer: issuer.into(),
            subject: subject.into(),
            provider_session_id: sid.map(str::to_owned),
            claims: Claims::new(serde_json::Map::new()),
            created_at: now,
            last_seen_at: now,
            id_issued_at: now,
            client_binding: None,
            user_agent: None,
            idle_expires_at: now.plus(Duration::from_secs(3600)),
            absolute_expires_at: now.plus(Duration::from_secs(7200)),
            access_token_expires_at: None,
            version: 0,
            tokens: Sealed {
                key_id: "fake".into(),
                ciphertext: Vec::new(),
            },
            connections: Vec::new(),
        };
        block_on(self.stores.create(&session)).unwrap();
    }

    fn live(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stores
            .sessions
            .lock()
            .unwrap()
            .values()
            .map(|s| {
                format!(
                    "{}/{}/{}",
                    s.provider.as_str(),
                    s.subject,
                    s.provider_session_id.clone().unwrap_or_default()
                )
            })
            .collect();
        names.sort();
        names
    }
}

/// Alice and bob at `main` (two sessions of alice in provider session `s-a`, one of bob in
/// `s-b`), alice at `second` (`s-a2`) and at `other` (`s-a`, the same sid and sub at another
/// issuer).
fn populated() -> World {
    let w = world();
    w.session("alice1", "main", ISSUER, "alice", Some("s-a"));
    w.session("alice2", "main", ISSUER, "alice", Some("s-a"));
    w.session("bob", "main", ISSUER, "bob", Some("s-b"));
    w.session("alice3", "second", ISSUER, "alice", Some("s-a2"));
    w.session("alice4", "other", OTHER_ISSUER, "alice", Some("s-a"));
    w
}

const EVERYONE: [&str; 5] = [
    "main/alice/s-a",
    "main/alice/s-a",
    "main/bob/s-b",
    "other/alice/s-a",
    "second/alice/s-a2",
];

fn token(changes: Value) -> String {
    let mut claims = json!({
        "iss": ISSUER, "aud": "main", "jti": "jti-1", "iat": T0 - 5, "exp": T0 + 120,
        "sub": "alice", "sid": "s-a",
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    FakeProvider::logout_token(&claims)
}

fn refusal(result: Result<ProviderLogoutOutcome, BackchannelLogoutError>) -> String {
    match result {
        Err(BackchannelLogoutError::InvalidToken(reason)) => reason,
        Err(BackchannelLogoutError::Replayed) => "replayed".into(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_token_with_sid_ends_exactly_that_provider_session() {
    let w = populated();
    let outcome = block_on(w.node().backchannel_logout(&token(json!({})))).unwrap();
    assert_eq!(outcome.sessions_ended, 2);
    assert_eq!(
        w.live(),
        ["main/bob/s-b", "other/alice/s-a", "second/alice/s-a2"],
        "bob, alice at the other client and alice at the other issuer keep their sessions"
    );
}

#[test]
fn a_token_without_sid_ends_every_session_of_that_user_at_that_client() {
    let w = populated();
    w.session("alice5", "main", ISSUER, "alice", None);
    let outcome = block_on(w.node().backchannel_logout(&token(json!({"sid": null})))).unwrap();
    assert_eq!(outcome.sessions_ended, 3);
    assert_eq!(
        w.live(),
        ["main/bob/s-b", "other/alice/s-a", "second/alice/s-a2"]
    );
}

#[test]
fn a_sid_of_another_user_ends_nothing_when_sub_is_also_given() {
    let w = populated();
    // The token names bob's provider session but alice as the user: nothing of bob's ends.
    let outcome = block_on(w.node().backchannel_logout(&token(json!({"sid": "s-b"})))).unwrap();
    assert_eq!(outcome.sessions_ended, 0);
    assert_eq!(w.live(), EVERYONE);
}

#[test]
fn the_token_picks_the_client_at_a_shared_issuer_by_its_audience() {
    let w = populated();
    let outcome = block_on(
        w.node()
            .backchannel_logout(&token(json!({"aud": "second", "sid": "s-a2"}))),
    )
    .unwrap();
    assert_eq!(outcome.sessions_ended, 1);
    assert_eq!(
        w.live(),
        [
            "main/alice/s-a",
            "main/alice/s-a",
            "main/bob/s-b",
            "other/alice/s-a"
        ]
    );
}

#[test]
fn a_replayed_jti_is_refused_by_every_node_until_long_after_expiry() {
    let w = populated();
    let (a, b) = (w.node(), w.node());
    block_on(a.backchannel_logout(&token(json!({})))).unwrap();
    w.session("alice6", "main", ISSUER, "alice", Some("s-a"));
    assert_eq!(
        refusal(block_on(a.backchannel_logout(&token(json!({})))),),
        "replayed"
    );
    assert_eq!(
        refusal(block_on(b.backchannel_logout(&token(json!({})))),),
        "replayed",
        "the other node shares the replay cache"
    );
    assert!(w.live().contains(&"main/alice/s-a".to_owned()));
    // The jti is remembered past `exp` (the adapter tolerates clock skew after it).
    w.clock.set(T0 + 120 + 600);
    let later = token(json!({"iat": T0 + 700, "exp": T0 + 900}));
    assert_eq!(refusal(block_on(b.backchannel_logout(&later))), "replayed");
    // A new jti works.
    let fresh = token(json!({"jti": "jti-2", "iat": T0 + 700, "exp": T0 + 900}));
    assert_eq!(
        block_on(b.backchannel_logout(&fresh))
            .unwrap()
            .sessions_ended,
        1
    );
}

#[test]
fn a_logout_the_store_broke_off_is_finished_by_the_providers_retry() {
    use std::sync::atomic::Ordering;
    let w = populated();
    let logout = token(json!({"sid": null}));
    w.stores.fail_deletes.store(true, Ordering::SeqCst);
    let broken = block_on(w.node().backchannel_logout(&logout));
    assert!(
        matches!(broken, Err(BackchannelLogoutError::Store(_))),
        "{broken:?}"
    );
    assert_eq!(w.live(), EVERYONE, "the store ended nothing");
    // The store is back; the provider sends the same token again (OIDC Back-Channel Logout
    // section 2.8: a failed delivery may be retried).
    w.stores.fail_deletes.store(false, Ordering::SeqCst);
    let retried = block_on(w.node().backchannel_logout(&logout)).unwrap();
    assert_eq!(retried.sessions_ended, 2);
    assert_eq!(
        w.live(),
        ["main/bob/s-b", "other/alice/s-a", "second/alice/s-a2"]
    );
    // Once it has done its work, the token is a replay like any other.
    assert_eq!(
        refusal(block_on(w.node().backchannel_logout(&logout))),
        "replayed"
    );
}

#[test]
fn the_same_jti_from_another_issuer_is_another_token() {
    let w = populated();
    block_on(w.node().backchannel_logout(&token(json!({})))).unwrap();
    let other = token(json!({"iss": OTHER_ISSUER, "aud": "other"}));
    assert_eq!(
        block_on(w.node().backchannel_logout(&other))
            .unwrap()
            .sessions_ended,
        1
    );
}

#[test]
fn a_token_without_exp_is_accepted_only_for_a_bounded_time_after_iat() {
    let w = populated();
    let no_exp = token(json!({"exp": null}));
    w.clock
        .set(T0 - 5 + LOGOUT_TOKEN_LIFETIME_WITHOUT_EXP.as_secs() as i64);
    assert_eq!(
        refusal(block_on(w.node().backchannel_logout(&no_exp))),
        "iat"
    );
    assert_eq!(w.live(), EVERYONE);
    w.clock.set(T0);
    assert_eq!(
        block_on(w.node().backchannel_logout(&no_exp))
            .unwrap()
            .sessions_ended,
        2
    );
}

#[test]
fn refused_tokens_delete_nothing_and_name_the_check() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("not a JWS", "garbage".into(), "malformed"),
        ("five parts (JWE)", "a.b.c.d.e".into(), "malformed"),
        (
            "payload not JSON",
            "e30.bm90IGpzb24.fake-signature".into(),
            "malformed",
        ),
        ("no iss", token(json!({"iss": null})), "iss"),
        (
            "unknown iss",
            token(json!({"iss": "https://evil.example"})),
            "iss",
        ),
        ("wrong aud", token(json!({"aud": "someone-else"})), "aud"),
        (
            "bad signature",
            token(json!({})).replace("fake-signature", "forged"),
            "signature",
        ),
        ("no jti", token(json!({"jti": null})), "jti"),
        ("expired", token(json!({"exp": T0 - 1})), "exp"),
        (
            "neither sub nor sid",
            token(json!({"sub": null, "sid": null})),
            "sub_or_sid",
        ),
    ];
    for (name, logout_token, expected) in cases {
        let w = populated();
        assert_eq!(
            refusal(block_on(w.node().backchannel_logout(&logout_token))),
            expected,
            "{name}"
        );
        assert_eq!(w.live(), EVERYONE, "{name}: something was deleted");
        assert!(
            w.stores.replay.lock().unwrap().is_empty(),
            "{name}: a refused token used up its jti"
        );
    }
}

#[test]
fn a_provider_failure_is_not_a_refusal() {
    struct Down(FakeProvider);
    #[async_trait::async_trait]
    impl crate::ports::IdentityProvider for Down {
        fn id(&self) -> &ProviderId {
            self.0.id()
        }
        fn issuer(&self) -> &str {
            self.0.issuer()
        }
        fn requires_issuer_in_authorization_response(&self) -> bool {
            false
        }
        fn authorization_request(
            &self,
            redirect_uri: &str,
            prompt: Option<Prompt>,
        ) -> Result<crate::ports::AuthorizationRequest, ProviderError> {
            self.0.authorization_request(redirect_uri, prompt)
        }
        async fn exchange_code(
            &self,
            _: &str,
            _: &Secret,
            _: &str,
            _: &str,
            _: Timestamp,
        ) -> Result<crate::ports::ProviderLogin, ProviderError> {
            unreachable!()
        }
        async fn refresh(
            &self,
            _: &Secret,
            _: &Claims,
            _: Timestamp,
        ) -> Result<TokenSet, ProviderError> {
            unreachable!()
        }
        async fn revoke_refresh_token(&self, _: &Secret) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn userinfo(&self, _: &Secret, _: &str) -> Result<Option<Claims>, ProviderError> {
            Ok(None)
        }
        async fn client_credentials(
            &self,
            _: &[String],
            _: Timestamp,
        ) -> Result<crate::ports::ClientToken, ProviderError> {
            unreachable!()
        }
        fn end_session_url(&self, _: Option<&Secret>, _: &str) -> Option<String> {
            None
        }
        async fn validate_logout_token(
            &self,
            _: &str,
            _: Timestamp,
        ) -> Result<crate::ports::LogoutToken, ProviderError> {
            Err(ProviderError::Unavailable("keys unreachable".into()))
        }
    }
    let mut w = populated();
    w.providers = Providers::new(
        vec![Arc::new(Down(FakeProvider::new("main", ISSUER)))],
        ProviderId::parse("main").unwrap(),
    )
    .unwrap();
    let result = block_on(w.node().backchannel_logout(&token(json!({}))));
    assert!(
        matches!(result, Err(BackchannelLogoutError::Provider(_))),
        "{result:?}"
    );
    assert_eq!(w.live(), EVERYONE);
}

#[test]
fn front_channel_logout_ends_the_provider_session_of_every_client_of_that_issuer() {
    let w = populated();
    let outcome = block_on(w.node().frontchannel_logout(Some(ISSUER), Some("s-a"))).unwrap();
    assert_eq!(outcome.sessions_ended, 2);
    assert_eq!(outcome.provider_origin, "https://idp.example");
    assert_eq!(
        w.live(),
        ["main/bob/s-b", "other/alice/s-a", "second/alice/s-a2"],
        "the same sid at another issuer is another provider session"
    );
    // Nothing left to end: the same answer.
    let again = block_on(w.node().frontchannel_logout(Some(ISSUER), Some("s-a"))).unwrap();
    assert_eq!(again.sessions_ended, 0);
}

#[test]
fn provider_logouts_are_told_with_their_outcome_and_the_sessions_they_ended() {
    use crate::usecases::tests::events::Recorded;

    let w = populated();
    let events = Arc::new(Recorded::default());
    let node = w.node().with_events(events.clone());
    block_on(node.backchannel_logout(&token(json!({})))).unwrap();
    assert_eq!(
        events.take(),
        [
            "sessions_ended backchannel_logout 2",
            "backchannel_logout ok"
        ]
    );
    block_on(node.backchannel_logout(&token(json!({})))).unwrap_err();
    assert_eq!(events.take(), ["backchannel_logout replayed"]);
    block_on(node.frontchannel_logout(Some(ISSUER), Some("s-b"))).unwrap();
    assert_eq!(events.take(), ["sessions_ended frontchannel_logout 1"]);
}

#[test]
fn front_channel_logout_needs_a_configured_issuer_and_a_sid() {
    let w = populated();
    let node = w.node();
    for (iss, sid) in [
        (None, Some("s-a")),
        (Some("https://evil.example"), Some("s-a")),
        (Some("https://idp.example/"), Some("s-a")),
    ] {
        assert!(
            matches!(
                block_on(node.frontchannel_logout(iss, sid)),
                Err(FrontchannelLogoutError::UnknownIssuer)
            ),
            "{iss:?}"
        );
    }
    for sid in [None, Some("")] {
        assert!(matches!(
            block_on(node.frontchannel_logout(Some(ISSUER), sid)),
            Err(FrontchannelLogoutError::MissingSid)
        ));
    }
    assert_eq!(w.live(), EVERYONE);
}
