//! The store contract suite: what every adapter of the store ports must do, written once and run
//! against memory, Postgres, Redis, the tiered store and the testkit's own `FakeStores` alike.
//!
//! Each rule is a `pub async fn` here that panics with a message naming what broke. Adapters do
//! not call them one by one: [`store_contract_tests!`](crate::store_contract_tests) expands to one
//! test per rule, so a broken rule shows up as exactly that test failing.
//!
//! Times are passed explicitly: `now` must be close to the real time (backends with real TTLs,
//! like Redis, derive them from it), and expiry is tested by passing later `now` values, which
//! adapters must honour even when their backend has not expired the entry yet. Keys are unique per
//! run, so suites can share servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ports::{Lock, LoginRef, PendingLoginStore, ReplayCache, SessionStore, StoreError};
use crate::{
    BindingMode, Claims, ClientBindingPolicy, ClientContext, Connection, PendingLogin, ProviderId,
    RenewalAlias, RenewalNonce, ReturnUrl, Sealed, Session, SessionKey, Timestamp,
};

/// Expands to one test per rule of the store contract suite.
///
/// The input reads like a function that is run once per rule, with `rule` bound to that rule (an
/// `async fn(&ContractStores, Timestamp)`); it builds fresh stores, runs the rule on them and
/// cleans up. Its attributes (`#[test]`, `#[tokio::test]`, ...) go on every generated test, and
/// its name becomes the module holding them, so a failure reads `<name>::<rule>`. The body may
/// `return` early to skip (for a service that is unavailable).
///
/// ```text
/// bff_domain::store_contract_tests! {
///     #[tokio::test]
///     async fn postgres(rule) {
///         let Some((stores, service)) = contract_stores().await else { return };
///         rule(&stores, now()).await;
///         service.drop_schema().await;
///     }
/// }
/// ```
///
/// Without a runtime, a plain `fn` works too: `#[test] fn memory(rule) { block_on(rule(..)) }`.
/// The generated module starts with `use super::*;`, so the body sees the caller's items.
#[macro_export]
macro_rules! store_contract_tests {
    // Every rule of the suite, in order. `every_rule_of_the_suite_has_a_test` checks this list
    // against the rules defined in `store_contract.rs`.
    (@rules $mode:tt $input:tt) => {
        $crate::store_contract_tests! { @each $mode $input [
            sessions_round_trip
            optimistic_versions
            touch_slides_forward_only
            idle_and_absolute_expiry
            lookup_and_delete_by_sid_and_subject
            delete_many_deletes_exactly_those
            sweep_respects_the_batch
            concurrent_touches_keep_a_token_update
            connections_round_trip_and_are_version_checked
            connections_are_found_by_their_login
            lifecycle_fields_round_trip
            renewal_aliases_are_put_once_and_expire
            pending_logins_are_taken_once
            pending_connect_logins_keep_their_session
            replay_cache_inserts_once
            replay_cache_forgets
            leases_belong_to_their_owner
        ] }
    };
    (@each names {} [$($rule_fn:ident)*]) => {
        [$(stringify!($rule_fn)),*]
    };
    (@each tests {
        $(#[$attr:meta])* $($fn_kw:ident)+ ($rule:ident) $body:block
    } $rules:tt) => {
        $crate::store_contract_tests! {
            @split [$(#[$attr])*] [$($fn_kw)+] $rule $body $rules
        }
    };
    // Attributes and header as single token trees, so every rule's test can repeat them.
    (@split $attrs:tt $header:tt $rule:ident $body:block [$($rule_fn:ident)*]) => {
        $crate::store_contract_tests! { @module $header {
            $( $crate::store_contract_tests! { @test $attrs $header $rule_fn $rule $body } )*
        } }
    };
    // `[async fn name]` or `[fn name]`: the module is named after the function.
    (@module [$(async)? fn $name:ident] { $($tests:tt)* }) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $($tests)*
        }
    };
    (@test [$($attr:tt)*] [async fn $_name:ident] $rule_fn:ident $rule:ident $body:block) => {
        $($attr)*
        async fn $rule_fn() {
            let $rule = $crate::testkit::store_contract::$rule_fn;
            $body
        }
    };
    (@test [$($attr:tt)*] [fn $_name:ident] $rule_fn:ident $rule:ident $body:block) => {
        $($attr)*
        fn $rule_fn() {
            let $rule = $crate::testkit::store_contract::$rule_fn;
            $body
        }
    };
    ($($input:tt)+) => {
        $crate::store_contract_tests! { @rules tests { $($input)+ } }
    };
}

/// The adapters under test.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects
pub struct ContractStores {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Pending logins.
    pub pending: Arc<dyn PendingLoginStore>,
    /// Replay cache.
    pub replay: Arc<dyn ReplayCache>,
    /// Leases.
    pub locks: Arc<dyn Lock>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A value unique to this process run and call.
fn unique(now: Timestamp, label: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{label}-{}-{}-{n}", now.unix_seconds(), std::process::id())
}

fn key(now: Timestamp) -> SessionKey {
    let id = unique(now, "session");
    let hex: String = Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    SessionKey::from_stored(&hex).unwrap()
}

/// A session created at `now` living `idle` / `absolute` seconds, under a fresh key.
pub fn sample_session(now: Timestamp, issuer: &str, subject: &str, sid: Option<&str>) -> Session {
    let serde_json::Value::Object(map) = json!({"sub": subject, "iss": issuer, "name": "Contract"})
    else {
        unreachable!()
    };
    Session {
        key: key(now),
        provider: ProviderId::parse("contract").unwrap(),
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        provider_session_id: sid.map(str::to_owned),
        claims: Claims::new(map),
        created_at: now,
        last_seen_at: now,
        id_issued_at: now,
        client_binding: None,
        user_agent: None,
        idle_expires_at: now.plus(Duration::from_secs(600)),
        absolute_expires_at: now.plus(Duration::from_secs(3600)),
        access_token_expires_at: Some(now.plus(Duration::from_secs(300))),
        version: 0,
        tokens: Sealed {
            key_id: "k1".into(),
            ciphertext: vec![1, 2, 3, 4, 5],
        },
        connections: Vec::new(),
    }
}

/// A connection of `provider` with its own claims, expiry and (fake) sealed tokens.
pub fn sample_connection(now: Timestamp, provider: &str, fill: u8) -> Connection {
    let serde_json::Value::Object(map) =
        json!({"sub": format!("{provider}-user"), "iss": format!("https://{provider}.example")})
    else {
        unreachable!()
    };
    Connection {
        provider: ProviderId::parse(provider).unwrap(),
        claims: Claims::new(map),
        access_token_expires_at: Some(now.plus(Duration::from_secs(120 + u64::from(fill)))),
        tokens: Sealed {
            key_id: format!("k-{provider}"),
            // Every byte value, so a store that mangles binary (text encodings) shows.
            ciphertext: (0..=255u8).chain([fill; 8]).collect(),
        },
    }
}

fn later(now: Timestamp, secs: u64) -> Timestamp {
    now.plus(Duration::from_secs(secs))
}

/// create, get, update, delete; create twice is a conflict; unknown keys are `None`.
pub async fn sessions_round_trip(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let session = sample_session(now, "https://a.example", "alice", Some("sid-rt"));
    s.create(&session).await.unwrap();
    assert_eq!(
        s.get(&session.key, now).await.unwrap().as_ref(),
        Some(&session),
        "get returns what create stored"
    );
    assert!(
        matches!(s.create(&session).await, Err(StoreError::Conflict)),
        "creating an existing key must be a Conflict"
    );
    assert!(
        s.get(&key(now), now).await.unwrap().is_none(),
        "unknown key must be None"
    );
    assert!(
        s.delete(&session.key).await.unwrap(),
        "delete of an existing session returns true"
    );
    assert!(
        !s.delete(&session.key).await.unwrap(),
        "second delete returns false"
    );
    assert!(
        s.get(&session.key, now).await.unwrap().is_none(),
        "deleted session is gone"
    );
    s.check().await.unwrap();
}

/// update bumps the version; a stale version is a conflict and changes nothing.
pub async fn optimistic_versions(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let session = sample_session(now, "https://a.example", "alice", None);
    s.create(&session).await.unwrap();
    let mut changed = session.clone();
    changed.tokens.ciphertext = vec![9, 9, 9];
    assert_eq!(
        s.update(&changed, now).await.unwrap(),
        1,
        "first update returns version 1"
    );
    let stored = s.get(&session.key, now).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        stored.tokens.ciphertext,
        vec![9, 9, 9],
        "update replaced the tokens"
    );

    let mut stale = session.clone();
    stale.tokens.ciphertext = vec![6, 6, 6];
    assert!(
        matches!(s.update(&stale, now).await, Err(StoreError::Conflict)),
        "stale version must conflict"
    );
    let stored = s.get(&session.key, now).await.unwrap().unwrap();
    assert_eq!(
        stored.tokens.ciphertext,
        vec![9, 9, 9],
        "a conflicting update changed nothing"
    );

    let missing = sample_session(now, "https://a.example", "alice", None);
    assert!(
        matches!(s.update(&missing, now).await, Err(StoreError::NotFound)),
        "update of unknown key is NotFound"
    );
    s.delete(&session.key).await.unwrap();
}

/// touch moves idle expiry forward only, caps it at absolute, and keeps version and tokens.
pub async fn touch_slides_forward_only(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let session = sample_session(now, "https://a.example", "alice", None);
    s.create(&session).await.unwrap();
    s.touch(
        &session.key,
        later(now, 100),
        later(now, 700),
        later(now, 100),
    )
    .await
    .unwrap();
    let stored = s.get(&session.key, later(now, 100)).await.unwrap().unwrap();
    assert_eq!(
        stored.idle_expires_at,
        later(now, 700),
        "touch moved idle expiry forward"
    );
    assert_eq!(stored.last_seen_at, later(now, 100));
    assert_eq!(stored.version, 0, "touch must not change the version");
    assert_eq!(
        stored.tokens, session.tokens,
        "touch must not change the tokens"
    );

    s.touch(
        &session.key,
        later(now, 110),
        later(now, 650),
        later(now, 110),
    )
    .await
    .unwrap();
    let stored = s.get(&session.key, later(now, 110)).await.unwrap().unwrap();
    assert_eq!(
        stored.idle_expires_at,
        later(now, 700),
        "touch never moves idle expiry back"
    );

    s.touch(
        &session.key,
        later(now, 120),
        later(now, 9999),
        later(now, 120),
    )
    .await
    .unwrap();
    let stored = s.get(&session.key, later(now, 120)).await.unwrap().unwrap();
    assert_eq!(
        stored.idle_expires_at, stored.absolute_expires_at,
        "idle expiry is capped at absolute"
    );

    assert!(
        matches!(
            s.touch(&key(now), now, later(now, 10), now).await,
            Err(StoreError::NotFound)
        ),
        "touch of unknown key is NotFound"
    );
    s.delete(&session.key).await.unwrap();
}

/// A session is absent once idle or absolute expiry has passed at the given `now`.
pub async fn idle_and_absolute_expiry(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let idle = sample_session(now, "https://a.example", "alice", None);
    s.create(&idle).await.unwrap();
    assert!(
        s.get(&idle.key, later(now, 599)).await.unwrap().is_some(),
        "alive before idle expiry"
    );
    assert!(
        s.get(&idle.key, later(now, 600)).await.unwrap().is_none(),
        "gone at idle expiry"
    );
    assert!(
        matches!(
            s.touch(
                &idle.key,
                later(now, 601),
                later(now, 1200),
                later(now, 601)
            )
            .await,
            Err(StoreError::NotFound)
        ),
        "an idle-expired session cannot be revived by touch"
    );
    let _ = s.delete(&idle.key).await.unwrap();

    let mut absolute = sample_session(now, "https://a.example", "alice", None);
    absolute.idle_expires_at = later(now, 3600);
    absolute.absolute_expires_at = later(now, 1800);
    s.create(&absolute).await.unwrap();
    assert!(
        s.get(&absolute.key, later(now, 1799))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.get(&absolute.key, later(now, 1800))
            .await
            .unwrap()
            .is_none(),
        "gone at absolute expiry"
    );
    assert!(
        matches!(
            s.update(&absolute, later(now, 1801)).await,
            Err(StoreError::NotFound)
        ),
        "an expired session cannot be updated"
    );
    let _ = s.delete(&absolute.key).await.unwrap();
}

/// Lookup and delete by `(issuer, sid)` and `(issuer, sub)`, isolated between issuers.
pub async fn lookup_and_delete_by_sid_and_subject(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let sid = unique(now, "sid");
    let sub = unique(now, "sub");
    let a1 = sample_session(now, "https://a.example", &sub, Some(&sid));
    let a2 = sample_session(now, "https://a.example", &sub, Some(&sid));
    let a3 = sample_session(now, "https://a.example", &sub, None);
    let b1 = sample_session(now, "https://b.example", &sub, Some(&sid));
    for session in [&a1, &a2, &a3, &b1] {
        s.create(session).await.unwrap();
    }
    let mut found: Vec<SessionKey> = s
        .find_by_provider_session("https://a.example", &sid, now)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.key)
        .collect();
    found.sort();
    let mut expected = vec![a1.key.clone(), a2.key.clone()];
    expected.sort();
    assert_eq!(
        found, expected,
        "find by sid returns that issuer's sessions of that sid only"
    );
    assert_eq!(
        s.find_by_subject("https://a.example", &sub, now)
            .await
            .unwrap()
            .len(),
        3,
        "find by subject returns every session of that user at that issuer"
    );

    assert_eq!(
        s.delete_by_provider_session("https://a.example", &sid)
            .await
            .unwrap(),
        2
    );
    assert!(s.get(&a1.key, now).await.unwrap().is_none());
    assert!(
        s.get(&a3.key, now).await.unwrap().is_some(),
        "a session without that sid survives"
    );
    assert!(
        s.get(&b1.key, now).await.unwrap().is_some(),
        "another issuer's session with the same sid survives"
    );

    assert_eq!(
        s.delete_by_subject("https://a.example", &sub)
            .await
            .unwrap(),
        1
    );
    assert!(s.get(&a3.key, now).await.unwrap().is_none());
    assert!(
        s.get(&b1.key, now).await.unwrap().is_some(),
        "another issuer's session of the same sub survives"
    );
    assert_eq!(
        s.delete_by_subject("https://b.example", &sub)
            .await
            .unwrap(),
        1
    );
}

