//! The app over the domain's fakes, and a cookie-keeping client that calls it in process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bff_domain::testkit::{
    DeleteGate, FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom,
};
use bff_domain::{Bff, BffPolicy, BffPorts, ProviderId, Providers, SessionLifetime};
use bff_http::HttpSettings;
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderMap, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, Request, Response};
use tokio::sync::{Notify, Semaphore};

pub const APP_ORIGIN: &str = "https://app.example";
pub const ISSUER: &str = "https://idp.example";

/// The settings a deployment over HTTPS gets by default, or plain-HTTP dev mode's.
pub fn settings(secure: bool) -> HttpSettings {
    let (session, binding, logout) = if secure {
        (
            "__Host-Http-bff",
            "__Host-Http-bff-login",
            "__Host-Http-bff-logout",
        )
    } else {
        ("bff", "bff-login", "bff-logout")
    };
    HttpSettings {
        prefix: "/bff".into(),
        session_cookie: session.into(),
        binding_cookie: binding.into(),
        logout_cookie: logout.into(),
        secure_cookies: secure,
        app_origins: vec![APP_ORIGIN.into()],
        cors: false,
        trusted_proxies: Default::default(),
        request_limits: bff_http::RequestLimits::default(),
    }
}

/// The use cases over the testkit's fakes and `provider`.
pub fn bff(provider: Arc<FakeProvider>) -> Arc<Bff> {
    bff_over(provider, Arc::new(FakeStores::default()))
}

/// [`bff`] over `stores`, which the test keeps to look into or to slow down.
pub fn bff_over(provider: Arc<FakeProvider>, stores: Arc<FakeStores>) -> Arc<Bff> {
    Arc::new(Bff::new(
        BffPorts {
            sessions: stores.clone(),
            pending_logins: stores.clone(),
            locks: stores.clone(),
            replay: stores,
            cipher: Arc::new(FakeCipher),
            clock: Arc::new(FixedClock::at(1_700_000_000)),
            random: Arc::new(SeededRandom::new(7)),
        },
        Providers::new(vec![provider], ProviderId::parse("main").unwrap()).unwrap(),
        BffPolicy {
            lifetime: SessionLifetime::default(),
            pending_login_ttl: Duration::from_secs(600),
            callback_url: format!("{APP_ORIGIN}/bff/callback"),
            app_redirect_url: format!("{APP_ORIGIN}/"),
            refresh_margin: Duration::from_secs(60),
            fetch_userinfo: false,
            renewal: None,
            client_binding: Default::default(),
        },
    ))
}

/// Session deletes held until the test lets them go on, telling it when one has started: a
/// store slow enough for a caller to give up waiting ([`FakeStores::delete_gate`]).
pub struct HeldDeletes {
    started: Notify,
    go_on: Semaphore,
}

impl HeldDeletes {
    /// Holds every session delete of `stores` from now on.
    pub fn on(stores: &FakeStores) -> Arc<Self> {
        let held = Arc::new(Self {
            started: Notify::new(),
            go_on: Semaphore::new(0),
        });
        let gate = held.clone();
        *stores.delete_gate.lock().unwrap() = Some(DeleteGate(Arc::new(move || {
            let held = gate.clone();
            Box::pin(async move {
                held.started.notify_one();
                let _go = held.go_on.acquire().await.unwrap();
            })
        })));
        held
    }

    /// Waits until a delete has started, aborts `caller` (the client went away; the server
    /// drops the handler), then lets every delete go on.
    pub async fn abort_while_deleting(&self, caller: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(10), self.started.notified())
            .await
            .expect("no delete started");
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        self.go_on.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

/// A fresh browser at an app whose session deletes are held, and the fakes it runs on.
pub fn browser_with_held_deletes() -> (Arc<Browser>, Arc<HeldDeletes>, Arc<FakeStores>) {
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    let stores = Arc::new(FakeStores::default());
    let held = HeldDeletes::on(&stores);
    let bff = bff_over(provider.clone(), stores.clone());
    (Arc::new(Browser::at(bff, provider, true)), held, stores)
}

/// Waits up to 2 s for `done`, checking every 10 ms: for work the test no longer awaits.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not done within 2 s: {what}");
}

/// The OpenAPI document of the endpoints.
pub fn spec() -> String {
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    bff_http::openapi_service(bff(provider), Arc::new(settings(true))).spec()
}

/// The OpenAPI document of the admin endpoints.
pub fn admin_spec() -> String {
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    bff_http::admin_openapi_service(bff(provider)).spec()
}

