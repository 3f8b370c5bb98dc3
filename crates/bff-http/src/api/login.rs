//! Logging in: redirect style (`GET /login`, `GET /callback`) and API-driven style
//! (`POST /login/start`, `POST /login/end`).
//!
//! Starting a login sets the short-lived login-binding cookie; finishing one takes it back,
//! replaces the browser's previous session (if any) and sets the session cookie.
//!
//! Silent login (`GET /silent-login`, for a hidden iframe) is a redirect-style login with
//! `prompt=none` whose return URL is `GET /silent-login/callback`: a page that tells its parent
//! `{source: "bff-silent-login", isLoggedIn}` with `postMessage`. The provider's answer that it
//! cannot sign the user in without a page (`login_required`, or any other error to a silent
//! login whose state and binding checked out) goes to that page too, as `isLoggedIn: false`.
//!
//! `connect=true` (query of `GET /login`, field of `POST /login/start`) starts a login that adds
//! the provider's tokens to the browser's live session instead (same user, same session id):
//! without a live session both styles answer `401 no_session`, never an ordinary login that
//! would change who the user is, and naming the session's own provider is
//! `400 provider_is_primary`. Finishing a connect leaves the session cookie as it is.

use std::sync::Arc;

use base64::Engine as _;
use bff_domain::{
    Bff, CompleteLogin, LoginError, LoginStyle, Prompt, ProviderId, ReturnUrl, StartLogin,
};
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::{Html, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use sha2::Digest as _;
use url::Url;

use super::{Redirect, Tag};
use crate::cookies::{self, SessionCookie};
use crate::csrf::CsrfChecked;
use crate::problem::Problem;
use crate::settings::HttpSettings;

/// The callback's answer: a same-origin page that moves on to the return URL, so that the first
/// page after login already carries the `SameSite=Strict` session cookie.
#[derive(Debug, ApiResponse)]
pub(crate) enum CallbackPage {
    /// The hop page.
    #[oai(status = 200)]
    Hop(Html<String>, #[oai(header = "Referrer-Policy")] String),
}

/// `GET /silent-login/callback` answer.
#[derive(Debug, ApiResponse)]
pub(crate) enum SilentLoginPage {
    /// The page that posts the result to its parent frame.
    #[oai(status = 200)]
    Page(
        Html<String>,
        /// Only the page's own script runs, and only the app origins may frame it.
        #[oai(header = "Content-Security-Policy")]
        String,
    ),
}

/// Where a silent login returns to, below the prefix.
const SILENT_CALLBACK: &str = "/silent-login/callback";

/// `POST /login/start` body.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct StartLoginRequest {
    /// Local path to return to afterwards (default `/`).
    pub(crate) return_url: Option<String>,
    /// Provider name (default: the configured default).
    pub(crate) provider: Option<String>,
    /// OIDC `prompt`: none, login, consent, select_account, create.
    pub(crate) prompt: Option<String>,
    /// Add the provider's tokens to the current session instead of starting a new one (same
    /// user). Needs a live session (`401 no_session` otherwise); the session's own provider is
    /// `400 provider_is_primary`.
    pub(crate) connect: Option<bool>,
}

/// `POST /login/start` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct StartLoginResponse {
    /// Navigate the browser here.
    pub(crate) authorization_request_url: String,
}

/// `POST /login/end` body.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct EndLoginRequest {
    /// The full URL of the page the app is on (with the provider's `code`/`state` when it is
    /// the return from a login).
    pub(crate) page_url: String,
}

/// `POST /login/end` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct EndLoginResponse {
    /// Whether there is a session now.
    pub(crate) is_logged_in: bool,
    /// Whether this call finished a login.
    pub(crate) handled: bool,
    /// Where the login wanted to return to, when it finished one.
    #[oai(skip_serializing_if_is_none)]
    pub(crate) return_url: Option<String>,
}

/// The login endpoints.
#[derive(Debug, Clone)]
pub(crate) struct LoginApi {
    bff: Arc<Bff>,
    settings: Arc<HttpSettings>,
}

