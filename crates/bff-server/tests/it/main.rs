//! Integration tests of `bff-server`: the real server on port 0 against a real OpenID Provider
//! (`oidc-provider`, from `e2e/idp`), the scriptable provider of `bff-test-op` for hostile ID
//! tokens and crafted logout tokens, and a real browser.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod admin;
mod browser;
mod browser_app;
mod config_cli;
mod connect;
mod flow;
mod hostile;
mod keycloak;
mod lifecycle;
mod load;
mod metrics;
mod negative;
mod operations;
mod provider_logout;
mod proxy;
mod stores;
mod support;
mod telemetry;
