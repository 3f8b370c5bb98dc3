//! Test support for the axum host: the prerequisite gate, the local OpenID Provider process
//! (`e2e/idp/server.mjs`), the host on port 0, and a cookie-keeping client that walks the
//! provider's login pages like a browser.
//!
//! Copied in small parts from `bff-server`'s integration harness (`crates/bff-server/tests/it/
//! support.rs`) rather than shared, so this example depends on no `bff-server` code at all.

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bff_domain::Secret;
use bff_example_axum::{HostConfig, PublicSite, app, build_bff};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use tokio::sync::oneshot;

pub const CLIENT_ID: &str = "bff-basic";
pub const CLIENT_SECRET: &str = "bff-basic-secret";
const VAULT_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Whether a test with an external prerequisite runs: a missing one skips it with a
/// `SKIPPED <test>: …` line on stderr, except under `CI`, where it fails the test.
pub fn prerequisite(name: &str, available: Result<(), String>) -> bool {
    match available {
        Ok(()) => true,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{name} is required under CI but unavailable: {why}")
        }
        Err(why) => {
            // Straight to stderr: the harness swallows `eprintln!` of passing tests.
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {test}: {name} unavailable: {why}"
            );
            false
        }
    }
}

fn idp_dir() -> PathBuf {
    // The run-time value: the compile-time one can name another checkout sharing the target dir.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../../e2e/idp")
}

/// Node.js is present and the pinned provider is installed (`npm ci` once if it is not).
pub fn idp_available() -> Result<(), String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Err("node is not installed".into());
    }
    if idp_dir().join("node_modules/oidc-provider").exists() {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(idp_dir())
        .status()
        .map_err(|e| format!("npm: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm ci failed: {status}"))
    }
}

/// The local OpenID Provider, stopped on drop.
pub struct Idp {
    child: Child,
    pub issuer: String,
}

impl Idp {
    /// Starts the provider on 127.0.0.1, accepting `redirect_uri`, and waits for `IDP_READY`.
    pub fn start(redirect_uri: &str) -> Idp {
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(idp_dir())
            .env("IDP_PORT", "0")
            .env("IDP_LISTEN_HOST", "127.0.0.1")
            .env("IDP_REDIRECT_URIS", redirect_uri)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node e2e/idp/server.mjs");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Both pipes are drained to the end, so the provider never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("IDP_READY ") {
                    let _ = tx.send(issuer.trim().to_owned());
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(issuer) => Idp { child, issuer },
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                let stderr: Vec<String> = err_rx.try_iter().collect();
                panic!(
                    "the local provider did not get ready ({why:?}); stderr:\n{}",
                    stderr.join("\n")
                );
            }
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The axum host on a port of 127.0.0.1, stopped on drop.
pub struct Host {
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The provider and the host wired to it: the port is bound first so the provider can be told
/// the host's callback URL.
pub async fn provider_and_host() -> (Idp, Host) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = Idp::start(&format!("{base}/callback"));
    let config = HostConfig {
        site: PublicSite::parse(&base).unwrap(),
        issuer: idp.issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        vault_key: Some(Secret::new(VAULT_KEY)),
    };
    let bff = build_bff(&config).await.expect("wire the host");
    let router = app(std::sync::Arc::new(bff), config.site);
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (
        idp,
        Host {
            base,
            shutdown: Some(tx),
        },
    )
}

/// A browser-like client: keeps cookies and does not follow redirects by itself.
pub struct Browser {
    pub http: reqwest::Client,
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Set-Cookie` line for cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The problem's `code`, after checking that the page is a problem document.
    pub fn problem_code(&self) -> String {
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        let problem = self.json();
        let code = problem["code"].as_str().unwrap().to_owned();
        assert_eq!(problem["type"], format!("urn:bff:problem:{code}"));
        assert_eq!(problem["status"], self.status);
        code
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    pub async fn read(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::read(self.http.get(url).send().await.unwrap()).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Page {
        Self::read(self.http.post(url).form(form).send().await.unwrap()).await
    }

    /// Walks the provider from `authorization_url`: follows its redirects, fills the login form
    /// with alice's credentials, confirms consent, and returns the first URL outside the
    /// provider it redirects to (the host's callback), without requesting it.
    pub async fn sign_in_at_provider(&self, authorization_url: &str, issuer: &str) -> String {
        let mut next = authorization_url.to_owned();
        for _ in 0..20 {
            if !next.starts_with(issuer) {
                return next;
            }
            let page = self.get(&next).await;
            if let Some(location) = page.location() {
                next = absolute(issuer, &location);
                continue;
            }
            assert_eq!(page.status, 200, "provider page at {next}: {}", page.body);
            let action = form_action(&page.body)
                .unwrap_or_else(|| panic!("no form on provider page {next}: {}", page.body));
            let action = absolute(issuer, &action);
            let page = if page.body.contains("name=\"password\"") {
                self.post_form(&action, &[("login", "alice"), ("password", "wonderland")])
                    .await
            } else {
                self.post_form(&action, &[]).await
            };
            next = absolute(
                issuer,
                &page
                    .location()
                    .unwrap_or_else(|| panic!("provider did not redirect: {}", page.body)),
            );
        }
        panic!("the provider's flow did not finish in 20 steps");
    }
}

fn absolute(base: &str, location: &str) -> String {
    reqwest::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

/// The `action` of the first form on a page.
fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = form[start..].find('"')?;
    Some(form[start..start + end].replace("&amp;", "&"))
}