impl LoginApi {
    /// The login endpoints over `bff`.
    pub(crate) fn new(bff: Arc<Bff>, settings: Arc<HttpSettings>) -> Self {
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

    /// Starts `input`: an ordinary login, or with `connect` one that joins the browser's
    /// session, which must then be live.
    async fn start(
        &self,
        req: &Request,
        input: StartLogin,
        connect: bool,
        session: &SessionCookie,
    ) -> Result<String, Problem> {
        let started = if connect {
            let id = session.id().ok_or_else(Problem::no_session)?;
            self.bff
                .start_connect(id, input)
                .await
                .map_err(|e| Problem::login_start(e, |e| session.problem_for(e)))?
        } else {
            self.bff
                .start_login(input)
                .await
                .map_err(|e| Problem::login_start(e, Problem::from))?
        };
        cookies::set_binding(
            req,
            &self.settings,
            &started.binding,
            started.binding_max_age,
        );
        Ok(started.authorization_url)
    }

    async fn finish(
        &self,
        req: &Request,
        session: &SessionCookie,
        mut input: CompleteLogin,
    ) -> Result<ReturnUrl, LoginError> {
        input.binding = cookies::take_binding(req, &self.settings);
        input.previous_session = session.id().cloned();
        input.client = cookies::client_context(req, &self.settings.trusted_proxies);
        let done = self.bff.complete_login(input).await?;
        match (&done.session_id, &done.connected) {
            (Some(id), _) => {
                cookies::set_session(req.cookie(), &self.settings, id, done.cookie_max_age);
                tracing::info!("login completed");
            }
            (None, Some(provider)) => tracing::info!(provider = %provider, "provider connected"),
            (None, None) => tracing::error!("a login completed without a session or connection"),
        }
        Ok(done.return_url)
    }

    /// The return URL of a silent login.
    fn silent_callback(&self) -> String {
        format!("{}{SILENT_CALLBACK}", self.settings.prefix)
    }
}

/// The silent-login result page: posts `{source: "bff-silent-login", isLoggedIn}` to its parent
/// frame at each of `origins` (the browser delivers it only where the parent's origin is one of
/// them), and the `Content-Security-Policy` that lets only that script run and only `origins`
/// frame the page.
fn silent_login_page(is_logged_in: bool, origins: &[String]) -> (String, String) {
    let message = format!("{{source:\"bff-silent-login\",isLoggedIn:{is_logged_in}}}");
    // Origins are validated configuration (scheme, host, port); written as JSON strings with
    // `<` escaped all the same, so no value can close the script element.
    let targets = serde_json::to_string(origins)
        .unwrap_or_else(|_| "[]".into())
        .replace('<', "\\u003c");
    let script = format!(
        "for(const o of {targets}){{try{{window.parent.postMessage({message},o)}}catch(e){{}}}}"
    );
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&script));
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Silent login</title></head>\
         <body><script>{script}</script></body></html>"
    );
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'self' {}",
        origins.join(" ")
    );
    (page, policy)
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

#[OpenApi]
impl LoginApi {
    /// Start a login (redirect style): `302` to the provider's authorization endpoint with
    /// PKCE (S256), state and nonce. Sets the short-lived login-binding cookie. With
    /// `connect=true` the login adds the provider's tokens to the current session (same user,
    /// same session): `401 no_session` without a live session, `400 provider_is_primary` for
    /// the session's own provider.
    #[oai(path = "/login", method = "get", tag = "Tag::Redirect")]
    async fn login(
        &self,
        req: &Request,
        session: SessionCookie,
        #[oai(name = "returnUrl")] return_url: Query<Option<String>>,
        provider: Query<Option<String>>,
        prompt: Query<Option<String>>,
        connect: Query<Option<bool>>,
    ) -> Result<Redirect, Problem> {
        let input = self.start_input(
            return_url.0.as_deref(),
            provider.0.as_deref(),
            prompt.0.as_deref(),
            LoginStyle::Redirect,
        )?;
        let connect = connect.0.unwrap_or(false);
        Ok(Redirect::Found(
            self.start(req, input, connect, &session).await?,
        ))
    }

