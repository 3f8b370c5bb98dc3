//! bff-server on Postgres and Redis: sessions survive a restart, several nodes share them, and a
//! store outage gives 503 (never a silent logout) and heals by itself.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

pub(crate) fn store_toml(
    pg: &bff_test_services::PostgresService,
    redis_url: Option<&str>,
    prefix: &str,
) -> String {
    let kind = if redis_url.is_some() {
        "postgres+redis"
    } else {
        "postgres"
    };
    let mut toml = format!(
        r#"
[store]
kind = "{kind}"
[store.postgres]
url = "{url}"
schema = "{schema}"
migrate_on_start = true
acquire_timeout_ms = 5000
"#,
        url = pg.url,
        schema = pg.schema
    );
    if let Some(redis) = redis_url {
        toml.push_str(&format!(
            "[store.redis]\nurl = \"{redis}\"\ntimeout_ms = 2000\nkey_prefix = \"{prefix}\"\n"
        ));
    }
    toml
}

/// `[store]` for the Redis store alone, under the test's own key prefix.
pub(crate) fn redis_store_toml(redis: &bff_test_services::RedisService) -> String {
    format!(
        "[store]\nkind = \"redis\"\n[store.redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n",
        redis.url, redis.prefix
    )
}

/// A store a scenario runs on, for tests that run the same scenario on each.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Store {
    Memory,
    Postgres,
    Redis,
    PostgresAndRedis,
}

/// Runs `scenario` with the `[store]` TOML that selects `store` (empty for memory): a missing
/// PostgreSQL or Redis skips it as `bff_test_services` decides (never under CI), and the test's
/// PostgreSQL schema is dropped afterwards.
pub(crate) async fn on_store<F, Fut>(store: Store, scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let pg = match store {
        Store::Postgres | Store::PostgresAndRedis => match bff_test_services::postgres().await {
            Some(pg) => Some(pg),
            None => return,
        },
        Store::Memory | Store::Redis => None,
    };
    let redis = match store {
        Store::Redis | Store::PostgresAndRedis => match bff_test_services::redis().await {
            Some(redis) => Some(redis),
            None => return,
        },
        Store::Memory | Store::Postgres => None,
    };
    let stores = match (&pg, &redis) {
        (None, None) => String::new(),
        (Some(pg), None) => store_toml(pg, None, ""),
        (None, Some(redis)) => redis_store_toml(redis),
        (Some(pg), Some(redis)) => store_toml(pg, Some(&redis.url), &redis.prefix),
    };
    scenario(stores).await;
    if let Some(pg) = pg {
        pg.drop_schema().await;
    }
}

pub(crate) async fn session_rows(pg: &bff_test_services::PostgresService) -> i64 {
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let n: (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {}.bff_sessions", pg.schema))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n.0
}

#[tokio::test]
async fn sessions_survive_a_restart_on_postgres() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let first = reserve().await;
    let idp = Idp::for_server(&first);
    let base = first.base.clone();
    let server = first
        .serve(config_with(&base, &idp.issuer, &store_toml(&pg, None, "")))
        .await;
    let browser = Browser::new(&server.base);
    assert_eq!(
        redirect_login(&browser, &server, &idp, "/").await.status,
        200
    );
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
    assert_eq!(session_rows(&pg).await, 1);
    drop(server);

    // A new process (same store), the same cookie: still logged in.
    let second = reserve().await;
    let base = second.base.clone();
    let restarted = second
        .serve(config_with(&base, &idp.issuer, &store_toml(&pg, None, "")))
        .await;
    let user = browser.at(&restarted.base).api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["sub"], "alice");
    pg.drop_schema().await;
}

async fn stored_key_ids(pg: &bff_test_services::PostgresService) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let ids: Vec<(String,)> =
        sqlx::query_as(&format!("SELECT key_id FROM {}.bff_sessions", pg.schema))
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    ids.into_iter().map(|(id,)| id).collect()
}

