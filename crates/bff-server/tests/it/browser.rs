//! A real browser: headless Chromium logs in through the sample page served by `bff-server`, and
//! the first page after the return is already logged in with a `SameSite=Strict` cookie.
//!
//! The provider runs on another site (`127.0.0.2`) than the app (`127.0.0.1`), as in production,
//! so the return from the provider is a cross-site navigation. The test reads Chromium's network
//! log to prove that the navigation request for the first page itself carried the session
//! cookie (which a plain redirect from the callback would not achieve under `SameSite=Strict`).

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub(crate) fn browser_available() -> Result<(), String> {
    for path in [CHROMIUM, CHROMEDRIVER] {
        if !std::path::Path::new(path).exists() {
            return Err(format!(
                "{path} not found (Debian packages chromium, chromium-driver)"
            ));
        }
    }
    Ok(())
}

/// chromedriver in a process group of its own, so the Chromium it launches goes with it on drop
/// even when an assertion failed before the WebDriver session was closed.
pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh headless Chromium behind chromedriver, with DevTools network events in its
/// `performance` log; the profile folder is removed by the caller.
pub(crate) async fn chromium() -> (Driver, fantoccini::Client, std::path::PathBuf) {
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = std::env::temp_dir().join(format!("bff-chromium-{}-{port}", std::process::id()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--window-size=1000,1100",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    caps.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({"performance": "ALL"}),
    );
    for _ in 0..50 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return (driver, c, profile),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("chromedriver did not accept a session");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn chromium_logs_in_and_the_first_page_is_logged_in() {
    if !prerequisite("local OpenID Provider (node)", idp_available())
        || !prerequisite("headless Chromium", browser_available())
    {
        return;
    }
    let (idp, server, _) = provider_on_host_and_server("127.0.0.2").await;

    let (_driver, c, profile) = chromium().await;

    let result = async {
        c.goto(&format!("{}/", server.base)).await?;
        let status = c.wait().for_element(Locator::Id("status")).await?;
        wait_for_text(&status, "Not logged in").await;
        // The page's login link, with a return URL this browser has never loaded, so the first
        // page after login cannot come from the HTTP cache.
        let href = c.find(Locator::Id("login")).await?.attr("href").await?.unwrap_or_default();
        assert_eq!(href, "/bff/login?returnUrl=/");
        c.goto(&format!("{}/bff/login?returnUrl=/%3Fwelcome", server.base)).await?;

        // The provider's login page.
        let login = c
            .wait()
            .for_element(Locator::Css("input[name=login]"))
            .await?;
        assert!(c.current_url().await?.as_str().starts_with(&idp.issuer));
        login.send_keys("alice").await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys("wonderland")
            .await?;
        c.find(Locator::Css("form [type=submit]"))
            .await?
            .click()
            .await?;
        // Consent, when the provider asks.
        if let Ok(button) = c
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css("form[action*=confirm] [type=submit]"))
            .await
        {
            button.click().await?;
        }

        // Back on the app's first page: already logged in.
        let status = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id("status"))
            .await?;
        wait_for_text(&status, "Logged in as Alice Liddell").await;
        assert_eq!(c.current_url().await?.as_str(), format!("{}/?welcome", server.base));

        let cookies = c.get_all_cookies().await?;
        let session = cookies
            .iter()
            .find(|k| k.name() == "bff")
            .expect("session cookie");
        assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
        assert_eq!(session.http_only(), Some(true));
        // The page's scripts cannot read it.
        let visible = c.execute("return document.cookie", vec![]).await?;
        assert!(
            !visible.as_str().unwrap_or("").contains("bff="),
            "{visible}"
        );

        // The top-level navigation to the first page carried the session cookie.
        let log = c.issue_cmd(PerformanceLog).await?;
        let cookie_headers = document_request_cookies(&log, &format!("{}/?welcome", server.base));
        assert!(
            cookie_headers.last().is_some_and(|c| c.contains("bff=")),
            "the first page's navigation request did not carry the session cookie: {cookie_headers:?}"
        );
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    result.unwrap();
}

/// Silent login with the provider on another site than the app, in a real browser, without a
/// session there: the provider's `login_required` comes back into the iframe through a
/// cross-site redirect, and the callback must still see the BFF's `SameSite=Lax`
/// login-binding cookie (the frame is the app's own site) to turn it into the page's `false`;
/// a refused callback would leave the app waiting for its timeout.
#[tokio::test]
async fn chromium_silent_login_with_a_provider_on_another_site_answers_the_app() {
    if !prerequisite("local OpenID Provider (node)", idp_available())
        || !prerequisite("headless Chromium", browser_available())
    {
        return;
    }
    let (_idp, server, _) = provider_on_host_and_server("127.0.0.2").await;
    let (_driver, c, profile) = chromium().await;
    let result = async {
        c.goto(&format!("{}/", server.base)).await?;
        let status = c.wait().for_element(Locator::Id("status")).await?;
        wait_for_text(&status, "Not logged in").await;
        Ok::<_, fantoccini::error::CmdError>(crate::browser_app::silent_login(&c).await)
    }
    .await;
    let _ = c.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(result.unwrap(), serde_json::json!(false));
}

/// The element `locator` finds once the page stops navigating, waiting up to `timeout`: after a
/// redirect chain (provider, callback, app) a lookup can land mid-navigation, which chromedriver
/// answers "aborted by navigation" instead of waiting; that is retried, anything else fails.
pub(crate) async fn element_after_navigation(
    c: &fantoccini::Client,
    locator: fantoccini::Locator<'_>,
    timeout: Duration,
) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match c.wait().at_most(left).for_element(locator).await {
            Ok(element) => return element,
            Err(fantoccini::error::CmdError::NotW3C(value))
                if value.as_str() == Some("aborted by navigation")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("{locator:?}: {err}"),
        }
    }
}

pub(crate) async fn wait_for_text(element: &fantoccini::elements::Element, expected: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        last = element.text().await.unwrap_or_default();
        if last.contains(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {expected:?}, page shows {last:?}");
}

/// Chromium's `performance` log (DevTools network events), through chromedriver.
#[derive(Debug)]
pub(crate) struct PerformanceLog;

impl fantoccini::wd::WebDriverCompatibleCommand for PerformanceLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (poem::http::Method, Option<String>) {
        (
            poem::http::Method::POST,
            Some(r#"{"type":"performance"}"#.to_owned()),
        )
    }
}

/// The `Cookie` header of each top-level document request for `url`, in order.
fn document_request_cookies(log: &serde_json::Value, url: &str) -> Vec<String> {
    let events: Vec<serde_json::Value> = log
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["message"].as_str())
        .filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .map(|m| m["message"].clone())
        .collect();
    let request_ids: Vec<String> = events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter(|e| e["params"]["type"] == "Document" && e["params"]["request"]["url"] == url)
        .filter_map(|e| e["params"]["requestId"].as_str().map(str::to_owned))
        .collect();
    request_ids
        .iter()
        .map(|id| {
            events
                .iter()
                .filter(|e| e["method"] == "Network.requestWillBeSentExtraInfo")
                .filter(|e| e["params"]["requestId"] == id.as_str())
                .filter_map(|e| {
                    let headers = &e["params"]["headers"];
                    headers["Cookie"]
                        .as_str()
                        .or(headers["cookie"].as_str())
                        .map(str::to_owned)
                })
                .next_back()
                .unwrap_or_default()
        })
        .collect()
}
