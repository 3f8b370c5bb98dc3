//! The API proxy end to end on loopback: a recording upstream (poem on 127.0.0.1:0), a BFF with
//! the testkit's stores and a scripted provider with the proxy mounted, and a browser played by
//! reqwest, or by raw HTTP/1.1 over TCP where a client library would clean up what a hostile
//! browser sends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bff_domain::ports::{
    AuthorizationRequest, ClientToken, Clock, IdentityProvider, ProviderError, ProviderLogin,
};
use bff_domain::testkit::{FakeCipher, FakeProvider, FakeStores, SeededRandom};
use bff_domain::{
    Bff, BffPolicy, BffPorts, BindingMode, Claims, ClientBindingPolicy, CompleteLogin, LoginStyle,
    Prompt, ProviderId, Providers, ReturnUrl, Secret, SessionId, SessionLifetime, SessionRenewal,
    StartLogin, Timestamp, TokenSet,
};
use bff_http::{
    ApiProxy, ForwardingHeaders, HttpSettings, IpNetwork, ProxyRouteConfig, TrustedProxies,
    route_table,
};
use futures_util::StreamExt;
use poem::listener::TcpAcceptor;
use poem::{Body, Endpoint, Request, Response, Server};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const ISSUER: &str = "https://idp.example";
const T0: i64 = 1_700_000_000;
const SESSION_COOKIE: &str = "__Host-Http-bff";
const APP_ORIGIN: &str = "https://app.example";
/// How long the provider takes to refresh, so concurrent calls find the refresh in flight.
const REFRESH_DELAY: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// The recording upstream
// ---------------------------------------------------------------------------------------------

/// What the upstream received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body_len: u64,
    body_sha256: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

#[derive(Default)]
struct UpstreamState {
    seen: Mutex<Vec<Seen>>,
    /// Opens the second server-sent event.
    second_event_gate: Notify,
    second_event_written: AtomicBool,
    /// Fired when an upload's first bytes arrived.
    first_upload_bytes: Notify,
}