/// Rotating the vault key logs nobody out: restart with a new first key and the old one behind
/// it, and the old session still opens; its next token write is sealed with the new key; once
/// every blob is resealed the old key can go.
#[tokio::test]
async fn a_vault_key_rotates_without_logging_anyone_out_on_postgres() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let old_key = ("test", VAULT_KEY);
    let new_key = ("2026-12", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=");
    let first = reserve().await;
    let idp = Idp::for_server(&first);
    let base = first.base.clone();
    let server = first
        .serve(config_with(&base, &idp.issuer, &store_toml(&pg, None, "")))
        .await;
    let browser = Browser::new(&server.base);
    assert_eq!(
        redirect_login(&browser, &server, &idp, "/").await.status,
        200
    );
    assert_eq!(stored_key_ids(&pg).await, ["test"]);
    drop(server);

    // Restart with the new key first (it seals) and the old one second (it only opens).
    let second = reserve().await;
    let base = second.base.clone();
    let mut rotated = config_with(&base, &idp.issuer, &store_toml(&pg, None, ""));
    rotated.vault_keys = bff_crypto::VaultKeys::from_base64([new_key, old_key]).unwrap();
    let server = second.serve(rotated).await;
    let browser = browser.at(&server.base);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(
        user.status, 200,
        "the old key no longer opens: {}",
        user.body
    );
    let refreshed = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(stored_key_ids(&pg).await, ["2026-12"], "not resealed");
    drop(server);

    // The old key retired: the resealed session still works.
    let third = reserve().await;
    let base = third.base.clone();
    let mut retired = config_with(&base, &idp.issuer, &store_toml(&pg, None, ""));
    retired.vault_keys = bff_crypto::VaultKeys::from_base64([new_key]).unwrap();
    let server = third.serve(retired).await;
    let browser = browser.at(&server.base);
    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(browser.api_post("/bff/refresh", None).await.status, 200);
    pg.drop_schema().await;
}

/// `BASE64URL(SHA-256(candidate))`, the S256 code challenge `candidate` would have.
fn s256(candidate: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(candidate))
}

fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

/// A login in flight stores its PKCE verifier sealed: nothing in the stored record, nor any run
/// of bytes inside the sealed blob, has the S256 challenge the provider was sent. The login
/// still completes, so the sealed verifier opens.
#[tokio::test]
async fn pending_logins_keep_the_pkce_verifier_sealed_on_postgres() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let schema = pg.schema.clone();
    let url = pg.url.clone();
    check_the_pending_login_at_rest(&store_toml(&pg, None, ""), move || async move {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let records: Vec<(serde_json::Value,)> =
            sqlx::query_as(&format!("SELECT record FROM {schema}.bff_pending_logins"))
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        records.into_iter().map(|(r,)| r).collect()
    })
    .await;
    pg.drop_schema().await;
}

/// The same on Redis, where pending logins live in the `postgres+redis` deployment too.
#[tokio::test]
async fn pending_logins_keep_the_pkce_verifier_sealed_on_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let stores = redis_store_toml(&redis);
    let (url, prefix) = (redis.url.clone(), redis.prefix.clone());
    check_the_pending_login_at_rest(&stores, move || async move {
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}p:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut records = Vec::new();
        for key in keys {
            let value: String = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            records.push(serde_json::from_str(&value).unwrap());
        }
        records
    })
    .await;
}

