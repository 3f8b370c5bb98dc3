//! One session, several providers, end to end: two real local providers (`a` on 127.0.0.1, `b`
//! on 127.0.0.2), alice logs in at `a` and then connects `b` to the same session. An upstream
//! records the bearer token of each proxied call, and the test asks each provider's userinfo
//! endpoint whether it issued that token: only the issuer accepts its own opaque tokens.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::oneshot;

use crate::support::*;

/// The path and bearer token (if any) of every request an upstream received.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A resource server on 127.0.0.1:0 that records `(path, bearer token)` of every request.
struct Upstream {
    base: String,
    received: Received,
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
    async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let received: Received = Arc::new(Mutex::new(Vec::new()));
        let record = received.clone();
        let app = poem::endpoint::make_sync(move |req: poem::Request| {
            let bearer = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned);
            record
                .lock()
                .unwrap()
                .push((req.uri().path().to_owned(), bearer));
            poem::web::Json(json!({ "ok": true }))
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
            received,
            shutdown: Some(tx),
        }
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// The path and bearer token of the last request.
    fn last(&self) -> (String, String) {
        let (path, bearer) = self.received.lock().unwrap().last().cloned().unwrap();
        (path, bearer.expect("the upstream got no bearer token"))
    }
}

/// `sub` as the userinfo endpoint of the provider at `issuer` answers for `token`, or `None`
/// when that provider refuses the token (it did not issue it, or it was revoked).
async fn subject_at(issuer: &str, token: &str) -> Option<String> {
    let http = reqwest::Client::new();
    let discovery: serde_json::Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let userinfo = discovery["userinfo_endpoint"].as_str().unwrap();
    let resp = http.get(userinfo).bearer_auth(token).send().await.unwrap();
    if !resp.status().is_success() {
        return None;
    }
    let claims: serde_json::Value = resp.json().await.unwrap();
    claims["sub"].as_str().map(str::to_owned)
}

/// Checks that `token` was issued by `issuer` (for alice) and not by `not_issuer`.
async fn assert_issued_by(token: &str, issuer: &str, not_issuer: &str) {
    assert_eq!(
        subject_at(issuer, token).await.as_deref(),
        Some("alice"),
        "{issuer} did not issue the token the upstream got"
    );
    assert_eq!(
        subject_at(not_issuer, token).await,
        None,
        "{not_issuer} accepts the token too: the check proves nothing"
    );
}

#[tokio::test]
async fn a_connected_providers_route_gets_that_providers_token_and_identity_stays() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    connect_b_to_a_session_at_a("").await;
}

/// The same on the production store layout: sessions in Postgres behind the Redis cache,
/// pending logins (with the session key a connect joins) in Redis.
#[tokio::test]
async fn connecting_works_on_postgres_behind_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let store = format!(
        r#"
[store]
kind = "postgres+redis"
[store.postgres]
url = "{pg_url}"
schema = "{schema}"
migrate_on_start = true
acquire_timeout_ms = 5000
[store.redis]
url = "{redis_url}"
timeout_ms = 2000
key_prefix = "{prefix}"
"#,
        pg_url = pg.url,
        schema = pg.schema,
        redis_url = redis.url,
        prefix = redis.prefix,
    );
    connect_b_to_a_session_at_a(&store).await;
    pg.drop_schema().await;
}

