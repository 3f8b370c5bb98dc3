//! The API proxy end to end: a real login at the local provider, then `[[routes]]` calls to a
//! test upstream that checks the bearer token it receives (a user's opaque token at the
//! provider's userinfo endpoint, a client-credentials JWT against the provider's JWKS) and
//! records every request's headers, so the tests see exactly what crossed the proxy in both
//! directions.

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
    /// The claims of the bearer token as a JWT access token verified against the provider's
    /// JWKS ([`JwtCheck`]), or why not.
    jwt: Result<serde_json::Value, String>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A resource server on 127.0.0.1:0 that records every request, stopped on drop.
///
/// The local provider issues opaque access tokens to users (no resource indicator, so no JWT
/// access-token format), so the upstream verifies a user's bearer token the way a resource
/// server without introspection can: it calls the provider's userinfo endpoint (from discovery)
/// with it. Only a token the provider issued, unexpired and unrevoked, gets an answer there, and
/// the answer names the token's user. Client-credentials tokens are JWTs for the test API
/// (`e2e/idp/README.md`), which the upstream verifies against the provider's JWKS.
pub(crate) struct Upstream {
    pub(crate) base: String,
    /// The provider's userinfo endpoint, where bearer tokens are checked.
    userinfo: String,
    /// Verifies JWT access tokens.
    jwt_check: Arc<JwtCheck>,
    pub(crate) received: Arc<Mutex<Vec<Received>>>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// The audience of the local provider's client-credentials tokens (`API_RESOURCE` in
/// `e2e/idp/server.mjs`).
const API_RESOURCE: &str = "urn:bff-test:api";

/// Verifies JWT access tokens (RFC 9068) as a resource server would: `typ` `at+jwt`, an RS256
/// signature by a key of the provider's JWKS, this issuer, the test API as audience, unexpired.
struct JwtCheck {
    issuer: String,
    keys: jsonwebtoken::jwk::JwkSet,
}

impl JwtCheck {
    async fn load(http: &reqwest::Client, issuer: &str, jwks_uri: &str) -> JwtCheck {
        let keys = http
            .get(jwks_uri)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        JwtCheck {
            issuer: issuer.to_owned(),
            keys,
        }
    }

