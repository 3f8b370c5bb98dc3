//! What the server tells its operators, end to end: the traces it exports to an OTLP collector
//! (a minimal receiver here, decoding the protobuf the exporter sends), the `traceparent` it
//! believes and passes on, and the JSON log lines it writes, scanned for secrets at `trace`
//! level.
//!
//! Each test installs the server's own subscriber (`bff_server::telemetry::subscriber`) for its
//! thread only: `#[tokio::test]` runs the server's tasks on that one thread, so everything the
//! server logs or traces lands in this test's buffer and collector, and other tests' lines do
//! not.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bff_http::IpNetwork;
use bff_server::config::{LogFormat, TracingConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;
use tracing_subscriber::EnvFilter;

use crate::proxy::Upstream;
use crate::support::*;

/// The trace a trusted proxy says the requests belong to, and its span.
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct ExportedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
    service_name: String,
}

impl ExportedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text_of(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// A minimal OTLP/HTTP receiver on 127.0.0.1:0, on a thread and runtime of its own (the
/// exporter's batch thread calls it while the test's thread may be blocked flushing).
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<ExportedSpan>>>,
    /// Paths the exporter posted to.
    paths: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn start() -> Collector {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (record, record_paths) = (spans.clone(), paths.clone());
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                url_tx
                    .send(format!("http://{}", listener.local_addr().unwrap()))
                    .unwrap();
                let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
                let app = poem::endpoint::make(move |req: poem::Request| {
                    let (record, record_paths) = (record.clone(), record_paths.clone());
                    async move {
                        record_paths
                            .lock()
                            .unwrap()
                            .push(req.uri().path().to_owned());
                        let body = req.into_body().into_vec().await.unwrap();
                        let export = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                        let mut out = record.lock().unwrap();
                        for resource_spans in export.resource_spans {
                            let service_name = resource_spans
                                .resource
                                .iter()
                                .flat_map(|r| &r.attributes)
                                .find(|kv| kv.key == "service.name")
                                .map(|kv| text_of(kv.value.as_ref()))
                                .unwrap_or_default();
                            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans)
                            {
                                out.push(ExportedSpan {
                                    name: span.name,
                                    trace_id: hex(&span.trace_id),
                                    span_id: hex(&span.span_id),
                                    parent_span_id: hex(&span.parent_span_id),
                                    attributes: span
                                        .attributes
                                        .iter()
                                        .map(|kv| (kv.key.clone(), text_of(kv.value.as_ref())))
                                        .collect(),
                                    service_name: service_name.clone(),
                                });
                            }
                        }
                        poem::Response::builder()
                            .content_type("application/x-protobuf")
                            .body(Vec::new())
                    }
                });
                let _ = poem::Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(
                        app,
                        async move {
                            let _ = stopped.await;
                        },
                        None,
                    )
                    .await;
            });
        });
        Collector {
            url: url_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            spans,
            paths,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn spans(&self) -> Vec<ExportedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Log output the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Every line of `text` as JSON; fails on a line that is not a JSON object.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

/// The `id` of the `request` span a JSON log line was written in.
fn request_id_of(line: &serde_json::Value) -> Option<&str> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|span| span["name"] == "request")?["id"]
        .as_str()
}

