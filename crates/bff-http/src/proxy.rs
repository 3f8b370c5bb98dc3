//! The API proxy: the app calls `/api/...` with its cookie, and the BFF calls the configured
//! upstream with the user's access token, which the browser never sees (browser-based-apps BCP
//! section 6.1: only allowlisted resource servers ever receive a token).
//!
//! A plain poem endpoint, outside the OpenAPI document. For each request under a route's prefix:
//! 1. The raw request target (as received, before any routing rewrote it) is resolved by the
//!    domain's [`RouteTable`]; a refusal answers problem+json `route_not_allowed` with the rule
//!    as its `reason` (`400` for a hostile target, its defect as the reason; `404`, reason
//!    `no_route`; `405`, reason `method_not_allowed`, with `Allow`) and no upstream call.
//! 2. CSRF: `x-csrf: 1`, plus the `Origin` check for unsafe methods ([`csrf::check`]), on every
//!    route, `none` routes included: the BFF sits where the browser cannot, often next to
//!    internal APIs, so a cross-site page must not be able to make it call them either. A
//!    `none` route configured with `csrf_on_reads = false` takes `GET` and `HEAD` without it
//!    (plain links and `<img>`s), and checks every other method as always.
//! 3. The credential comes from [`Bff::upstream_credential`] (the user's token, the BFF's own
//!    client-credentials token, or none, as the route says): no session on a `user` route is a
//!    JSON `401` (never a redirect: the caller is script), a refused refresh ends the session
//!    and clears the cookie, a provider that cannot be reached is `503`.
//! 4. The upstream request carries the browser's headers minus the ones [`headers`] withholds,
//!    `X-Forwarded-For`/`-Proto`/`-Host` from what the server knows (the peer, or with trusted
//!    proxies in front, the client they vouch for: [`forwarding`]), the route's extra headers
//!    and `Authorization: Bearer` for a bearer credential only, and the trace context of its own
//!    `upstream` span as `traceparent` ([`crate::trace_context`]). Request and response bodies are
//!    streamed, never buffered, so server-sent events reach the browser as they are written.
//! 5. Upstream failures answer `502 upstream_unavailable` or `504 upstream_timeout`, never with
//!    the upstream's error text or URL.
//!
//! WebSocket upgrades are proxied on routes with `websocket` set ([`websocket`]): the same
//! credential, an app `Origin` instead of `x-csrf` (a browser cannot add headers to an
//! upgrade), then the two upgraded connections are joined byte for byte.
//!
//! Each route has its own HTTP client ([`client`]), built once with the route's connect timeout,
//! no redirects (a redirect would carry the token elsewhere) and no ambient proxy from the
//! environment (it would see the tokens); the route's total timeout bounds each exchange, body
//! included.

mod client;
mod config;
mod forwarding;
mod headers;
mod trust;
mod websocket;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bff_domain::allowlist::{Method, ProxyRefusal, ProxyTarget, Route, RouteTable};
use bff_domain::ports::Event;
use bff_domain::{Bff, UpstreamCredential};
use futures_util::{StreamExt as _, TryStreamExt};
use poem::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use poem::http::{StatusCode, Version};
use poem::web::cookie::CookieJar;
use poem::{Body, Endpoint, Request, Response};
use tracing::Instrument as _;

pub use config::{ProxyConfigError, ProxyRouteConfig, route_table};
pub use forwarding::{ForwardingHeaders, IpNetwork, TrustedProxies};
pub use trust::{UpstreamTrust, upstream_trust};

use crate::cookies;
use crate::csrf;
use crate::problem::{Problem, error_chain};
use crate::settings::HttpSettings;
use crate::trace_context::{self, IncomingTrace};
use client::UpstreamClient;

// The headers the proxy sets, as constants: a `&str` name is parsed again on every insert.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The HTTP client of one route could not be built (the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("the HTTP client for API route {prefix:?} could not be built")]
pub struct ProxyBuildError {
    prefix: String,
    #[source]
    source: rustls::Error,
}

