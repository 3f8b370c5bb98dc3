//! The HTTP surface of the BFF on poem and poem-openapi.
//!
//! This crate is the only one that knows HTTP, JSON and OpenAPI. It turns requests into domain
//! inputs (`into_domain`-style parsing at the edge), calls the use cases of [`bff_domain::Bff`],
//! and turns their outcomes into responses: the endpoints by concern (`api`), cookies and the
//! session extractors (`cookies`), the CSRF extractor (`csrf`), and every error as
//! `application/problem+json` from one mapping (`problem`). The operators' admin API (`admin`)
//! is a separate app with its own OpenAPI document, for its own listener. Logouts and
//! revocations run to their end even when their caller goes away (`finish`).
//!
//! Its public surface is the list of re-exports below; the modules are private.
//!
//! Architecture invariant: no store adapter and no OIDC library here; everything goes through
//! `bff-domain`.

// Problems are returned only on the error path, where a larger `Err` costs nothing that matters;
// boxing them would make every handler noisier.
#![allow(clippy::result_large_err)]

mod admin;
mod api;
mod cookies;
mod cors;
mod csrf;
mod finish;
mod problem;
mod proxy;
mod server;
mod settings;
mod trace_context;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use poem::endpoint::StaticFilesEndpoint;
use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::http::{StatusCode, header};
use poem::middleware::{CookieJarManager, SetHeader};
use poem::web::Json;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Response, Route, get, handler};
use poem_openapi::{OpenApi, OpenApiService};
use serde_json::json;

pub use admin::{AdminCredential, InvalidAdminCredential, admin_app, admin_openapi_service};
pub use cookies::session_set_cookie_example;
pub use proxy::{
    ApiProxy, ForwardingHeaders, IpNetwork, ProxyBuildError, ProxyConfigError, ProxyRouteConfig,
    TrustedProxies, UpstreamTrust, route_table, upstream_trust,
};
pub use server::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS, RequestLimits, head_buffer_bytes, limit_heads, parsed_headers, serve,
};
pub use settings::{HttpSettings, SettingsError, same_origin};

/// One named readiness check (a store, a provider's metadata).
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// Name shown in `/readyz`.
    fn name(&self) -> &str;
    /// `Err(reason)` when not ready; the reason must not contain secrets.
    async fn check(&self) -> Result<(), String>;
}

/// The OpenAPI service of the `/bff` endpoints, for serving and for `cargo xtask codegen`.
pub fn openapi_service(
    bff: Arc<bff_domain::Bff>,
    settings: Arc<HttpSettings>,
) -> OpenApiService<impl OpenApi + 'static, ()> {
    OpenApiService::new(
        api::endpoints(bff, settings.clone()),
        "bff-server",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "OAuth 2.1 / OpenID Connect Backend-for-Frontend: the browser gets one opaque \
             HttpOnly cookie; tokens stay on the server.",
    )
    .server(settings.prefix.clone())
}

/// The API explorer (Swagger UI) for the `/bff` OpenAPI document, to mount at a path of the
/// host's choice. The page carries the document and the UI inline; its "try it out" calls go to
/// the BFF's prefix on the same origin, so they carry the session cookie, and need `x-csrf: 1`
/// like any script's.
pub fn api_explorer(bff: Arc<bff_domain::Bff>, settings: Arc<HttpSettings>) -> impl Endpoint {
    let page = openapi_service(bff, settings).swagger_ui_html();
    get(poem::endpoint::make_sync(move |_| {
        poem::web::Html(page.clone()).into_response()
    }))
}

