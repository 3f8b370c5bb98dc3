//! Serving an app on a TCP listener, with the connection limits a server facing hostile clients
//! needs: how long a client may take to send a request head, and how large that head may be.
//!
//! poem's own `Server` builds hyper's connection with defaults it does not expose, and without a
//! timer, so hyper's header read timeout never runs there: a client sending its headers a byte
//! at a time holds a connection for ever. [`serve`] is the same accept loop (graceful shutdown
//! with a drain deadline, upgrades for the proxy's WebSockets) with hyper configured from
//! [`RequestLimits`]:
//!
//! - HTTP/1.1: a request head must arrive within `header_read_timeout`, counted from the
//!   connection's start or, on a kept-alive connection, from the end of the previous exchange
//!   (hyper starts its timer there), so it also bounds how long an idle connection stays open.
//!   A client that misses it is disconnected.
//! - Header size: hyper's own buffer is set well above the configured limit, so an oversized
//!   head normally reaches [`check_head`] (run by the BFF's `app`, or by [`limit_heads`]
//!   around another app) and gets `431 headers_too_large` as problem+json like every other
//!   refusal. Only a head larger than that buffer ([`head_buffer_bytes`]: the limit plus 1 MiB)
//!   is refused by hyper itself, with a bare `431` and the connection closed; nothing larger is
//!   ever read.
//! - Header count: hyper parses at most [`parsed_headers`] fields (the limit, and at least
//!   hyper's own 100). A head with more is refused by hyper with a bare `431` and the connection
//!   closed; one over the limit but within that count gets the problem answer. Parsing more than
//!   hyper's 100 would make hyper allocate and fill its header arrays on the heap for every
//!   request (two arrays of that many entries), which cost about 2% of a request's CPU when the
//!   server parsed the limit plus 1000 (BENCHMARKS.md); within 100 they live on the stack.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::endpoint::DynEndpoint;
use poem::http::StatusCode;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, IntoResponse, Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::problem::Problem;

/// What a client may send before its request reaches the app, and how slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The largest request head (request line plus every header's name and value), in bytes.
    pub max_header_bytes: usize,
    /// The most header fields a request may carry (a repeated header counts each time).
    pub max_headers: usize,
    /// How long a client has to send a complete request head; also how long a kept-alive
    /// connection may wait for its next request.
    pub header_read_timeout: Duration,
    /// How long a client has to send the whole body of a `/bff` request (at most
    /// [`crate::BFF_BODY_LIMIT`]) once its head has arrived; past it, `408 request_timeout` and
    /// the connection is closed. (An API proxy request's body is bounded by its route's total
    /// timeout instead.)
    pub body_read_timeout: Duration,
}

/// 32 KiB: a request head with a few large cookies and a long URL is well under it.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// 100, hyper's own default.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// 30 s, hyper's own default (which poem's server never enabled).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// 30 s: a `/bff` body is at most 64 KiB, which the slowest phone sends in well under that.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// hyper's own header count, whose arrays live on the stack.
const HYPER_INLINE_HEADERS: usize = 100;

/// How many header fields hyper parses before refusing a head itself: the limit, and at least
/// hyper's own 100, so that with a lower limit the heads in between still get the problem answer.
pub fn parsed_headers(limits: &RequestLimits) -> usize {
    limits.max_headers.max(HYPER_INLINE_HEADERS)
}

/// How much of a request head hyper buffers: the limit plus 1 MiB, so a head up to 1 MiB over
/// the limit still gets a problem answer, and nothing larger is read.
pub fn head_buffer_bytes(limits: &RequestLimits) -> usize {
    limits.max_header_bytes.saturating_add(1 << 20)
}

/// The size of a request head as [`RequestLimits::max_header_bytes`] counts it: the request
/// line and, per header, its name, value and the `": "` and line end between them.
fn head_size(req: &Request) -> usize {
    let line = req.method().as_str().len() + req.original_uri().to_string().len() + 12;
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

/// `431 headers_too_large` for a request head over `limits`, else `None`.
pub(crate) fn check_head(req: &Request, limits: &RequestLimits) -> Option<Response> {
    let count = req.headers().len();
    let size = head_size(req);
    if count <= limits.max_headers && size <= limits.max_header_bytes {
        return None;
    }
    tracing::info!(
        headers = count,
        bytes = size,
        "request refused: headers over the limit"
    );
    // `Problem` has no `431` variant (its variants are the OpenAPI document's answers, and no
    // endpoint declares this one).
    let refused = Problem::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        format!(
            "The request headers are larger than this server accepts (at most {} fields and {} \
             bytes).",
            limits.max_headers, limits.max_header_bytes
        ),
    )
    .into_response_with_own_status();
    Some(refused)
}

/// `app` answering heads over `limits` with `431 headers_too_large`, for apps that do not check
/// them themselves (the BFF's own `app` does, inside its request log; the admin API does not).
pub fn limit_heads<E: Endpoint + 'static>(
    app: E,
    limits: RequestLimits,
) -> impl Endpoint<Output = Response> + 'static {
    app.around(move |ep, req| async move {
        match check_head(&req, &limits) {
            Some(refused) => Ok(refused),
            None => ep.call(req).await.map(IntoResponse::into_response),
        }
    })
}

/// Serves `app` on `listener` with hyper configured from `limits`, until `shutdown` completes;
/// then stops accepting and gives open connections up to `drain_timeout` to finish their
/// requests before they are cut.
///
/// # Errors
/// Only when the listener's own address cannot be read; accept errors (a peer that went away,
/// too many open files) are logged and the loop goes on.
pub async fn serve<E>(
    listener: TcpListener,
    app: E,
    limits: RequestLimits,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = listener.local_addr()?;
    let app = Arc::new(app.map_to_response().boxed());
    let builder = Arc::new(connection_builder(&limits));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Finished connections are collected as they go, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    connections.spawn(serve_connection(
                        socket,
                        local,
                        peer,
                        app.clone(),
                        builder.clone(),
                        stopping.clone(),
                    ));
                }
                Err(err) => {
                    // Out of file descriptors or similar: wait a little rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    stop.send_replace(true);
    let drained = tokio::time::timeout(drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "drain deadline passed: cutting the open connections"
        );
        connections.shutdown().await;
    }
    Ok(())
}

fn connection_builder(limits: &RequestLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let buffer = head_buffer_bytes(limits);
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(buffer);
    // Left unset, hyper keeps its default of 100 in fixed stack arrays; set, it sizes them per
    // request, even to 100.
    if parsed_headers(limits) > HYPER_INLINE_HEADERS {
        http1.max_headers(parsed_headers(limits));
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(buffer).unwrap_or(u32::MAX));
    builder
}

async fn serve_connection(
    socket: tokio::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    app: Arc<poem::endpoint::BoxEndpoint<'static, Response>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    mut stopping: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move {
            let req = Request::from((
                req,
                LocalAddr(Addr::SocketAddr(local)),
                RemoteAddr(Addr::SocketAddr(peer)),
                poem::http::uri::Scheme::HTTP,
            ));
            // The boxed app's own future, not `get_response`'s: every async layer over it
            // (`Arc`, `Box`, `dyn`) would hold and move another copy of the request.
            let response = DynEndpoint::call(app.as_ref().as_ref(), req)
                .await
                .unwrap_or_else(|err| err.into_response());
            Ok::<_, std::convert::Infallible>(hyper::Response::from(response))
        }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(socket), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                // Timeouts, oversized heads and peers that vanish end up here; none is ours.
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            return;
        }
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Shutting down: finish the request in flight, take no other.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}
