//! Hostile request shapes at the edge: oversized bodies on the `/bff` endpoints, and CORS for
//! app origins that are not the BFF's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bff_domain::testkit::FakeProvider;
use bff_http::{BFF_BODY_LIMIT, HttpSettings};
use futures_util::StreamExt;
use poem::http::{Method, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::support::{self, APP_ORIGIN, ISSUER};

/// Another app origin on the BFF's site, served from its own host.
const SPA_ORIGIN: &str = "https://spa.app.example";

fn app(settings: HttpSettings) -> impl Endpoint {
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    bff_http::app(
        support::bff(provider),
        Arc::new(settings),
        Vec::new(),
        None,
        None,
    )
}

async fn call(app: &impl Endpoint, req: Request) -> Response {
    app.call(req)
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(poem::Error::into_response)
}

async fn problem_code(resp: Response) -> (StatusCode, String) {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().into_string().await.unwrap();
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{body}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    (status, json["code"].as_str().unwrap().to_owned())
}

fn login_start() -> poem::RequestBuilder {
    Request::builder()
        .method(Method::POST)
        .uri_str("/bff/login/start")
        .header("x-csrf", "1")
        .header(header::ORIGIN, APP_ORIGIN)
        .content_type("application/json")
}

/// A body of `chunks` chunks of 1 MiB that counts how many bytes the server pulled out of it.
fn counted_body(chunks: usize, pulled: Arc<AtomicUsize>) -> Body {
    let stream = futures_util::stream::iter(0..chunks).map(move |_| {
        pulled.fetch_add(1 << 20, Ordering::SeqCst);
        Ok::<_, std::io::Error>(vec![b' '; 1 << 20])
    });
    Body::from_bytes_stream(stream)
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_anything_is_read() {
    let app = app(support::settings(true));
    let pulled = Arc::new(AtomicUsize::new(0));
    let req = login_start()
        .header(header::CONTENT_LENGTH, (60usize << 20).to_string())
        .body(counted_body(60, pulled.clone()));
    let (status, code) = problem_code(call(&app, req).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code, "payload_too_large");
    assert_eq!(pulled.load(Ordering::SeqCst), 0, "the body was read");
}

#[tokio::test]
async fn a_streamed_oversized_body_is_refused_once_it_passes_the_limit() {
    let app = app(support::settings(true));
    let pulled = Arc::new(AtomicUsize::new(0));
    // No Content-Length: 60 MiB streamed in 1 MiB chunks.
    let req = login_start().body(counted_body(60, pulled.clone()));
    let (status, code) = problem_code(call(&app, req).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code, "payload_too_large");
    let read = pulled.load(Ordering::SeqCst);
    assert!(
        read <= BFF_BODY_LIMIT + (1 << 20),
        "read {read} bytes of a 60 MiB body"
    );
}

#[tokio::test]
async fn a_body_under_the_limit_still_works() {
    let app = app(support::settings(true));
    // Padding inside a JSON string keeps the body valid and just under the limit.
    let padding = " ".repeat(BFF_BODY_LIMIT - 64);
    let body = format!("{{\"returnUrl\": \"/\"{padding}}}");
    assert!(body.len() <= BFF_BODY_LIMIT);
    let resp = call(&app, login_start().body(body)).await;
    let status = resp.status();
    let text = resp.into_body().into_string().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("authorizationRequestUrl"), "{text}");
}

fn cors_settings() -> HttpSettings {
    let mut settings = support::settings(true);
    settings.app_origins = vec![APP_ORIGIN.into(), format!("{SPA_ORIGIN}/")];
    settings.cors = true;
    settings
}

fn preflight(origin: &str, method: &str, headers: &str) -> Request {
    Request::builder()
        .method(Method::OPTIONS)
        .uri_str("/bff/user")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers)
        .finish()
}

fn header_of(resp: &Response, name: header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_app_origin_gets_cors_with_credentials_and_never_a_wildcard() {
    let app = app(cors_settings());
    let resp = call(&app, preflight(SPA_ORIGIN, "POST", "x-csrf, content-type")).await;
    assert!(resp.status().is_success(), "{:?}", resp.status());
    assert_eq!(
        header_of(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(),
        Some(SPA_ORIGIN)
    );
    assert_eq!(
        header_of(&resp, header::ACCESS_CONTROL_ALLOW_CREDENTIALS).as_deref(),
        Some("true")
    );
    let allowed = header_of(&resp, header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap_or_default();
    assert!(allowed.contains("x-csrf"), "{allowed}");

    // The actual request: no session here, so a 401 problem, which the page may read.
    let resp = call(
        &app,
        Request::builder()
            .uri_str("/bff/user")
            .header("x-csrf", "1")
            .header(header::ORIGIN, SPA_ORIGIN)
            .finish(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_of(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(),
        Some(SPA_ORIGIN)
    );
    let vary = header_of(&resp, header::VARY).unwrap_or_default();
    assert!(vary.contains("Origin"), "{vary}");
}

#[tokio::test]
async fn other_origins_methods_and_headers_are_refused_at_the_preflight() {
    let app = app(cors_settings());
    for (origin, method, headers) in [
        ("https://evil.example", "GET", "x-csrf"),
        ("null", "GET", "x-csrf"),
        ("https://spa.app.example.evil.example", "GET", "x-csrf"),
        (SPA_ORIGIN, "CONNECT", "x-csrf"),
        (SPA_ORIGIN, "GET", "x-csrf, authorization"),
        (SPA_ORIGIN, "GET", "cookie"),
    ] {
        let resp = call(&app, preflight(origin, method, headers)).await;
        assert!(
            header_of(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "{origin} {method} {headers}"
        );
        let (status, code) = problem_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "cors_refused"),
            "{origin} {method} {headers}"
        );
    }
    // A request from a foreign page is refused whatever it asks for.
    let resp = call(
        &app,
        Request::builder()
            .method(Method::POST)
            .uri_str("/bff/logout")
            .header("x-csrf", "1")
            .header(header::ORIGIN, "https://evil.example")
            .finish(),
    )
    .await;
    let (status, code) = problem_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "cors_refused")
    );
}

#[tokio::test]
async fn without_cross_origin_apps_there_is_no_cors_at_all() {
    let app = app(support::settings(true));
    let resp = call(&app, preflight(APP_ORIGIN, "GET", "x-csrf")).await;
    assert!(header_of(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert!(!resp.status().is_success(), "{:?}", resp.status());
}
