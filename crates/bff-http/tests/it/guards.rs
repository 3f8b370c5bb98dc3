//! Which endpoints check CSRF and which need a session, read from the OpenAPI document and from
//! what each endpoint does, against the table the security model expects.
//!
//! Every operation of the document must be in the table, so a new endpoint cannot skip the
//! decision; dropping `CsrfChecked` or `RequiredSession` from a handler changes what it answers
//! and fails the comparison.

use std::collections::BTreeMap;

use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{APP_ORIGIN, Browser, spec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Guards {
    csrf: bool,
    session_required: bool,
}

const fn guards(csrf: bool, session_required: bool) -> Guards {
    Guards {
        csrf,
        session_required,
    }
}

/// Every endpoint that is not a top-level navigation checks CSRF. Navigations (`GET /login`,
/// the provider's returns, the logout link guarded by its own value) cannot carry the header.
const EXPECTED: &[(&str, &str, Guards)] = &[
    ("GET", "/login", guards(false, false)),
    ("GET", "/callback", guards(false, false)),
    // The navigations of a hidden iframe.
    ("GET", "/silent-login", guards(false, false)),
    ("GET", "/silent-login/callback", guards(false, false)),
    ("GET", "/logout", guards(false, false)),
    ("GET", "/logout/callback", guards(false, false)),
    ("GET", "/user", guards(true, true)),
    ("GET", "/session", guards(true, false)),
    ("GET", "/userinfo", guards(true, true)),
    ("POST", "/refresh", guards(true, true)),
    ("POST", "/logout", guards(true, false)),
    ("POST", "/login/start", guards(true, false)),
    ("POST", "/login/end", guards(true, false)),
    // Called by the provider, not the browser: the signed logout token (back-channel) or the
    // provider session id (front-channel) is what they act on, never the cookie.
    ("POST", "/backchannel-logout", guards(false, false)),
    ("GET", "/frontchannel-logout", guards(false, false)),
];

/// A well-formed body for the endpoints that read one, so what is probed is the guard.
fn sample_body(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/login/start") => Some(json!({"returnUrl": "/"})),
        ("POST", "/login/end") => Some(json!({"pageUrl": format!("{APP_ORIGIN}/")})),
        _ => None,
    }
}

/// `(method, path, declares the csrf security scheme)` for every operation of the document.
fn operations() -> Vec<(String, String, bool)> {
    let spec: Value = serde_json::from_str(&spec()).unwrap();
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let csrf = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|requirement| requirement.get("csrf").is_some());
            out.push((method.to_uppercase(), path.clone(), csrf));
        }
    }
    out
}

async fn probe(
    browser: &Browser,
    method: &str,
    path: &str,
    csrf_header: bool,
) -> (StatusCode, String) {
    let mut headers = vec![("origin", APP_ORIGIN), ("accept", "application/json")];
    if csrf_header {
        headers.push(("x-csrf", "1"));
    }
    let answer = browser
        .send(
            Method::from_bytes(method.as_bytes()).unwrap(),
            &format!("/bff{path}"),
            &headers,
            sample_body(method, path),
        )
        .await;
    let code = serde_json::from_str::<Value>(&answer.body)
        .ok()
        .and_then(|body| body["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (answer.status, code)
}

#[tokio::test]
async fn csrf_and_session_guards_are_where_the_security_model_wants_them() {
    let mut actual = BTreeMap::new();
    for (method, path, declared_csrf) in operations() {
        // Without the header: refused as CSRF, or not about CSRF at all.
        let browser = Browser::new(true);
        let (status, code) = probe(&browser, &method, &path, false).await;
        let refuses_forgery = status == StatusCode::FORBIDDEN && code == "csrf_failed";
        assert_eq!(
            declared_csrf, refuses_forgery,
            "{method} {path}: the OpenAPI document and the behaviour disagree about CSRF \
             ({status} {code})"
        );

        // With the header but no session cookie, then with a hostile one.
        let (status, code) = probe(&browser, &method, &path, true).await;
        let needs_session = status == StatusCode::UNAUTHORIZED && code == "no_session";
        let browser = Browser::new(true);
        browser.set_cookie(&browser.settings.session_cookie, "..%2F..%2Fetc%2Fpasswd");
        let (status, code) = probe(&browser, &method, &path, true).await;
        assert_eq!(
            needs_session,
            status == StatusCode::UNAUTHORIZED && code == "no_session",
            "{method} {path}: a malformed session cookie must count as none ({status} {code})"
        );

        actual.insert((method, path), guards(refuses_forgery, needs_session));
    }
    let expected: BTreeMap<_, _> = EXPECTED
        .iter()
        .map(|(method, path, guards)| ((method.to_string(), path.to_string()), *guards))
        .collect();
    assert_eq!(
        actual, expected,
        "the endpoints' guards differ from the table (or an endpoint is missing from it)"
    );
}

/// The guards hold for a logged-in browser too: a forged request changes nothing.
#[tokio::test]
async fn a_forged_request_with_a_live_session_is_refused_before_anything_changes() {
    let browser = Browser::new(true);
    browser.log_in().await;
    for (method, path, guards) in EXPECTED.iter().filter(|(_, _, g)| g.csrf) {
        for origin in ["https://evil.example", "null"] {
            let mut headers = vec![("x-csrf", "1"), ("origin", origin)];
            if *method == "GET" {
                // Safe methods are guarded by the header alone.
                headers = vec![("origin", origin)];
            }
            let answer = browser
                .send(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &format!("/bff{path}"),
                    &headers,
                    sample_body(method, path),
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{method} {path} {guards:?}: {}",
                answer.body
            );
            assert_eq!(answer.problem_code(), "csrf_failed");
            assert!(
                answer.headers.get("set-cookie").is_none(),
                "{method} {path} changed cookies"
            );
        }
    }
    // Still logged in.
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
}