    /// The provider's redirect back (redirect style). Checks state, the login-binding cookie
    /// and `iss`, exchanges the code, validates the ID token and starts a new session; answers
    /// with a same-origin page that continues to the return URL.
    #[oai(path = "/callback", method = "get", tag = "Tag::Redirect")]
    async fn callback(
        &self,
        req: &Request,
        session: SessionCookie,
        state: Query<Option<String>>,
        code: Query<Option<String>>,
        error: Query<Option<String>>,
        iss: Query<Option<String>>,
    ) -> Result<CallbackPage, Problem> {
        let state = state.0.filter(|s| !s.is_empty()).ok_or_else(|| {
            Problem::bad_request("state_mismatch", "The authorization response has no state.")
        })?;
        let finished = self
            .finish(
                req,
                &session,
                CompleteLogin {
                    state,
                    code: code.0,
                    error: error.0,
                    issuer: iss.0,
                    ..CompleteLogin::default()
                },
            )
            .await;
        let return_url = match finished {
            Ok(return_url) => return_url,
            // A silent login the provider could not complete without a page: its result page
            // says so to the app (`isLoggedIn: false`) instead of a problem nobody sees.
            Err(LoginError::ProviderDenied { error, return_url })
                if return_url.as_str() == self.silent_callback() =>
            {
                tracing::info!(
                    oauth_error = %Problem::oauth_error_code(&error),
                    "silent login not possible"
                );
                return_url
            }
            Err(e) => return Err(e.into()),
        };
        Ok(CallbackPage::Hop(
            Html(hop_page(&return_url)),
            "no-referrer".into(),
        ))
    }

    /// Start a login (API style): answers the authorization URL to navigate to, and sets the
    /// login-binding cookie. The provider redirects back to the app, which calls `/login/end`.
    /// With `connect: true` the login adds the provider's tokens to the current session.
    #[oai(path = "/login/start", method = "post", tag = "Tag::ApiDriven")]
    async fn login_start(
        &self,
        _csrf: CsrfChecked,
        req: &Request,
        session: SessionCookie,
        body: Json<Option<StartLoginRequest>>,
    ) -> Result<Json<StartLoginResponse>, Problem> {
        let body = body.0.unwrap_or(StartLoginRequest {
            return_url: None,
            provider: None,
            prompt: None,
            connect: None,
        });
        let input = self.start_input(
            body.return_url.as_deref(),
            body.provider.as_deref(),
            body.prompt.as_deref(),
            LoginStyle::ApiDriven,
        )?;
        let connect = body.connect.unwrap_or(false);
        Ok(Json(StartLoginResponse {
            authorization_request_url: self.start(req, input, connect, &session).await?,
        }))
    }

    /// Finish a login (API style): the app posts the URL of every page load; when it carries an
    /// authorization response the login completes and the session cookie is set.
    #[oai(path = "/login/end", method = "post", tag = "Tag::ApiDriven")]
    async fn login_end(
        &self,
        _csrf: CsrfChecked,
        req: &Request,
        session: SessionCookie,
        body: Json<EndLoginRequest>,
    ) -> Result<Json<EndLoginResponse>, Problem> {
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
            let return_url: ReturnUrl = self
                .finish(
                    req,
                    &session,
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
        Ok(Json(EndLoginResponse {
            is_logged_in: session.current(&self.bff).await?.is_some(),
            handled: false,
            return_url: None,
        }))
    }

    /// Start a silent login (redirect style), for a hidden iframe: a login with
    /// `prompt=none` whose return URL is `/silent-login/callback`. `302` to the provider's
    /// authorization endpoint; sets the login-binding cookie. Whether or not the provider can
    /// sign the user in without a page, the iframe ends on `/silent-login/callback`.
    #[oai(path = "/silent-login", method = "get", tag = "Tag::Redirect")]
    async fn silent_login(
        &self,
        req: &Request,
        session: SessionCookie,
        provider: Query<Option<String>>,
    ) -> Result<Redirect, Problem> {
        let input = self.start_input(
            Some(&self.silent_callback()),
            provider.0.as_deref(),
            Some("none"),
            LoginStyle::Redirect,
        )?;
        Ok(Redirect::Found(
            self.start(req, input, false, &session).await?,
        ))
    }

    /// Where a silent login ends: a page that posts
    /// `{source: "bff-silent-login", isLoggedIn}` to its parent frame (for the app origins
    /// only), `isLoggedIn` saying whether the browser now holds a live session. Only the app
    /// origins may frame it.
    #[oai(path = "/silent-login/callback", method = "get", tag = "Tag::Redirect")]
    async fn silent_login_callback(
        &self,
        session: SessionCookie,
    ) -> Result<SilentLoginPage, Problem> {
        let is_logged_in = session.current(&self.bff).await?.is_some();
        let origins: Vec<String> = self
            .settings
            .app_origins
            .iter()
            .filter_map(|origin| crate::settings::normalize_origin(origin))
            .collect();
        let (page, policy) = silent_login_page(is_logged_in, &origins);
        Ok(SilentLoginPage::Page(Html(page), policy))
    }
}
