//! The backend contract suite against a DynamoDB endpoint (moto in CI):
//! `IISBULK_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT`. One fresh table per
//! test run, shared by the tests, each test in its own partitions.
//!
//! Without the variable the tests print a skip line and pass, unless
//! `IISBULK_REQUIRE_MOTO=1`, which turns a missing endpoint into a failure.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use store::contract::{unique_prefix, Harness};
use store_dynamodb::{client_from_env, create_table_for_tests, DynamoStore, ENDPOINT_ENV};
use tokio::sync::OnceCell;

static TABLE: OnceCell<String> = OnceCell::const_new();
static SKIP_REPORTED: AtomicBool = AtomicBool::new(false);

async fn setup(test: &'static str) -> Option<Harness> {
    if std::env::var(ENDPOINT_ENV).map_or(true, |e| e.is_empty()) {
        assert!(
            std::env::var("IISBULK_REQUIRE_MOTO").as_deref() != Ok("1"),
            "IISBULK_REQUIRE_MOTO=1 but {ENDPOINT_ENV} is not set (run scripts/moto start)"
        );
        // Straight to stderr: the test harness captures print macros of passing tests.
        if !SKIP_REPORTED.swap(true, Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: set {ENDPOINT_ENV} (e.g. eval \"$(scripts/moto start)\") to run the DynamoDB contract tests"
            );
        }
        return None;
    }
    // Each test has its own runtime, so each gets its own client; the table
    // is created once per process.
    let client = client_from_env().await;
    let table = TABLE
        .get_or_init(|| async {
            let name = format!("iisbulk-contract-{}", unique_prefix("t"));
            let client = client_from_env().await;
            create_table_for_tests(&client, &name)
                .await
                .expect("create test table");
            name
        })
        .await;
    Some(Harness {
        store: Arc::new(DynamoStore::new(client, table.clone())),
        prefix: unique_prefix(test),
        guard: Box::new(()),
    })
}

store::contract_tests!(setup);