#[tokio::test]
async fn a_trace_from_a_trusted_proxy_has_the_request_store_provider_and_upstream_spans() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let collector = Collector::start();
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let upstream = Upstream::start(&idp.issuer).await;
    let base = reserved.base.clone();
    let mut config = config_with(
        &base,
        &idp.issuer,
        &format!(
            r#"
[tracing]
otlp_endpoint = "{collector}"
service_name = "bff-under-test"

[[routes]]
path = "/api/user"
upstream = "{up}/v1/user"
token = "user"

[[routes]]
path = "/api/public"
upstream = "{up}/v1/public"
token = "none"
"#,
            collector = collector.url,
            up = upstream.base
        ),
    );
    // The test's own requests come from 127.0.0.1: that is the trusted proxy.
    config.server.trusted_proxies = vec![IpNetwork::parse("127.0.0.1").unwrap()];
    let untrusting_config = {
        let mut c = config.clone();
        c.server.trusted_proxies = Vec::new();
        c
    };
    let logs = Captured::default();
    let (subscriber, telemetry) = bff_server::telemetry::subscriber(
        LogFormat::Json,
        EnvFilter::new("info"),
        &config.tracing,
        logs.clone(),
    )
    .unwrap();
    let _installed = tracing::subscriber::set_default(subscriber);
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");

    // The login's callback (a provider call and store calls) and a proxied call, both sent
    // with the trusted proxy's trace context.
    let start = browser
        .get(&format!("{}/bff/login?returnUrl=/", server.base))
        .await;
    let callback = browser
        .sign_in_at_provider(&start.location().unwrap(), &idp.issuer)
        .await;
    let landed = browser
        .http
        .get(&callback)
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status(), 200, "the login did not complete");
    assert_eq!(landed.headers()["x-request-id"], TRACE_ID);
    let proxied = browser
        .http
        .get(format!("{}/api/user/orders", server.base))
        .header("x-csrf", "1")
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(proxied.headers()["x-request-id"], TRACE_ID);
    let seen_upstream = upstream
        .received
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .header("traceparent")
        .map(str::to_owned)
        .expect("the upstream got no traceparent");

    // A problem names the trusted trace as its instance.
    let other_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let problem = reqwest::Client::new()
        .get(format!("{}/bff/user", server.base))
        .header("x-csrf", "1")
        .header(
            "traceparent",
            format!("00-{other_trace}-00f067aa0ba902b7-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(problem.status(), 401);
    let problem: serde_json::Value = problem.json().await.unwrap();
    assert_eq!(
        problem["instance"],
        format!("urn:bff:request:{other_trace}")
    );

    // The same server with nobody trusted: the client's traceparent is ignored, the request
    // starts a trace of its own and the upstream sees that one.
    let untrusting = {
        let reserved = reserve().await;
        let mut c = untrusting_config;
        c.server.public_url = bff_server::config::PublicUrl::parse(&reserved.base).unwrap();
        reserved.serve(c).await
    };
    let public = reqwest::Client::new()
        .get(format!("{}/api/public/items", untrusting.base))
        .header("x-csrf", "1")
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    let own_id = public.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let parsed = uuid_version(&own_id);
    assert_eq!(parsed, Some(7), "not a UUID v7: {own_id}");
    let untrusted_upstream = upstream
        .received
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .header("traceparent")
        .map(str::to_owned)
        .expect("the upstream got no traceparent");
    assert!(
        !untrusted_upstream.contains(TRACE_ID),
        "an untrusted client chose the trace: {untrusted_upstream}"
    );

    // Everything exported: flush until the spans are there (the batch thread sends them).
    let deadline = Instant::now() + Duration::from_secs(20);
    let wanted = |spans: &[ExportedSpan]| {
        let ours: Vec<&ExportedSpan> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
        ["request", "store", "provider", "upstream"]
            .iter()
            .all(|name| ours.iter().any(|s| s.name == *name))
            && spans
                .iter()
                .any(|s| s.attribute("id") == Some(own_id.as_str()))
    };
    loop {
        telemetry.flush();
        if wanted(&collector.spans()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spans missing: {:#?}",
            collector.spans()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = collector.spans();
    assert!(
        collector
            .paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == "/v1/traces")
    );
    assert!(spans.iter().all(|s| s.service_name == "bff-under-test"));
    let trace: Vec<&ExportedSpan> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let ids: Vec<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    for span in &trace {
        match span.name.as_str() {
            // The trusted proxy's span is the parent of each request's.
            "request" => {
                assert_eq!(span.parent_span_id, PARENT_ID, "{span:?}");
                assert_eq!(span.attribute("id"), Some(TRACE_ID), "{span:?}");
            }
            // Everything else hangs inside a request of this trace.
            _ => assert!(ids.contains(&span.parent_span_id.as_str()), "{span:?}"),
        }
    }
    let provider = trace.iter().find(|s| s.name == "provider").unwrap();
    assert_eq!(provider.attribute("operation"), Some("exchange_code"));
    assert_eq!(provider.attribute("provider"), Some("local"));
    let store_operations: Vec<&str> = trace
        .iter()
        .filter(|s| s.name == "store")
        .filter_map(|s| s.attribute("operation"))
        .collect();
    for operation in ["pending_login.take", "session.create", "session.get"] {
        assert!(
            store_operations.contains(&operation),
            "{operation} not in {store_operations:?}"
        );
    }
    assert!(
        trace
            .iter()
            .filter(|s| s.name == "store")
            .all(|s| s.attribute("adapter") == Some("memory"))
    );
    // The upstream saw this trace, with the proxy's `upstream` span as the parent.
    let upstream_span = trace.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(upstream_span.attribute("route"), Some("/api/user"));
    assert_eq!(
        seen_upstream,
        format!("00-{TRACE_ID}-{}-01", upstream_span.span_id)
    );
    // The untrusted request: its own trace, which the upstream saw, and the span names the
    // request id and that trace.
    let own_request = spans
        .iter()
        .find(|s| s.name == "request" && s.attribute("id") == Some(own_id.as_str()))
        .unwrap();
    assert_ne!(own_request.trace_id, TRACE_ID);
    assert_eq!(
        own_request.parent_span_id, "",
        "an untrusted parent was adopted"
    );
    assert_eq!(
        own_request.attribute("trace_id"),
        Some(own_request.trace_id.as_str())
    );
    assert!(
        untrusted_upstream.starts_with(&format!("00-{}-", own_request.trace_id)),
        "{untrusted_upstream} vs {own_request:?}"
    );

    // The log lines are JSON, carry the request id, and have no colour codes.
    let text = logs.text();
    assert!(!text.contains('\u{1b}'), "colour codes in JSON logs");
    let lines = json_lines(&text);
    let request_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert!(
        request_lines.iter().any(
            |l| request_id_of(l) == Some(TRACE_ID) && l["fields"]["path"] == "/api/user/orders"
        ),
        "{text}"
    );
    assert!(
        request_lines
            .iter()
            .any(|l| request_id_of(l) == Some(own_id.as_str())),
        "{text}"
    );
    drop(untrusting);
    drop(server);
    // The exporter's shutdown blocks on its thread: not on the runtime's.
    let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
}

/// The version of a hyphenated UUID, when `text` is one.
fn uuid_version(text: &str) -> Option<u32> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] || !text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
        return None;
    }
    groups[2].chars().next()?.to_digit(16)
}

