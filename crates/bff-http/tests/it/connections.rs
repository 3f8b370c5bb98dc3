//! `bff_http::serve` against hostile clients over raw TCP on loopback: oversized and too many
//! headers are `431` problems, heads past hyper's own buffer are cut off with a bare `431`, and
//! clients that send their head slowly, or keep a connection idle, are disconnected; after each,
//! the server still serves.
//!
//! Every loop here is bounded in count and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bff_domain::testkit::FakeProvider;
use bff_http::RequestLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::support::{self, ISSUER};

/// The BFF app served by `bff_http::serve` with `limits` on a loopback port; stops when the
/// returned sender is dropped.
async fn serve(limits: RequestLimits) -> (SocketAddr, oneshot::Sender<()>) {
    let mut settings = support::settings(true);
    settings.request_limits = limits;
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    let app = bff_http::app(
        support::bff(provider),
        Arc::new(settings),
        Vec::new(),
        None,
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bff_http::serve(
        listener,
        app,
        limits,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    (addr, stop)
}

fn limits(header_read_timeout: Duration) -> RequestLimits {
    RequestLimits {
        max_header_bytes: 8 * 1024,
        max_headers: 50,
        header_read_timeout,
        body_read_timeout: Duration::from_secs(1),
    }
}

/// Status, headers (lower-case names) and body of one HTTP/1.1 answer read to the end.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let (status, headers, body) = support::parse_raw_answer(raw);
        Answer {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The problem's `code`, asserting the answer is problem+json.
    fn problem_code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{} {:?} {}",
            self.status,
            self.headers,
            self.body
        );
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        json["code"].as_str().unwrap().to_owned()
    }
}

/// Writes `request` whole (ignoring a write the server cut short) and reads the answer until
/// the server closes the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything; that is its right.
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes within 10 s");
    Answer::parse(&raw)
}

fn request_with(headers: &str) -> Vec<u8> {
    format!("GET /healthz HTTP/1.1\r\nHost: bff.example\r\n{headers}Connection: close\r\n\r\n")
        .into_bytes()
}