/// `delete_many` deletes the sessions named, counts those that existed, and leaves the rest
/// (and their index entries) alone; past any batch size a store uses, for reads by subject too.
pub async fn delete_many_deletes_exactly_those(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let issuer = "https://many.example";
    let sub = unique(now, "sub");
    let sessions: Vec<Session> = (0..1203)
        .map(|_| sample_session(now, issuer, &sub, None))
        .collect();
    for session in &sessions {
        s.create(session).await.unwrap();
    }
    assert_eq!(
        s.find_by_subject(issuer, &sub, now).await.unwrap().len(),
        sessions.len(),
        "all of them are found, past any batch size of a store's reads"
    );
    let (kept, doomed) = sessions.split_at(2);
    let absent = sample_session(now, issuer, &sub, None).key;
    let mut keys: Vec<SessionKey> = doomed.iter().map(|x| x.key.clone()).collect();
    keys.push(absent);
    assert_eq!(
        s.delete_many(&keys).await.unwrap(),
        doomed.len() as u64,
        "every named session that existed, and not the absent one"
    );
    for session in doomed.iter().step_by(97) {
        assert!(s.get(&session.key, now).await.unwrap().is_none());
    }
    let mut left: Vec<SessionKey> = s
        .find_by_subject(issuer, &sub, now)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.key)
        .collect();
    left.sort();
    let mut expected: Vec<SessionKey> = kept.iter().map(|x| x.key.clone()).collect();
    expected.sort();
    assert_eq!(left, expected, "the others stay, and only they are indexed");
    assert_eq!(
        s.delete_many(&keys).await.unwrap(),
        0,
        "a second time: none"
    );
    assert_eq!(s.delete_many(&[]).await.unwrap(), 0);
}

