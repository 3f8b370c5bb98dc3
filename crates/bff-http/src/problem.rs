//! Every error answer as RFC 9457 `application/problem+json`, mapped from domain errors in one
//! place.
//!
//! Each problem has a stable `code` (also in `type` as `urn:bff:problem:<code>`) that clients may
//! branch on, and a `detail` sentence for humans. Internal causes (store and provider failures)
//! are logged with their error chain and shown to the client only as a generic sentence; no
//! token, code, cookie or secret ever appears in a problem.

use bff_domain::ports::{ProviderError, StoreError};
use bff_domain::{
    AdmissionError, BackchannelLogoutError, FrontchannelLogoutError, LoginError, LogoutError,
    RefreshError, SessionError,
};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The problem document.
#[derive(Debug, Clone, Object)]
pub(crate) struct ProblemDetails {
    /// `urn:bff:problem:<code>`.
    #[oai(rename = "type")]
    pub(crate) kind: String,
    /// Short summary of the problem type.
    pub(crate) title: String,
    /// The HTTP status.
    pub(crate) status: u16,
    /// What happened, for humans.
    pub(crate) detail: String,
    /// Stable machine-readable code.
    pub(crate) code: String,
    /// The check that failed, for codes that name one (`logout_token_invalid`: `iss`, `aud`,
    /// `jti`, `replayed`, ...; `route_not_allowed`: `dot_segment`, `no_route`,
    /// `method_not_allowed`, ...).
    #[oai(skip_serializing_if_is_none)]
    pub(crate) reason: Option<String>,
    /// Per-dependency results (readiness only).
    #[oai(skip_serializing_if_is_none)]
    pub(crate) checks: Option<serde_json::Value>,
    /// `urn:bff:request:<id>`: this request's id, also in the `x-request-id` header and on every
    /// log line the request wrote, so an operator can find what happened. Set by the request-id
    /// middleware, not where the problem is built.
    #[oai(skip_serializing_if_is_none)]
    pub(crate) instance: Option<String>,
}

/// An error answer.
#[derive(Debug, ApiResponse)]
pub(crate) enum Problem {
    /// The request is invalid.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<ProblemDetails>),
    /// No session, or the session cannot be used any more: log in again.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<ProblemDetails>),
    /// CSRF checks failed or the request is not allowed.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<ProblemDetails>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<ProblemDetails>),
    /// Method not allowed.
    #[oai(status = 405, content_type = "application/problem+json")]
    MethodNotAllowed(Json<ProblemDetails>),
    /// Conflicting concurrent request; retry.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<ProblemDetails>),
    /// The request body is larger than the endpoint reads.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<ProblemDetails>),
    /// Unsupported media type.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<ProblemDetails>),
    /// Internal error.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<ProblemDetails>),
    /// The identity provider failed.
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<ProblemDetails>),
    /// A store or other dependency is unavailable, nothing was changed; retry after `Retry-After`.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(
        Json<ProblemDetails>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

/// What a `503` suggests waiting: long enough for a pool to reconnect, short enough that a
/// user's retry after a blip succeeds.
const RETRY_AFTER_SECS: u32 = 2;

