//! The sample app (`examples/spa`) in headless Chromium, the whole way, on Postgres + Redis:
//! logged out, the provider's form, logged in with the user's claims, a call to a demo API
//! through the proxy, the access token going stale and refreshed once (counted at the
//! provider), two tabs refreshing at once, logout through the provider back to a logged-out app,
//! and a second login ended by the provider itself through back-channel logout.
//!
//! The walk ([`walk_the_sample_app`]) is written against [`WalkProvider`], "the provider's login
//! form, logout and refresh count", so the same steps run against the local `oidc-provider`
//! (here, in every CI run) and against Keycloak (`crate::keycloak`, `cargo xtask e2e --idp
//! keycloak`, which needs a Docker engine).
//!
//! At every step the page's cookies, `localStorage`, `sessionStorage`, its HTML and every response
//! it received (bodies through DevTools, headers from the network log) are scanned for the access
//! tokens the API received, anything shaped like a JWT (ID tokens), and the client secret.
//!
//! Screenshots of the four states the README shows are written to `target/e2e/` on every run; on
//! failure the failing page's screenshot and HTML are written there too and the path printed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, Locator};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::browser::{
    PerformanceLog, browser_available, chromium, element_after_navigation, wait_for_text,
};
use crate::stores::{session_rows, store_toml};
use crate::support::*;

/// The demo API behind the proxy: answers every call with a fingerprint of the bearer token it
/// got (so the page shows when the token changed) and records the tokens for the scans.
pub(crate) struct DemoApi {
    pub(crate) base: String,
    tokens: Arc<Mutex<Vec<String>>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for DemoApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) async fn demo_api() -> DemoApi {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let record = tokens.clone();
    let app = poem::endpoint::make_sync(move |req: poem::Request| {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        if let Some(token) = &bearer {
            record.lock().unwrap().push(token.clone());
        }
        poem::web::Json(serde_json::json!({
            "message": "Hello from the demo API",
            "path": req.uri().path(),
            "tokenFingerprint": bearer.as_deref().map(fingerprint),
            "sawBrowserCookie": req.headers().contains_key("cookie"),
            "sawCsrfHeader": req.headers().contains_key("x-csrf"),
        }))
    });
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async move {
                    let _ = rx.await;
                },
                Some(Duration::from_secs(1)),
            )
            .await;
    });
    DemoApi {
        base,
        tokens,
        shutdown: Some(tx),
    }
}

/// Where screenshots and failure pages go: `target/e2e/` (under `CARGO_TARGET_DIR` when set).
fn e2e_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let path = e2e_dir().join(format!("{name}.png"));
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(&path, png);
    }
    path
}

/// Chromium's network log so far (each read empties Chromium's buffer, so it is accumulated).
struct NetworkLog {
    events: Vec<serde_json::Value>,
    scanned: std::collections::HashSet<String>,
}

/// One thing the page received: from `url`, described as `what`, with its text.
struct Received {
    url: String,
    what: String,
    text: String,
}

