//! Prometheus `/metrics` on its own listener: scraped after a login, a refresh, a refused
//! refresh, a JWKS refetch, a proxied call, a failed login, an unknown `/bff` path and a store
//! outage, the counters moved, and no label carries a session id, token, subject or raw path.

use bff_server::ExtraListeners;
use bff_test_op::{
    ACCESS_TOKEN, CLIENT_SECRET as OP_CLIENT_SECRET, IssueTime, OP_SESSION_ID, REFRESH_TOKEN,
    Script, TestOp,
};

use crate::negative::{login_at_fake_provider, scripted_provider_toml};
use crate::support::*;

/// The sum of the samples of `name` whose labels include every `labels` pair (0 when none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_part) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// What Prometheus asks for.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Scrapes as Prometheus does (OpenMetrics), and checks that a scraper asking for nothing in
/// particular gets the classic text format.
async fn scrape(metrics_base: &str) -> String {
    let http = reqwest::Client::new();
    let get = |accept: Option<&'static str>| {
        let mut request = http.get(format!("{metrics_base}/metrics"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send()
    };
    let response = get(Some(PROMETHEUS_ACCEPT)).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    let classic = get(None).await.unwrap();
    assert_eq!(classic.status(), 200);
    let content_type = classic.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let classic = classic.text().await.unwrap();
    assert!(!classic.contains("# EOF"), "{classic}");
    assert!(classic.contains("# TYPE bff_build_info gauge"), "{classic}");
    text
}

/// An upstream answering `200 ok` to anything.
async fn ok_upstream() -> String {
    use poem::{Route, get, handler};

    #[handler]
    fn ok() -> &'static str {
        "ok"
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(Route::new().at("/*path", get(ok))));
    base
}

/// A server at the scripted provider with `extra` TOML, serving `/metrics` on a port of its own;
/// returns the provider, the server, a browser and the metrics base URL.
async fn server_with_metrics(extra: &str) -> (TestOp, Server, Browser, String) {
    let op = TestOp::start(Script {
        issue_time: IssueTime::System,
        subject: "mallory".into(),
        ..Script::default()
    })
    .await;
    let reserved = reserve().await;
    let text = scripted_provider_toml(&reserved.base, &op.issuer, extra);
    let config = bff_server::Config::from_toml_str(&text, Vec::new()).unwrap();
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_base = format!("http://{}", metrics_listener.local_addr().unwrap());
    let extra = ExtraListeners {
        admin: None,
        metrics: Some(metrics_listener),
    };
    let server = reserved.serve_with_listeners(config, extra).await;
    let browser = Browser::new(&server.base);
    (op, server, browser, metrics_base)
}