/// The API proxy over a validated [`RouteTable`]. Cheap to clone.
#[derive(Clone)]
pub struct ApiProxy {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    bff: Arc<Bff>,
    settings: Arc<HttpSettings>,
    routes: RouteTable,
    /// One client per route prefix.
    clients: BTreeMap<String, UpstreamClient>,
    /// Whose forwarding headers are believed; nobody's by default.
    trusted_proxies: TrustedProxies,
}

impl std::fmt::Debug for ApiProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiProxy")
            .field("routes", &self.inner.routes)
            .finish_non_exhaustive()
    }
}

impl ApiProxy {
    /// A proxy for `routes` (see [`route_table`]) over the use cases of `bff`, verifying
    /// `https` upstreams against the roots `trust` gives each route (see [`upstream_trust`]).
    ///
    /// # Errors
    /// [`ProxyBuildError`] when an HTTP client cannot be built.
    pub fn new(
        bff: Arc<Bff>,
        settings: Arc<HttpSettings>,
        routes: RouteTable,
        trust: &UpstreamTrust,
    ) -> Result<Self, ProxyBuildError> {
        let mut clients = BTreeMap::new();
        for route in routes.routes() {
            let roots = trust.roots_for(route.prefix());
            let client = UpstreamClient::new(route.connect_timeout(), roots).map_err(|source| {
                ProxyBuildError {
                    prefix: route.prefix().to_owned(),
                    source,
                }
            })?;
            clients.insert(route.prefix().to_owned(), client);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                bff,
                trusted_proxies: settings.trusted_proxies.clone(),
                settings,
                routes,
                clients,
            }),
        })
    }

    /// The same proxy, believing the forwarding headers of `proxies` when they are the direct
    /// peer (see [`TrustedProxies`]); by default those of the settings' `trusted_proxies`.
    #[must_use]
    pub fn with_trusted_proxies(self, proxies: TrustedProxies) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.trusted_proxies = proxies;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The routes this proxy serves.
    pub fn routes(&self) -> &RouteTable {
        &self.inner.routes
    }

    /// The proxy as an endpoint that needs nothing around it (it reads the session cookie from
    /// the request's headers and writes its own `Set-Cookie`s, so it needs no cookie jar; an
    /// outer `CookieJarManager` is fine too), mounted at the route prefix `mounted_at`: the
    /// label its requests are counted under (never the request's own path).
    pub fn endpoint(&self, mounted_at: &str) -> impl Endpoint<Output = Response> + 'static {
        ProxyEndpoint {
            inner: self.inner.clone(),
            mounted_at: mounted_at.to_owned(),
        }
    }

    /// Mounts the proxy at every route prefix of `route`, without stripping the prefix. The
    /// proxy resolves the original request target itself, so how poem matched does not matter;
    /// targets poem does not route here (such as `/api/%6Frders`) never reach an upstream.
    pub fn mount(&self, mut route: poem::Route) -> poem::Route {
        for prefix in self.inner.routes.routes().iter().map(|r| r.prefix()) {
            route = route.nest_no_strip(prefix, self.endpoint(prefix));
        }
        route
    }
}

/// The API proxy's endpoint, as [`ApiProxy::endpoint`] hands it out.
struct ProxyEndpoint {
    inner: Arc<Inner>,
    /// The configured route prefix poem matched: the request's metric label. The request may
    /// still resolve to a longer prefix, or to none; the mount point is bounded and configured,
    /// which is what a label must be.
    mounted_at: String,
}

impl Endpoint for ProxyEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        // The session cookie's writes (a renewal, a removal), put on the response below.
        let cookies = CookieJar::default();
        let mut response = self.inner.forward(req, &cookies).await;
        cookies::set_cookies_from(&cookies, response.headers_mut());
        self.inner.bff.events().record(Event::ProxyRequest {
            route: &self.mounted_at,
            status: response.status().as_u16(),
            elapsed: started.elapsed(),
        });
        Ok(response)
    }
}

