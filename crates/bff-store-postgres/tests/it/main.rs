//! The PostgreSQL adapter against a real server: the shared contract suite (`contract`, one test
//! per rule), plus what is specific to it (hashed keys, bounded sweeps, migrations, outages).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bff_domain::ports::{SessionStore, StoreError};
use bff_domain::testkit::store_contract::sample_session;
use bff_store_postgres::{PostgresConfig, PostgresStore};
use sqlx::Row;

use bff_test_services::now;

mod contract;

async fn store() -> Option<(PostgresStore, bff_test_services::PostgresService)> {
    let service = bff_test_services::postgres().await?;
    let mut config = PostgresConfig::for_url(&service.url);
    config.schema = Some(service.schema.clone());
    config.max_connections = 20;
    // Generous, so a busy machine does not fail the contract's 200 concurrent calls; the timeout
    // itself is tested against an unreachable database below.
    config.acquire_timeout_ms = 10_000;
    let store = PostgresStore::connect_lazy(&config).unwrap();
    store.migrate().await.unwrap();
    Some((store, service))
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let Some((store, service)) = store().await else {
        return;
    };
    // `store()` migrated once already; a second run (another node starting) changes nothing.
    store.migrate().await.unwrap();
    let session = sample_session(now(), "https://a.example", "alice", None);
    store.create(&session).await.unwrap();
    store.migrate().await.unwrap();
    assert!(
        store.get(&session.key, now()).await.unwrap().is_some(),
        "a repeated migration lost a row"
    );
    service.drop_schema().await;
}

#[tokio::test]
async fn rows_are_keyed_by_the_hash_and_hold_only_sealed_tokens() {
    let Some((store, service)) = store().await else {
        return;
    };
    let session = sample_session(now(), "https://a.example", "alice", Some("sid"));
    store.create(&session).await.unwrap();
    let row = sqlx::query("SELECT session_key, sealed_tokens, key_id FROM bff_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let key: String = row.get("session_key");
    assert_eq!(key, session.key.as_str());
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    let blob: Vec<u8> = row.get("sealed_tokens");
    assert_eq!(blob, session.tokens.ciphertext);
    // The schema refuses anything but a 64-hex key.
    let bad = sqlx::query("INSERT INTO bff_sessions (session_key, provider, issuer, subject, claims, created_at, last_seen_at, idle_expires_at, absolute_expires_at, version, key_id, sealed_tokens) VALUES ('raw-session-id', 'p', 'i', 's', '{}', 0, 0, 0, 0, 0, 'k', '')")
        .execute(store.pool())
        .await;
    assert!(bad.is_err(), "a raw session id was accepted as a key");
    service.drop_schema().await;
}

#[tokio::test]
async fn sweeps_delete_in_bounded_batches() {
    let Some((store, service)) = store().await else {
        return;
    };
    let t = now();
    for _ in 0..25 {
        let mut s = sample_session(t, "https://a.example", "dead", None);
        s.idle_expires_at = t.plus(Duration::from_secs(1));
        store.create(&s).await.unwrap();
    }
    let live = sample_session(t, "https://a.example", "live", None);
    store.create(&live).await.unwrap();
    let later = t.plus(Duration::from_secs(5));
    let mut batches = Vec::new();
    loop {
        let n = store.sweep_expired(later, 10).await.unwrap();
        batches.push(n);
        if n < 10 {
            break;
        }
    }
    assert_eq!(batches, vec![10, 10, 5]);
    let count: i64 = sqlx::query("SELECT count(*) AS n FROM bff_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(count, 1, "only the live session remains");
    service.drop_schema().await;
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_within_the_timeout() {
    let mut config = PostgresConfig::for_url("postgres://postgres@127.0.0.1:1/none");
    config.acquire_timeout_ms = 500;
    let store = PostgresStore::connect_lazy(&config).unwrap();
    let started = Instant::now();
    let err = store
        .get(&sample_session(now(), "i", "s", None).key, now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(store.check().await.is_err());
    assert!(!format!("{err}").contains("postgres@"), "{err}");
}
