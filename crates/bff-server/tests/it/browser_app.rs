//! The sample app (`examples/spa`) in headless Chromium, the whole way: logged out, the
//! provider's form, logged in with the user's claims, a call to a demo API through the proxy, the
//! access token going stale and refreshed once (counted at the provider), two tabs refreshing at
//! once, logout through the provider back to a logged-out app, and a second login ended by the
//! provider itself through back-channel logout.
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

use crate::browser::{PerformanceLog, browser_available, chromium, wait_for_text};
use crate::support::*;

/// The demo API behind the proxy: answers every call with a fingerprint of the bearer token it
/// got (so the page shows when the token changed) and records the tokens for the scans.
struct DemoApi {
    base: String,
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

async fn demo_api() -> DemoApi {
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
    async fn new_responses(&mut self, c: &Client) -> Vec<(String, String)> {
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
            seen.push((format!("headers of {url}"), headers));
            let body = c
                .issue_cmd(CdpCommand(
                    "Network.getResponseBody",
                    serde_json::json!({ "requestId": id }),
                ))
                .await;
            if let Ok(body) = body {
                seen.push((
                    format!("body of {url}"),
                    body["body"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        // Header lines of redirects (the `Location`s of the login and logout hops).
        for event in &self.events {
            if event["method"] == "Network.requestWillBeSent"
                && let Some(redirect) = event["params"].get("redirectResponse")
            {
                seen.push(("a redirect".into(), redirect["headers"].to_string()));
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

/// Fails when `text` holds a token the API received, something shaped like a JWT, or the
/// client secret.
fn assert_no_token(where_: &str, text: &str, api_tokens: &[String]) {
    for token in api_tokens {
        assert!(
            !text.contains(token.as_str()),
            "an access token in {where_}"
        );
    }
    assert!(
        !text.contains(CLIENT_SECRET),
        "the client secret in {where_}"
    );
    assert!(!contains_jwt(text), "a JWT in {where_}");
}

/// Scans the page as script sees it, and everything the browser received since the last scan;
/// returns what was scanned (`body of <url>`, `headers of <url>`, ...).
async fn scan_page(c: &Client, log: &mut NetworkLog, api: &DemoApi, step: &str) -> Vec<String> {
    let tokens = api.tokens.lock().unwrap().clone();
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
    assert_no_token(&format!("{step}: page storage"), &storage, &tokens);
    let html = c.source().await.unwrap();
    assert_no_token(&format!("{step}: page HTML"), &html, &tokens);
    let mut scanned = Vec::new();
    for (what, text) in log.new_responses(c).await {
        assert_no_token(&format!("{step}: {what}"), &text, &tokens);
        scanned.push(what);
    }
    scanned
}

async fn refresh_grants(issuer: &str) -> u64 {
    let counts: serde_json::Value = reqwest::get(format!("{issuer}/test/grants"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    counts["by_client"]["refresh_token"]["bff-basic"]
        .as_u64()
        .unwrap_or(0)
}

/// Fills and submits the local provider's login form as alice (and its consent, when asked),
/// taking the screenshot `filled` of the filled form when given.
async fn sign_in_at_provider_form(c: &Client, issuer: &str, filled: Option<&str>) {
    let login = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("input[name=login]"))
        .await
        .unwrap();
    assert!(c.current_url().await.unwrap().as_str().starts_with(issuer));
    login.send_keys("alice").await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("wonderland")
        .await
        .unwrap();
    if let Some(name) = filled {
        screenshot(c, name).await;
    }
    c.find(Locator::Css("form [type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if let Ok(button) = c
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("form[action*=confirm] [type=submit]"))
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

/// The access token is refreshed once it expires within this margin; the local provider's
/// tokens live 300 s, so they go stale 300 - margin seconds after they were issued.
const REFRESH_MARGIN_SECS: u64 = 280;

#[tokio::test]
async fn chromium_walks_the_sample_app_through_the_proxy_a_refresh_and_logout() {
    if !prerequisite("local OpenID Provider (node)", idp_available())
        || !prerequisite("headless Chromium", browser_available())
    {
        return;
    }
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
    let routes = format!(
        "[[routes]]\npath = \"/api/demo\"\nupstream = \"{}\"\ntoken = \"user\"\n",
        api.base
    );
    let mut config = config_with(&reserved.base, &idp.issuer, &routes);
    config.session.refresh_margin_secs = REFRESH_MARGIN_SECS;
    let server = reserved.serve(config).await;
    let base = server.base.clone();

    let (_driver, c, profile) = chromium().await;
    let mut log = NetworkLog {
        events: Vec::new(),
        scanned: Default::default(),
    };
    let walk = async {
        // Logged out.
        c.goto(&format!("{base}/")).await.unwrap();
        let status = c.wait().for_element(Locator::Id("status")).await.unwrap();
        wait_for_text(&status, "Not logged in").await;
        screenshot(&c, "1-logged-out").await;
        scan_page(&c, &mut log, &api, "logged out").await;

        // The provider's form.
        c.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        sign_in_at_provider_form(&c, &idp.issuer, Some("2-provider-login")).await;

        // Back in the app, logged in on the first page, with the user's claims.
        let status = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id("status"))
            .await
            .unwrap();
        wait_for_text(&status, "Logged in as Alice Liddell").await;
        let issued_at = std::time::Instant::now();
        let claims = c
            .find(Locator::Id("claims"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(claims.contains("alice@example.test"), "{claims}");

        // The API through the proxy, with alice's token.
        let first = call_api(&c).await;
        screenshot(&c, "3-logged-in-api").await;
        let scanned = scan_page(&c, &mut log, &api, "logged in").await;
        // The scan really read the answers the page got, not just their headers.
        for body in ["/bff/user", "/api/demo/hello"] {
            assert!(
                scanned
                    .iter()
                    .any(|what| what.starts_with("body of") && what.contains(body)),
                "the body of {body} was not scanned: {scanned:?}"
            );
        }
        assert_eq!(refresh_grants(&idp.issuer).await, 0);

        // The token goes stale: the next call refreshes it, once.
        let stale_after = Duration::from_secs(300 - REFRESH_MARGIN_SECS + 1);
        if let Some(wait) = stale_after.checked_sub(issued_at.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let second = call_api(&c).await;
        assert_ne!(first, second, "the stale token was not refreshed");
        assert_eq!(refresh_grants(&idp.issuer).await, 1);
        let third = call_api(&c).await;
        assert_eq!(second, third, "a fresh token was refreshed again");
        assert_eq!(refresh_grants(&idp.issuer).await, 1);
        scan_page(&c, &mut log, &api, "after the refresh").await;

        // Two tabs refresh at the same moment; both keep working.
        let first_tab = c.window().await.unwrap();
        let second_tab = c.new_window(true).await.unwrap().handle;
        c.switch_to_window(second_tab.clone()).await.unwrap();
        c.goto(&format!("{base}/")).await.unwrap();
        let status = c.wait().for_element(Locator::Id("status")).await.unwrap();
        wait_for_text(&status, "Logged in as Alice Liddell").await;
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
        scan_page(&c, &mut log, &api, "two tabs").await;

        // Logout: through the provider's confirmation and back, logged out.
        c.find(Locator::Id("logout"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
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
                .starts_with(&idp.issuer)
        );
        confirm.click().await.unwrap();
        let status = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id("status"))
            .await
            .unwrap();
        wait_for_text(&status, "Not logged in").await;
        assert_eq!(c.current_url().await.unwrap().as_str(), format!("{base}/"));
        screenshot(&c, "4-logged-out-again").await;
        scan_page(&c, &mut log, &api, "after logout").await;
        let cookies = c.get_all_cookies().await.unwrap();
        assert!(
            cookies.iter().all(|k| k.name() != "bff"),
            "the session cookie outlived logout"
        );
        assert!(
            api.tokens.lock().unwrap().len() >= 5,
            "the API was not called as often as the walk did"
        );

        // Log in again, then sign out at the provider itself (as from another app): its
        // back-channel logout ends the BFF session, though the browser keeps its cookie.
        c.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        sign_in_at_provider_form(&c, &idp.issuer, None).await;
        let status = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id("status"))
            .await
            .unwrap();
        wait_for_text(&status, "Logged in as Alice Liddell").await;
        c.goto(&format!("{}/session/end?client_id=bff-basic", idp.issuer))
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
        // The provider answers once its back-channel calls are done.
        let success = format!("{}/session/end/success", idp.issuer);
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
        scan_page(&c, &mut log, &api, "after the provider's logout").await;
    };
    let outcome = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(walk)).await;
    if let Err(panic) = outcome {
        let shot = screenshot(&c, "failure").await;
        let html = e2e_dir().join("failure.html");
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
