//! `iisbulk`: the IIS in one local process, and the tools around it.

// The local runtime: the server, its event bus and its storage.
mod data_dir;
mod event_bus;
mod serve;
// What the server and the tools load alike.
mod cdsi_data;
mod policy;
// Commands, by who runs them and what they need.
mod admin;
mod client;
mod demo;
mod tools;

use admin::{au, client_cli, feed_cli, group_cli, patients_cli, staff_cli};
use client::{export_cli, send, token};
use tools::{check, forecast_cli, matching_cli};

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// An export decodes and renders millions of small strings; see the
// workspace Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Runs the whole IIS on a fresh data directory with a demo clinic:
    /// sample and made-up VXUs in over HTTP, a Bulk Data export out.
    Demo(demo::DemoArgs),
    /// Run every HTTP function on one local port, over embedded storage.
    Serve(serve::ServeArgs),
    /// Send HL7 message files to a running IIS and print the answers
    /// (or, with --repeat, drive load and report throughput and latency).
    Send(send::SendArgs),
    /// Manage Authorized Users (also while `iisbulk serve` runs on the same
    /// data: the commands then work through it).
    Au {
        #[command(subcommand)]
        command: au::AuCommand,
    },
    /// Console staff accounts: reviewers, administrators (with a TOTP second
    /// factor), auditors (also while `iisbulk serve` runs).
    Staff {
        #[command(subcommand)]
        command: staff_cli::StaffCommand,
    },
    /// Review matching on the local store: provisional persons, merges,
    /// unmerges (also while `iisbulk serve` runs).
    Patients {
        #[command(subcommand)]
        command: patients_cli::PatientsCommand,
    },
    /// Authorized Users' Groups: show one, list its members and why each
    /// was added (also while `iisbulk serve` runs).
    Group {
        #[command(subcommand)]
        command: group_cli::GroupCommand,
    },
    /// SMART Backend Services clients of Authorized Users (also while
    /// `iisbulk serve` runs).
    Client {
        #[command(subcommand)]
        command: client_cli::ClientCommand,
    },
    /// The local change feed: changes its consumers parked (stop `iisbulk
    /// serve` on the same data first: the feed is the server's own).
    Feed {
        #[command(subcommand)]
        command: feed_cli::FeedCommand,
    },
    /// Print the public JWKS of a private key (for `client add --jwks`).
    Jwks(token::JwksArgs),
    /// Get an access token from a running IIS as a registered client.
    Token(token::TokenArgs),
    /// Bulk-export a Group as a registered client: token, kick-off, polls,
    /// downloads (files and manifest.json into --out).
    Export(export_cli::ExportArgs),
    /// Patient matching on files: grade pairs, or find-or-create over records.
    Matching {
        #[command(subcommand)]
        command: matching_cli::MatchingCommand,
    },
    /// CDSi evaluation and forecast over CDC test cases (JSON lines): one
    /// answer per case, or with --check PASS/FAIL and a summary.
    Forecast(forecast_cli::ForecastArgs),
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
        Command::Matching { command } => matching_cli::run(&command),
        Command::Forecast(args) => forecast_cli::run(&args),
        Command::Patients { command } => runtime().block_on(patients_cli::run(command)),
        Command::Demo(args) => runtime().block_on(demo::run(args)),
        Command::Serve(args) => runtime().block_on(serve::run(args)),
        Command::Send(args) => runtime().block_on(send::run(args)),
        Command::Au { command } => runtime().block_on(au::run(command)),
        Command::Staff { command } => runtime().block_on(staff_cli::run(command)),
        Command::Group { command } => runtime().block_on(group_cli::run(command)),
        Command::Feed { command } => runtime().block_on(feed_cli::run(command)),
        Command::Client { command } => runtime().block_on(client_cli::run_client(command)),
        Command::Jwks(args) => token::run_jwks(&args),
        Command::Token(args) => runtime().block_on(token::run_token(args)),
        Command::Export(args) => runtime().block_on(export_cli::run(args)),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iisbulk: cannot start the async runtime: {e}");
            std::process::exit(2)
        }
    }
}