/// `sweep_expired` never removes more than the batch per call and keeps live sessions.
pub async fn sweep_respects_the_batch(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let live = sample_session(now, "https://sweep.example", "live", None);
    s.create(&live).await.unwrap();
    let mut expired = Vec::new();
    for _ in 0..5 {
        let mut session = sample_session(now, "https://sweep.example", "dead", None);
        session.idle_expires_at = later(now, 1);
        s.create(&session).await.unwrap();
        expired.push(session);
    }
    let at = later(now, 2);
    let first = s.sweep_expired(at, 2).await.unwrap();
    assert!(first <= 2, "a sweep removed {first} sessions with batch 2");
    // Loop like the server does until a batch comes back short.
    for _ in 0..1000 {
        if s.sweep_expired(at, 2).await.unwrap() < 2 {
            break;
        }
    }
    // Adapters that sweep remove the rows (their own tests count them); adapters whose backend
    // expires entries by TTL (Redis) sweep nothing. Either way expired sessions are absent.
    for session in &expired {
        assert!(
            s.get(&session.key, at).await.unwrap().is_none(),
            "expired session visible after the sweep"
        );
    }
    assert!(
        s.get(&live.key, at).await.unwrap().is_some(),
        "the sweep removed a live session"
    );
    s.delete(&live.key).await.unwrap();
}

