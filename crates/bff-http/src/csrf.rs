//! CSRF defence for every endpoint that is not a top-level navigation, declared by taking a
//! [`CsrfChecked`] argument.
//!
//! Two layers: the custom header `x-csrf: 1` (a cross-origin page cannot send it without a CORS
//! preflight, which the BFF never grants), and for unsafe methods an `Origin` check against the
//! configured app origins, falling back to `Sec-Fetch-Site: same-origin` when a browser omits
//! `Origin`. A request that fails either gets `403 csrf_failed` before anything changes.
//!
//! [`CsrfChecked`] is an OpenAPI security scheme named [`SCHEME`] (an API key in the `x-csrf`
//! header), so the generated document lists it on exactly the operations that check it.

use poem::http::Method;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::cookies::request_settings;
use crate::problem::Problem;
use crate::settings::HttpSettings;

/// The name of the security scheme in the OpenAPI document.
pub(crate) const SCHEME: &str = "csrf";

/// Proof that the request passed the CSRF checks; an endpoint declares it as an argument
/// (`_csrf: CsrfChecked`) and cannot run without it. Placed first among the arguments, it
/// refuses a forged request before the body is read.
#[derive(Debug)]
pub(crate) struct CsrfChecked(());

impl<'a> ApiExtractor<'a> for CsrfChecked {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "Send the header `x-csrf: 1`. Unsafe methods also need an `Origin` among the \
                     app origins (or `Sec-Fetch-Site: same-origin` without `Origin`). Failing \
                     requests get `403 csrf_failed`.",
                ),
                name: Some("x-csrf"),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let settings = request_settings(req)?;
        check(req, &settings)?;
        Ok(Self(()))
    }
}

/// Who sent a `POST /logout` that passed its CSRF checks: script (`x-csrf: 1`, [`check`]) or
/// a plain HTML form the user submitted ([`check_form_navigation`]), which cannot add a header.
/// Registered as the same security scheme as [`CsrfChecked`]: a request with neither proof gets
/// `403 csrf_failed` as there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptOrForm {
    /// `x-csrf: 1` and, for this unsafe method, an app `Origin`.
    Script,
    /// A top-level form navigation from an app origin.
    Form,
}

impl<'a> ApiExtractor<'a> for ScriptOrForm {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        CsrfChecked::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let settings = request_settings(req)?;
        if req.headers().contains_key("x-csrf") || !is_navigation(req) {
            check(req, &settings)?;
            Ok(Self::Script)
        } else {
            check_form_navigation(req, &settings)?;
            Ok(Self::Form)
        }
    }
}

/// Whether the browser says `req` is a top-level navigation (`Sec-Fetch-Mode: navigate`, which
/// script cannot set).
fn is_navigation(req: &Request) -> bool {
    req.headers()
        .get("sec-fetch-mode")
        .is_some_and(|v| v.as_bytes() == b"navigate")
}

/// The CSRF rule for a navigation (a form the user submits, which cannot carry `x-csrf`): its
/// `Origin` must be one of the app origins. A cross-site page can submit a form too, but its
/// `Origin` is its own; without `Origin` (or with `null`) it is refused.
fn check_form_navigation(req: &Request, settings: &HttpSettings) -> Result<(), Problem> {
    if has_app_origin(req, settings)? {
        Ok(())
    } else {
        Err(Problem::csrf(
            "a form needs an Origin header from an allowed origin",
        ))
    }
}

/// Whether `req` names an app origin in `Origin`: `false` without the header, refused with
/// any other origin.
fn has_app_origin(req: &Request, settings: &HttpSettings) -> Result<bool, Problem> {
    match req.headers().get("origin").and_then(|v| v.to_str().ok()) {
        Some(origin) if settings.is_app_origin(origin) => Ok(true),
        Some(_) => Err(Problem::csrf(
            "the request comes from an origin that is not allowed",
        )),
        None => Ok(false),
    }
}

/// Checks the CSRF rules for `req`.
pub(crate) fn check(req: &Request, settings: &HttpSettings) -> Result<(), Problem> {
    let header = req.headers().get("x-csrf").and_then(|v| v.to_str().ok());
    if header != Some("1") {
        return Err(Problem::csrf("the x-csrf: 1 header is required"));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        return Ok(());
    }
    if has_app_origin(req, settings)? {
        return Ok(());
    }
    let site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if site == Some("same-origin") {
        Ok(())
    } else {
        Err(Problem::csrf(
            "an Origin header from an allowed origin is required",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn settings() -> HttpSettings {
        HttpSettings {
            prefix: "/bff".into(),
            session_cookie: "__Host-Http-bff".into(),
            binding_cookie: "__Host-Http-bff-login".into(),
            logout_cookie: "__Host-Http-bff-logout".into(),
            secure_cookies: true,
            app_origins: vec!["https://app.example".into()],
            cors: false,
            trusted_proxies: Default::default(),
            request_limits: crate::RequestLimits::default(),
        }
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri_str("/bff/refresh");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.finish()
    }

    fn refused(method: Method, headers: &[(&str, &str)]) -> bool {
        match check(&request(method, headers), &settings()) {
            Ok(()) => false,
            Err(problem) => {
                assert!(matches!(problem, Problem::Forbidden(_)), "{problem:?}");
                true
            }
        }
    }

    #[test]
    fn safe_methods_need_only_the_header() {
        assert!(!refused(Method::GET, &[("x-csrf", "1")]));
        assert!(!refused(Method::HEAD, &[("x-csrf", "1")]));
        for headers in [
            &[][..],
            &[("x-csrf", "0")],
            &[("x-csrf", "true")],
            &[("x-csrf", " 1")],
            &[("x-csrf", "")],
            &[("x-csrf-token", "1")],
            // An allowed Origin does not replace the header.
            &[("origin", "https://app.example")],
        ] {
            assert!(refused(Method::GET, headers), "{headers:?}");
        }
    }

    #[test]
    fn unsafe_methods_need_an_app_origin_too() {
        assert!(!refused(
            Method::POST,
            &[("x-csrf", "1"), ("origin", "https://app.example")]
        ));
        assert!(!refused(
            Method::POST,
            &[("x-csrf", "1"), ("sec-fetch-site", "same-origin")]
        ));
        for origin in [
            "https://evil.example",
            "https://app.example.evil.example",
            "http://app.example",
            "https://app.example:8443",
            "null",
            "",
            "https://app.example/path",
        ] {
            assert!(
                refused(Method::POST, &[("x-csrf", "1"), ("origin", origin)]),
                "{origin}"
            );
        }
        for site in ["cross-site", "same-site", "none", ""] {
            assert!(
                refused(Method::POST, &[("x-csrf", "1"), ("sec-fetch-site", site)]),
                "{site}"
            );
        }
        // A cross-site Origin is refused even when Sec-Fetch-Site claims otherwise.
        assert!(refused(
            Method::DELETE,
            &[
                ("x-csrf", "1"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]
        ));
        // The header is still required with a good Origin.
        assert!(refused(Method::POST, &[("origin", "https://app.example")]));
    }
}