/// The whole HTTP application: `/bff/*` (prefix configurable), `/healthz`, `/readyz`, and the
/// app's static files at `/` when `static_dir` is given.
pub fn app(
    bff: Arc<bff_domain::Bff>,
    settings: Arc<HttpSettings>,
    readiness: Vec<Arc<dyn ReadinessCheck>>,
    static_dir: Option<PathBuf>,
    proxy: Option<ApiProxy>,
) -> impl Endpoint {
    let cors = cors::Cors::for_settings(&settings);
    let limits = settings.request_limits;
    let cors_on = cors.is_some();
    let trusted_proxies = Arc::new(settings.trusted_proxies.clone());
    let service = openapi_service(bff.clone(), settings.clone());
    let spec = service.spec();
    let prefix = settings.prefix.clone();
    // `/bff/openapi.json` is the site router's; the endpoints are reached by `Dispatch`. Both
    // answer `no-store` on everything, errors included (the endpoints through `BffLayers`).
    let openapi_json = get(poem::endpoint::make_sync(move |_| {
        spec.clone()
            .with_content_type("application/json")
            .into_response()
    }))
    .catch_all_error(problem_response)
    .with(SetHeader::new().overriding(header::CACHE_CONTROL, "no-store"));
    let endpoints = BffLayers {
        inner: service.into_endpoint(),
        settings,
        bff,
        body_read_timeout: limits.body_read_timeout,
    };
    let mut routes = Route::new();
    if let Some(dir) = static_dir {
        routes = routes.nest("/", StaticFilesEndpoint::new(dir).index_file("index.html"));
    }
    // The API proxy's routes, each with the CORS policy and the problem mapping of the rest.
    let proxied: Vec<(String, BoxEndpoint<'static, Response>)> = match &proxy {
        None => Vec::new(),
        Some(proxy) => proxy
            .routes()
            .routes()
            .iter()
            .map(|route| {
                let prefix = route.prefix().to_owned();
                let endpoint = proxy
                    .endpoint(&prefix)
                    .with_if(cors_on, cors.clone().unwrap_or_else(cors::Cors::off))
                    .catch_all_error(problem_response)
                    .boxed();
                (prefix, endpoint)
            })
            .collect(),
    };
    // The `/bff` endpoints with the layers the rest of the site has, reached without the site's
    // router (see `Dispatch`).
    let bff_endpoints = StripPrefix {
        prefix_len: prefix.len(),
        // Boxed, as the router boxed it: the layers' futures above then hold a pointer, not
        // the endpoints' whole future (kilobytes, moved at every layer it passes).
        inner: endpoints.boxed(),
    }
    .with_if(cors_on, cors.clone().unwrap_or_else(cors::Cors::off))
    .catch_all_error(problem_response)
    .with(CookieJarManager::new())
    .boxed();
    let site = routes
        .at(format!("{prefix}/openapi.json"), openapi_json)
        .at("/healthz", get(healthz))
        .at(
            "/readyz",
            get(poem::endpoint::make(move |_| {
                let checks = readiness.clone();
                async move { readyz(&checks).await }
            })),
        )
        // Inside the problem mapping, so a refused preflight is a problem too.
        .with_if(cors_on, cors.unwrap_or_else(cors::Cors::off))
        // Inside the cookie jar manager: it writes `Set-Cookie` only on responses, so an error
        // that ends a session (or a refused logout return) must be a response by then to clear
        // its cookie.
        .catch_all_error(problem_response)
        .with(CookieJarManager::new())
        .boxed();
    Dispatch::new(proxied, (prefix, bff_endpoints), site)
        .around(move |ep, req| log_request(ep, req, Some(limits), trusted_proxies.clone()))
}

