//! The export worker Lambda, subscribed to the table's stream (filtered to
//! new export job and shard items).
//!
//! Environment: `IISBULK_TABLE` (required), `IISBULK_BUCKET` (required),
//! `IISBULK_EXPORT_PREFIX` (key prefix in the bucket),
//! `IISBULK_JURISDICTION_POLICY` (its `fhir.identifier_base` names
//! identifier systems), and for tests `IISBULK_DYNAMODB_ENDPOINT` /
//! `IISBULK_S3_ENDPOINT`. (Retention is fixed by the kick-off, in bulk-api.)

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use registry::export::ExportJobs;
use registry::membership::JurisdictionPolicy;
use registry::patients::PatientMatching;
use serde_json::Value;

// An export decodes and renders millions of small strings; see the
// workspace Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let blobs: Arc<dyn store::BlobStore> = Arc::new(blob_s3::S3BlobStore::from_env().await?);
    let patients = PatientMatching::new(store, Arc::new(matching::Matcher::default()));
    let jobs = ExportJobs::new(patients, blobs, &policy.identifier_base);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let jobs = jobs.clone();
        async move {
            export_worker::handle(&jobs, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
