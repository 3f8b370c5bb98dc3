//! The two cookies this host sets, written and read by hand (no cookie crate: two cookies with
//! fixed attributes do not need one).
//!
//! - Session: `HttpOnly; Path=/; SameSite=Strict`, no `Domain`, value the opaque session id,
//!   `Max-Age` the session's absolute limit (the server decides expiry before that).
//! - Login binding: the same with `SameSite=Lax`, because the provider's redirect back to
//!   `/callback` is a cross-site top-level navigation that must carry it.
//!
//! On an https site both are `Secure` and named with the `__Host-` prefix (which browsers only
//! accept from a secure origin, with `Path=/` and no `Domain`); on a loopback http site neither.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponseParts, ResponseParts};
use bff_domain::{LoginBinding, SessionId};

use crate::problem::Problem;
use crate::routes::Host;
use crate::site::PublicSite;

const SESSION: &str = "session";
const BINDING: &str = "login";

#[derive(Clone, Copy)]
enum SameSite {
    Strict,
    Lax,
}

fn name(site: &PublicSite, base: &str) -> String {
    if site.is_secure() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

fn set_cookie(
    site: &PublicSite,
    base: &str,
    value: &str,
    max_age: Duration,
    same_site: SameSite,
) -> String {
    let same_site = match same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
    };
    let secure = if site.is_secure() { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite={same_site}{secure}",
        name(site, base),
        max_age.as_secs()
    )
}

/// `Set-Cookie` headers to add to a response, in order.
#[derive(Debug, Default)]
pub(crate) struct SetCookies(Vec<String>);

impl SetCookies {
    /// Sets the session cookie for `max_age`.
    pub(crate) fn session(mut self, site: &PublicSite, id: &SessionId, max_age: Duration) -> Self {
        let cookie = set_cookie(site, SESSION, id.expose(), max_age, SameSite::Strict);
        self.0.push(cookie);
        self
    }

    /// Expires the session cookie (same attributes, so browsers accept the removal).
    pub(crate) fn clear_session(mut self, site: &PublicSite) -> Self {
        let cookie = set_cookie(site, SESSION, "", Duration::ZERO, SameSite::Strict);
        self.0.push(cookie);
        self
    }

    /// Sets the login-binding cookie for `max_age`.
    pub(crate) fn binding(
        mut self,
        site: &PublicSite,
        binding: &LoginBinding,
        max_age: Duration,
    ) -> Self {
        let cookie = set_cookie(site, BINDING, binding.expose(), max_age, SameSite::Lax);
        self.0.push(cookie);
        self
    }

    /// Expires the login-binding cookie.
    pub(crate) fn clear_binding(mut self, site: &PublicSite) -> Self {
        let cookie = set_cookie(site, BINDING, "", Duration::ZERO, SameSite::Lax);
        self.0.push(cookie);
        self
    }
}

impl IntoResponseParts for SetCookies {
    type Error = Problem;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Problem> {
        for cookie in self.0 {
            // Values are validated credentials (base64url) and fixed attributes, so this only
            // fails if that invariant broke.
            let value = HeaderValue::try_from(cookie)
                .map_err(|e| Problem::internal("building a Set-Cookie header failed", &e))?;
            res.headers_mut().append(SET_COOKIE, value);
        }
        Ok(res)
    }
}

/// The first value of cookie `name` in the request's `Cookie` headers.
fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The session id from the session cookie; `None` when absent or malformed (a malformed value
/// never reaches the store).
pub(crate) fn session_id(headers: &HeaderMap, site: &PublicSite) -> Option<SessionId> {
    SessionId::parse(read(headers, &name(site, SESSION))?).ok()
}

/// The login binding from its cookie; `None` when absent or malformed.
pub(crate) fn binding(headers: &HeaderMap, site: &PublicSite) -> Option<LoginBinding> {
    LoginBinding::parse(read(headers, &name(site, BINDING))?).ok()
}

/// Extractor: the session id the browser sent, if any.
#[derive(Debug)]
pub(crate) struct SessionCookie(pub(crate) Option<SessionId>);

impl FromRequestParts<Host> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, host: &Host) -> Result<Self, Self::Rejection> {
        Ok(Self(session_id(&parts.headers, &host.site)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed session id: 43 base64url characters.
    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn sites() -> (PublicSite, PublicSite) {
        (
            PublicSite::parse("https://app.example").unwrap(),
            PublicSite::parse("http://127.0.0.1:3000").unwrap(),
        )
    }

    fn headers(cookie_headers: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in cookie_headers {
            headers.append(COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_on_https() {
        let (https, http) = sites();
        let id = SessionId::parse(ID).unwrap();
        let cookies = SetCookies::default()
            .session(&https, &id, Duration::from_secs(3600))
            .clear_binding(&https);
        assert_eq!(
            cookies.0,
            [
                format!(
                    "__Host-session={ID}; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure"
                ),
                "__Host-login=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure".to_owned(),
            ]
        );
        let cookies = SetCookies::default().session(&http, &id, Duration::from_secs(60));
        assert_eq!(
            cookies.0,
            [format!(
                "session={ID}; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
            )]
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name_from_every_cookie_header() {
        let (https, http) = sites();
        let h = headers(&[
            "other=1; xsession=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB; session =CCC",
            &format!("a=b;session={ID}"),
        ]);
        assert_eq!(session_id(&h, &http).unwrap().expose(), ID);
        // The https site only trusts the `__Host-` name, which a sibling subdomain cannot set.
        assert!(session_id(&h, &https).is_none());
        let h = headers(&[&format!("__Host-session={ID}")]);
        assert_eq!(session_id(&h, &https).unwrap().expose(), ID);
    }

    #[test]
    fn hostile_cookie_values_are_ignored() {
        let (_, http) = sites();
        let a = |n: usize| "A".repeat(n);
        for hostile in [
            "session=".to_owned(),
            "session=short".to_owned(),
            "session=../../etc/passwd".to_owned(),
            format!("session={}=", a(42)),
            format!("session={}", a(44)),
            format!("session={} {}", a(21), a(21)),
            format!("session={}%41", a(40)),
            "session".to_owned(),
            ";;;".to_owned(),
        ] {
            assert!(
                session_id(&headers(&[&hostile]), &http).is_none(),
                "{hostile}"
            );
            let as_binding = hostile.replacen("session", "login", 1);
            assert!(
                binding(&headers(&[&as_binding]), &http).is_none(),
                "{hostile}"
            );
        }
        // A header that is not visible ASCII is skipped, not fatal.
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_bytes(b"session=\xff").unwrap());
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("session={ID}")).unwrap(),
        );
        assert_eq!(session_id(&h, &http).unwrap().expose(), ID);
    }
}
