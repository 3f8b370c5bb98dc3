//! Real PostgreSQL and Redis servers for tests, an HTTPS server under a private CA ([`tls`]),
//! and client key pairs for `private_key_jwt` ([`client_key`]).
//!
//! Order of preference for each service:
//! 1. the server named by `BFF_TEST_POSTGRES_URL` / `BFF_TEST_REDIS_URL` (explicit wins);
//! 2. a container started with `testcontainers` when a Docker engine answers (`DOCKER_HOST` or
//!    `/var/run/docker.sock`);
//! 3. the machine's own server at its default address, `postgres://postgres@127.0.0.1:5432/test`
//!    or `redis://127.0.0.1:6379`, if it answers a quick connect within [`PROBE_TIMEOUT`].
//!
//! When none of these exists the test prints `SKIPPED <test>: ...` saying what was tried
//! (uncaptured, so plain `cargo test` shows it), except when `CI` is set: then it panics, so CI
//! never passes by skipping. An explicit URL or a started container that then fails to connect
//! always panics: that is a broken setup, not a missing service.
//!
//! Each PostgreSQL user gets a fresh schema ([`PostgresService::schema`]) so tests sharing a server
//! never see each other's rows; Redis users get a unique key prefix.

#![allow(clippy::panic, clippy::expect_used)] // test support: failing loudly is the point

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::redis::Redis;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

pub mod client_key;
pub mod tls;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call, and across runs: process ids are reused, and a run
/// that panicked leaves its schema behind, so the start time takes part too.
pub fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{label}_{}_{nanos}_{}",
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

/// Whether a Docker engine is there to start containers: `DOCKER_HOST` is set, or
/// `/var/run/docker.sock` accepts a connection.
pub fn docker_available() -> bool {
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

/// The PostgreSQL tried when neither `BFF_TEST_POSTGRES_URL` nor a Docker engine is there.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The Redis tried when neither `BFF_TEST_REDIS_URL` nor a Docker engine is there.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// `DEFAULT_REDIS_URL`'s address.
const DEFAULT_REDIS_ADDRESS: &str = "127.0.0.1:6379";
/// How long a server at a default address has to answer before the test skips.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The value of a `BFF_TEST_*_URL` variable, if set and not empty.
fn explicit_url(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|url| !url.is_empty())
}

/// A PostgreSQL server with a fresh schema, or `None` (after printing why) when there is none
/// outside CI.
pub async fn postgres() -> Option<PostgresService> {
    let (url, container) = if let Some(url) = explicit_url("BFF_TEST_POSTGRES_URL") {
        (url, None)
    } else if docker_available() {
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
    } else {
        if let Err(why) = probe_postgres(DEFAULT_POSTGRES_URL).await {
            skip_or_fail(
                "PostgreSQL",
                &format!(
                    "no Docker engine, BFF_TEST_POSTGRES_URL is not set, and \
                     {DEFAULT_POSTGRES_URL} was not usable: {why}"
                ),
            );
            return None;
        }
        (DEFAULT_POSTGRES_URL.to_owned(), None)
    };
    let schema = unique("bff_test");
    // The URL is not in the message: an explicit one may carry a password.
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

/// Opens and closes one connection to `url` within [`PROBE_TIMEOUT`] (a pool would retry a
/// refused connection until its timeout and hide why).
async fn probe_postgres(url: &str) -> Result<(), String> {
    use sqlx::Connection as _;

    match tokio::time::timeout(PROBE_TIMEOUT, sqlx::PgConnection::connect(url)).await {
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
    }
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
    let (url, container) = if let Some(url) = explicit_url("BFF_TEST_REDIS_URL") {
        (url, None)
    } else if docker_available() {
        let container = Redis::default()
            .start()
            .await
            .expect("start redis container");
        let port = container
            .get_host_port_ipv4(6379)
            .await
            .expect("redis port");
        (format!("redis://127.0.0.1:{port}"), Some(container))
    } else {
        if let Err(why) = ping_redis(DEFAULT_REDIS_ADDRESS).await {
            skip_or_fail(
                "Redis",
                &format!(
                    "no Docker engine, BFF_TEST_REDIS_URL is not set, and {DEFAULT_REDIS_URL} \
                     was not usable: {why}"
                ),
            );
            return None;
        }
        (DEFAULT_REDIS_URL.to_owned(), None)
    };
    Some(RedisService {
        url,
        prefix: format!("{}:", unique("bfftest")),
        _container: container,
    })
}

/// Sends `PING` to the Redis at `address` and expects `+PONG` within [`PROBE_TIMEOUT`] (a
/// server that wants a password answers `-NOAUTH` and is not usable without a URL).
async fn ping_redis(address: &str) -> Result<(), String> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut reply = String::new();
        // One short line is all a Redis sends; whatever else answers gets 512 bytes.
        BufReader::new(stream.take(512))
            .read_line(&mut reply)
            .await?;
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout(PROBE_TIMEOUT, exchange).await {
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(reply)) if reply.trim_end() == "+PONG" => Ok(()),
        Ok(Ok(reply)) => Err(format!("PING was answered with {:?}", reply.trim_end())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::ping_redis;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// A loopback server that reads the request and answers `reply`.
    async fn answering(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 6];
            socket.read_exact(&mut request).await.expect("request");
            assert_eq!(&request, b"PING\r\n");
            socket.write_all(reply).await.expect("reply");
            // Keep the socket open, as a live server would.
            let _ = socket.read(&mut [0u8; 1]).await;
        });
        address
    }

    #[tokio::test]
    async fn a_redis_that_pongs_is_found() {
        let address = answering(b"+PONG\r\n").await;
        assert_eq!(ping_redis(&address).await, Ok(()));
    }

    #[tokio::test]
    async fn a_redis_that_wants_a_password_is_not_used() {
        let address = answering(b"-NOAUTH Authentication required.\r\n").await;
        let why = ping_redis(&address).await.unwrap_err();
        assert!(why.contains("NOAUTH"), "{why}");
    }

    #[tokio::test]
    async fn something_else_on_the_port_is_not_used() {
        let address = answering(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        assert!(ping_redis(&address).await.is_err());
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_quickly() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        drop(listener);
        let started = std::time::Instant::now();
        assert!(ping_redis(&address).await.is_err());
        assert!(started.elapsed() < super::PROBE_TIMEOUT);
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.expect("accept");
            std::future::pending::<()>().await;
        });
        let why = ping_redis(&address).await.unwrap_err();
        assert!(why.contains("no answer"), "{why}");
    }
}
