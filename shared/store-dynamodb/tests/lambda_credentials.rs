//! The configuration the Lambda functions are built with (credentials from
//! the environment only, no aws-config chain) signs real requests, and says
//! which variable is missing when there are none. Against moto:
//! `IISBULK_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT`, skipped without it
//! unless `IISBULK_REQUIRE_MOTO=1`.
//!
//! Its own test binary, because it changes the process environment.

use aws_smithy_types::error::display::DisplayErrorContext;
use store_dynamodb::{client_with, ENDPOINT_ENV};

#[tokio::test]
async fn lambda_credentials_come_from_the_environment() {
    let Some(endpoint) = std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty()) else {
        assert!(
            std::env::var("IISBULK_REQUIRE_MOTO").as_deref() != Ok("1"),
            "IISBULK_REQUIRE_MOTO=1 but {ENDPOINT_ENV} is not set"
        );
        eprintln!("skipped: set {ENDPOINT_ENV} to run the Lambda credentials test");
        return;
    };
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "example-secret");
    std::env::set_var("AWS_SESSION_TOKEN", "example-session");
    let sdk = aws_setup::lambda_config(Some("us-east-1"), aws_setup::Credentials::Standard);
    let client = client_with(&sdk, Some(endpoint.clone()));
    client
        .list_tables()
        .limit(1)
        .send()
        .await
        .expect("a request signed with the environment's credentials");

    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    std::env::remove_var("AWS_SESSION_TOKEN");
    let sdk = aws_setup::lambda_config(Some("us-east-1"), aws_setup::Credentials::Standard);
    let client = client_with(&sdk, Some(endpoint));
    let err = client
        .list_tables()
        .limit(1)
        .send()
        .await
        .expect_err("no credentials, no request");
    let message = DisplayErrorContext(&err).to_string();
    assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
}
