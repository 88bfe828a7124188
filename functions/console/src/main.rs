//! The console Lambda: the same console router (JSON API and web page) as
//! `iisbulk serve`, over DynamoDB, behind the stack's HTTP API.
//!
//! Its environment is read by [`console::deps_from_env`].

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_log::init();
    let deps = console::deps_from_env().await?;
    lambda_edge::run(console::router(Arc::new(deps))).await
}
