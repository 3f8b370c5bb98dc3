//! WebSocket upgrades through the proxy, for routes with `websocket` set.
//!
//! A browser cannot add `x-csrf` to an upgrade request, and cross-site pages can open WebSockets
//! with the user's cookies (cross-site WebSocket hijacking), so an upgrade needs an `Origin`
//! among the app origins instead, with no `Sec-Fetch-Site` fallback. The credential is decided
//! as for any request (a `user` route needs the session). The upstream gets the handshake with
//! the browser's `Sec-WebSocket-*` headers, the proxy's credential and forwarding headers; when
//! it answers `101`, the browser gets `101` with the upstream's handshake headers and the two
//! upgraded connections are joined byte for byte until either side closes. Any other answer is
//! relayed like a plain response.
//!
//! The token sent at the handshake is the one the upstream saw for the socket's whole life; the
//! proxy does not refresh it. A tunnel opened with the user's token ends with the user's session:
//! every [`SESSION_CHECK_INTERVAL`] it asks the session store (without recording a use, so an
//! open socket does not keep the session alive) whether the session still exists, and closes
//! both connections once it does not, so a logout on any node, a back-channel logout or the
//! session's expiry closes the socket within that interval. The close is a plain TCP close
//! (the browser sees code 1006): the proxy does not parse frames, so it cannot add a close
//! frame without risking one in the middle of an upstream frame. A store outage keeps the
//! socket open (an outage is not a logout). Tunnels of `none` routes are not bound to a session.

use std::time::Duration;

use bff_domain::allowlist::{ProxyTarget, Route};
use bff_domain::{Bff, SessionId, UpstreamCredential};
use poem::Request;
use poem::Response;
use poem::http::header::{self, HeaderValue};
use poem::http::{Method, StatusCode};

use super::{Inner, upstream_problem, upstream_uri};
use crate::problem::{Problem, error_chain};
use crate::settings::HttpSettings;

/// How often an open tunnel checks that its session still exists.
pub(super) const SESSION_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Whether `value` lists `token` (comma-separated, case-insensitive).
fn lists(value: Option<&HeaderValue>, token: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Whether `req` asks for a WebSocket upgrade (RFC 6455 section 4.1).
pub(super) fn is_upgrade(req: &Request) -> bool {
    req.method() == Method::GET
        && lists(req.headers().get(header::UPGRADE), "websocket")
        && lists(req.headers().get(header::CONNECTION), "upgrade")
}

/// The route must accept upgrades and the page must be on an app origin.
///
/// # Errors
/// `400 websocket_not_allowed` or `403 csrf_failed`.
pub(super) fn check(req: &Request, route: &Route, settings: &HttpSettings) -> Result<(), Problem> {
    if !route.websocket() {
        return Err(Problem::bad_request(
            "websocket_not_allowed",
            "This API route does not accept WebSocket upgrades.",
        ));
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        Some(origin) if settings.is_app_origin(origin) => Ok(()),
        _ => Err(Problem::csrf(
            "a WebSocket upgrade needs an Origin header from an allowed origin",
        )),
    }
}

impl Inner {
    /// Sends the handshake upstream and, on `101`, joins the two connections, until either
    /// side closes or, with a `session`, that session ends.
    pub(super) async fn open_tunnel(
        &self,
        req: &Request,
        target: &ProxyTarget<'_>,
        credential: UpstreamCredential,
        session: Option<SessionId>,
    ) -> Result<Response, Problem> {
        let route = target.route();
        let client = self.client_for(route.prefix())?;
        let browser_side = req.take_upgrade().map_err(|_| {
            Problem::bad_request(
                "websocket_not_allowed",
                "This connection cannot be upgraded.",
            )
        })?;
        let mut headers = self.upstream_headers(req, target, &credential)?;
        drop(credential);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let uri = upstream_uri(target)?;
        let mut handshake = poem::http::Request::new(super::client::ProxyBody::default());
        *handshake.uri_mut() = uri;
        *handshake.headers_mut() = headers;
        // The total timeout bounds the handshake only; the socket then lives as long as it is
        // used.
        let deadline = tokio::time::Instant::now() + route.total_timeout();
        let mut response = client.send(handshake, deadline).await.map_err(|e| {
            if e.is_timeout() {
                tracing::warn!(route = %route.prefix(), "upstream WebSocket handshake timed out");
            }
            upstream_problem(route.prefix(), &e)
        })?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(self.relay(route, target.url(), response));
        }
        if !lists(response.headers().get(header::UPGRADE), "websocket") {
            tracing::warn!(route = %route.prefix(), "upstream switched to another protocol than WebSocket");
            return Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "The upstream API did not accept the WebSocket upgrade.",
            ));
        }
        let mut headers = self.browser_headers(route, target.url(), response.headers());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let prefix = route.prefix().to_owned();
        let bff = self.bff.clone();
        tokio::spawn(async move {
            let upstream_side = match hyper::upgrade::on(&mut response).await {
                Ok(io) => hyper_util::rt::TokioIo::new(io),
                Err(e) => {
                    tracing::warn!(route = %prefix, error = %error_chain(&e), "upstream WebSocket upgrade failed");
                    return;
                }
            };
            let browser_side = match browser_side.await {
                Ok(io) => io,
                Err(e) => {
                    tracing::info!(route = %prefix, error = %error_chain(&e), "browser WebSocket upgrade failed");
                    return;
                }
            };
            let (mut browser_side, mut upstream_side) = (browser_side, upstream_side);
            let tunnel = tokio::io::copy_bidirectional(&mut browser_side, &mut upstream_side);
            let session_ended = async {
                match &session {
                    Some(id) => session_ended(&bff, id, &prefix).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                closed = tunnel => {
                    if let Err(e) = closed {
                        tracing::debug!(route = %prefix, error = %e, "WebSocket tunnel closed");
                    }
                }
                () = session_ended => {
                    tracing::info!(route = %prefix, "session ended: WebSocket tunnel closed");
                }
            }
            // Dropping both upgraded connections closes them.
        });
        let mut out = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .finish();
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// Returns once the session `id` no longer exists (checked every [`SESSION_CHECK_INTERVAL`]);
/// never while the store cannot say. A renewed session id is followed (seen within the renewal's
/// grace period), so a renewal by the tab's other requests does not end the tunnel.
async fn session_ended(bff: &Bff, id: &SessionId, prefix: &str) {
    let mut id = id.clone();
    loop {
        tokio::time::sleep(SESSION_CHECK_INTERVAL).await;
        match bff.current_session_id(&id).await {
            Ok(Some(current)) => id = current,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(route = %prefix, error = %error_chain(&e), "cannot check the session of a WebSocket tunnel; it stays open");
            }
        }
    }
}
