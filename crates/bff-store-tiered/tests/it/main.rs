//! The tiered store: the shared contract suite over memory tiers and over real Postgres + Redis
//! (`contract`, one test per rule each), plus cache behaviour, concurrency and a cache outage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bff_domain::Sealed;
use bff_domain::ports::{SessionStore, StoreError};
use bff_domain::testkit::store_contract::sample_session;
use bff_store_memory::MemoryStore;
use bff_store_postgres::{PostgresConfig, PostgresStore};
use bff_store_redis::{RedisConfig, RedisStore};
use bff_store_tiered::TieredSessionStore;

use bff_test_services::now;

mod contract;

struct Real {
    tiered: Arc<TieredSessionStore>,
    postgres: Arc<PostgresStore>,
    redis: Arc<RedisStore>,
    pg: bff_test_services::PostgresService,
}

async fn real(redis_url: Option<&str>) -> Option<Real> {
    let pg = bff_test_services::postgres().await?;
    let redis = bff_test_services::redis().await?;
    let mut pg_config = PostgresConfig::for_url(&pg.url);
    pg_config.schema = Some(pg.schema.clone());
    // Room for the contract's 200 concurrent calls on a busy machine.
    pg_config.max_connections = 20;
    pg_config.acquire_timeout_ms = 10_000;
    let postgres = Arc::new(PostgresStore::connect_lazy(&pg_config).unwrap());
    postgres.migrate().await.unwrap();
    let mut redis_config = RedisConfig::for_url(redis_url.unwrap_or(&redis.url));
    redis_config.key_prefix = redis.prefix.clone();
    // Healthy tiers get room on a busy machine; the outage test builds its own dead cache.
    redis_config.timeout_ms = 5_000;
    redis_config.pool_size = 32;
    let redis = Arc::new(RedisStore::connect_lazy(&redis_config).unwrap());
    Some(Real {
        tiered: Arc::new(TieredSessionStore::new(postgres.clone(), redis.clone())),
        postgres,
        redis,
        pg,
    })
}

#[tokio::test]
async fn a_cache_miss_refills_from_the_record_and_writes_reach_both() {
    let record = Arc::new(MemoryStore::new());
    let cache = Arc::new(MemoryStore::new());
    let tiered = TieredSessionStore::new(record.clone(), cache.clone());
    let t = now();
    let session = sample_session(t, "https://a.example", "alice", None);
    tiered.create(&session).await.unwrap();
    // Cache lost (eviction, restart): the record still answers and the cache is refilled.
    cache.delete(&session.key).await.unwrap();
    assert!(tiered.get(&session.key, t).await.unwrap().is_some());
    assert!(
        cache.get(&session.key, t).await.unwrap().is_some(),
        "miss did not refill the cache"
    );
    // An update lands in both tiers with the same version.
    let mut changed = session.clone();
    changed.tokens.ciphertext = vec![7; 8];
    assert_eq!(tiered.update(&changed, t).await.unwrap(), 1);
    for tier in [&record, &cache] {
        let stored = tier.get(&session.key, t).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.tokens.ciphertext), (1, vec![7; 8]));
    }
    // A stale cached copy (another version) is dropped on the next write, never served after it.
    let mut stale = session.clone();
    stale.version = 0;
    cache.delete(&session.key).await.unwrap();
    cache.create(&stale).await.unwrap();
    let mut newer = changed.clone();
    newer.version = 1;
    newer.tokens.ciphertext = vec![8; 8];
    assert_eq!(tiered.update(&newer, t).await.unwrap(), 2);
    let served = tiered.get(&session.key, t).await.unwrap().unwrap();
    assert_eq!(served.tokens.ciphertext, vec![8; 8]);
}

#[tokio::test]
async fn concurrent_touches_never_lose_a_token_update() {
    let Some(real) = real(None).await else { return };
    let t = now();
    let session = sample_session(t, "https://a.example", "alice", None);
    real.tiered.create(&session).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let store = real.tiered.clone();
        let key = session.key.clone();
        tasks.push(tokio::spawn(async move {
            let seen = t.plus(Duration::from_secs(i));
            store
                .touch(&key, seen, seen.plus(Duration::from_secs(600)), t)
                .await
                .unwrap();
        }));
        if i == 100 {
            let store = real.tiered.clone();
            let mut updated = session.clone();
            updated.tokens = Sealed {
                key_id: "k2".into(),
                ciphertext: vec![42; 16],
            };
            tasks.push(tokio::spawn(async move {
                assert_eq!(store.update(&updated, t).await.unwrap(), 1);
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    for tier in [
        real.tiered.clone() as Arc<dyn SessionStore>,
        real.postgres.clone(),
        real.redis.clone(),
    ] {
        let stored = tier.get(&session.key, t).await.unwrap().unwrap();
        assert_eq!(
            stored.tokens.ciphertext,
            vec![42; 16],
            "the token update was lost"
        );
        assert_eq!(stored.version, 1);
    }
    real.pg.drop_schema().await;
}

#[tokio::test]
async fn a_cache_outage_is_unavailable_and_deletes_nothing() {
    // Write through a healthy cache first, then swap in a dead one over the same record.
    let Some(real) = real(None).await else { return };
    let t = now();
    let session = sample_session(t, "https://a.example", "alice", None);
    real.tiered.create(&session).await.unwrap();

    let mut dead_config = RedisConfig::for_url("redis://127.0.0.1:1");
    dead_config.timeout_ms = 200;
    let dead = Arc::new(RedisStore::connect_lazy(&dead_config).unwrap());
    let broken = TieredSessionStore::new(real.postgres.clone(), dead);
    for result in [
        broken.get(&session.key, t).await.map(|_| ()),
        broken
            .touch(&session.key, t, t.plus(Duration::from_secs(700)), t)
            .await,
        broken.check().await,
    ] {
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert!(
        real.postgres.get(&session.key, t).await.unwrap().is_some(),
        "the record lost the session during a cache outage"
    );
    // The healthy pair still serves it.
    assert!(real.tiered.get(&session.key, t).await.unwrap().is_some());
    real.pg.drop_schema().await;
}