#[tokio::test]
async fn metrics_count_logins_refreshes_proxied_calls_and_carry_no_secret_label() {
    let upstream = ok_upstream().await;
    let routes = format!(
        "[[routes]]\npath = \"/api/orders\"\nupstream = \"{upstream}/v1/orders\"\ntoken = \"user\"\n"
    );
    let (op, server, browser, metrics) = server_with_metrics(&routes).await;

    // Nothing has happened yet; the build is announced.
    let before = scrape(&metrics).await;
    assert_eq!(sample(&before, "bff_build_info", &[]), 1.0, "{before}");
    assert_eq!(sample(&before, "bff_logins_started_total", &[]), 0.0);

    // A login.
    let callback = login_at_fake_provider(&browser, &server).await;
    assert_eq!(callback.status, 200, "{}", callback.body);
    let session_id = callback.session_cookie().expect("a session cookie");
    // A refresh.
    let refreshed = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    // A proxied call, with a path the label must not show.
    let proxied = browser.api_get("/api/orders/7?secret=query").await;
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    assert_eq!(proxied.body, "ok");
    // A failed login: a forged state.
    let forged = browser
        .get(&format!("{}/bff/callback?state=forged&code=x", server.base))
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    // A `/bff` path that is no endpoint: counted as `other`, its path in no label.
    let unknown = browser
        .get(&format!("{}/bff/no-such-endpoint-4f2a?x=1", server.base))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let text = scrape(&metrics).await;
    // The BFF's own endpoints, by their path below the prefix, status and class.
    let endpoint = |path: &'static str, status: &'static str, class: &'static str| {
        sample(
            &text,
            "bff_endpoint_requests_total",
            &[("endpoint", path), ("status", status), ("class", class)],
        )
    };
    assert_eq!(endpoint("/callback", "200", "2xx"), 1.0, "{text}");
    assert_eq!(endpoint("/callback", "400", "4xx"), 1.0, "{text}");
    assert_eq!(endpoint("/refresh", "200", "2xx"), 1.0, "{text}");
    assert_eq!(endpoint("other", "404", "4xx"), 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "bff_endpoint_request_duration_seconds_count",
            &[("endpoint", "/callback"), ("class", "4xx")]
        ),
        1.0
    );
    let provider = [("provider", "fake")];
    assert_eq!(
        sample(&text, "bff_logins_started_total", &provider),
        1.0,
        "{text}"
    );
    assert_eq!(sample(&text, "bff_logins_completed_total", &provider), 1.0);
    assert_eq!(sample(&text, "bff_sessions_created_total", &provider), 1.0);
    assert_eq!(
        sample(
            &text,
            "bff_logins_failed_total",
            &[("reason", "state_mismatch")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "bff_refreshes_total",
            &[("provider", "fake"), ("outcome", "ok")]
        ),
        1.0
    );
    let route = [
        ("route", "/api/orders"),
        ("status", "200"),
        ("class", "2xx"),
    ];
    assert_eq!(sample(&text, "bff_proxy_requests_total", &route), 1.0);
    assert_eq!(
        sample(
            &text,
            "bff_proxy_request_duration_seconds_count",
            &[("route", "/api/orders"), ("class", "2xx")]
        ),
        1.0
    );
    let session_reads = [("adapter", "memory"), ("operation", "get")];
    assert!(
        sample(
            &text,
            "bff_store_call_duration_seconds_count",
            &session_reads
        ) >= 2.0
    );
    assert_eq!(sample(&text, "bff_store_errors_total", &[]), 0.0);

    // A refreshed ID token signed under a key id the provider's JWKS lacks: the keys are
    // fetched again (once), the token is still refused, the refresh failed.
    op.script().kid_override = Some("rotated-away".into());
    let unknown_kid = browser.api_post("/bff/refresh", None).await;
    assert_eq!(unknown_kid.status, 502, "{}", unknown_kid.body);
    op.script().kid_override = None;
    let text = scrape(&metrics).await;
    assert_eq!(
        sample(
            &text,
            "bff_jwks_refetches_total",
            &[("provider", "fake"), ("outcome", "ok")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "bff_refreshes_total",
            &[("provider", "fake"), ("outcome", "failed")]
        ),
        1.0
    );

    // A refused refresh ends the session.
    op.script().token_error = Some("invalid_grant".into());
    let refused = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let text = scrape(&metrics).await;
    assert_eq!(
        sample(
            &text,
            "bff_refreshes_total",
            &[("provider", "fake"), ("outcome", "refused")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "bff_sessions_ended_total",
            &[("reason", "refresh_refused")]
        ),
        1.0
    );

    // No label value is a session id (or its store key), token, subject, provider session,
    // secret or raw path.
    let session_key = bff_domain::SessionId::parse(&session_id)
        .unwrap()
        .key()
        .as_str()
        .to_owned();
    for forbidden in [
        session_id.as_str(),
        session_key.as_str(),
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        OP_CLIENT_SECRET,
        OP_SESSION_ID,
        "mallory",
        "/api/orders/7",
        "secret=query",
        "/v1/orders",
        "no-such-endpoint",
    ] {
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} in the metrics:\n{text}"
        );
    }
    assert!(!contains_jwt(&text), "a JWT in the metrics");
}

#[tokio::test]
async fn a_store_outage_shows_as_store_errors_by_adapter_and_operation() {
    // Redis on a port nothing listens on: every store call fails as unavailable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = format!(
        "[store]\nkind = \"redis\"\n[store.redis]\nurl = \"redis://127.0.0.1:{closed}\"\ntimeout_ms = 500\n"
    );
    let (_op, server, browser, metrics) = server_with_metrics(&store).await;

    let start = browser.get(&format!("{}/bff/login", server.base)).await;
    assert_eq!(start.status, 503, "{}", start.body);
    assert_eq!(start.problem_code(), "store_unavailable");

    let text = scrape(&metrics).await;
    let failed_put = [("adapter", "redis"), ("operation", "pending_put")];
    assert_eq!(
        sample(&text, "bff_store_errors_total", &failed_put),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "bff_store_call_duration_seconds_count", &failed_put),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "bff_logins_failed_total",
            &[("reason", "store_error")]
        ),
        1.0
    );
    assert_eq!(sample(&text, "bff_logins_started_total", &[]), 0.0);
    assert!(
        !text.contains("127.0.0.1"),
        "the store's address in the metrics"
    );
}

#[tokio::test]
async fn metrics_are_not_served_on_the_browser_listener() {
    let (_op, server, _browser, metrics) = server_with_metrics("").await;
    let public = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_ne!(public.status(), 200);
    assert_eq!(
        reqwest::get(format!("{metrics}/bff/session"))
            .await
            .unwrap()
            .status(),
        404,
        "the metrics listener serves only /metrics"
    );
}
