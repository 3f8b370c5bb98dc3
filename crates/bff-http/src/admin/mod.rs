//! The operators' admin API, off unless configured: list a user's sessions and revoke one or all
//! of them. It is its own poem app ([`admin_app`]) with its own OpenAPI document
//! ([`admin_openapi_service`]), served by `bff-server` on its own listener, never on the browser
//! listener.
//!
//! - `GET /admin/sessions?sub=&iss=`: the user's live sessions, each under an opaque handle
//!   (never a session id, session key or token).
//! - `DELETE /admin/sessions?sub=&iss=`: revoke all of them.
//! - `DELETE /admin/sessions/{handle}?sub=&iss=`: revoke one.
//!
//! `iss` is optional: without it every configured provider's issuer is searched. Every endpoint
//! takes [`auth::AdminAuth`] (bearer token, `401` otherwise), and every action is logged at
//! `info` with who (the credential's fingerprint) and what (action, `sub`, `iss`, count). `sub`
//! and `iss` are recorded as `&str` fields, which the log formatter quotes and escapes, so a
//! hostile `sub` cannot forge a log line.

mod auth;

use std::sync::Arc;

use bff_domain::{AdminError, Bff, SessionHandle, SessionSummary};
use poem::http::{StatusCode, header};
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, IntoResponse, Route, get};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, OpenApiService, Tags};

pub use auth::{AdminCredential, InvalidAdminCredential};

use crate::finish::to_the_end;
use crate::problem::Problem;
use auth::AdminAuth;

/// Where the admin endpoints live on the admin listener.
const ADMIN_PREFIX: &str = "/admin";

#[derive(Tags)]
enum Tag {
    /// Sessions of a user, for operators.
    Sessions,
}

/// One session as operators see it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct AdminSession {
    /// Opaque handle to revoke this session by; not a session id or key.
    handle: String,
    /// The configured provider that authenticated the user.
    provider: String,
    /// `iss` of the session.
    issuer: String,
    /// `sub` of the session.
    subject: String,
    /// When the session was created (Unix seconds).
    created_at: i64,
    /// When it was last used (Unix seconds).
    last_seen_at: i64,
    /// When it ends unless used again (Unix seconds).
    idle_expires_at: i64,
    /// When it ends whatever happens (Unix seconds).
    absolute_expires_at: i64,
    /// The browser and system the session logged in from, summarised at login ("Chrome 131 on
    /// Linux"); fixed words and a major version, never the raw `User-Agent`. Absent when the
    /// login sent none.
    user_agent: Option<String>,
}

impl From<SessionSummary> for AdminSession {
    fn from(s: SessionSummary) -> Self {
        Self {
            handle: s.handle.as_str().to_owned(),
            provider: s.provider.as_str().to_owned(),
            issuer: s.issuer,
            subject: s.subject,
            created_at: s.created_at.unix_seconds(),
            last_seen_at: s.last_seen_at.unix_seconds(),
            idle_expires_at: s.idle_expires_at.unix_seconds(),
            absolute_expires_at: s.absolute_expires_at.unix_seconds(),
            user_agent: s.user_agent,
        }
    }
}

/// `GET /admin/sessions` answer.
#[derive(Debug, Object)]
struct SessionList {
    /// The user's live sessions, oldest first.
    sessions: Vec<AdminSession>,
}

/// Answer of the revoking endpoints.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct RevokedSessions {
    /// Sessions revoked.
    revoked: u64,
    /// Refresh tokens (of the first login and of connected providers) the providers did not
    /// confirm revoking (the sessions are gone anyway).
    revocation_failures: u64,
}

impl From<AdminError> for Problem {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::InvalidSubject => {
                Self::bad_request("invalid_subject", "`sub` must be 1 to 255 characters.")
            }
            AdminError::InvalidIssuer => {
                Self::bad_request("invalid_issuer", "`iss` must be 1 to 255 characters.")
            }
            AdminError::InvalidHandle => Self::bad_request(
                "invalid_handle",
                "A session handle is 32 lowercase hex digits, as the listing shows it.",
            ),
            AdminError::NoSuchSession => Self::new(
                StatusCode::NOT_FOUND,
                "no_such_session",
                "That user has no live session with this handle.",
            ),
            AdminError::Store(e) => Self::store(&e),
        }
    }
}

/// The admin endpoints.
#[derive(Debug, Clone)]
struct AdminApi {
    bff: Arc<Bff>,
}

