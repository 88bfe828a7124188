//! The bulk-api Lambda: the same FHIR router as `iisbulk serve`, over
//! DynamoDB, with export files in S3 (downloaded with presigned URLs).
//!
//! Its environment is read by [`bulk_api::deps_from_env`].

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_log::init();
    let deps = bulk_api::deps_from_env().await?;
    lambda_edge::run(bulk_api::router(Arc::new(deps))).await
}