impl NetworkLog {
    async fn read(&mut self, c: &Client) {
        let log = c.issue_cmd(PerformanceLog).await.unwrap();
        self.events.extend(
            log.as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| entry["message"].as_str())
                .filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                .map(|m| m["message"].clone()),
        );
    }

    /// Every response header and (while the page that loaded them is open) every body the page
    /// received since the last scan, as text.
    async fn new_responses(&mut self, c: &Client) -> Vec<Received> {
        self.read(c).await;
        let mut seen = Vec::new();
        for event in &self.events {
            if event["method"] != "Network.responseReceived" {
                continue;
            }
            let id = event["params"]["requestId"].as_str().unwrap_or_default();
            let url = event["params"]["response"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !self.scanned.insert(format!("{id} {url}")) {
                continue;
            }
            let headers = event["params"]["response"]["headers"].to_string();
            seen.push(Received {
                url: url.clone(),
                what: format!("headers of {url}"),
                text: headers,
            });
            let body = c
                .issue_cmd(CdpCommand(
                    "Network.getResponseBody",
                    serde_json::json!({ "requestId": id }),
                ))
                .await;
            if let Ok(body) = body {
                seen.push(Received {
                    what: format!("body of {url}"),
                    url,
                    text: body["body"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        // Header lines of redirects (the `Location`s of the login and logout hops).
        for event in &self.events {
            if event["method"] == "Network.requestWillBeSent"
                && let Some(redirect) = event["params"].get("redirectResponse")
            {
                let url = redirect["url"].as_str().unwrap_or_default().to_owned();
                seen.push(Received {
                    what: format!("a redirect from {url}"),
                    url,
                    text: redirect["headers"].to_string(),
                });
            }
        }
        seen
    }
}

/// A DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct CdpCommand(&'static str, serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for CdpCommand {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (poem::http::Method, Option<String>) {
        (
            poem::http::Method::POST,
            Some(serde_json::json!({ "cmd": self.0, "params": self.1 }).to_string()),
        )
    }
}

/// The test user the walk logs in as, known to both providers (`e2e/idp`, and the users of
/// `docker/keycloak/realm.json`).
pub(crate) const USER: (&str, &str) = ("alice", "wonderland");
/// What the app shows once that user is logged in (the `name` claim).
const LOGGED_IN_AS: &str = "Logged in as Alice Liddell";

/// CSS selectors of a provider's login form (each provider names its fields its own way).
pub(crate) struct LoginForm {
    pub(crate) username: &'static str,
    pub(crate) password: &'static str,
    pub(crate) submit: &'static str,
    /// The consent page's "continue", when the provider may ask for consent.
    pub(crate) consent: Option<&'static str>,
}

/// The OpenID Provider the walk logs in at, seen from the browser: its login form, what it shows
/// on logout, how it ends a session by itself, and how refresh grants are counted there.
pub(crate) trait WalkProvider {
    /// The issuer; the provider's pages start with it.
    fn issuer(&self) -> &str;
    /// The BFF's client secret at this provider: it must never reach the browser.
    fn client_secret(&self) -> &str;
    fn login_form(&self) -> &LoginForm;
    /// Screenshot names start with this (`""` for the README's screenshots).
    fn screenshot_prefix(&self) -> &str;
    /// The origin whose own responses may carry JWTs of the provider's own making (Keycloak's
    /// SSO cookie `KEYCLOAK_IDENTITY` is one, on its own origin only): they are still scanned for
    /// the API's access tokens and the client secret, but not for JWT shapes.
    fn origin_with_own_jwts(&self) -> Option<&str> {
        None
    }
    /// Whether the provider sees its own session inside the app's iframe, so that a silent
    /// login with it there signs in (the walk checks that it does).
    fn signs_in_silently_in_a_frame(&self) -> bool {
        true
    }
    /// Refresh-token grants for the BFF's client the provider has answered so far.
    async fn refresh_grants(&self) -> u64;
    /// Goes through whatever the provider shows between the app's logout button and the way
    /// back to the app.
    async fn through_logout(&self, c: &Client);
    /// Ends the user's session at the provider itself (as another app or an administrator
    /// would), returning once the provider has sent its back-channel logout to the BFF.
    async fn end_session_at_provider(&self, c: &Client);
}

/// The local `oidc-provider` (`e2e/idp`), client `bff-basic`.
struct LocalProvider {
    idp: Idp,
}

const LOCAL_FORM: LoginForm = LoginForm {
    username: "input[name=login]",
    password: "input[name=password]",
    submit: "form [type=submit]",
    consent: Some("form[action*=confirm] [type=submit]"),
};

impl WalkProvider for LocalProvider {
    fn issuer(&self) -> &str {
        &self.idp.issuer
    }

    fn client_secret(&self) -> &str {
        CLIENT_SECRET
    }

    fn login_form(&self) -> &LoginForm {
        &LOCAL_FORM
    }

    fn screenshot_prefix(&self) -> &str {
        ""
    }

    /// Counted by the provider itself (`/test/grants`, a test-only route of `e2e/idp`).
    async fn refresh_grants(&self) -> u64 {
        let counts: serde_json::Value = reqwest::get(format!("{}/test/grants", self.idp.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts["by_client"]["refresh_token"]["bff-basic"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The provider asks the user to confirm the logout, on its own pages.
    async fn through_logout(&self, c: &Client) {
        let confirm = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("form [type=submit]"))
            .await
            .unwrap();
        assert!(
            c.current_url()
                .await
                .unwrap()
                .as_str()
                .starts_with(&self.idp.issuer)
        );
        confirm.click().await.unwrap();
    }

    /// The provider's own logout page, as another app of the same provider would send the user
    /// there; it posts logout tokens to every client's back-channel URL before it answers.
    async fn end_session_at_provider(&self, c: &Client) {
        c.goto(&format!(
            "{}/session/end?client_id=bff-basic",
            self.idp.issuer
        ))
        .await
        .unwrap();
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("form [type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let success = format!("{}/session/end/success", self.idp.issuer);
        let mut landed = String::new();
        for _ in 0..200 {
            landed = c.current_url().await.unwrap().to_string();
            if landed.starts_with(&success) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            landed.starts_with(&success),
            "the provider's logout ended at {landed}"
        );
    }
}

/// What the page may never hold, and where the provider's own JWTs may be.
struct Scan<'a> {
    api: &'a DemoApi,
    client_secret: &'a str,
    origin_with_own_jwts: Option<&'a str>,
    /// `{base}/bff/logout`: its redirect to the provider carries the `id_token_hint` that
    /// RP-initiated logout asks for, in a `Location` the browser follows and script cannot read.
    /// That one value in that one place is the only token the walk lets the browser see.
    bff_logout: String,
    /// Set once that redirect has been seen with its hint, so the exemption is known to apply.
    id_token_hint_seen: std::sync::atomic::AtomicBool,
}

impl Scan<'_> {
    /// Fails when `text` holds a token the API received, the client secret, or (unless it came
    /// from the provider's own origin that makes JWTs of its own) something shaped like a JWT.
    fn assert_no_token(&self, where_: &str, text: &str, url: Option<&str>) {
        let tokens = self.api.tokens.lock().unwrap().clone();
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()),
                "an access token in {where_}"
            );
        }
        assert!(
            !text.contains(self.client_secret),
            "the client secret in {where_}"
        );
        let providers_own = matches!(
            (url, self.origin_with_own_jwts),
            (Some(url), Some(origin)) if url.starts_with(origin)
        );
        if !providers_own {
            assert!(!contains_jwt(text), "a JWT in {where_}");
        }
    }

    /// Scans the page as script sees it, and everything the browser received since the last
    /// scan; returns what was scanned (`body of <url>`, `headers of <url>`, ...).
    async fn page(&self, c: &Client, log: &mut NetworkLog, step: &str) -> Vec<String> {
        let storage = c
            .execute(
                "return JSON.stringify({cookie: document.cookie, \
                 local: Object.entries(localStorage), session: Object.entries(sessionStorage)})",
                vec![],
            )
            .await
            .unwrap();
        let storage = storage.as_str().unwrap_or_default().to_owned();
        assert!(
            !storage.contains("\"cookie\":\"bff"),
            "{step}: script can read the session cookie: {storage}"
        );
        self.assert_no_token(&format!("{step}: page storage"), &storage, None);
        let html = c.source().await.unwrap();
        self.assert_no_token(&format!("{step}: page HTML"), &html, None);
        let mut scanned = Vec::new();
        for received in log.new_responses(c).await {
            let mut text = received.text.clone();
            if received.what.starts_with("a redirect from")
                && received.url.starts_with(&self.bff_logout)
                && let Some(hint) = text
                    .split(['"', '&', '?'])
                    .find_map(|part| part.strip_prefix("id_token_hint="))
                    .map(str::to_owned)
            {
                assert!(contains_jwt(&hint), "the id_token_hint is an ID token");
                text = text.replace(&hint, "");
                self.id_token_hint_seen
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            self.assert_no_token(
                &format!("{step}: {}", received.what),
                &text,
                Some(&received.url),
            );
            scanned.push(received.what);
        }
        scanned
    }
}

/// Fills and submits the provider's login form as [`USER`] (and its consent, when asked),
/// taking the screenshot `filled` of the filled form when given.
async fn sign_in_at_provider_form(c: &Client, provider: &impl WalkProvider, filled: Option<&str>) {
    let form = provider.login_form();
    let login = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(form.username))
        .await
        .unwrap();
    let at = c.current_url().await.unwrap();
    assert!(
        at.as_str().starts_with(provider.issuer()),
        "the login form is at {at}, not at the provider"
    );
    login.send_keys(USER.0).await.unwrap();
    c.find(Locator::Css(form.password))
        .await
        .unwrap()
        .send_keys(USER.1)
        .await
        .unwrap();
    if let Some(name) = filled {
        screenshot(c, name).await;
    }
    c.find(Locator::Css(form.submit))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if let Some(consent) = form.consent
        && let Ok(button) = c
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(consent))
            .await
    {
        button.click().await.unwrap();
    }
}

/// Clicks "Call the API" and returns the token fingerprint the API answered with.
async fn call_api(c: &Client) -> String {
    c.find(Locator::Id("call-api"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let out = c.find(Locator::Id("api-result")).await.unwrap();
    for _ in 0..200 {
        let state = out.attr("data-state").await.unwrap().unwrap_or_default();
        if state == "ok" || state == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = out.text().await.unwrap();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    assert_eq!(status, "200", "the API call failed: {text}");
    let answer: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(answer["sawBrowserCookie"], false, "{answer}");
    assert_eq!(answer["sawCsrfHeader"], false, "{answer}");
    answer["tokenFingerprint"]
        .as_str()
        .expect("the API got no token")
        .to_owned()
}

/// The access token is refreshed once it expires within this margin. Both providers' access
/// tokens live [`ACCESS_TOKEN_TTL_SECS`] (the local provider's default, the Keycloak realm's
/// `accessTokenLifespan`), so they go stale `TTL - margin` seconds after they were issued.
pub(crate) const REFRESH_MARGIN_SECS: u64 = 280;
pub(crate) const ACCESS_TOKEN_TTL_SECS: u64 = 300;

/// The proxy route of the walk's config: `/api/demo` to `api` with the user's token.
pub(crate) fn demo_route(api: &DemoApi) -> String {
    format!(
        "[[routes]]\npath = \"/api/demo\"\nupstream = \"{}\"\ntoken = \"user\"\n",
        api.base
    )
}

/// The walk's stores: a fresh PostgreSQL schema for sessions and a Redis key prefix for
/// pending logins and the cache (`kind = "postgres+redis"`, as the compose demo runs).
pub(crate) struct WalkStores {
    pg: bff_test_services::PostgresService,
    redis: bff_test_services::RedisService,
}

impl WalkStores {
    /// Both stores, or `None` when one is missing outside CI (said on stderr by
    /// `bff_test_services`; under CI it fails instead).
    pub(crate) async fn find() -> Option<WalkStores> {
        let pg = bff_test_services::postgres().await?;
        let redis = bff_test_services::redis().await?;
        Some(WalkStores { pg, redis })
    }

    /// The `[store]` section for `bff-server`.
    pub(crate) fn toml(&self) -> String {
        store_toml(&self.pg, Some(&self.redis.url), &self.redis.prefix)
    }

    /// Sessions stored in PostgreSQL now.
    async fn sessions(&self) -> i64 {
        session_rows(&self.pg).await
    }

    pub(crate) async fn drop_schema(&self) {
        self.pg.drop_schema().await;
    }
}

/// The whole walk in a fresh headless Chromium against the app at `base`, which logs in at
/// `provider`, keeps its sessions in `stores` and proxies `/api/demo` to `api`. On failure: a
/// screenshot and the page's HTML under `target/e2e/`, paths printed.
/// Runs README.md's silent login in the current page (a hidden iframe on `/bff/silent-login`)
/// and returns what the iframe posted: `isLoggedIn`, or `"timeout"` after 10 s.
pub(crate) async fn silent_login(c: &Client) -> serde_json::Value {
    const SCRIPT: &str = "const done = arguments[0];
        const frame = Object.assign(document.createElement('iframe'),
            { hidden: true, src: '/bff/silent-login' });
        const onMessage = (e) => {
          if (e.origin === location.origin && e.source === frame.contentWindow
              && e.data && e.data.source === 'bff-silent-login') {
            removeEventListener('message', onMessage); frame.remove(); done(e.data.isLoggedIn);
          }
        };
        addEventListener('message', onMessage);
        setTimeout(() => done('timeout'), 10000);
        document.body.append(frame);";
    // Within WebDriver's default script timeout (30 s).
    c.execute_async(SCRIPT, vec![]).await.unwrap()
}

pub(crate) async fn walk_the_sample_app(
    provider: &impl WalkProvider,
    base: &str,
    api: &DemoApi,
    stores: &WalkStores,
) {
    let (_driver, c, profile) = chromium().await;
    let mut log = NetworkLog {
        events: Vec::new(),
        scanned: Default::default(),
    };
    let scan = Scan {
        api,
        client_secret: provider.client_secret(),
        origin_with_own_jwts: provider.origin_with_own_jwts(),
        bff_logout: format!("{base}/bff/logout"),
        id_token_hint_seen: Default::default(),
    };
    let shot = |name: &str| format!("{}{name}", provider.screenshot_prefix());
    let walk = async {
        // Logged out.
        c.goto(&format!("{base}/")).await.unwrap();
        let status = c.wait().for_element(Locator::Id("status")).await.unwrap();
        wait_for_text(&status, "Not logged in").await;
        screenshot(&c, &shot("1-logged-out")).await;
        scan.page(&c, &mut log, "logged out").await;

        // The provider's form.
        c.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        sign_in_at_provider_form(&c, provider, Some(&shot("2-provider-login"))).await;

        // Back in the app, logged in on the first page, with the user's claims.
        let status =
            element_after_navigation(&c, Locator::Id("status"), Duration::from_secs(20)).await;
        wait_for_text(&status, LOGGED_IN_AS).await;
        let issued_at = std::time::Instant::now();
        let claims = c
            .find(Locator::Id("claims"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(claims.contains("alice@example.test"), "{claims}");
        assert_eq!(
            stores.sessions().await,
            1,
            "the session is not in PostgreSQL"
        );

        // The API through the proxy, with alice's token.
        let first = call_api(&c).await;
        screenshot(&c, &shot("3-logged-in-api")).await;
        let scanned = scan.page(&c, &mut log, "logged in").await;
        // The scan really read the answers the page got, not just their headers.
        for body in ["/bff/user", "/api/demo/hello"] {
            assert!(
                scanned
                    .iter()
                    .any(|what| what.starts_with("body of") && what.contains(body)),
                "the body of {body} was not scanned: {scanned:?}"
            );
        }
        let grants_before = provider.refresh_grants().await;
        assert_eq!(grants_before, 0, "a refresh before the token went stale");

        // The token goes stale: the next call refreshes it, once.
        let stale_after = Duration::from_secs(ACCESS_TOKEN_TTL_SECS - REFRESH_MARGIN_SECS + 1);
        if let Some(wait) = stale_after.checked_sub(issued_at.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let second = call_api(&c).await;
        assert_ne!(first, second, "the stale token was not refreshed");
        assert_eq!(provider.refresh_grants().await, 1);
        let third = call_api(&c).await;
        assert_eq!(second, third, "a fresh token was refreshed again");
        assert_eq!(provider.refresh_grants().await, 1);
        scan.page(&c, &mut log, "after the refresh").await;

        // Two tabs refresh at the same moment; both keep working.
        let first_tab = c.window().await.unwrap();
        let second_tab = c.new_window(true).await.unwrap().handle;
        c.switch_to_window(second_tab.clone()).await.unwrap();
        c.goto(&format!("{base}/")).await.unwrap();
        let status = c.wait().for_element(Locator::Id("status")).await.unwrap();
        wait_for_text(&status, LOGGED_IN_AS).await;
        let start_refresh = "window.__refresh = fetch('/bff/refresh', {method: 'POST', \
             credentials: 'include', headers: {'x-csrf': '1'}}).then(r => r.status); return 1;";
        c.execute(start_refresh, vec![]).await.unwrap();
        c.switch_to_window(first_tab.clone()).await.unwrap();
        c.execute(start_refresh, vec![]).await.unwrap();
        let both = async |c: &Client| {
            c.execute_async(
                "const done = arguments[0]; window.__refresh.then(done);",
                vec![],
            )
            .await
            .unwrap()
        };
        assert_eq!(both(&c).await, 200);
        c.switch_to_window(second_tab).await.unwrap();
        assert_eq!(both(&c).await, 200);
        let from_second_tab = call_api(&c).await;
        c.close_window().await.unwrap();
        c.switch_to_window(first_tab).await.unwrap();
        let from_first_tab = call_api(&c).await;
        assert_eq!(
            from_first_tab, from_second_tab,
            "the tabs ended up with different tokens"
        );
        scan.page(&c, &mut log, "two tabs").await;

        // Logout: through the provider and back, logged out.
        c.find(Locator::Id("logout"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        provider.through_logout(&c).await;
        let status =
            element_after_navigation(&c, Locator::Id("status"), Duration::from_secs(20)).await;
        wait_for_text(&status, "Not logged in").await;
        assert_eq!(c.current_url().await.unwrap().as_str(), format!("{base}/"));
        screenshot(&c, &shot("4-logged-out-again")).await;
        scan.page(&c, &mut log, "after logout").await;
        assert!(
            scan.id_token_hint_seen
                .load(std::sync::atomic::Ordering::SeqCst),
            "logout did not go through the BFF's redirect (GET /bff/logout?sid=): script may have \
             read the logout URL and its ID token"
        );
        let cookies = c.get_all_cookies().await.unwrap();
        assert!(
            cookies.iter().all(|k| k.name() != "bff"),
            "the session cookie outlived logout"
        );
        assert_eq!(stores.sessions().await, 0, "logout left the session stored");
        assert!(
            api.tokens.lock().unwrap().len() >= 5,
            "the API was not called as often as the walk did"
        );

        // Log in again, then end the session at the provider itself: its back-channel logout
        // ends the BFF session, though the browser keeps its cookie.
        c.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        sign_in_at_provider_form(&c, provider, None).await;
        let status =
            element_after_navigation(&c, Locator::Id("status"), Duration::from_secs(20)).await;
        wait_for_text(&status, LOGGED_IN_AS).await;
        assert_eq!(stores.sessions().await, 1);
        // Silent login in a hidden iframe, as README.md shows it: with the provider's session
        // the page tells the app `true` and a new session replaces the old one.
        if provider.signs_in_silently_in_a_frame() {
            assert_eq!(silent_login(&c).await, serde_json::json!(true));
            assert_eq!(stores.sessions().await, 1, "the silent login's session");
            let status = c.find(Locator::Id("status")).await.unwrap();
            wait_for_text(&status, LOGGED_IN_AS).await;
        }
        provider.end_session_at_provider(&c).await;
        assert_eq!(
            stores.sessions().await,
            0,
            "the provider's back-channel logout did not end the stored session"
        );
        // WebDriver shows the cookies of the current page's site: look from a static file of
        // the BFF, which does not touch the session.
        c.goto(&format!("{base}/app.css")).await.unwrap();
        let cookies = c.get_all_cookies().await.unwrap();
        assert!(
            cookies.iter().any(|k| k.name() == "bff"),
            "the browser should still hold its (now dead) session cookie"
        );
        c.goto(&format!("{base}/")).await.unwrap();
        let status = c.wait().for_element(Locator::Id("status")).await.unwrap();
        wait_for_text(&status, "Not logged in").await;
        // Without a session at the provider, a silent login tells the app `false`.
        assert_eq!(silent_login(&c).await, serde_json::json!(false));
        assert_eq!(stores.sessions().await, 0);
        scan.page(&c, &mut log, "after the provider's logout").await;
    };
    let outcome = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(walk)).await;
    if let Err(panic) = outcome {
        let shot = screenshot(&c, &shot("failure")).await;
        let html = e2e_dir().join(format!("{}failure.html", provider.screenshot_prefix()));
        if let Ok(source) = c.source().await {
            let _ = std::fs::write(&html, source);
        }
        eprintln!(
            "browser walk failed; screenshot {} and page {}",
            shot.display(),
            html.display()
        );
        let _ = c.close().await;
        let _ = std::fs::remove_dir_all(&profile);
        std::panic::resume_unwind(panic);
    }
    let _ = c.close().await;
    let _ = std::fs::remove_dir_all(&profile);
}

#[tokio::test]
async fn chromium_walks_the_sample_app_through_the_proxy_a_refresh_and_logout() {
    if !prerequisite("local OpenID Provider (node)", idp_available())
        || !prerequisite("headless Chromium", browser_available())
    {
        return;
    }
    let Some(stores) = WalkStores::find().await else {
        return;
    };
    let api = demo_api().await;
    let reserved = reserve().await;
    // The provider posts back-channel logout tokens to this BFF when a session of its ends.
    let backchannel = format!("{}/bff/backchannel-logout", reserved.base);
    let idp = Idp::start_with_env(
        "127.0.0.2",
        &[reserved.callback(), reserved.app_page()],
        &[reserved.logout_return(), reserved.app_page()],
        &[("IDP_BACKCHANNEL_LOGOUT_URI", &backchannel)],
    );
    let extra = format!("{}{}", demo_route(&api), stores.toml());
    let mut config = config_with(&reserved.base, &idp.issuer, &extra);
    config.session.refresh_margin_secs = REFRESH_MARGIN_SECS;
    let server = reserved.serve(config).await;
    walk_the_sample_app(&LocalProvider { idp }, &server.base, &api, &stores).await;
    drop(server);
    stores.drop_schema().await;
}
