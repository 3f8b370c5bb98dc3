//! The `/bff` endpoints: redirect style and API-driven style over the same use cases.
//!
//! Each handler parses its input into domain types at the edge, checks CSRF where the endpoint
//! is not a top-level navigation, calls one use case and shapes the answer. Cookies are written
//! through the request's cookie jar (poem's `CookieJarManager` turns them into `Set-Cookie`).

use std::sync::Arc;

use bff_domain::{
    Bff, CompleteLogin, LoginStyle, Prompt, ProviderId, ReturnUrl, SessionId, StartLogin, Timestamp,
};
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::{Html, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::Value;
use url::Url;

use crate::cookies;
use crate::csrf;
use crate::problem::Problem;
use crate::settings::HttpSettings;

#[derive(Tags)]
enum Tag {
    /// Redirect-style endpoints for top-level navigation (`/login`, `/callback`, `/logout`).
    Redirect,
    /// JSON endpoints for apps that drive navigation themselves.
    ApiDriven,
    /// Session information for the app.
    Session,
}

/// A redirect.
#[derive(Debug, ApiResponse)]
pub enum Redirect {
    /// Go there.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

/// The callback's answer: a same-origin page that moves on to the return URL, so that the first
/// page after login already carries the `SameSite=Strict` session cookie.
#[derive(Debug, ApiResponse)]
pub enum CallbackPage {
    /// The hop page.
    #[oai(status = 200)]
    Hop(Html<String>, #[oai(header = "Referrer-Policy")] String),
}

/// `POST /login/start` body.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct StartLoginRequest {
    /// Local path to return to afterwards (default `/`).
    pub return_url: Option<String>,
    /// Provider name (default: the configured default).
    pub provider: Option<String>,
    /// OIDC `prompt`: none, login, consent, select_account, create.
    pub prompt: Option<String>,
}

/// `POST /login/start` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct StartLoginResponse {
    /// Navigate the browser here.
    pub authorization_request_url: String,
}

/// `POST /login/end` body.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EndLoginRequest {
    /// The full URL of the page the app is on (with the provider's `code`/`state` when it is
    /// the return from a login).
    pub page_url: String,
}

/// `POST /login/end` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EndLoginResponse {
    /// Whether there is a session now.
    pub is_logged_in: bool,
    /// Whether this call finished a login.
    pub handled: bool,
    /// Where the login wanted to return to, when it finished one.
    #[oai(skip_serializing_if_is_none)]
    pub return_url: Option<String>,
}

/// `GET /session` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionResponse {
    /// Whether there is a session.
    pub is_logged_in: bool,
    /// When the session ends unless used (Unix seconds).
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<i64>,
    /// The provider of the session.
    #[oai(skip_serializing_if_is_none)]
    pub provider: Option<String>,
}

/// `POST /logout` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LogoutResponse {
    /// Navigate here to end the session at the provider too (absent when it has no
    /// end-session endpoint or there was no session).
    #[oai(skip_serializing_if_is_none)]
    pub logout_url: Option<String>,
}

/// `POST /refresh` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RefreshResponse {
    /// When the new access token expires (Unix seconds).
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<i64>,
}

/// `POST /logout` answer: JSON or a redirect.
#[derive(Debug, ApiResponse)]
pub enum LogoutAnswer {
    /// JSON for `Accept: application/json`.
    #[oai(status = 200)]
    Json(Json<LogoutResponse>),
    /// A redirect for form posts.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

/// The BFF endpoints.
#[derive(Debug, Clone)]
pub struct BffApi {
    bff: Arc<Bff>,
    settings: Arc<HttpSettings>,
}

impl BffApi {
    /// The API over `bff`.
    pub fn new(bff: Arc<Bff>, settings: Arc<HttpSettings>) -> Self {
        Self { bff, settings }
    }

