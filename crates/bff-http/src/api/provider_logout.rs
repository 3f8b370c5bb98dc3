//! Logout called by the identity provider rather than the app:
//!
//! - `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0): the provider posts
//!   the form field `logout_token` server to server. There is no CSRF extractor on purpose: no
//!   browser is involved, and the signed token is the credential. The body is read only up to
//!   [`BACKCHANNEL_BODY_LIMIT`] (`413 payload_too_large` beyond it). A refused token is
//!   `400 logout_token_invalid` with the failed check in `reason`, and nothing is deleted.
//! - `GET /frontchannel-logout?iss=&sid=` (OpenID Connect Front-Channel Logout 1.0): the
//!   provider's logout page loads it in an iframe; it answers an empty page that only the
//!   provider's origin may frame.
//!
//! The token is never logged: refusals log the check's name, successes how many sessions
//! ended.
//!
//! Both run their use case to the end on a task of its own ([`to_the_end`]): a provider that
//! gives up waiting (its own timeout, a restart) must not leave a logout half done. A
//! back-channel logout cut off after its `jti` was recorded would leave sessions alive and
//! refuse the provider's retry as a replay; a front-channel one has no retry at all.

use std::sync::Arc;

use bff_domain::Bff;
use poem::{Endpoint, EndpointExt, Request};
use poem_openapi::param::Query;
use poem_openapi::payload::{Form, Html};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::Tag;
use crate::finish::to_the_end;
use crate::problem::Problem;

/// The largest back-channel logout request body read: a logout token is a JWS of a few hundred
/// bytes to a few kilobytes (an RSA-4096 signature alone is 684 characters).
pub(crate) const BACKCHANNEL_BODY_LIMIT: usize = 16 * 1024;

/// `POST /backchannel-logout` form.
#[derive(Object, Deserialize)]
pub(crate) struct BackchannelLogoutForm {
    /// The logout token: a JWT signed by the provider, with `iss`, `aud`, `iat`, `jti`,
    /// `events` and `sid` and/or `sub`.
    logout_token: String,
}

impl std::fmt::Debug for BackchannelLogoutForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackchannelLogoutForm { logout_token: [redacted] }")
    }
}

/// `POST /backchannel-logout` answer.
#[derive(Debug, ApiResponse)]
pub(crate) enum BackchannelLogoutAnswer {
    /// The sessions the token names have ended (or there were none).
    #[oai(status = 200)]
    Done(#[oai(header = "Cache-Control")] String),
}

/// `GET /frontchannel-logout` answer.
#[derive(Debug, ApiResponse)]
pub(crate) enum FrontchannelLogoutAnswer {
    /// An empty page; the provider session's sessions have ended (or there were none).
    #[oai(status = 200)]
    Page(
        Html<String>,
        /// `frame-ancestors` of the provider's origin only.
        #[oai(header = "Content-Security-Policy")]
        String,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// The empty page the provider's iframe loads.
const FRONTCHANNEL_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed out</title></head><body></body></html>";

/// Reads the request body up to [`BACKCHANNEL_BODY_LIMIT`] before the form is parsed: a
/// declared `Content-Length` above it is refused unread, a longer stream once the limit is
/// passed.
fn body_limited(ep: impl Endpoint) -> impl Endpoint {
    ep.before(|mut req: Request| async move {
        let too_large = || {
            poem::Error::from(Problem::payload_too_large(
                "The request body is larger than a logout token can be.",
            ))
        };
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > BACKCHANNEL_BODY_LIMIT as u64) {
            return Err(too_large());
        }
        let body = req
            .take_body()
            .into_bytes_limit(BACKCHANNEL_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                other => other.into(),
            })?;
        req.set_body(body);
        Ok(req)
    })
}

/// The endpoints the provider calls.
#[derive(Debug, Clone)]
pub(crate) struct ProviderLogoutApi {
    bff: Arc<Bff>,
}

impl ProviderLogoutApi {
    /// The provider-initiated logout endpoints over `bff`.
    pub(crate) fn new(bff: Arc<Bff>) -> Self {
        Self { bff }
    }
}

#[OpenApi]
impl ProviderLogoutApi {
    /// Back-channel logout (OpenID Connect Back-Channel Logout 1.0), called by the provider
    /// server to server with the form field `logout_token`. No CSRF header: the signed token is
    /// the credential. Ends every session of the token's `sid`, or of its `sub` when it has no
    /// `sid`, at the provider that issued it, and drops that login's connection from sessions
    /// that only connected the provider. `400 logout_token_invalid` (with the failed check
    /// in `reason`) when any check of section 2.6 fails or the `jti` was seen before; nothing
    /// is deleted then. `413 payload_too_large` above 16 KiB.
    #[oai(
        path = "/backchannel-logout",
        method = "post",
        tag = "Tag::ProviderLogout",
        transform = "body_limited"
    )]
    async fn backchannel_logout(
        &self,
        form: Form<BackchannelLogoutForm>,
    ) -> Result<BackchannelLogoutAnswer, Problem> {
        let bff = self.bff.clone();
        let token = form.0.logout_token;
        to_the_end("a provider logout", async move {
            let outcome = bff.backchannel_logout(&token).await?;
            tracing::info!(
                sessions_ended = outcome.sessions_ended,
                connections_ended = outcome.connections_ended,
                "back-channel logout accepted"
            );
            Ok(BackchannelLogoutAnswer::Done("no-store".into()))
        })
        .await?
    }

    /// Front-channel logout (OpenID Connect Front-Channel Logout 1.0), loaded by the provider's
    /// logout page in an iframe with its issuer and the provider session id. Ends every session
    /// of that provider session (dropping it from sessions that only connected the provider)
    /// and answers an empty page that only the provider's origin may frame. `400 frontchannel_logout_invalid` when `iss` is not a configured issuer or `sid`
    /// is missing.
    #[oai(
        path = "/frontchannel-logout",
        method = "get",
        tag = "Tag::ProviderLogout"
    )]
    async fn frontchannel_logout(
        &self,
        iss: Query<Option<String>>,
        sid: Query<Option<String>>,
    ) -> Result<FrontchannelLogoutAnswer, Problem> {
        let bff = self.bff.clone();
        let outcome = to_the_end("a provider logout", async move {
            let outcome = bff
                .frontchannel_logout(iss.0.as_deref(), sid.0.as_deref())
                .await?;
            tracing::info!(
                sessions_ended = outcome.sessions_ended,
                connections_ended = outcome.connections_ended,
                "front-channel logout accepted"
            );
            Ok::<_, Problem>(outcome)
        })
        .await??;
        Ok(FrontchannelLogoutAnswer::Page(
            Html(FRONTCHANNEL_PAGE.to_owned()),
            format!(
                "default-src 'none'; frame-ancestors {}",
                outcome.provider_origin
            ),
            "no-store".into(),
        ))
    }
}
