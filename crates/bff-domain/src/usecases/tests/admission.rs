//! Session id renewal and client binding through `admit_session`, with the fixed clock: when an
//! id is renewed, what the old id still does during the grace period and after it, tokens
//! re-sealed for the new key, no renewal while a refresh holds the lease, and bindings checked
//! in `strict` and `warn` mode.

use std::time::Duration;

use futures_executor::block_on;

use super::connect::connect;
use super::{T0, World, callback, login, start, world_with};
use crate::ports::Lock;
use crate::testkit::FakeCipher;
use crate::*;

const AFTER: u64 = 1200;
const GRACE: u64 = 60;

fn renewing() -> World {
    world_with(|p| {
        p.renewal = Some(SessionRenewal {
            after: Duration::from_secs(AFTER),
            grace: Duration::from_secs(GRACE),
        });
    })
}

fn at(w: &World, offset: i64) {
    w.clock.set(T0 + offset);
}

fn admit(w: &World, id: &SessionId) -> Result<Admission, AdmissionError> {
    block_on(w.bff.admit_session(id.clone(), &ClientContext::default()))
}

fn stored(w: &World, id: &SessionId) -> Option<Session> {
    w.stores.sessions.lock().unwrap().get(&id.key()).cloned()
}

/// Uses the session every 500 s (under the 600 s idle timeout) up to `until`.
fn keep_alive(w: &World, id: &SessionId, until: i64) {
    let mut t = 500;
    while t < until {
        at(w, t);
        block_on(w.bff.current_session(id)).unwrap();
        t += 500;
    }
}

#[test]
fn nothing_happens_and_no_store_is_asked_when_renewal_and_binding_are_off() {
    let w = super::world();
    let id = login(&w);
    w.stores
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let admitted = admit(&w, &id).unwrap();
    assert_eq!(admitted.id, id);
    assert!(!admitted.renewed);
    assert!(!w.bff.admission_needed());
}

#[test]
fn an_id_is_renewed_once_it_is_old_enough_and_the_session_moves_with_its_tokens() {
    let w = renewing();
    let old = login(&w);
    let before = stored(&w, &old).unwrap();
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64 - 1);
    let admitted = admit(&w, &old).unwrap();
    assert!(!admitted.renewed, "not due a second early");
    assert_eq!(admitted.id, old);

    at(&w, AFTER as i64);
    let admitted = admit(&w, &old).unwrap();
    assert!(admitted.renewed);
    let new = admitted.id;
    assert_ne!(new, old);
    assert!(stored(&w, &old).is_none(), "the old key is deleted");
    let moved = stored(&w, &new).expect("the session lives under the new key");
    assert_eq!(
        moved.created_at, before.created_at,
        "created stays the login's"
    );
    assert_eq!(moved.id_issued_at.unix_seconds(), T0 + AFTER as i64);
    assert_eq!(moved.subject, before.subject);
    // The tokens were re-sealed for the new key: they open with it, not with the old one.
    let tokens = vault::open(&FakeCipher, &moved.key, &moved.tokens).unwrap();
    assert_eq!(tokens.access_token.expose(), "access-2");
    assert!(vault::open(&FakeCipher, &before.key, &moved.tokens).is_err());
    assert_eq!(
        block_on(w.bff.current_session(&new))
            .unwrap()
            .claims
            .subject(),
        Some("alice")
    );
    // Not due again until `after` from the renewal.
    at(&w, AFTER as i64 + 500);
    assert!(!admit(&w, &new).unwrap().renewed);
}

#[test]
fn during_the_grace_period_the_old_id_works_and_yields_the_same_new_id_then_it_is_worthless() {
    let w = renewing();
    let old = login(&w);
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let new = admit(&w, &old).unwrap().id;

    // A request of the same tab that still carries the old cookie, reaching any use case.
    at(&w, AFTER as i64 + GRACE as i64 - 1);
    let view = block_on(w.bff.current_session(&old)).unwrap();
    assert_eq!(view.claims.subject(), Some("alice"));
    // (The access token is due by now, so this refreshes it, through the alias.)
    assert!(block_on(w.bff.access_token_for(&old)).is_ok());
    assert!(block_on(w.bff.session_is_live(&old)).unwrap());
    // Its admission gives it the same new id again (the answer with the new cookie may have
    // been lost), and does not renew a second time.
    let again = admit(&w, &old).unwrap();
    assert!(again.renewed);
    assert_eq!(again.id, new);
    assert_eq!(w.stores.sessions.lock().unwrap().len(), 1);

    // After the grace period the old id is worth nothing; the new one goes on.
    at(&w, AFTER as i64 + GRACE as i64);
    let admitted = admit(&w, &old).unwrap();
    assert!(!admitted.renewed);
    assert_eq!(admitted.id, old);
    assert!(matches!(
        block_on(w.bff.current_session(&old)),
        Err(SessionError::NoSession)
    ));
    assert!(block_on(w.bff.current_session(&new)).is_ok());
}

