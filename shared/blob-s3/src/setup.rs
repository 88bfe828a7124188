//! Clients and stores from the environment (Lambda mains, tests).
//!
//! Region, HTTPS client and credentials come from `aws-setup`, as for
//! `store-dynamodb`.

use aws_sdk_s3::Client;
use aws_setup::SdkConfig;
use store::StoreError;

use crate::S3BlobStore;

/// Names the bucket of the export files (required by [`S3BlobStore::from_env`]).
pub const BUCKET_ENV: &str = "IISBULK_BUCKET";
/// Optional key prefix inside the bucket (default: none, see [`DEFAULT_PREFIX`]).
pub const PREFIX_ENV: &str = "IISBULK_EXPORT_PREFIX";
/// Overrides the S3 endpoint (moto, MinIO); path-style addressing is used then.
pub const ENDPOINT_ENV: &str = "IISBULK_S3_ENDPOINT";
/// The default key prefix: none. The registry already names its export
/// files `exports/<job>/...`, so objects land at `s3://<bucket>/exports/...`;
/// set [`PREFIX_ENV`] (e.g. a jurisdiction or stage name) to share a bucket.
pub const DEFAULT_PREFIX: &str = "";
/// Region used when the environment names none.
pub const DEFAULT_REGION: &str = aws_setup::DEFAULT_REGION;

/// `IISBULK_S3_ENDPOINT`, when set (read by name here, so the infra check
/// sees which functions read it).
fn endpoint() -> Option<String> {
    std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty())
}

/// An S3 client configured from the environment.
///
/// * region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`;
/// * endpoint: `IISBULK_S3_ENDPOINT` when set, with path-style addressing
///   (`http://host:port/bucket/key`, what local emulators serve);
/// * credentials: a Lambda's environment (see `aws-setup`), except that with
///   an endpoint override and no `AWS_ACCESS_KEY_ID` dummy keys are used
///   (local emulators accept any signature).
pub async fn client_from_env() -> Client {
    let credentials = aws_setup::Credentials::for_endpoint(endpoint().as_deref());
    client_from_sdk_config(&aws_setup::sdk_config(None, credentials).await)
}

/// An S3 client from an already built configuration; the endpoint override
/// `IISBULK_S3_ENDPOINT` is applied here.
pub fn client_from_sdk_config(sdk: &SdkConfig) -> Client {
    let mut config = aws_sdk_s3::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint() {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    Client::from_conf(config.build())
}

impl S3BlobStore {
    /// The store the Lambda functions use: bucket from `IISBULK_BUCKET`
    /// (required), key prefix from `IISBULK_EXPORT_PREFIX` (optional), client
    /// from [`client_from_env`].
    pub async fn from_env() -> Result<Self, StoreError> {
        Self::from_env_with_client(client_from_env().await)
    }

    /// As [`S3BlobStore::from_env`] with a client the caller built.
    pub fn from_env_with_client(client: Client) -> Result<Self, StoreError> {
        // Read here, by name, so the infrastructure check sees which
        // variables this function needs.
        let bucket = std::env::var(BUCKET_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                StoreError::Invalid(format!("{BUCKET_ENV} must name the export bucket"))
            })?;
        let prefix = std::env::var(PREFIX_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        S3BlobStore::new(client, bucket, prefix)
    }
}
