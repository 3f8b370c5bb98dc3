//! The shared store contract suite against the memory store: every rule on a fresh store, run
//! without an async runtime (the memory store needs none).

use std::sync::Arc;

use bff_domain::Timestamp;
use bff_domain::testkit::store_contract::ContractStores;
use bff_store_memory::MemoryStore;
use futures_executor::block_on;

fn fresh() -> ContractStores {
    let store = Arc::new(MemoryStore::new());
    ContractStores {
        sessions: store.clone(),
        pending: store.clone(),
        replay: store.clone(),
        locks: store,
    }
}

bff_domain::store_contract_tests! {
    #[test]
    fn memory_store(rule) {
        block_on(rule(&fresh(), Timestamp::from_unix_seconds(1_800_000_000)));
    }
}
