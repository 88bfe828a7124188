//! The membership Lambda, subscribed to the table's stream.
//!
//! Environment: `IISBULK_TABLE` (required), `IISBULK_DYNAMODB_ENDPOINT`
//! (tests only), `IISBULK_JURISDICTION_POLICY` (the jurisdiction policy as
//! TOML text; the shipped default otherwise). A bad policy stops the
//! function at start-up with a message naming the option.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use registry::membership::{JurisdictionPolicy, Membership};
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
    let policy = JurisdictionPolicy::from_env()?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    // Membership reads persons and sources; it never matches.
    let patients = PatientMatching::new(store, Arc::new(matching::Matcher::default()));
    let membership = Membership::new(patients, Arc::new(policy));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let membership = membership.clone();
        async move {
            membership::handle(&membership, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
