//! The API proxy end to end: a real login at the local provider, then `[[routes]]` calls to a
//! test upstream that checks the bearer token it receives at the provider itself and records
//! every request's headers, so the tests see exactly what crossed the proxy in both directions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::support::*;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    /// Path and query.
    pub(crate) target: String,
    /// Every header, names lower-case.
    headers: Vec<(String, String)>,
    /// The `Authorization: Bearer` value, if any.
    pub(crate) bearer: Option<String>,
    /// `sub` as the provider's userinfo endpoint answers it for the bearer token, or why not.
    pub(crate) subject: Result<String, String>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A resource server on 127.0.0.1:0 that records every request, stopped on drop.
///
/// The local provider issues opaque access tokens (no resource indicator, so no JWT access-token
/// format), so the upstream verifies a bearer token the way a resource server without
/// introspection can: it calls the provider's userinfo endpoint (from discovery) with it. Only
/// a token the provider issued, unexpired and unrevoked, gets an answer there, and the answer
/// names the token's user.
pub(crate) struct Upstream {
    pub(crate) base: String,
    /// The provider's userinfo endpoint, where bearer tokens are checked.
    userinfo: String,
    pub(crate) received: Arc<Mutex<Vec<Received>>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Upstream {
    pub(crate) async fn start(issuer: &str) -> Upstream {
        // Node closes keep-alive connections idle for 5 s; a pooled one reused at that moment
        // fails to send (seen under load). Never reuse one idle that long.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let discovery: serde_json::Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            discovery["issuer"], issuer,
            "discovery names another issuer"
        );
        let userinfo = discovery["userinfo_endpoint"].as_str().unwrap().to_owned();
        assert!(userinfo.starts_with(issuer), "{userinfo}");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = received.clone();
        let checked_at = userinfo.clone();
        let app = poem::endpoint::make(move |req: poem::Request| {
            let record = record.clone();
            let http = http.clone();
            let userinfo = userinfo.clone();
            async move {
                let headers = req
                    .headers()
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().to_owned(),
                            String::from_utf8_lossy(value.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let bearer = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_owned);
                let subject = match &bearer {
                    Some(token) => subject_at_userinfo(&http, &userinfo, token).await,
                    None => Err("no bearer token".to_owned()),
                };
                let target = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                record.lock().unwrap().push(Received {
                    target: target.clone(),
                    headers,
                    bearer,
                    subject,
                });
                poem::Response::builder()
                    .header("set-cookie", "upstream-cookie=1; Path=/")
                    .content_type("application/json")
                    .body(json!({ "upstreamTarget": target }).to_string())
            }
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(
            poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                async move {
                    let _ = rx.await;
                },
                None,
            ),
        );
        Upstream {
            base,
            userinfo: checked_at,
            received,
            shutdown: Some(tx),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    fn last(&self) -> Received {
        self.received.lock().unwrap().last().cloned().unwrap()
    }
}

/// The `sub` the provider's userinfo endpoint returns for `token`.
async fn subject_at_userinfo(
    http: &reqwest::Client,
    userinfo: &str,
    token: &str,
) -> Result<String, String> {
    let resp = http
        .get(userinfo)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("userinfo refused the token: {status} {body}"));
    }
    let claims: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    claims["sub"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("userinfo without sub: {body}"))
}

/// The provider, the upstream and a server whose `[[routes]]` lead there: `/api/user` with the
/// user's token, `/api/public` without any, and `/api/other` needing a sign-in with the second
/// configured client (`post`), which the browser never does.
async fn provider_upstream_and_server() -> (Idp, Upstream, Server, Browser) {
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let upstream = Upstream::start(&idp.issuer).await;
    let routes = format!(
        r#"
[[routes]]
path = "/api/user"
upstream = "{up}/v1/user"
token = "user"

[[routes]]
path = "/api/public"
upstream = "{up}/v1/public"
token = "none"

[[routes]]
path = "/api/other"
upstream = "{up}/v1/other"
token = "user"
provider = "post"
"#,
        up = upstream.base
    );
    let base = reserved.base.clone();
    let server = reserved
        .serve(config_with(&base, &idp.issuer, &routes))
        .await;
    let browser = Browser::new(&server.base);
    (idp, upstream, server, browser)
}

/// Sends `GET {target}` byte for byte (no client-side URL normalization, which would resolve
/// `..` before it left) with `x-csrf: 1` and the session cookie; returns the status line's code
/// and the whole raw response.
async fn raw_get(base: &str, target: &str, session: &str) -> (u16, String) {
    let authority = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nx-csrf: 1\r\nCookie: bff={session}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response}"));
    (status, response)
}