/// Where a request goes, before any router: a request under an API route's prefix (the prefix
/// itself, or it followed by `/`) to the proxy of the longest such prefix; one under the BFF's
/// prefix to its endpoints, except `{prefix}/openapi.json`; everything else to `site`. The
/// choices poem's router made when the proxy and the endpoints were mounted in it (the route
/// prefixes are checked at start not to overlap the BFF's own paths), without the router's
/// matching, its boxed future and its path-pattern bookkeeping (an allocation per router) on
/// every proxied or `/bff` request.
struct Dispatch {
    /// Route prefix and its proxy endpoint, longest prefix first.
    proxied: Vec<(String, BoxEndpoint<'static, Response>)>,
    /// The BFF's prefix (`/bff`) and its endpoints, which see the path without it.
    bff: (String, BoxEndpoint<'static, Response>),
    site: BoxEndpoint<'static, Response>,
}

impl Dispatch {
    fn new(
        mut proxied: Vec<(String, BoxEndpoint<'static, Response>)>,
        bff: (String, BoxEndpoint<'static, Response>),
        site: BoxEndpoint<'static, Response>,
    ) -> Self {
        proxied.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Self { proxied, bff, site }
    }

    fn endpoint_for(&self, path: &str) -> &BoxEndpoint<'static, Response> {
        if let Some((_, proxy)) = self
            .proxied
            .iter()
            .find(|(prefix, _)| under_prefix(path, prefix))
        {
            return proxy;
        }
        let (bff_prefix, bff) = &self.bff;
        if under_prefix(path, bff_prefix) && &path[bff_prefix.len()..] != "/openapi.json" {
            return bff;
        }
        &self.site
    }
}

/// Whether `path` is `prefix` or below it.
fn under_prefix(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Endpoint for Dispatch {
    type Output = Response;

    /// The chosen endpoint's boxed future itself: an async wrapper (or `BoxEndpoint`'s own
    /// `call`) would hold and move another copy of the request for nothing.
    fn call(
        &self,
        req: poem::Request,
    ) -> impl std::future::Future<Output = poem::Result<Response>> + Send {
        let endpoint = self.endpoint_for(req.uri().path());
        DynEndpoint::call(endpoint.as_ref(), req)
    }
}

/// `inner` under a path prefix, seeing the request's path without it, as poem's `nest` passes
/// it on (`/bff/user?x` is `/user?x`, `/bff` is `/`); `original_uri` keeps the full target. A
/// path whose rest does not percent-decode to UTF-8 is `400` (poem's `ParsePathError`), as the
/// nest answered it.
struct StripPrefix<E> {
    prefix_len: usize,
    inner: E,
}

impl<E: Endpoint> Endpoint for StripPrefix<E> {
    type Output = E::Output;

    fn call(
        &self,
        mut req: poem::Request,
    ) -> impl std::future::Future<Output = poem::Result<Self::Output>> + Send {
        use futures_util::future::Either;

        let rest_of_path = req.uri().path().get(self.prefix_len..).unwrap_or_default();
        if rest_of_path.contains('%')
            && percent_encoding::percent_decode_str(rest_of_path)
                .decode_utf8()
                .is_err()
        {
            return Either::Left(std::future::ready(Err(poem::error::ParsePathError.into())));
        }
        let Some(stripped) = strip_prefix(std::mem::take(req.uri_mut()), self.prefix_len) else {
            // Not reached for a target the server parsed: refused rather than passed on as `/`.
            return Either::Left(std::future::ready(Err(poem::error::ParsePathError.into())));
        };
        *req.uri_mut() = stripped;
        Either::Right(self.inner.call(req))
    }
}

/// `uri` without the first `prefix_len` bytes of its path, which then starts with `/` (the query
/// kept); `None` when the rest is not a target.
fn strip_prefix(uri: poem::http::Uri, prefix_len: usize) -> Option<poem::http::Uri> {
    let mut parts = uri.into_parts();
    let rest = parts.path_and_query.as_ref()?.as_str().get(prefix_len..)?;
    let stripped = if rest.starts_with('/') {
        rest.parse()
    } else {
        format!("/{rest}").parse()
    };
    parts.path_and_query = Some(stripped.ok()?);
    poem::http::Uri::from_parts(parts).ok()
}

/// What every `/bff` endpoint runs in, as one layer rather than poem's five (two `data`, an
/// `around`, `catch_all_error`, `SetHeader`), each of which held and moved the request and the
/// future inside it once more:
/// - the settings and the use cases in the request's data, where the CSRF and session
///   extractors read them (the session extractors admit the session through the use cases);
/// - the body capped and timed ([`cap_body`]);
/// - errors as problems, and `Cache-Control: no-store` on every answer, problems included;
/// - the answer counted and timed ([`Event::EndpointRequest`](bff_domain::ports::Event), under
///   the endpoint's [`endpoint_label`]).
struct BffLayers<E> {
    inner: E,
    settings: Arc<HttpSettings>,
    bff: Arc<bff_domain::Bff>,
    body_read_timeout: std::time::Duration,
}

impl<E: Endpoint> Endpoint for BffLayers<E> {
    type Output = Response;

    async fn call(&self, mut req: poem::Request) -> poem::Result<Response> {
        let started = std::time::Instant::now();
        let endpoint = endpoint_label(req.uri().path());
        req.set_data(self.settings.clone());
        req.set_data(self.bff.clone());
        let mut resp = match cap_body(&self.inner, req, self.body_read_timeout).await {
            Ok(resp) => resp,
            Err(err) => problem::from_poem_error(err),
        };
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        self.bff
            .events()
            .record(bff_domain::ports::Event::EndpointRequest {
                endpoint,
                status: resp.status().as_u16(),
                elapsed: started.elapsed(),
            });
        Ok(resp)
    }
}

/// The paths of the `/bff` endpoints below the prefix, as the OpenAPI document lists them (a
/// test compares the two): the metric labels of their requests.
const ENDPOINT_PATHS: [&str; 14] = [
    "/login",
    "/callback",
    "/login/start",
    "/login/end",
    "/silent-login",
    "/silent-login/callback",
    "/user",
    "/session",
    "/userinfo",
    "/refresh",
    "/logout",
    "/logout/callback",
    "/backchannel-logout",
    "/frontchannel-logout",
];

/// The metric label of a request to `path` (below the BFF's prefix): the endpoint's own path,
/// or `other` for any path that is not one, so what a client sends cannot add label values.
fn endpoint_label(path: &str) -> &'static str {
    ENDPOINT_PATHS
        .iter()
        .find(|endpoint| **endpoint == path)
        .copied()
        .unwrap_or("other")
}

/// The largest request body a `/bff` endpoint reads. Its JSON and form bodies are well under a
/// kilobyte and a logout token a few; anything larger is refused before it is read in full.
pub const BFF_BODY_LIMIT: usize = 64 * 1024;

/// Reads a `/bff` request's body up to [`BFF_BODY_LIMIT`] before the endpoint sees it: a
/// declared `Content-Length` over the limit is refused without reading anything, a chunked body
/// as soon as it passes the limit. Either way `413 payload_too_large`. A body that has not
/// arrived whole within `timeout` is `408 request_timeout` and closes the connection, so a
/// client trickling its body holds no connection for long.
async fn cap_body<E: Endpoint>(
    ep: &E,
    mut req: poem::Request,
    timeout: std::time::Duration,
) -> poem::Result<Response> {
    let too_large = || {
        problem::Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "The request body is larger than {} KiB.",
                BFF_BODY_LIMIT / 1024
            ),
        )
        .into_response()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BFF_BODY_LIMIT as u64) {
        return Ok(too_large());
    }
    let body = req.take_body();
    if !body.is_empty() {
        // Boxed: the read's future is 5 KB, which would otherwise be part of every `/bff`
        // request's future, bodiless ones included, and copied with it wherever poem boxes it.
        let read = Box::pin(tokio::time::timeout(
            timeout,
            body.into_bytes_limit(BFF_BODY_LIMIT),
        ));
        let Ok(read) = read.await else {
            tracing::info!(
                seconds = timeout.as_secs(),
                "request refused: body not received in time"
            );
            return Ok(body_timeout(timeout));
        };
        match read {
            Ok(bytes) => req.set_body(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
            Err(_) => {
                return Ok(problem::Problem::bad_request(
                    "invalid_request",
                    "The request body could not be read.",
                )
                .into_response());
            }
        }
    }
    Ok(ep.call(req).await?.into_response())
}

/// `408 request_timeout`, closing the connection: the rest of the body may still be on its way,
/// and nothing after it on this connection could be read as a request.
fn body_timeout(timeout: std::time::Duration) -> Response {
    // `Problem` has no `408` variant (no endpoint declares it in the OpenAPI document).
    let mut refused = problem::Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "The request body did not arrive within {} s.",
            timeout.as_secs_f64()
        ),
    )
    .into_response_with_own_status();
    refused.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    refused
}

