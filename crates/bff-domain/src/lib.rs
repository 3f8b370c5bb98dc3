//! The rules of the Backend-for-Frontend, free of any I/O runtime.
//!
//! `bff-domain` owns the model (sessions, pending logins, token sets), the rules (session
//! lifetimes, return-URL safety, sealing tokens to their session) and the use cases on [`Bff`],
//! one module per concern (login, session, refresh, logout, provider-initiated logout,
//! maintenance, proxy, admin). Everything it needs from
//! the outside world comes through the traits in [`ports`]: stores, the identity provider, the
//! cipher, the clock and randomness. Adapters implement them in other crates; a host (such as
//! `bff-server`, or the example in `examples/`) wires them and calls the use cases.
//!
//! Architecture invariant: this crate depends on no async runtime, database driver, HTTP library or
//! OAuth library; a tidy test enforces the dependency allowlist. Its public surface is the list
//! of re-exports below plus [`ports`] (and `testkit` behind its feature); the modules are private.
//!
//! ```
//! # use std::{sync::Arc, time::Duration};
//! # use bff_domain::testkit::{FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom};
//! use bff_domain::{Bff, BffPolicy, BffPorts, CompleteLogin, LoginStyle, ProviderId, Providers,
//!     ReturnUrl, SessionLifetime, StartLogin};
//!
//! # futures_executor::block_on(async {
//! // Adapters: here the testkit's in-memory fakes; a real host passes its stores, cipher,
//! // clock, randomness and OIDC providers.
//! let stores = Arc::new(FakeStores::default());
//! let provider = Arc::new(FakeProvider::new("main", "https://idp.example"));
//! let bff = Bff::new(
//!     BffPorts {
//!         sessions: stores.clone(),
//!         pending_logins: stores.clone(),
//!         locks: stores.clone(),
//!         replay: stores.clone(),
//!         cipher: Arc::new(FakeCipher),
//!         clock: Arc::new(FixedClock::at(1_700_000_000)),
//!         random: Arc::new(SeededRandom::new(7)),
//!     },
//!     Providers::new(vec![provider], ProviderId::parse("main").unwrap()).unwrap(),
//!     BffPolicy {
//!         lifetime: SessionLifetime::default(),
//!         pending_login_ttl: Duration::from_secs(600),
//!         callback_url: "https://app.example/bff/callback".into(),
//!         app_redirect_url: "https://app.example/".into(),
//!         refresh_margin: Duration::from_secs(60),
//!         fetch_userinfo: false,
//!         renewal: None,
//!         client_binding: Default::default(),
//!     },
//! );
//!
//! // 1. Start: send the browser to `authorization_url`, set the binding cookie.
//! let started = bff
//!     .start_login(StartLogin {
//!         provider: None,
//!         return_url: ReturnUrl::parse_or_root(Some("/orders")).unwrap(),
//!         prompt: None,
//!         style: LoginStyle::Redirect,
//!     })
//!     .await
//!     .unwrap();
//! let state = started.authorization_url.split("state=").nth(1).unwrap();
//! let state = state.split('&').next().unwrap().to_owned();
//!
//! // 2. The provider redirects back with `code` and `state`; the browser sends its binding.
//! let done = bff
//!     .complete_login(CompleteLogin {
//!         state,
//!         code: Some("the-code".into()),
//!         issuer: Some("https://idp.example".into()),
//!         binding: Some(started.binding),
//!         ..CompleteLogin::default()
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(done.return_url.as_str(), "/orders");
//!
//! // 3. The session cookie carries the new session id (`None` only after a `start_connect`,
//! //    which joins an existing session); the app reads the user through it.
//! let session_id = done.session_id.unwrap();
//! let view = bff.current_session(&session_id).await.unwrap();
//! assert_eq!(view.claims.subject(), Some("alice"));
//! # });
//! ```

pub mod allowlist;
mod claims;
mod client;
mod clock;
mod events;
mod ids;
mod lifetime;
mod pending;
pub mod ports;
mod random;
mod return_url;
mod secret;
mod session;
mod time;
mod tokens;
mod usecases;
mod vault;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use claims::{Claims, ClaimsNotAnObject};
pub use client::{
    BindingCheck, BindingMode, ClientBinding, ClientBindingPolicy, ClientContext, InvalidPrefix,
    user_agent_summary,
};
pub use ids::{
    InvalidPrompt, InvalidProviderId, LoginBinding, MalformedCredential, PostLogoutState, Prompt,
    ProviderId, RenewalNonce, SessionId, SessionKey,
};
pub use lifetime::{Expiry, SessionLifetime, SessionRenewal};
pub use pending::PendingLogin;
pub use return_url::{ReturnUrl, UnsafeReturnUrl};
pub use secret::Secret;
pub use session::{Connection, RenewalAlias, Session};
pub use time::Timestamp;
pub use tokens::TokenSet;
pub use usecases::admin::{AdminError, Revoked, SessionHandle, SessionSummary};
pub use usecases::admission::{Admission, AdmissionError};
pub use usecases::login::{
    CompleteLogin, CompletedLogin, LoginError, LoginStyle, StartLogin, StartedLogin,
};
pub use usecases::logout::{LogoutError, LogoutOutcome};
pub use usecases::maintenance::SweepOutcome;
pub use usecases::provider_logout::{
    BackchannelLogoutError, FrontchannelLogoutError, FrontchannelLogoutOutcome,
    LOGOUT_TOKEN_LIFETIME_WITHOUT_EXP, ProviderLogoutOutcome,
};
pub use usecases::proxy::{ProxyError, UpstreamCredential};
pub use usecases::refresh::{RefreshError, RefreshOutcome};
pub use usecases::session::{SessionError, SessionView};
pub use usecases::{Bff, BffPolicy, BffPorts, Providers, UnknownDefaultProvider};
pub use vault::Sealed;
