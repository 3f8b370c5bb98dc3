//! bff-http tests at its boundary, in process over the domain's fakes: the committed OpenAPI
//! document equals the generated one, which endpoints are guarded by CSRF and a session, and the
//! cookies of logging out and of the provider's return, the API proxy end to end (`proxy`),
//! the admin API (`admin`), connection limits (`connections`) and hostile cookies (`properties`).
//!
//! `cargo xtask codegen` rewrites `openapi.json` (it runs the first test with
//! `BFF_UPDATE_OPENAPI=1`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod admin;
mod connections;
mod guards;
mod limits;
mod logout;
mod properties;
mod provider_logout;
mod proxy;
mod request_ids;
mod silent_login;
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

/// The admin API's document, committed beside the main one. Its name starts with the main
/// test's, so the filter `cargo xtask codegen` runs (`committed_openapi_document_is_current`,
/// with `BFF_UPDATE_OPENAPI=1`) rewrites both.
#[test]
fn committed_openapi_document_is_current_for_admin() {
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("admin-openapi.json");
    let mut generated = support::admin_spec();
    generated.push('\n');
    if std::env::var_os("BFF_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "crates/bff-http/admin-openapi.json is stale: run `cargo xtask codegen`"
    );
    assert!(generated.contains("\"/sessions\""));
    assert!(generated.contains("\"/sessions/{handle}\""));
    assert!(generated.contains("\"bearer\""));
}

/// Hostile paths against the static app never answer with the server's own file paths (or any
/// other internal detail) in the problem.
#[tokio::test]
async fn refused_requests_never_show_internal_paths() {
    use poem::{Endpoint, Request};
    use std::sync::Arc;

    let dir = std::env::temp_dir().join(format!("bff-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>app</p>").unwrap();
    let provider = Arc::new(bff_domain::testkit::FakeProvider::new(
        "main",
        "https://idp.example",
    ));
    let app = bff_http::app(
        support::bff(provider),
        Arc::new(support::settings(true)),
        Vec::new(),
        Some(dir.clone()),
        None,
    );
    let shown = dir.display().to_string();
    for path in [
        "/../../etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/nope/../../secret",
        "/index.html/..%5c..%5cx",
        "/%00",
    ] {
        let resp = app
            .call(Request::builder().uri_str(path).finish())
            .await
            .map(poem::IntoResponse::into_response)
            .unwrap_or_else(poem::Error::into_response);
        let status = resp.status();
        let body = resp.into_body().into_string().await.unwrap();
        assert!(
            !body.contains(&shown) && !body.contains("/tmp") && !body.contains("No such file"),
            "{path}: {status} {body}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