    fn start_input(
        &self,
        return_url: Option<&str>,
        provider: Option<&str>,
        prompt: Option<&str>,
        style: LoginStyle,
    ) -> Result<StartLogin, Problem> {
        let return_url = ReturnUrl::parse_or_root(return_url).map_err(|e| {
            tracing::info!("refused returnUrl");
            Problem::bad_request("unsafe_return_url", e.to_string())
        })?;
        let provider = provider
            .filter(|p| !p.is_empty())
            .map(ProviderId::parse)
            .transpose()
            .map_err(|_| {
                Problem::bad_request(
                    "unknown_provider",
                    "No identity provider of that name is configured.",
                )
            })?;
        let prompt = prompt
            .filter(|p| !p.is_empty())
            .map(Prompt::parse)
            .transpose()
            .map_err(|e| Problem::bad_request("invalid_prompt", e.to_string()))?;
        Ok(StartLogin {
            provider,
            return_url,
            prompt,
            style,
        })
    }

    async fn start(&self, req: &Request, input: StartLogin) -> Result<String, Problem> {
        let started = self.bff.start_login(input).await?;
        cookies::set_binding(
            req,
            &self.settings,
            &started.binding,
            started.binding_max_age,
        );
        Ok(started.authorization_url)
    }

    async fn finish(&self, req: &Request, mut input: CompleteLogin) -> Result<ReturnUrl, Problem> {
        input.binding = cookies::binding(req, &self.settings);
        input.previous_session = cookies::session_id(req, &self.settings);
        // Whatever the outcome, the binding has done its job.
        cookies::clear_binding(req, &self.settings);
        let done = self.bff.complete_login(input).await?;
        cookies::set_session(req, &self.settings, &done.session_id, done.cookie_max_age);
        tracing::info!("login completed");
        Ok(done.return_url)
    }

    /// The problem for a session error; clears the cookie when the session is over.
    fn session_problem(&self, req: &Request, err: bff_domain::SessionError) -> Problem {
        if err.ends_session() {
            cookies::clear_session(req, &self.settings);
        }
        err.into()
    }

    fn session_or_401(&self, req: &Request) -> Result<SessionId, Problem> {
        cookies::session_id(req, &self.settings).ok_or_else(Problem::no_session)
    }

    fn logout_link(&self, logout_guard: &str) -> String {
        format!("{}/logout?sid={logout_guard}", self.settings.prefix)
    }
}

fn hop_page(return_url: &ReturnUrl) -> String {
    // The return URL is a validated local path without quotes, spaces or control characters;
    // it is still escaped for the attribute.
    let target = html_escape(return_url.as_str());
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={target}\">\
         <title>Signing in…</title></head>\
         <body><p>Signed in. <a href=\"{target}\">Continue</a>.</p></body></html>"
    )
}

fn html_escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