/// 200 concurrent touches (sliding expiry) with one version-checked token update among them:
/// afterwards the session holds the new tokens, the update's version, and the latest touch.
pub async fn concurrent_touches_keep_a_token_update(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let session = sample_session(now, "https://a.example", "alice", None);
    s.create(&session).await.unwrap();
    let mut updated = session.clone();
    updated.tokens = Sealed {
        key_id: "k2".into(),
        ciphertext: vec![42; 16],
    };
    let touches = join_all((0..200u64).map(|i| {
        let seen = later(now, i);
        s.touch(&session.key, seen, later(now, i + 600), now)
    }));
    let (touched, update) = futures_util::join!(touches, s.update(&updated, now));
    for result in touched {
        result.unwrap();
    }
    assert_eq!(
        update.unwrap(),
        1,
        "the update among the touches got version 1"
    );
    let stored = s.get(&session.key, now).await.unwrap().unwrap();
    assert_eq!(
        stored.tokens, updated.tokens,
        "a touch overwrote the token update"
    );
    assert_eq!(stored.version, 1, "touches must not change the version");
    assert_eq!(
        stored.idle_expires_at,
        later(now, 199 + 600).min(stored.absolute_expires_at),
        "the latest touch was lost"
    );
    s.delete(&session.key).await.unwrap();
}