/// Starts a login on a server with `stores`, reads the stored pending logins with
/// `stored_records`, checks that none holds the verifier, then completes the login.
async fn check_the_pending_login_at_rest<F, Fut>(stores: &str, stored_records: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Vec<serde_json::Value>>,
{
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    // Pushed requests off (the provider offers them): the challenge is in the authorize URL.
    let server = reserved
        .serve(config_with_env(
            &base,
            &idp.issuer,
            stores,
            &[("BFF_PROVIDERS__LOCAL__PUSHED_AUTHORIZATION_REQUESTS", "off")],
        ))
        .await;
    let browser = Browser::new(&server.base);
    let start = browser.get(&format!("{}/bff/login", server.base)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().unwrap();
    let challenge = query_param(&location, "code_challenge").unwrap();
    assert_eq!(
        query_param(&location, "code_challenge_method").as_deref(),
        Some("S256")
    );

    let records = stored_records().await;
    assert_eq!(records.len(), 1, "one login in flight");
    let record = &records[0];
    let mut strings = Vec::new();
    json_strings(record, &mut strings);
    for s in &strings {
        assert_ne!(
            s256(s.as_bytes()),
            challenge,
            "a stored field is the verifier"
        );
    }
    let sealed = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(record["sealed_verifier"].as_str().expect("sealed_verifier"))
            .unwrap()
    };
    // RFC 7636 verifiers are 43 to 128 characters: no such run inside the blob is the verifier.
    for len in 43..=128.min(sealed.len()) {
        for window in sealed.windows(len) {
            assert_ne!(
                s256(window),
                challenge,
                "the verifier is in the sealed blob"
            );
        }
    }

    let callback = browser.sign_in_at_provider(&location, &idp.issuer).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(browser.api_get("/bff/user").await.status, 200);
}

#[tokio::test]
async fn two_nodes_share_sessions_through_redis_alone() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let stores = redis_store_toml(&redis);
    two_nodes_share_sessions(&stores).await;
}

#[tokio::test]
async fn two_nodes_share_sessions_through_postgres_and_redis() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    two_nodes_share_sessions(&store_toml(&pg, Some(&redis.url), &redis.prefix)).await;
    assert_eq!(
        session_rows(&pg).await,
        0,
        "the logout left the row in Postgres"
    );
    pg.drop_schema().await;
}

/// Log in on node A, use and refresh the session on node B, log out on B: A refuses the old
/// cookie afterwards.
async fn two_nodes_share_sessions(stores: &str) {
    let a = reserve().await;
    let b = reserve().await;
    let idp = Idp::start_on_host("127.0.0.1", &[a.callback()], &[a.app_page(), b.app_page()]);
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let node_a = a.serve(config_with(&a_base, &idp.issuer, stores)).await;
    let node_b = b.serve(config_with(&b_base, &idp.issuer, stores)).await;

    let on_a = Browser::new(&node_a.base);
    let callback = redirect_login(&on_a, &node_a, &idp, "/").await;
    let cookie = callback.session_cookie().expect("session cookie");
    let on_b = on_a.at(&node_b.base);
    let user = on_b.api_get("/bff/user").await;
    assert_eq!(
        user.status, 200,
        "node B does not see node A's session: {}",
        user.body
    );
    assert_eq!(on_b.api_post("/bff/refresh", None).await.status, 200);
    assert_eq!(
        get_with_session(&node_a.base, "/bff/user", &cookie).await,
        200
    );

    let logout = on_b.api_post("/bff/logout", None).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    // The browser dropped its cookie; replay the old value at A.
    assert_eq!(
        get_with_session(&node_a.base, "/bff/user", &cookie).await,
        401,
        "node A still serves a session logged out on B"
    );
}

/// A private redis-server on a free loopback port, so the test can stop and start it.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        PrivateRedis {
            child: Some(child),
            port,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_server_available() -> Result<(), String> {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("redis-server: {e}"))
        .and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                Err("redis-server --version failed".into())
            }
        })
}

