//! The matcher Lambda, subscribed to the table's stream.
//!
//! Environment: `IISBULK_TABLE` (required), `IISBULK_DYNAMODB_ENDPOINT`
//! (tests only), `IISBULK_MATCHING_CONFIG` (a matching configuration TOML
//! file path; the shipped one otherwise).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use registry::patients::PatientMatching;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .init();
    let table =
        std::env::var("IISBULK_TABLE").map_err(|_| "IISBULK_TABLE must name the DynamoDB table")?;
    let config = match std::env::var("IISBULK_MATCHING_CONFIG") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("IISBULK_MATCHING_CONFIG {path}: {e}"))?;
            matching::Config::parse(&text)
                .map_err(|e| format!("IISBULK_MATCHING_CONFIG {path}: {e}"))?
        }
        Err(_) => matching::Config::built_in(),
    };
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    let matching = PatientMatching::new(store, Arc::new(matching::Matcher::new(config)));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let matching = matching.clone();
        async move {
            let now_ms = iz::Clock::now().unix_seconds * 1000;
            matcher::handle(&matching, &event.payload, now_ms)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
