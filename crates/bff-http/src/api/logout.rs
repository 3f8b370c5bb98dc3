//! Logging out: by link (`GET /logout?sid=`, guarded by the session's logout guard), by API
//! (`POST /logout` from script, or from a plain HTML form of the app), and the provider's
//! redirect back after RP-initiated logout (`GET /logout/callback?state=`).
//!
//! Ending a session clears its cookie and, when the provider has an end-session endpoint, keeps
//! the `state` sent there in the short-lived post-logout cookie; the return checks it, so only a
//! logout this browser started comes back as a success.

use std::sync::Arc;

use bff_domain::{Bff, LogoutError, LogoutOutcome};
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{Redirect, Tag};
use crate::cookies::{self, SessionCookie};
use crate::csrf::ScriptOrForm;
use crate::finish::to_the_end;
use crate::problem::{Problem, error_chain};
use crate::settings::HttpSettings;

/// `POST /logout` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct LogoutResponse {
    /// Navigate here to end the session at the provider too (absent when it has no
    /// end-session endpoint or there was no session).
    #[oai(skip_serializing_if_is_none)]
    pub(crate) logout_url: Option<String>,
}

/// `POST /logout` answer: JSON to script, a redirect to a form.
#[derive(Debug, ApiResponse)]
pub(crate) enum LogoutAnswer {
    /// `{logoutUrl}` for script (`x-csrf: 1`), whatever its `Accept` says.
    #[oai(status = 200)]
    Json(Json<LogoutResponse>),
    /// For a plain HTML form (a navigation): on to the provider's end-session URL, or `/`.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

/// The logout link for a session with `logout_guard` (the `bff:logout_url` claim of `/user`).
pub(crate) fn logout_link(settings: &HttpSettings, logout_guard: &str) -> String {
    // Joined without the formatting machinery: every `GET /user` answer carries it.
    const PATH: &str = "/logout?sid=";
    let mut link = String::with_capacity(settings.prefix.len() + PATH.len() + logout_guard.len());
    link.push_str(&settings.prefix);
    link.push_str(PATH);
    link.push_str(logout_guard);
    link
}

/// The logout endpoints.
#[derive(Debug, Clone)]
pub(crate) struct LogoutApi {
    bff: Arc<Bff>,
    settings: Arc<HttpSettings>,
}

impl LogoutApi {
    /// The logout endpoints over `bff`.
    pub(crate) fn new(bff: Arc<Bff>, settings: Arc<HttpSettings>) -> Self {
        Self { bff, settings }
    }

    /// Ends the browser's session, if it has one, and answers the provider's end-session URL
    /// when there is one to visit. `guard` is the logout link's value (`GET` only).
    async fn end_session(
        &self,
        req: &Request,
        session: &SessionCookie,
        guard: Option<&str>,
    ) -> Result<Option<String>, Problem> {
        let outcome = match session.id() {
            None => None,
            Some(id) => {
                // To the end: once the session is deleted, only this call can still revoke its
                // refresh tokens.
                let (bff, id, guard) = (self.bff.clone(), id.clone(), guard.map(str::to_owned));
                let ended = to_the_end("a logout", async move {
                    bff.logout(&id, guard.as_deref()).await
                });
                match ended.await? {
                    Ok(outcome) => Some(outcome),
                    Err(LogoutError::NoSession) => None,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        session.clear();
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        log_revocation(&outcome);
        if let Some(state) = &outcome.return_state {
            cookies::set_logout_state(req, &self.settings, state);
        }
        Ok(outcome.logout_url)
    }
}

fn log_revocation(outcome: &LogoutOutcome) {
    if let Some(err) = &outcome.revocation_error {
        tracing::warn!(error = %error_chain(err), "refresh token revocation failed; session ended anyway");
    }
    for (provider, err) in &outcome.connection_revocation_errors {
        tracing::warn!(provider = %provider, error = %error_chain(err), "connected provider's refresh token revocation failed; session ended anyway");
    }
}

#[OpenApi]
impl LogoutApi {
    /// Logout by link (redirect style): the `sid` parameter must be the session's logout guard
    /// from `bff:logout_url`. Ends the session, revokes the refresh token and redirects to the
    /// provider's end-session endpoint (or `/` when it has none).
    #[oai(path = "/logout", method = "get", tag = "Tag::Redirect")]
    async fn logout_link_endpoint(
        &self,
        req: &Request,
        session: SessionCookie,
        sid: Query<Option<String>>,
    ) -> Result<Redirect, Problem> {
        if session.id().is_none() {
            session.clear();
            return Ok(Redirect::Found("/".into()));
        }
        let guard = sid.0.unwrap_or_default();
        let url = self.end_session(req, &session, Some(&guard)).await?;
        Ok(Redirect::Found(url.unwrap_or_else(|| "/".into())))
    }

    /// Logout (API style): ends the session. Script (`x-csrf: 1` and an allowed `Origin`)
    /// gets `{logoutUrl}` whatever its `Accept` says, never a redirect: a `fetch` would follow
    /// it to the provider and fail there, with the session already ended. A plain HTML form
    /// (`Sec-Fetch-Mode: navigate` and an allowed `Origin`, no `x-csrf`) gets `302` to the
    /// provider's end-session URL, or `/`.
    #[oai(path = "/logout", method = "post", tag = "Tag::ApiDriven")]
    async fn logout(
        &self,
        caller: ScriptOrForm,
        req: &Request,
        session: SessionCookie,
    ) -> Result<LogoutAnswer, Problem> {
        let logout_url = self.end_session(req, &session, None).await?;
        Ok(match caller {
            ScriptOrForm::Script => LogoutAnswer::Json(Json(LogoutResponse { logout_url })),
            ScriptOrForm::Form => LogoutAnswer::Found(logout_url.unwrap_or_else(|| "/".into())),
        })
    }

    /// The provider's redirect back after logout (redirect style, the default
    /// `post_logout_redirect_uri`): `state` must be the one this browser's logout sent, kept in
    /// the post-logout cookie, which this clears. `302` to `/`; `400 logout_state_mismatch`
    /// otherwise.
    #[oai(path = "/logout/callback", method = "get", tag = "Tag::Redirect")]
    async fn logout_callback(
        &self,
        req: &Request,
        state: Query<Option<String>>,
    ) -> Result<Redirect, Problem> {
        let expected = cookies::take_logout_state(req, &self.settings);
        self.bff
            .complete_logout(state.0.as_deref(), expected.as_ref())
            .inspect_err(|_| tracing::info!("post-logout return refused: state mismatch"))?;
        Ok(Redirect::Found("/".into()))
    }
}