/// The request target as received: path and query of an origin-form target. An HTTP/1
/// absolute-form target (`GET http://host/...`) is passed whole so the allowlist refuses it;
/// HTTP/2 always carries scheme and authority as pseudo-headers, so only its path counts.
fn raw_target(req: &Request) -> String {
    let uri = req.original_uri();
    if req.version() < Version::HTTP_2 && uri.scheme().is_some() {
        return uri.to_string();
    }
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// `GET` or `HEAD`: what a link, an `<img>` or a `<script>` sends.
fn is_read(method: &poem::http::Method) -> bool {
    method == poem::http::Method::GET || method == poem::http::Method::HEAD
}

/// A problem as a response whose status is the problem's own: `504` has no variant of its own
/// in [`Problem`], whose OpenAPI surface belongs to the `/bff` endpoints.
fn answer(problem: Problem) -> Response {
    problem.into_response_with_own_status()
}

fn refusal_answer(refusal: ProxyRefusal) -> Response {
    let allow = match &refusal {
        ProxyRefusal::MethodNotAllowed { allowed } => Some(
            allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    };
    tracing::info!(
        code = refusal.code(),
        reason = refusal.reason(),
        "proxy refused"
    );
    let mut response = answer(refusal.into());
    if let Some(value) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

impl Inner {
    async fn forward(&self, mut req: Request, cookie_writes: &CookieJar) -> Response {
        let raw = raw_target(&req);
        let Ok(method) = Method::parse(req.method().as_str()) else {
            return answer(Problem::bad_request(
                "invalid_method",
                "The request method is not valid.",
            ));
        };
        let target = match self.routes.resolve(&method, &raw) {
            Ok(target) => target,
            Err(refusal) => return refusal_answer(refusal),
        };
        let upgrade = websocket::is_upgrade(&req);
        let checked = if upgrade {
            websocket::check(&req, target.route(), &self.settings)
        } else if !target.route().csrf_on_reads() && is_read(req.method()) {
            // A `none` route opened to plain links and `<img>`s: no credential goes upstream.
            Ok(())
        } else {
            csrf::check(&req, &self.settings)
        };
        if let Err(problem) = checked {
            return answer(problem);
        }
        // A declared body over the route's limit is refused before anything else is spent on it
        // (no session read, no refresh, not a byte of the body read).
        if let Some(limit) = target.route().max_body_bytes()
            && declared_length(&req).is_some_and(|length| length > limit)
        {
            return answer(body_too_large(limit));
        }
        let mut session = cookies::SessionCookie::from_headers(
            req.headers(),
            self.settings.clone(),
            cookie_writes.clone(),
        );
        if let Err(err) = session.admit(&req, &self.bff, &self.trusted_proxies).await {
            return answer(err.into());
        }
        let credential = match self.bff.upstream_credential(session.id(), &target).await {
            Ok(credential) => credential,
            Err(err) => {
                let cookie_sent =
                    cookies::cookie_value(req.headers(), &self.settings.session_cookie).is_some();
                if err.ends_session() && cookie_sent {
                    session.clear();
                }
                return answer(err.into());
            }
        };
        let forwarded = if upgrade {
            // A tunnel carrying the user's token ends with the user's session.
            let session_id = matches!(credential, UpstreamCredential::Bearer(_))
                .then(|| session.id().cloned())
                .flatten();
            self.open_tunnel(&req, &target, credential, session_id)
                .await
        } else {
            // The upstream call's own span: the `traceparent` sent names it as the parent. A
            // `debug` span, like the store and provider spans: traces take it at any level, and
            // at the default `info` log level without trace export it costs next to nothing.
            let span = tracing::debug_span!("upstream", route = %target.route().prefix());
            self.call_upstream(&mut req, &target, credential)
                .instrument(span)
                .await
        };
        forwarded.unwrap_or_else(answer)
    }

    /// The upstream request headers: the browser's minus what [`headers`] withholds, then what
    /// the proxy sets.
    fn upstream_headers(
        &self,
        req: &Request,
        target: &ProxyTarget<'_>,
        credential: &UpstreamCredential,
    ) -> Result<HeaderMap, Problem> {
        let mut out = headers::upstream_request_headers(req.headers());
        let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
        let client = self.trusted_proxies.client(peer, req.headers());
        if let Some(value) = client.address.and_then(address_value) {
            out.insert(X_FORWARDED_FOR, value);
        }
        let own_proto = if self.settings.secure_cookies {
            "https"
        } else {
            req.scheme().as_str()
        };
        let proto = client.proto.as_deref().unwrap_or(own_proto);
        if let Ok(value) = HeaderValue::from_str(proto) {
            out.insert(X_FORWARDED_PROTO, value);
        }
        let own_host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.original_uri().authority().map(|a| a.as_str()))
            .filter(|h| forwarding::is_plain_host(h));
        let host = client.host.as_deref().or(own_host);
        if let Some(value) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
            out.insert(X_FORWARDED_HOST, value);
        }
        for extra in target.route().extra_headers() {
            // Both were validated when the route was built; a failure here is a bug, not input.
            let name = HeaderName::from_bytes(extra.name().as_bytes());
            let value = HeaderValue::from_str(extra.value().expose());
            let (Ok(name), Ok(mut value)) = (name, value) else {
                return Err(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "An API route's configured header cannot be sent.",
                ));
            };
            value.set_sensitive(true);
            out.insert(name, value);
        }
        if let UpstreamCredential::Bearer(token) = credential {
            // From the `String` itself: no second copy of the token (and no formatting).
            let mut bearer = String::with_capacity("Bearer ".len() + token.expose().len());
            bearer.push_str("Bearer ");
            bearer.push_str(token.expose());
            let mut value = HeaderValue::try_from(bearer).map_err(|_| {
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_error",
                    "The identity provider issued an access token that cannot be sent.",
                )
            })?;
            value.set_sensitive(true);
            out.insert(header::AUTHORIZATION, value);
        }
        let incoming = req
            .extensions()
            .get::<IncomingTrace>()
            .copied()
            .unwrap_or_default();
        if let Some(value) = trace_context::outgoing_traceparent(incoming) {
            out.insert(trace_context::TRACEPARENT, value);
        }
        if let Some(value) = req
            .extensions()
            .get::<crate::RequestId>()
            .and_then(|id| HeaderValue::from_str(&id.0).ok())
        {
            out.insert(crate::REQUEST_ID, value);
        }
        Ok(out)
    }

    fn client_for(&self, prefix: &str) -> Result<&UpstreamClient, Problem> {
        self.clients.get(prefix).ok_or_else(|| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The API route has no HTTP client.",
            )
        })
    }

    async fn call_upstream(
        &self,
        req: &mut Request,
        target: &ProxyTarget<'_>,
        credential: UpstreamCredential,
    ) -> Result<Response, Problem> {
        let route = target.route();
        // The whole exchange, the answer's body included, ends by then.
        let deadline = tokio::time::Instant::now() + route.total_timeout();
        let client = self.client_for(route.prefix())?;
        let headers = self.upstream_headers(req, target, &credential)?;
        drop(credential);
        let uri = upstream_uri(target)?;
        let body = req.take_body();
        // Set when a streamed body passes the route's limit: the stream then fails, which cuts
        // the upstream request short, and the answer is `413`, not an upstream failure.
        let overflowed = Arc::new(AtomicBool::new(false));
        let body: client::ProxyBody = match route.max_body_bytes() {
            Some(limit) if !body.is_empty() => {
                let chunks = capped(body.into_bytes_stream(), limit, overflowed.clone());
                http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(
                    chunks.map_ok(hyper::body::Frame::data),
                ))
            }
            _ => body.into(),
        };
        let mut upstream = poem::http::Request::new(body);
        *upstream.method_mut() = req.method().clone();
        *upstream.uri_mut() = uri;
        *upstream.headers_mut() = headers;
        let response = client.send(upstream, deadline).await.map_err(|e| {
            if overflowed.load(Ordering::SeqCst) {
                tracing::info!(route = %route.prefix(), "proxy refused an oversized request body");
                return body_too_large(route.max_body_bytes().unwrap_or_default());
            }
            upstream_problem(route.prefix(), &e)
        })?;
        Ok(self.relay(route, target.url(), response))
    }

    /// The upstream's headers the browser may see (see [`headers`]); `called` is the URL the
    /// proxy called, against which a relative `Location` resolves.
    fn browser_headers(&self, route: &Route, called: &url::Url, upstream: &HeaderMap) -> HeaderMap {
        let own_cookies = [
            self.settings.session_cookie.as_str(),
            self.settings.binding_cookie.as_str(),
        ];
        let mut out =
            headers::browser_response_headers(upstream, route.forward_set_cookie(), &own_cookies);
        headers::rewrite_location(&mut out, called, route.upstream(), route.prefix());
        out
    }

    /// The upstream's answer for the browser: status, filtered headers, streamed body.
    fn relay(
        &self,
        route: &Route,
        called: &url::Url,
        response: hyper::Response<client::DeadlineBody>,
    ) -> Response {
        let (parts, body) = response.into_parts();
        let headers = self.browser_headers(route, called, &parts.headers);
        let prefix = route.prefix().to_owned();
        let body = http_body_util::BodyExt::map_err(body, move |e| {
            // Headers are sent already: the browser sees the response cut short.
            tracing::warn!(route = %prefix, error = %error_chain(&e), "upstream response body failed");
            std::io::Error::other("upstream response body failed")
        });
        let mut out = Response::builder()
            .status(parts.status)
            .body(Body::from(http_body_util::BodyExt::boxed(body)));
        *out.headers_mut() = headers;
        out
    }
}

