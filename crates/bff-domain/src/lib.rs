//! The rules of the Backend-for-Frontend, free of any I/O runtime.
//!
//! `bff-domain` owns the model (sessions, pending logins, token sets), the rules (session lifetimes,
//! return-URL safety, sealing tokens to their session) and the use cases (`start_login`,
//! `complete_login`, `current_session`, `userinfo`, `refresh`, `logout`) on [`Bff`]. Everything it
//! needs from the outside world comes through the traits in [`ports`]: stores, the identity
//! provider, the cipher, the clock and randomness. Adapters implement them in other crates.
//!
//! Architecture invariant: this crate depends on no async runtime, database driver, HTTP library or
//! OAuth library; a tidy test enforces the dependency allowlist.

pub mod allowlist;
pub mod claims;
pub mod ids;
pub mod lifetime;
pub mod pending;
pub mod ports;
pub mod return_url;
pub mod secret;
pub mod service;
pub mod session;
pub mod time;
pub mod tokens;
pub mod vault;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use claims::Claims;
pub use ids::{LoginBinding, Prompt, ProviderId, SessionId, SessionKey};
pub use lifetime::SessionLifetime;
pub use pending::PendingLogin;
pub use return_url::ReturnUrl;
pub use secret::Secret;
pub use service::{
    Bff, BffPolicy, CompleteLogin, CompletedLogin, LoginError, LogoutError, LogoutOutcome,
    Providers, RefreshError, RefreshOutcome, SessionError, SessionView, StartLogin, StartedLogin,
};
pub use session::{Sealed, Session};
pub use time::Timestamp;
pub use tokens::TokenSet;