fn title_for(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl Problem {
    /// A provider's OAuth `error` code as it may be echoed or logged: OAuth error codes are
    /// short ASCII tokens, and anything else (which could carry anything) is `invalid`.
    pub(crate) fn oauth_error_code(code: &str) -> &str {
        if code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            code
        } else {
            "invalid"
        }
    }

    /// The problem as a response whose status is the problem's own, also for statuses no
    /// variant of the OpenAPI answer has (`408`, `431`, `504`): its `IntoResponse` picks the
    /// status from those variants.
    pub(crate) fn into_response_with_own_status(self) -> poem::Response {
        let status = self.status();
        let mut response = poem::IntoResponse::into_response(self);
        response.set_status(status);
        response
    }

    /// The HTTP status the body carries (the proxy answers `504` through a `502`-class
    /// variant and sets this status on the response).
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.details().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A problem with `status`, `code` and `detail`.
    pub(crate) fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self::build(status, code, detail.into(), None, None)
    }

    /// A problem with extra `checks` data (readiness).
    pub(crate) fn with_extra(
        status: StatusCode,
        code: &str,
        detail: &str,
        checks: serde_json::Value,
    ) -> Self {
        Self::build(status, code, detail.to_owned(), None, Some(checks))
    }

    fn build(
        status: StatusCode,
        code: &str,
        detail: String,
        reason: Option<&str>,
        checks: Option<serde_json::Value>,
    ) -> Self {
        let body = Json(ProblemDetails {
            kind: format!("urn:bff:problem:{code}"),
            title: title_for(status),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            reason: reason.map(str::to_owned),
            checks,
            instance: None,
        });
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(body),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(body),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(body),
            StatusCode::BAD_GATEWAY => Self::BadGateway(body),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body, RETRY_AFTER_SECS),
            _ => Self::Internal(body),
        }
    }

    /// `400` with `code` and the failed check `reason` (see [`Problem::because`]).
    pub(crate) fn bad_request_because(code: &str, reason: &str, detail: impl Into<String>) -> Self {
        Self::because(StatusCode::BAD_REQUEST, code, reason, detail)
    }

    /// A problem with `status`, `code`, `detail` and the failed check `reason`. Reasons come
    /// from this program's own check names; anything that does not look like one is not echoed.
    pub(crate) fn because(
        status: StatusCode,
        code: &str,
        reason: &str,
        detail: impl Into<String>,
    ) -> Self {
        let reason = if !reason.is_empty()
            && reason.len() <= 32
            && reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            reason
        } else {
            "invalid"
        };
        Self::build(status, code, detail.into(), Some(reason), None)
    }

    fn details(&self) -> &ProblemDetails {
        match self {
            Self::BadRequest(b)
            | Self::Unauthorized(b)
            | Self::Forbidden(b)
            | Self::NotFound(b)
            | Self::MethodNotAllowed(b)
            | Self::Conflict(b)
            | Self::PayloadTooLarge(b)
            | Self::UnsupportedMediaType(b)
            | Self::Internal(b)
            | Self::BadGateway(b)
            | Self::Unavailable(b, _) => &b.0,
        }
    }

    /// `413 payload_too_large`.
    pub(crate) fn payload_too_large(detail: &str) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
    }

    /// `400` with `code`.
    pub(crate) fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// `403 csrf_failed`.
    pub(crate) fn csrf(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "csrf_failed", detail)
    }

    /// `401 no_session`.
    pub(crate) fn no_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "There is no valid session; log in.",
        )
    }

    /// `401 session_unusable`: the session's tokens no longer open (vault key removed from the
    /// configuration, or a corrupt blob), so the domain ended it. Logged once, at the moment the
    /// session is ended; later requests find no session.
    pub(crate) fn tokens_unreadable(cause: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %error_chain(cause), "session ended: its tokens cannot be opened");
        Self::new(
            StatusCode::UNAUTHORIZED,
            "session_unusable",
            "The session can no longer be used; log in again.",
        )
    }

    /// `503 store_unavailable`, logging the cause.
    pub(crate) fn store(err: &StoreError) -> Self {
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

    /// `502 provider_unavailable` (or `provider_error`), logging the cause.
    pub(crate) fn provider(err: &ProviderError) -> Self {
        tracing::error!(error = %error_chain(err), "identity provider call failed");
        match err {
            ProviderError::Unavailable(_) => Self::new(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                "The identity provider could not be reached.",
            ),
            _ => Self::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                "The identity provider answered in a way the BFF could not accept.",
            ),
        }
    }

    /// A failed login start: `503 provider_unavailable` with `Retry-After` when the provider
    /// cannot be used now (building an authorization request needs no network, so this is a
    /// provider whose discovery has not succeeded yet: the login may simply be retried);
    /// anything else as `otherwise` maps it.
    pub(crate) fn login_start(err: LoginError, otherwise: impl FnOnce(LoginError) -> Self) -> Self {
        match err {
            LoginError::Provider(e @ ProviderError::Unavailable(_)) => {
                tracing::warn!(error = %error_chain(&e), "login at an unavailable provider");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_unavailable",
                    "The identity provider is not available yet; retry later.",
                )
            }
            other => otherwise(other),
        }
    }

    /// `500 internal_error`, logging the cause.
    pub(crate) fn internal(what: &str, err: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(err), "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The BFF failed to handle the request.",
        )
    }

    /// `500 internal_error` for a wiring mistake in this process, logging `what`.
    pub(crate) fn misconfigured(what: &str) -> Self {
        tracing::error!("{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The BFF failed to handle the request.",
        )
    }
}