/// A session's connected providers (their claims, expiries and sealed tokens) round-trip, are
/// replaced only by a version-checked update, survive touches, and a stale update changes none.
pub async fn connections_round_trip_and_are_version_checked(
    stores: &ContractStores,
    now: Timestamp,
) {
    let s = &stores.sessions;
    let mut session = sample_session(now, "https://a.example", "alice", None);
    session.connections = vec![
        sample_connection(now, "b", 1),
        sample_connection(now, "c", 2),
    ];
    s.create(&session).await.unwrap();
    assert_eq!(
        s.get(&session.key, now).await.unwrap().as_ref(),
        Some(&session),
        "get returns the connections create stored"
    );

    let mut connected = session.clone();
    connected.connections = vec![
        sample_connection(now, "c", 3),
        sample_connection(now, "d", 4),
    ];
    assert_eq!(s.update(&connected, now).await.unwrap(), 1);
    let stored = s.get(&session.key, now).await.unwrap().unwrap();
    assert_eq!(
        stored.connections, connected.connections,
        "update replaced the connections"
    );
    assert_eq!(
        stored.tokens, session.tokens,
        "the primary tokens stayed as they were"
    );

    let mut stale = session.clone();
    stale.connections = vec![sample_connection(now, "b", 9)];
    assert!(
        matches!(s.update(&stale, now).await, Err(StoreError::Conflict)),
        "a stale version must conflict, connections included"
    );
    s.touch(&session.key, later(now, 5), later(now, 605), later(now, 5))
        .await
        .unwrap();
    let stored = s.get(&session.key, later(now, 5)).await.unwrap().unwrap();
    assert_eq!(
        stored.connections, connected.connections,
        "a conflicting update or a touch changed the connections"
    );
    assert_eq!(stored.version, 1);

    let mut disconnected = stored.clone();
    disconnected.connections.clear();
    s.update(&disconnected, later(now, 5)).await.unwrap();
    let stored = s.get(&session.key, later(now, 5)).await.unwrap().unwrap();
    assert!(stored.connections.is_empty(), "connections can be removed");
    s.delete(&session.key).await.unwrap();
}

/// A connection of provider `b` whose login was `subject` in provider session `sid` at
/// `issuer`.
fn connection_of(now: Timestamp, issuer: &str, subject: &str, sid: &str) -> Connection {
    let serde_json::Value::Object(map) = json!({"iss": issuer, "sub": subject, "sid": sid}) else {
        unreachable!()
    };
    Connection {
        claims: Claims::new(map),
        ..sample_connection(now, "b", 7)
    }
}

