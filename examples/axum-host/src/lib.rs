//! A second host of `bff-domain`, on axum instead of poem: proof that the BFF's rules and use
//! cases do not belong to `bff-server`.
//!
//! What it shows: the same adapters `bff-server` wires (`bff-oidc`'s `OidcProvider` through
//! discovery, `bff-store-memory`, `bff-crypto`'s `VaultCipher` and `SystemRandom`) plus one of
//! its own (a tokio clock, [`TokioClock`]) are put into [`bff_domain::Bff`] by [`build_bff`],
//! and [`app`] maps four use cases to routes with a small HTTP layer of its own (its own cookie
//! code, CSRF extractor and problem documents), without `bff-http` or `bff-server`:
//!
//! | route | does |
//! | --- | --- |
//! | `GET /login?returnUrl=` | `302` to the provider, sets the login-binding cookie (`SameSite=Lax`) |
//! | `GET /callback` | completes the login, sets the `HttpOnly; SameSite=Strict` session cookie, moves on to the return URL through a same-origin page |
//! | `GET /user` | the ID token's claims as JSON; needs `x-csrf: 1`; `401` problem without a session |
//! | `POST /logout` | ends the session, answers `{"logoutUrl": …}` (the provider's end-session URL); needs `x-csrf: 1` and the site's `Origin` |
//!
//! Every refusal is `application/problem+json` with the same stable `code`s as `bff-server`
//! (`csrf_failed`, `no_session`, `state_mismatch`, `login_binding_missing`, …).
//!
//! What it leaves out, on purpose (`bff-server` has them): durable or shared stores (sessions
//! live in process memory and end with it), several providers, the API-driven login, refresh and
//! the API proxy, the provider's return after logout (no `post_logout_redirect_uri`, so the
//! provider shows its own "signed out" page and there is no logout `state` to check),
//! configuration files, readiness checks and the OpenAPI document.
//!
//! Run it by hand against the local provider (from the repository root, after
//! `npm ci --prefix e2e/idp`):
//!
//! ```sh
//! IDP_PORT=9090 IDP_REDIRECT_URIS=http://127.0.0.1:3000/callback node e2e/idp/server.mjs &
//! AXUM_HOST_ISSUER=http://127.0.0.1:9090 AXUM_HOST_CLIENT_ID=bff-basic \
//!   AXUM_HOST_CLIENT_SECRET=bff-basic-secret cargo run -p bff-example-axum
//! # open http://127.0.0.1:3000/login in a browser and sign in as alice / wonderland, then:
//! #   in the browser's console: fetch('/user', {headers: {'x-csrf': '1'}}).then(r => r.json())
//! ```
//!
//! `AXUM_HOST_PUBLIC_URL` (default `http://127.0.0.1:3000`) is where browsers reach the host, and
//! `AXUM_HOST_LISTEN` (default `127.0.0.1:3000`) the socket it binds; `AXUM_HOST_VAULT_KEY`
//! (32 bytes, base64) is optional, a fresh key is drawn per process otherwise. Plain `http` is
//! accepted for loopback addresses only; elsewhere the public URL must be `https`, and the
//! cookies are then `Secure` with the `__Host-` prefix.

mod clock;
mod cookies;
mod csrf;
mod problem;
mod routes;
mod site;
mod wiring;

pub use clock::TokioClock;
pub use routes::app;
pub use site::{InvalidPublicUrl, PublicSite};
pub use wiring::{HostConfig, WiringError, build_bff};