    fn verify(&self, token: &str) -> Result<serde_json::Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(format!("typ {:?} is not at+jwt", header.typ));
        }
        let kid = header.kid.ok_or("no kid")?;
        let jwk = self
            .keys
            .find(&kid)
            .ok_or_else(|| format!("unknown kid {kid}"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[API_RESOURCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("JWT refused: {e}"))
    }
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
        let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
        let jwt_check = Arc::new(JwtCheck::load(&http, issuer, jwks_uri).await);
        let verifier = jwt_check.clone();

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
            let verifier = verifier.clone();
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
                let jwt = match &bearer {
                    Some(token) => verifier.verify(token),
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
                    jwt,
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
            jwt_check,
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
/// user's token, `/api/public` without any, `/api/other` needing a sign-in with the second
/// configured client (`post`), which the browser never does, `/api/reports` with the BFF's
/// client-credentials token (scope `reports.read`) and `/api/either` with alice's token when
/// she is signed in, else the client token (no scope).
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

[[routes]]
path = "/api/reports"
upstream = "{up}/v1/reports"
token = "client"
required_scopes = ["reports.read"]

[[routes]]
path = "/api/either"
upstream = "{up}/v1/either"
token = "user_or_client"
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
            response.contains("application/problem+json") && response.contains("route_not_allowed"),
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
    // The BFF's own client-credentials token (a JWT) must not leak either.
    assert_eq!(browser.api_get("/api/reports/p").await.status, 200);
    let client_token = upstream.last().bearer.unwrap();
    assert!(client_token.starts_with("eyJ"), "not a JWT");

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
        4,
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
        assert_no_secret(&record, &[&first, &second, &client_token]);
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
    assert_no_secret(&logs_text(), &[&first, &second, &client_token]);
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

/// How many client-credentials grants the local provider has issued to `client_id`
/// (`GET /test/grants`, see `e2e/idp/README.md`).
async fn client_credentials_grants(issuer: &str, client_id: &str) -> u64 {
    let counts: serde_json::Value = reqwest::get(format!("{issuer}/test/grants"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    counts["by_client"]["client_credentials"][client_id]
        .as_u64()
        .unwrap_or(0)
}

/// `GET {path}` as the app's script would send it without any session cookie.
async fn cookieless_get(server: &Server, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap()
}

/// The claims of the client token the upstream got last, checked: a JWT access token the
/// provider signed for the test API, issued to the BFF's client and to no user.
fn assert_client_token(seen: &Received) -> serde_json::Value {
    let claims = seen
        .jwt
        .clone()
        .unwrap_or_else(|why| panic!("{}: no valid client token: {why}", seen.target));
    assert_eq!(claims["sub"], "bff-basic", "{claims}");
    assert_eq!(claims["client_id"], "bff-basic", "{claims}");
    assert_eq!(claims["aud"], API_RESOURCE, "{claims}");
    for user_claim in ["name", "email", "sid", "auth_time"] {
        assert!(claims.get(user_claim).is_none(), "{user_claim} in {claims}");
    }
    // A client token is nobody's at userinfo.
    assert!(seen.subject.is_err(), "{:?}", seen.subject);
    claims
}

#[tokio::test]
async fn client_routes_share_one_client_credentials_token_across_callers() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, upstream, server, browser) = provider_upstream_and_server().await;
    assert_eq!(client_credentials_grants(&idp.issuer, "bff-basic").await, 0);

    // Ten calls at once without a session: they wait for one grant.
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let base = server.base.clone();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(format!("{base}/api/reports/r{i}"))
                    .header("x-csrf", "1")
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for call in calls {
        let answer = call.await.unwrap();
        assert_eq!(answer.status(), 200);
        let body = answer.text().await.unwrap();
        assert!(!body.contains("eyJ"), "{body}");
    }
    // Ten more with alice's session: the same token, still no user in it.
    let callback = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    for i in 0..10 {
        let answer = browser.api_get(&format!("/api/reports/s{i}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    let received = upstream.received.lock().unwrap().clone();
    assert_eq!(received.len(), 20);
    let token = received[0].bearer.clone().unwrap();
    for seen in &received {
        assert!(seen.target.starts_with("/v1/reports/"), "{}", seen.target);
        assert_eq!(seen.bearer.as_ref(), Some(&token), "{}", seen.target);
        let claims = assert_client_token(seen);
        let scopes: Vec<&str> = claims["scope"].as_str().unwrap_or("").split(' ').collect();
        assert!(scopes.contains(&"reports.read"), "{claims}");
        assert_eq!(seen.header("cookie"), None);
    }
    assert_eq!(
        client_credentials_grants(&idp.issuer, "bff-basic").await,
        1,
        "20 calls, one client-credentials grant"
    );
    // The check has teeth: a token with a changed signature is refused.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(upstream.jwt_check.verify(&forged).is_err());
    // And alice's own (opaque) token is no client token.
    assert_eq!(browser.api_get("/api/user/u").await.status, 200);
    assert!(upstream.last().jwt.is_err());

    // user_or_client: alice's token with her session ...
    let either = browser.api_get("/api/either/e").await;
    assert_eq!(either.status, 200, "{}", either.body);
    assert_eq!(upstream.last().subject.as_deref(), Ok("alice"));
    // ... and the client token without one (another scope set, so a second grant).
    assert_eq!(cookieless_get(&server, "/api/either/e").await.status(), 200);
    let seen = upstream.last();
    assert_client_token(&seen);
    assert_ne!(seen.bearer.as_ref(), Some(&token));
    assert_eq!(cookieless_get(&server, "/api/either/f").await.status(), 200);
    assert_eq!(upstream.last().bearer, seen.bearer);
    assert_eq!(client_credentials_grants(&idp.issuer, "bff-basic").await, 2);

    // A `user` route stays closed to callers without a session.
    let refused = cookieless_get(&server, "/api/user/x").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(upstream.count(), 24);
    drop(server);
    drop(upstream);
    drop(idp);
}
