//! Operations: starting while a provider is down (served, not ready, logins `503` until the
//! background discovery reaches it), a wrong issuer still refusing to start, and draining on
//! shutdown (`/readyz` `503` at once, in-flight proxied streams finishing, new connections
//! refused once accepting stops).

use std::time::{Duration, Instant};

use bff_server::Config;
use tokio::sync::oneshot;

use crate::support::*;

/// A loopback port nothing listens on now (bound and released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A loopback port that refuses connections for the rest of the test process: a socket bound to
/// it without `listen`. (A port bound and released, like [`free_port`]'s, could be taken by
/// another test's server in the meantime.)
fn refused_port() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    std::mem::forget(socket);
    port
}

/// `bff_server::serve` on `reserved`'s listener, with the shutdown sender and the join handle
/// of the serve future (which `Reserved::serve` hides), once it answers `/healthz`.
async fn serve_controlled(
    reserved: Reserved,
    config: Config,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let (base, listener) = reserved.into_parts();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        bff_server::serve(config, listener, async move {
            let _ = stopped.await;
        })
        .await
        .map_err(|e| e.to_string())
    });
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(resp) = client.get(format!("{base}/healthz")).send().await
            && resp.status() == 200
        {
            return (base, stop, served);
        }
        assert!(
            !served.is_finished(),
            "bff-server stopped: {:?}",
            served.await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("bff-server did not answer /healthz");
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_while_the_provider_is_down_and_logs_in_once_it_is_up() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let reserved = reserve().await;
    let (redirects, post_logout) = (
        [reserved.callback(), reserved.app_page()],
        [reserved.logout_return(), reserved.app_page()],
    );
    let base = reserved.base.clone();
    let server = reserved.serve(config(&base, &issuer)).await;
    let browser = Browser::new(&server.base);

    // Up, but not ready, and the readiness answer names the provider and why.
    let health = browser.get(&format!("{}/healthz", server.base)).await;
    assert_eq!(health.status, 200);
    let ready = browser.get(&format!("{}/readyz", server.base)).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.problem_code(), "not_ready");
    let checks = &ready.json()["checks"];
    assert_eq!(
        checks["provider:local"]["status"], "unavailable",
        "{checks}"
    );
    let detail = checks["provider:local"]["detail"].as_str().unwrap();
    assert!(detail.contains("discovery pending"), "{detail}");
    assert!(
        detail.contains(&issuer),
        "names the address it tries: {detail}"
    );
    assert_eq!(checks["store:memory"]["status"], "ok", "{checks}");
    assert_eq!(checks["draining"]["status"], "ok", "{checks}");

    // A login there is a retryable 503, not a redirect and not a 502.
    let login = browser.get(&format!("{}/bff/login", server.base)).await;
    assert_eq!(login.status, 503, "{}", login.body);
    assert_eq!(login.problem_code(), "provider_unavailable");
    assert_eq!(login.headers["retry-after"], "2");
    assert!(login.location().is_none());
    assert!(login.session_cookie().is_none());
    let started = browser
        .api_post(
            "/bff/login/start",
            Some(serde_json::json!({"provider": "post"})),
        )
        .await;
    assert_eq!(started.status, 503, "{}", started.body);
    assert_eq!(started.problem_code(), "provider_unavailable");
    // No session, no crash: the session endpoints answer as usual.
    assert_eq!(browser.api_get("/bff/user").await.status, 401);

    // The provider comes up on that address; the background discovery finds it.
    let port_text = port.to_string();
    let idp = Idp::start_with_env(
        "127.0.0.1",
        &redirects,
        &post_logout,
        &[("IDP_PORT", port_text.as_str())],
    );
    assert_eq!(idp.issuer, issuer);
    let came_up = Instant::now();
    let deadline = came_up + Duration::from_secs(45);
    loop {
        let ready = browser.get(&format!("{}/readyz", server.base)).await;
        if ready.status == 200 {
            assert_eq!(ready.json()["checks"]["provider:local"]["status"], "ok");
            assert_eq!(ready.json()["checks"]["provider:post"]["status"], "ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 45 s after the provider came up: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bff_test_services::report_note(&format!(
        "provider discovered {:?} after it came up",
        came_up.elapsed()
    ));

    // Logins now work end to end.
    let page = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    browser.assert_no_secrets_seen(&[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_issuer_still_stops_start_up() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    // The provider answers at this address, but its metadata names `http://127.0.0.1:PORT`.
    let wrong = idp.issuer.replace("127.0.0.1", "localhost");
    let (base, listener) = reserved.into_parts();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        bff_server::serve(config(&base, &wrong), listener, std::future::pending()),
    )
    .await
    .expect("start-up must fail, not wait for the provider");
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("does not equal the configured issuer"),
        "{error}"
    );
    assert!(error.contains("provider local"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(15), "no retry loop");
}

/// An upstream that streams its answer over `duration`: four lines, the first at once.
async fn slow_upstream(duration: Duration) -> String {
    use poem::{Body, EndpointExt as _, Route, get, handler, web::Data};

    #[handler]
    async fn slow(Data(duration): Data<&Duration>) -> Body {
        let pause = *duration / 4;
        let chunks = futures_util::stream::unfold(0u8, move |i| async move {
            if i == 4 {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            Some((Ok::<_, std::io::Error>(format!("chunk {i}\n")), i + 1))
        });
        Body::from_bytes_stream(chunks)
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    let app = Route::new().at("/*path", get(slow)).data(duration);
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    base
}

const STREAMED: &str = "chunk 0\nchunk 1\nchunk 2\nchunk 3\n";

fn drain_config(base: &str, issuer: &str, upstream: &str, delay: u64, timeout: u64) -> Config {
    let mut config = config_with(
        base,
        issuer,
        &format!(
            r#"
[[routes]]
path = "/api/slow"
upstream = "{upstream}/v1/slow"
token = "none"
"#
        ),
    );
    config.server.shutdown_delay_secs = delay;
    config.server.shutdown_timeout_secs = timeout;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_turns_readiness_off_at_once_and_lets_in_flight_requests_finish() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let upstream = slow_upstream(Duration::from_secs(6)).await;
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let config = drain_config(&base, &idp.issuer, &upstream, 2, 30);
    let (base, stop, served) = serve_controlled(reserved, config).await;
    let client = reqwest::Client::new();
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let in_flight = tokio::spawn({
        let url = format!("{base}/api/slow/report");
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .header("x-csrf", "1")
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    stop.send(()).unwrap();

    // Draining: still accepting for `shutdown_delay_secs`, `/readyz` 503 naming the reason.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    let draining = fresh.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(draining.status(), 503);
    let body: serde_json::Value = draining.json().await.unwrap();
    assert_eq!(body["code"], "not_ready", "{body}");
    assert_eq!(
        body["checks"]["draining"]["status"], "unavailable",
        "{body}"
    );
    assert_eq!(body["checks"]["provider:local"]["status"], "ok", "{body}");

    // After the delay the listener is closed: new connections are refused...
    tokio::time::sleep(Duration::from_millis(2300)).await;
    if in_flight.is_finished() {
        panic!("the slow request ended early: {:?}", in_flight.await);
    }
    let refused = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "accepting after the delay: {refused:?}");

    // ...while the in-flight proxied stream completes, and the server then stops cleanly.
    let (status, text) = in_flight.await.unwrap();
    assert_eq!((status, text.as_str()), (200, STREAMED));
    let result = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("stops once drained")
        .unwrap();
    assert_eq!(result, Ok(()));
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_deadline_cuts_requests_that_run_too_long() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let upstream = slow_upstream(Duration::from_secs(20)).await;
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let config = drain_config(&base, &idp.issuer, &upstream, 0, 1);
    let (base, stop, served) = serve_controlled(reserved, config).await;
    let in_flight = tokio::spawn({
        let request = reqwest::Client::new()
            .get(format!("{base}/api/slow/report"))
            .header("x-csrf", "1");
        async move { request.send().await?.text().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the deadline ends the drain")
        .unwrap();
    assert_eq!(result, Ok(()));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped after {took:?}, the deadline is 1 s"
    );
    // The cut stream never completes.
    let cut = in_flight.await.unwrap();
    assert!(cut.is_err(), "{cut:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_is_down_leaves_sessions_and_other_providers_alone() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let down = format!("http://127.0.0.1:{}", refused_port());
    let config = config_with(
        &base,
        &idp.issuer,
        &format!(
            "[providers.down]\nissuer = \"{down}\"\nclient_id = \"d\"\nclient_secret = \"down-secret\"\n"
        ),
    );
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);

    // Signed in at the provider that is up.
    let page = redirect_login(&browser, &server, &idp, "/").await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Not ready, and only the provider that is down is named.
    let ready = browser.get(&format!("{}/readyz", server.base)).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let checks = &ready.json()["checks"];
    assert_eq!(checks["provider:down"]["status"], "unavailable", "{checks}");
    assert_eq!(checks["provider:local"]["status"], "ok", "{checks}");
    assert_eq!(checks["provider:post"]["status"], "ok", "{checks}");

    // A login there is a 503; the session goes on.
    let login = browser
        .get(&format!("{}/bff/login?provider=down", server.base))
        .await;
    assert_eq!(login.status, 503, "{}", login.body);
    assert_eq!(login.problem_code(), "provider_unavailable");
    assert!(login.headers.contains_key("retry-after"));
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    // Connecting the down provider to the session is a 503 too, and keeps the session.
    let connect = browser
        .get(&format!(
            "{}/bff/login?provider=down&connect=true",
            server.base
        ))
        .await;
    assert_eq!(connect.status, 503, "{}", connect.body);
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
    browser.assert_no_secrets_seen(&["down-secret"]);
}

/// The API explorer: on in plain-HTTP development mode at `{prefix}/explorer`, at the
/// configured path when one is set, and off in production mode unless set. (The provider is
/// down throughout: the explorer and the rest of the surface do not need it.)
#[tokio::test(flavor = "multi_thread")]
async fn the_api_explorer_is_served_where_configured_and_off_by_default_in_production() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let resp = client.get(url).header("x-csrf", "1").send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };

    // Development mode: the default path.
    let reserved = reserve().await;
    let base = reserved.app_page().trim_end_matches('/').to_owned();
    let (base, stop, served) = serve_controlled(reserved, config(&base, &down)).await;
    let (status, page) = get(format!("{base}/bff/explorer")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("SwaggerUIBundle"), "the UI is inline");
    assert!(
        page.contains("/login/start"),
        "the page carries the /bff document"
    );
    assert!(
        !page.contains("<script src") && !page.contains("<link"),
        "nothing is loaded from elsewhere"
    );
    let (status, _) = get(format!("{base}/bff/user")).await;
    assert_eq!(status, 401, "the BFF's own endpoints are untouched");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();

    // A configured path.
    let reserved = reserve().await;
    let base = reserved.app_page().trim_end_matches('/').to_owned();
    let config = config_with(&base, &down, "[http]\napi_explorer_path = \"/docs/api\"\n");
    let (base, stop, served) = serve_controlled(reserved, config).await;
    assert_eq!(get(format!("{base}/docs/api")).await.0, 200);
    let (status, page) = get(format!("{base}/bff/explorer")).await;
    assert_eq!(status, 404, "only where configured");
    assert!(!page.contains("SwaggerUIBundle"));
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();

    // Production mode (https public URL and issuer; served over plain HTTP here): off.
    let production = |extra: &str| {
        Config::from_toml_str(
            &format!(
                r#"
default_provider = "main"
[server]
listen = "127.0.0.1:0"
public_url = "https://app.example"
[[vault_keys]]
id = "test"
key = "{VAULT_KEY}"
[providers.main]
issuer = "https://127.0.0.1:{port}"
client_id = "bff"
client_secret = "s"
{extra}
"#,
                port = free_port()
            ),
            Vec::new(),
        )
        .unwrap()
    };
    let (base, stop, served) = serve_controlled(reserve().await, production("")).await;
    let (status, page) = get(format!("{base}/bff/explorer")).await;
    assert_ne!(status, 200, "{page}");
    assert!(!page.contains("SwaggerUIBundle"));
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    let (base, stop, served) = serve_controlled(
        reserve().await,
        production("[http]\napi_explorer_path = \"/bff/explorer\"\n"),
    )
    .await;
    assert_eq!(get(format!("{base}/bff/explorer")).await.0, 200);
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}
