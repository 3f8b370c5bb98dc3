//! CSRF defence for the calls the app makes with `fetch` (`/user`, `/logout`), as an axum
//! extractor that refuses before the handler runs.
//!
//! Two layers: the header `x-csrf: 1` on every such call (a cross-site page cannot send a custom
//! header without a CORS preflight, which this host never answers), and for unsafe methods an
//! `Origin` equal to the site's own (browsers send `Origin` on every cross-origin and on
//! same-origin `POST` requests, so a missing one is refused too).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use crate::problem::Problem;
use crate::routes::Host;
use crate::site::PublicSite;

/// Extractor: the request passed the CSRF checks.
#[derive(Debug)]
pub(crate) struct CsrfChecked;

impl FromRequestParts<Host> for CsrfChecked {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, host: &Host) -> Result<Self, Problem> {
        check(&parts.method, &parts.headers, &host.site)?;
        Ok(Self)
    }
}

fn check(method: &Method, headers: &HeaderMap, site: &PublicSite) -> Result<(), Problem> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-csrf") != Some("1") {
        return Err(Problem::csrf("the x-csrf: 1 header is required"));
    }
    if method.is_safe() {
        return Ok(());
    }
    match header("origin") {
        Some(origin) if origin == site.origin() => Ok(()),
        Some(_) => Err(Problem::csrf(
            "the request comes from an origin that is not allowed",
        )),
        None => Err(Problem::csrf("an Origin header is required")),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static [u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn site() -> PublicSite {
        PublicSite::parse("https://app.example").unwrap()
    }

    #[test]
    fn safe_calls_need_the_header_and_nothing_else() {
        let ok = headers(&[("x-csrf", b"1")]);
        assert!(check(&Method::GET, &ok, &site()).is_ok());
        for bad in [
            headers(&[]),
            headers(&[("x-csrf", b"0")]),
            headers(&[("x-csrf", b"true")]),
            headers(&[("x-csrf", b"1 ")]),
            headers(&[("x-csrf", b"\xff")]),
            headers(&[("x-requested-with", b"XMLHttpRequest")]),
        ] {
            let refused = check(&Method::GET, &bad, &site()).unwrap_err();
            assert_eq!(refused.code(), "csrf_failed", "{bad:?}");
        }
    }

    #[test]
    fn unsafe_calls_also_need_the_sites_exact_origin() {
        let ok = headers(&[("x-csrf", b"1"), ("origin", b"https://app.example")]);
        assert!(check(&Method::POST, &ok, &site()).is_ok());
        for bad in [
            headers(&[("origin", b"https://app.example")]),
            headers(&[("x-csrf", b"1")]),
            headers(&[("x-csrf", b"1"), ("origin", b"null")]),
            headers(&[("x-csrf", b"1"), ("origin", b"https://evil.example")]),
            headers(&[("x-csrf", b"1"), ("origin", b"http://app.example")]),
            headers(&[
                ("x-csrf", b"1"),
                ("origin", b"https://app.example.evil.example"),
            ]),
            headers(&[("x-csrf", b"1"), ("origin", b"https://app.example:443")]),
            headers(&[("x-csrf", b"1"), ("origin", b"https://app.example/")]),
            headers(&[("x-csrf", b"1"), ("origin", b"https://sub.app.example")]),
            headers(&[("x-csrf", b"1"), ("sec-fetch-site", b"same-origin")]),
        ] {
            let refused = check(&Method::POST, &bad, &site()).unwrap_err();
            assert_eq!(refused.code(), "csrf_failed", "{bad:?}");
        }
    }
}
