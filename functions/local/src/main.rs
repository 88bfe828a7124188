//! `iisbulk`: the IIS in one local process, and the tools around it.

mod check;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "iisbulk",
    version,
    about = "HL7 v2 immunization intake and FHIR Bulk Data for an IIS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HL7 v2 tools that need no server.
    Hl7 {
        #[command(subcommand)]
        command: Hl7Command,
    },
}

#[derive(Debug, Subcommand)]
enum Hl7Command {
    /// Print the answer (ACK, or RSP Z33 for a failing query) the IIS would send
    /// for each message file; exit 1 if any message was rejected.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Hl7 {
            command: Hl7Command::Check(args),
        } => check::run(&args),
    }
}
