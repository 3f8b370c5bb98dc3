//! Which headers cross the proxy, in each direction.
//!
//! Towards the upstream, the browser's headers go through minus:
//! - hop-by-hop headers (RFC 9110 section 7.6.1: `Connection`, `Keep-Alive`, `Proxy-*`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`, and every header named in `Connection`), plus
//!   `Expect`, which is about this connection too;
//! - the browser's credentials and the BFF's own: `Cookie` (the session cookie), `x-csrf`,
//!   `Authorization` (only the proxy decides the upstream credential);
//! - what the client claims about the path to the server: `Forwarded`, `X-Forwarded-*`,
//!   `X-Real-IP`; the proxy sets `X-Forwarded-*` itself from what it knows, reading the
//!   incoming ones only when a trusted proxy sent them ([`super::forwarding`]);
//! - `Host`: the upstream URL names the host;
//! - `traceparent` and `tracestate`: the proxy sends its own (`crate::trace_context`).
//! - `x-request-id`: the proxy sends the BFF's own request id, the one in its answer and logs.
//!
//! Names are compared on a folded form (ASCII letters and digits only, lower-cased), so
//! `X_CSRF`, `x.csrf` and `X-Csrf` are all `x-csrf`, and any name with `_` is dropped outright,
//! as nginx does by default: CGI-style servers (PHP, WSGI, Rack) read `-` and `_` as the same
//! character, so `x_forwarded_for` or `content_length` would reach the application as the
//! header the proxy controls.
//!
//! Towards the browser, the upstream's headers go through minus hop-by-hop ones and, unless the
//! route sets `forward_set_cookie`, every `Set-Cookie`; even then, never one that would set the
//! BFF's own session or login cookie. A `Location` that points into the upstream's base is
//! rewritten to the same place under the route's prefix ([`rewrite_location`]), so redirects go
//! back through the proxy and do not show the upstream's address.

use std::collections::BTreeSet;

use poem::http::HeaderValue;
use poem::http::header::{self, HeaderMap, HeaderName};
use url::Url;

/// Hop-by-hop headers, folded. `Proxy-*` is matched by prefix separately.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keepalive",
    "te",
    "trailer",
    "trailers",
    "transferencoding",
    "upgrade",
];

/// Request headers the upstream never gets from the browser, folded, besides hop-by-hop ones.
const NOT_FORWARDED: [&str; 11] = [
    "expect",
    "cookie",
    "cookie2",
    "xcsrf",
    "authorization",
    "forwarded",
    "xrealip",
    "host",
    // The proxy sends its own trace context (`crate::trace_context`).
    "traceparent",
    "tracestate",
    // The proxy sends the BFF's own request id (`crate::RequestId`).
    "xrequestid",
];

/// The name as compared: ASCII letters and digits only, lower-cased.
fn fold(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    fold_into(name, &mut folded);
    folded
}

/// [`fold`] into `out` (cleared first), so one buffer serves every header of a request.
fn fold_into<'a>(name: &str, out: &'a mut String) -> &'a str {
    out.clear();
    out.extend(
        name.bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase())),
    );
    out
}

/// Every header named in `Connection` values, folded.
fn named_in_connection(headers: &HeaderMap) -> BTreeSet<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(fold)
        .filter(|name| !name.is_empty())
        .collect()
}

fn is_hop_by_hop(folded: &str, named: &BTreeSet<String>) -> bool {
    HOP_BY_HOP.contains(&folded) || folded.starts_with("proxy") || named.contains(folded)
}

/// Whether a browser request header is withheld from the upstream; `buffer` is scratch space.
fn withheld_from_upstream(
    name: &HeaderName,
    named: &BTreeSet<String>,
    buffer: &mut String,
) -> bool {
    let raw = name.as_str();
    let folded = fold_into(raw, buffer);
    raw.contains('_')
        || is_hop_by_hop(folded, named)
        || NOT_FORWARDED.contains(&folded)
        || folded.starts_with("xforwarded")
}

