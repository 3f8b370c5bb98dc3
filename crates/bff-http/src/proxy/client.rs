//! The API proxy's HTTP client: hyper-util's connection-pooling client (the one reqwest wraps)
//! over rustls, with the route's connect timeout and a deadline for the whole exchange.
//!
//! Not reqwest: its layers around that client (redirect and retry services, the URL it parses
//! again from every request, its timeout wrappers) cost a bare pass-through proxy 34,000 of its
//! 87,000 instructions per request (BENCHMARKS.md, fourth pass), and the proxy uses none of
//! them: it follows no redirect (a redirect would carry the token elsewhere), retries nothing
//! and builds the URL itself. What it does need is here: the connect timeout, a total timeout
//! that also bounds the response body, TLS with the web PKI roots (the roots reqwest's
//! `rustls-tls` used) or a route's own CA certificates, HTTP/1.1, no proxy from the environment
//! (there is no such lookup here), and telling a timeout from any other failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use tokio::time::{Instant, Sleep};

/// A request or response body as poem hands it over.
pub(super) type ProxyBody = BoxBody<Bytes, std::io::Error>;

/// One route's client: its own connection pool and connect timeout.
#[derive(Clone, Debug)]
pub(super) struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, ProxyBody>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum UpstreamError {
    /// The connection or the answer did not come within its time.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// Anything else: refused, reset, not HTTP, TLS failure.
    #[error("the upstream call failed")]
    Failed(#[source] hyper_util::client::legacy::Error),
}

impl UpstreamError {
    pub(super) fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }
}

impl UpstreamClient {
    /// A client whose connections give up after `connect_timeout` and verify `https` upstreams
    /// against `roots`, or the built-in web PKI roots when `None`.
    ///
    /// # Errors
    /// The TLS configuration could not be built.
    pub(super) fn new(
        connect_timeout: Duration,
        roots: Option<Arc<RootCertStore>>,
    ) -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        // `https` URLs too: the TLS connector wraps this one.
        http.enforce_http(false);
        let provider = rustls::crypto::ring::default_provider();
        let tls = hyper_rustls::HttpsConnectorBuilder::new();
        let tls = match roots {
            None => tls.with_provider_and_webpki_roots(provider)?,
            // What `with_provider_and_webpki_roots` builds, with these roots instead.
            Some(roots) => tls.with_tls_config(
                rustls::ClientConfig::builder_with_provider(provider.into())
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            ),
        };
        let https = tls.https_or_http().enable_http1().wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Sends `request` and waits for the answer's head until `deadline`; the answer's body
    /// fails if it has not ended by then either.
    ///
    /// # Errors
    /// [`UpstreamError`].
    pub(super) async fn send(
        &self,
        mut request: hyper::Request<ProxyBody>,
        deadline: Instant,
    ) -> Result<hyper::Response<DeadlineBody>, UpstreamError> {
        if !request.headers().contains_key(header::HOST)
            && let Some(host) = host_header(request.uri())
        {
            request.headers_mut().insert(header::HOST, host);
        }
        let response = tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|err| {
                if is_connect_timeout(&err) {
                    UpstreamError::Timeout
                } else {
                    UpstreamError::Failed(err)
                }
            })?;
        Ok(response.map(|body| DeadlineBody {
            body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }))
    }
}

/// The `Host` header for `uri`, the one hyper-util would add: its authority, which for the
/// URLs the allowlist builds is the host and a port other than the scheme's default (`url`
/// leaves a default port out). Made here because hyper-util formats it anew for every request
/// with an explicit port; `None` (hyper-util then adds it) for an authority with user info or
/// an explicit default port, which hyper-util writes differently.
fn host_header(uri: &hyper::Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    let default_port = match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    if authority.as_str().contains('@')
        || (authority.port_u16().is_some() && authority.port_u16() == default_port)
    {
        return None;
    }
    HeaderValue::from_str(authority.as_str()).ok()
}