#[tokio::test]
async fn a_redis_outage_gives_503_deletes_nothing_and_heals() {
    if !prerequisite("local OpenID Provider (node)", idp_available())
        || !prerequisite("redis-server binary", redis_server_available())
    {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = PrivateRedis::start(port);
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);

    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let server = reserved
        .serve(config_with(
            &base,
            &idp.issuer,
            &store_toml(&pg, Some(&redis_url), "bff:"),
        ))
        .await;
    let browser = Browser::new(&server.base);
    assert_eq!(
        redirect_login(&browser, &server, &idp, "/").await.status,
        200
    );
    assert_eq!(browser.api_get("/bff/user").await.status, 200);

    redis.stop();
    for path in ["/bff/user", "/bff/session", "/bff/userinfo"] {
        let page = browser.api_get(path).await;
        assert_eq!(page.status, 503, "{path}: {}", page.body);
        assert_eq!(page.problem_code(), "store_unavailable");
        assert_eq!(
            page.headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("2"),
            "{path}: a 503 says when to retry"
        );
    }
    let refresh = browser.api_post("/bff/refresh", None).await;
    assert_eq!(refresh.status, 503, "{}", refresh.body);
    let ready = browser.get(&format!("{}/readyz", server.base)).await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json()["checks"]["store:redis"]["status"],
        "unavailable"
    );
    assert_eq!(ready.json()["checks"]["store:postgres"]["status"], "ok");
    assert_eq!(
        session_rows(&pg).await,
        1,
        "the outage deleted the session in Postgres"
    );

    // Redis comes back (empty): the same server recovers by itself, refilling from Postgres.
    let _redis = PrivateRedis::start(port);
    let mut healed = false;
    for _ in 0..50 {
        if browser.api_get("/bff/user").await.status == 200 {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healed, "bff-server did not recover after Redis came back");
    assert_eq!(
        browser.get(&format!("{}/readyz", server.base)).await.status,
        200
    );
    pg.drop_schema().await;
}

/// 200 requests that slide the session's expiry, with a refresh in the middle of them, on
/// Postgres + Redis: the refresh's token write survives the concurrent touches. The provider
/// rotates refresh tokens, so a lost write would leave the already-used refresh token in the
/// session and the next refresh would be refused.
#[tokio::test]
async fn concurrent_requests_and_a_refresh_lose_no_token_update() {
    if !prerequisite("local OpenID Provider (node)", idp_available()) {
        return;
    }
    let Some(pg) = bff_test_services::postgres().await else {
        return;
    };
    let Some(redis) = bff_test_services::redis().await else {
        return;
    };
    let reserved = reserve().await;
    let idp = Idp::for_server(&reserved);
    let base = reserved.base.clone();
    let mut config = config_with(
        &base,
        &idp.issuer,
        &store_toml(&pg, Some(&redis.url), &redis.prefix),
    );
    // A 10 s idle timeout slides (writes) the expiry at most once a second: the burst below,
    // spread over about 2.4 s, touches the session several times.
    config.session.idle_timeout_secs = 10;
    let server = reserved.serve(config).await;
    let browser = Browser::new(&server.base);
    assert_eq!(
        redirect_login(&browser, &server, &idp, "/").await.status,
        200
    );
    let expiry_at_login = browser.api_get("/bff/user").await.json()["bff:session_expires_at"]
        .as_i64()
        .unwrap();

    let mut burst = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let browser = browser.clone();
        burst.spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 12)).await;
            if i == 100 {
                let refreshed = browser.api_post("/bff/refresh", None).await;
                ("refresh", refreshed.status, refreshed.body)
            } else {
                let user = browser.api_get("/bff/user").await;
                ("user", user.status, user.body)
            }
        });
    }
    let answers = burst.join_all().await;
    assert_eq!(answers.len(), 200);
    for (what, status, body) in &answers {
        assert_eq!(*status, 200, "{what}: {body}");
    }

    let user = browser.api_get("/bff/user").await;
    assert_eq!(user.status, 200, "{}", user.body);
    let expiry_after = user.json()["bff:session_expires_at"].as_i64().unwrap();
    assert!(
        expiry_after > expiry_at_login,
        "the burst never slid the expiry ({expiry_at_login} -> {expiry_after})"
    );
    // The session holds the refresh token the provider issued during the burst.
    let again = browser.api_post("/bff/refresh", None).await;
    assert_eq!(
        again.status, 200,
        "the token update was lost: {}",
        again.body
    );
    pg.drop_schema().await;
}
