//! Where the admin commands find the registry: the local data directory
//! (embedded store), or a jurisdiction's DynamoDB table in its AWS stack, so
//! a DevOps team onboards Authorized Users and clients there with the same
//! tool.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use store::ItemStore;

use crate::data_dir;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The local data directory (`--data-dir`).
    Embedded,
    /// A deployed stack's table (`--table`, `--region`; AWS credentials from
    /// the usual environment, profile or SSO chain).
    Dynamodb,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Data directory of the local IIS (embedded backend).
    #[arg(long, default_value = data_dir::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Which registry to administer.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: Backend,
    /// The stack's DynamoDB table (its `TableName` output).
    #[arg(long, required_if_eq("backend", "dynamodb"))]
    table: Option<String>,
    /// AWS region of the table (else AWS_REGION / AWS_DEFAULT_REGION).
    #[arg(long)]
    region: Option<String>,
    /// DynamoDB endpoint override, for DynamoDB Local or moto (else
    /// IISBULK_DYNAMODB_ENDPOINT).
    #[arg(long)]
    endpoint: Option<String>,
}

impl StoreArgs {
    pub async fn open(&self) -> Result<Arc<dyn ItemStore>, String> {
        match self.backend {
            Backend::Embedded => {
                if self.table.is_some() || self.region.is_some() || self.endpoint.is_some() {
                    return Err("--table, --region and --endpoint need --backend dynamodb".into());
                }
                data_dir::open_or_borrow(&self.data_dir)
            }
            Backend::Dynamodb => {
                let table = self
                    .table
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .ok_or("--backend dynamodb needs --table")?;
                // People and CI jobs run this: aws-config's whole chain
                // (profiles, SSO, ...), not just a Lambda's environment.
                let endpoint = store_dynamodb::endpoint_for(self.endpoint.as_deref());
                let credentials = aws_setup::Credentials::for_endpoint(endpoint.as_deref());
                let sdk = aws_setup::chain_config(self.region.as_deref(), credentials).await;
                let client = store_dynamodb::client_with(&sdk, endpoint);
                let store = store_dynamodb::DynamoStore::new(client, table);
                store.check_table().await.map_err(|e| e.to_string())?;
                Ok(Arc::new(store))
            }
        }
    }
}
