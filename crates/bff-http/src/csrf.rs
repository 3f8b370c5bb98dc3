//! CSRF defence for every endpoint that is not a top-level navigation.
//!
//! Two layers: the custom header `x-csrf: 1` (a cross-origin page cannot send it without a CORS
//! preflight, which the BFF never grants), and for unsafe methods an `Origin` check against the
//! configured app origins, falling back to `Sec-Fetch-Site: same-origin` when a browser omits
//! `Origin`. A request that fails either gets `403 csrf_failed` before anything changes.

use poem::Request;
use poem::http::Method;

use crate::problem::Problem;
use crate::settings::HttpSettings;

/// Checks the CSRF rules for `req`.
///
/// # Errors
/// `403 csrf_failed` problem.
pub fn check(req: &Request, settings: &HttpSettings) -> Result<(), Problem> {
    let header = req.headers().get("x-csrf").and_then(|v| v.to_str().ok());
    if header != Some("1") {
        return Err(Problem::csrf("the x-csrf: 1 header is required"));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        return Ok(());
    }
    match req.headers().get("origin").and_then(|v| v.to_str().ok()) {
        Some(origin) if settings.is_app_origin(origin) => Ok(()),
        Some(_) => Err(Problem::csrf(
            "the request comes from an origin that is not allowed",
        )),
        None => {
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
    }
}
