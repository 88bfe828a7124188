//! `iisbulk client …`: registering an Authorized User's back-end (SMART
//! Backend Services) client, on the local store or a stack's table. Trying
//! it end to end (`iisbulk jwks`, `iisbulk token`) is a client tool:
//! `crate::client::token`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use registry::smart::Clients;

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    store: crate::admin::backend::StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client for an Authorized User; prints its client_id.
    Add {
        #[command(flatten)]
        common: Common,
        /// The Authorized User it acts for.
        #[arg(long)]
        au: String,
        /// A JWKS file with the client's public keys (each with a kid).
        #[arg(
            long,
            conflicts_with = "jwks_url",
            required_unless_present = "jwks_url"
        )]
        jwks: Option<PathBuf>,
        /// Or the https URL where the client publishes its JWKS.
        #[arg(long)]
        jwks_url: Option<String>,
        /// The most it may be granted: read scopes, and `system/Group.u`
        /// for a client that manages its Group's members ($member-add).
        #[arg(long, default_value = "system/*.rs")]
        scope: String,
    },
    /// Clients of an Authorized User.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        au: String,
    },
    /// Replace a client's JWKS (key rotation: publish old and new, then new only).
    SetJwks {
        #[command(flatten)]
        common: Common,
        client_id: String,
        #[arg(long)]
        jwks: PathBuf,
    },
    /// Remove a client; its tokens stop working at once.
    Remove {
        #[command(flatten)]
        common: Common,
        client_id: String,
    },
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("iisbulk: {e}");
    ExitCode::from(1)
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub async fn run_client(cmd: ClientCommand) -> ExitCode {
    match client(cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn client(cmd: ClientCommand) -> Result<(), String> {
    let now_ms = iz::Clock::now().unix_seconds * 1000;
    match cmd {
        ClientCommand::Add {
            common,
            au,
            jwks,
            jwks_url,
            scope,
        } => {
            let clients = Clients::new(common.store.open().await?);
            let text = match &jwks {
                Some(p) => Some(String::from_utf8(read(p)?).map_err(|_| "the JWKS is not UTF-8")?),
                None => None,
            };
            let c = clients
                .add(&au, text.as_deref(), jwks_url.as_deref(), &scope, now_ms)
                .await
                .map_err(|e| e.to_string())?;
            println!("client_id {}", c.id);
            println!("Authorized User {}; may be granted: {}", c.au, c.scope);
        }
        ClientCommand::List { common, au } => {
            let clients = Clients::new(common.store.open().await?);
            for c in clients.of_au(&au).await.map_err(|e| e.to_string())? {
                let keys = match (&c.jwks, &c.jwks_url) {
                    (Some(set), _) => set
                        .keys
                        .iter()
                        .map(|k| k.kid.clone().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(","),
                    (None, Some(url)) => url.clone(),
                    (None, None) => "-".into(),
                };
                println!("{}\t{}\t{}", c.id, c.scope, keys);
            }
        }
        ClientCommand::SetJwks {
            common,
            client_id,
            jwks,
        } => {
            let clients = Clients::new(common.store.open().await?);
            let text = String::from_utf8(read(&jwks)?).map_err(|_| "the JWKS is not UTF-8")?;
            clients
                .set_jwks(&client_id, &text)
                .await
                .map_err(|e| e.to_string())?;
            println!("keys of {client_id} replaced");
        }
        ClientCommand::Remove { common, client_id } => {
            let clients = Clients::new(common.store.open().await?);
            clients
                .remove(&client_id)
                .await
                .map_err(|e| e.to_string())?;
            println!("client {client_id} removed");
        }
    }
    Ok(())
}