/// Whether the connector gave up on connecting in time (its error carries an `io::Error` of
/// kind `TimedOut` somewhere in its sources).
fn is_connect_timeout(err: &hyper_util::client::legacy::Error) -> bool {
    if !err.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// An answer's body that fails once the exchange's deadline has passed.
#[derive(Debug)]
pub(super) struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(std::io::Error::other)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the upstream's answer did not end in time",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback server that reads each request head and writes what `answer` makes of it;
    /// with `hold_open`, it then keeps the connection open (never closing it is what makes a
    /// deadline matter).
    async fn serve_heads(
        answer: impl Fn(&[u8]) -> Vec<u8> + Clone + Send + 'static,
        hold_open: bool,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = socket.write_all(&answer(&head)).await;
                    if hold_open {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                });
            }
        });
        format!("127.0.0.1:{}", addr.port())
    }

    /// A server answering every request with `answer` and holding the connection open.
    async fn server(answer: &'static [u8]) -> String {
        serve_heads(move |_| answer.to_vec(), true).await
    }

    /// A server answering each request with its own head as the body.
    async fn head_echo() -> String {
        serve_heads(
            |head| {
                let mut answer =
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", head.len())
                        .into_bytes();
                answer.extend_from_slice(head);
                answer
            },
            false,
        )
        .await
    }

    fn get(url: &str) -> hyper::Request<ProxyBody> {
        let mut request = hyper::Request::new(ProxyBody::default());
        *request.uri_mut() = url.parse().unwrap();
        request
    }

    fn soon(millis: u64) -> Instant {
        Instant::now() + Duration::from_millis(millis)
    }

    #[tokio::test]
    async fn an_answer_arrives_whole_before_the_deadline() {
        let addr = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let client = UpstreamClient::new(Duration::from_secs(5), None).unwrap();
        let response = client
            .send(get(&format!("http://{addr}/")), soon(5_000))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }

    #[test]
    fn the_host_header_is_the_one_hyper_util_would_write() {
        let host =
            |uri: &str| host_header(&uri.parse().unwrap()).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            host("http://127.0.0.1:8080/a?b").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            host("https://api.example/a").as_deref(),
            Some("api.example")
        );
        assert_eq!(host("http://[::1]:9/").as_deref(), Some("[::1]:9"));
        // Left to hyper-util, which writes them without the user info or the default port.
        assert_eq!(host("http://user:pw@api.example:8080/a"), None);
        assert_eq!(host("https://api.example:443/a"), None);
    }

    #[tokio::test]
    async fn the_upstream_gets_one_host_header_naming_it() {
        let addr = head_echo().await;
        let client = UpstreamClient::new(Duration::from_secs(5), None).unwrap();
        let response = client
            .send(get(&format!("http://{addr}/x")), soon(5_000))
            .await
            .unwrap();
        let head = response.into_body().collect().await.unwrap().to_bytes();
        let head = String::from_utf8(head.to_vec()).unwrap();
        let hosts: Vec<&str> = head
            .lines()
            .filter(|line| line.to_ascii_lowercase().starts_with("host:"))
            .collect();
        assert_eq!(hosts, [format!("host: {addr}")], "{head}");
    }

    #[tokio::test]
    async fn no_answer_by_the_deadline_is_a_timeout() {
        let addr = server(b"").await;
        let client = UpstreamClient::new(Duration::from_secs(5), None).unwrap();
        let err = client
            .send(get(&format!("http://{addr}/")), soon(200))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }

    #[tokio::test]
    async fn a_body_still_arriving_at_the_deadline_fails_instead_of_ending() {
        // Ten bytes announced, two sent, then nothing: a clean end here would hand the browser
        // a truncated answer as if it were whole.
        let addr = server(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok").await;
        let client = UpstreamClient::new(Duration::from_secs(5), None).unwrap();
        let response = client
            .send(get(&format!("http://{addr}/")), soon(300))
            .await
            .unwrap();
        let err = response.into_body().collect().await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_failed_tls_handshake_are_failures_not_timeouts() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let client = UpstreamClient::new(Duration::from_secs(5), None).unwrap();
        let refused = client
            .send(get(&format!("http://127.0.0.1:{port}/")), soon(5_000))
            .await
            .unwrap_err();
        assert!(matches!(refused, UpstreamError::Failed(_)), "{refused:?}");
        // Plain HTTP where TLS is expected: the answer comes as soon as the client connects.
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = plain.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = plain.accept().await {
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        let not_tls = client
            .send(get(&format!("https://{addr}/")), soon(5_000))
            .await
            .unwrap_err();
        assert!(matches!(not_tls, UpstreamError::Failed(_)), "{not_tls:?}");
    }

    /// An HTTPS upstream under a private CA, and that CA as a root store.
    async fn private_ca_upstream() -> (Arc<RootCertStore>, String) {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let server = bff_test_services::tls::https_under_private_ca().await;
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(server.ca_pem.as_bytes()).unwrap())
            .unwrap();
        (Arc::new(roots), server.url)
    }

    #[tokio::test]
    async fn an_upstream_under_a_private_ca_is_trusted_with_that_ca_and_only_with_it() {
        let (roots, url) = private_ca_upstream().await;
        let trusting = UpstreamClient::new(Duration::from_secs(5), Some(roots)).unwrap();
        let response = trusting.send(get(&url), soon(5_000)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], bff_test_services::tls::ANSWER.as_bytes());
        // The built-in web PKI roots do not know this CA: the handshake fails.
        let web_pki = UpstreamClient::new(Duration::from_secs(5), None).unwrap();
        let refused = web_pki.send(get(&url), soon(5_000)).await.unwrap_err();
        assert!(matches!(refused, UpstreamError::Failed(_)), "{refused:?}");
        // Nor does another private CA.
        let (other_roots, _) = private_ca_upstream().await;
        let other = UpstreamClient::new(Duration::from_secs(5), Some(other_roots)).unwrap();
        let refused = other.send(get(&url), soon(5_000)).await.unwrap_err();
        assert!(matches!(refused, UpstreamError::Failed(_)), "{refused:?}");
    }
}
