//! The matcher Lambda, subscribed to the table's stream.
//!
//! Its environment is read by [`matcher::deps_from_env`].

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_log::init();
    let matching = matcher::deps_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let matching = matching.clone();
        async move {
            let now_ms = iz::Clock::now().unix_seconds * 1000;
            matcher::handle(&matching, &event.payload, now_ms)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