async fn problem_response(err: poem::Error) -> Response {
    problem::from_poem_error(err)
}

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// [`REQUEST_ID_HEADER`] as a `HeaderName`, parsed once rather than on every insert.
pub(crate) const REQUEST_ID: header::HeaderName =
    header::HeaderName::from_static(REQUEST_ID_HEADER);

/// The target of the one log line each request gets when answered (its method, path, status
/// and duration): an access log. `RUST_LOG=info,bff_http::access=off` leaves these lines out,
/// for a deployment whose ingress logs requests already; the `request` span stays, so every
/// other line a request causes still carries its id.
pub const ACCESS_LOG_TARGET: &str = "bff_http::access";

/// The id [`log_request`] gave the request, kept in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// Problem bodies larger than this are passed on without an `instance` (none of ours come close).
const PROBLEM_BODY_LIMIT: usize = 64 * 1024;

/// Gives every request an id and writes one log line per request: method, path (never the
/// query, which can carry codes), status and duration. Every log line the request causes carries
/// the id (a `request` span, also the root of the request's trace when traces are exported), the
/// answer carries it in `x-request-id`, and a problem answer also as `instance`
/// (`urn:bff:request:<id>`), so what a user reports can be found in the logs and traces.
///
/// The id is the trace id of the request's `traceparent` when a trusted proxy sent it (32 hex
/// digits, see [`trace_context`]), else the server's own UUID v7 (unique, time-ordered, no
/// secret). A client-sent `x-request-id` is never taken (it could forge or collide with another
/// request's lines), nor passed to an upstream: the API proxy sends this id instead. When traces are exported and the id is not the trace id, the span also
/// carries `trace_id`.
///
/// Heads over `limits`, when given, are refused here, before anything reads a header, but inside
/// the request's span, so the refusal has an id and a log line.
async fn log_request<E: Endpoint>(
    ep: Arc<E>,
    mut req: poem::Request,
    limits: Option<server::RequestLimits>,
    trusted_proxies: Arc<TrustedProxies>,
) -> poem::Result<Response> {
    use tracing::Instrument as _;

    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
    let parent = trace_context::accepted_traceparent(&trusted_proxies, peer, req.headers());
    let id = match &parent {
        Some(parent) => parent.trace_id_hex(),
        // Encoded straight into a buffer: `to_string` goes through the formatting machinery.
        None => uuid::Uuid::now_v7()
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_owned(),
    };
    // Fields as `&str`, not `Display`: recorded without the formatting machinery (JSON lines
    // are the same; the plain formats quote them).
    let span = tracing::info_span!(
        "request",
        id = id.as_str(),
        trace_id = tracing::field::Empty
    );
    let exported = if let Some(parent) = &parent {
        trace_context::adopt_parent(&span, parent);
        trace_context::exported_trace_id(&span).is_some()
    } else if let Some(trace_id) = trace_context::exported_trace_id(&span) {
        span.record("trace_id", trace_id);
        true
    } else {
        false
    };
    req.extensions_mut()
        .insert(trace_context::IncomingTrace { parent, exported });
    // For the API proxy, which sends the upstream this id rather than the browser's.
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let resp = async {
        let resp = match limits.and_then(|limits| server::check_head(&req, &limits)) {
            Some(refused) => refused,
            // `E`'s own `call`, as in `cap_body`.
            None => E::call(&ep, req).await?.into_response(),
        };
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = method.as_str(),
            path = path.as_str(),
            status = resp.status().as_u16(),
            millis = started.elapsed().as_millis() as u64,
            "request"
        );
        Ok::<_, poem::Error>(resp)
    }
    .instrument(span)
    .await?;
    let mut resp = with_request_id(resp, &id);
    if is_problem(&resp) {
        // Boxed: reading the body is a 4.6 KB future that only problems need, and the request's
        // whole future is copied into a box by the server for every request.
        resp = Box::pin(with_problem_instance(resp, &id)).await;
    }
    Ok(resp)
}

