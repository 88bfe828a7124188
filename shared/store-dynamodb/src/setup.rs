//! Building a client from the environment and creating the table for tests.
//!
//! Region, HTTPS client and credentials come from `aws-setup` (one
//! configuration for every adapter of the process).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use aws_setup::SdkConfig;
use store::StoreError;

use crate::attrs::{GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, SK, TTL};
use crate::error::from_sdk;

/// Overrides the DynamoDB endpoint (moto, DynamoDB Local).
pub const ENDPOINT_ENV: &str = "IISBULK_DYNAMODB_ENDPOINT";
/// Region used when the environment names none.
pub const DEFAULT_REGION: &str = aws_setup::DEFAULT_REGION;

/// A DynamoDB client configured from the environment.
///
/// * region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`;
/// * endpoint: `IISBULK_DYNAMODB_ENDPOINT` when set;
/// * credentials: a Lambda's environment (the admin tool builds its own
///   configuration with `aws_setup::chain_config`), except that
///   with an endpoint override and no `AWS_ACCESS_KEY_ID` dummy keys are used
///   (local emulators accept any signature).
pub async fn client_from_env() -> Client {
    client_for(None, None).await
}

/// [`client_from_env`] with the region and endpoint given explicitly (as
/// `iisbulk --backend dynamodb --region … --endpoint …` does); `None` falls
/// back to the environment.
pub async fn client_for(region: Option<&str>, endpoint: Option<&str>) -> Client {
    let endpoint = endpoint_for(endpoint);
    let credentials = aws_setup::Credentials::for_endpoint(endpoint.as_deref());
    let sdk = aws_setup::sdk_config(region, credentials).await;
    client_with(&sdk, endpoint)
}

/// The endpoint override: `explicit` when non-empty, else
/// `IISBULK_DYNAMODB_ENDPOINT` when set.
pub fn endpoint_for(explicit: Option<&str>) -> Option<String> {
    explicit
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .or_else(|| std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty()))
}

/// A client from an already built configuration, at `endpoint` when given.
pub fn client_with(sdk: &SdkConfig, endpoint: Option<String>) -> Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

fn attr(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn gsi(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
}

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("request build: {e}"))
}

/// Create the iisbulk table layout (see `TABLE.md`) under `name`: on-demand
/// billing, GSIs `gsi1`/`gsi2` (projection ALL), a `NEW_AND_OLD_IMAGES`
/// stream and TTL on `ttl`; waits until it is active. Meant for tests and
/// local emulators; production tables come from the SAM template.
pub async fn create_table_for_tests(client: &Client, name: &str) -> Result<(), StoreError> {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [PK, SK, GSI1PK, GSI1SK, GSI2PK, GSI2SK]
                .into_iter()
                .map(attr)
                .collect::<Result<Vec<_>, _>>()?,
        ))
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi("gsi1", GSI1PK, GSI1SK)?)
        .global_secondary_indexes(gsi("gsi2", GSI2PK, GSI2SK)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(from_sdk)?;
    for _ in 0..600 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(from_sdk)?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL)
                        .build()
                        .map_err(build_error)?,
                )
                .send()
                .await
                .map_err(from_sdk)?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} did not become active"
    )))
}
