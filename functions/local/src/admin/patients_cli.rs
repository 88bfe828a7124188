//! `iisbulk patients …`: the review desk for matching on the local store
//! (also while `iisbulk serve` runs on the same data). Output is JSON lines.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use matching::Matcher;
use registry::patients::{decisions, PatientMatching};
use registry::persons::Persons;
use serde_json::json;

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    store: crate::admin::backend::StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum PatientsCommand {
    /// Provisional persons waiting for review, oldest first, with the
    /// persons they may duplicate and why; on stderr, how many wait.
    Review {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only persons with a source record from this Authorized User
        /// (the whole queue is searched, as the console's filter does).
        #[arg(long)]
        au: Option<String>,
    },
    /// One person: status, demographics, source records and their links,
    /// immunization history, potential duplicates.
    Show {
        #[command(flatten)]
        common: Common,
        person: String,
    },
    /// Move a source record to another person (a merge), or with --new to a
    /// person of its own (an unmerge). The link becomes manual.
    Link {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        source: String,
        #[arg(long, conflicts_with = "new", required_unless_present = "new")]
        to: Option<String>,
        #[arg(long)]
        new: bool,
    },
    /// Confirm a provisional person is nobody else: it becomes active and
    /// its potential-duplicate flags are cleared.
    Confirm {
        #[command(flatten)]
        common: Common,
        person: String,
    },
    /// Reviewers' decisions on the possible-duplicate queue, oldest first,
    /// as JSON lines (person ids, verdict, reviewer, reason, time).
    ///
    /// With --export FILE, they are written instead as labelled pairs for
    /// matching (`iisbulk matching train --labelled-pairs FILE`, `matching
    /// compare --pairs FILE`): each record that was the decided person's
    /// beside each record of the person it was compared with, as matching
    /// reads them now, with "same_person" true for a merge and false for
    /// keeping them apart (or an unmerge).
    ///
    /// THE EXPORTED FILE HOLDS PHI (names, birth dates, addresses,
    /// identifiers): it is created readable by its owner only (mode 0600),
    /// never over an existing file; keep it where the registry's data may
    /// be kept, and delete it when done. Nothing of the records is printed.
    Decisions {
        #[command(flatten)]
        common: Common,
        /// Write labelled pairs (JSON lines, PHI) to this new file.
        #[arg(long, value_name = "FILE")]
        export: Option<std::path::PathBuf>,
    },
}

pub async fn run(cmd: PatientsCommand) -> ExitCode {
    match run_inner(cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iisbulk patients: {e}");
            ExitCode::from(1)
        }
    }
}

/// The reading side alone, for the commands that only show.
async fn open(common: &Common) -> Result<Persons, String> {
    Ok(Persons::new(common.store.open().await?))
}

/// The matcher, for a reviewer's link edits: they rebuild histories and
/// re-file blocking keys as the matcher does, and a manual link records the
/// matching configuration in force.
async fn open_matching(common: &Common) -> Result<PatientMatching, String> {
    let store = common.store.open().await?;
    Ok(PatientMatching::new(store, Arc::new(Matcher::default())))
}

fn now_ms() -> i64 {
    iz::Clock::now().unix_seconds * 1000
}

async fn run_inner(cmd: PatientsCommand) -> Result<(), String> {
    match cmd {
        PatientsCommand::Review { common, limit, au } => {
            let m = open(&common).await?;
            let slice = m
                .review_queue_slice(au.as_deref(), limit)
                .await
                .map_err(|e| e.to_string())?;
            for person in slice.persons {
                let dups = m
                    .potential_duplicates(&person.id)
                    .await
                    .map_err(|e| e.to_string())?;
                let sources = m.sources_of(&person.id).await.map_err(|e| e.to_string())?;
                println!(
                    "{}",
                    json!({"person": person.id, "notes": person.notes, "sources": sources, "potential_duplicates": dups})
                );
            }
            match au {
                Some(au) => eprintln!("{} waiting with a record from {au}", slice.waiting),
                None => eprintln!("{} waiting", slice.waiting),
            }
        }
        PatientsCommand::Show { common, person } => {
            let m = open(&common).await?;
            let p = m
                .person(&person)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no person {person}"))?;
            let mut sources = Vec::new();
            for sid in m.sources_of(&person).await.map_err(|e| e.to_string())? {
                if let Some(s) = m.source(&sid).await.map_err(|e| e.to_string())? {
                    sources.push(json!({"id": s.id, "authorized_user": s.au, "link": s.link, "last_message": s.last_message}));
                }
            }
            let history = m.history(&person).await.map_err(|e| e.to_string())?;
            let dups = m
                .potential_duplicates(&person)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                json!({"person": p, "sources": sources, "immunizations": history, "potential_duplicates": dups})
            );
        }
        PatientsCommand::Link {
            common,
            source,
            to,
            new,
        } => {
            let m = open_matching(&common).await?;
            let target = if new { None } else { to.as_deref() };
            let person = m
                .relink(&source, target, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                json!({"source": source, "person": person, "link": "manual"})
            );
        }
        PatientsCommand::Decisions { common, export } => {
            let store = common.store.open().await?;
            let decisions = decisions::all_decisions(&store)
                .await
                .map_err(|e| e.to_string())?;
            match export {
                None => {
                    for d in &decisions {
                        println!("{}", json!(d));
                    }
                }
                Some(path) => export_pairs(&Persons::new(store), &decisions, &path).await?,
            }
        }
        PatientsCommand::Confirm { common, person } => {
            let m = open_matching(&common).await?;
            m.confirm(&person, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", json!({"person": person, "status": "active"}));
        }
    }
    Ok(())
}

/// Writes the decisions' labelled pairs to a new file of the owner's alone,
/// and says on stderr how many (counts only: the pairs hold PHI).
async fn export_pairs(
    persons: &Persons,
    all: &[decisions::ReviewDecision],
    path: &std::path::Path,
) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} exists; the export never writes over a file (it holds PHI): name a new one",
                path.display()
            )
        } else {
            format!("{}: {e}", path.display())
        }
    })?;
    let mut out = std::io::BufWriter::new(file);
    let (mut same, mut different, mut unresolved) = (0usize, 0usize, 0usize);
    for decision in all {
        let pairs = decisions::labelled_pairs(persons, decision)
            .await
            .map_err(|e| e.to_string())?;
        if pairs.is_empty() {
            unresolved += 1;
        }
        for pair in &pairs {
            if pair.same_person {
                same += 1;
            } else {
                different += 1;
            }
            let line = serde_json::to_string(pair).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "iisbulk patients decisions: {} decisions as {} labelled pairs ({same} same person, {different} different people) in {} (PHI; readable by its owner only){}",
        all.len(),
        same + different,
        path.display(),
        if unresolved > 0 {
            format!("; {unresolved} decisions whose records the registry no longer knows on one side")
        } else {
            String::new()
        }
    );
    Ok(())
}