fn wants_json(req: &Request) -> bool {
    req.headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[OpenApi]
impl BffApi {
    /// Start a login (redirect style): `302` to the provider's authorization endpoint with
    /// PKCE (S256), state and nonce. Sets the short-lived login-binding cookie.
    #[oai(path = "/login", method = "get", tag = "Tag::Redirect")]
    async fn login(
        &self,
        req: &Request,
        #[oai(name = "returnUrl")] return_url: Query<Option<String>>,
        provider: Query<Option<String>>,
        prompt: Query<Option<String>>,
    ) -> Result<Redirect, Problem> {
        let input = self.start_input(
            return_url.0.as_deref(),
            provider.0.as_deref(),
            prompt.0.as_deref(),
            LoginStyle::Redirect,
        )?;
        Ok(Redirect::Found(self.start(req, input).await?))
    }

    /// The provider's redirect back (redirect style). Checks state, the login-binding cookie
    /// and `iss`, exchanges the code, validates the ID token and starts a new session; answers
    /// with a same-origin page that continues to the return URL.
    #[oai(path = "/callback", method = "get", tag = "Tag::Redirect")]
    async fn callback(
        &self,
        req: &Request,
        state: Query<Option<String>>,
        code: Query<Option<String>>,
        error: Query<Option<String>>,
        iss: Query<Option<String>>,
    ) -> Result<CallbackPage, Problem> {
        let state = state.0.filter(|s| !s.is_empty()).ok_or_else(|| {
            Problem::bad_request("state_mismatch", "The authorization response has no state.")
        })?;
        let return_url = self
            .finish(
                req,
                CompleteLogin {
                    state,
                    code: code.0,
                    error: error.0,
                    issuer: iss.0,
                    ..CompleteLogin::default()
                },
            )
            .await?;
        Ok(CallbackPage::Hop(
            Html(hop_page(&return_url)),
            "no-referrer".into(),
        ))
    }

    /// The current user's claims plus `bff:session_expires_at` and `bff:logout_url`.
    /// Requires `x-csrf: 1`. `401` without a session.
    #[oai(path = "/user", method = "get", tag = "Tag::Session")]
    async fn user(&self, req: &Request) -> Result<Json<Value>, Problem> {
        csrf::check(req, &self.settings)?;
        let id = self.session_or_401(req)?;
        let view = self
            .bff
            .current_session(&id)
            .await
            .map_err(|e| self.session_problem(req, e))?;
        let mut claims = view.claims.into_map();
        claims.insert(
            "bff:session_expires_at".into(),
            Value::from(view.expires_at.unix_seconds()),
        );
        claims.insert(
            "bff:logout_url".into(),
            Value::from(self.logout_link(&view.logout_guard)),
        );
        Ok(Json(Value::Object(claims)))
    }

    /// Logout by link (redirect style): the `sid` parameter must be the session's logout guard
    /// from `bff:logout_url`. Ends the session, revokes the refresh token and redirects to the
    /// provider's end-session endpoint (or `/` when it has none).
    #[oai(path = "/logout", method = "get", tag = "Tag::Redirect")]
    async fn logout_link_endpoint(
        &self,
        req: &Request,
        sid: Query<Option<String>>,
    ) -> Result<Redirect, Problem> {
        let Some(id) = cookies::session_id(req, &self.settings) else {
            cookies::clear_session(req, &self.settings);
            return Ok(Redirect::Found("/".into()));
        };
        let guard = sid.0.unwrap_or_default();
        let outcome = match self.bff.logout(&id, Some(&guard)).await {
            Err(bff_domain::LogoutError::NoSession) => None,
            other => Some(other?),
        };
        cookies::clear_session(req, &self.settings);
        let url = outcome.and_then(|o| {
            log_revocation(&o);
            o.logout_url
        });
        Ok(Redirect::Found(url.unwrap_or_else(|| "/".into())))
    }

    /// Logout (API style): ends the session and answers `{logoutUrl}` for
    /// `Accept: application/json`, else redirects there. Requires `x-csrf: 1` and an allowed
    /// `Origin`.
    #[oai(path = "/logout", method = "post", tag = "Tag::ApiDriven")]
    async fn logout(&self, req: &Request) -> Result<LogoutAnswer, Problem> {
        csrf::check(req, &self.settings)?;
        let outcome = match cookies::session_id(req, &self.settings) {
            None => None,
            Some(id) => match self.bff.logout(&id, None).await {
                Err(bff_domain::LogoutError::NoSession) => None,
                other => Some(other?),
            },
        };
        cookies::clear_session(req, &self.settings);
        let logout_url = outcome.and_then(|o| {
            log_revocation(&o);
            o.logout_url
        });
        if wants_json(req) {
            Ok(LogoutAnswer::Json(Json(LogoutResponse { logout_url })))
        } else {
            Ok(LogoutAnswer::Found(
                logout_url.unwrap_or_else(|| "/".into()),
            ))
        }
    }

    /// Start a login (API style): answers the authorization URL to navigate to, and sets the
    /// login-binding cookie. The provider redirects back to the app, which calls `/login/end`.
    #[oai(path = "/login/start", method = "post", tag = "Tag::ApiDriven")]
    async fn login_start(
        &self,
        req: &Request,
        body: Json<Option<StartLoginRequest>>,
    ) -> Result<Json<StartLoginResponse>, Problem> {
        csrf::check(req, &self.settings)?;
        let body = body.0.unwrap_or(StartLoginRequest {
            return_url: None,
            provider: None,
            prompt: None,
        });
        let input = self.start_input(
            body.return_url.as_deref(),
            body.provider.as_deref(),
            body.prompt.as_deref(),
            LoginStyle::ApiDriven,
        )?;
        Ok(Json(StartLoginResponse {
            authorization_request_url: self.start(req, input).await?,
        }))
    }

    /// Finish a login (API style): the app posts the URL of every page load; when it carries an
    /// authorization response the login completes and the session cookie is set.
    #[oai(path = "/login/end", method = "post", tag = "Tag::ApiDriven")]
    async fn login_end(
        &self,
        req: &Request,
        body: Json<EndLoginRequest>,
    ) -> Result<Json<EndLoginResponse>, Problem> {
        csrf::check(req, &self.settings)?;
        let page = Url::parse(&body.0.page_url).map_err(|_| {
            Problem::bad_request("invalid_page_url", "pageUrl must be an absolute URL.")
        })?;
        if !self
            .settings
            .is_app_origin(&page.origin().ascii_serialization())
        {
            return Err(Problem::bad_request(
                "invalid_page_url",
                "pageUrl is not on an allowed app origin.",
            ));
        }
        let param = |name: &str| {
            page.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let state = param("state");
        let code = param("code");
        let error = param("error");
        if let Some(state) = state.filter(|_| code.is_some() || error.is_some()) {
            let return_url = self
                .finish(
                    req,
                    CompleteLogin {
                        state,
                        code,
                        error,
                        issuer: param("iss"),
                        ..CompleteLogin::default()
                    },
                )
                .await?;
            return Ok(Json(EndLoginResponse {
                is_logged_in: true,
                handled: true,
                return_url: Some(return_url.as_str().to_owned()),
            }));
        }
        let is_logged_in = match cookies::session_id(req, &self.settings) {
            None => false,
            Some(id) => match self.bff.current_session(&id).await {
                Ok(_) => true,
                Err(e) if e.ends_session() => {
                    cookies::clear_session(req, &self.settings);
                    false
                }
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Json(EndLoginResponse {
            is_logged_in,
            handled: false,
            return_url: None,
        }))
    }

    /// Whether there is a session, when it ends and with which provider. Requires `x-csrf: 1`.
    #[oai(path = "/session", method = "get", tag = "Tag::Session")]
    async fn session(&self, req: &Request) -> Result<Json<SessionResponse>, Problem> {
        csrf::check(req, &self.settings)?;
        let not_logged_in = Json(SessionResponse {
            is_logged_in: false,
            expires_at: None,
            provider: None,
        });
        let Some(id) = cookies::session_id(req, &self.settings) else {
            return Ok(not_logged_in);
        };
        match self.bff.current_session(&id).await {
            Ok(view) => Ok(Json(SessionResponse {
                is_logged_in: true,
                expires_at: Some(view.expires_at.unix_seconds()),
                provider: Some(view.provider.as_str().to_owned()),
            })),
            Err(e) if e.ends_session() => {
                cookies::clear_session(req, &self.settings);
                Ok(not_logged_in)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The user's claims: the ID token's, plus the provider's userinfo endpoint when configured.
    /// Requires `x-csrf: 1`. `401` without a session.
    #[oai(path = "/userinfo", method = "get", tag = "Tag::Session")]
    async fn userinfo(&self, req: &Request) -> Result<Json<Value>, Problem> {
        csrf::check(req, &self.settings)?;
        let id = self.session_or_401(req)?;
        let claims = self
            .bff
            .userinfo(&id)
            .await
            .map_err(|e| self.session_problem(req, e))?;
        Ok(Json(Value::Object(claims.into_map())))
    }

    /// Refresh the tokens now. `401` when there is no session or the provider refuses (the
    /// session is then ended: log in again). Requires `x-csrf: 1` and an allowed `Origin`.
    #[oai(path = "/refresh", method = "post", tag = "Tag::ApiDriven")]
    async fn refresh(&self, req: &Request) -> Result<Json<RefreshResponse>, Problem> {
        csrf::check(req, &self.settings)?;
        let id = self.session_or_401(req)?;
        match self.bff.refresh(&id).await {
            Ok(out) => Ok(Json(RefreshResponse {
                expires_at: out.access_token_expires_at.map(Timestamp::unix_seconds),
            })),
            Err(e) => {
                if e.ends_session() {
                    cookies::clear_session(req, &self.settings);
                }
                Err(e.into())
            }
        }
    }
}

fn log_revocation(outcome: &bff_domain::LogoutOutcome) {
    if let Some(err) = &outcome.revocation_error {
        tracing::warn!(error = %crate::problem::error_chain(err), "refresh token revocation failed; session ended anyway");
    }
}