/// What the app answered.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// The `Set-Cookie` line for cookie `name`, if the answer set or cleared it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|line| line.starts_with(&format!("{name}=")))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The problem's `code`, checking that the answer is problem+json.
    pub fn problem_code(&self) -> String {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert_eq!(content_type, "application/problem+json", "{}", self.body);
        self.json()["code"].as_str().unwrap().to_owned()
    }
}

/// Status (0 when unreadable), headers (lower-case names, in order) and body of one HTTP/1.1
/// answer read off a raw connection, for tests that speak raw TCP.
pub fn parse_raw_answer(raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// The value a `Set-Cookie` line sets (empty when it clears the cookie).
pub fn cookie_value(line: &str) -> &str {
    line.split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value)
        .unwrap_or_default()
}

/// Whether a `Set-Cookie` line has `attribute` (case-insensitive, `Max-Age=0` style included).
pub fn has_attribute(line: &str, attribute: &str) -> bool {
    line.split(';')
        .skip(1)
        .any(|a| a.trim().eq_ignore_ascii_case(attribute))
}

/// A browser on the app origin: keeps cookies between calls (no expiry other than `Max-Age=0`).
pub struct Browser {
    app: BoxEndpoint<'static, Response>,
    pub provider: Arc<FakeProvider>,
    pub settings: HttpSettings,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    /// A fresh browser at a fresh app.
    pub fn new(secure: bool) -> Browser {
        let provider = Arc::new(FakeProvider::new("main", ISSUER));
        Self::at(bff(provider.clone()), provider, secure)
    }

    /// A fresh browser at the app over `bff`, whose provider is `provider`.
    pub fn at(bff: Arc<Bff>, provider: Arc<FakeProvider>, secure: bool) -> Browser {
        let settings = settings(secure);
        let app = bff_http::app(bff, Arc::new(settings.clone()), Vec::new(), None, None)
            .map_to_response()
            .boxed();
        Browser {
            app,
            provider,
            settings,
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    pub fn remove_cookie(&self, name: &str) {
        self.jar.lock().unwrap().remove(name);
    }

    /// Sends `method path` with `headers` (and a JSON `body`), carrying and then updating the
    /// cookies.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Answer {
        let body = body.map(|body| ("application/json", body.to_string().into_bytes()));
        self.send_bytes(method, path, headers, body).await
    }

    /// Sends `method path` with `headers` and a `(content type, bytes)` body, carrying and then
    /// updating the cookies.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri_str(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let cookies = {
            let jar = self.jar.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookies.is_empty() {
            builder = builder.header(header::COOKIE, cookies);
        }
        let req = match body {
            Some((content_type, bytes)) => builder.content_type(content_type).body(bytes),
            None => builder.finish(),
        };
        let resp = self.app.call(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().into_string().await.unwrap();
        let answer = Answer {
            status,
            headers,
            body,
        };
        let mut jar = self.jar.lock().unwrap();
        for line in answer.headers.get_all(header::SET_COOKIE) {
            let line = line.to_str().unwrap();
            let name = line.split('=').next().unwrap().to_owned();
            if has_attribute(line, "Max-Age=0") {
                jar.remove(&name);
            } else {
                jar.insert(name, cookie_value(line).to_owned());
            }
        }
        answer
    }

    /// A top-level navigation: no `x-csrf`, no `Origin`.
    pub async fn navigate(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], None).await
    }

    /// What the app's `fetch` sends for a `GET`.
    pub async fn api_get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[("x-csrf", "1")], None).await
    }

    /// What the app's `fetch` sends for a `POST`.
    pub async fn api_post(&self, path: &str, body: Option<serde_json::Value>) -> Answer {
        self.send(
            Method::POST,
            path,
            &[
                ("x-csrf", "1"),
                ("origin", APP_ORIGIN),
                ("accept", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Logs in through the redirect-style endpoints (the fake provider approves at once).
    pub async fn log_in(&self) {
        let start = self.navigate("/bff/login?returnUrl=/").await;
        assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
        let location = start.location().unwrap();
        let state = query_param(&location, "state").unwrap();
        let callback = self
            .navigate(&format!(
                "/bff/callback?state={state}&code=the-code&iss={ISSUER}"
            ))
            .await;
        assert_eq!(callback.status, StatusCode::OK, "{}", callback.body);
        assert!(
            self.cookie(&self.settings.session_cookie).is_some(),
            "no session cookie after login"
        );
    }
}

/// The value of query parameter `name` in `url` (absolute or a path).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse("https://base.example/")
        .unwrap()
        .join(url)
        .unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
