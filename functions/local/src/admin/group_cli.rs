//! `iisbulk group …`: an Authorized User's Group and why each member is in it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use registry::membership::{Evidence, Groups, Member};
use registry::resources::instant;
use registry::AuthorizedUsers;

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    store: crate::admin::backend::StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// A Group's id, owner, name and size.
    Show {
        #[command(flatten)]
        common: Common,
        /// The Group id.
        #[arg(required_unless_present = "au", conflicts_with = "au")]
        id: Option<String>,
        /// Or the Authorized User whose Group to show.
        #[arg(long)]
        au: Option<String>,
    },
    /// The members, each with the evidence that added it (and, for removed
    /// members, when and why they left).
    Members {
        #[command(flatten)]
        common: Common,
        id: String,
        /// Also list members removed (single association, merges).
        #[arg(long)]
        all: bool,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: GroupCommand) -> ExitCode {
    match run_inner(cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iisbulk group: {e}");
            ExitCode::from(1)
        }
    }
}

fn why(e: &Evidence) -> String {
    let mut s = format!(
        "{:?} {} ({}) at {} by policy {}",
        e.kind,
        e.message,
        e.certainty.as_str(),
        instant(e.at),
        e.policy
    )
    .to_lowercase();
    if let Some(from) = &e.from_person {
        s.push_str(&format!(", from person {from}"));
    }
    s
}

fn line(m: &Member) -> String {
    let mut s = format!(
        "{}\t{}\tsince {}\tadded: {}",
        m.person,
        if m.active { "active" } else { "removed" },
        instant(m.added_at),
        why(&m.first)
    );
    if m.latest != m.first {
        s.push_str(&format!("\tlatest: {}", why(&m.latest)));
    }
    if let (Some(at), Some(because)) = (m.removed_at, &m.removed_because) {
        s.push_str(&format!("\tremoved {}: {because}", instant(at)));
    }
    s
}

async fn run_inner(cmd: GroupCommand) -> Result<(), String> {
    match cmd {
        GroupCommand::Show { common, id, au } => {
            let store = common.store.open().await?;
            let groups = Groups::new(store.clone());
            let id = match (id, au) {
                (Some(id), _) => id,
                (None, Some(au)) => AuthorizedUsers::new(store)
                    .get(&au)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or(format!("no Authorized User '{au}'"))?
                    .group
                    .ok_or(format!("Authorized User '{au}' has no Group"))?,
                (None, None) => return Err("give a Group id or --au".into()),
            };
            let g = groups
                .get(&id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no Group '{id}'"))?;
            let quantity = groups.quantity(&id).await.map_err(|e| e.to_string())?;
            println!("Group {}", g.id);
            println!("Authorized User: {}", g.au);
            println!("name: {}", g.name);
            println!("created: {}", instant(g.created_at));
            println!("members: {quantity}");
        }
        GroupCommand::Members {
            common,
            id,
            all,
            json,
        } => {
            let groups = Groups::new(common.store.open().await?);
            if groups.get(&id).await.map_err(|e| e.to_string())?.is_none() {
                return Err(format!("no Group '{id}'"));
            }
            let mut cursor = None;
            loop {
                let (page, next) = groups
                    .members(&id, cursor, 500)
                    .await
                    .map_err(|e| e.to_string())?;
                for m in page.iter().filter(|m| all || m.active) {
                    if json {
                        println!("{}", serde_json::to_string(m).map_err(|e| e.to_string())?);
                    } else {
                        println!("{}", line(m));
                    }
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
    }
    Ok(())
}
