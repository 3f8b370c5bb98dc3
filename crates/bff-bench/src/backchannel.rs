//! `bench backchannel`: back-channel logout by `sub` of one user among many stored sessions, on
//! the memory, Postgres, Redis and tiered (Postgres + Redis) stores: wall time, store round
//! trips, and a check that exactly that user's sessions ended.
//!
//! `cargo xtask bench backchannel [--total 1000000] [--users 10000,10]`. Each store holds `total`
//! sessions; each listed user (issuer, `target-N` for `N` sessions) holds that many of them, the
//! rest belong to 100,000 other users. The logout runs through the use case
//! (`Bff::backchannel_logout`) with a logout token that the testkit's `FakeProvider` validates
//! (`sub`, no `sid`, so the use case looks the sessions up with `find_by_subject`); replay cache,
//! locks and pending logins are the testkit's in-process fakes, so every counted round trip is
//! the session store's. The smaller users are logged out first, so each run shows what the cost
//! follows: that user's sessions, or all of them. For comparison, a twin of each user (`direct-N`)
//! is ended through the store's `delete_by_subject`, one port call, which the use case does not
//! use (it looks the sessions up and deletes them one by one, checking each one's provider).
//!
//! Round trips: Postgres statements are the session-store calls on the Postgres adapter, counted
//! by a wrapper around it (each of its methods is one statement); Redis commands come from `INFO
//! commandstats` after `CONFIG RESETSTAT`. Needs PostgreSQL and Redis at `BFF_TEST_POSTGRES_URL` /
//! `BFF_TEST_REDIS_URL`; works in its own Postgres schema (dropped afterwards) and Redis database
//! 15 (flushed before and after).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bff_domain::ports::{LoginRef, SessionStore, StoreError};
use bff_domain::testkit::store_contract::sample_session;
use bff_domain::testkit::{FakeCipher, FakeProvider, FakeStores, FixedClock, SeededRandom};
use bff_domain::{
    Bff, BffPolicy, BffPorts, ProviderId, Providers, RenewalAlias, Session, SessionKey,
    SessionLifetime, Timestamp,
};
use bff_store_memory::MemoryStore;
use bff_store_postgres::{PostgresConfig, PostgresStore};
use bff_store_redis::{RedisConfig, RedisStore};
use bff_store_tiered::TieredSessionStore;
use futures_util::stream::{self, StreamExt};
use serde_json::json;

use crate::stores::{bench_key, flush, now};

const ISSUER: &str = "https://bench.example";
/// `sample_session`'s provider id: the logout token's audience.
const PROVIDER: &str = "contract";
/// The sessions that are not a listed user's belong to this many users.
const OTHER_USERS: u64 = 100_000;
/// Sessions outside the logged-out users checked to be still there after each logout.
const SAMPLE: u64 = 1_000;

/// A listed user: `sessions` of them, ended through the use case (`target-N`) or, for
/// comparison, through the store's own `delete_by_subject` in one call (`direct-N`).
struct User {
    subject: String,
    sessions: u64,
    range: std::ops::Range<u64>,
    through_use_case: bool,
}

/// Session `i`: `subject` for a listed user's session, else one of the other users'.
fn session(i: u64, subject: Option<&str>, t: Timestamp) -> Session {
    let subject = subject.map_or_else(|| format!("user-{}", i % OTHER_USERS), str::to_owned);
    let mut s = sample_session(t, ISSUER, &subject, None);
    s.key = bench_key(i);
    s.tokens.ciphertext = vec![7u8; 600];
    s.idle_expires_at = t.plus(Duration::from_secs(7200));
    s.absolute_expires_at = t.plus(Duration::from_secs(7200));
    s
}

/// Which sessions are whose: each listed user holds its `range`, the rest start at `others`.
struct Layout {
    users: Vec<User>,
    others: u64,
    total: u64,
}

impl Layout {
    fn new(mut users: Vec<u64>, total: u64) -> Self {
        users.sort_unstable();
        let mut start = 0;
        let users: Vec<User> = users
            .into_iter()
            .flat_map(|n| [(n, true), (n, false)])
            .map(|(n, through_use_case)| {
                let range = start..start + n;
                start += n;
                let via = if through_use_case { "target" } else { "direct" };
                User {
                    subject: format!("{via}-{n}"),
                    sessions: n,
                    range,
                    through_use_case,
                }
            })
            .collect();
        assert!(
            start <= total,
            "--total must hold the listed users' sessions"
        );
        Self {
            users,
            others: start,
            total,
        }
    }

