//! One scriptable OpenID Provider for the test suites (a dev-dependency only, never shipped).
//!
//! [`TestOp::start`] serves discovery, JWKS, authorization, token (authorization code, refresh
//! and client credentials), revocation and userinfo endpoints on `127.0.0.1:0` and stops when
//! the last handle is dropped. It signs ID tokens with the test-only keys in
//! `keys/test-keys.json`, records what clients sent it, and does
//! whatever its [`Script`] says, including misbehaving: tampered, mis-signed or mis-addressed ID
//! tokens, a wrong or missing `iss` in the authorization response (RFC 9207), OAuth errors,
//! slow answers, odd metadata. The real-provider flows use `oidc-provider` (`e2e/idp`); this
//! exists because a certified provider cannot be made to misbehave.
//!
//! - `keys`: the test keys ([`Signer`], [`fixture`]), signing, and the hashes a client derives
//!   ([`at_hash`], [`pkce_s256`]), computed here independently of the code under test.
//! - `script`: what the provider does ([`Script`]) and what it saw ([`TokenCall`]).
//! - `server`: the endpoints and [`TestOp`], the handle to a running provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: failing loudly is the point

mod keys;
mod script;
mod server;

pub use keys::{Signer, at_hash, b64, fixture, pkce_s256, rsa_private_pem, sign_raw};
pub use script::{IssParameter, IssueTime, Script, TokenCall};
pub use server::TestOp;

/// The fixed "now" of tests that inject time: by default tokens are issued relative to it.
pub const NOW: i64 = 1_800_000_000;
/// The client the ID tokens are addressed to by default (`aud`).
pub const CLIENT_ID: &str = "client";
/// A client secret for configurations of clients of this provider (it records, never checks).
pub const CLIENT_SECRET: &str = "very-secret-value";
/// The access token the token endpoint issues.
pub const ACCESS_TOKEN: &str = "opaque-access-token";
/// The access token the token endpoint issues for the client-credentials grant.
pub const CLIENT_ACCESS_TOKEN: &str = "opaque-client-access-token";
/// The refresh token the token endpoint issues.
pub const REFRESH_TOKEN: &str = "rt-2";
/// A refresh token the token endpoint refuses with `invalid_grant`.
pub const DEAD_REFRESH_TOKEN: &str = "dead";
/// The nonce of ID tokens for codes that did not come from the authorization endpoint.
pub const NONCE: &str = "nonce-1";
/// An authorization code for tests that call the token endpoint directly.
pub const CODE: &str = "the-authorization-code";
/// A PKCE verifier for tests that call the token endpoint directly.
pub const VERIFIER: &str = "the-pkce-verifier-0123456789-0123456789-abcdef";
/// A redirect URI for tests that call the token endpoint directly.
pub const REDIRECT_URI: &str = "https://app.example/bff/callback";
/// The `sub` of ID tokens and userinfo by default.
pub const SUBJECT: &str = "alice";
/// The provider's session id (`sid`) in its ID tokens.
pub const OP_SESSION_ID: &str = "op-session-1";