/// The browser's request headers the upstream may see.
pub(crate) fn upstream_request_headers(incoming: &HeaderMap) -> HeaderMap {
    let named = named_in_connection(incoming);
    // Room for the headers the proxy adds (`Host`, `X-Forwarded-*`, `Authorization`, the
    // request id, `traceparent`, a route's extra ones): a map grown while adding them was a
    // sixtieth of a proxied request.
    let mut out = HeaderMap::with_capacity(incoming.len() + 8);
    // Room for the usual header names: allocated once rather than grown.
    let mut buffer = String::with_capacity(64);
    for (name, value) in incoming {
        if !withheld_from_upstream(name, &named, &mut buffer) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Whether a `Set-Cookie` value would set one of `own_cookies` (compared without regard to
/// case, like the `__Host-` prefix rules), or has no name at all.
fn sets_own_cookie(value: &[u8], own_cookies: &[&str]) -> bool {
    let text = String::from_utf8_lossy(value);
    let pair = text.split(';').next().unwrap_or_default();
    let Some((name, _)) = pair.split_once('=') else {
        // `Set-Cookie: value` sets a cookie with an empty name in some browsers; refuse it.
        return true;
    };
    let name = name.trim();
    name.is_empty() || own_cookies.iter().any(|own| own.eq_ignore_ascii_case(name))
}

/// The upstream's response headers the browser may see.
pub(crate) fn browser_response_headers(
    upstream: &HeaderMap,
    forward_set_cookie: bool,
    own_cookies: &[&str],
) -> HeaderMap {
    let named = named_in_connection(upstream);
    // Room for what the server adds on the way out (`x-request-id`, `Set-Cookie`).
    let mut out = HeaderMap::with_capacity(upstream.len() + 2);
    // Room for the usual header names: allocated once rather than grown.
    let mut buffer = String::with_capacity(64);
    for (name, value) in upstream {
        if is_hop_by_hop(fold_into(name.as_str(), &mut buffer), &named) {
            continue;
        }
        if name == header::SET_COOKIE
            && (!forward_set_cookie || sets_own_cookie(value.as_bytes(), own_cookies))
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Rewrites a `Location` that points into the upstream's base (`upstream_base`, the route's
/// upstream URL) to the same place under the route's `prefix`. A relative `Location` is
/// resolved against `request_url`, the URL the proxy called. Anything else is left alone.
pub(crate) fn rewrite_location(
    headers: &mut HeaderMap,
    request_url: &Url,
    upstream_base: &Url,
    prefix: &str,
) {
    let Some(value) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let Ok(target) = request_url.join(value) else {
        return;
    };
    if target.origin() != upstream_base.origin() {
        return;
    }
    let base = upstream_base.path().trim_end_matches('/');
    let rest = match target.path().strip_prefix(base) {
        Some("") => "",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return,
    };
    let mut local = format!("{prefix}{rest}");
    if let Some(query) = target.query() {
        local.push('?');
        local.push_str(query);
    }
    if let Some(fragment) = target.fragment() {
        local.push('#');
        local.push_str(fragment);
    }
    if let Ok(value) = HeaderValue::from_str(&local) {
        headers.insert(header::LOCATION, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn credentials_forwarding_claims_and_hop_by_hop_headers_stay_behind() {
        let incoming = map(&[
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("x-request-id", "r1"),
            ("x-csrf-token", "app-level, not the BFF's"),
            ("origin", "https://app.example"),
            // Withheld:
            ("cookie", "__Host-Http-bff=session"),
            ("Cookie2", "$Version=1"),
            ("x-csrf", "1"),
            ("X_CSRF", "1"),
            ("x.csrf", "1"),
            ("authorization", "Bearer from-the-browser"),
            ("Authorization_", "Bearer sneaky"),
            ("proxy-authorization", "Basic abc"),
            ("proxy_authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "gone"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("expect", "100-continue"),
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("X-Forwarded-Host", "evil.example"),
            ("x_forwarded_proto", "http"),
            ("x-forwarded-prefix", "/admin"),
            ("x-real-ip", "1.2.3.4"),
            ("x_real_ip", "1.2.3.4"),
            ("content_length", "0"),
            ("host", "app.example"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "vendor=chosen-by-the-client"),
        ]);
        let out = upstream_request_headers(&incoming);
        assert_eq!(
            names(&out),
            vec![
                "accept",
                "content-length",
                "content-type",
                "origin",
                "x-csrf-token",
            ]
        );
    }

    #[test]
    fn repeated_headers_keep_every_value() {
        let incoming = map(&[("accept-language", "en"), ("accept-language", "de")]);
        let out = upstream_request_headers(&incoming);
        assert_eq!(out.get_all("accept-language").iter().count(), 2);
    }

    #[test]
    fn response_hop_by_hop_headers_and_cookies_are_dropped_by_default() {
        let upstream = map(&[
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("upgrade", "h2c"),
            ("set-cookie", "tracking=1; Path=/"),
        ]);
        let out = browser_response_headers(&upstream, false, &["__Host-Http-bff"]);
        assert_eq!(names(&out), vec!["cache-control", "content-type"]);
    }

    #[test]
    fn forwarded_cookies_never_set_the_bffs_own() {
        let upstream = map(&[
            ("set-cookie", "pref=dark; Path=/"),
            ("set-cookie", "__Host-Http-bff=planted; Path=/; Secure"),
            ("set-cookie", " __host-http-BFF-login =planted"),
            ("set-cookie", "no-equals-sign"),
            ("set-cookie", "=empty-name"),
            ("set-cookie", "lang=en"),
        ]);
        let out = browser_response_headers(
            &upstream,
            true,
            &["__Host-Http-bff", "__Host-Http-bff-login"],
        );
        let cookies: Vec<&str> = out
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, vec!["pref=dark; Path=/", "lang=en"]);
    }

    #[test]
    fn redirects_into_the_upstream_come_back_through_the_proxy() {
        let base = Url::parse("https://orders.internal/v1").unwrap();
        let called = Url::parse("https://orders.internal/v1/7/edit?x=1").unwrap();
        let cases = [
            ("https://orders.internal/v1/7", Some("/api/orders/7")),
            ("https://orders.internal/v1", Some("/api/orders")),
            ("/v1/7?tab=a#top", Some("/api/orders/7?tab=a#top")),
            ("done", Some("/api/orders/7/done")),
            ("../8", Some("/api/orders/8")),
            // Not under the base, or elsewhere: left as the upstream sent it.
            ("https://orders.internal/v1x/7", None),
            ("/admin", None),
            ("https://idp.example/login", None),
            ("http://orders.internal/v1/7", None),
        ];
        for (location, expected) in cases {
            let mut headers = map(&[("location", location)]);
            rewrite_location(&mut headers, &called, &base, "/api/orders");
            let now = headers.get(header::LOCATION).unwrap().to_str().unwrap();
            assert_eq!(now, expected.unwrap_or(location), "{location}");
        }
        // No Location: nothing added.
        let mut headers = HeaderMap::new();
        rewrite_location(&mut headers, &called, &base, "/api/orders");
        assert!(headers.is_empty());
    }
}