/// The keys of the sessions `store` finds by a connection's `login` at `issuer`, sorted; with
/// `still_connected`, only those that still hold such a connection (the port lets a store
/// return a session whose connection was dropped since).
async fn found(
    store: &dyn SessionStore,
    login: LoginRef<'_>,
    issuer: &str,
    at: Timestamp,
    still_connected: bool,
) -> Vec<SessionKey> {
    let mut keys: Vec<SessionKey> = store
        .find_by_connection(issuer, login, at)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| !still_connected || x.connections.iter().any(|c| c.is_login(issuer, login)))
        .map(|x| x.key)
        .collect();
    keys.sort();
    keys
}

/// Sessions are found by their connections' logins, `(iss, sid)` and `(iss, sub)`, whether the
/// connection came with the session or was added by an update (a connect), and no longer once
/// the session is deleted or expired. Never by the first login's: that is the other lookups'.
pub async fn connections_are_found_by_their_login(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let b = "https://b.example";
    let sub = unique(now, "b-sub");
    let (sid1, sid2) = (unique(now, "b-sid1"), unique(now, "b-sid2"));
    let sorted = |mut keys: Vec<SessionKey>| {
        keys.sort();
        keys
    };

    // Created with its connection.
    let mut first = sample_session(now, "https://a.example", "alice", None);
    first.connections = vec![connection_of(now, b, &sub, &sid1)];
    s.create(&first).await.unwrap();
    // Connected by an update, as `connect=true` does.
    let second = sample_session(now, "https://a.example", "bob", None);
    s.create(&second).await.unwrap();
    let mut connected = second.clone();
    connected.connections = vec![connection_of(now, b, &sub, &sid2)];
    s.update(&connected, now).await.unwrap();
    // The same values as a first login at b, and as a connection at another issuer.
    let primary_at_b = sample_session(now, b, &sub, Some(&sid1));
    s.create(&primary_at_b).await.unwrap();
    let mut elsewhere = sample_session(now, "https://a.example", "carol", None);
    elsewhere.connections = vec![connection_of(now, "https://c.example", &sub, &sid1)];
    s.create(&elsewhere).await.unwrap();

    assert_eq!(
        found(s.as_ref(), LoginRef::Session(&sid1), b, now, false).await,
        vec![first.key.clone()],
        "found by the connection's sid at its issuer only, never by a first login's"
    );
    assert_eq!(
        found(s.as_ref(), LoginRef::Session(&sid2), b, now, false).await,
        vec![second.key.clone()],
        "a connection added by an update is found"
    );
    assert_eq!(
        found(s.as_ref(), LoginRef::Subject(&sub), b, now, false).await,
        sorted(vec![first.key.clone(), second.key.clone()]),
        "found by the connection's sub"
    );

    // Disconnected by an update: no session found still holds that connection.
    let mut disconnected = s.get(&second.key, now).await.unwrap().unwrap();
    disconnected.connections.clear();
    s.update(&disconnected, now).await.unwrap();
    assert!(
        found(s.as_ref(), LoginRef::Session(&sid2), b, now, true)
            .await
            .is_empty()
    );
    // Deleted, and expired.
    s.delete(&first.key).await.unwrap();
    assert!(
        found(s.as_ref(), LoginRef::Session(&sid1), b, now, false)
            .await
            .is_empty()
    );
    let mut late = sample_session(now, "https://a.example", "dave", None);
    late.connections = vec![connection_of(now, b, &sub, &sid1)];
    s.create(&late).await.unwrap();
    assert_eq!(
        found(s.as_ref(), LoginRef::Session(&sid1), b, now, false).await,
        vec![late.key.clone()]
    );
    assert!(
        found(
            s.as_ref(),
            LoginRef::Session(&sid1),
            b,
            later(now, 3601),
            false
        )
        .await
        .is_empty(),
        "an expired session is not found"
    );
    for key in [&second.key, &primary_at_b.key, &elsewhere.key, &late.key] {
        let _ = s.delete(key).await.unwrap();
    }
}

