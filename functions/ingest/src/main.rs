//! The ingest Lambda: the same router as `iisbulk serve`, over DynamoDB.
//!
//! Its environment is read by [`ingest::deps_from_env`].

use ingest::router;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_log::init();
    let deps = Arc::new(ingest::deps_from_env().await?);
    lambda_edge::run(router(deps)).await
}
