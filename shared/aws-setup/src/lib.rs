//! The AWS SDK configuration every adapter (DynamoDB, S3, DynamoDB Streams)
//! is built from, so that one process shares one HTTPS client and one way of
//! finding its region and credentials.
//!
//! * HTTPS: [`http1`], HTTP/1.1 on hyper with rustls on `ring`. The SDK's
//!   default stack pulls in aws-lc-rs (a large C build) and HTTP/2, both
//!   compiled out.
//! * Region: the one given, else `AWS_REGION`, else `AWS_DEFAULT_REGION`,
//!   else [`DEFAULT_REGION`]; never the instance-metadata lookup (Lambda
//!   always sets `AWS_REGION`, and elsewhere that lookup only costs a timeout).
//! * Credentials: see [`Credentials`].

pub mod http1;

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_types::region::Region;
pub use aws_types::sdk_config::SdkConfig;

/// Region used when neither the caller nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How long to wait for a TCP/TLS connection to an AWS endpoint (the value
/// aws-config uses by default).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(3100);

/// Where the credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// The process environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`), which is how Lambda gives a function its
    /// execution role; [`chain_config`] (feature `credential-chain`) reads
    /// aws-config's full chain instead.
    Standard,
    /// A local emulator (moto, DynamoDB Local, MinIO), which accepts any
    /// signature: the environment's keys when it has them, else dummy keys.
    LocalEmulator,
}

impl Credentials {
    /// [`Credentials::LocalEmulator`] when an endpoint override is set (only
    /// emulators are reached that way), else [`Credentials::Standard`].
    pub fn for_endpoint(endpoint: Option<&str>) -> Self {
        match endpoint {
            Some(_) => Credentials::LocalEmulator,
            None => Credentials::Standard,
        }
    }
}

/// The region a client should use: `explicit` when non-empty, else the
/// environment's, else [`DEFAULT_REGION`].
pub fn region(explicit: Option<&str>) -> String {
    explicit
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned())
}

/// The SDK configuration for `region` (see [`region`]) and `credentials`,
/// with credentials from the environment only: [`lambda_config`]. Every
/// adapter builds its clients from this, so a function gets the same
/// configuration however the workspace is built (a Cargo feature here would
/// be switched on for every crate built beside one that asks for it).
pub async fn sdk_config(region_name: Option<&str>, credentials: Credentials) -> SdkConfig {
    lambda_config(region_name, credentials)
}

/// aws-config's full credential chain (environment, profiles, SSO, web
/// identity, container, instance), for tools run by people and CI jobs
/// (`iisbulk --backend dynamodb`), never for a Lambda function.
#[cfg(feature = "credential-chain")]
pub async fn chain_config(region_name: Option<&str>, credentials: Credentials) -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .region(Region::new(region(region_name)));
    if uses_dummy_keys(credentials) {
        loader = loader.credentials_provider(dummy_keys());
    }
    loader.load().await
}

/// What aws-config's loader would set up, with credentials from the
/// environment only ([`Environment`]): what a Lambda function needs, without
/// the chain's providers and the STS client they carry.
pub fn lambda_config(region_name: Option<&str>, credentials: Credentials) -> SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_types::retry::RetryConfig;
    use aws_smithy_types::timeout::TimeoutConfig;

    let provider = if uses_dummy_keys(credentials) {
        SharedCredentialsProvider::new(dummy_keys())
    } else {
        SharedCredentialsProvider::new(Environment)
    };
    let mut builder = SdkConfig::builder()
        .behavior_version(
            aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest(),
        )
        .region(Region::new(region(region_name)))
        .http_client(https_client())
        .credentials_provider(provider)
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    builder.build()
}

/// One HTTPS client for the whole process: every SDK client built from any
/// config shares its connection pool, and the TLS set-up (reading the
/// certificate store) happens once.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    static CLIENT: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        std::sync::OnceLock::new();
    CLIENT.get_or_init(http1::client).clone()
}

fn uses_dummy_keys(credentials: Credentials) -> bool {
    credentials == Credentials::LocalEmulator && env("AWS_ACCESS_KEY_ID").is_none()
}

fn dummy_keys() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("test", "test", None, None, "iisbulk-local")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Credentials from the process environment, read at each refresh (the SDK
/// caches them between requests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Environment;

impl Environment {
    fn load(&self) -> Result<aws_credential_types::Credentials, CredentialsError> {
        let missing = |name: &str| {
            CredentialsError::not_loaded(format!(
                "{name} is not set: a Lambda function gets its role's credentials in the \
                 environment; elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (and AWS_SESSION_TOKEN for temporary credentials)"
            ))
        };
        let access_key = env("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
        let secret_key =
            env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
        Ok(aws_credential_types::Credentials::new(
            access_key,
            secret_key,
            env("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        ))
    }
}

impl ProvideCredentials for Environment {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(self.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_region_wins_and_an_empty_one_does_not_count() {
        assert_eq!(region(Some("eu-west-3")), "eu-west-3");
        let fallback = region(Some(""));
        assert!(!fallback.is_empty());
        assert_eq!(fallback, region(None));
    }

    #[tokio::test]
    async fn a_local_emulator_config_is_complete() {
        let config = sdk_config(Some("us-west-2"), Credentials::LocalEmulator).await;
        assert_eq!(config.region().map(|r| r.as_ref()), Some("us-west-2"));
        assert!(config.credentials_provider().is_some());
    }

    #[tokio::test]
    async fn the_lambda_config_has_what_the_loader_would_set() {
        let config = lambda_config(Some("us-west-2"), Credentials::LocalEmulator);
        assert!(config.retry_config().is_some());
        assert!(config.sleep_impl().is_some());
        assert!(config.time_source().is_some());
        assert_eq!(config.region().map(|r| r.as_ref()), Some("us-west-2"));
        assert!(config.credentials_provider().is_some());
        assert!(config.http_client().is_some());
        assert!(config.behavior_version().is_some());
    }
}