fn sample_pending(now: Timestamp, state: &str) -> PendingLogin {
    PendingLogin {
        state: state.to_owned(),
        provider: ProviderId::parse("contract").unwrap(),
        sealed_verifier: Sealed {
            key_id: "k1".into(),
            ciphertext: vec![0, 1, 2, 254, 255],
        },
        nonce: "nonce".into(),
        redirect_uri: "https://app.example/bff/callback".into(),
        return_url: ReturnUrl::parse("/back").unwrap(),
        binding_hash: "0".repeat(64),
        created_at: now,
        expires_at: later(now, 300),
        connect_to: None,
    }
}

/// The id's issue time, the client binding and the user-agent summary come back as stored,
/// through `get`, the lookups and an update (which keeps them).
pub async fn lifecycle_fields_round_trip(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let mut session = sample_session(
        now.minus(Duration::from_secs(100)),
        "https://l.example",
        "lena",
        Some("sid-l"),
    );
    session.id_issued_at = later(now, 0).minus(Duration::from_secs(40));
    session.client_binding = ClientBindingPolicy::new(BindingMode::Strict, Some(24), None)
        .unwrap()
        .binding_for(&ClientContext {
            user_agent: Some("Firefox/133".into()),
            address: "192.0.2.1".parse().ok(),
        });
    session.user_agent = Some("Firefox 133 on Linux".into());
    s.create(&session).await.unwrap();
    assert_eq!(
        s.get(&session.key, now).await.unwrap().as_ref(),
        Some(&session),
        "get returns the lifecycle fields create stored"
    );
    let found = s
        .find_by_subject("https://l.example", "lena", now)
        .await
        .unwrap();
    assert_eq!(found, vec![session.clone()], "lookups return them too");
    s.update(&session, now).await.unwrap();
    let updated = s.get(&session.key, now).await.unwrap().unwrap();
    assert_eq!(
        updated.id_issued_at, session.id_issued_at,
        "update keeps them"
    );
    assert_eq!(updated.client_binding, session.client_binding);
    assert_eq!(updated.user_agent, session.user_agent);
    s.delete(&session.key).await.unwrap();
}

/// A renewal alias is recorded once until it expires: a second `put_renewal` for the same old key
/// loses (the first stands), another key is independent, and from its expiry on the alias is gone
/// and a new one can be put.
pub async fn renewal_aliases_are_put_once_and_expire(stores: &ContractStores, now: Timestamp) {
    let s = &stores.sessions;
    let random = crate::testkit::SeededRandom::new(now.unix_seconds().unsigned_abs());
    let old = key(now);
    let alias = |expires_in: u64| RenewalAlias {
        new_key: key(now),
        nonce: RenewalNonce::generate(&random),
        expires_at: later(now, expires_in),
    };
    assert_eq!(s.get_renewal(&old, now).await.unwrap(), None, "nothing yet");
    let first = alias(60);
    assert!(
        s.put_renewal(&old, &first, now).await.unwrap(),
        "first put wins"
    );
    assert_eq!(s.get_renewal(&old, now).await.unwrap(), Some(first.clone()));
    assert!(
        !s.put_renewal(&old, &alias(60), now).await.unwrap(),
        "a second renewal of the same id loses"
    );
    assert_eq!(
        s.get_renewal(&old, later(now, 59)).await.unwrap(),
        Some(first.clone()),
        "the first alias stands until it expires"
    );
    let other = key(now);
    assert_eq!(
        s.get_renewal(&other, now).await.unwrap(),
        None,
        "keys are independent"
    );
    assert_eq!(
        s.get_renewal(&old, later(now, 60)).await.unwrap(),
        None,
        "gone at its expiry"
    );
    let second = alias(120);
    assert!(
        s.put_renewal(&old, &second, later(now, 61)).await.unwrap(),
        "an expired alias counts as absent"
    );
    assert_eq!(
        s.get_renewal(&old, later(now, 61)).await.unwrap(),
        Some(second)
    );
    // Concurrent renewals of one id: exactly one wins.
    let contested = key(now);
    let attempts: Vec<_> = (0..8).map(|_| alias(60)).collect();
    let results = join_all(attempts.iter().map(|a| s.put_renewal(&contested, a, now))).await;
    let wins = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(wins, 1, "exactly one concurrent renewal wins");
}

