//! bff-oidc against the scriptable provider of `bff-test-op` on loopback (one test binary, one
//! module per concern): discovery rules and what the metadata decides, the code exchange with
//! hostile ID tokens, JWKS rotation with a rate-limited refetch, refresh, revocation, userinfo,
//! end-session URLs, the client-credentials grant and `private_key_jwt` client authentication.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod deferred;
mod discovery;
mod jwks;
mod login;
mod op;
mod private_ca;
mod private_key_jwt;
mod session;