#[derive(Clone)]
struct Upstream {
    addr: SocketAddr,
    state: Arc<UpstreamState>,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct Recorder(Arc<UpstreamState>);

impl Endpoint for Recorder {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let state = &self.0;
        let mut headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        headers.sort();
        let target = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default();
        let mut body = req.take_body().into_bytes_stream();
        let mut hasher = Sha256::new();
        let mut body_len = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(poem::error::BadRequest)?;
            if body_len == 0 && !chunk.is_empty() {
                state.first_upload_bytes.notify_one();
            }
            body_len += chunk.len() as u64;
            hasher.update(&chunk);
        }
        state.seen.lock().unwrap().push(Seen {
            method: req.method().as_str().to_owned(),
            target: target.clone(),
            headers,
            body_len,
            body_sha256: hex(&hasher.finalize()),
        });
        let path = target.split('?').next().unwrap_or_default().to_owned();
        Ok(match path.as_str() {
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Response::builder().body("too late")
            }
            "/events" => {
                let state = state.clone();
                let events = futures_util::stream::unfold(0u8, move |step| {
                    let state = state.clone();
                    async move {
                        match step {
                            0 => Some((Ok::<_, std::io::Error>(b"data: one\n\n".to_vec()), 1)),
                            1 => {
                                state.second_event_gate.notified().await;
                                state.second_event_written.store(true, Ordering::SeqCst);
                                Some((Ok(b"data: two\n\n".to_vec()), 2))
                            }
                            _ => None,
                        }
                    }
                });
                Response::builder()
                    .content_type("text/event-stream")
                    .header("cache-control", "no-cache")
                    .body(Body::from_bytes_stream(events))
            }
            ws if ws.starts_with("/ws") => {
                let Ok(upgrade) = req.take_upgrade() else {
                    return Ok(Response::builder()
                        .status(poem::http::StatusCode::BAD_REQUEST)
                        .finish());
                };
                tokio::spawn(async move {
                    let Ok(mut socket) = upgrade.await else {
                        return;
                    };
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                Response::builder()
                    .status(poem::http::StatusCode::SWITCHING_PROTOCOLS)
                    .header("upgrade", "websocket")
                    .header("connection", "upgrade")
                    .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                    .finish()
            }
            "/cookies" => Response::builder()
                .header("set-cookie", "upstream=1; Path=/")
                .header(
                    "set-cookie",
                    format!("{SESSION_COOKIE}=planted; Path=/; Secure"),
                )
                .body("cookies"),
            _ => Response::builder()
                .content_type("application/json")
                .header("x-upstream", "yes")
                .body(format!("{{\"ok\":true,\"received\":{body_len}}}")),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn serve(ep: impl Endpoint + 'static) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(ep));
    addr
}

async fn upstream() -> Upstream {
    let state = Arc::new(UpstreamState::default());
    let addr = serve(Recorder(state.clone())).await;
    Upstream { addr, state }
}

/// A loopback port nothing listens on, for the rest of the test process: a socket bound to it
/// without `listen`, so connections are refused. (A port bound and released could be taken by
/// another test's server in the meantime, which then answered `404` instead of the refusal.)
async fn closed_port() -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    std::mem::forget(socket);
    addr
}

// ---------------------------------------------------------------------------------------------
// The BFF
// ---------------------------------------------------------------------------------------------

/// A clock whose time a test sets, and whose waits are real (requests run concurrently).
struct TestClock(AtomicI64);

#[async_trait]
impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.0.load(Ordering::SeqCst))
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The testkit's provider, refreshing slowly.
struct SlowRefresh(Arc<FakeProvider>);

#[async_trait]
impl IdentityProvider for SlowRefresh {
    fn id(&self) -> &ProviderId {
        self.0.id()
    }

    fn issuer(&self) -> &str {
        self.0.issuer()
    }

    fn requires_issuer_in_authorization_response(&self) -> bool {
        self.0.requires_issuer_in_authorization_response()
    }

    fn authorization_request(
        &self,
        redirect_uri: &str,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        self.0.authorization_request(redirect_uri, prompt)
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderLogin, ProviderError> {
        self.0
            .exchange_code(code, pkce_verifier, redirect_uri, nonce, now)
            .await
    }

    async fn refresh(
        &self,
        refresh_token: &Secret,
        original: &Claims,
        now: Timestamp,
    ) -> Result<TokenSet, ProviderError> {
        tokio::time::sleep(REFRESH_DELAY).await;
        self.0.refresh(refresh_token, original, now).await
    }

    async fn revoke_refresh_token(&self, refresh_token: &Secret) -> Result<(), ProviderError> {
        self.0.revoke_refresh_token(refresh_token).await
    }

    async fn client_credentials(
        &self,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<ClientToken, ProviderError> {
        self.0.client_credentials(scopes, now).await
    }

    async fn userinfo(
        &self,
        access_token: &Secret,
        expected_subject: &str,
    ) -> Result<Option<Claims>, ProviderError> {
        self.0.userinfo(access_token, expected_subject).await
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>, state: &str) -> Option<String> {
        self.0.end_session_url(id_token_hint, state)
    }

    async fn validate_logout_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<bff_domain::ports::LogoutToken, ProviderError> {
        self.0.validate_logout_token(token, now).await
    }
}

struct World {
    bff: Arc<Bff>,
    stores: Arc<FakeStores>,
    clock: Arc<TestClock>,
    provider: Arc<FakeProvider>,
    upstream: Upstream,
    /// `http://127.0.0.1:port` of the BFF.
    base: String,
    addr: SocketAddr,
    /// The same BFF behind a trusted reverse proxy: it believes `X-Forwarded-*` from loopback.
    behind_proxy: SocketAddr,
    browser: reqwest::Client,
}

fn route(path: &str, upstream: &str, token: &str) -> ProxyRouteConfig {
    ProxyRouteConfig {
        path: path.into(),
        upstream: upstream.into(),
        token: token.into(),
        methods: None,
        required_scopes: Vec::new(),
        provider: None,
        connect_timeout_ms: Some(1000),
        timeout_ms: Some(10_000),
        forward_set_cookie: false,
        websocket: false,
        csrf_on_reads: true,
        headers: BTreeMap::new(),
        max_body_bytes: None,
        ca_file: None,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`] with its policy changed by `tweak`.
async fn world_with(tweak: impl FnOnce(&mut BffPolicy)) -> World {
    let upstream = upstream().await;
    let up = upstream.base();
    let down = format!("http://{}", closed_port().await);

    let stores = Arc::new(FakeStores::default());
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    let other = Arc::new(FakeProvider::new("other", "https://other.example"));
    let mut policy = BffPolicy {
        lifetime: SessionLifetime {
            idle: Duration::from_secs(1800),
            absolute: Duration::from_secs(7200),
        },
        pending_login_ttl: Duration::from_secs(300),
        callback_url: "https://app.example/bff/callback".into(),
        app_redirect_url: "https://app.example/".into(),
        refresh_margin: Duration::from_secs(60),
        fetch_userinfo: false,
        renewal: None,
        client_binding: Default::default(),
    };
    tweak(&mut policy);
    let bff = Arc::new(Bff::new(
        BffPorts {
            sessions: stores.clone(),
            pending_logins: stores.clone(),
            locks: stores.clone(),
            replay: stores.clone(),
            cipher: Arc::new(FakeCipher),
            clock: clock.clone(),
            random: Arc::new(SeededRandom::new(42)),
        },
        Providers::new(
            vec![Arc::new(SlowRefresh(provider.clone())), other],
            ProviderId::parse("main").unwrap(),
        )
        .unwrap(),
        policy,
    ));
    let settings = Arc::new(HttpSettings {
        prefix: "/bff".into(),
        session_cookie: SESSION_COOKIE.into(),
        binding_cookie: "__Host-Http-bff-login".into(),
        logout_cookie: "__Host-Http-bff-logout".into(),
        secure_cookies: true,
        app_origins: vec![APP_ORIGIN.into()],
        cors: false,
        trusted_proxies: Default::default(),
        request_limits: bff_http::RequestLimits::default(),
    });

    let mut scoped = route("/api/scoped", &up, "user");
    scoped.required_scopes = vec!["profile".into(), "orders.read".into()];
    let mut profile = route("/api/profile", &up, "user");
    profile.required_scopes = vec!["profile".into()];
    let mut other_provider = route("/api/other", &up, "user");
    other_provider.provider = Some("other".into());
    let mut slow = route("/api/slow", &format!("{up}/slow"), "user");
    slow.timeout_ms = Some(300);
    slow.connect_timeout_ms = Some(300);
    let mut cookies_on = route("/api/cookies-on", &format!("{up}/cookies"), "user");
    cookies_on.forward_set_cookie = true;
    let mut keyed = route("/api/keyed", &up, "user");
    keyed.headers.insert("x-api-key".into(), "k-123".into());
    let mut read_only = route("/api/read-only", &up, "none");
    read_only.methods = Some(vec!["GET".into()]);
    // 64 MiB through a debug build, hashed at the upstream: more than the usual 10 s.
    let mut upload = route("/api/upload", &format!("{up}/upload"), "user");
    upload.timeout_ms = Some(300_000);
    let mut capped = route("/api/capped", &format!("{up}/upload"), "user");
    capped.max_body_bytes = Some(CAPPED_LIMIT);
    let mut live = route("/api/live", &format!("{up}/ws"), "user");
    live.websocket = true;
    let mut assets = route("/api/assets", &format!("{up}/public"), "none");
    assets.csrf_on_reads = false;
    let mut reports = route("/api/reports", &format!("{up}/reports"), "client");
    reports.required_scopes = vec!["reports.read".into()];
    let configs = vec![
        live,
        reports,
        route("/api/either", &format!("{up}/either"), "user_or_client"),
        route("/api/orders", &format!("{up}/v1"), "user"),
        route("/api/public", &format!("{up}/public"), "none"),
        assets,
        scoped,
        profile,
        other_provider,
        route("/api/down", &down, "user"),
        slow,
        route("/api/events", &format!("{up}/events"), "user"),
        route("/api/cookies-off", &format!("{up}/cookies"), "user"),
        cookies_on,
        keyed,
        read_only,
        upload,
        capped,
    ];
    let table = route_table(&configs, &["main", "other"], "/bff").unwrap();
    let proxy = ApiProxy::new(bff.clone(), settings.clone(), table, &Default::default()).unwrap();
    let loopback_proxy = TrustedProxies::new(
        vec![IpNetwork::parse("127.0.0.1").unwrap()],
        ForwardingHeaders::XForwarded,
    );
    let trusting = proxy.clone().with_trusted_proxies(loopback_proxy.clone());
    let app = bff_http::app(bff.clone(), settings.clone(), Vec::new(), None, Some(proxy));
    let addr = serve(app).await;
    // Trusted by the proxy and by the rest of the app (a `traceparent` is believed too).
    let trusting_settings = Arc::new(HttpSettings {
        trusted_proxies: loopback_proxy,
        ..(*settings).clone()
    });
    let app = bff_http::app(
        bff.clone(),
        trusting_settings,
        Vec::new(),
        None,
        Some(trusting),
    );
    let behind_proxy = serve(app).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    World {
        bff,
        stores,
        clock,
        provider,
        upstream,
        base: format!("http://{addr}"),
        addr,
        behind_proxy,
        browser,
    }
}

/// Logs alice in through the use cases: the provider issues `access-2`, expiring at T0 + 300.
async fn login(w: &World) -> SessionId {
    let started = w
        .bff
        .start_login(StartLogin {
            provider: None,
            return_url: ReturnUrl::root(),
            prompt: None,
            style: LoginStyle::Redirect,
        })
        .await
        .unwrap();
    let state = w
        .stores
        .pending
        .lock()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    w.bff
        .complete_login(CompleteLogin {
            state,
            code: Some("code-1".into()),
            issuer: Some(ISSUER.into()),
            binding: Some(started.binding),
            ..CompleteLogin::default()
        })
        .await
        .unwrap()
        .session_id
        .unwrap()
}

fn cookie(id: &SessionId) -> String {
    format!("{SESSION_COOKIE}={}; theme=dark", id.expose())
}

/// A call as the app makes it: cookie, `x-csrf: 1`, the app's `Origin`.
fn app_call(
    w: &World,
    method: reqwest::Method,
    path: &str,
    id: &SessionId,
) -> reqwest::RequestBuilder {
    w.browser
        .request(method, format!("{}{path}", w.base))
        .header("cookie", cookie(id))
        .header("x-csrf", "1")
        .header("origin", APP_ORIGIN)
}

/// Everything the browser got, as text, to search for tokens.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    async fn of(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        let body = resp.text().await.unwrap();
        Self {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn code(&self) -> String {
        self.problem_member("code")
    }

    /// The problem's `reason`, or empty when it has none.
    fn reason(&self) -> String {
        self.problem_member("reason")
    }

    fn problem_member(&self, name: &str) -> String {
        let json: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body));
        json[name].as_str().unwrap_or_default().to_owned()
    }

    fn is_problem(&self) -> bool {
        self.header("content-type") == Some("application/problem+json; charset=utf-8")
            || self.header("content-type") == Some("application/problem+json")
    }

    /// No token the provider issued appears anywhere the browser can read.
    fn assert_no_token(&self) {
        for (name, value) in &self.headers {
            for secret in ["access-", "refresh-", "idtoken-"] {
                assert!(!value.contains(secret), "{name}: {value}");
            }
        }
        for secret in ["access-", "refresh-", "idtoken-", "Bearer"] {
            assert!(!self.body.contains(secret), "body: {}", self.body);
        }
    }
}

/// Sends `head` (request line and headers, CRLF-separated, without the final empty line) over
/// raw TCP, so the target reaches the server exactly as written.
async fn raw_request(addr: SocketAddr, head: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the BFF answers")
        .unwrap();
    let (status, headers, body) = crate::support::parse_raw_answer(&raw);
    Answer {
        status,
        headers,
        body,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_upstream_gets_the_users_token_and_none_of_the_browsers_credentials() {
    let w = world().await;
    let id = login(&w).await;
    let head = [
        "GET /api/orders/items/7?q=a%20b&x=1 HTTP/1.1".to_owned(),
        "Host: app.example".into(),
        format!("Cookie: {}", cookie(&id)),
        "x-csrf: 1".into(),
        "X_CSRF: 1".into(),
        "x.csrf: 1".into(),
        "Authorization: Basic YnJvd3Nlcjpzb3VyY2U=".into(),
        "authorization_: Bearer sneaky".into(),
        "Proxy-Authorization: Basic Zm9vOmJhcg==".into(),
        "proxy_authorization: Basic Zm9vOmJhcg==".into(),
        "X-Secret-Hop: named in Connection".into(),
        "Keep-Alive: timeout=5".into(),
        "TE: trailers".into(),
        "Forwarded: for=6.6.6.6;host=evil.example".into(),
        "X-Forwarded-For: 6.6.6.6".into(),
        "X-Forwarded-Host: evil.example".into(),
        "X-Forwarded-Proto: http".into(),
        "x_forwarded_for: 6.6.6.6".into(),
        "X-Real-IP: 6.6.6.6".into(),
        "Content_Length: 999".into(),
        "X-Request-Id: req-1".into(),
        "Accept: application/json".into(),
        "Connection: X-Secret-Hop".into(),
    ]
    .join("\r\n");
    let answer = raw_request(w.addr, &head).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, r#"{"ok":true,"received":0}"#);
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    answer.assert_no_token();

    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.method, "GET");
    assert_eq!(call.target, "/v1/items/7?q=a%20b&x=1");
    assert_eq!(call.header("authorization"), Some("Bearer access-2"));
    // The BFF's own request id, the one its answer carries, never the browser's.
    assert_eq!(call.header("x-request-id"), answer.header("x-request-id"));
    assert_ne!(call.header("x-request-id"), Some("req-1"));
    assert!(call.header("x-request-id").is_some());
    assert_eq!(call.header("accept"), Some("application/json"));
    assert_eq!(call.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(call.header("x-forwarded-proto"), Some("https"));
    assert_eq!(call.header("x-forwarded-host"), Some("app.example"));
    assert_eq!(
        call.header("host"),
        Some(w.upstream.addr.to_string().as_str())
    );
    for name in [
        "cookie",
        "x-csrf",
        "x_csrf",
        "x.csrf",
        "authorization_",
        "proxy-authorization",
        "proxy_authorization",
        "x-secret-hop",
        "keep-alive",
        "te",
        "forwarded",
        "x_forwarded_for",
        "x-real-ip",
        "content_length",
        "connection",
    ] {
        assert!(!call.has(name), "{name} reached the upstream: {call:#?}");
    }
    assert_eq!(
        call.headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count(),
        1
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
}

/// A `traceparent` from a trusted proxy goes on to the upstream as it came (traces are not
/// exported here); from anyone else none goes on, and `tracestate` never does.
#[tokio::test]
async fn a_trusted_traceparent_goes_upstream_unchanged_and_an_untrusted_one_not_at_all() {
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let w = world().await;
    let id = login(&w).await;
    for (addr, expected) in [(w.behind_proxy, Some(PARENT)), (w.addr, None)] {
        let head = [
            "GET /api/orders/items/7 HTTP/1.1".to_owned(),
            "Host: app.example".into(),
            format!("Cookie: {}", cookie(&id)),
            "x-csrf: 1".into(),
            format!("traceparent: {PARENT}"),
            "tracestate: vendor=opaque".into(),
        ];
        let answer = raw_request(addr, &head.join("\r\n")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let call = w.upstream.seen().last().cloned().unwrap();
        assert_eq!(call.header("traceparent"), expected, "{addr}");
        assert!(!call.has("tracestate"));
    }
}

/// Behind a trusted proxy (loopback here), the upstream hears of the client that proxy vouches
/// for: the right-most untrusted `X-Forwarded-For` hop, with its scheme and host; what the client
/// prepended, a `Forwarded` header the proxy does not write, and garbage never get through.
#[tokio::test]
async fn behind_a_trusted_proxy_the_upstream_hears_of_the_client_it_vouches_for() {
    let w = world().await;
    let id = login(&w).await;
    let cases = [
        (
            vec![
                "X-Forwarded-For: 6.6.6.6, 198.51.100.7",
                "X-Forwarded-Proto: https",
                "X-Forwarded-Host: shop.example",
                "Forwarded: for=7.7.7.7;proto=http;host=evil.example",
                "X-Real-IP: 8.8.8.8",
            ],
            ("198.51.100.7", "https", "shop.example"),
        ),
        (
            vec!["X-Forwarded-For: [2001:db8::7]:4711, 127.0.0.1"],
            ("2001:db8::7", "https", "app.example"),
        ),
        (
            // Garbage in the one hop the proxy wrote: the client is the proxy itself.
            vec![
                "X-Forwarded-For: 1.2.3.4, 999.1.1.1",
                "X-Forwarded-Host: evil.example/<x>",
            ],
            ("127.0.0.1", "https", "app.example"),
        ),
    ];
    for (forwarding, (address, proto, host)) in cases {
        let mut head = vec![
            "GET /api/orders/items/7 HTTP/1.1".to_owned(),
            "Host: app.example".into(),
            format!("Cookie: {}", cookie(&id)),
            "x-csrf: 1".into(),
        ];
        head.extend(forwarding.iter().map(|h| (*h).to_owned()));
        let answer = raw_request(w.behind_proxy, &head.join("\r\n")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let call = w.upstream.seen().last().cloned().unwrap();
        assert_eq!(
            call.header("x-forwarded-for"),
            Some(address),
            "{forwarding:?}"
        );
        assert_eq!(
            call.header("x-forwarded-proto"),
            Some(proto),
            "{forwarding:?}"
        );
        assert_eq!(
            call.header("x-forwarded-host"),
            Some(host),
            "{forwarding:?}"
        );
        for name in ["forwarded", "x-real-ip"] {
            assert!(!call.has(name), "{name} reached the upstream: {call:#?}");
        }
        let forwarding_headers = call
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-forwarded-"))
            .count();
        assert_eq!(forwarding_headers, 3, "{call:#?}");
    }

    // The same spoofed chain at the BFF that trusts nobody: the peer, its own scheme and host.
    let head = [
        "GET /api/orders/items/7 HTTP/1.1".to_owned(),
        "Host: app.example".into(),
        format!("Cookie: {}", cookie(&id)),
        "x-csrf: 1".into(),
        "X-Forwarded-For: 6.6.6.6, 198.51.100.7".into(),
        "X-Forwarded-Proto: http".into(),
        "X-Forwarded-Host: shop.example".into(),
    ]
    .join("\r\n");
    let answer = raw_request(w.addr, &head).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let call = w.upstream.seen().last().cloned().unwrap();
    assert_eq!(call.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(call.header("x-forwarded-proto"), Some("https"));
    assert_eq!(call.header("x-forwarded-host"), Some("app.example"));
}

#[tokio::test]
async fn a_none_route_sends_no_token_even_with_a_session() {
    let w = world().await;
    let id = login(&w).await;
    let answer = Answer::of(
        app_call(&w, reqwest::Method::POST, "/api/public/feed", &id)
            .header("authorization", "Bearer from-the-browser")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/public/feed");
    assert!(!seen[0].has("authorization"), "{:#?}", seen[0]);
    assert!(!seen[0].has("cookie"));
    assert_eq!(seen[0].body_len, 2);

    // Without a session too, but still only from the app (CSRF holds on every route).
    let answer = Answer::of(
        w.browser
            .get(format!("{}/api/public/feed", w.base))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let answer = Answer::of(
        w.browser
            .get(format!("{}/api/public/feed", w.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.code(), "csrf_failed");
    assert_eq!(w.upstream.seen().len(), 2);
}

#[tokio::test]
async fn a_none_route_open_to_reads_takes_links_and_still_refuses_cross_site_writes() {
    let w = world().await;
    let id = login(&w).await;
    // What an `<img>` or a link sends: no `x-csrf`, the session cookie, and from another site
    // even (`Sec-Fetch-Site: cross-site`): it loads, and carries no token or cookie upstream.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let answer = Answer::of(
            w.browser
                .request(method.clone(), format!("{}/api/assets/logo.png", w.base))
                .header("cookie", cookie(&id))
                .header("sec-fetch-site", "cross-site")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}: {}", answer.body);
    }
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 2);
    for call in &seen {
        assert_eq!(call.target, "/public/logo.png");
        assert!(
            !call.has("authorization") && !call.has("cookie"),
            "{call:#?}"
        );
    }
    // Writes are checked as on every route: without `x-csrf`, or from another origin, refused.
    let no_header = w
        .browser
        .post(format!("{}/api/assets/upload", w.base))
        .header("origin", APP_ORIGIN)
        .body("x");
    let other_origin = w
        .browser
        .post(format!("{}/api/assets/upload", w.base))
        .header("x-csrf", "1")
        .header("origin", "https://evil.example")
        .body("x");
    for request in [no_header, other_origin] {
        let answer = Answer::of(request.send().await.unwrap()).await;
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert_eq!(answer.code(), "csrf_failed");
    }
    // The ordinary `none` route beside it still wants `x-csrf` on reads.
    let answer = Answer::of(
        w.browser
            .get(format!("{}/api/public/logo.png", w.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        w.upstream.seen().len(),
        2,
        "no write and no refused read went upstream"
    );
}

#[tokio::test]
async fn route_extra_headers_reach_the_upstream() {
    let w = world().await;
    let id = login(&w).await;
    let answer = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/keyed/x", &id)
            .header("x-api-key", "from-the-browser")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let seen = w.upstream.seen();
    assert_eq!(seen[0].header("x-api-key"), Some("k-123"));
    assert!(!answer.body.contains("k-123"));
}

#[tokio::test]
async fn hostile_targets_are_refused_before_any_upstream_call() {
    let w = world().await;
    let id = login(&w).await;
    // (request line, expected status, expected code, expected reason)
    let cases: &[(&str, u16, &str, &str)] = &[
        (
            "GET /api/orders/../admin",
            400,
            "route_not_allowed",
            "dot_segment",
        ),
        (
            "GET /api/orders/%2e%2e/admin",
            400,
            "route_not_allowed",
            "dot_segment",
        ),
        (
            "GET /api/orders/%2E%2E%2Fadmin",
            400,
            "route_not_allowed",
            "encoded_separator",
        ),
        (
            "GET /api/orders/a%2fb",
            400,
            "route_not_allowed",
            "encoded_separator",
        ),
        (
            "GET /api/orders/..%5cadmin",
            400,
            "route_not_allowed",
            "encoded_separator",
        ),
        (
            "GET /api/orders/%252e%252e/admin",
            400,
            "route_not_allowed",
            "double_encoding",
        ),
        (
            "GET /api/orders/..;/admin",
            400,
            "route_not_allowed",
            "path_parameter",
        ),
        (
            "GET /api/orders/x;jsessionid=1",
            400,
            "route_not_allowed",
            "path_parameter",
        ),
        (
            "GET /api/orders//evil.example/x",
            400,
            "route_not_allowed",
            "empty_segment",
        ),
        (
            "GET /api/orders/@evil.example",
            400,
            "route_not_allowed",
            "at_sign",
        ),
        (
            "GET /api/orders/%00",
            400,
            "route_not_allowed",
            "control_character",
        ),
        (
            "GET /api/orders/%zz",
            400,
            "route_not_allowed",
            "invalid_percent_encoding",
        ),
        ("GET /api/orders/. ", 400, "", ""),
        (
            "GET http://evil.example/api/orders/1",
            400,
            "route_not_allowed",
            "not_origin_form",
        ),
        (
            "TRACE /api/orders/1",
            405,
            "route_not_allowed",
            "method_not_allowed",
        ),
        (
            "DELETE /api/read-only/1",
            405,
            "route_not_allowed",
            "method_not_allowed",
        ),
        // Not under a route at all: poem's router answers, the proxy never runs.
        ("GET //evil.example/api/orders", 404, "not_found", ""),
        ("GET /api/ordersX", 404, "not_found", ""),
        ("GET /api/orders%2f../admin", 404, "not_found", ""),
        // Escapes that are not UTF-8 (the overlong `.`): the allowlist refuses them.
        (
            "GET /api/orders/%C0%AE%C0%AE/admin",
            400,
            "route_not_allowed",
            "invalid_utf8",
        ),
        (
            "GET /api/orders/%C0%AE/admin",
            400,
            "route_not_allowed",
            "invalid_utf8",
        ),
    ];
    for (line, status, code, reason) in cases {
        let head = format!(
            "{line} HTTP/1.1\r\nHost: app.example\r\nCookie: {}\r\nx-csrf: 1\r\nOrigin: {APP_ORIGIN}",
            cookie(&id)
        );
        let answer = raw_request(w.addr, &head).await;
        assert_eq!(answer.status, *status, "{line}: {}", answer.body);
        if !code.is_empty() {
            assert!(answer.is_problem(), "{line}: {:?}", answer.headers);
            assert_eq!(answer.code(), *code, "{line}");
            assert_eq!(answer.reason(), *reason, "{line}: {}", answer.body);
        }
        answer.assert_no_token();
    }
    let allow = raw_request(
        w.addr,
        &format!(
            "DELETE /api/read-only/1 HTTP/1.1\r\nHost: app.example\r\nx-csrf: 1\r\nOrigin: {APP_ORIGIN}"
        ),
    )
    .await;
    assert_eq!(allow.header("allow"), Some("GET"));
    assert!(
        w.upstream.seen().is_empty(),
        "the upstream was called: {:#?}",
        w.upstream.seen()
    );
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn calls_without_csrf_header_or_from_another_origin_are_refused() {
    let w = world().await;
    let id = login(&w).await;
    let no_header = w
        .browser
        .get(format!("{}/api/orders/1", w.base))
        .header("cookie", cookie(&id));
    let wrong_origin = w
        .browser
        .post(format!("{}/api/orders/1", w.base))
        .header("cookie", cookie(&id))
        .header("x-csrf", "1")
        .header("origin", "https://evil.example");
    for request in [no_header, wrong_origin] {
        let answer = Answer::of(request.send().await.unwrap()).await;
        assert_eq!(answer.status, 403);
        assert!(answer.is_problem());
        assert_eq!(answer.code(), "csrf_failed");
    }
    assert!(w.upstream.seen().is_empty());
}

#[tokio::test]
async fn no_session_is_a_json_401_never_a_redirect() {
    let w = world().await;
    let stranger = SessionId::generate(&SeededRandom::new(9));
    let without_cookie = w
        .browser
        .get(format!("{}/api/orders/1", w.base))
        .header("x-csrf", "1");
    let unknown_cookie = app_call(&w, reqwest::Method::GET, "/api/orders/1", &stranger);
    let malformed_cookie = w
        .browser
        .get(format!("{}/api/orders/1", w.base))
        .header("x-csrf", "1")
        .header("cookie", format!("{SESSION_COOKIE}=not-a-session-id"));
    for request in [without_cookie, unknown_cookie, malformed_cookie] {
        let answer = Answer::of(request.send().await.unwrap()).await;
        assert_eq!(answer.status, 401);
        assert!(answer.is_problem(), "{:?}", answer.headers);
        assert_eq!(answer.code(), "no_session");
        assert!(answer.header("location").is_none());
    }
    assert!(w.upstream.seen().is_empty());
}

#[tokio::test]
async fn scope_and_provider_rules_are_enforced_before_the_upstream() {
    let w = world().await;
    let id = login(&w).await;
    let scoped = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/scoped/1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(scoped.status, 403);
    assert_eq!(scoped.code(), "insufficient_scope");
    assert!(scoped.body.contains("orders.read"), "{}", scoped.body);

    let other = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/other/1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(other.status, 401);
    assert_eq!(other.code(), "provider_not_connected");
    assert!(other.body.contains("'other'"), "{}", other.body);
    assert!(
        other.header("set-cookie").is_none(),
        "the session stays: {:?}",
        other.headers
    );
    assert!(w.upstream.seen().is_empty());

    // A scope the token has passes.
    let profile = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/profile/1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(profile.status, 200);
    assert_eq!(w.upstream.seen().len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_calls_with_a_token_about_to_expire_refresh_once() {
    let w = world().await;
    let id = login(&w).await;
    // The token expires at T0 + 300; the margin is 60 s.
    w.clock.0.store(T0 + 250, Ordering::SeqCst);
    let calls = (0..20)
        .map(|n| app_call(&w, reqwest::Method::GET, &format!("/api/orders/{n}"), &id).send());
    let answers = futures_util::future::join_all(calls).await;
    for answer in answers {
        let answer = Answer::of(answer.unwrap()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.assert_no_token();
    }
    assert_eq!(w.provider.refreshes.load(Ordering::SeqCst), 1);
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 20);
    for call in seen {
        assert_eq!(call.header("authorization"), Some("Bearer access-3"));
    }
}

#[tokio::test]
async fn a_refused_refresh_is_401_and_clears_the_cookie() {
    let w = world().await;
    let id = login(&w).await;
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_grant".into()));
    w.clock.0.store(T0 + 250, Ordering::SeqCst);
    let answer = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.code(), "refresh_refused");
    let cleared = answer.all("set-cookie");
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;")) && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    answer.assert_no_token();
    assert!(w.upstream.seen().is_empty());
    assert!(w.stores.sessions.lock().unwrap().is_empty());
}

/// A refresh the provider refuses for a reason other than a dead grant (here the BFF's own
/// client authentication, as after a botched secret or key rotation) answers `502` and keeps
/// the session and its cookie: fixing the configuration brings every user back without a login.
#[tokio::test]
async fn a_refresh_refused_for_the_clients_credentials_keeps_the_session() {
    let w = world().await;
    let id = login(&w).await;
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Rejected("invalid_client".into()));
    w.clock.0.store(T0 + 250, Ordering::SeqCst);
    let call = || async {
        Answer::of(
            app_call(&w, reqwest::Method::GET, "/api/orders/1", &id)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let answer = call().await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.code(), "provider_error");
    assert!(
        answer.all("set-cookie").is_empty(),
        "{:?}",
        answer.all("set-cookie")
    );
    answer.assert_no_token();
    assert!(w.upstream.seen().is_empty());
    assert_eq!(w.stores.sessions.lock().unwrap().len(), 1);
    // The provider accepts again: the same cookie's call is refreshed and goes through.
    w.provider.script.lock().unwrap().refresh_error = None;
    let answer = call().await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(w.upstream.seen().len(), 1);
}

#[tokio::test]
async fn client_routes_carry_the_bffs_own_token_fetched_once() {
    let w = world().await;
    let id = login(&w).await;
    let anonymous = |path: &str| {
        w.browser
            .get(format!("{}{path}", w.base))
            .header("x-csrf", "1")
            .send()
    };
    for i in 0..10 {
        let answer = if i % 2 == 0 {
            Answer::of(anonymous("/api/reports/r").await.unwrap()).await
        } else {
            Answer::of(
                app_call(&w, reqwest::Method::GET, "/api/reports/r", &id)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        };
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(!answer.body.contains("client-main") && !answer.body.contains("Bearer"));
        assert!(
            answer
                .headers
                .iter()
                .all(|(_, v)| !v.contains("client-main"))
        );
    }
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 10);
    for call in &seen {
        assert_eq!(call.target, "/reports/r");
        assert_eq!(call.header("authorization"), Some("Bearer client-main-1"));
        assert!(!call.has("cookie"));
    }
    assert_eq!(
        *w.provider.client_grants.lock().unwrap(),
        vec![vec!["reports.read".to_owned()]]
    );

    // user_or_client: alice's token with her session, the client token without one.
    let answer = app_call(&w, reqwest::Method::GET, "/api/either/e", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        w.upstream.seen().last().unwrap().header("authorization"),
        Some("Bearer access-2")
    );
    assert_eq!(anonymous("/api/either/e").await.unwrap().status(), 200);
    assert_eq!(
        w.upstream.seen().last().unwrap().header("authorization"),
        Some("Bearer client-main-2"),
        "another scope set (none), another token"
    );
    // Still CSRF-protected, like every route.
    let forged = w
        .browser
        .get(format!("{}/api/reports/r", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(w.upstream.seen().len(), 12);
}

#[tokio::test]
async fn a_provider_outage_for_a_client_token_is_503_and_a_refusal_502() {
    let w = world().await;
    let call = || {
        w.browser
            .get(format!("{}/api/reports/r", w.base))
            .header("x-csrf", "1")
            .send()
    };
    w.provider.script.lock().unwrap().client_credentials_error =
        Some(|| ProviderError::Unavailable("connection refused".into()));
    let answer = Answer::of(call().await.unwrap()).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.is_problem());
    assert_eq!(answer.code(), "provider_unavailable");
    assert!(answer.header("retry-after").is_some());

    w.provider.script.lock().unwrap().client_credentials_error =
        Some(|| ProviderError::Rejected("unauthorized_client".into()));
    let answer = Answer::of(call().await.unwrap()).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.code(), "provider_error");
    assert!(
        !answer.body.contains("unauthorized_client"),
        "{}",
        answer.body
    );

    // Nothing was cached: once the provider answers, the route works.
    w.provider.script.lock().unwrap().client_credentials_error = None;
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(w.upstream.seen().len(), 1);
    assert_eq!(w.provider.client_grant_count(), 3);
}

#[tokio::test]
async fn a_provider_outage_during_refresh_is_503_and_keeps_the_session() {
    let w = world().await;
    let id = login(&w).await;
    w.provider.script.lock().unwrap().refresh_error =
        Some(|| ProviderError::Unavailable("connection refused".into()));
    w.clock.0.store(T0 + 250, Ordering::SeqCst);
    let answer = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.code(), "provider_unavailable");
    assert!(answer.header("retry-after").is_some());
    assert!(answer.header("set-cookie").is_none());
    assert_eq!(w.stores.sessions.lock().unwrap().len(), 1);
    assert!(w.upstream.seen().is_empty());
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504_without_upstream_details() {
    let w = world().await;
    let id = login(&w).await;
    let down = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/down/x?secret=1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(down.status, 502);
    assert!(down.is_problem());
    assert_eq!(down.code(), "upstream_unavailable");

    let started = std::time::Instant::now();
    let slow = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/slow", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(slow.status, 504, "{}", slow.body);
    assert!(slow.is_problem());
    assert_eq!(slow.code(), "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));

    for answer in [&down, &slow] {
        answer.assert_no_token();
        assert!(!answer.body.contains("127.0.0.1"), "{}", answer.body);
        assert!(!answer.body.contains("secret"), "{}", answer.body);
        assert!(!answer.body.contains("http"), "{}", answer.body);
    }
}

#[tokio::test]
async fn server_sent_events_reach_the_browser_as_they_are_written() {
    let w = world().await;
    let id = login(&w).await;
    let mut resp = app_call(&w, reqwest::Method::GET, "/api/events", &id)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .expect("the first event arrives while the upstream still holds the second")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    assert!(
        !w.upstream.state.second_event_written.load(Ordering::SeqCst),
        "the second event was written before the first arrived"
    );
    w.upstream.state.second_event_gate.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"data: two\n\n");
}

/// 64 MiB, generated on the fly in 64 KiB chunks that each carry their index.
fn upload_chunk(index: u32) -> Vec<u8> {
    let mut chunk = vec![u8::try_from(index % 251).unwrap(); 64 * 1024];
    chunk[..4].copy_from_slice(&index.to_be_bytes());
    chunk
}

const UPLOAD_CHUNKS: u32 = 1024;

#[tokio::test]
async fn a_large_request_body_is_streamed_through() {
    let w = world().await;
    let id = login(&w).await;
    let mut expected = Sha256::new();
    for index in 0..UPLOAD_CHUNKS {
        expected.update(upload_chunk(index));
    }
    let expected = hex(&expected.finalize());

    // After the first chunk the browser waits until the upstream has it: a proxy that buffered
    // the body would never pass it on, and the upload would time out.
    let state = w.upstream.state.clone();
    let chunks = futures_util::stream::unfold(0u32, move |index| {
        let state = state.clone();
        async move {
            if index == UPLOAD_CHUNKS {
                return None;
            }
            if index == 1 {
                tokio::time::timeout(Duration::from_secs(10), state.first_upload_bytes.notified())
                    .await
                    .expect("the upstream sees the first bytes before the body is complete");
            }
            Some((Ok::<_, std::io::Error>(upload_chunk(index)), index + 1))
        }
    });
    let answer = Answer::of(
        app_call(&w, reqwest::Method::PUT, "/api/upload/blob", &id)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].body_len, u64::from(UPLOAD_CHUNKS) * 64 * 1024);
    assert_eq!(seen[0].body_sha256, expected);

    // A body with a Content-Length goes through with it.
    let answer = Answer::of(
        app_call(&w, reqwest::Method::POST, "/api/upload/small", &id)
            .body(vec![7u8; 1000])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let seen = w.upstream.seen();
    assert_eq!(seen[1].header("content-length"), Some("1000"));
    assert_eq!(seen[1].body_len, 1000);
}

/// The `max_body_bytes` of the `/api/capped` route.
const CAPPED_LIMIT: u64 = 1 << 20;

#[tokio::test]
async fn a_body_over_the_routes_limit_is_413_and_never_read_in_full() {
    let w = world().await;
    let id = login(&w).await;

    // Declared: refused on the head alone, with nothing sent upstream. Raw TCP, so the body
    // is never written at all: the answer cannot depend on reading it.
    let answer = raw_request(
        w.addr,
        &format!(
            "POST /api/capped/blob HTTP/1.1\r\nHost: app.example\r\nCookie: {}\r\n\
             x-csrf: 1\r\nOrigin: {APP_ORIGIN}\r\nContent-Length: {}",
            cookie(&id),
            60u64 << 20
        ),
    )
    .await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.is_problem(), "{:?}", answer.headers);
    assert_eq!(answer.code(), "payload_too_large");
    assert!(w.upstream.seen().is_empty());

    // Streamed (chunked, no length): cut once it passes the limit. The browser's body counts
    // what the BFF pulled from it; 60 MiB are offered.
    let pulled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = pulled.clone();
    let chunks = futures_util::stream::iter(0..60u32).map(move |index| {
        counter.fetch_add(1 << 20, Ordering::SeqCst);
        Ok::<_, std::io::Error>(vec![u8::try_from(index).unwrap(); 1 << 20])
    });
    let answer = Answer::of(
        app_call(&w, reqwest::Method::PUT, "/api/capped/blob", &id)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.code(), "payload_too_large");
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(pulled < 30 << 20, "the BFF read {pulled} bytes of 60 MiB");
    // The upstream saw a request cut short, never a complete body.
    assert!(w.upstream.seen().is_empty(), "{:?}", w.upstream.seen());

    // At the limit, the body goes through whole, with or without a length.
    let answer = Answer::of(
        app_call(&w, reqwest::Method::PUT, "/api/capped/blob", &id)
            .body(vec![1u8; CAPPED_LIMIT as usize])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let whole = futures_util::stream::iter(0..4u32)
        .map(|_| Ok::<_, std::io::Error>(vec![2u8; (CAPPED_LIMIT / 4) as usize]));
    let answer = Answer::of(
        app_call(&w, reqwest::Method::PUT, "/api/capped/blob", &id)
            .body(reqwest::Body::wrap_stream(whole))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body_len == CAPPED_LIMIT), "{seen:?}");
}

#[tokio::test]
async fn upstream_cookies_are_dropped_unless_the_route_forwards_them() {
    let w = world().await;
    let id = login(&w).await;
    let off = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/cookies-off", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(off.status, 200);
    assert!(off.all("set-cookie").is_empty(), "{:?}", off.headers);

    let on = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/cookies-on", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(on.status, 200);
    // Passed on, except the one that would replace the BFF's session cookie.
    assert_eq!(on.all("set-cookie"), vec!["upstream=1; Path=/"]);
}

/// Sends `head` over raw TCP and reads the answer's head only, keeping the connection open.
async fn open_socket(addr: SocketAddr, head: &str) -> (Answer, tokio::net::TcpStream) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("the BFF answers")
            .unwrap();
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&raw));
        raw.push(byte[0]);
    }
    let (status, headers, _) = crate::support::parse_raw_answer(&raw);
    let answer = Answer {
        status,
        headers,
        body: String::new(),
    };
    (answer, stream)
}

fn upgrade_head(path: &str, extra: &[String]) -> String {
    let mut lines = vec![
        format!("GET {path} HTTP/1.1"),
        "Host: app.example".to_owned(),
        "Connection: Upgrade".to_owned(),
        "Upgrade: websocket".to_owned(),
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_owned(),
        "Sec-WebSocket-Version: 13".to_owned(),
    ];
    lines.extend(extra.iter().cloned());
    lines.join("\r\n")
}

#[tokio::test]
async fn a_websocket_is_tunnelled_with_the_users_token() {
    let w = world().await;
    let id = login(&w).await;
    let head = upgrade_head(
        "/api/live/feed?room=1",
        &[
            format!("Cookie: {}", cookie(&id)),
            format!("Origin: {APP_ORIGIN}"),
            "Authorization: Bearer from-the-browser".to_owned(),
        ],
    );
    let (answer, mut socket) = open_socket(w.addr, &head).await;
    assert_eq!(answer.status, 101, "{:?}", answer.headers);
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    assert_eq!(
        answer.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    answer.assert_no_token();

    // Bytes cross both ways, unchanged (the proxy does not look at frames).
    for message in [&b"\x81\x05hello"[..], &b"second message"[..]] {
        socket.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut echoed))
            .await
            .expect("the echo comes back through the tunnel")
            .unwrap();
        assert_eq!(echoed, message);
    }

    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.target, "/ws/feed?room=1");
    assert_eq!(call.header("authorization"), Some("Bearer access-2"));
    assert_eq!(call.header("upgrade"), Some("websocket"));
    assert_eq!(
        call.header("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    assert_eq!(call.header("origin"), Some(APP_ORIGIN));
    assert!(!call.has("cookie"));
}

/// Sends `message` and reads its echo through the tunnel.
async fn echo(socket: &mut tokio::net::TcpStream, message: &[u8]) {
    socket.write_all(message).await.unwrap();
    let mut echoed = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut echoed))
        .await
        .expect("the echo comes back through the tunnel")
        .unwrap();
    assert_eq!(echoed, message);
}

/// An open socket survives the session checks while the session lives (they do not slide its
/// expiry either), and is closed within one check interval (5 s) once the session is logged out.
#[tokio::test]
async fn a_logout_closes_the_users_open_websocket_within_seconds() {
    let w = world().await;
    let id = login(&w).await;
    let head = upgrade_head(
        "/api/live/feed",
        &[
            format!("Cookie: {}", cookie(&id)),
            format!("Origin: {APP_ORIGIN}"),
        ],
    );
    let (answer, mut socket) = open_socket(w.addr, &head).await;
    assert_eq!(answer.status, 101, "{:?}", answer.headers);
    let key = id.key();
    let idle_before = w.stores.sessions.lock().unwrap()[&key].idle_expires_at;
    // Far enough on that any use of the session would slide its idle expiry (a tenth of 1800 s).
    w.clock.0.fetch_add(200, Ordering::SeqCst);

    // Past the first session check: still open.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    echo(&mut socket, b"\x81\x05still").await;
    assert_eq!(
        w.stores.sessions.lock().unwrap()[&key].idle_expires_at,
        idle_before,
        "the socket's session checks slid the session's expiry"
    );

    w.bff.logout(&id, None).await.unwrap();
    let closed_within = Duration::from_secs(8);
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(closed_within, socket.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the socket stayed open {closed_within:?} after the logout: {read:?}"
    );
    assert!(started.elapsed() < closed_within);
    // The upstream side was closed too: its echo loop ended, and a new upgrade is refused.
    let (again, _) = open_socket(w.addr, &head).await;
    assert_eq!(again.status, 401);
}

#[tokio::test]
async fn websocket_upgrades_need_an_app_origin_a_session_and_a_websocket_route() {
    let w = world().await;
    let id = login(&w).await;
    let with_cookie = format!("Cookie: {}", cookie(&id));
    let app_origin = format!("Origin: {APP_ORIGIN}");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            upgrade_head(
                "/api/live",
                &[with_cookie.clone(), "Origin: https://evil.example".into()],
            ),
            403,
            "csrf_failed",
        ),
        (
            upgrade_head(
                "/api/live",
                &[with_cookie.clone(), "Sec-Fetch-Site: same-origin".into()],
            ),
            403,
            "csrf_failed",
        ),
        (
            upgrade_head("/api/live", std::slice::from_ref(&app_origin)),
            401,
            "no_session",
        ),
        (
            upgrade_head("/api/orders/1", &[with_cookie.clone(), app_origin.clone()]),
            400,
            "websocket_not_allowed",
        ),
        (
            upgrade_head(
                "/api/live/../admin",
                &[with_cookie.clone(), app_origin.clone()],
            ),
            400,
            "route_not_allowed",
        ),
    ];
    for (head, status, code) in cases {
        let answer = raw_request(w.addr, &head).await;
        assert_eq!(answer.status, status, "{head}: {}", answer.body);
        assert_eq!(answer.code(), code, "{head}");
    }
    assert!(w.upstream.seen().is_empty(), "{:#?}", w.upstream.seen());
}

#[tokio::test]
async fn the_query_is_forwarded_byte_for_byte() {
    let w = world().await;
    let id = login(&w).await;
    let query = "f={a}|b^c`d&x[]=1&path=%2F..%2Fadmin&empty=&&=";
    let head = format!(
        "GET /api/orders/search?{query} HTTP/1.1\r\nHost: app.example\r\nCookie: {}\r\nx-csrf: 1",
        cookie(&id)
    );
    let answer = raw_request(w.addr, &head).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = w.upstream.seen();
    assert_eq!(seen[0].target, format!("/v1/search?{query}"));
}

#[tokio::test]
async fn nested_prefixes_mount_side_by_side_and_the_longest_wins() {
    let w = world().await;
    let up = w.upstream.base();
    let table = route_table(
        &[
            route("/svc", &format!("{up}/outer"), "none"),
            route("/svc/inner", &format!("{up}/inner"), "none"),
        ],
        &["main"],
        "/bff",
    )
    .unwrap();
    let settings = Arc::new(HttpSettings {
        prefix: "/bff".into(),
        session_cookie: SESSION_COOKIE.into(),
        binding_cookie: "__Host-Http-bff-login".into(),
        logout_cookie: "__Host-Http-bff-logout".into(),
        secure_cookies: true,
        app_origins: vec![APP_ORIGIN.into()],
        cors: false,
        trusted_proxies: Default::default(),
        request_limits: bff_http::RequestLimits::default(),
    });
    let proxy = ApiProxy::new(w.bff.clone(), settings, table, &Default::default()).unwrap();
    let addr = serve(proxy.mount(poem::Route::new())).await;
    for path in [
        "/svc",
        "/svc/x",
        "/svc/inner",
        "/svc/inner/y",
        "/svc/innerZ",
    ] {
        let answer = Answer::of(
            w.browser
                .get(format!("http://{addr}{path}"))
                .header("x-csrf", "1")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    let targets: Vec<String> = w.upstream.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        ["/outer", "/outer/x", "/inner", "/inner/y", "/outer/innerZ"]
    );
}

#[tokio::test]
async fn strict_client_binding_guards_proxied_calls_too() {
    let w = world_with(|p| {
        p.client_binding = ClientBindingPolicy::new(BindingMode::Strict, None, None).unwrap();
    })
    .await;
    // The login sent no User-Agent, and neither does this client.
    let id = login(&w).await;
    let owner = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/1", &id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    let thief = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/2", &id)
            .header("user-agent", "curl/8.5.0")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(thief.status, 401, "{}", thief.body);
    assert!(thief.is_problem());
    assert_eq!(thief.code(), "session_binding_mismatch");
    assert!(
        thief
            .all("set-cookie")
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;"))),
        "{:?}",
        thief.headers
    );
    assert_eq!(w.upstream.seen().len(), 1, "the thief's call never left");
    assert!(
        w.stores.sessions.lock().unwrap().is_empty(),
        "session ended"
    );
}

#[tokio::test]
async fn a_renewed_id_reaches_the_proxy_and_an_open_websocket_follows_it() {
    let w = world_with(|p| {
        p.renewal = Some(SessionRenewal {
            after: Duration::from_secs(600),
            grace: Duration::from_secs(60),
        });
    })
    .await;
    let old = login(&w).await;
    let head = upgrade_head(
        "/api/live/feed",
        &[
            format!("Cookie: {}", cookie(&old)),
            format!("Origin: {APP_ORIGIN}"),
        ],
    );
    let (answer, mut socket) = open_socket(w.addr, &head).await;
    assert_eq!(answer.status, 101, "{:?}", answer.headers);

    // The tab's next API call, once the id is due, renews it.
    w.clock.0.fetch_add(600, Ordering::SeqCst);
    let renewing = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/1", &old)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(renewing.status, 200, "{}", renewing.body);
    let prefix = format!("{SESSION_COOKIE}=");
    let new = renewing
        .all("set-cookie")
        .iter()
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_owned)
        .expect("a renewed session cookie");
    assert_ne!(new, old.expose());
    let new = SessionId::parse(&new).unwrap();
    assert!(
        w.upstream
            .seen()
            .last()
            .unwrap()
            .headers
            .iter()
            .any(|(n, v)| n == "authorization" && v.starts_with("Bearer ")),
        "the renewed session's token went upstream"
    );

    // A session check of the socket within the grace period follows the session to its new
    // id; past the grace period (the old id worth nothing) the socket stays open.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    w.clock.0.fetch_add(61, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    echo(&mut socket, b"\x81\x05still").await;
    let fresh = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/2", &new)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let stale = Answer::of(
        app_call(&w, reqwest::Method::GET, "/api/orders/3", &old)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stale.status, 401, "{}", stale.body);
}