    fn subject_of(&self, i: u64) -> Option<String> {
        self.users
            .iter()
            .find(|u| u.range.contains(&i))
            .map(|u| u.subject.clone())
    }

    /// Sessions of other users, spread over the whole stored set.
    fn sample(&self) -> Vec<u64> {
        let span = self.total - self.others;
        (0..SAMPLE.min(span))
            .map(|n| self.others + (n * 7_919 + 13) % span)
            .collect()
    }
}

/// Counts the calls made to a session store: on the Postgres adapter every call is one SQL
/// statement, so this is its round-trip count without `pg_stat_statements`.
struct Counting {
    inner: Arc<dyn SessionStore>,
    calls: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn SessionStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicU64::new(0),
        })
    }

    fn take(&self) -> u64 {
        self.calls.swap(0, Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl SessionStore for Counting {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.count();
        self.inner.create(session).await
    }
    async fn get(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.count();
        self.inner.get(key, now).await
    }
    async fn update(&self, session: &Session, now: Timestamp) -> Result<u64, StoreError> {
        self.count();
        self.inner.update(session, now).await
    }
    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_at: Timestamp,
        idle_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.count();
        self.inner
            .touch(key, last_seen_at, idle_expires_at, now)
            .await
    }
    async fn find_by_connection(
        &self,
        issuer: &str,
        login: LoginRef<'_>,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.count();
        self.inner.find_by_connection(issuer, login, now).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.count();
        self.inner.delete(key).await
    }
    async fn delete_many(&self, keys: &[SessionKey]) -> Result<u64, StoreError> {
        // The adapter's one statement per batch of keys.
        let statements = keys.len().div_ceil(bff_store_postgres::DELETE_MANY_BATCH);
        self.calls.fetch_add(statements as u64, Ordering::SeqCst);
        self.inner.delete_many(keys).await
    }
    async fn find_by_provider_session(
        &self,
        issuer: &str,
        sid: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.count();
        self.inner.find_by_provider_session(issuer, sid, now).await
    }
    async fn find_by_subject(
        &self,
        issuer: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.count();
        self.inner.find_by_subject(issuer, subject, now).await
    }
    async fn delete_by_provider_session(&self, issuer: &str, sid: &str) -> Result<u64, StoreError> {
        self.count();
        self.inner.delete_by_provider_session(issuer, sid).await
    }
    async fn delete_by_subject(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        self.count();
        self.inner.delete_by_subject(issuer, subject).await
    }
    async fn put_renewal(
        &self,
        old: &SessionKey,
        alias: &RenewalAlias,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner.put_renewal(old, alias, now).await
    }
    async fn get_renewal(
        &self,
        old: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<RenewalAlias>, StoreError> {
        self.count();
        self.inner.get_renewal(old, now).await
    }
    async fn sweep_expired(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        self.count();
        self.inner.sweep_expired(now, batch).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.count();
        self.inner.check().await
    }
}

/// A BFF over `sessions`, with the testkit's provider for `ISSUER` and in-process fakes for
/// every other port.
fn bff(sessions: Arc<dyn SessionStore>, t: Timestamp) -> Bff {
    let fakes = Arc::new(FakeStores::default());
    let providers = Providers::new(
        vec![Arc::new(FakeProvider::new(PROVIDER, ISSUER))],
        ProviderId::parse(PROVIDER).unwrap(),
    )
    .unwrap();
    Bff::new(
        BffPorts {
            sessions,
            pending_logins: fakes.clone(),
            locks: fakes.clone(),
            replay: fakes,
            cipher: Arc::new(FakeCipher),
            clock: Arc::new(FixedClock::at(t.unix_seconds())),
            random: Arc::new(SeededRandom::new(8)),
        },
        providers,
        BffPolicy {
            lifetime: SessionLifetime::default(),
            pending_login_ttl: Duration::from_secs(300),
            callback_url: "https://app.example/bff/callback".into(),
            app_redirect_url: "https://app.example/".into(),
            refresh_margin: Duration::from_secs(30),
            fetch_userinfo: false,
            renewal: None,
            client_binding: Default::default(),
        },
    )
}

/// A logout token for every session of `subject` (no `sid`), as the provider would post it.
fn logout_token(subject: &str, t: Timestamp) -> String {
    FakeProvider::logout_token(&json!({
        "iss": ISSUER, "aud": PROVIDER, "jti": format!("bench-{subject}"),
        "iat": t.unix_seconds() - 5, "exp": t.unix_seconds() + 120,
        "sub": subject,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }))
}

async fn fill_via_port(
    store: Arc<dyn SessionStore>,
    layout: &Layout,
    range: std::ops::Range<u64>,
    t: Timestamp,
) {
    stream::iter(range)
        .for_each_concurrent(64, |i| {
            let store = store.clone();
            let subject = layout.subject_of(i);
            async move {
                store
                    .create(&session(i, subject.as_deref(), t))
                    .await
                    .unwrap();
            }
        })
        .await;
}

/// Server-side insert of sessions `range`, all of `subject` or (`None`) of the other users: the
/// rows `session` describes.
async fn fill_postgres(
    pool: &sqlx::PgPool,
    schema: &str,
    range: std::ops::Range<u64>,
    subject: Option<&str>,
    t: Timestamp,
) {
    let subject_sql = match subject {
        Some(_) => "$5::text".to_owned(),
        None => format!("'user-' || (i % {OTHER_USERS})"),
    };
    let sql = format!(
        "INSERT INTO {schema}.bff_sessions (session_key, provider, issuer, subject, provider_session_id, claims, \
         created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_token_expires_at, version, key_id, sealed_tokens) \
         SELECT encode(sha256(convert_to('bench-' || i, 'UTF8')), 'hex'), '{PROVIDER}', '{ISSUER}', \
                {subject_sql}, NULL, '{{\"sub\":\"bench\",\"name\":\"Bench\"}}'::jsonb, \
                $1, $1, $2, $2, $1 + 300, 0, 'k1', decode(repeat('07', 600), 'hex') \
         FROM generate_series($3::bigint, $4::bigint - 1) AS i"
    );
    sqlx::query(&sql)
        .bind(t.unix_seconds())
        .bind(t.unix_seconds() + 7200)
        .bind(i64::try_from(range.start).unwrap())
        .bind(i64::try_from(range.end).unwrap())
        .bind(subject.unwrap_or_default())
        .execute(pool)
        .await
        .unwrap();
}

async fn fill_postgres_layout(
    pool: &sqlx::PgPool,
    schema: &str,
    layout: &Layout,
    with_others: bool,
    t: Timestamp,
) {
    for user in &layout.users {
        fill_postgres(pool, schema, user.range.clone(), Some(&user.subject), t).await;
    }
    if with_others {
        fill_postgres(pool, schema, layout.others..layout.total, None, t).await;
    }
    // Steady state, as a long-running table is (see the store benchmark).
    sqlx::query(&format!("VACUUM ANALYZE {schema}.bff_sessions"))
        .execute(pool)
        .await
        .unwrap();
}

/// How the stored sessions are counted after a logout.
enum Census<'a> {
    /// Every key of the layout looked up through the store (memory: no other way to count).
    Lookup(&'a dyn SessionStore),
    /// `count(*)` of the schema's table.
    Postgres(&'a sqlx::PgPool, &'a str),
    /// Session keys (`bff:s:*`) in Redis database 15, by `SCAN`.
    Redis,
}

async fn stored_sessions(
    census: &Census<'_>,
    raw: &mut redis::aio::MultiplexedConnection,
    layout: &Layout,
    t: Timestamp,
) -> u64 {
    match census {
        Census::Lookup(store) => {
            let found = stream::iter(0..layout.total)
                .map(|i| async move { store.get(&bench_key(i), t).await.unwrap().is_some() })
                .buffer_unordered(64)
                .filter(|found| std::future::ready(*found))
                .count()
                .await;
            found as u64
        }
        Census::Postgres(pool, schema) => {
            let (n,): (i64,) =
                sqlx::query_as(&format!("SELECT count(*) FROM {schema}.bff_sessions"))
                    .fetch_one(*pool)
                    .await
                    .unwrap();
            u64::try_from(n).unwrap()
        }
        Census::Redis => {
            let mut cursor: u64 = 0;
            let mut n = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("bff:s:*")
                    .arg("COUNT")
                    .arg(10_000)
                    .query_async(raw)
                    .await
                    .unwrap();
                n += keys.len() as u64;
                cursor = next;
                if cursor == 0 {
                    return n;
                }
            }
        }
    }
}

