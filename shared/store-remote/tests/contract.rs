//! The backend contract suite through the loopback lender: an embedded store
//! served by `store_remote::router` on a random port, used through
//! `RemoteStore`, keeps every promise the port makes.

use std::sync::Arc;

use store::contract::{unique_prefix, Harness};
use store::embedded::EmbeddedStore;
use store::{ItemStore, Key};
use store_remote::RemoteStore;

const TOKEN: &str = "a-test-admin-token";

struct Served {
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

async fn lend() -> (String, Served) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).expect("open store"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = store_remote::router(store, TOKEN.into());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, Served { _dir: dir, server })
}

async fn setup(test: &'static str) -> Option<Harness> {
    let (url, served) = lend().await;
    Some(Harness {
        store: Arc::new(RemoteStore::new(&url, TOKEN)),
        prefix: unique_prefix(test),
        guard: Box::new(served),
    })
}

store::contract_tests!(setup);

#[tokio::test]
async fn a_caller_without_the_token_learns_nothing_and_changes_nothing() {
    let (url, _served) = lend().await;
    let owner = RemoteStore::new(&url, TOKEN);
    let stranger = RemoteStore::new(&url, "a-guess");
    let key = Key::new("p", "s");
    let refused = stranger
        .put(
            store::Item::new(key.clone(), b"x".to_vec()),
            store::Condition::None,
        )
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("refused its admin token"),
        "{refused}"
    );
    assert!(stranger.get(&key).await.is_err());
    assert_eq!(owner.get(&key).await.expect("owner reads"), None);
}

#[tokio::test]
async fn a_server_that_is_gone_is_unavailable_and_retryable() {
    let (url, served) = lend().await;
    served.server.abort();
    drop(served);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let gone = RemoteStore::new(&url, TOKEN)
        .get(&Key::new("p", "s"))
        .await
        .expect_err("nobody answers");
    assert!(gone.is_retryable(), "{gone:?}");
}
