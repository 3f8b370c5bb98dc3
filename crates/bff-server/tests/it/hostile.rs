//! Hostile input against the real server, one table: each request, written byte for byte over
//! raw TCP, gets the expected status and (where the app answers) problem+json with its stable
//! code; no answer carries an internal path, a driver message or a stack; and the server still
//! serves afterwards.
//!
//! A second test puts the stores out of reach: `503 store_unavailable`, and neither it nor
//! `/readyz` carries the driver's words.
//!
//! Requests hyper refuses before any application code runs (a head it cannot parse, or larger
//! than its buffer) get hyper's own bare answer; the table says which.
//!
//! Every loop here is bounded in count and time, and all traffic is on loopback.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// One hostile request and what it must get.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    /// The problem's `code`; `None` for hyper's own bare answers.
    code: Option<&'static str>,
}

fn head(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: bff.example\r\n{headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn post(target: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: bff.example\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn cases(base: &str) -> Vec<Case> {
    let origin = format!("Origin: {base}\r\n");
    let csrf = "x-csrf: 1\r\n";
    let json = "Content-Type: application/json\r\n";
    vec![
        // The static files refuse a path leaving their folder; poem's refusal names the file
        // with the server's own path, which the answer must not show.
        Case {
            name: "static path traversal",
            request: head("/../../../../etc/passwd", ""),
            status: 400,
            code: Some("invalid_request"),
        },
        Case {
            name: "static path traversal, encoded",
            request: head("/%2e%2e/%2e%2e/%2e%2e/etc/passwd", ""),
            status: 400,
            code: Some("invalid_request"),
        },
        Case {
            name: "static path traversal, encoded slash",
            request: head("/..%2f..%2f..%2fetc%2fpasswd", ""),
            status: 400,
            code: Some("invalid_request"),
        },
        Case {
            name: "static path traversal, backslashes",
            request: head("/..%5c..%5c..%5cetc%5cpasswd", ""),
            status: 404,
            code: Some("not_found"),
        },
        Case {
            name: "proxy path traversal",
            request: head("/api/things/..%2f..%2fadmin", csrf),
            status: 400,
            code: Some("route_not_allowed"),
        },
        Case {
            name: "proxy double-encoded dot segment",
            request: head("/api/things/%252e%252e/admin", csrf),
            status: 400,
            code: Some("route_not_allowed"),
        },
        Case {
            name: "absolute-form target",
            request: head("http://evil.example/api/things/x", csrf),
            status: 400,
            code: Some("route_not_allowed"),
        },
        Case {
            name: "1 MB header",
            request: head("/bff/user", &format!("x-big: {}\r\n", "a".repeat(1_000_000))),
            status: 431,
            code: Some("headers_too_large"),
        },
        Case {
            name: "300 headers, past the 100 the server parses",
            request: head(
                "/bff/user",
                &(0..300).map(|i| format!("x-h{i}: v\r\n")).collect::<String>(),
            ),
            status: 431,
            code: None,
        },
        Case {
            name: "3 MiB header, past hyper's buffer",
            request: head("/bff/user", &format!("x-big: {}\r\n", "a".repeat(3 << 20))),
            status: 431,
            code: None,
        },
        Case {
            name: "60 MB JSON body declared",
            request: format!(
                "POST /bff/login/start HTTP/1.1\r\nHost: bff.example\r\n{csrf}{origin}{json}\
                 Content-Length: 62914560\r\nConnection: close\r\n\r\n{{\"returnUrl\":"
            )
            .into_bytes(),
            status: 413,
            code: Some("payload_too_large"),
        },
        Case {
            name: "broken JSON",
            request: post("/bff/login/start", &format!("{csrf}{origin}{json}"), "{not json"),
            status: 400,
            code: Some("invalid_request"),
        },
        Case {
            name: "JSON of the wrong shape",
            request: post(
                "/bff/login/start",
                &format!("{csrf}{origin}{json}"),
                "{\"returnUrl\": [1, 2]}",
            ),
            status: 400,
            code: Some("invalid_request"),
        },
        Case {
            name: "foreign return URL",
            request: head("/bff/login?returnUrl=https://evil.example/", ""),
            status: 400,
            code: Some("unsafe_return_url"),
        },
        Case {
            name: "protocol-relative return URL",
            request: head("/bff/login?returnUrl=%2F%2Fevil.example", ""),
            status: 400,
            code: Some("unsafe_return_url"),
        },
        Case {
            name: "garbage session cookie",
            request: head(
                "/bff/user",
                &format!("{csrf}Cookie: bff=../../etc/passwd%00; bff=\"x\"; =v; bff=%ZZ\r\n"),
            ),
            status: 401,
            code: Some("no_session"),
        },
        Case {
            name: "missing CSRF header",
            request: head("/bff/user", ""),
            status: 403,
            code: Some("csrf_failed"),
        },
        Case {
            name: "unsafe method from a foreign origin",
            request: post(
                "/bff/logout",
                &format!("{csrf}Origin: https://evil.example\r\n"),
                "",
            ),
            status: 403,
            code: Some("csrf_failed"),
        },
        Case {
            name: "garbage logout token",
            request: post(
                "/bff/backchannel-logout",
                "Content-Type: application/x-www-form-urlencoded\r\n",
                "logout_token=eyJhbGciOiJub25lIn0.e30.",
            ),
            status: 400,
            code: Some("logout_token_invalid"),
        },
        Case {
            name: "unknown method",
            request: b"BREW /bff/user HTTP/1.1\r\nHost: bff.example\r\nx-csrf: 1\r\nConnection: close\r\n\r\n"
                .to_vec(),
            status: 405,
            code: Some("method_not_allowed"),
        },
        Case {
            name: "unknown endpoint",
            request: head("/bff/nope", csrf),
            status: 404,
            code: Some("not_found"),
        },
        Case {
            name: "path that is not UTF-8 once decoded",
            request: head("/bff/%00%ff", csrf),
            status: 400,
            code: Some("invalid_request"),
        },
        // Both framings (smuggling): Transfer-Encoding wins (RFC 9112 section 6.3), so the body
        // is the empty chunked one, and the endpoint sees no JSON.
        Case {
            name: "Content-Length and Transfer-Encoding together",
            request: format!(
                "POST /bff/login/start HTTP/1.1\r\nHost: bff.example\r\n{csrf}{origin}\
                 Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .into_bytes(),
            status: 415,
            code: Some("unsupported_media_type"),
        },
        Case {
            name: "two different Content-Lengths",
            request: format!(
                "POST /bff/login/start HTTP/1.1\r\nHost: bff.example\r\n{csrf}{origin}{json}\
                 Content-Length: 4\r\nContent-Length: 5\r\n\r\n{{}}  "
            )
            .into_bytes(),
            status: 400,
            code: None,
        },
        Case {
            name: "header without a colon",
            request: b"GET /bff/user HTTP/1.1\r\nHost: bff.example\r\nnonsense\r\n\r\n".to_vec(),
            status: 400,
            code: None,
        },
    ]
}

/// Writes `request` (ignoring a write the server cut short) and reads the answer to the end.
async fn exchange(base: &str, request: &[u8]) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes within 10 s");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Text no answer may carry: the server's own paths, driver and OS error text, panics.
fn internal_markers() -> Vec<String> {
    vec![
        repo_root().display().to_string(),
        std::env::temp_dir().display().to_string(),
        "examples/spa".into(),
        "/etc/passwd".into(),
        "src/".into(),
        ".rs:".into(),
        "panicked".into(),
        "backtrace".into(),
        "os error".into(),
        "sqlx".into(),
        "redis".into(),
        "connection refused".into(),
        "hyper".into(),
        "poem".into(),
    ]
}

#[tokio::test]
async fn hostile_requests_get_their_status_and_problem_and_the_server_keeps_serving() {
    let op = bff_test_op::TestOp::start_default().await;
    let reserved = reserve().await;
    let base = reserved.base.clone();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = bff_server::Config::from_toml_str(
        &format!(
            r#"
default_provider = "op"
[server]
public_url = "{base}"
static_dir = "{static_dir}"
[dev]
allow_plain_http = true
[[vault_keys]]
id = "test"
key = "{VAULT_KEY}"
[providers.op]
issuer = "{issuer}"
client_id = "bff"
client_secret = "bff-secret"
[[routes]]
path = "/api/things"
upstream = "http://{closed}/things"
token = "none"
"#,
            static_dir = repo_root().join("examples/spa").display(),
            issuer = op.issuer,
        ),
        Vec::new(),
    )
    .unwrap();
    let server = reserved.serve(config).await;

    let mut failures = Vec::new();
    for case in cases(&server.base) {
        let (status, head, body) = exchange(&server.base, &case.request).await;
        if status != case.status {
            failures.push(format!(
                "{}: status {status}, wanted {}: {body}",
                case.name, case.status
            ));
            continue;
        }
        if let Some(code) = case.code {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if !head.contains("content-type: application/problem+json")
                || json["code"] != code
                || json["status"] != case.status
            {
                failures.push(format!(
                    "{}: wanted problem {code}: {head}\n{body}",
                    case.name
                ));
            }
        }
        let lower = body.to_ascii_lowercase();
        for marker in internal_markers() {
            if lower.contains(&marker.to_ascii_lowercase()) {
                failures.push(format!(
                    "{}: the answer shows {marker:?}: {body}",
                    case.name
                ));
            }
        }
        // After each: still serving.
        let (status, _, _) = exchange(&server.base, &head_of_healthz()).await;
        if status != 200 {
            failures.push(format!(
                "{}: /healthz answered {status} afterwards",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // An upstream that is down: 502 without its address or the OS's words.
    let (status, _, body) = exchange(&server.base, &head("/api/things/x", "x-csrf: 1\r\n")).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains(&closed.to_string()), "{body}");
    assert!(!body.to_ascii_lowercase().contains("refused"), "{body}");
}

fn head_of_healthz() -> Vec<u8> {
    head("/healthz", "")
}

/// A store that cannot be reached: every answer that needs it is `503 store_unavailable`, and
/// neither it nor `/readyz` repeats the driver's or the operating system's words, or the
/// store's address.
#[tokio::test]
async fn a_store_outage_shows_no_driver_message() {
    let op = bff_test_op::TestOp::start_default().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (kind, section) in [
        (
            "postgres",
            format!(
                "[store.postgres]\nurl = \"postgres://bff:pw@{closed}/bff\"\nacquire_timeout_ms = 300\n"
            ),
        ),
        (
            "redis",
            format!("[store.redis]\nurl = \"redis://{closed}\"\ntimeout_ms = 300\n"),
        ),
    ] {
        let reserved = reserve().await;
        let base = reserved.base.clone();
        let config = bff_server::Config::from_toml_str(
            &format!(
                r#"
default_provider = "op"
[server]
public_url = "{base}"
[dev]
allow_plain_http = true
[[vault_keys]]
id = "test"
key = "{VAULT_KEY}"
[providers.op]
issuer = "{issuer}"
client_id = "bff"
client_secret = "bff-secret"
[store]
kind = "{kind}"
{section}
"#,
                issuer = op.issuer,
            ),
            Vec::new(),
        )
        .unwrap();
        let server = reserved.serve(config).await;
        let session = format!("bff={}", "A".repeat(43));
        let (status, answer_head, body) = exchange(
            &server.base,
            &head("/bff/user", &format!("x-csrf: 1\r\nCookie: {session}\r\n")),
        )
        .await;
        assert_eq!(status, 503, "{kind}: {body}");
        assert!(
            answer_head.contains("content-type: application/problem+json"),
            "{kind}: {answer_head}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["code"], "store_unavailable", "{kind}: {body}");
        let (status, _, ready) = exchange(&server.base, &head("/readyz", "")).await;
        assert_eq!(status, 503, "{kind}: {ready}");
        for text in [&body, &ready] {
            let lower = text.to_ascii_lowercase();
            for marker in internal_markers()
                .into_iter()
                .filter(|m| m != "redis")
                .chain([closed.to_string(), "pw@".into(), "timed out".into()])
            {
                assert!(
                    !lower.contains(&marker.to_ascii_lowercase()),
                    "{kind}: the answer shows {marker:?}: {text}"
                );
            }
        }
    }
}
