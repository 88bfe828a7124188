//! `iisbulk hl7 check`: what a jurisdiction's onboarding team runs on a
//! trading partner's sample messages.

use clap::Args;
use iz::{respond, Clock, IisIdentity, ProfileId, RequestKind, Response};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Message files (ER7; CR, LF or CRLF segment ends).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the findings as JSON lines instead of the answers.
    #[arg(long)]
    json: bool,
    /// Also write each answer to DIR/<file stem>.answer.hl7.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct JsonFinding<'a> {
    file: &'a str,
    location: String,
    path: String,
    hl7_code: &'static str,
    app_code: Option<&'static str>,
    severity: &'static str,
    rule: &'a str,
    message: &'a str,
}

#[derive(Debug, Serialize)]
struct JsonSummary<'a> {
    file: &'a str,
    outcome: &'a str,
    ack_code: Option<&'static str>,
    accepted: bool,
    findings: usize,
    error: Option<String>,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    let me = IisIdentity::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut any_rejected = false;
    if let Some(dir) = &args.out {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("iisbulk: cannot create {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    for path in &args.files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("iisbulk: cannot read {name}: {e}");
                any_rejected = true;
                continue;
            }
        };
        let r = respond(&bytes, &me, Clock::now());
        let rejected = !r.accepted;
        any_rejected |= rejected;
        let outcome = outcome(&r);
        if let (Some(dir), Some(answer)) = (&args.out, &r.answer) {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "message".into());
            if let Err(e) = std::fs::write(dir.join(format!("{stem}.answer.hl7")), answer) {
                eprintln!("iisbulk: cannot write answer for {name}: {e}");
            }
        }
        let written = if args.json {
            write_json(&mut out, &name, &r, &outcome)
        } else {
            write_text(&mut out, &name, &r, &outcome)
        };
        if written.is_err() {
            // Output closed (e.g. piped into head): nothing more to say.
            break;
        }
    }
    if any_rejected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn outcome(r: &Response) -> String {
    if let Some(e) = &r.unreadable {
        return format!("unreadable: {e} (the IIS answers HTTP 400, not HL7)");
    }
    match (r.ack_code, r.accepted, &r.answer) {
        (None, true, _) => match r.kind() {
            Some(RequestKind::Qbp(ProfileId::Z44)) => "query valid (Z44): the query service answers it from the registry (Z42 evaluated history and forecast, Z31 or Z33)".into(),
            _ => "query valid: the query service answers it from the registry (Z32, Z31 or Z33)".into(),
        },
        (Some(code), true, _) => format!("{} - accepted", code.code()),
        (Some(code), false, _) => format!("{} - rejected", code.code()),
        (None, false, _) => "rejected".into(),
    }
}

fn write_text(
    out: &mut impl Write,
    name: &str,
    r: &Response,
    outcome: &str,
) -> std::io::Result<()> {
    writeln!(out, "== {name}: {outcome}")?;
    if let Some(answer) = &r.answer {
        for seg in answer.split('\r').filter(|s| !s.is_empty()) {
            writeln!(out, "{seg}")?;
        }
    }
    writeln!(out)
}

fn write_json(
    out: &mut impl Write,
    name: &str,
    r: &Response,
    outcome: &str,
) -> std::io::Result<()> {
    for f in r.findings() {
        let j = JsonFinding {
            file: name,
            location: f.location.to_erl(),
            path: f.location.to_path(),
            hl7_code: f.hl7_code.code(),
            app_code: f.app_code.map(|a| a.code()),
            severity: f.severity.code(),
            rule: &f.rule,
            message: &f.message,
        };
        writeln!(out, "{}", serde_json::to_string(&j).unwrap_or_default())?;
    }
    let s = JsonSummary {
        file: name,
        outcome,
        ack_code: r.ack_code.map(|c| c.code()),
        accepted: r.accepted,
        findings: r.findings().len(),
        error: r.unreadable.as_ref().map(|e| e.to_string()),
    };
    writeln!(out, "{}", serde_json::to_string(&s).unwrap_or_default())
}
