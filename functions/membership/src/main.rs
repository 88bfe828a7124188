//! The membership Lambda, subscribed to the table's stream.
//!
//! Its environment is read by [`membership::deps_from_env`].

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_log::init();
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