/// Redis commands since the last `CONFIG RESETSTAT`, by command (`INFO commandstats`), without
/// the benchmark's own `CONFIG`/`INFO`. Commands a script runs count as well as its `EVALSHA`.
async fn redis_commands(raw: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    let mut counts: Vec<(String, u64)> = stats
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| !name.starts_with("config") && name != "info")
        .collect();
    counts.sort();
    counts
}

async fn reset_redis_stats(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(raw)
        .await
        .unwrap();
}

/// One store's run: ends each listed user's sessions in turn (smallest first; through the use
/// case, then the same count through the store method), timing it, counting round trips and
/// checking what is left.
struct Run<'a> {
    name: &'a str,
    bff: Bff,
    /// The store the BFF uses: the comparison rows call its `delete_by_subject` directly.
    sessions: Arc<dyn SessionStore>,
    /// The store the counts and checks read (the tiered store's record for `census`).
    check: &'a dyn SessionStore,
    census: Vec<Census<'a>>,
    postgres_calls: Option<&'a Counting>,
    redis: bool,
}

async fn logout_users(
    run: Run<'_>,
    layout: &Layout,
    raw: &mut redis::aio::MultiplexedConnection,
    t: Timestamp,
) {
    let mut expected = layout.total;
    for user in &layout.users {
        let (subject, n) = (&user.subject, user.sessions);
        let token = logout_token(subject, t);
        if let Some(counter) = run.postgres_calls {
            counter.take();
        }
        if run.redis {
            reset_redis_stats(raw).await;
        }
        let started = Instant::now();
        let ended = if user.through_use_case {
            run.bff
                .backchannel_logout(&token)
                .await
                .unwrap()
                .sessions_ended
        } else {
            run.sessions
                .delete_by_subject(ISSUER, subject)
                .await
                .unwrap()
        };
        let elapsed = started.elapsed();
        let statements = run.postgres_calls.map(Counting::take);
        let commands = if run.redis {
            redis_commands(raw).await
        } else {
            Vec::new()
        };
        // Exactly that user's sessions ended, every other one is still there.
        assert_eq!(ended, n, "{}: sessions of {subject} ended", run.name);
        expected -= n;
        assert!(
            run.check
                .find_by_subject(ISSUER, subject, t)
                .await
                .unwrap()
                .is_empty(),
            "{}: {subject} still has sessions",
            run.name
        );
        for i in layout.sample() {
            assert!(
                run.check.get(&bench_key(i), t).await.unwrap().is_some(),
                "{}: session {i} of another user is gone",
                run.name
            );
        }
        for census in &run.census {
            let left = stored_sessions(census, raw, layout, t).await;
            assert_eq!(left, expected, "{}: sessions left", run.name);
        }
        let redis_total: u64 = commands.iter().map(|(_, c)| c).sum();
        let count = |name: &str| {
            commands
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, c)| c)
                .sum::<u64>()
        };
        // Requests: scripts, index reads and session reads (`HMGET`). The only scripts run
        // here are deletes, and each runs one `HMGET` of its own (the index sets to leave),
        // which `commandstats` counts with the reads: one per script is not a request. They
        // were one round trip each until the adapter pipelined reads and deletes of many
        // sessions (500 per round trip); `commandstats` cannot tell, so this counts requests.
        let scripts = count("evalsha") + count("eval");
        let redis_round_trips =
            scripts + count("smembers") + count("hmget").saturating_sub(scripts);
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} |",
            run.name,
            if user.through_use_case {
                "use case"
            } else {
                "`delete_by_subject`"
            },
            layout.total,
            n,
            elapsed.as_secs_f64() * 1000.0,
            statements.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            if run.redis {
                redis_round_trips.to_string()
            } else {
                "-".into()
            },
            if run.redis {
                let detail: Vec<String> =
                    commands.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("{redis_total} ({})", detail.join(", "))
            } else {
                "-".into()
            },
        );
    }
}