#[tokio::test]
async fn trace_level_logs_of_every_flow_and_error_path_hold_no_secret() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let upstream = Upstream::start(&idp.issuer).await;
    let base = reserved.base.clone();
    let config = config_with(
        &base,
        &idp.issuer,
        &format!(
            r#"
[[routes]]
path = "/api/user"
upstream = "{up}/v1/user"
token = "user"
"#,
            up = upstream.base
        ),
    );
    // The `log` crate's records too (as `main`'s subscriber forwards them), whichever test of
    // this process installs the global subscriber first; at most at its `debug` level, since
    // `log`'s maximum level is process-wide.
    capture_logs();
    let logs = Captured::default();
    let (subscriber, telemetry) = bff_server::telemetry::subscriber(
        LogFormat::Json,
        // The test's own browser runs on this thread too: its cookie jar (`cookie_store`, which
        // the server does not use) logs the cookies it stores, the session's among them.
        EnvFilter::new("trace,cookie_store=off"),
        &TracingConfig::default(),
        logs.clone(),
    )
    .unwrap();
    let _installed = tracing::subscriber::set_default(subscriber);
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);

    // Error paths before a session: no session, a forged cookie, a callback with a made-up
    // state, a logout token that is not one.
    assert_eq!(browser.api_get("/bff/user").await.status, 401);
    assert_eq!(
        get_with_session(&server.base, "/bff/user", "forged-session-value").await,
        401
    );
    let forged = browser
        .get(&format!(
            "{}/bff/callback?code=made-up-code&state=made-up-state",
            server.base
        ))
        .await;
    assert!(forged.status >= 400, "{}", forged.status);
    let fake_logout_token =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV2ZW50cyI6e319.c2lnbmF0dXJlLW5vdC12YWxpZA";
    let backchannel = reqwest::Client::new()
        .post(format!("{}/bff/backchannel-logout", server.base))
        .form(&[("logout_token", fake_logout_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(backchannel.status(), 400);

    // The flows: login, user, proxied call, refresh, another proxied call (the new access
    // token), a replayed callback, logout.
    let start = browser
        .get(&format!("{}/bff/login?returnUrl=/", server.base))
        .await;
    let callback = browser
        .sign_in_at_provider(&start.location().unwrap(), &idp.issuer)
        .await;
    let code = query_param(&callback, "code").expect("no code");
    let landed = browser.get(&callback).await;
    let session = landed.session_cookie().expect("no session cookie");
    let replayed = browser.get(&callback).await;
    assert!(replayed.status >= 400, "{}", replayed.status);
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
    assert_eq!(browser.api_get("/api/user/a").await.status, 200);
    assert_eq!(browser.api_post("/bff/refresh", None).await.status, 200);
    assert_eq!(browser.api_get("/api/user/b").await.status, 200);
    let access_tokens: Vec<String> = upstream
        .received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.bearer.clone())
        .collect();
    assert_eq!(access_tokens.len(), 2);
    assert_eq!(browser.api_post("/bff/logout", None).await.status, 200);
    assert_eq!(
        get_with_session(&server.base, "/bff/user", &session).await,
        401,
        "the session outlived its logout"
    );
    drop(server);
    drop(telemetry);

    let text = logs.text();
    // Trace level really was on, with the HTTP libraries' own lines.
    let lines = json_lines(&text);
    assert!(
        lines.iter().any(|l| l["level"] == "TRACE"),
        "no trace lines"
    );
    assert!(lines.len() > 100, "only {} lines", lines.len());
    assert!(
        lines.iter().any(|l| l["fields"]["log.target"].is_string()),
        "no lines from the `log` crate (reqwest's)"
    );
    let mut secrets: Vec<&str> = vec![VAULT_KEY, &session];
    secrets.extend(access_tokens.iter().map(String::as_str));
    secrets.push(&code);
    let made_up = ["made-up-code", fake_logout_token];
    assert!(
        !made_up.iter().any(|m| text.contains(m)),
        "hostile input echoed into the log"
    );
    assert_no_secret(&text, &secrets);
}

/// A port on loopback that nothing listens on: a proxied call there fails at once.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Serves a route to a closed port with the JSON log lines `filter` lets through, sends it a
/// proxied call (`502`) and `GET /bff/user` (`401`), and returns the proxied call's request
/// id and the lines written.
async fn lines_of_a_failed_call(
    idp: &Idp,
    filter: impl Into<bff_server::telemetry::LogFilter>,
) -> (String, String) {
    let reserved = reserve().await;
    let routes = format!(
        r#"
[[routes]]
path = "/api/down"
upstream = "http://127.0.0.1:{port}/v1"
token = "none"
"#,
        port = closed_port().await
    );
    let config = config_with(&reserved.base, &idp.issuer, &routes);
    let logs = Captured::default();
    let (subscriber, telemetry) = bff_server::telemetry::subscriber(
        LogFormat::Json,
        filter,
        &TracingConfig::default(),
        logs.clone(),
    )
    .unwrap();
    let installed = tracing::subscriber::set_default(subscriber);
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);
    let down = browser
        .http
        .get(format!("{}/api/down/orders", server.base))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 502);
    let down_id = down.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(browser.api_get("/bff/user").await.status, 401);
    drop(server);
    drop(installed);
    drop(telemetry);
    (down_id, logs.text())
}

