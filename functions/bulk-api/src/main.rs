//! The bulk-api Lambda: the same FHIR router as `iisbulk serve`, over
//! DynamoDB, with export files in S3 (downloaded with presigned URLs).
//!
//! Environment: `IISBULK_TABLE` (required), `IISBULK_PUBLIC_URL` (required:
//! the public base URL; the token endpoint, and the only `aud` accepted in
//! client assertions, is `<it>/auth/token`), `IISBULK_BUCKET` (required) and
//! `IISBULK_EXPORT_PREFIX` (the export files' bucket and key prefix),
//! `IISBULK_EXPORT_RETENTION_HOURS` (default 24), `IISBULK_JURISDICTION_POLICY`
//! (membership policy TOML text), and for tests `IISBULK_DYNAMODB_ENDPOINT` /
//! `IISBULK_S3_ENDPOINT`.

use std::sync::Arc;

use bulk_api::{router, BulkDeps, HttpJwks};
use registry::membership::JurisdictionPolicy;
use registry::patients::PatientMatching;

/// How long a presigned file URL in a manifest works.
const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
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
    let public_url = std::env::var("IISBULK_PUBLIC_URL")
        .map_err(|_| "IISBULK_PUBLIC_URL must be the API's public base URL (https://…)")?;
    if !public_url.starts_with("https://") {
        return Err(format!("IISBULK_PUBLIC_URL {public_url:?} must be an https:// URL").into());
    }
    let policy = Arc::new(JurisdictionPolicy::from_env()?);
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    // Reads persons and histories; never matches.
    let patients = PatientMatching::new(store, Arc::new(matching::Matcher::default()));
    // The API reads, deletes and presigns export files; only the export
    // worker writes them.
    let blobs: Arc<dyn store::BlobStore> = Arc::new(store::NoUploads(Arc::new(
        blob_s3::S3BlobStore::from_env().await?,
    )));
    let mut jobs =
        registry::export::ExportJobs::new(patients.clone(), blobs, &policy.identifier_base);
    jobs.retention = registry::export::retention_from_env()?;
    // Files are fetched from S3 with URLs minted at each status poll.
    jobs.presign_for = Some(PRESIGNED_URL_LIFETIME);
    let mut deps = BulkDeps::new(patients, policy, &public_url, Arc::new(HttpJwks::new()?));
    deps.exports = Some(jobs);
    lambda_http::run(router(Arc::new(deps))).await
}
