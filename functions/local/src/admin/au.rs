//! `iisbulk au …`: Authorized User administration on the local store.

use clap::{Args, Subcommand};
use registry::{AuKind, AuthorizedUsers, NewAuthorizedUser};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    store: crate::admin::backend::StoreArgs,
}

/// A password from the command line or standard input (shared by the
/// commands that set one: `au`, `staff`).
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (at least 12 characters). Prefer --password-stdin: a
    /// password on the command line is visible to other local users.
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuCommand {
    /// Register an Authorized User with its facilities and login.
    Add {
        #[command(flatten)]
        common: Common,
        /// Stable id (letters, digits, '-', '_', '.').
        #[arg(long)]
        id: String,
        /// clinic, health-system, pharmacy, school, payer, health-department or other.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// A facility id it sends in MSH-4 / SOAP facilityID (repeat for several).
        #[arg(long = "facility", required = true)]
        facilities: Vec<String>,
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// The jurisdiction policy deciding whether its kind gets a Group
        /// (the one `iisbulk serve --policy` uses; the shipped one otherwise).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// List Authorized Users (never their password hashes).
    List {
        #[command(flatten)]
        common: Common,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace an Authorized User's password.
    SetPassword {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Add a facility id to an Authorized User.
    AddFacility {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: String,
        #[arg(long)]
        facility: String,
    },
}

pub(crate) fn password(p: PasswordArgs) -> Result<String, String> {
    if let Some(p) = p.password {
        return Ok(p);
    }
    if p.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    Err("give --password or --password-stdin".into())
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("iisbulk au: {e}");
    ExitCode::from(1)
}

pub async fn run(cmd: AuCommand) -> ExitCode {
    match run_inner(cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn run_inner(cmd: AuCommand) -> Result<(), String> {
    match cmd {
        AuCommand::Add {
            common,
            id,
            kind,
            name,
            facilities,
            username,
            password: p,
            policy,
        } => {
            let policy = crate::policy::load(policy.as_deref())?;
            let kind = AuKind::parse(&kind).ok_or_else(|| {
                format!(
                    "--kind '{kind}' is not one of {}",
                    AuKind::ALL.map(|k| k.as_str()).join(", ")
                )
            })?;
            let password = password(p)?;
            let users = AuthorizedUsers::new(common.store.open().await?);
            let au = registry::membership::onboard(
                &users,
                NewAuthorizedUser {
                    id,
                    kind,
                    name,
                    facilities,
                    username,
                    password,
                },
                iz::Clock::now().unix_seconds,
                &policy,
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "added Authorized User '{}' ({}) with facilities {}",
                au.id,
                au.kind.as_str(),
                au.facilities.join(", ")
            );
            match &au.group {
                Some(g) => println!(
                    "Group {g} (share this id with the Authorized User for Bulk Data export)"
                ),
                None => println!(
                    "no Group: the policy gives {} Authorized Users none",
                    au.kind.as_str()
                ),
            }
        }
        AuCommand::List { common, json } => {
            let users = AuthorizedUsers::new(common.store.open().await?);
            let list = users.list().await.map_err(|e| e.to_string())?;
            for au in list {
                if json {
                    let line = serde_json::json!({
                        "id": au.id, "kind": au.kind, "name": au.name,
                        "facilities": au.facilities, "username": au.username,
                        "created_at": au.created_at, "group": au.group,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        au.id,
                        au.kind.as_str(),
                        au.username,
                        au.facilities.join(","),
                        au.group.as_deref().unwrap_or("-"),
                        au.name
                    );
                }
            }
        }
        AuCommand::SetPassword {
            common,
            id,
            password: p,
        } => {
            let password = password(p)?;
            let users = AuthorizedUsers::new(common.store.open().await?);
            users
                .set_password(&id, &password)
                .await
                .map_err(|e| e.to_string())?;
            println!("password of '{id}' replaced");
        }
        AuCommand::AddFacility {
            common,
            id,
            facility,
        } => {
            let users = AuthorizedUsers::new(common.store.open().await?);
            let au = users
                .add_facility(&id, &facility)
                .await
                .map_err(|e| e.to_string())?;
            println!("'{}' now sends for {}", au.id, au.facilities.join(", "));
        }
    }
    Ok(())
}
