//! Properties of the HTTP edge over hostile cookies: whatever the `Cookie` header holds, the
//! session endpoints answer "no session" (never a 500, never a session). Budget: 256 cases, or
//! `PROPTEST_CASES`.

use std::sync::Arc;

use bff_domain::testkit::FakeProvider;
use poem::http::header::HeaderValue;
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request};
use proptest::prelude::*;

use crate::support::{self, APP_ORIGIN, ISSUER};

/// Pieces of cookie headers that confuse cookie parsers.
const COOKIE_PIECES: &[&str] = &[
    "__Host-Http-bff=",
    "__Host-Http-bff",
    "bff=",
    "=",
    ";",
    "; ",
    ",",
    "\"",
    "%00",
    "%",
    "\\",
    " ",
    "\t",
    "=;",
    "__Host-Http-bff-login=",
    "$Version=1",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "../../etc/passwd",
    "\u{e9}",
];

fn cookie_header() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(COOKIE_PIECES).prop_map(|p| p.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn a_hostile_cookie_header_is_never_a_session_nor_an_error(raw in cookie_header()) {
        let Ok(value) = HeaderValue::from_bytes(&raw) else {
            // Bytes no HTTP/1.1 header can carry never reach the app.
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let provider = Arc::new(FakeProvider::new("main", ISSUER));
        let app = bff_http::app(
            support::bff(provider),
            Arc::new(support::settings(true)),
            Vec::new(),
            None,
            None,
        );
        let call = |method: Method, path: &str| {
            Request::builder()
                .method(method)
                .uri_str(path)
                .header("x-csrf", "1")
                .header(header::ORIGIN, APP_ORIGIN)
                .header(header::COOKIE, value.clone())
                .finish()
        };
        for (method, path, expected) in [
            (Method::GET, "/bff/user", StatusCode::UNAUTHORIZED),
            (Method::GET, "/bff/session", StatusCode::OK),
            (Method::POST, "/bff/refresh", StatusCode::UNAUTHORIZED),
        ] {
            let resp = runtime.block_on(async {
                app.call(call(method.clone(), path))
                    .await
                    .map(IntoResponse::into_response)
                    .unwrap_or_else(poem::Error::into_response)
            });
            let status = resp.status();
            let body = runtime.block_on(resp.into_body().into_string()).unwrap();
            prop_assert_eq!(status, expected, "{} {}: {}", method, path, body);
            if path == "/bff/session" {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(&json["isLoggedIn"], false, "{}", body);
            }
        }
    }
}
