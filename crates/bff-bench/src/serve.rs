//! The servers `bench proxy` measures, each started by it as a child process (`bff-bench serve
//! upstream|bare|bff ...`) so that `/proc/PID/stat` gives each one's own CPU time.
//!
//! - `upstream`: the one upstream of every scenario: the same small JSON answer to any `GET`.
//! - `bare --upstream URL`: a pass-through proxy on the BFF's own stack (poem on
//!   `bff_http::serve`'s connections in, hyper-util's pooling client out, as the API proxy's
//!   client is built) with no session, cookie, header-policy or token work: what any proxy on
//!   this stack costs, the limit a BFF can reach.
//! - `bare-reqwest --upstream URL`: the same with a reqwest client, the API proxy's client
//!   until the fourth pass of BENCHMARKS.md: what reqwest's own layers cost.
//! - `bff --store KIND --upstream URL [--redis-prefix P] [--pg-schema S]`: the real server's
//!   wiring (`bff_server::build_with_providers`, then `bff_http::app` on `bff_http::serve`)
//!   with its production logging, from a configuration text: stores, vault cipher, policy,
//!   proxy routes `/api` (`token = "user"`) and `/open` (`token = "none"`). The only stand-in is
//!   the identity provider: the testkit's in-process `FakeProvider`, through which one login
//!   runs the real use cases at start, so the session's tokens are sealed by the real vault and
//!   written to the real store. Its access token lives 300 s and nothing in a run refreshes it.
//!
//! Each prints `listening ADDR` (and `bff` first `session ID`, the cookie value for the load
//! generator) on standard error, then serves until it is killed. Standard output carries the
//! server's log lines; the parent reads and discards them (a pipe, as under a container runtime).

use std::sync::Arc;

use bff_domain::testkit::FakeProvider;
use bff_domain::{Bff, CompleteLogin, LoginStyle, ReturnUrl, SessionId, StartLogin};
use futures_util::TryStreamExt;
use poem::http::{StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::{Body, Endpoint, Request, Response, Route, Server};

/// The upstream's answer: a small JSON document, the same for every scenario.
const UPSTREAM_BODY: &str =
    r#"{"items":[{"id":1,"name":"first"},{"id":2,"name":"second"}],"total":2}"#;

/// Issuer of the in-process provider.
const ISSUER: &str = "https://idp.bench.invalid";

pub(crate) fn run(args: &[String]) {
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        match args.first().map(String::as_str) {
            Some("upstream") => upstream().await,
            Some("bare") => bare(&option("--upstream").expect("--upstream URL")).await,
            Some("bare-reqwest") => {
                bare_reqwest(&option("--upstream").expect("--upstream URL")).await
            }
            Some("bff") => {
                bff(
                    &option("--store").expect("--store KIND"),
                    &option("--upstream").expect("--upstream URL"),
                    option("--redis-prefix"),
                    option("--pg-schema"),
                )
                .await
            }
            other => panic!("unknown server {other:?}: upstream | bare | bare-reqwest | bff"),
        }
    });
}

async fn listener() -> (TcpAcceptor, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (TcpAcceptor::from_tokio(listener).unwrap(), addr)
}

async fn serve(app: impl Endpoint + 'static) {
    let (acceptor, addr) = listener().await;
    eprintln!("listening {addr}");
    Server::new_with_acceptor(acceptor).run(app).await.unwrap();
}

/// [`serve`] on the connection stack `bff-server` serves with: `bff_http::serve` and the default
/// request limits (header read timeout, head limits).
async fn serve_like_bff_server(app: impl Endpoint + 'static) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    eprintln!("listening {}", listener.local_addr().unwrap());
    bff_http::serve(
        listener,
        app,
        bff_http::RequestLimits::default(),
        std::future::pending(),
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
}

async fn upstream() {
    let answer = poem::endpoint::make_sync(|_| {
        Response::builder()
            .content_type("application/json")
            .body(UPSTREAM_BODY)
    });
    serve(Route::new().at("/*path", answer)).await;
}

/// What both bare proxies send on: the upstream URL (the path after `/api` on `upstream`) and
/// the browser's headers but `Host`.
fn pass_through(req: &Request, upstream: &str) -> (String, poem::http::HeaderMap) {
    let target = req
        .original_uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str());
    let url = format!(
        "{upstream}{}",
        target.strip_prefix("/api").unwrap_or(target)
    );
    let mut headers = req.headers().clone();
    headers.remove(header::HOST);
    (url, headers)
}

/// The pass-through proxy on reqwest: the path after `/api` to the upstream, the browser's
/// headers but `Host`, the upstream's answer streamed back.
struct BareReqwestProxy {
    client: reqwest::Client,
    upstream: String,
}

impl Endpoint for BareReqwestProxy {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let (url, headers) = pass_through(&req, &self.upstream);
        let mut upstream = self
            .client
            .request(req.method().clone(), url)
            .headers(headers);
        let body = req.take_body();
        if !body.is_empty() {
            upstream = upstream.body(reqwest::Body::wrap_stream(body.into_bytes_stream()));
        }
        let response = upstream.send().await.map_err(|_| {
            poem::Error::from_string("upstream unavailable", StatusCode::BAD_GATEWAY)
        })?;
        let status = response.status();
        let mut headers = response.headers().clone();
        headers.remove(header::CONNECTION);
        headers.remove(header::TRANSFER_ENCODING);
        let mut out = Response::builder()
            .status(status)
            .body(Body::from_bytes_stream(
                response.bytes_stream().map_err(std::io::Error::other),
            ));
        *out.headers_mut() = headers;
        Ok(out)
    }
}

