//! CORS for app origins that are not the BFF's own (the SPA on `app.example.com`, the BFF on
//! `bff.example.com`): credentials allowed, never `*`, only for the configured app origins.
//!
//! On only when some app origin differs from the BFF's public origin ([`HttpSettings::cors`]).
//! Then every request that carries `Origin` must come from an app origin, or it gets
//! `403 cors_refused` before it reaches an endpoint (its page could not have read the answer
//! anyway, and CSRF refuses its unsafe requests too); requests without `Origin` (navigations,
//! same-origin `GET`s, server-to-server calls) pass untouched. Preflights are answered here: the
//! method and every requested header must be on the lists below.
//!
//! The cookie is `SameSite=Strict`, so this only helps app origins on the BFF's own site.
//!
//! Not poem's `Cors` middleware: it accepts a preflight when any one of the requested headers is
//! allowed (so `x-csrf, authorization` passes), and leaves out `Vary: Origin` for listed
//! origins, which lets a shared cache hand one origin's answer to another.

use std::collections::HashSet;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::problem::{Problem, from_poem_error};
use crate::settings::{HttpSettings, normalize_origin};

/// Methods a cross-origin app page may use.
const ALLOWED_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Request headers a cross-origin app page may send (lower case): the CSRF header and what
/// `fetch` sends for JSON and conditional requests.
const ALLOWED_HEADERS: [&str; 6] = [
    "x-csrf",
    "content-type",
    "accept",
    "accept-language",
    "if-match",
    "if-none-match",
];

/// Response headers such a page may read besides the CORS-safelisted ones.
const EXPOSED_HEADERS: &str = "Location, ETag, Retry-After, Content-Disposition";

/// How long a browser may reuse a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The middleware; build it with [`Cors::for_settings`].
#[derive(Clone, Debug)]
pub(crate) struct Cors {
    origins: HashSet<String>,
}

impl Cors {
    /// CORS for the app origins of `settings`, or `None` when it is off.
    pub(crate) fn for_settings(settings: &HttpSettings) -> Option<Self> {
        settings.cors.then(|| Self {
            origins: settings
                .app_origins
                .iter()
                .filter_map(|origin| normalize_origin(origin))
                .collect(),
        })
    }
}

impl Cors {
    /// A placeholder that allows no origin, for where the type needs a value while CORS is off.
    pub(crate) fn off() -> Self {
        Self {
            origins: HashSet::new(),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorsEndpoint {
            inner,
            cors: self.clone(),
        }
    }
}

/// An endpoint behind [`Cors`].
pub(crate) struct CorsEndpoint<E> {
    inner: E,
    cors: Cors,
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            let mut resp = self.inner.call(req).await?.into_response();
            vary(&mut resp, "Origin");
            return Ok(resp);
        };
        let allowed = origin
            .to_str()
            .ok()
            .and_then(normalize_origin)
            .is_some_and(|o| self.cors.origins.contains(&o));
        if !allowed {
            return Ok(refused("the page's origin is not an app origin"));
        }
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            return Ok(preflight_answer(&req, origin));
        }
        // Errors become problems here, so the page can read why (a `401` means log in).
        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => from_poem_error(err),
        };
        let headers = resp.headers_mut();
        allow_origin(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        vary(&mut resp, "Origin");
        Ok(resp)
    }
}

fn preflight_answer(req: &Request, origin: HeaderValue) -> Response {
    let method = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Method>().ok());
    if !method.is_some_and(|m| ALLOWED_METHODS.contains(&m)) {
        return refused("the method is not allowed cross-origin");
    }
    // Every requested header must be allowed, not just one of them.
    let requested = req
        .headers()
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .map(|v| v.to_str().map(str::to_ascii_lowercase))
        .collect::<Result<Vec<_>, _>>();
    let Ok(requested) = requested else {
        return refused("a requested header is not allowed cross-origin");
    };
    let every_header_allowed = requested
        .iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .all(|name| ALLOWED_HEADERS.contains(&name));
    if !every_header_allowed {
        return refused("a requested header is not allowed cross-origin");
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let headers = resp.headers_mut();
    allow_origin(headers, origin);
    // Spelled out from the lists above, so the answer cannot drift from what is checked.
    let methods: Vec<&str> = ALLOWED_METHODS.iter().map(Method::as_str).collect();
    if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    if let Ok(value) = HeaderValue::from_str(&ALLOWED_HEADERS.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    vary(
        &mut resp,
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    );
    resp
}

/// The page at `origin` may read this answer, with its cookie sent.
fn allow_origin(headers: &mut poem::http::HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

fn refused(why: &str) -> Response {
    let mut resp = Problem::new(
        StatusCode::FORBIDDEN,
        "cors_refused",
        format!("Cross-origin request refused: {why}."),
    )
    .into_response();
    vary(&mut resp, "Origin");
    resp
}

/// Adds `value` to `Vary` without dropping what the endpoint (or an upstream) put there.
fn vary(resp: &mut Response, value: &'static str) {
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static(value));
}