/// The target's URL as the client takes it. The allowlist built the URL; one that `Uri` rejects
/// (reqwest, the client before, refused the same ones) is an upstream that cannot be called.
fn upstream_uri(target: &ProxyTarget<'_>) -> Result<poem::http::Uri, Problem> {
    poem::http::Uri::try_from(target.url().as_str()).map_err(|_| {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "The upstream API could not be reached.",
        )
    })
}

/// `ip` as a header value. IPv4 addresses, nearly every peer, are written digit by digit: the
/// `Display` route through the formatting machinery cost more than the rest of the header.
fn address_value(ip: std::net::IpAddr) -> Option<HeaderValue> {
    let std::net::IpAddr::V4(v4) = ip else {
        return HeaderValue::try_from(ip.to_string()).ok();
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for digit in &digits[skip..] {
            text[len] = b'0' + digit;
            len += 1;
        }
    }
    HeaderValue::from_bytes(&text[..len]).ok()
}

/// The `Content-Length` the request declares, if it declares a valid one.
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// `413 payload_too_large` for a body over a route's `limit`.
fn body_too_large(limit: u64) -> Problem {
    Problem::payload_too_large(&format!(
        "The request body is larger than this API route accepts ({limit} bytes)."
    ))
}

/// `chunks` passed on until their total passes `limit`; then `overflowed` is set and the stream
/// ends with an error instead of the chunk that passed it, so no more than `limit` bytes go
/// upstream and the rest is never read.
fn capped<S, B>(
    chunks: S,
    limit: u64,
    overflowed: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = std::io::Result<B>> + Send + 'static
where
    S: futures_util::Stream<Item = std::io::Result<B>> + Send + 'static,
    B: AsRef<[u8]>,
{
    let mut total = 0u64;
    chunks.map(move |chunk| {
        let chunk = chunk?;
        total = total.saturating_add(chunk.as_ref().len() as u64);
        if total > limit {
            overflowed.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("request body over the route's limit"));
        }
        Ok(chunk)
    })
}

/// The problem for a failed upstream exchange; the cause is logged (it names no URL).
fn upstream_problem(prefix: &str, err: &client::UpstreamError) -> Problem {
    tracing::warn!(route = %prefix, error = %error_chain(err), "upstream call failed");
    if err.is_timeout() {
        Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "The upstream API did not answer in time.",
        )
    } else {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "The upstream API could not be reached.",
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    #[test]
    fn an_address_value_is_the_address_as_text() {
        // Every one- to three-digit octet in every position, against `Display`.
        for octet in 0..=255u8 {
            for ip in [
                Ipv4Addr::new(octet, 0, 9, 10),
                Ipv4Addr::new(99, octet, 100, 255),
                Ipv4Addr::new(1, 20, octet, 0),
                Ipv4Addr::new(127, 0, 0, octet),
            ] {
                let value = address_value(IpAddr::V4(ip)).unwrap();
                assert_eq!(value.to_str().unwrap(), ip.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(address_value(v6).unwrap().to_str().unwrap(), "2001:db8::1");
    }
}
