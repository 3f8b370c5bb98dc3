//! The shared store contract suite against the memory store.

use std::sync::Arc;

use bff_domain::Timestamp;
use bff_domain::testkit::store_contract::{ContractStores, run_all};
use bff_store_memory::MemoryStore;

#[test]
fn memory_store_passes_the_contract() {
    let store = Arc::new(MemoryStore::new());
    let stores = ContractStores {
        sessions: store.clone(),
        pending: store.clone(),
        replay: store.clone(),
        locks: store,
    };
    futures_executor::block_on(run_all(
        &stores,
        Timestamp::from_unix_seconds(1_800_000_000),
    ));
}
