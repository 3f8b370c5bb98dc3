//! The two cookies the BFF sets, with their attributes in one place.
//!
//! - Session: `HttpOnly; Secure; Path=/; SameSite=Strict`, no `Domain`; value is the opaque
//!   session id. Without `Max-Age` it would outlive the session in the browser for no gain, so it
//!   carries the session's expiry.
//! - Login binding: the same but `SameSite=Lax`, because the provider's redirect back to the
//!   callback is a cross-site top-level navigation that must carry it.
//!
//! In plain-HTTP development mode `Secure` is dropped (and names must not use `__Host-`).

use std::time::Duration;

use bff_domain::{LoginBinding, SessionId};
use poem::Request;
use poem::web::cookie::{Cookie, SameSite};

use crate::settings::HttpSettings;

fn base(settings: &HttpSettings, name: &str, value: &str, same_site: SameSite) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_http_only(true);
    cookie.set_secure(settings.secure_cookies);
    cookie.set_path("/");
    cookie.set_same_site(same_site);
    cookie
}

/// Sets the session cookie for `lifetime`.
pub fn set_session(req: &Request, settings: &HttpSettings, id: &SessionId, lifetime: Duration) {
    let mut cookie = base(
        settings,
        &settings.session_cookie,
        id.expose(),
        SameSite::Strict,
    );
    cookie.set_max_age(lifetime);
    req.cookie().add(cookie);
}

/// Expires the session cookie (same attributes, so browsers accept the removal).
pub fn clear_session(req: &Request, settings: &HttpSettings) {
    let mut cookie = base(settings, &settings.session_cookie, "", SameSite::Strict);
    cookie.set_max_age(Duration::ZERO);
    req.cookie().add(cookie);
}

/// Sets the login-binding cookie for `lifetime`.
pub fn set_binding(
    req: &Request,
    settings: &HttpSettings,
    binding: &LoginBinding,
    lifetime: Duration,
) {
    let mut cookie = base(
        settings,
        &settings.binding_cookie,
        binding.expose(),
        SameSite::Lax,
    );
    cookie.set_max_age(lifetime);
    req.cookie().add(cookie);
}

/// Expires the login-binding cookie.
pub fn clear_binding(req: &Request, settings: &HttpSettings) {
    let mut cookie = base(settings, &settings.binding_cookie, "", SameSite::Lax);
    cookie.set_max_age(Duration::ZERO);
    req.cookie().add(cookie);
}

/// The session id from the request's cookie; `None` when absent or malformed (a malformed value
/// is never looked up).
pub fn session_id(req: &Request, settings: &HttpSettings) -> Option<SessionId> {
    let cookie = req.cookie().get(&settings.session_cookie)?;
    SessionId::parse(cookie.value_str()).ok()
}

/// The login binding from the request's cookie.
pub fn binding(req: &Request, settings: &HttpSettings) -> Option<LoginBinding> {
    let cookie = req.cookie().get(&settings.binding_cookie)?;
    LoginBinding::parse(cookie.value_str()).ok()
}