async fn bare_reqwest(upstream: &str) {
    // Built as the API proxy's per-route client was before it left reqwest.
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let proxy = BareReqwestProxy {
        client,
        upstream: upstream.trim_end_matches('/').to_owned(),
    };
    serve_like_bff_server(Route::new().nest_no_strip("/api", proxy)).await;
}

/// The pass-through proxy on the API proxy's client stack: hyper-util's pooling client (plain
/// HTTP here; the proxy's wraps it in rustls for `https` upstreams), the path after `/api` to
/// the upstream, the browser's headers but `Host`, the upstream's answer streamed back.
struct BareProxy {
    client: HyperClient,
    upstream: String,
}

type PoemBoxBody = http_body_util::combinators::BoxBody<hyper::body::Bytes, std::io::Error>;
type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    PoemBoxBody,
>;

impl Endpoint for BareProxy {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        use http_body_util::BodyExt as _;

        let (uri, headers) = pass_through(&req, &self.upstream);
        let body: PoemBoxBody = req.take_body().into();
        let mut upstream = poem::http::Request::builder()
            .method(req.method().clone())
            .uri(uri)
            .body(body)
            .map_err(|_| poem::Error::from_status(StatusCode::BAD_REQUEST))?;
        *upstream.headers_mut() = headers;
        let response = self.client.request(upstream).await.map_err(|_| {
            poem::Error::from_string("upstream unavailable", StatusCode::BAD_GATEWAY)
        })?;
        let (parts, body) = response.into_parts();
        let mut headers = parts.headers;
        headers.remove(header::CONNECTION);
        headers.remove(header::TRANSFER_ENCODING);
        let body: PoemBoxBody = body.map_err(std::io::Error::other).boxed();
        let mut out = Response::builder()
            .status(parts.status)
            .body(Body::from(body));
        *out.headers_mut() = headers;
        Ok(out)
    }
}

async fn bare(upstream: &str) {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    connector.set_nodelay(true);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    let proxy = BareProxy {
        client,
        upstream: upstream.trim_end_matches('/').to_owned(),
    };
    serve_like_bff_server(Route::new().nest_no_strip("/api", proxy)).await;
}

/// The configuration of the measured BFF, as an operator would write it.
fn bff_config(
    store: &str,
    upstream: &str,
    redis_prefix: Option<String>,
    pg_schema: Option<String>,
) -> String {
    let vault_key = {
        use base64::Engine as _;
        let random = bff_crypto::SystemRandom::new();
        let mut key = [0u8; 32];
        bff_domain::ports::Random::fill(&random, &mut key);
        base64::engine::general_purpose::STANDARD.encode(key)
    };
    let redis_url =
        std::env::var("BFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let pg_url = std::env::var("BFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis = format!(
        "[store.redis]\nurl = {redis_url:?}\nkey_prefix = {:?}\n",
        redis_prefix.unwrap_or_else(|| "bff-bench:".into())
    );
    let postgres = format!(
        "[store.postgres]\nurl = {pg_url:?}\nmigrate_on_start = true\n{}",
        pg_schema.map_or_else(String::new, |s| format!("schema = {s:?}\n"))
    );
    let stores = match store {
        "memory" => "[store]\nkind = \"memory\"\n".to_owned(),
        "redis" => format!("[store]\nkind = \"redis\"\n{redis}"),
        "postgres+redis" => format!("[store]\nkind = \"postgres+redis\"\n{redis}{postgres}"),
        other => panic!("unknown store {other:?}: memory | redis | postgres+redis"),
    };
    format!(
        r#"default_provider = "main"

[server]
listen = "127.0.0.1:0"
public_url = "https://app.bench.invalid"

[[vault_keys]]
id = "bench"
key = "{vault_key}"

[providers.main]
issuer = "{ISSUER}"
client_id = "bff-bench"
client_secret = "bench-only-secret"

[session]
refresh_margin_secs = 0

{stores}
[[routes]]
path = "/api"
upstream = "{upstream}"
token = "user"

[[routes]]
path = "/open"
upstream = "{upstream}"
token = "none"
"#
    )
}

async fn bff(store: &str, upstream: &str, redis_prefix: Option<String>, pg_schema: Option<String>) {
    let text = bff_config(store, upstream, redis_prefix, pg_schema);
    let config = bff_server::Config::from_toml_str(&text, std::iter::empty::<(String, String)>())
        .unwrap_or_else(|e| panic!("bench configuration: {e}"));
    let _logs = bff_server::init_logging();
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    let service = bff_server::build_with_providers(&config, vec![provider], Vec::new())
        .await
        .unwrap();
    let session = log_in(&service.bff).await;
    eprintln!("session {}", session.expose());
    let app = bff_http::app(
        service.bff.clone(),
        service.settings.clone(),
        service.readiness.clone(),
        None,
        service.proxy.clone(),
    );
    serve_like_bff_server(app).await;
}

/// One login through the real use cases with the in-process provider: the session is created,
/// sealed and stored exactly as after a real login.
async fn log_in(bff: &Bff) -> SessionId {
    let started = bff
        .start_login(StartLogin {
            provider: None,
            return_url: ReturnUrl::root(),
            prompt: None,
            style: LoginStyle::Redirect,
        })
        .await
        .unwrap();
    let state = started
        .authorization_url
        .split("state=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_owned();
    bff.complete_login(CompleteLogin {
        state,
        code: Some("bench-code".into()),
        issuer: Some(ISSUER.into()),
        binding: Some(started.binding),
        ..CompleteLogin::default()
    })
    .await
    .unwrap()
    .session_id
    .expect("a login, not a connect, makes a session")
}