/// `resp` with the request id in its `x-request-id` header.
fn with_request_id(mut resp: Response, id: &str) -> Response {
    if let Ok(value) = header::HeaderValue::from_str(id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    resp
}

/// Whether `resp` is a problem (`application/problem+json`).
fn is_problem(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
}

/// The problem `resp` with the request id as its `instance` (`urn:bff:request:<id>`).
async fn with_problem_instance(resp: Response, id: &str) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = match body.into_bytes_limit(PROBLEM_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return Response::from_parts(parts, poem::Body::empty()),
    };
    let rewritten = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut problem)) => {
            problem.insert(
                "instance".to_owned(),
                serde_json::Value::String(format!("urn:bff:request:{id}")),
            );
            serde_json::to_vec(&problem).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    let mut resp = Response::from_parts(parts, poem::Body::from_vec(rewritten));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(checks: &[Arc<dyn ReadinessCheck>]) -> Response {
    let mut results = serde_json::Map::new();
    let mut ready = true;
    for check in checks {
        let value = match check.check().await {
            Ok(()) => json!({"status": "ok"}),
            Err(reason) => {
                ready = false;
                tracing::warn!(check = check.name(), %reason, "readiness check failed");
                json!({"status": "unavailable", "detail": reason})
            }
        };
        results.insert(check.name().to_owned(), value);
    }
    if ready {
        Json(json!({"status": "ready", "checks": results}))
            .with_header(header::CACHE_CONTROL, "no-store")
            .into_response()
    } else {
        problem::Problem::with_extra(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "A dependency is not ready.",
            serde_json::Value::Object(results),
        )
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_labels_are_the_openapi_paths_and_nothing_else_is_one() {
        // The committed document, which a test keeps equal to the generated one.
        let document: serde_json::Value =
            serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json");
        let mut documented: Vec<&str> = document["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        let mut labels = ENDPOINT_PATHS.to_vec();
        documented.sort_unstable();
        labels.sort_unstable();
        assert_eq!(labels, documented);
        for path in ENDPOINT_PATHS {
            assert_eq!(endpoint_label(path), path);
        }
        // A client's own paths never become a label: unknown, trailing slash, case, query.
        for path in [
            "/",
            "",
            "/users",
            "/user/",
            "/USER",
            "/user?x=1",
            "/login/start/x",
        ] {
            assert_eq!(endpoint_label(path), "other", "{path}");
        }
    }

    #[test]
    fn a_proxied_path_is_the_prefix_or_below_it_at_a_segment_boundary() {
        assert!(under_prefix("/api", "/api"));
        assert!(under_prefix("/api/", "/api"));
        assert!(under_prefix("/api/orders/1", "/api"));
        assert!(!under_prefix("/apix", "/api"));
        assert!(!under_prefix("/api%2forders", "/api"));
        assert!(!under_prefix("/ap", "/api"));
        assert!(!under_prefix("//api", "/api"));
    }

    /// The text an endpoint answered.
    async fn body_text(answer: poem::Result<Response>) -> String {
        answer.unwrap().into_body().into_string().await.unwrap()
    }

    #[tokio::test]
    async fn the_longest_matching_prefix_takes_the_request_and_the_rest_goes_to_the_site() {
        let named = |name: &'static str| {
            poem::endpoint::make_sync(move |_| name)
                .map_to_response()
                .boxed()
        };
        let app = Dispatch::new(
            vec![
                ("/api".to_owned(), named("api")),
                ("/api/orders".to_owned(), named("orders")),
            ],
            ("/bff".to_owned(), named("bff")),
            named("site"),
        );
        for (path, expected) in [
            ("/api/orders/7", "orders"),
            ("/api/orders", "orders"),
            ("/api/ordersx", "api"),
            ("/api", "api"),
            ("/bff/user", "bff"),
            ("/bff", "bff"),
            ("/bff/", "bff"),
            ("/bff/openapi.json/", "bff"),
            ("/bff/openapi.json", "site"),
            ("/bffx/user", "site"),
            ("/healthz", "site"),
            ("/apix", "site"),
        ] {
            let req = poem::Request::builder().uri_str(path).finish();
            assert_eq!(body_text(app.call(req).await).await, expected, "{path}");
        }
    }

    /// What the endpoints under the prefix see: the target (and the original one) poem's `nest`
    /// would have given them.
    #[tokio::test]
    async fn the_bff_endpoints_see_the_target_without_the_prefix_as_a_nest_would_show_it() {
        let seen = |req: &poem::Request| format!("{} {}", req.uri(), req.original_uri());
        let stripped = StripPrefix {
            prefix_len: "/bff".len(),
            inner: poem::endpoint::make_sync(move |req| seen(&req)),
        };
        let nested = Route::new().nest("/bff", poem::endpoint::make_sync(move |req| seen(&req)));
        for target in [
            "/bff/user",
            "/bff/user?x=1&y=%2F",
            "/bff",
            "/bff?x=1",
            "/bff/",
            "/bff/a/b/",
            "/bff/login%3Fx",
        ] {
            let req = || poem::Request::builder().uri_str(target).finish();
            let ours = stripped.call(req()).await.unwrap();
            let poems = body_text(nested.call(req()).await).await;
            assert_eq!(ours, poems, "{target}");
        }
    }

    /// A target shorter than the prefix has nothing to strip: refused, never passed on as `/`.
    #[test]
    fn a_target_shorter_than_the_prefix_is_not_stripped() {
        let uri = |text: &str| text.parse::<poem::http::Uri>().unwrap();
        assert_eq!(strip_prefix(uri("/bff"), 4), Some(uri("/")));
        assert_eq!(strip_prefix(uri("/bff?a=1"), 4), Some(uri("/?a=1")));
        assert_eq!(strip_prefix(uri("/b"), 4), None);
    }

    /// A path below the prefix that does not percent-decode to UTF-8 is refused as the nest
    /// refused it (`400`), and one that decodes passes, whatever the query holds.
    #[tokio::test]
    async fn a_path_that_is_not_utf8_once_decoded_is_refused_as_the_nest_refused_it() {
        let stripped = StripPrefix {
            prefix_len: "/bff".len(),
            inner: poem::endpoint::make_sync(|_| "passed"),
        };
        let nested = Route::new().nest("/bff", poem::endpoint::make_sync(|_| "passed"));
        for (target, refused) in [
            ("/bff/%00%ff", true),
            ("/bff/user/%c3", true),
            ("/bff/%FF", true),
            ("/bff/%c3%a9t%c3%a9", false),
            ("/bff/user%20name", false),
            ("/bff/user?q=%ff", false),
            ("/bff/%", false),
        ] {
            let req = || poem::Request::builder().uri_str(target).finish();
            let ours = stripped
                .call(req())
                .await
                .map(|_| ())
                .map_err(|e| e.status());
            let poems = nested.call(req()).await.map(|_| ()).map_err(|e| e.status());
            assert_eq!(ours, poems, "{target}");
            assert_eq!(ours.is_err(), refused, "{target}");
        }
    }
}
