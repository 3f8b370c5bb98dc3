//! The axum router: four routes, each parsing its input into domain types, calling one use case
//! of `Bff` and shaping the answer (cookies, redirect, JSON or a problem).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use bff_domain::{Bff, CompleteLogin, LogoutError, ReturnUrl, StartLogin};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cookies::{self, SessionCookie, SetCookies};
use crate::csrf::CsrfChecked;
use crate::problem::Problem;
use crate::site::PublicSite;

/// The router's state: the use cases and the site they answer for.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    pub(crate) bff: Arc<Bff>,
    pub(crate) site: Arc<PublicSite>,
}

/// The host's routes (`/login`, `/callback`, `/user`, `/logout`) over `bff`, for browsers at
/// `site`. Anything else is a `404`/`405` problem.
pub fn app(bff: Arc<Bff>, site: PublicSite) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/user", get(user))
        .route("/logout", post(logout))
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .with_state(Host {
            bff,
            site: Arc::new(site),
        })
}

fn invalid_query(rejection: &QueryRejection) -> Problem {
    // The rejection names the parameter and the rule; values are never echoed by serde here.
    Problem::bad_request(
        "invalid_request",
        format!("The query is invalid: {}", rejection.body_text()),
    )
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

/// `GET /login`: `302` to the provider's authorization endpoint (PKCE S256, state, nonce) and
/// the login-binding cookie that ties the callback to this browser.
async fn login(
    State(host): State<Host>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| invalid_query(&e))?;
    let return_url = ReturnUrl::parse_or_root(query.return_url.as_deref())
        .map_err(|e| Problem::bad_request("unsafe_return_url", e.to_string()))?;
    let started = host
        .bff
        .start_login(StartLogin {
            provider: None,
            return_url,
            prompt: None,
            style: bff_domain::LoginStyle::Redirect,
        })
        .await?;
    let location = HeaderValue::try_from(started.authorization_url)
        .map_err(|e| Problem::internal("the authorization URL is not a header value", &e))?;
    let cookies =
        SetCookies::default().binding(&host.site, &started.binding, started.binding_max_age);
    Ok((StatusCode::FOUND, cookies, [(LOCATION, location)]).into_response())
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// `GET /callback`: the provider's redirect back. The domain checks state, binding and `iss`,
/// exchanges the code and validates the ID token; the answer sets the session cookie and moves
/// on to the return URL.
async fn callback(
    State(host): State<Host>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    // Whatever the outcome, the binding has done its job.
    let cookies = SetCookies::default().clear_binding(&host.site);
    let input = query.map_err(|e| invalid_query(&e)).and_then(|Query(q)| {
        let state = q.state.filter(|s| !s.is_empty()).ok_or_else(|| {
            Problem::bad_request("state_mismatch", "The authorization response has no state.")
        })?;
        Ok(CompleteLogin {
            state,
            code: q.code,
            error: q.error,
            issuer: q.iss,
            binding: cookies::binding(&headers, &host.site),
            previous_session: cookies::session_id(&headers, &host.site),
            // The user-agent summary for operators; this host binds no sessions.
            client: bff_domain::ClientContext {
                user_agent: headers
                    .get(axum::http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                address: None,
            },
        })
    });
    let done = match input {
        Ok(input) => host.bff.complete_login(input).await.map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match done {
        Ok(done) => {
            tracing::info!("login completed");
            // This host never starts a connect (`start_connect`), the only login that joins an
            // existing session instead of bringing a new session id.
            let cookies = match &done.session_id {
                Some(id) => cookies.session(&host.site, id, done.cookie_max_age),
                None => cookies,
            };
            (
                cookies,
                // The callback URL carries the code: never send it on as a Referer.
                [
                    (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
                    (CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                Html(hop_page(&done.return_url)),
            )
                .into_response()
        }
        Err(problem) => (cookies, problem).into_response(),
    }
}

/// A same-origin page that moves on to the return URL. A `302` would do, except that browsers
/// treat the whole redirect chain that started at the provider as cross-site and would leave the
/// new `SameSite=Strict` cookie off the first page after login.
fn hop_page(return_url: &ReturnUrl) -> String {
    // A validated local path without quotes, spaces or controls; escaped for the attribute all
    // the same.
    let target = return_url
        .as_str()
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={target}\"><title>Signing in…</title></head>\
         <body><p>Signed in. <a href=\"{target}\">Continue</a>.</p></body></html>"
    )
}

/// `GET /user`: the ID token's claims. Needs `x-csrf: 1`; `401` without a live session (and the
/// stale cookie is cleared when the domain ended the session).
async fn user(
    _: CsrfChecked,
    State(host): State<Host>,
    SessionCookie(id): SessionCookie,
) -> Result<Response, Response> {
    let id = id.ok_or_else(|| Problem::no_session().into_response())?;
    match host.bff.current_session(&id).await {
        Ok(view) => Ok((
            [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(Value::Object(view.claims.into_map())),
        )
            .into_response()),
        Err(e) if e.ends_session() => Err((
            SetCookies::default().clear_session(&host.site),
            Problem::from(e),
        )
            .into_response()),
        Err(e) => Err(Problem::from(e).into_response()),
    }
}

/// `POST /logout`: ends the session (revoking the refresh token when the provider can) and
/// answers `{"logoutUrl": …}`, the provider's end-session URL for the app to navigate to
/// (`null` without a session or an end-session endpoint). Needs `x-csrf: 1` and the site's
/// `Origin`. Without a session it still succeeds: logging out twice is not an error.
async fn logout(
    _: CsrfChecked,
    State(host): State<Host>,
    SessionCookie(id): SessionCookie,
) -> Result<Response, Problem> {
    let outcome = match id {
        None => None,
        Some(id) => match host.bff.logout(&id, None).await {
            Ok(outcome) => Some(outcome),
            Err(LogoutError::NoSession) => None,
            // A store failure keeps the cookie: the session may still exist, so a retry must
            // be able to end it.
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(err) = outcome.as_ref().and_then(|o| o.revocation_error.as_ref()) {
        tracing::warn!(error = %err, "refresh token revocation failed; session ended anyway");
    }
    let logout_url = outcome.and_then(|o| o.logout_url);
    Ok((
        SetCookies::default().clear_session(&host.site),
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({ "logoutUrl": logout_url })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_page_escapes_its_target() {
        let url = ReturnUrl::parse("/a?x=1&y='2'").unwrap();
        let page = hop_page(&url);
        assert!(page.contains("url=/a?x=1&amp;y=&#39;2&#39;\""), "{page}");
        assert!(!page.contains("'2'"), "{page}");
    }
}
