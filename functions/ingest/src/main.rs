//! The ingest Lambda: the same router as `iisbulk serve`, over DynamoDB.
//!
//! Its environment is read by [`ingest::deps_from_env`].

use ingest::router;
use std::sync::Arc;

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
    let deps = Arc::new(ingest::deps_from_env().await?);
    lambda_edge::run(router(deps)).await
}
