//! The shared store contract suite against PostgreSQL: every rule on its own fresh schema, which
//! it drops afterwards. Skipped (loudly) when no server is available outside CI.

use std::sync::Arc;

use bff_domain::testkit::store_contract::ContractStores;
use bff_test_services::now;

use crate::store;

bff_domain::store_contract_tests! {
    #[tokio::test]
    async fn postgres_store(rule) {
        let Some((store, service)) = store().await else {
            return;
        };
        let store = Arc::new(store);
        let stores = ContractStores {
            sessions: store.clone(),
            pending: store.clone(),
            replay: store.clone(),
            locks: store,
        };
        rule(&stores, now()).await;
        service.drop_schema().await;
    }
}
