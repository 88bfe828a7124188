//! The ingest Lambda: the same router as `iisbulk serve`, over DynamoDB.
//!
//! Environment: `IISBULK_TABLE` (required), `IISBULK_DYNAMODB_ENDPOINT`
//! (tests only), `IISBULK_IIS_APPLICATION` / `IISBULK_IIS_FACILITY` (MSH-3/4
//! of our answers), `IISBULK_MAX_MESSAGE_BYTES`, `IISBULK_PUBLIC_URL`,
//! `IISBULK_MATCHING_CONFIG` (matching TOML for history queries; the shipped
//! one otherwise), `IISBULK_MAX_QUERY_CANDIDATES` (Z31 cap, default 10),
//! `IISBULK_JURISDICTION_POLICY` (membership policy TOML text).

use ingest::{router, IngestConfig, IngestDeps};
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

    let table =
        std::env::var("IISBULK_TABLE").map_err(|_| "IISBULK_TABLE must name the DynamoDB table")?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    let mut iis = iz::IisIdentity::default();
    if let Ok(a) = std::env::var("IISBULK_IIS_APPLICATION") {
        iis.application = a;
    }
    if let Ok(f) = std::env::var("IISBULK_IIS_FACILITY") {
        iis.facility = f;
    }
    let mut config = IngestConfig::default();
    if let Ok(m) = std::env::var("IISBULK_MAX_MESSAGE_BYTES") {
        config.max_message_bytes = m
            .parse()
            .map_err(|_| format!("IISBULK_MAX_MESSAGE_BYTES '{m}' is not a number of bytes"))?;
    }
    config.public_url = std::env::var("IISBULK_PUBLIC_URL").ok();
    if let Ok(path) = std::env::var("IISBULK_MATCHING_CONFIG") {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("IISBULK_MATCHING_CONFIG {path}: {e}"))?;
        let parsed = matching::Config::parse(&text)
            .map_err(|e| format!("IISBULK_MATCHING_CONFIG {path}: {e}"))?;
        config.matcher = Arc::new(matching::Matcher::new(parsed));
    }
    if let Ok(n) = std::env::var("IISBULK_MAX_QUERY_CANDIDATES") {
        config.query_policy.max_candidates = n
            .parse()
            .map_err(|_| format!("IISBULK_MAX_QUERY_CANDIDATES '{n}' is not a number"))?;
    }
    // The Z32 Group identifier follows the jurisdiction's membership policy.
    config.query_policy.jurisdiction =
        Arc::new(registry::membership::JurisdictionPolicy::from_env()?);
    let deps = Arc::new(IngestDeps::new(store, iis, config));
    lambda_http::run(router(deps)).await
}