#[tokio::test]
async fn proxied_calls_carry_alices_token_and_nothing_of_the_browser() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, upstream, server, browser) = provider_upstream_and_server().await;

    // Before any login: a user route is 401 problem JSON, never a redirect, and nothing is sent.
    let anonymous = browser.api_get("/api/user/x").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(anonymous.problem_code(), "no_session");
    assert_eq!(upstream.count(), 0);

    let callback = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    let session = callback.session_cookie().expect("session cookie");

    // A user route: alice's valid token, and nothing of the browser's cookies or CSRF header.
    let proxied = browser.api_get("/api/user/x?q=1").await;
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    assert_eq!(proxied.json()["upstreamTarget"], "/v1/user/x?q=1");
    assert_eq!(upstream.count(), 1);
    let seen = upstream.last();
    assert_eq!(seen.target, "/v1/user/x?q=1");
    assert_eq!(
        seen.subject.as_deref(),
        Ok("alice"),
        "the upstream got no valid token for alice"
    );
    let token = seen.bearer.clone().unwrap();
    assert!(!token.is_empty());
    // The check has teeth: the provider refuses a token it did not issue.
    let forged = format!("{token}x");
    assert!(
        subject_at_userinfo(&reqwest::Client::new(), &upstream.userinfo, &forged)
            .await
            .is_err()
    );
    assert_eq!(seen.header("cookie"), None, "{:?}", seen.headers);
    assert_eq!(seen.header("x-csrf"), None, "{:?}", seen.headers);
    for (name, value) in &seen.headers {
        assert!(
            !value.contains(&session),
            "the session id went upstream in {name}"
        );
    }
    // The upstream's own cookie stays behind (forward_set_cookie is off by default).
    assert!(
        proxied
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("upstream-cookie")),
        "{:?}",
        proxied.set_cookies()
    );
    assert!(!proxied.body.contains(&token));

    // A `none` route: forwarded without any Authorization, even though a session exists.
    let public = browser.api_get("/api/public/y").await;
    assert_eq!(public.status, 200, "{}", public.body);
    assert_eq!(upstream.count(), 2);
    let seen = upstream.last();
    assert_eq!(seen.target, "/v1/public/y");
    assert_eq!(seen.header("authorization"), None, "{:?}", seen.headers);
    assert_eq!(seen.header("cookie"), None, "{:?}", seen.headers);
    assert_eq!(seen.header("x-csrf"), None, "{:?}", seen.headers);

    // A route for the other provider: this session is with `local`, so nothing is sent.
    let other = browser.api_get("/api/other/z").await;
    assert_eq!(other.status, 401, "{}", other.body);
    assert_eq!(other.problem_code(), "provider_not_connected");
    assert_eq!(upstream.count(), 2);

    // Without the session cookie: 401 problem JSON and no upstream call.
    let cookieless = reqwest::Client::new()
        .get(format!("{}/api/user/x", server.base))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(cookieless.status(), 401);
    assert_eq!(
        cookieless.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = cookieless.json().await.unwrap();
    assert_eq!(problem["code"], "no_session");
    assert_eq!(upstream.count(), 2);

    // Without `x-csrf`, even with the session: refused as problem JSON, nothing sent.
    let forged = browser
        .http
        .get(format!("{}/api/user/x", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(forged.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(problem["code"], "csrf_failed");
    assert_eq!(upstream.count(), 2);

    // Dot segments that would climb out of the route: refused with the valid session, before
    // anything is sent. Written raw, since an HTTP client library resolves them itself.
    for target in [
        "/api/user/../../admin",
        "/api/user/..%2f..%2fadmin",
        "/api/user/%2e%2e/%2e%2e/admin",
        "/api/user/%252e%252e/admin",
        "/api/public/../user/x",
    ] {
        let (status, response) = raw_get(&server.base, target, &session).await;
        assert_eq!(status, 400, "{target}: {response}");
        assert!(
            response.contains("application/problem+json") && response.contains("path_not_allowed"),
            "{target}: {response}"
        );
        assert!(!response.contains(&token), "{target}: {response}");
    }
    assert_eq!(
        upstream.count(),
        2,
        "a dot-segment path reached the upstream"
    );

    // The session still works after all that.
    assert_eq!(browser.api_get("/api/user/again").await.status, 200);
    assert_eq!(upstream.last().subject.as_deref(), Ok("alice"));
    drop(server);
    drop(upstream);
    drop(idp);
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_browser_in_a_whole_proxied_session() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    capture_logs();
    let (idp, upstream, server, browser) = provider_upstream_and_server().await;

    let callback = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    let session = callback.session_cookie().expect("session cookie");

    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    let logout_url = user.json()["bff:logout_url"].as_str().unwrap().to_owned();
    assert_eq!(browser.api_get("/bff/session").await.status, 200);

    assert_eq!(browser.api_get("/api/user/before").await.status, 200);
    let first = upstream.last_user_token();
    assert_eq!(browser.api_get("/api/public/p").await.status, 200);

    let refreshed = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(browser.api_get("/api/user/after").await.status, 200);
    let second = upstream.last_user_token();
    assert_ne!(
        first, second,
        "the refresh did not replace the access token"
    );

    let logout = browser.get(&format!("{}{logout_url}", server.base)).await;
    assert_eq!(logout.status, 302, "{}", logout.body);
    let end_session = logout.location().unwrap();
    let id_token_hint = query_param(&end_session, "id_token_hint").expect("id_token_hint");
    assert!(id_token_hint.starts_with("eyJ"), "{id_token_hint}");
    let after = browser.api_get("/api/user/gone").await;
    assert_eq!(after.status, 401, "{}", after.body);
    assert_eq!(after.problem_code(), "no_session");
    assert_eq!(
        upstream.count(),
        3,
        "a call after logout reached the upstream"
    );

    // Every response the browser got from the BFF, headers and bodies. The one legitimate
    // carrier of a token is the logout redirect: RP-initiated logout sends the ID token as
    // `id_token_hint` in its `Location`. Only that value in that response is masked; the rest
    // of that response is scanned like everything else.
    let seen = browser.seen_from_bff.lock().unwrap().clone();
    assert!(
        seen.len() >= 9,
        "too few responses recorded: {}",
        seen.len()
    );
    let mut hint_carriers = 0;
    for record in &seen {
        let mut record = record.clone();
        if record.contains(&id_token_hint) {
            assert!(
                record.contains("/bff/logout?sid=") && record.contains(" 302 "),
                "the ID token reached the browser outside the logout redirect: {record}"
            );
            hint_carriers += 1;
            record = record.replace(&id_token_hint, "<id_token_hint>");
        }
        assert_no_secret(&record, &[&first, &second]);
    }
    assert_eq!(
        hint_carriers, 1,
        "the logout redirect carries the hint once"
    );
    // The other direction: no request the upstream got carried the session id or the ID token.
    for received in upstream.received.lock().unwrap().iter() {
        for (name, value) in &received.headers {
            assert!(
                !value.contains(&session) && !value.contains(&id_token_hint),
                "{name} of {} carried the session id or the ID token",
                received.target
            );
        }
    }
    // Nor in the logs (which also hold the test client's cookie-jar lines, so the session id,
    // which the browser legitimately holds, is not checked there).
    assert_no_secret(&logs_text(), &[&first, &second]);
    drop(server);
    drop(upstream);
    drop(idp);
}

impl Upstream {
    /// The bearer token of the last request, checked to be alice's at the provider.
    fn last_user_token(&self) -> String {
        let seen = self.last();
        assert_eq!(seen.subject.as_deref(), Ok("alice"), "{}", seen.target);
        seen.bearer.unwrap()
    }
}
