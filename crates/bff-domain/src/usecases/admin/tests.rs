//! The admin use cases over the testkit fakes: two sessions of alice and one of bob.

use futures_executor::block_on;

use super::super::tests::{T0, World, login, world};
use crate::*;

const ISSUER: &str = "https://idp.example";

fn login_as(w: &World, subject: &str) -> SessionId {
    w.provider.script.lock().unwrap().subject = Some(subject.to_owned());
    login(w)
}

/// Alice twice (the second 10 s later), bob once.
fn alice_twice_and_bob(w: &World) -> (SessionId, SessionId, SessionId) {
    let first = login_as(w, "alice");
    w.clock.advance(std::time::Duration::from_secs(10));
    let second = login_as(w, "alice");
    let bob = login_as(w, "bob");
    (first, second, bob)
}

fn live(w: &World, id: &SessionId) -> bool {
    w.stores.sessions.lock().unwrap().contains_key(&id.key())
}

#[test]
fn a_users_sessions_are_listed_without_ids_keys_or_tokens() {
    let w = world();
    let (first, second, _bob) = alice_twice_and_bob(&w);
    let listed = block_on(w.bff.admin_list_sessions("alice", None)).unwrap();
    assert_eq!(listed.len(), 2);
    // Oldest first, with the session's own times and provider.
    assert_eq!(listed[0].created_at.unix_seconds(), T0);
    assert_eq!(listed[1].created_at.unix_seconds(), T0 + 10);
    assert_eq!(listed[0].last_seen_at.unix_seconds(), T0);
    assert_eq!(listed[0].idle_expires_at.unix_seconds(), T0 + 600);
    assert_eq!(listed[0].absolute_expires_at.unix_seconds(), T0 + 3600);
    assert!(
        listed
            .iter()
            .all(|s| s.provider.as_str() == "main" && s.issuer == ISSUER && s.subject == "alice")
    );
    assert_ne!(listed[0].handle, listed[1].handle);
    let shown = format!("{listed:?}");
    for id in [&first, &second] {
        assert!(!shown.contains(id.expose()), "a session id is listed");
        assert!(
            !shown.contains(id.key().as_str()),
            "a session key is listed"
        );
        assert!(
            !shown.contains(&id.key().as_str()[..16]),
            "part of a key is listed"
        );
    }
    assert!(!shown.contains("access-") && !shown.contains("refresh-"));
    // The handle is neither the key nor usable as one.
    assert!(SessionKey::from_stored(listed[0].handle.as_str()).is_err());
    // With the issuer named: the same; another issuer: none.
    assert_eq!(
        block_on(w.bff.admin_list_sessions("alice", Some(ISSUER))).unwrap(),
        listed
    );
    assert!(
        block_on(
            w.bff
                .admin_list_sessions("alice", Some("https://other.example"))
        )
        .unwrap()
        .is_empty()
    );
    assert!(
        block_on(w.bff.admin_list_sessions("carol", None))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn revoking_by_handle_ends_that_session_only_and_revokes_its_refresh_token() {
    let w = world();
    let (first, second, bob) = alice_twice_and_bob(&w);
    let listed = block_on(w.bff.admin_list_sessions("alice", None)).unwrap();
    let revoked = block_on(w.bff.admin_revoke_session("alice", None, &listed[0].handle)).unwrap();
    assert_eq!(
        revoked,
        Revoked {
            sessions: 1,
            revocation_failures: 0
        }
    );
    assert!(!live(&w, &first));
    assert!(live(&w, &second) && live(&w, &bob));
    // The first login's refresh token (the fake numbers its tokens per call).
    assert_eq!(w.provider.revoked.lock().unwrap().len(), 1);
    assert!(matches!(
        block_on(w.bff.current_session(&first)),
        Err(SessionError::NoSession)
    ));
    // Gone now; a second revoke finds nothing.
    assert!(matches!(
        block_on(w.bff.admin_revoke_session("alice", None, &listed[0].handle)),
        Err(AdminError::NoSuchSession)
    ));
}

#[test]
fn a_handle_only_works_for_its_own_user() {
    let w = world();
    let (first, _second, bob) = alice_twice_and_bob(&w);
    let bobs = block_on(w.bff.admin_list_sessions("bob", None)).unwrap();
    assert_eq!(bobs.len(), 1);
    assert!(matches!(
        block_on(w.bff.admin_revoke_session("alice", None, &bobs[0].handle)),
        Err(AdminError::NoSuchSession)
    ));
    assert!(matches!(
        block_on(
            w.bff
                .admin_revoke_session("bob", Some("https://other.example"), &bobs[0].handle)
        ),
        Err(AdminError::NoSuchSession)
    ));
    assert!(live(&w, &bob) && live(&w, &first));
}

#[test]
fn revoking_all_ends_every_session_of_the_user_and_no_other() {
    let w = world();
    let (first, second, bob) = alice_twice_and_bob(&w);
    let revoked = block_on(w.bff.admin_revoke_all("alice", None)).unwrap();
    assert_eq!(revoked.sessions, 2);
    assert_eq!(revoked.revocation_failures, 0);
    assert!(!live(&w, &first) && !live(&w, &second));
    assert!(live(&w, &bob));
    assert_eq!(w.provider.revoked.lock().unwrap().len(), 2);
    assert_eq!(
        block_on(w.bff.admin_revoke_all("alice", None))
            .unwrap()
            .sessions,
        0
    );
}

#[test]
fn hostile_subjects_issuers_and_handles_are_refused_before_any_store_call() {
    let w = world();
    // A store that is down: refusals must come first, not as store errors.
    w.stores
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let long = "a".repeat(256);
    assert!(matches!(
        block_on(w.bff.admin_list_sessions("", None)),
        Err(AdminError::InvalidSubject)
    ));
    assert!(matches!(
        block_on(w.bff.admin_list_sessions(&long, None)),
        Err(AdminError::InvalidSubject)
    ));
    assert!(matches!(
        block_on(w.bff.admin_revoke_all("alice", Some(""))),
        Err(AdminError::InvalidIssuer)
    ));
    assert!(matches!(
        block_on(w.bff.admin_revoke_all("alice", Some(&long))),
        Err(AdminError::InvalidIssuer)
    ));
    for bad in [
        "",
        "0123456789abcdef0123456789abcde",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdef0",
        &"0".repeat(64),
        "../../../../etc/passwd/xxxxxxxxxx",
    ] {
        assert!(
            matches!(SessionHandle::parse(bad), Err(AdminError::InvalidHandle)),
            "{bad}"
        );
    }
    assert!(SessionHandle::parse("0123456789abcdef0123456789abcdef").is_ok());
    // A store outage is an error, never an empty list.
    assert!(matches!(
        block_on(w.bff.admin_list_sessions("alice", None)),
        Err(AdminError::Store(_))
    ));
}
