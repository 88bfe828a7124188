//! The export worker Lambda, subscribed to the table's stream (filtered to
//! new export job and shard items and new bulk match job items).
//!
//! Its environment is read by [`export_worker::deps_from_env`].

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

// An export decodes and renders millions of small strings; see the
// workspace Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_log::init();
    let worker = export_worker::deps_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let worker = worker.clone();
        async move {
            export_worker::handle(&worker, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
