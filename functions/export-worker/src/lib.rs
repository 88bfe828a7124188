//! The export worker: reads a DynamoDB stream batch and does the export work
//! its records start. A new job item is planned (its Group's members cut
//! into shards, one shard item each); a new shard item has its files
//! written, and the shard that finishes last completes the job. Every other
//! record is ignored. Work stops at the first record that fails and reports
//! it, so Lambda retries from there; both steps are idempotent, so a
//! redelivered batch writes no line twice.

use registry::export::{job_created, shard_created, ExportJobs};
use serde_json::Value;
pub use stream_batch::{BatchResponse, ItemFailure};

/// What a stream record asks of the export worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Plan(String),
    Shard(String, u32),
}

/// The export work of a stream event, each with the record's sequence number.
pub fn work(event: &Value) -> Result<Vec<(String, Option<Work>)>, String> {
    Ok(stream_batch::records(event)?
        .into_iter()
        .map(|r| {
            let (old, new) = (r.old.as_deref(), r.new.as_deref());
            let w = r.key.as_ref().and_then(|k| {
                job_created(k, old, new)
                    .map(|id| Work::Plan(id.to_owned()))
                    .or_else(|| shard_created(k, old, new).map(|(id, n)| Work::Shard(id, n)))
            });
            (r.sequence, w)
        })
        .collect())
}

pub async fn handle(jobs: &ExportJobs, event: &Value) -> Result<BatchResponse, String> {
    for (sequence, w) in work(event)? {
        let done = match &w {
            None => continue,
            Some(Work::Plan(id)) => jobs.plan(id).await,
            Some(Work::Shard(id, n)) => jobs.run_shard(id, *n).await,
        };
        match done {
            Ok(()) => tracing::info!(work = ?w, "export work done"),
            Err(e) => {
                tracing::warn!(work = ?w, error = %e, "export work failed; batch will be retried from here");
                return Ok(BatchResponse {
                    batch_item_failures: vec![ItemFailure {
                        item_identifier: sequence,
                    }],
                });
            }
        }
    }
    Ok(BatchResponse::default())
}

/// The export use case from the environment, as `main.rs` builds it once
/// per container (and the cloud end-to-end test builds it against moto):
/// `IISBULK_TABLE` (required), `IISBULK_BUCKET` (required),
/// `IISBULK_EXPORT_PREFIX` (key prefix in the bucket),
/// `IISBULK_JURISDICTION_POLICY` (its `fhir.identifier_base` names
/// identifier systems), `IISBULK_CDSI_DATA` (the CDSi release folder
/// exported ImmunizationRecommendations are forecast with, as for bulk-api;
/// unset or empty: the built-in one), and for tests `IISBULK_DYNAMODB_ENDPOINT` /
/// `IISBULK_S3_ENDPOINT`. (Retention is fixed by the kick-off, in bulk-api.)
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<ExportJobs, lambda_runtime::Error> {
    use registry::membership::JurisdictionPolicy;
    use registry::persons::Persons;
    use std::sync::Arc;
    let table =
        std::env::var("IISBULK_TABLE").map_err(|_| "IISBULK_TABLE must name the DynamoDB table")?;
    let policy = JurisdictionPolicy::from_env()?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    let blobs: Arc<dyn store::BlobStore> = Arc::new(blob_s3::S3BlobStore::from_env().await?);
    let patients = Persons::new(store);
    let mut jobs = ExportJobs::new(patients, blobs, &policy.identifier_base);
    // A folder that does not load stops the cold start, naming it.
    if let Ok(dir) = std::env::var("IISBULK_CDSI_DATA") {
        if !dir.trim().is_empty() {
            jobs.cdsi_data = Some(Arc::new(
                cdsi::data::load_release_dir(std::path::Path::new(&dir))
                    .map_err(|e| format!("IISBULK_CDSI_DATA {dir}: {e}"))?,
            ));
        }
    }
    Ok(jobs)
}
