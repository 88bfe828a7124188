//! `iisbulk staff …`: the console's staff accounts (reviewers,
//! administrators, auditors) on the local store or the stack's table.

use clap::{Args, Subcommand};
use registry::staff::{NewStaff, Staff, StaffRole};
use std::process::ExitCode;

use crate::admin::au::{password, PasswordArgs};

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    store: crate::admin::backend::StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff member. An administrator also gets a second factor: the
    /// command prints the `otpauth://` URI (and its secret) to enrol in an
    /// authenticator app, once.
    Add {
        #[command(flatten)]
        common: Common,
        /// Login name (letters, digits, '.', '_', '-', '@').
        #[arg(long)]
        username: String,
        /// reviewer (duplicate queue), administrator (Authorized Users,
        /// clients, Groups) or auditor (audit trail, read-only).
        #[arg(long)]
        role: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List staff members and their roles (never password hashes or secrets).
    List {
        #[command(flatten)]
        common: Common,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace a staff member's password; their open sessions end.
    SetPassword {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Give a staff member a new second factor (a lost phone): prints the
    /// new enrolment URI; the old authenticator stops working.
    ResetSecondFactor {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
    },
    /// Remove a staff member; their open sessions end.
    Remove {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
    },
}

pub async fn run(cmd: StaffCommand) -> ExitCode {
    match run_inner(cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iisbulk staff: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_enrolment(uri: &str) {
    let secret = uri
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or("");
    println!("second factor: enrol this in an authenticator app now (it is not shown again):");
    println!("  {uri}");
    println!("  secret {secret} (TOTP, SHA1, 6 digits, 30 s)");
}

async fn run_inner(cmd: StaffCommand) -> Result<(), String> {
    match cmd {
        StaffCommand::Add {
            common,
            username,
            role,
            password: p,
        } => {
            let role = StaffRole::parse(&role).map_err(|e| e.to_string())?;
            let password = password(p)?;
            let staff = Staff::new(common.store.open().await?);
            let enrolled = staff
                .add(
                    NewStaff {
                        username,
                        role,
                        password,
                    },
                    iz::Clock::now().unix_seconds,
                )
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "added staff member '{}' ({})",
                enrolled.account.username, enrolled.account.role
            );
            if let Some(uri) = &enrolled.totp_uri {
                print_enrolment(uri);
            }
        }
        StaffCommand::List { common, json } => {
            let staff = Staff::new(common.store.open().await?);
            for account in staff.list().await.map_err(|e| e.to_string())? {
                if json {
                    let line = serde_json::json!({
                        "username": account.username,
                        "role": account.role,
                        "second_factor": account.totp_secret.is_some(),
                        "created_at": account.created_at,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{}\t{}\t{}",
                        account.username,
                        account.role,
                        if account.totp_secret.is_some() {
                            "totp"
                        } else {
                            "password"
                        }
                    );
                }
            }
        }
        StaffCommand::SetPassword {
            common,
            username,
            password: p,
        } => {
            let password = password(p)?;
            let staff = Staff::new(common.store.open().await?);
            staff
                .change_password(&username, &password)
                .await
                .map_err(|e| e.to_string())?;
            println!("password of '{username}' replaced; their open sessions have ended");
        }
        StaffCommand::ResetSecondFactor { common, username } => {
            let staff = Staff::new(common.store.open().await?);
            let uri = staff
                .reset_second_factor(&username)
                .await
                .map_err(|e| e.to_string())?;
            println!("new second factor for '{username}'");
            print_enrolment(&uri);
        }
        StaffCommand::Remove { common, username } => {
            let staff = Staff::new(common.store.open().await?);
            staff.remove(&username).await.map_err(|e| e.to_string())?;
            println!("removed staff member '{username}'; their open sessions have ended");
        }
    }
    Ok(())
}
