//! The telemetry port: what happened, told to whoever counts it (the server's Prometheus
//! registry), without the domain knowing about metrics.
//!
//! An [`Event`] carries only values that are safe as metric labels: configured names (the
//! provider's id, a route's configured path prefix), an endpoint's path from a fixed list,
//! stable reason codes and outcomes, counts and durations. Never a user id, session id or key,
//! token, or a raw request path, so no recorder can leak one by accident. [`Events::record`] is
//! synchronous and must not block: the use cases call it on their hot paths.

use std::time::Duration;

use crate::ids::ProviderId;

/// Receives the domain's events. The default is [`NoEvents`].
pub trait Events: Send + Sync {
    /// Records `event`. Must be cheap and never block or fail.
    fn record(&self, event: Event<'_>);
}

/// Records nothing: the default of [`crate::Bff`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl Events for NoEvents {
    fn record(&self, _event: Event<'_>) {}
}

/// Something worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A login (or connect) was started: its pending login is stored.
    LoginStarted {
        /// The provider it goes to.
        provider: &'a ProviderId,
    },
    /// A login completed: a session was created, or a provider connected to one.
    LoginCompleted {
        /// The provider that authenticated the user.
        provider: &'a ProviderId,
    },
    /// A login (start or completion) failed.
    LoginFailed {
        /// A stable code: [`crate::LoginError::reason`].
        reason: &'static str,
    },
    /// A refresh of a session's tokens at `provider` ended.
    Refresh {
        /// The provider.
        provider: &'a ProviderId,
        /// How.
        outcome: RefreshResult,
    },
    /// A session was created.
    SessionCreated {
        /// The provider the user logged in with.
        provider: &'a ProviderId,
    },
    /// `count` sessions ended for `reason`.
    SessionsEnded {
        /// Why.
        reason: SessionEndReason,
        /// How many.
        count: u64,
    },
    /// `count` connections (`Session::connections`) ended for `reason`, their sessions kept:
    /// a provider the sessions only connected logged the user out.
    ConnectionsEnded {
        /// Why.
        reason: SessionEndReason,
        /// How many.
        count: u64,
    },
    /// A back-channel logout request was answered.
    BackchannelLogout {
        /// `ok`, or a stable code: [`crate::BackchannelLogoutError::reason`].
        outcome: &'static str,
    },
    /// A provider's signing keys were fetched again because a token named an unknown `kid`.
    JwksRefetched {
        /// The provider.
        provider: &'a ProviderId,
        /// Whether the fetch succeeded (a failed one keeps the old keys).
        ok: bool,
    },
    /// An API proxy request was answered (the status the browser got).
    ProxyRequest {
        /// The route's configured path prefix, never the request's path.
        route: &'a str,
        /// The HTTP status code answered.
        status: u16,
        /// From the request's arrival to the answer's headers.
        elapsed: Duration,
    },
    /// A request to one of the BFF's own endpoints (`/bff/...`) was answered.
    EndpointRequest {
        /// The endpoint's path below the BFF's prefix (`/user`), from the HTTP adapter's fixed
        /// list, or `other` for a path that is none of them: never the request's own path.
        endpoint: &'static str,
        /// The HTTP status code answered.
        status: u16,
        /// From the request's arrival to the answer's headers.
        elapsed: Duration,
    },
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshResult {
    /// The provider issued new tokens.
    Refreshed,
    /// The provider refused the refresh token (the grant is dead).
    Refused,
    /// The provider could not be reached or answered wrongly, or waiting for another
    /// request's refresh took too long.
    Failed,
    /// Another request's refresh (on any node) served this one: no refresh token was spent.
    Coalesced,
}

impl RefreshResult {
    /// The label value: `ok`, `refused`, `failed`, `coalesced`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "ok",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Coalesced => "coalesced",
        }
    }
}

/// Why sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEndReason {
    /// The user logged out.
    Logout,
    /// The browser logged in again; its old session went.
    Replaced,
    /// The provider refused the refresh token.
    RefreshRefused,
    /// The session's tokens no longer open (vault key removed, corrupt record).
    TokensUnreadable,
    /// A back-channel logout token named it.
    BackchannelLogout,
    /// A front-channel logout request named it.
    FrontchannelLogout,
    /// An operator revoked it through the admin API.
    Admin,
    /// It expired and was swept.
    Expired,
}

impl SessionEndReason {
    /// The label value, snake case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Replaced => "replaced",
            Self::RefreshRefused => "refresh_refused",
            Self::TokensUnreadable => "tokens_unreadable",
            Self::BackchannelLogout => "backchannel_logout",
            Self::FrontchannelLogout => "frontchannel_logout",
            Self::Admin => "admin",
            Self::Expired => "expired",
        }
    }
}
