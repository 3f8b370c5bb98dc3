//! Session lifecycle through the real server and provider: a session id renewed once it is old
//! enough (new cookie, the old one still working for the grace period and answering with the
//! same new cookie, then worthless), on every store; client binding in `strict` mode (a cookie
//! replayed by another client ends the session, `401 session_binding_mismatch`) and in `warn`
//! mode (logged without the User-Agent, the session goes on).

use std::time::Duration;

use crate::stores::{Store, on_store};
use crate::support::*;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

struct Answer {
    status: u16,
    /// The session cookie the answer sets, when it sets one with a value.
    new_cookie: Option<String>,
    /// The answer expires the session cookie.
    cleared: bool,
    body: String,
}

impl Answer {
    fn problem_code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body).unwrap()["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// `GET /bff/user` with exactly the session cookie `cookie`, sending `user_agent`.
async fn user(base: &str, cookie: &str, user_agent: &str) -> Answer {
    let resp = reqwest::Client::new()
        .get(format!("{base}/bff/user"))
        .header("x-csrf", "1")
        .header("cookie", format!("bff={cookie}"))
        .header("user-agent", user_agent)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let set: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let value = |c: &String| {
        c.strip_prefix("bff=")
            .and_then(|r| r.split(';').next().map(str::to_owned))
    };
    let new_cookie = set.iter().filter_map(value).find(|v| !v.is_empty());
    let cleared = set.iter().filter_map(value).any(|v| v.is_empty());
    Answer {
        status,
        new_cookie,
        cleared,
        body: resp.text().await.unwrap(),
    }
}

/// Logs a browser sending `user_agent` in; its session cookie.
async fn login(server: &Server, idp: &Idp, user_agent: &str) -> String {
    let mut browser = Browser::new(&server.base);
    browser.http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap();
    let page = redirect_login(&browser, server, idp, "/").await;
    page.session_cookie().expect("session cookie")
}

async fn server_with(stores: &str, env: &[(&str, &str)]) -> (Idp, Server) {
    capture_logs();
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let config = config_with_env(&base, &idp.issuer, stores, env);
    let server = reserved.serve(config).await;
    (idp, server)
}

const AFTER_SECS: u64 = 2;
const GRACE_SECS: u64 = 3;

async fn renewal_scenario(stores: &str) {
    let (idp, server) = server_with(
        stores,
        &[
            ("BFF_SESSION__REKEY_AFTER_SECS", "2"),
            ("BFF_SESSION__REKEY_GRACE_SECS", "3"),
        ],
    )
    .await;
    let old = login(&server, &idp, FIREFOX).await;
    let young = user(&server.base, &old, FIREFOX).await;
    assert_eq!(young.status, 200, "{}", young.body);
    assert_eq!(young.new_cookie, None, "a young id is not renewed");

    // Whole seconds: the id is at least AFTER_SECS old by the store's clock after this.
    tokio::time::sleep(Duration::from_millis(AFTER_SECS * 1000 + 100)).await;
    let renewing = user(&server.base, &old, FIREFOX).await;
    assert_eq!(renewing.status, 200, "{}", renewing.body);
    let new = renewing.new_cookie.expect("a renewed session cookie");
    assert_ne!(new, old);
    assert!(!renewing.cleared);

    // Another request of the same tab that left with the old cookie: served, and told the same
    // new cookie (its answer may be the one the browser keeps).
    let late = user(&server.base, &old, FIREFOX).await;
    assert_eq!(late.status, 200, "{}", late.body);
    assert_eq!(late.new_cookie.as_deref(), Some(new.as_str()));
    let fresh = user(&server.base, &new, FIREFOX).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.new_cookie, None);
    assert!(
        fresh.body.contains("\"sub\""),
        "the renewed session is the same user: {}",
        fresh.body
    );

    // After the grace period the old cookie is worth nothing; the new one goes on.
    tokio::time::sleep(Duration::from_millis(GRACE_SECS * 1000 + 100)).await;
    let stale = user(&server.base, &old, FIREFOX).await;
    assert_eq!(stale.status, 401, "{}", stale.body);
    assert_eq!(stale.problem_code(), "no_session");
    let still = user(&server.base, &new, FIREFOX).await;
    assert_eq!(still.status, 200, "{}", still.body);
    // The server's lines only: the test's own HTTP client logs the cookies it stores.
    let logs = logs_text();
    let leaked = logs
        .lines()
        .filter(|line| !line.contains("cookie_store"))
        .find(|line| line.contains(old.as_str()) || line.contains(new.as_str()));
    assert_eq!(leaked, None, "a session id was logged");
}

#[tokio::test]
async fn session_ids_are_renewed_on_memory() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::Memory, |stores| async move {
        renewal_scenario(&stores).await
    })
    .await;
}

#[tokio::test]
async fn session_ids_are_renewed_on_postgres() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::Postgres, |stores| async move {
        renewal_scenario(&stores).await
    })
    .await;
}

#[tokio::test]
async fn session_ids_are_renewed_on_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::Redis, |stores| async move {
        renewal_scenario(&stores).await
    })
    .await;
}

#[tokio::test]
async fn session_ids_are_renewed_on_postgres_and_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    on_store(Store::PostgresAndRedis, |stores| async move {
        renewal_scenario(&stores).await
    })
    .await;
}

#[tokio::test]
async fn strict_client_binding_ends_a_session_replayed_by_another_client() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server) = server_with(
        "",
        &[
            ("BFF_SESSION__CLIENT_BINDING", "strict"),
            ("BFF_SESSION__CLIENT_BINDING_IPV4_PREFIX", "24"),
        ],
    )
    .await;
    let cookie = login(&server, &idp, FIREFOX).await;
    let owner = user(&server.base, &cookie, FIREFOX).await;
    assert_eq!(owner.status, 200, "{}", owner.body);

    // The cookie replayed with another User-Agent (hostile, long, with markup).
    let thief_ua = format!("curl/8.5.0 <script>{}</script>", "x".repeat(2000));
    let thief = user(&server.base, &cookie, &thief_ua).await;
    assert_eq!(thief.status, 401, "{}", thief.body);
    assert_eq!(thief.problem_code(), "session_binding_mismatch");
    assert!(thief.cleared, "the cookie is cleared");
    assert!(!thief.body.contains("curl") && !thief.body.contains("<script>"));
    assert_no_secret(&thief.body, &[&cookie]);

    // The session is over for its owner too: a stolen cookie is not worth keeping it.
    let after = user(&server.base, &cookie, FIREFOX).await;
    assert_eq!(after.status, 401, "{}", after.body);
    assert_eq!(after.problem_code(), "no_session");
}

#[tokio::test]
async fn warn_client_binding_logs_a_mismatch_and_keeps_the_session() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let (idp, server) = server_with("", &[("BFF_SESSION__CLIENT_BINDING", "warn")]).await;
    let cookie = login(&server, &idp, FIREFOX).await;
    let marker = "curl/8.5.0-binding-warn-marker";
    let other = user(&server.base, &cookie, marker).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let owner = user(&server.base, &cookie, FIREFOX).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    let logs = logs_text();
    assert!(
        logs.contains("client binding, warn mode"),
        "the mismatch is logged"
    );
    assert!(!logs.contains(marker), "the User-Agent is not logged");
}