#[tokio::test]
async fn access_lines_can_be_left_out_and_other_lines_keep_the_request_id() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let idp = Idp::for_server(&reserve().await);
    // The one filter directive an operator adds to drop the access log.
    let filter = bff_server::telemetry::LogFilter::parse("info,bff_http::access=off").unwrap();
    let (down_id, text) = lines_of_a_failed_call(&idp, filter).await;
    let lines = json_lines(&text);
    assert!(
        !lines.iter().any(|l| l["fields"]["message"] == "request"),
        "an access line despite bff_http::access=off:\n{text}"
    );
    // The proxy's own warning is still written, inside the request's span.
    let warning = lines
        .iter()
        .find(|l| l["fields"]["message"] == "upstream call failed")
        .unwrap_or_else(|| panic!("no upstream warning:\n{text}"));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(request_id_of(warning), Some(down_id.as_str()), "{text}");

    // By default each request has its access line, under that target.
    let (down_id, text) = lines_of_a_failed_call(&idp, EnvFilter::new("info")).await;
    let access: Vec<serde_json::Value> = json_lines(&text)
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    let paths: Vec<&str> = access
        .iter()
        .filter_map(|l| l["fields"]["path"].as_str())
        .collect();
    // (The harness's own readiness probe first.)
    assert_eq!(
        paths,
        ["/healthz", "/api/down/orders", "/bff/user"],
        "{text}"
    );
    let down = &access[1];
    assert_eq!(down["target"], bff_http::ACCESS_LOG_TARGET);
    assert_eq!(down["fields"]["status"], 502);
    assert_eq!(request_id_of(down), Some(down_id.as_str()));
}
