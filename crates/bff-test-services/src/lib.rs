//! Real PostgreSQL and Redis servers for tests.
//!
//! Order of preference: a container started with `testcontainers` when a Docker engine answers
//! (`DOCKER_HOST` or `/var/run/docker.sock`), otherwise the server named by
//! `BFF_TEST_POSTGRES_URL` / `BFF_TEST_REDIS_URL`. When neither exists the test prints
//! `SKIPPED <test>: ...` with the reason (uncaptured, so plain `cargo test` shows it), except when `CI` is set: then it panics, so CI never passes
//! by skipping.
//!
//! Each PostgreSQL user gets a fresh schema ([`PostgresService::schema`]) so tests sharing a server
//! never see each other's rows; Redis users get a unique key prefix.

#![allow(clippy::panic, clippy::expect_used)] // test support: failing loudly is the point

use std::sync::atomic::{AtomicU64, Ordering};

use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::redis::Redis;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call.
pub fn unique(label: &str) -> String {
    format!(
        "{label}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The current time as the domain counts it (close to the real time, as Redis TTLs need).
pub fn now() -> bff_domain::Timestamp {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    bff_domain::Timestamp::from_unix_seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

fn docker_available() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return true;
    }
    #[cfg(unix)]
    {
        std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok()
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn skip_or_fail(what: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required under CI but unavailable: {why}");
    }
    report_skip(what, why);
}

/// Prints `NOTE <test>: <text>` straight to the process's stderr, past the harness's output
/// capture (for something odd that did not fail the test, such as a retried start).
pub fn report_note(text: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(std::io::stderr().lock(), "NOTE {test}: {text}");
}

/// Prints `SKIPPED <test>: <what> unavailable: <why>` straight to the process's stderr.
///
/// Not through `eprintln!`: the test harness captures that for passing tests, and a skipped test
/// passes, so the reason would never reach the person running `cargo test`.
pub fn report_skip(what: &str, why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {what} unavailable: {why}"
    );
}

/// A PostgreSQL database for one test, with its own schema.
pub struct PostgresService {
    /// Connection URL.
    pub url: String,
    /// A fresh schema created for this test.
    pub schema: String,
    _container: Option<ContainerAsync<Postgres>>,
}

impl std::fmt::Debug for PostgresService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresService")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL server with a fresh schema, or `None` (after printing why) when there is none
/// outside CI.
pub async fn postgres() -> Option<PostgresService> {
    let (url, container) = if docker_available() {
        let container = Postgres::default()
            .start()
            .await
            .expect("start postgres container");
        let port = container
            .get_host_port_ipv4(5432)
            .await
            .expect("postgres port");
        (
            format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
            Some(container),
        )
    } else if let Ok(url) = std::env::var("BFF_TEST_POSTGRES_URL") {
        (url, None)
    } else {
        skip_or_fail(
            "PostgreSQL",
            "no Docker engine and BFF_TEST_POSTGRES_URL is not set",
        );
        return None;
    };
    let schema = unique("bff_test");
    let pool = sqlx::PgPool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL for tests: {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .expect("create test schema");
    pool.close().await;
    Some(PostgresService {
        url,
        schema,
        _container: container,
    })
}

impl PostgresService {
    /// Drops the schema (best effort).
    pub async fn drop_schema(&self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}

/// A Redis server for one test.
pub struct RedisService {
    /// Connection URL.
    pub url: String,
    /// A key prefix unique to this test.
    pub prefix: String,
    _container: Option<ContainerAsync<Redis>>,
}

impl std::fmt::Debug for RedisService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisService")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A Redis server, or `None` (after printing why) when there is none outside CI.
pub async fn redis() -> Option<RedisService> {
    let (url, container) = if docker_available() {
        let container = Redis::default()
            .start()
            .await
            .expect("start redis container");
        let port = container
            .get_host_port_ipv4(6379)
            .await
            .expect("redis port");
        (format!("redis://127.0.0.1:{port}"), Some(container))
    } else if let Ok(url) = std::env::var("BFF_TEST_REDIS_URL") {
        (url, None)
    } else {
        skip_or_fail(
            "Redis",
            "no Docker engine and BFF_TEST_REDIS_URL is not set",
        );
        return None;
    };
    Some(RedisService {
        url,
        prefix: format!("{}:", unique("bfftest")),
        _container: container,
    })
}
