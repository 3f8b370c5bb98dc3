//! bff-http tests at its boundary: the committed OpenAPI document equals the generated one, and
//! the API proxy end to end (`proxy`).
//!
//! `cargo xtask codegen` rewrites `openapi.json` (it runs this test with `BFF_UPDATE_OPENAPI=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod proxy;

use std::sync::Arc;
use std::time::Duration;

use bff_domain::testkit::{FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom};
use bff_domain::{Bff, BffPolicy, BffPorts, ProviderId, Providers, SessionLifetime};
use bff_http::HttpSettings;

fn generated_spec() -> String {
    let stores = Arc::new(FakeStores::default());
    let bff = Bff::new(
        BffPorts {
            sessions: stores.clone(),
            pending_logins: stores.clone(),
            locks: stores,
            cipher: Arc::new(FakeCipher),
            clock: Arc::new(FixedClock::at(0)),
            random: Arc::new(SeededRandom::new(0)),
        },
        Providers::new(
            vec![Arc::new(FakeProvider::new("main", "https://idp.example"))],
            ProviderId::parse("main").unwrap(),
        )
        .unwrap(),
        BffPolicy {
            lifetime: SessionLifetime::default(),
            pending_login_ttl: Duration::from_secs(600),
            callback_url: "https://app.example/bff/callback".into(),
            app_redirect_url: "https://app.example/".into(),
            refresh_margin: Duration::from_secs(60),
            fetch_userinfo: false,
        },
    );
    let settings = HttpSettings {
        prefix: "/bff".into(),
        session_cookie: "__Host-Http-bff".into(),
        binding_cookie: "__Host-Http-bff-login".into(),
        secure_cookies: true,
        app_origins: vec!["https://app.example".into()],
    };
    let mut spec = bff_http::openapi_service(Arc::new(bff), Arc::new(settings)).spec();
    spec.push('\n');
    spec
}

#[test]
fn committed_openapi_document_is_current() {
    // The run-time value: a binary built in another checkout sharing CARGO_TARGET_DIR would
    // otherwise compare against that checkout's file.
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("openapi.json");
    let generated = generated_spec();
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
