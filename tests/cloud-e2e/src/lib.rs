//! # cloud-e2e — the cloud composition, end to end, against moto
//!
//! What AWS does around our Lambdas, played in-process so the functions'
//! own handlers can be driven over a real (emulated) DynamoDB table and S3
//! bucket:
//!
//! - [`aws`]: the moto endpoints (`IISBULK_DYNAMODB_ENDPOINT`,
//!   `IISBULK_S3_ENDPOINT`), a fresh table with its `NEW_AND_OLD_IMAGES`
//!   stream and a fresh bucket, and snapshots of both;
//! - [`http`]: API Gateway HTTP API (payload 2.0) events handed to a router
//!   through lambda_http's adapter, exactly as `lambda_http::run` does, and
//!   the JSON answer Lambda would return to API Gateway;
//! - [`esm`]: the DynamoDB event source mappings of `infra/template.yaml`
//!   (batch size, filter patterns): the table's stream read through the
//!   DynamoDB Streams API, records turned into the Lambda event JSON,
//!   filtered, batched and delivered, honouring `batchItemFailures`.
//!
//! Test support only: never deployed.

pub mod aws;
pub mod esm;
pub mod http;
