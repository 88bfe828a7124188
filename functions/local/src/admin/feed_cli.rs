//! `iisbulk feed …`: the local change feed's consumers, and the changes
//! they parked; while `iisbulk serve` runs on the same data, through the
//! store it lends (`data_dir::open_or_borrow`), as the other admin commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::data_dir;
use crate::event_bus::{feed_trim, parked};

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Changes a consumer (matcher, membership, export) could not apply and
    /// set aside, as JSON lines: the feed position, the event, the last
    /// error, attempts. `iisbulk serve` tries them again when it starts.
    /// (On AWS the stack's dead-letter queue holds these instead.)
    Parked {
        /// Data directory of the local IIS.
        #[arg(long, default_value = data_dir::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Only this consumer's.
        #[arg(long, value_parser = feed_trim::CONSUMERS)]
        consumer: Option<String>,
    },
}

pub async fn run(cmd: FeedCommand) -> ExitCode {
    match run_inner(cmd).await {
        Ok(0) => ExitCode::SUCCESS,
        // Something is waiting for a person: say so in the exit status too,
        // so a health check can alert on it.
        Ok(_) => ExitCode::from(3),
        Err(e) => {
            eprintln!("iisbulk feed: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_inner(cmd: FeedCommand) -> Result<usize, String> {
    match cmd {
        FeedCommand::Parked { data_dir, consumer } => {
            // Parked changes are items of the store (parked.rs), so the
            // running server's lent store answers as the file would.
            let store = data_dir::open_or_borrow(&data_dir)?;
            let mut count = 0;
            for c in feed_trim::CONSUMERS {
                if consumer.as_deref().is_some_and(|only| only != c) {
                    continue;
                }
                for p in parked::list(store.as_ref(), c)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    println!("{}", serde_json::to_string(&p).map_err(|e| e.to_string())?);
                    count += 1;
                }
            }
            eprintln!("{count} parked change(s)");
            Ok(count)
        }
    }
}