#[test]
fn what_outlives_a_request_follows_the_session_through_a_renewal() {
    let w = renewing();
    let old = login(&w);
    assert_eq!(
        block_on(w.bff.current_session_id(&old)).unwrap(),
        Some(old.clone())
    );
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let new = admit(&w, &old).unwrap().id;
    // A WebSocket tunnel opened with the old id, checking within the grace period.
    assert_eq!(
        block_on(w.bff.current_session_id(&old)).unwrap(),
        Some(new.clone())
    );
    at(&w, AFTER as i64 + GRACE as i64);
    assert_eq!(block_on(w.bff.current_session_id(&old)).unwrap(), None);
    assert_eq!(
        block_on(w.bff.current_session_id(&new)).unwrap(),
        Some(new.clone())
    );
}

#[test]
fn the_old_cookie_logs_the_renewed_session_out_during_the_grace_period() {
    let w = renewing();
    let old = login(&w);
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let new = admit(&w, &old).unwrap().id;
    block_on(w.bff.logout(&old, None)).unwrap();
    assert!(stored(&w, &new).is_none(), "the renewed session is gone");
    assert!(matches!(
        block_on(w.bff.current_session(&new)),
        Err(SessionError::NoSession)
    ));
}

#[test]
fn a_refresh_through_the_old_id_during_the_grace_period_writes_to_the_renewed_session() {
    let w = renewing();
    let old = login(&w);
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let new = admit(&w, &old).unwrap().id;
    block_on(w.bff.refresh(&old)).unwrap();
    let moved = stored(&w, &new).unwrap();
    let tokens = vault::open(&FakeCipher, &moved.key, &moved.tokens).unwrap();
    assert_ne!(tokens.access_token.expose(), "access-2", "refreshed tokens");
    assert_eq!(
        block_on(w.bff.access_token_for(&new)).unwrap().expose(),
        tokens.access_token.expose()
    );
    assert!(
        stored(&w, &old).is_none(),
        "nothing written back under the old key"
    );
}

#[test]
fn a_connected_providers_tokens_are_resealed_too() {
    let w = renewing();
    let old = login(&w);
    connect(&w, &old);
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let new = admit(&w, &old).unwrap().id;
    let moved = stored(&w, &new).unwrap();
    let other = ProviderId::parse("other").unwrap();
    let connection = moved.connection(&other).unwrap();
    let tokens =
        vault::open_connection(&FakeCipher, &moved.key, &other, &connection.tokens).unwrap();
    assert!(tokens.access_token.expose().starts_with("other-access-"));
}

#[test]
fn no_renewal_while_a_refresh_holds_the_sessions_lease() {
    let w = renewing();
    let old = login(&w);
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let lease = format!("refresh:{}:main", old.key().as_str());
    assert!(
        block_on(
            w.stores
                .try_acquire(&lease, "refresher", Duration::from_secs(30))
        )
        .unwrap()
    );
    let admitted = admit(&w, &old).unwrap();
    assert!(!admitted.renewed, "renewal waits for the refresh");
    assert!(stored(&w, &old).is_some());
    assert!(w.stores.renewals.lock().unwrap().is_empty());
    assert!(block_on(w.stores.release(&lease, "refresher")).unwrap());
    assert!(
        admit(&w, &old).unwrap().renewed,
        "and happens on the next request"
    );
    assert!(
        w.stores.leases.lock().unwrap().is_empty(),
        "renewal releases the leases it took"
    );
}

#[test]
fn an_alias_pointing_at_no_session_leaves_the_old_id_working() {
    // A renewal interrupted after recording its alias (its session never created).
    let w = renewing();
    let old = login(&w);
    keep_alive(&w, &old, AFTER as i64);
    at(&w, AFTER as i64);
    let random = crate::testkit::SeededRandom::new(9);
    let nonce = RenewalNonce::generate(&random);
    let lost = RenewalAlias {
        new_key: old.renewed(&nonce).key(),
        nonce,
        expires_at: Timestamp::from_unix_seconds(T0 + AFTER as i64 + GRACE as i64),
    };
    w.stores.renewals.lock().unwrap().insert(old.key(), lost);
    let admitted = admit(&w, &old).unwrap();
    assert!(!admitted.renewed);
    assert_eq!(admitted.id, old);
    assert!(block_on(w.bff.current_session(&old)).is_ok());
    // Once that alias expires the renewal is tried again and succeeds.
    at(&w, AFTER as i64 + GRACE as i64);
    assert!(admit(&w, &old).unwrap().renewed);
}

