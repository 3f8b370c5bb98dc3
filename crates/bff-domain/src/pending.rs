//! An authorization request in flight, between `/bff/login` and the callback.

use crate::ids::{ProviderId, SessionKey};
use crate::return_url::ReturnUrl;
use crate::time::Timestamp;
use crate::vault::Sealed;

/// What the BFF must remember about a login it started, keyed by `state` and taken exactly once.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingLogin {
    /// The `state` sent to the provider; the store key.
    pub state: String,
    /// The provider the login went to.
    pub provider: ProviderId,
    /// The PKCE code verifier, sealed with the `state` as associated data (see
    /// `crate::vault::seal_verifier`): stores never hold it in the clear.
    pub sealed_verifier: Sealed,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The `redirect_uri` sent, which the code exchange must repeat.
    pub redirect_uri: String,
    /// Where to send the browser afterwards.
    pub return_url: ReturnUrl,
    /// Hash of the login-binding cookie value of the browser that started the login.
    pub binding_hash: String,
    /// When the login started.
    pub created_at: Timestamp,
    /// After this time the login can no longer be completed.
    pub expires_at: Timestamp,
    /// For a login that connects its provider to an existing session (`connect`): that
    /// session's key (the hash, never the session id). `None` for a login that starts a session.
    pub connect_to: Option<SessionKey>,
}