/// An error and its sources, `: `-separated, for logs.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<LoginError> for Problem {
    fn from(err: LoginError) -> Self {
        if !matches!(
            err,
            LoginError::Store(_) | LoginError::Provider(_) | LoginError::Cipher(_)
        ) {
            tracing::info!(reason = %err, "login refused");
        }
        match err {
            LoginError::UnknownProvider => Self::bad_request(
                "unknown_provider",
                "No identity provider of that name is configured.",
            ),
            LoginError::NoSession => Self::no_session(),
            LoginError::PrimaryProvider => Self::bad_request(
                "provider_is_primary",
                "The session signed in with this provider; only other providers can be connected.",
            ),
            LoginError::StateMismatch => Self::bad_request(
                "state_mismatch",
                "The login state is unknown, already used or expired; start the login again.",
            ),
            LoginError::BindingMissing => Self::bad_request(
                "login_binding_missing",
                "The login was not started in this browser (login cookie missing); start it again.",
            ),
            LoginError::BindingMismatch => Self::bad_request(
                "login_binding_mismatch",
                "The login was started in another browser; start it again.",
            ),
            LoginError::IssuerMismatch => Self::bad_request(
                "issuer_mismatch",
                "The authorization response names another issuer than the one the login went to.",
            ),
            LoginError::IssuerMissing => Self::bad_request(
                "issuer_missing",
                "The identity provider always names itself in authorization responses and this one does not.",
            ),
            LoginError::ProviderDenied { error, .. } => Self::bad_request(
                "provider_denied",
                format!(
                    "The identity provider answered with error '{}'.",
                    Self::oauth_error_code(&error)
                ),
            ),
            LoginError::MissingCode => {
                Self::bad_request("missing_code", "The authorization response has no code.")
            }
            LoginError::IdTokenInvalid(reason) => Self::bad_request(
                "id_token_invalid",
                format!("The ID token failed validation ({reason})."),
            ),
            LoginError::CodeRejected(code) => {
                tracing::warn!(oauth_error = %code, "token endpoint refused the code");
                Self::bad_request(
                    "code_rejected",
                    "The identity provider refused the authorization code.",
                )
            }
            LoginError::Provider(e) => Self::provider(&e),
            LoginError::Store(e) => Self::store(&e),
            LoginError::Cipher(e) => Self::internal("sealing tokens failed", &e),
        }
    }
}

impl From<AdmissionError> for Problem {
    fn from(err: AdmissionError) -> Self {
        match err {
            AdmissionError::ClientMismatch => {
                tracing::warn!(
                    "session ended: the request came from another client than the login (strict client binding)"
                );
                Self::new(
                    StatusCode::UNAUTHORIZED,
                    "session_binding_mismatch",
                    "The session belongs to another browser or network; log in again.",
                )
            }
            AdmissionError::TokensUnreadable(e) => Self::tokens_unreadable(&e),
            AdmissionError::Sealing(e) => {
                Self::internal("re-sealing tokens for a renewed session id failed", &e)
            }
            AdmissionError::Store(e) => Self::store(&e),
        }
    }
}

impl From<SessionError> for Problem {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::NoSession => Self::no_session(),
            SessionError::Store(e) => Self::store(&e),
            SessionError::TokensUnreadable(e) => Self::tokens_unreadable(&e),
            SessionError::Provider(e) => Self::provider(&e),
        }
    }
}

impl From<RefreshError> for Problem {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::NoSession => Self::no_session(),
            RefreshError::NoRefreshToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "refresh_unavailable",
                "The session has no refresh token; log in again.",
            ),
            RefreshError::Refused(code) => {
                tracing::info!(oauth_error = %code, "refresh refused; session ended");
                Self::new(
                    StatusCode::UNAUTHORIZED,
                    "refresh_refused",
                    "The identity provider refused to refresh; log in again.",
                )
            }
            RefreshError::InProgress => Self::new(
                StatusCode::CONFLICT,
                "refresh_in_progress",
                "A refresh of this session is in progress; retry shortly.",
            ),
            RefreshError::NotConnected(required) => {
                bff_domain::allowlist::ProxyRefusal::ProviderNotConnected { required }.into()
            }
            RefreshError::Store(e) => Self::store(&e),
            RefreshError::TokensUnreadable(e) => Self::tokens_unreadable(&e),
            RefreshError::Sealing(e) => Self::internal("sealing refreshed tokens failed", &e),
            RefreshError::Provider(e) => Self::provider(&e),
        }
    }
}

impl From<LogoutError> for Problem {
    fn from(err: LogoutError) -> Self {
        match err {
            LogoutError::NoSession => Self::no_session(),
            LogoutError::LogoutGuardMismatch => Self::new(
                StatusCode::FORBIDDEN,
                "logout_link_mismatch",
                "The logout link does not belong to this session.",
            ),
            LogoutError::StateMismatch => Self::bad_request(
                "logout_state_mismatch",
                "The return from the identity provider's logout does not belong to a logout this browser started.",
            ),
            LogoutError::Store(e) => Self::store(&e),
        }
    }
}

impl From<BackchannelLogoutError> for Problem {
    fn from(err: BackchannelLogoutError) -> Self {
        let reason = match &err {
            BackchannelLogoutError::InvalidToken(check) => check.as_str(),
            BackchannelLogoutError::Replayed => "replayed",
            BackchannelLogoutError::Provider(e) => return Self::provider(e),
            BackchannelLogoutError::Store(e) => return Self::store(e),
        };
        tracing::info!(reason, "back-channel logout refused");
        Self::bad_request_because(
            "logout_token_invalid",
            reason,
            format!("The logout token was refused ({reason}); no session was ended."),
        )
    }
}

