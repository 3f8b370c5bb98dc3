//! The host's error answers: RFC 9457 `application/problem+json` with a stable `code` (and
//! `type` = `urn:bff:problem:<code>`), mapped from the domain's error enums here and only here.
//!
//! The codes are the ones `bff-server` uses, so an app can move between the two hosts. Internal
//! causes (store, provider, cipher) are logged and answered with a generic sentence; no token,
//! code, cookie or secret is put into a problem.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bff_domain::ports::{ProviderError, StoreError};
use bff_domain::{LoginError, LogoutError, SessionError};
use serde_json::json;

/// Seconds a client should wait after `503` before retrying.
const RETRY_AFTER_SECS: &str = "2";

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub(crate) fn csrf(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "csrf_failed", detail)
    }

    pub(crate) fn no_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "There is no valid session; log in.",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This endpoint does not accept that method.",
        )
    }

    /// `500 internal_error`; `what` and the cause go to the log only.
    pub(crate) fn internal(what: &str, cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(cause), "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The host failed to handle the request.",
        )
    }

    fn store(err: &StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %error_chain(err), "session store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "The session store is unavailable; nothing was changed. Try again shortly.",
                )
            }
            StoreError::Conflict => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "The session changed concurrently; retry the request.",
            ),
            StoreError::NotFound => Self::no_session(),
        }
    }

    fn provider(err: &ProviderError) -> Self {
        tracing::error!(error = %error_chain(err), "identity provider call failed");
        let (code, detail) = match err {
            ProviderError::Unavailable(_) => (
                "provider_unavailable",
                "The identity provider could not be reached.",
            ),
            _ => (
                "provider_error",
                "The identity provider answered in a way the host could not accept.",
            ),
        };
        Self::new(StatusCode::BAD_GATEWAY, code, detail)
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("urn:bff:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

/// An error and its sources, `: `-separated, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl From<LoginError> for Problem {
    fn from(err: LoginError) -> Self {
        let refused = |code, detail: &str| {
            tracing::info!(reason = %err, "login refused");
            Self::bad_request(code, detail)
        };
        match &err {
            LoginError::UnknownProvider => refused(
                "unknown_provider",
                "No identity provider of that name is configured.",
            ),
            LoginError::StateMismatch => refused(
                "state_mismatch",
                "The login state is unknown, already used or expired; start the login again.",
            ),
            LoginError::BindingMissing => refused(
                "login_binding_missing",
                "The login was not started in this browser (login cookie missing); start it again.",
            ),
            LoginError::BindingMismatch => refused(
                "login_binding_mismatch",
                "The login was started in another browser; start it again.",
            ),
            LoginError::IssuerMismatch => refused(
                "issuer_mismatch",
                "The authorization response names another issuer than the one the login went to.",
            ),
            LoginError::IssuerMissing => refused(
                "issuer_missing",
                "The authorization response does not name its issuer.",
            ),
            // The provider's error code is attacker-controllable text: logged, never echoed.
            LoginError::ProviderDenied { .. } => refused(
                "provider_denied",
                "The identity provider did not grant the login.",
            ),
            LoginError::MissingCode => {
                refused("missing_code", "The authorization response has no code.")
            }
            LoginError::IdTokenInvalid(_) => {
                refused("id_token_invalid", "The ID token failed validation.")
            }
            LoginError::CodeRejected(_) => refused(
                "code_rejected",
                "The identity provider refused the authorization code.",
            ),
            // Only connects (`start_connect`, which this host does not offer) need a session or
            // refuse the session's own provider; mapped anyway, as bff-http does.
            LoginError::NoSession => Self::no_session(),
            LoginError::PrimaryProvider => refused(
                "provider_is_primary",
                "The session signed in with this provider; only other providers can be connected.",
            ),
            LoginError::Provider(e) => Self::provider(e),
            LoginError::Store(e) => Self::store(e),
            LoginError::Cipher(e) => Self::internal("sealing tokens failed", e),
        }
    }
}

impl From<SessionError> for Problem {
    fn from(err: SessionError) -> Self {
        match &err {
            SessionError::NoSession => Self::no_session(),
            SessionError::TokensUnreadable(cause) => {
                tracing::warn!(error = %error_chain(cause), "session ended: its tokens cannot be opened");
                Self::new(
                    StatusCode::UNAUTHORIZED,
                    "session_unusable",
                    "The session can no longer be used; log in again.",
                )
            }
            SessionError::Store(e) => Self::store(e),
            SessionError::Provider(e) => Self::provider(e),
        }
    }
}

impl From<LogoutError> for Problem {
    fn from(err: LogoutError) -> Self {
        match &err {
            LogoutError::NoSession => Self::no_session(),
            LogoutError::LogoutGuardMismatch => Self::new(
                StatusCode::FORBIDDEN,
                "logout_link_mismatch",
                "The logout link does not belong to this session.",
            ),
            LogoutError::StateMismatch => Self::bad_request(
                "logout_state_mismatch",
                "The return from the identity provider's logout does not belong to this browser.",
            ),
            LogoutError::Store(e) => Self::store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(problem: Problem) -> (StatusCode, Vec<(String, String)>, serde_json::Value) {
        let response = problem.into_response();
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn problems_are_problem_json_with_a_stable_type() {
        let (status, headers, body) = body_of(Problem::no_session()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.contains(&("content-type".into(), "application/problem+json".into())));
        assert_eq!(body["type"], "urn:bff:problem:no_session");
        assert_eq!(body["code"], "no_session");
        assert_eq!(body["status"], 401);
        assert_eq!(body["title"], "Unauthorized");
    }

    #[tokio::test]
    async fn an_unavailable_store_is_503_with_retry_after_and_no_cause() {
        let problem = Problem::from(SessionError::Store(StoreError::Unavailable(
            "connection to db.internal:5432 refused".into(),
        )));
        let (status, headers, body) = body_of(problem).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.contains(&("retry-after".into(), "2".into())));
        assert_eq!(body["code"], "store_unavailable");
        assert!(!body.to_string().contains("db.internal"));
    }

    #[tokio::test]
    async fn provider_supplied_text_is_never_echoed() {
        let hostile = "<script>alert(1)</script> eyJhbGciOi";
        for err in [
            LoginError::ProviderDenied {
                error: hostile.into(),
                return_url: bff_domain::ReturnUrl::parse_or_root(None).unwrap(),
            },
            LoginError::IdTokenInvalid(hostile.into()),
            LoginError::CodeRejected(hostile.into()),
        ] {
            let (status, _, body) = body_of(Problem::from(err)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(!body.to_string().contains("script"), "{body}");
            assert!(!body.to_string().contains("eyJ"), "{body}");
        }
    }

    #[test]
    fn login_errors_keep_the_codes_bff_server_uses() {
        let cases = [
            (LoginError::StateMismatch, "state_mismatch"),
            (LoginError::BindingMissing, "login_binding_missing"),
            (LoginError::BindingMismatch, "login_binding_mismatch"),
            (LoginError::IssuerMismatch, "issuer_mismatch"),
            (LoginError::IssuerMissing, "issuer_missing"),
            (LoginError::MissingCode, "missing_code"),
        ];
        for (err, code) in cases {
            let problem = Problem::from(err);
            assert_eq!(problem.code(), code);
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
        }
    }
}
