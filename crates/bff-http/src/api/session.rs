//! The session for the app: who is logged in (`GET /user`, `GET /userinfo`), whether and until
//! when (`GET /session`), and refreshing its tokens (`POST /refresh`).
//!
//! A session the domain declares over (no longer stored, tokens that no longer open, a refused
//! refresh) also loses its cookie.

use std::sync::Arc;

use bff_domain::{Bff, Claims, Timestamp};
use poem::IntoResponse;
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type as _;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::Tag;
use super::logout::logout_link;
use crate::cookies::{RequiredSession, SessionCookie};
use crate::csrf::CsrfChecked;
use crate::problem::Problem;
use crate::settings::HttpSettings;

/// `GET /session` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct SessionResponse {
    /// Whether there is a session.
    pub(crate) is_logged_in: bool,
    /// When the session ends unless used (Unix seconds).
    #[oai(skip_serializing_if_is_none)]
    pub(crate) expires_at: Option<i64>,
    /// The provider of the session (the one the user logged in with).
    #[oai(skip_serializing_if_is_none)]
    pub(crate) provider: Option<String>,
    /// Providers connected to the session since (`connect=true`), whose tokens API routes of
    /// those providers use.
    #[oai(skip_serializing_if_is_none)]
    pub(crate) connected_providers: Option<Vec<String>>,
}

/// `POST /refresh` answer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct RefreshResponse {
    /// When the new access token expires (Unix seconds).
    #[oai(skip_serializing_if_is_none)]
    pub(crate) expires_at: Option<i64>,
}

/// `GET /user`'s answer: the session's claims plus `bff:session_expires_at` and
/// `bff:logout_url`, written straight from the claims the session shares with its store.
///
/// As `Json<Value>` it cost two copies of the claim map per request (one to add the two
/// members, one more in poem-openapi's `ToJSON`, which clones a `Value`) and their drops. The
/// OpenAPI document describes it exactly as it described `Json<Value>`.
pub(crate) struct UserClaims {
    claims: Claims,
    session_expires_at: i64,
    logout_url: String,
}

/// The members the BFF adds; a claim of the same name from the provider is left out, as the
/// map insert that added them before replaced it.
const SESSION_EXPIRES_AT: &str = "bff:session_expires_at";
const LOGOUT_URL: &str = "bff:logout_url";

impl Serialize for UserClaims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let claims = self.claims.as_map();
        let ours = [SESSION_EXPIRES_AT, LOGOUT_URL];
        let replaced = ours
            .iter()
            .filter(|name| claims.contains_key(**name))
            .count();
        let mut map = serializer.serialize_map(Some(claims.len() - replaced + ours.len()))?;
        for (name, value) in claims {
            if name != SESSION_EXPIRES_AT && name != LOGOUT_URL {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry(SESSION_EXPIRES_AT, &self.session_expires_at)?;
        map.serialize_entry(LOGOUT_URL, &self.logout_url)?;
        map.end()
    }
}

impl Payload for UserClaims {
    const CONTENT_TYPE: &'static str = <Json<Value> as Payload>::CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        Value::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <Json<Value> as Payload>::register(registry);
    }
}

impl IntoResponse for UserClaims {
    fn into_response(self) -> poem::Response {
        poem::web::Json(self).into_response()
    }
}

impl ApiResponse for UserClaims {
    fn meta() -> MetaResponses {
        <Json<Value> as ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        <Json<Value> as ApiResponse>::register(registry);
    }
}

/// The session endpoints.
#[derive(Debug, Clone)]
pub(crate) struct SessionApi {
    bff: Arc<Bff>,
    settings: Arc<HttpSettings>,
}

impl SessionApi {
    /// The session endpoints over `bff`.
    pub(crate) fn new(bff: Arc<Bff>, settings: Arc<HttpSettings>) -> Self {
        Self { bff, settings }
    }
}

#[OpenApi]
impl SessionApi {
    /// The current user's claims plus `bff:session_expires_at` and `bff:logout_url`.
    /// Requires `x-csrf: 1`. `401` without a session.
    #[oai(path = "/user", method = "get", tag = "Tag::Session")]
    async fn user(
        &self,
        _csrf: CsrfChecked,
        session: RequiredSession,
    ) -> Result<UserClaims, Problem> {
        let view = self
            .bff
            .current_session(session.id())
            .await
            .map_err(|e| session.problem_for(e))?;
        Ok(UserClaims {
            logout_url: logout_link(&self.settings, &view.logout_guard),
            session_expires_at: view.expires_at.unix_seconds(),
            claims: view.claims,
        })
    }

    /// Whether there is a session, when it ends and with which provider. Requires `x-csrf: 1`.
    #[oai(path = "/session", method = "get", tag = "Tag::Session")]
    async fn session(
        &self,
        _csrf: CsrfChecked,
        session: SessionCookie,
    ) -> Result<Json<SessionResponse>, Problem> {
        Ok(Json(match session.current(&self.bff).await? {
            Some(view) => SessionResponse {
                is_logged_in: true,
                expires_at: Some(view.expires_at.unix_seconds()),
                provider: Some(view.provider.as_str().to_owned()),
                connected_providers: Some(
                    view.connected_providers
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                ),
            },
            None => SessionResponse {
                is_logged_in: false,
                expires_at: None,
                provider: None,
                connected_providers: None,
            },
        }))
    }

    /// The user's claims: the ID token's, plus the provider's userinfo endpoint when configured
    /// (called with an access token refreshed first when it is about to expire). Requires
    /// `x-csrf: 1`. `401` without a session, or when that refresh is refused.
    #[oai(path = "/userinfo", method = "get", tag = "Tag::Session")]
    async fn userinfo(
        &self,
        _csrf: CsrfChecked,
        session: RequiredSession,
    ) -> Result<Json<Value>, Problem> {
        let claims = self
            .bff
            .userinfo(session.id())
            .await
            .map_err(|e| session.problem_for(e))?;
        Ok(Json(Value::Object(claims.into_map())))
    }

    /// Refresh the tokens now. `401` when there is no session or the provider refuses (the
    /// session is then ended: log in again). Requires `x-csrf: 1` and an allowed `Origin`.
    #[oai(path = "/refresh", method = "post", tag = "Tag::ApiDriven")]
    async fn refresh(
        &self,
        _csrf: CsrfChecked,
        session: RequiredSession,
    ) -> Result<Json<RefreshResponse>, Problem> {
        let out = self
            .bff
            .refresh(session.id())
            .await
            .map_err(|e| session.problem_for(e))?;
        Ok(Json(RefreshResponse {
            expires_at: out.access_token_expires_at.map(Timestamp::unix_seconds),
        }))
    }
}
