//! The `/bff` endpoints, one API struct per concern: logging in ([`login`]), the session
//! ([`session`]), logging out ([`logout`]) and the provider's back-channel and front-channel
//! logout calls ([`provider_logout`]). Redirect style and API-driven style run over the same use
//! cases.
//!
//! Each handler declares what guards it in its signature: `_csrf: CsrfChecked` on every endpoint
//! that is not a top-level navigation, and `RequiredSession` or `SessionCookie` to reach the
//! session id. It then parses its input into domain types, calls one use case and shapes the
//! answer. Cookies are written through the request's cookie jar (poem's `CookieJarManager` turns
//! them into `Set-Cookie`).

mod login;
mod logout;
mod provider_logout;
mod session;

use std::sync::Arc;

use bff_domain::Bff;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use crate::settings::HttpSettings;

pub(crate) use login::LoginApi;
pub(crate) use logout::LogoutApi;
pub(crate) use provider_logout::ProviderLogoutApi;
pub(crate) use session::SessionApi;

/// Every endpoint, in the tuple form `OpenApiService` takes.
pub(crate) fn endpoints(bff: Arc<Bff>, settings: Arc<HttpSettings>) -> impl OpenApi + 'static {
    (
        LoginApi::new(bff.clone(), settings.clone()),
        SessionApi::new(bff.clone(), settings.clone()),
        LogoutApi::new(bff.clone(), settings),
        ProviderLogoutApi::new(bff),
    )
}

#[derive(Tags)]
enum Tag {
    /// Redirect-style endpoints for top-level navigation (`/login`, `/callback`, `/logout`).
    Redirect,
    /// JSON endpoints for apps that drive navigation themselves.
    ApiDriven,
    /// Session information for the app.
    Session,
    /// Called by the identity provider: back-channel and front-channel logout.
    ProviderLogout,
}

/// A redirect.
#[derive(Debug, ApiResponse)]
pub(crate) enum Redirect {
    /// Go there.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}
