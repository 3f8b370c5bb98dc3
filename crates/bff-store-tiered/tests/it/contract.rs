//! The shared store contract suite against the tiered session store, twice: over two memory
//! stores (always runs), and over real Postgres (record) and Redis (cache), each rule on a fresh
//! schema and key prefix. Pending logins, replay cache and leases come from the cache tier's
//! store, as `bff-server` wires them.

use std::sync::Arc;

use bff_domain::testkit::store_contract::ContractStores;
use bff_store_memory::MemoryStore;
use bff_store_tiered::TieredSessionStore;
use bff_test_services::now;

use crate::real;

bff_domain::store_contract_tests! {
    #[tokio::test]
    async fn memory_tiers(rule) {
        let record = Arc::new(MemoryStore::new());
        let cache = Arc::new(MemoryStore::new());
        let stores = ContractStores {
            sessions: Arc::new(TieredSessionStore::new(record, cache.clone())),
            pending: cache.clone(),
            replay: cache.clone(),
            locks: cache,
        };
        rule(&stores, now()).await;
    }
}

bff_domain::store_contract_tests! {
    #[tokio::test]
    async fn postgres_and_redis_tiers(rule) {
        let Some(real) = real(None).await else { return };
        let stores = ContractStores {
            sessions: real.tiered.clone(),
            pending: real.redis.clone(),
            replay: real.redis.clone(),
            locks: real.redis.clone(),
        };
        rule(&stores, now()).await;
        real.pg.drop_schema().await;
    }
}