impl From<FrontchannelLogoutError> for Problem {
    fn from(err: FrontchannelLogoutError) -> Self {
        let (reason, detail) = match &err {
            FrontchannelLogoutError::UnknownIssuer => (
                "iss",
                "The issuer is missing or not a configured identity provider.",
            ),
            FrontchannelLogoutError::MissingSid => ("sid", "The provider session id is missing."),
            FrontchannelLogoutError::Store(e) => return Self::store(e),
        };
        tracing::info!(reason, "front-channel logout refused");
        Self::bad_request_because("frontchannel_logout_invalid", reason, detail)
    }
}

/// Maps errors raised outside the handlers (no route, wrong method, unparsable parameters or
/// body) to problems. Responses the handlers built themselves pass through unchanged.
pub(crate) fn from_poem_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::new(status, "not_found", "No such endpoint."),
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            "method_not_allowed",
            "This endpoint does not accept that method.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
            status,
            "unsupported_media_type",
            "The request body has a media type this endpoint does not take (application/json; \
             application/x-www-form-urlencoded for the back-channel logout).",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::payload_too_large("The request body is too large.")
        }
        s if s.is_client_error() => {
            // poem-openapi's parse errors name the parameter and the rule, never a value, so
            // they are shown; anything else (the static-file endpoint names the file it refused,
            // with the server's own path) is not.
            use poem_openapi::error::{
                ParseMultipartError, ParseParamError, ParseRequestPayloadError,
            };
            let explained = err.is::<ParseParamError>()
                || err.is::<ParseRequestPayloadError>()
                || err.is::<ParseMultipartError>();
            let detail = if explained {
                format!("The request is invalid: {err}")
            } else {
                "The request is invalid.".to_owned()
            };
            Problem::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
        }
        _ => Problem::internal("unhandled error", &err),
    };
    problem.into_response()
}

impl From<bff_domain::allowlist::ProxyRefusal> for Problem {
    fn from(refusal: bff_domain::allowlist::ProxyRefusal) -> Self {
        use bff_domain::allowlist::ProxyRefusal;
        let code = refusal.code();
        let reason = refusal.reason();
        let (status, detail) = match refusal {
            ProxyRefusal::PathNotAllowed(defect) => (
                StatusCode::BAD_REQUEST,
                format!("The request target is not allowed: {defect}."),
            ),
            ProxyRefusal::NoRoute => (
                StatusCode::NOT_FOUND,
                "No API route serves this path.".to_owned(),
            ),
            ProxyRefusal::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "This API route does not allow the method; see Allow.".to_owned(),
            ),
            ProxyRefusal::InsufficientScope { missing } => (
                StatusCode::FORBIDDEN,
                format!(
                    "The access token lacks scopes this API route requires: {}.",
                    missing.join(" ")
                ),
            ),
            ProxyRefusal::ProviderNotConnected { required } => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "This API route needs the provider '{required}' connected to the session (log in with connect=true)."
                ),
            ),
        };
        match reason {
            Some(reason) => Self::because(status, code, reason, detail),
            None => Self::new(status, code, detail),
        }
    }
}

impl From<bff_domain::ProxyError> for Problem {
    fn from(err: bff_domain::ProxyError) -> Self {
        use bff_domain::ProxyError;
        match err {
            ProxyError::NoSession => Self::no_session(),
            ProxyError::Refused(refusal) => refusal.into(),
            // An API call can simply be retried: 503 with Retry-After, the session kept.
            ProxyError::Token(RefreshError::Provider(e @ ProviderError::Unavailable(_))) => {
                tracing::error!(error = %error_chain(&e), "identity provider unavailable for a refresh");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_unavailable",
                    "The identity provider could not be reached to refresh the access token; nothing was changed. Try again shortly.",
                )
            }
            ProxyError::Token(e) => e.into(),
            // Like a refresh: the provider is down, so the call can be retried shortly.
            ProxyError::ClientToken(e) if matches!(*e, ProviderError::Unavailable(_)) => {
                tracing::error!(error = %error_chain(&*e), "identity provider unavailable for a client-credentials token");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_unavailable",
                    "The identity provider could not be reached for the BFF's access token; nothing was sent. Try again shortly.",
                )
            }
            // Refused (`unauthorized_client`, `invalid_scope`) or malformed: the provider and
            // the BFF disagree about this client, which no retry fixes.
            ProxyError::ClientToken(e) => Self::provider(&e),
            ProxyError::UnknownProvider(provider) => Self::misconfigured(&format!(
                "API route names provider {provider}, which is not configured"
            )),
        }
    }
}
