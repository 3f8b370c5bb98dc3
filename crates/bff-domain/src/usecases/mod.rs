//! The use cases of the BFF, one module per concern, each an `impl Bff` block with its own
//! inputs, outputs and error enum:
//!
//! - [`login`]: start a login, complete it from the authorization response.
//! - [`session`]: read the current session and the user's claims.
//! - [`refresh`]: refresh the tokens (single-flight), hand out an access token.
//! - [`logout`]: end a session (RP-initiated logout), check the provider's return.
//! - [`provider_logout`]: end the sessions the provider says are over (back-channel logout
//!   token, front-channel `iss` and `sid`).
//! - [`maintenance`]: work no request asks for (sweeping expired sessions).
//! - [`proxy`]: the credential an allowed API proxy request carries upstream.
//! - [`admin`]: the operators' view of a user's sessions (list, revoke one, revoke all).
//! - [`admission`]: the per-request gate of hosts that renew session ids or bind sessions to
//!   their client.
//!
//! [`Bff`] itself only holds the ports, the providers, the policy and the process's cache of
//! client-credentials tokens; `bff-http` maps each error enum to a status and a problem type in
//! one place.

pub(crate) mod admin;
pub(crate) mod admission;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod maintenance;
pub(crate) mod provider_logout;
pub(crate) mod proxy;
pub(crate) mod refresh;
pub(crate) mod session;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::client::ClientBindingPolicy;
use crate::ids::ProviderId;
use crate::lifetime::{SessionLifetime, SessionRenewal};
use crate::ports::{
    Cipher, Clock, Event, Events, IdentityProvider, Lock, NoEvents, PendingLoginStore, Random,
    ReplayCache, SessionEndReason, SessionStore,
};

/// The configured identity providers, one of them the default.
#[derive(Clone)]
pub struct Providers {
    by_id: BTreeMap<ProviderId, Arc<dyn IdentityProvider>>,
    default: ProviderId,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("ids", &self.by_id.keys().collect::<Vec<_>>())
            .field("default", &self.default)
            .finish()
    }
}

/// The default provider is not among the configured ones.
#[derive(Debug, thiserror::Error)]
#[error("default provider {0} is not configured")]
pub struct UnknownDefaultProvider(pub ProviderId);

impl Providers {
    /// Indexes `providers` by id.
    ///
    /// # Errors
    /// [`UnknownDefaultProvider`] when `default` is not one of them.
    pub fn new(
        providers: Vec<Arc<dyn IdentityProvider>>,
        default: ProviderId,
    ) -> Result<Self, UnknownDefaultProvider> {
        let by_id: BTreeMap<_, _> = providers.into_iter().map(|p| (p.id().clone(), p)).collect();
        if !by_id.contains_key(&default) {
            return Err(UnknownDefaultProvider(default));
        }
        Ok(Self { by_id, default })
    }

    /// The provider named `id`, or the default for `None`.
    pub fn get(&self, id: Option<&ProviderId>) -> Option<&Arc<dyn IdentityProvider>> {
        self.by_id.get(id.unwrap_or(&self.default))
    }

    /// The providers whose issuer is `issuer` (several when one issuer serves several
    /// configured clients).
    pub fn with_issuer<'a>(
        &'a self,
        issuer: &'a str,
    ) -> impl Iterator<Item = &'a Arc<dyn IdentityProvider>> + 'a {
        self.by_id.values().filter(move |p| p.issuer() == issuer)
    }

    /// Every provider.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn IdentityProvider>> {
        self.by_id.values()
    }
}

/// The adapters the use cases run on.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects; nothing useful to print
pub struct BffPorts {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Pending logins.
    pub pending_logins: Arc<dyn PendingLoginStore>,
    /// Leases for single-flight refresh.
    pub locks: Arc<dyn Lock>,
    /// One-time values shared by every node (back-channel logout token `jti`s).
    pub replay: Arc<dyn ReplayCache>,
    /// The vault cipher.
    pub cipher: Arc<dyn Cipher>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn Random>,
}

/// Tunables of the use cases.
#[derive(Clone, Debug)]
pub struct BffPolicy {
    /// Session lifetimes.
    pub lifetime: SessionLifetime,
    /// How long a started login can be completed.
    pub pending_login_ttl: Duration,
    /// `redirect_uri` for redirect-style logins (the BFF's `/callback`).
    pub callback_url: String,
    /// `redirect_uri` for API-driven logins (an app page that posts its URL to `/login/end`).
    pub app_redirect_url: String,
    /// Refresh the access token when it expires within this margin.
    pub refresh_margin: Duration,
    /// Merge the provider's userinfo endpoint claims into `/userinfo` answers.
    pub fetch_userinfo: bool,
    /// Renew session ids once they are this old (`None`: never).
    pub renewal: Option<SessionRenewal>,
    /// Bind sessions to their client (off by default).
    pub client_binding: ClientBindingPolicy,
}

/// The BFF's use cases over its ports. Cheap to clone (every part is shared).
#[derive(Clone)]
pub struct Bff {
    ports: BffPorts,
    providers: Providers,
    policy: BffPolicy,
    /// Client-credentials tokens of this process, shared by every clone and session.
    client_tokens: Arc<proxy::ClientTokenCache>,
    /// Where the use cases tell what happened (metrics); [`NoEvents`] unless set.
    events: Arc<dyn Events>,
}

impl std::fmt::Debug for Bff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bff")
            .field("providers", &self.providers)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Bff {
    /// Builds the service.
    pub fn new(ports: BffPorts, providers: Providers, policy: BffPolicy) -> Self {
        Self {
            ports,
            providers,
            policy,
            client_tokens: Arc::default(),
            events: Arc::new(NoEvents),
        }
    }

    /// The service telling `events` what happens (logins, refreshes, sessions ended, ...).
    /// A builder step rather than a field of [`BffPorts`]: telemetry is optional, and every
    /// host that does not count anything keeps building `BffPorts` as before.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn Events>) -> Self {
        self.events = events;
        self
    }

    /// Where events go, for the HTTP layer's own (the API proxy's requests).
    pub fn events(&self) -> &dyn Events {
        self.events.as_ref()
    }

    /// Records that `count` sessions ended for `reason` (nothing for zero).
    pub(crate) fn sessions_ended(&self, reason: SessionEndReason, count: u64) {
        if count > 0 {
            self.events.record(Event::SessionsEnded { reason, count });
        }
    }

    /// The configured providers.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }
}