#[OpenApi]
impl AdminApi {
    /// The live sessions of user `sub` (at `iss`, else at every configured issuer), each under
    /// an opaque handle. Needs the admin bearer token.
    #[oai(path = "/sessions", method = "get", tag = "Tag::Sessions")]
    async fn list(
        &self,
        auth: AdminAuth,
        sub: Query<String>,
        iss: Query<Option<String>>,
    ) -> Result<Json<SessionList>, Problem> {
        let sessions = self.bff.admin_list_sessions(&sub, iss.as_deref()).await?;
        tracing::info!(
            admin = auth.who(),
            action = "list_sessions",
            sub = sub.0.as_str(),
            iss = iss.as_deref().unwrap_or("*"),
            count = sessions.len(),
            "admin action"
        );
        Ok(Json(SessionList {
            sessions: sessions.into_iter().map(AdminSession::from).collect(),
        }))
    }

    /// Revokes every session of user `sub` (at `iss`, else at every configured issuer) and their
    /// refresh tokens at the providers, the first login's and connected providers' (best
    /// effort). Needs the admin bearer token.
    #[oai(path = "/sessions", method = "delete", tag = "Tag::Sessions")]
    async fn revoke_all(
        &self,
        auth: AdminAuth,
        sub: Query<String>,
        iss: Query<Option<String>>,
    ) -> Result<Json<RevokedSessions>, Problem> {
        let (bff, admin, sub, iss) = (self.bff.clone(), auth.who().to_owned(), sub.0, iss.0);
        // To the end, audit line included: deleted sessions' refresh tokens can be revoked
        // only now.
        let revoked = to_the_end("an admin revocation", async move {
            let revoked = bff.admin_revoke_all(&sub, iss.as_deref()).await?;
            tracing::info!(
                admin = admin.as_str(),
                action = "revoke_all_sessions",
                sub = sub.as_str(),
                iss = iss.as_deref().unwrap_or("*"),
                count = revoked.sessions,
                revocation_failures = revoked.revocation_failures,
                "admin action"
            );
            Ok::<_, Problem>(revoked)
        })
        .await??;
        Ok(Json(RevokedSessions {
            revoked: revoked.sessions,
            revocation_failures: revoked.revocation_failures,
        }))
    }

    /// Revokes the session with `handle` among user `sub`'s (at `iss`, else at every configured
    /// issuer) and its refresh tokens at the providers (best effort). `404 no_such_session` when
    /// none has it. Needs the admin bearer token.
    #[oai(path = "/sessions/:handle", method = "delete", tag = "Tag::Sessions")]
    async fn revoke_one(
        &self,
        auth: AdminAuth,
        handle: Path<String>,
        sub: Query<String>,
        iss: Query<Option<String>>,
    ) -> Result<Json<RevokedSessions>, Problem> {
        let handle = SessionHandle::parse(&handle)?;
        let (bff, admin, sub, iss) = (self.bff.clone(), auth.who().to_owned(), sub.0, iss.0);
        let revoked = to_the_end("an admin revocation", async move {
            let revoked = bff
                .admin_revoke_session(&sub, iss.as_deref(), &handle)
                .await?;
            // The handle is logged: it names the session in the listing, and opens nothing.
            tracing::info!(
                admin = admin.as_str(),
                action = "revoke_session",
                sub = sub.as_str(),
                iss = iss.as_deref().unwrap_or("*"),
                handle = handle.as_str(),
                count = revoked.sessions,
                revocation_failures = revoked.revocation_failures,
                "admin action"
            );
            Ok::<_, Problem>(revoked)
        })
        .await??;
        Ok(Json(RevokedSessions {
            revoked: revoked.sessions,
            revocation_failures: revoked.revocation_failures,
        }))
    }
}

/// The OpenAPI service of the admin endpoints, for serving and for `cargo xtask codegen`.
pub fn admin_openapi_service(bff: Arc<Bff>) -> OpenApiService<impl OpenApi + 'static, ()> {
    OpenApiService::new(
        AdminApi { bff },
        "bff-server admin",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Operators' API of bff-server, on its own listener: list a user's sessions and revoke \
         them. Every call needs the admin bearer token.",
    )
    .server(ADMIN_PREFIX)
}

/// The admin application: the endpoints under `/admin` behind `credential`, and their OpenAPI
/// document at `/admin/openapi.json` (public: it describes, it opens nothing). Nothing of the
/// browser-facing app is served here.
pub fn admin_app(bff: Arc<Bff>, credential: AdminCredential) -> impl Endpoint {
    let service = admin_openapi_service(bff);
    let spec = service.spec();
    let admin_routes = Route::new()
        .at(
            "/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                spec.clone()
                    .with_content_type("application/json")
                    .into_response()
            })),
        )
        .nest("/", service.data(Arc::new(credential)));
    Route::new()
        .nest(ADMIN_PREFIX, admin_routes)
        .catch_all_error(crate::problem_response)
        .with(SetHeader::new().overriding(header::CACHE_CONTROL, "no-store"))
        // Operators call it directly: no proxy in front whose trace context to believe.
        .around(|ep, req| crate::log_request(ep, req, None, Arc::default()))
}
