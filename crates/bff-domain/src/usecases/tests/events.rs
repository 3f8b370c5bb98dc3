//! What the use cases tell the [`Events`](crate::ports::Events) port: one event per outcome,
//! with only label-safe values (provider ids, reason codes, counts).

use std::sync::{Arc, Mutex};

use super::*;
use crate::ports::{Event, Events};

/// Every event as a short line (`refresh main ok`), in order. Shared with the provider logout
/// tests.
#[derive(Default)]
pub(in crate::usecases) struct Recorded(Mutex<Vec<String>>);

impl Events for Recorded {
    fn record(&self, event: Event<'_>) {
        let line = match event {
            Event::LoginStarted { provider } => format!("login_started {provider}"),
            Event::LoginCompleted { provider } => format!("login_completed {provider}"),
            Event::LoginFailed { reason } => format!("login_failed {reason}"),
            Event::Refresh { provider, outcome } => {
                format!("refresh {provider} {}", outcome.as_str())
            }
            Event::SessionCreated { provider } => format!("session_created {provider}"),
            Event::SessionsEnded { reason, count } => {
                format!("sessions_ended {} {count}", reason.as_str())
            }
            Event::ConnectionsEnded { reason, count } => {
                format!("connections_ended {} {count}", reason.as_str())
            }
            Event::BackchannelLogout { outcome } => format!("backchannel_logout {outcome}"),
            Event::ProxyRequest { route, status, .. } => format!("proxy {route} {status}"),
            Event::JwksRefetched { provider, ok } => format!("jwks {provider} {ok}"),
            Event::EndpointRequest {
                endpoint, status, ..
            } => format!("endpoint {endpoint} {status}"),
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Recorded {
    /// The lines recorded since the last call.
    pub(in crate::usecases) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub(super) fn recorded_world() -> (World, Arc<Recorded>) {
    let mut w = world();
    let events = Arc::new(Recorded::default());
    w.bff = w.bff.clone().with_events(events.clone());
    (w, events)
}

#[test]
fn a_login_a_refresh_and_a_logout_are_told() {
    let (w, events) = recorded_world();
    let id = login(&w);
    assert_eq!(
        events.take(),
        [
            "login_started main",
            "login_completed main",
            "session_created main"
        ]
    );
    block_on(w.bff.refresh(&id)).unwrap();
    assert_eq!(events.take(), ["refresh main ok"]);
    block_on(w.bff.logout(&id, None)).unwrap();
    assert_eq!(events.take(), ["sessions_ended logout 1"]);
}

#[test]
fn a_failed_login_is_told_by_its_reason_only() {
    let (w, events) = recorded_world();
    let (started, _) = start(&w, "/app");
    events.take();
    let forged = CompleteLogin {
        state: "forged-state-value".into(),
        ..callback(&started, "forged-state-value")
    };
    block_on(w.bff.complete_login(forged)).unwrap_err();
    assert_eq!(events.take(), ["login_failed state_mismatch"]);
}

#[test]
fn a_second_login_in_the_same_browser_ends_the_first_session_as_replaced() {
    let (w, events) = recorded_world();
    let first = login(&w);
    let (started, state) = start(&w, "/app");
    events.take();
    let again = CompleteLogin {
        previous_session: Some(first),
        ..callback(&started, &state)
    };
    block_on(w.bff.complete_login(again)).unwrap();
    assert_eq!(
        events.take(),
        [
            "sessions_ended replaced 1",
            "login_completed main",
            "session_created main"
        ]
    );
}

#[test]
fn concurrent_refreshes_are_one_refresh_and_one_coalesced() {
    let (w, events) = recorded_world();
    let id = login(&w);
    events.take();
    w.provider.script.lock().unwrap().refresh_yields = 3;
    let (first, second) =
        block_on(async { futures_util::join!(w.bff.refresh(&id), w.bff.refresh(&id)) });
    first.unwrap();
    second.unwrap();
    let mut told = events.take();
    told.sort();
    assert_eq!(told, ["refresh main coalesced", "refresh main ok"]);
}

#[test]
fn a_refused_refresh_is_told_with_the_session_it_ended() {
    let (w, events) = recorded_world();
    let id = login(&w);
    events.take();
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    block_on(w.bff.refresh(&id)).unwrap_err();
    assert_eq!(
        events.take(),
        ["refresh main refused", "sessions_ended refresh_refused 1"]
    );
}

#[test]
fn a_refresh_that_waited_too_long_is_a_failed_one() {
    let (w, events) = recorded_world();
    let id = login(&w);
    events.take();
    let lease = format!("refresh:{}:main", id.key().as_str());
    w.stores
        .leases
        .lock()
        .unwrap()
        .insert(lease, "other-node".into());
    block_on(w.bff.refresh(&id)).unwrap_err();
    assert_eq!(events.take(), ["refresh main failed"]);
}

#[test]
fn a_malformed_back_channel_logout_is_told_as_an_invalid_token() {
    let (w, events) = recorded_world();
    block_on(w.bff.backchannel_logout("not-a-jwt")).unwrap_err();
    assert_eq!(events.take(), ["backchannel_logout invalid_token"]);
}

#[test]
fn swept_sessions_are_told_as_expired() {
    let (w, events) = recorded_world();
    login(&w);
    login(&w);
    events.take();
    w.clock.advance(Duration::from_secs(7200));
    block_on(w.bff.sweep_expired(1)).unwrap();
    assert_eq!(events.take(), ["sessions_ended expired 2"]);
}
