//! The backend contract suite, run on the embedded (redb) backend: one fresh
//! store file per test.

use std::sync::Arc;

use store::contract::{unique_prefix, Harness};
use store::embedded::EmbeddedStore;
use store::ChangeFeed;

async fn setup(test: &'static str) -> Option<Harness> {
    setup_with_feed(test).await.map(|(h, _)| h)
}

async fn setup_with_feed(test: &'static str) -> Option<(Harness, Arc<dyn ChangeFeed>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).expect("open store"));
    let feed: Arc<dyn ChangeFeed> = store.clone();
    Some((
        Harness {
            store,
            prefix: unique_prefix(test),
            guard: Box::new(dir),
        },
        feed,
    ))
}

store::contract_tests!(setup);
store::feed_contract_tests!(setup_with_feed);