/// A pending login is taken exactly once, even by concurrent callers, and not after expiry.
pub async fn pending_logins_are_taken_once(stores: &ContractStores, now: Timestamp) {
    let p = &stores.pending;
    let state = unique(now, "state");
    let login = sample_pending(now, &state);
    p.put(&login).await.unwrap();
    assert!(
        matches!(p.put(&login).await, Err(StoreError::Conflict)),
        "a pending state cannot be put twice"
    );
    let takes = join_all((0..16).map(|_| p.take(&state, now))).await;
    let winners: Vec<_> = takes.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent take wins");
    assert_eq!(winners[0], login, "the taken login is the one put");
    assert!(
        p.take(&state, now).await.unwrap().is_none(),
        "taken once only"
    );

    let state = unique(now, "state");
    p.put(&sample_pending(now, &state)).await.unwrap();
    assert!(
        p.take(&state, later(now, 300)).await.unwrap().is_none(),
        "an expired pending login is gone"
    );
}

/// A pending login that connects a provider keeps the key of the session it joins.
pub async fn pending_connect_logins_keep_their_session(stores: &ContractStores, now: Timestamp) {
    let p = &stores.pending;
    let state = unique(now, "state");
    let mut login = sample_pending(now, &state);
    login.connect_to = Some(key(now));
    p.put(&login).await.unwrap();
    assert_eq!(
        p.take(&state, now).await.unwrap().as_ref(),
        Some(&login),
        "the taken connect login is the one put, session key included"
    );
}

/// The replay cache says "new" once per value until it expires.
pub async fn replay_cache_inserts_once(stores: &ContractStores, now: Timestamp) {
    let r = &stores.replay;
    let value = unique(now, "jti");
    assert!(
        r.insert_if_absent(&value, later(now, 60), now)
            .await
            .unwrap(),
        "first insert is new"
    );
    assert!(
        !r.insert_if_absent(&value, later(now, 60), now)
            .await
            .unwrap(),
        "second insert is a replay"
    );
    let value2 = unique(now, "jti");
    let results = join_all((0..8).map(|_| r.insert_if_absent(&value2, later(now, 60), now))).await;
    assert_eq!(
        results.into_iter().filter(|x| *x.as_ref().unwrap()).count(),
        1,
        "exactly one concurrent insert wins"
    );
    assert!(
        r.insert_if_absent(&value, later(now, 120), later(now, 60))
            .await
            .unwrap(),
        "after expiry the value is new again"
    );
}

/// A forgotten value is new again, and only that value is; forgetting an absent one is fine.
pub async fn replay_cache_forgets(stores: &ContractStores, now: Timestamp) {
    let r = &stores.replay;
    let (value, other) = (unique(now, "jti"), unique(now, "jti"));
    for v in [&value, &other] {
        assert!(r.insert_if_absent(v, later(now, 60), now).await.unwrap());
    }
    r.forget(&value).await.unwrap();
    assert!(
        r.insert_if_absent(&value, later(now, 60), now)
            .await
            .unwrap(),
        "a forgotten value is new again"
    );
    assert!(
        !r.insert_if_absent(&other, later(now, 60), now)
            .await
            .unwrap(),
        "another value is still remembered"
    );
    r.forget(&unique(now, "jti")).await.unwrap();
}

/// Leases: one owner at a time; only the owner releases; `is_held` says whether anyone holds
/// one.
pub async fn leases_belong_to_their_owner(stores: &ContractStores, now: Timestamp) {
    let l = &stores.locks;
    let name = unique(now, "lease");
    let ttl = Duration::from_secs(30);
    assert!(
        !l.is_held(&name).await.unwrap(),
        "a lease never taken is free"
    );
    assert!(
        l.try_acquire(&name, "owner-a", ttl).await.unwrap(),
        "a free lease is acquired"
    );
    assert!(l.is_held(&name).await.unwrap(), "a taken lease is held");
    assert!(
        !l.try_acquire(&name, "owner-b", ttl).await.unwrap(),
        "a held lease is refused to others"
    );
    assert!(
        !l.release(&name, "owner-b").await.unwrap(),
        "a non-owner cannot release"
    );
    assert!(
        !l.try_acquire(&name, "owner-b", ttl).await.unwrap(),
        "still held after a foreign release"
    );
    assert!(
        l.release(&name, "owner-a").await.unwrap(),
        "the owner releases"
    );
    assert!(!l.is_held(&name).await.unwrap(), "a released lease is free");
    assert!(
        l.try_acquire(&name, "owner-b", ttl).await.unwrap(),
        "free again after release"
    );
    assert!(l.release(&name, "owner-b").await.unwrap());
}