/// Runs `bench backchannel` with the arguments after `backchannel`.
pub(crate) fn run(args: &[String]) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure(args));
}

async fn measure(args: &[String]) {
    let mut total = 1_000_000u64;
    let mut users = vec![10_000u64, 10];
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--total" => total = iter.next().unwrap().parse().unwrap(),
            "--users" | "--user" => {
                users = iter
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|s| s.parse().unwrap())
                    .collect();
            }
            other => {
                panic!("unknown argument {other}; usage: backchannel [--total N] [--users N,M]")
            }
        }
    }
    assert!(total <= 10_000_000, "bounded: at most 10M sessions");
    let layout = Layout::new(users, total);
    let t = now();
    let pg_url = std::env::var("BFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis_base =
        std::env::var("BFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis_url = format!("{}/15", redis_base.trim_end_matches('/'));

    let schema = format!("bff_bench_bc_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&pg_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let mut pg_config = PostgresConfig::for_url(&pg_url);
    pg_config.schema = Some(schema.clone());
    let postgres = Arc::new(PostgresStore::connect_lazy(&pg_config).unwrap());
    postgres.migrate().await.unwrap();
    let mut redis_config = RedisConfig::for_url(&redis_url);
    redis_config.pool_size = 64;
    redis_config.timeout_ms = 5_000;
    assert_eq!(
        redis_config.key_prefix, "bff:",
        "the census counts bff:s:* keys"
    );
    let redis = Arc::new(RedisStore::connect_lazy(&redis_config).unwrap());
    let mut raw = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    flush(&mut raw).await;

    println!(
        "| store | through | stored sessions | user's sessions | wall ms | Postgres statements | Redis requests | Redis commands (scripts' inner calls included) |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |");

    {
        let started = Instant::now();
        let memory = Arc::new(MemoryStore::new());
        fill_via_port(memory.clone(), &layout, 0..total, t).await;
        eprintln!("memory: filled {total} sessions in {:?}", started.elapsed());
        let run = Run {
            name: "memory",
            bff: bff(memory.clone(), t),
            sessions: memory.clone(),
            check: memory.as_ref(),
            census: vec![Census::Lookup(memory.as_ref())],
            postgres_calls: None,
            redis: false,
        };
        logout_users(run, &layout, &mut raw, t).await;
    }

    let started = Instant::now();
    fill_postgres_layout(&admin, &schema, &layout, true, t).await;
    eprintln!(
        "postgres: filled {total} sessions in {:?}",
        started.elapsed()
    );
    let counted_postgres = Counting::new(postgres.clone());
    logout_users(
        Run {
            name: "postgres",
            bff: bff(counted_postgres.clone(), t),
            sessions: counted_postgres.clone(),
            check: postgres.as_ref(),
            census: vec![Census::Postgres(&admin, &schema)],
            postgres_calls: Some(&counted_postgres),
            redis: false,
        },
        &layout,
        &mut raw,
        t,
    )
    .await;

    let started = Instant::now();
    fill_via_port(redis.clone(), &layout, 0..total, t).await;
    eprintln!("redis: filled {total} sessions in {:?}", started.elapsed());
    logout_users(
        Run {
            name: "redis",
            bff: bff(redis.clone(), t),
            sessions: redis.clone(),
            check: redis.as_ref(),
            census: vec![Census::Redis],
            postgres_calls: None,
            redis: true,
        },
        &layout,
        &mut raw,
        t,
    )
    .await;

    // Tiered: Postgres and the Redis cache both hold every session again (the listed users'
    // sessions put back in both), as after each session's first read through the cache.
    let started = Instant::now();
    fill_postgres_layout(&admin, &schema, &layout, false, t).await;
    fill_via_port(redis.clone(), &layout, 0..layout.others, t).await;
    eprintln!(
        "tiered: refilled the listed users' sessions in {:?}",
        started.elapsed()
    );
    let counted_record = Counting::new(postgres.clone());
    let tiered = Arc::new(TieredSessionStore::new(
        counted_record.clone(),
        redis.clone(),
    ));
    logout_users(
        Run {
            name: "postgres+redis",
            bff: bff(tiered.clone(), t),
            sessions: tiered.clone(),
            check: tiered.as_ref(),
            census: vec![Census::Postgres(&admin, &schema), Census::Redis],
            postgres_calls: Some(&counted_record),
            redis: true,
        },
        &layout,
        &mut raw,
        t,
    )
    .await;

    flush(&mut raw).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