#[test]
fn a_forged_alias_for_another_key_is_not_followed() {
    let w = renewing();
    let victim = login(&w);
    let random = crate::testkit::SeededRandom::new(5);
    let attacker = SessionId::generate(&random);
    // Someone with write access to the store points the attacker's id at the victim's session.
    w.stores.renewals.lock().unwrap().insert(
        attacker.key(),
        RenewalAlias {
            new_key: victim.key(),
            nonce: RenewalNonce::generate(&random),
            expires_at: Timestamp::from_unix_seconds(T0 + 60),
        },
    );
    let admitted = admit(&w, &attacker).unwrap();
    assert!(!admitted.renewed);
    assert_eq!(admitted.id, attacker);
}

fn login_from(w: &World, client: ClientContext) -> SessionId {
    let (started, state) = start(w, "/app");
    let mut input = callback(&started, &state);
    input.client = client;
    block_on(w.bff.complete_login(input))
        .unwrap()
        .session_id
        .unwrap()
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn client(ua: &str, address: &str) -> ClientContext {
    ClientContext {
        user_agent: Some(ua.into()),
        address: address.parse().ok(),
    }
}

fn binding(mode: BindingMode) -> World {
    world_with(|p| p.client_binding = ClientBindingPolicy::new(mode, Some(24), None).unwrap())
}

#[test]
fn the_login_records_a_user_agent_summary_and_the_binding_only_when_on() {
    let off = super::world();
    let id = login_from(&off, client(FIREFOX, "192.0.2.1"));
    let session = off.stores.sessions.lock().unwrap()[&id.key()].clone();
    assert_eq!(session.user_agent.as_deref(), Some("Firefox 133 on Linux"));
    assert_eq!(session.client_binding, None);

    let on = binding(BindingMode::Strict);
    let id = login_from(&on, client(FIREFOX, "192.0.2.1"));
    let session = on.stores.sessions.lock().unwrap()[&id.key()].clone();
    assert!(session.client_binding.is_some());
}

#[test]
fn strict_binding_ends_the_session_on_a_mismatch() {
    let w = binding(BindingMode::Strict);
    let id = login_from(&w, client(FIREFOX, "192.0.2.1"));
    let same = block_on(
        w.bff
            .admit_session(id.clone(), &client(FIREFOX, "192.0.2.77")),
    )
    .unwrap();
    assert_eq!(same.binding, BindingCheck::Matches);
    assert_eq!(same.id, id);
    // The cookie replayed from another network, then from another browser.
    for thief in [
        client(FIREFOX, "198.51.100.1"),
        client("curl/8.5.0", "192.0.2.1"),
    ] {
        let w = binding(BindingMode::Strict);
        let id = login_from(&w, client(FIREFOX, "192.0.2.1"));
        let err = block_on(w.bff.admit_session(id.clone(), &thief)).unwrap_err();
        assert!(matches!(err, AdmissionError::ClientMismatch));
        assert!(err.ends_session());
        assert!(
            w.stores.sessions.lock().unwrap().is_empty(),
            "session ended"
        );
        // The owner is logged out too: the session is gone for everyone.
        assert!(matches!(
            block_on(w.bff.current_session(&id)),
            Err(SessionError::NoSession)
        ));
    }
}

#[test]
fn warn_binding_reports_a_mismatch_and_keeps_the_session() {
    let w = binding(BindingMode::Warn);
    let id = login_from(&w, client(FIREFOX, "192.0.2.1"));
    let admitted = block_on(
        w.bff
            .admit_session(id.clone(), &client("curl/8.5.0", "203.0.113.9")),
    )
    .unwrap();
    assert_eq!(admitted.binding, BindingCheck::Mismatch);
    assert_eq!(admitted.id, id);
    assert!(block_on(w.bff.current_session(&id)).is_ok());
}

#[test]
fn a_session_made_before_binding_was_on_is_not_checked() {
    let w = binding(BindingMode::Strict);
    let id = login_from(&w, client(FIREFOX, "192.0.2.1"));
    w.stores
        .sessions
        .lock()
        .unwrap()
        .get_mut(&id.key())
        .unwrap()
        .client_binding = None;
    let admitted = block_on(w.bff.admit_session(id, &client("curl/8", "198.51.100.1"))).unwrap();
    assert_eq!(admitted.binding, BindingCheck::NotChecked);
}