/// The server still answers an ordinary request.
async fn assert_still_serving(addr: SocketAddr) {
    let answer = exchange(addr, &request_with("")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn a_one_megabyte_header_is_a_431_problem() {
    let (addr, _stop) = serve(limits(Duration::from_secs(10))).await;
    let big = format!("x-big: {}\r\n", "a".repeat(1_000_000));
    let answer = exchange(addr, &request_with(&big)).await;
    assert_eq!(answer.status, 431, "{:?}", answer.headers);
    assert_eq!(answer.problem_code(), "headers_too_large");
    assert!(answer.header("x-request-id").is_some());
    assert_still_serving(addr).await;

    // Just over the configured limit is refused the same way; just under it is served.
    let over = format!("x-big: {}\r\n", "a".repeat(8 * 1024));
    let answer = exchange(addr, &request_with(&over)).await;
    assert_eq!(
        (answer.status, answer.problem_code().as_str()),
        (431, "headers_too_large")
    );
    let under = format!("x-big: {}\r\n", "a".repeat(7 * 1024));
    let answer = exchange(addr, &request_with(&under)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn too_many_headers_are_a_431_problem() {
    let (addr, _stop) = serve(limits(Duration::from_secs(10))).await;
    // Over the limit of 50 but within the 100 fields hyper parses: the problem answer (98 plus
    // the request's `Host` and `Connection` are 100 fields).
    for count in [51usize, 98] {
        let many: String = (0..count).map(|i| format!("x-h{i}: v\r\n")).collect();
        let answer = exchange(addr, &request_with(&many)).await;
        assert_eq!(answer.status, 431, "{count} headers: {:?}", answer.headers);
        assert_eq!(
            answer.problem_code(),
            "headers_too_large",
            "{count} headers"
        );
    }
    // Past what hyper parses: hyper's own bare `431`, and the server goes on serving.
    let flood: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();
    let answer = exchange(addr, &request_with(&flood)).await;
    assert_eq!(answer.status, 431, "{:?}", answer.headers);
    assert_eq!(
        bff_http::parsed_headers(&limits(Duration::from_secs(10))),
        100
    );
    assert_still_serving(addr).await;
    let fine: String = (0..40).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_eq!(exchange(addr, &request_with(&fine)).await.status, 200);
}

#[tokio::test]
async fn another_app_gets_the_head_limits_through_limit_heads() {
    // An app without the BFF's own check, as the admin API is served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bff_http::serve(
        listener,
        bff_http::limit_heads(
            poem::endpoint::make_sync(|_| "plain"),
            limits(Duration::from_secs(10)),
        ),
        limits(Duration::from_secs(10)),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    let many: String = (0..60).map(|i| format!("x-h{i}: v\r\n")).collect();
    let answer = exchange(addr, &request_with(&many)).await;
    assert_eq!(
        (answer.status, answer.problem_code().as_str()),
        (431, "headers_too_large")
    );
    let answer = exchange(addr, &request_with("")).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "plain"));
}

#[tokio::test]
async fn a_head_past_the_servers_buffer_is_cut_off_unread() {
    let limits = limits(Duration::from_secs(10));
    let (addr, _stop) = serve(limits).await;
    // Past the buffer, hyper itself refuses (a bare 431) and closes, having read no more.
    let huge = format!(
        "x-big: {}\r\n",
        "a".repeat(bff_http::head_buffer_bytes(&limits) + 1024)
    );
    let answer = exchange(addr, &request_with(&huge)).await;
    assert_eq!(answer.status, 431, "{:?}", answer.headers);
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn a_client_sending_its_head_slowly_is_cut_off_and_others_are_served() {
    let timeout = Duration::from_secs(1);
    let (addr, _stop) = serve(limits(timeout)).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: bff.example\r\n")
        .await
        .unwrap();
    // One header byte every 100 ms, never finishing: bounded to 10 s of trying.
    let mut cut_after = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let wrote = slow.write_all(b"x").await;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await;
        if wrote.is_err() || matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            cut_after = Some(started.elapsed());
            break;
        }
        // Meanwhile everybody else is served.
        if cut_after.is_none() && started.elapsed() < timeout / 2 {
            assert_still_serving(addr).await;
        }
    }
    let cut_after = cut_after.expect("the slow client is disconnected within 10 s");
    assert!(
        cut_after >= timeout && cut_after < timeout * 4,
        "cut off after {cut_after:?}, the limit being {timeout:?}"
    );
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let timeout = Duration::from_secs(1);
    let (addr, _stop) = serve(limits(timeout)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bff.example\r\n\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    // Nothing more is sent: the answer comes, then the server closes the connection once the
    // timeout has passed.
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the idle connection is closed within 10 s");
    let idle = sent.elapsed();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{read:?}: {text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert!(
        idle >= timeout / 2 && idle < timeout * 4,
        "closed after {idle:?} idle"
    );
}

#[tokio::test]
async fn a_bff_body_sent_too_slowly_is_a_408_problem_and_others_are_served() {
    let (addr, _stop) = serve(limits(Duration::from_secs(10))).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    // The head whole, then 10 of the 100 bytes it announces, then nothing.
    slow.write_all(
        b"POST /bff/login/start HTTP/1.1\r\nHost: bff.example\r\nx-csrf: 1\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"returnU",
    )
    .await
    .unwrap();
    let started = Instant::now();
    // Meanwhile another client is served.
    assert_still_serving(addr).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes within 10 s")
        .unwrap();
    let waited = started.elapsed();
    let answer = Answer::parse(&raw);
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(answer.problem_code(), "request_timeout");
    assert!(answer.header("x-request-id").is_some());
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "answered after {waited:?}, the limit is 1 s"
    );
    // A body that arrives in time is read as before.
    let on_time = exchange(
        addr,
        b"POST /bff/login/start HTTP/1.1\r\nHost: bff.example\r\nx-csrf: 1\r\n\
          Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    assert_ne!(on_time.status, 408, "{}", on_time.body);
    assert_still_serving(addr).await;
}
