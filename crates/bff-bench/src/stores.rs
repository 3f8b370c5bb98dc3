//! `bench stores`: p50/p99 of `SessionStore::get` and `update` with 100k and 1M stored
//! sessions, for the memory, Postgres, Redis and tiered (Postgres + Redis) stores.
//!
//! `cargo xtask bench stores [--sizes 100000,1000000] [--samples 5000]`. Needs PostgreSQL and
//! Redis at `BFF_TEST_POSTGRES_URL` / `BFF_TEST_REDIS_URL` (defaults: the local services). It
//! works in its own Postgres schema (dropped afterwards) and Redis database 15 (flushed before and
//! after). One client, sequential operations: these are latencies, not throughput. Beside the
//! times it prints costs that do not drift with the machine: the pages one Postgres lookup
//! touches and Redis's own time per command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bff_domain::ports::SessionStore;
use bff_domain::testkit::store_contract::sample_session;
use bff_domain::{Session, SessionKey, Timestamp};
use bff_store_memory::MemoryStore;
use bff_store_postgres::{PostgresConfig, PostgresStore};
use bff_store_redis::{RedisConfig, RedisStore};
use bff_store_tiered::TieredSessionStore;
use futures_util::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

pub(crate) fn now() -> Timestamp {
    Timestamp::from_unix_seconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

pub(crate) fn bench_key(i: u64) -> SessionKey {
    let hex: String = Sha256::digest(format!("bench-{i}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    SessionKey::from_stored(&hex).unwrap()
}

fn bench_session(i: u64, t: Timestamp) -> Session {
    let mut s = sample_session(
        t,
        "https://bench.example",
        &format!("user-{}", i % 50_000),
        None,
    );
    s.key = bench_key(i);
    s.tokens.ciphertext = vec![7u8; 600]; // about the size of a sealed real token set
    s.idle_expires_at = t.plus(Duration::from_secs(7200));
    s.absolute_expires_at = t.plus(Duration::from_secs(7200));
    s
}

struct Figures {
    get_p50: Duration,
    get_p99: Duration,
    update_p50: Duration,
    update_p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn measure(store: &dyn SessionStore, size: u64, samples: usize, t: Timestamp) -> Figures {
    // A fixed stride walks keys spread over the whole set, the same ones for every store.
    let keys: Vec<SessionKey> = (0..samples as u64)
        .map(|n| bench_key((n * 7_919 + 13) % size))
        .collect();
    // Warm-up (connections, caches), not measured.
    for key in keys.iter().take(200) {
        store.get(key, t).await.unwrap().expect("populated session");
    }
    let mut gets = Vec::with_capacity(samples);
    let mut updates = Vec::with_capacity(samples);
    for key in &keys {
        let started = Instant::now();
        let session = store.get(key, t).await.unwrap().expect("populated session");
        gets.push(started.elapsed());
        let started = Instant::now();
        store.update(&session, t).await.unwrap();
        updates.push(started.elapsed());
    }
    gets.sort();
    updates.sort();
    Figures {
        get_p50: percentile(&gets, 0.5),
        get_p99: percentile(&gets, 0.99),
        update_p50: percentile(&updates, 0.5),
        update_p99: percentile(&updates, 0.99),
    }
}

async fn populate_via_port(store: Arc<dyn SessionStore>, from: u64, to: u64, t: Timestamp) {
    stream::iter(from..to)
        .for_each_concurrent(64, |i| {
            let store = store.clone();
            async move { store.create(&bench_session(i, t)).await.unwrap() }
        })
        .await;
}

/// Server-side bulk insert: the same rows `bench_session` describes, without a million round
/// trips.
async fn populate_postgres(pool: &sqlx::PgPool, schema: &str, from: u64, to: u64, t: Timestamp) {
    let sql = format!(
        "INSERT INTO {schema}.bff_sessions (session_key, provider, issuer, subject, provider_session_id, claims, \
         created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_token_expires_at, version, key_id, sealed_tokens) \
         SELECT encode(sha256(convert_to('bench-' || i, 'UTF8')), 'hex'), 'contract', 'https://bench.example', \
                'user-' || (i % 50000), NULL, '{{\"sub\":\"bench\",\"name\":\"Bench\"}}'::jsonb, \
                $1, $1, $2, $2, $1 + 300, 0, 'k1', decode(repeat('07', 600), 'hex') \
         FROM generate_series($3::bigint, $4::bigint - 1) AS i"
    );
    sqlx::query(&sql)
        .bind(t.unix_seconds())
        .bind(t.unix_seconds() + 7200)
        .bind(i64::try_from(from).unwrap())
        .bind(i64::try_from(to).unwrap())
        .execute(pool)
        .await
        .unwrap();
    // Steady state, as a long-running table is: hint bits set and the visibility map current,
    // so the first read of each fresh row does not pay for writing them.
    sqlx::query(&format!("VACUUM ANALYZE {schema}.bff_sessions"))
        .execute(pool)
        .await
        .unwrap();
}

/// Buffers (index and heap pages) one primary-key lookup touches, from `EXPLAIN (ANALYZE,
/// BUFFERS)`: the lookup's cost in pages, independent of the machine.
async fn postgres_pages_per_lookup(pool: &sqlx::PgPool, schema: &str, size: u64) -> i64 {
    let key = bench_key(size / 2);
    let (plan,): (serde_json::Value,) = sqlx::query_as(&format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM {schema}.bff_sessions WHERE session_key = $1"
    ))
    .bind(key.as_str())
    .fetch_one(pool)
    .await
    .unwrap();
    let node = &plan[0]["Plan"];
    node["Shared Hit Blocks"].as_i64().unwrap_or(0)
        + node["Shared Read Blocks"].as_i64().unwrap_or(0)
}

/// Empties the benchmark's Redis database and waits until Redis has freed the old keys in the
/// background, so freeing a million hashes does not run during the next measurement.
pub(crate) async fn flush(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("FLUSHDB")
        .arg("ASYNC")
        .query_async(raw)
        .await
        .unwrap();
    for _ in 0..600 {
        let memory: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(raw)
            .await
            .unwrap();
        let pending = memory
            .lines()
            .find_map(|l| l.strip_prefix("lazyfree_pending_objects:"))
            .map(str::trim);
        if matches!(pending, Some("0") | None) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("Redis did not finish freeing the flushed database within 120 s");
}

/// `usec_per_call` of `command` in the text of `INFO commandstats`.
fn usec_per_call(stats: &str, command: &str) -> String {
    let prefix = format!("cmdstat_{command}:");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|fields| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
        })
        .unwrap_or("?")
        .to_owned()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn row(store: &str, size: u64, f: &Figures) {
    println!(
        "| {store} | {size} | {} | {} | {} | {} |",
        ms(f.get_p50),
        ms(f.get_p99),
        ms(f.update_p50),
        ms(f.update_p99)
    );
}

/// Runs `bench stores` with the arguments after `stores`.
pub(crate) fn run(args: &[String]) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure_stores(args));
}

async fn measure_stores(args: &[String]) {
    let mut sizes = vec![100_000u64, 1_000_000];
    let mut samples = 5_000usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "stores" => {}
            "--sizes" => {
                sizes = iter
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|s| s.parse().unwrap())
                    .collect()
            }
            "--samples" => samples = iter.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}; usage: stores [--sizes N,M] [--samples N]"),
        }
    }
    sizes.sort();
    let pg_url = std::env::var("BFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis_base =
        std::env::var("BFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis_url = format!("{}/15", redis_base.trim_end_matches('/'));
    let t = now();

    let schema = format!("bff_bench_{}", std::process::id());
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
    let redis = Arc::new(RedisStore::connect_lazy(&redis_config).unwrap());
    let mut raw = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    flush(&mut raw).await;
    let memory = Arc::new(MemoryStore::new());
    let tiered = Arc::new(TieredSessionStore::new(postgres.clone(), redis.clone()));

    println!(
        "| store | stored sessions | get p50 ms | get p99 ms | update p50 ms | update p99 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut populated = 0u64;
    let mut notes = Vec::new();
    for &size in &sizes {
        let started = Instant::now();
        populate_via_port(memory.clone(), populated, size, t).await;
        populate_postgres(&admin, &schema, populated, size, t).await;
        populate_via_port(redis.clone(), populated, size, t).await;
        eprintln!(
            "populated {size} sessions per store in {:?}",
            started.elapsed()
        );
        populated = size;
        row(
            "memory",
            size,
            &measure(memory.as_ref(), size, samples, t).await,
        );
        let pages = postgres_pages_per_lookup(&admin, &schema, size).await;
        row(
            "postgres",
            size,
            &measure(postgres.as_ref(), size, samples, t).await,
        );
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut raw)
            .await
            .unwrap();
        row(
            "redis",
            size,
            &measure(redis.as_ref(), size, samples, t).await,
        );
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut raw)
            .await
            .unwrap();
        // Size-independent costs, printed after the table: pages per Postgres lookup, and Redis's
        // own time per command (no network, no client).
        notes.push(format!(
            "{size} sessions: a Postgres lookup touches {pages} pages (index + heap); Redis spends \
             {} µs per HMGET (get) and {} µs per update script (EVALSHA)",
            usec_per_call(&stats, "hmget"),
            usec_per_call(&stats, "evalsha"),
        ));
        // The tiered store reads through Redis; its updates go to Postgres first. Versions in the
        // two tiers diverged during the single-store runs above, so re-align the cache first.
        flush(&mut raw).await;
        row(
            "postgres+redis (cold cache)",
            size,
            &measure(tiered.as_ref(), size, samples, t).await,
        );
        row(
            "postgres+redis (warm cache)",
            size,
            &measure(tiered.as_ref(), size, samples, t).await,
        );
        // Refill Redis from scratch for the next, larger round.
        flush(&mut raw).await;
        populate_via_port(redis.clone(), 0, size, t).await;
    }
    println!();
    for note in notes {
        println!("- {note}");
    }
    flush(&mut raw).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