/// Alice logs in at `a`, `b`'s route is refused until she connects `b` (redirect style, then
/// again API-driven), and each route gets its own provider's token; `store` is extra TOML.
async fn connect_b_to_a_session_at_a(store: &str) {
    let reserved = reserve().await;
    let redirects = [reserved.callback(), reserved.app_page()];
    let logout_returns = [reserved.logout_return(), reserved.app_page()];
    let idp_a = Idp::start_on_host("127.0.0.1", &redirects, &logout_returns);
    let idp_b = Idp::start_on_host("127.0.0.2", &redirects, &logout_returns);
    let upstream = Upstream::start().await;
    let extra = format!(
        r#"
[providers.b]
issuer = "{b}"
client_id = "bff-basic"
client_secret = "{CLIENT_SECRET}"

[[routes]]
path = "/api/a"
upstream = "{up}/a"
token = "user"
provider = "local"

[[routes]]
path = "/api/b"
upstream = "{up}/b"
token = "user"
provider = "b"
{store}
"#,
        b = idp_b.issuer,
        up = upstream.base
    );
    let base = reserved.base.clone();
    let server = reserved
        .serve(config_with(&base, &idp_a.issuer, &extra))
        .await;
    let browser = Browser::new(&server.base);

    // Without a session, a connect is refused in both styles (never an ordinary login at b).
    let page = browser
        .get(&format!(
            "{}/bff/login?provider=b&connect=true",
            server.base
        ))
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.problem_code(), "no_session");
    let page = browser
        .api_post(
            "/bff/login/start",
            Some(json!({ "provider": "b", "connect": true })),
        )
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.problem_code(), "no_session");

    // Alice logs in at a.
    let callback = redirect_login(&browser, &server, &idp_a, "/").await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    let session = callback.session_cookie().expect("session cookie");

    // Before connecting b: its route is refused, naming b, and nothing goes upstream.
    let refused = browser.api_get("/api/b/orders").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.problem_code(), "provider_not_connected");
    assert!(
        refused.json()["detail"].as_str().unwrap().contains("'b'"),
        "{}",
        refused.body
    );
    assert_eq!(upstream.count(), 0);
    let own = browser.api_get("/api/a/orders").await;
    assert_eq!(own.status, 200, "{}", own.body);
    let (path, token_a) = upstream.last();
    assert_eq!(path, "/a/orders");
    assert_issued_by(&token_a, &idp_a.issuer, &idp_b.issuer).await;

    // Connecting a's own provider again is refused.
    let page = browser
        .get(&format!(
            "{}/bff/login?provider=local&connect=true",
            server.base
        ))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.problem_code(), "provider_is_primary");

    // Connect b (redirect style): the callback keeps the session cookie as it is.
    let start = browser
        .get(&format!(
            "{}/bff/login?provider=b&connect=true&returnUrl=/connected",
            server.base
        ))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let authorize = start.location().unwrap();
    assert!(authorize.starts_with(&idp_b.issuer), "{authorize}");
    let back = browser.sign_in_at_provider(&authorize, &idp_b.issuer).await;
    assert!(
        back.starts_with(&format!("{}/bff/callback?", server.base)),
        "{back}"
    );
    let connected = browser.get(&back).await;
    assert_eq!(connected.status, 200, "{}", connected.body);
    assert!(connected.body.contains("/connected"), "{}", connected.body);
    assert_eq!(
        connected.session_cookie(),
        None,
        "a connect must not issue a new session id"
    );

    // b's route now carries a token b issued; a's route still carries a's.
    let via_b = browser.api_get("/api/b/orders").await;
    assert_eq!(via_b.status, 200, "{}", via_b.body);
    let (path, token_b) = upstream.last();
    assert_eq!(path, "/b/orders");
    assert_issued_by(&token_b, &idp_b.issuer, &idp_a.issuer).await;
    let via_a = browser.api_get("/api/a/orders").await;
    assert_eq!(via_a.status, 200, "{}", via_a.body);
    let (path, token) = upstream.last();
    assert_eq!(path, "/a/orders");
    assert_issued_by(&token, &idp_a.issuer, &idp_b.issuer).await;

    // The identity is still the first login's, in the same session.
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["iss"], idp_a.issuer.as_str());
    assert_eq!(user.json()["sub"], "alice");
    let view = browser.api_get("/bff/session").await.json();
    assert_eq!(view["provider"], "local");
    assert_eq!(view["connectedProviders"], json!(["b"]));
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &session).await,
        200,
        "the original session id still holds the session"
    );

    // Connect b again, API-driven: b's tokens are replaced (the old grant is not revoked: the
    // local provider reuses alice's grant for the new login, so revoking it would revoke the
    // new tokens too).
    let start = browser
        .api_post(
            "/bff/login/start",
            Some(json!({ "provider": "b", "connect": true, "returnUrl": "/again" })),
        )
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let authorize = start.json()["authorizationRequestUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(authorize.starts_with(&idp_b.issuer), "{authorize}");
    let back = browser.sign_in_at_provider(&authorize, &idp_b.issuer).await;
    assert!(back.starts_with(&format!("{}/?", server.base)), "{back}");
    let end = browser
        .api_post("/bff/login/end", Some(json!({ "pageUrl": back })))
        .await;
    assert_eq!(end.status, 200, "{}", end.body);
    assert_eq!(end.json()["handled"], true);
    assert_eq!(end.json()["isLoggedIn"], true);
    assert_eq!(end.json()["returnUrl"], "/again");
    assert_eq!(end.session_cookie(), None, "a connect keeps the session id");
    let via_b = browser.api_get("/api/b/orders").await;
    assert_eq!(via_b.status, 200, "{}", via_b.body);
    let (_, token_b2) = upstream.last();
    assert_ne!(token_b2, token_b);
    assert_issued_by(&token_b2, &idp_b.issuer, &idp_a.issuer).await;
    assert_eq!(
        browser.api_get("/bff/session").await.json()["connectedProviders"],
        json!(["b"])
    );

    // No token of either provider reached the browser.
    browser.assert_no_secrets_seen(&[&token_a, &token_b, &token_b2]);

    // Logout revokes b's grant too: b no longer accepts the access token it issued. (The
    // logout answer carries a's ID token as `id_token_hint`, by design, so it comes last.)
    let out = browser.api_post("/bff/logout", None).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(subject_at(&idp_b.issuer, &token_b2).await, None);
    assert_eq!(subject_at(&idp_a.issuer, &token_a).await, None);
}
