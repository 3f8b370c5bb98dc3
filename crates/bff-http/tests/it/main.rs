//! bff-http tests at its boundary, in process over the domain's fakes: the committed OpenAPI
//! document equals the generated one, which endpoints are guarded by CSRF and a session, and the
//! cookies of logging out and of the provider's return, and the API proxy end to end (`proxy`).
//!
//! `cargo xtask codegen` rewrites `openapi.json` (it runs the first test with
//! `BFF_UPDATE_OPENAPI=1`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod guards;
mod logout;
mod proxy;
mod support;

#[test]
fn committed_openapi_document_is_current() {
    // The run-time value: a binary built in another checkout sharing CARGO_TARGET_DIR would
    // otherwise compare against that checkout's file.
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("openapi.json");
    let mut generated = support::spec();
    generated.push('\n');
    if std::env::var_os("BFF_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "crates/bff-http/openapi.json is stale: run `cargo xtask codegen`"
    );
    for path in [
        "/login",
        "/callback",
        "/user",
        "/logout",
        "/logout/callback",
        "/login/start",
        "/login/end",
        "/session",
        "/userinfo",
        "/refresh",
    ] {
        assert!(generated.contains(&format!("\"{path}\"")), "{path} missing");
    }
    assert!(generated.contains("application/problem+json"));
}
