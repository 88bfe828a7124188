//! The membership Lambda, subscribed to the table's stream.
//!
//! Its environment is read by [`membership::deps_from_env`].

use lambda_runtime::{service_fn, LambdaEvent};
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
    let membership = membership::deps_from_env().await?;
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
