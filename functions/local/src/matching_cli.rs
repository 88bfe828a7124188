//! `iisbulk matching compare|link`: the matcher on files, for the people who
//! tune matching in a jurisdiction. JSON lines in, JSON lines out.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use matching::link::Linker;
use matching::{miis, Config, Matcher, PatientRecord};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum MatchingCommand {
    /// Grade pairs of patient records: reads JSON lines
    /// {"id":..,"a":{record},"b":{record}} (or an AIRA MIIS file) and prints
    /// {"id","grade","score","explanation"} per pair.
    Compare(CompareArgs),
    /// Find-or-create over records in arrival order: reads one record per
    /// line and prints {"id","person","grade",...} as the IIS would decide.
    Link(LinkArgs),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// JSON-lines pairs, or an MIIS text file (recognised by its TEST: lines).
    #[arg(long)]
    pairs: PathBuf,
    /// A matching configuration (TOML) instead of the shipped one.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// JSON-lines patient records, in arrival order.
    #[arg(long)]
    records: PathBuf,
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    id: serde_json::Value,
    a: PatientRecord,
    b: PatientRecord,
}

pub fn run(command: &MatchingCommand) -> ExitCode {
    let result = match command {
        MatchingCommand::Compare(args) => compare(args),
        MatchingCommand::Link(args) => link(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("iisbulk matching: {message}");
            ExitCode::from(2)
        }
    }
}

fn matcher(config: Option<&Path>) -> Result<Matcher, String> {
    let config = match config {
        None => Config::built_in(),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    Ok(Matcher::new(config))
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, String> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn compare(args: &CompareArgs) -> Result<(), String> {
    let matcher = matcher(args.config.as_deref())?;
    let text = std::fs::read_to_string(&args.pairs)
        .map_err(|e| format!("{}: {e}", args.pairs.display()))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut emit = |id: serde_json::Value,
                    a: &PatientRecord,
                    b: &PatientRecord,
                    expected: Option<&str>| {
        let d = matcher.decide(&matcher.normalize(a), &matcher.normalize(b));
        let mut line = json!({"id": id, "grade": d.grade, "score": round(d.score), "explanation": d.explanation});
        if let Some(e) = expected {
            line["expected"] = json!(e);
        }
        writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))
    };
    if text.trim_start().starts_with("TEST:") {
        let pairs = miis::parse(&text).map_err(|e| format!("{}: {e}", args.pairs.display()))?;
        for p in &pairs {
            let expected = p.expect.map(|g| g.as_str()).unwrap_or("not sure");
            emit(json!(p.id), &p.a, &p.b, Some(expected))?;
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let pair: Pair = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", args.pairs.display(), n + 1))?;
            emit(pair.id, &pair.a, &pair.b, None)?;
        }
    }
    out.flush().map_err(|e| format!("stdout: {e}"))
}

fn link(args: &LinkArgs) -> Result<(), String> {
    let mut linker = Linker::new(matcher(args.config.as_deref())?);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (n, line) in open(&args.records)?.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", args.records.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: PatientRecord = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: {e}", args.records.display(), n + 1))?;
        let linked = linker.link(&record);
        let mut answer = json!({"id": record.id, "person": format!("P{}", linked.person), "grade": linked.grade});
        if let Some(score) = linked.score {
            answer["score"] = json!(round(score));
        }
        if !linked.possible.is_empty() {
            answer["possible_duplicates"] = linked
                .possible
                .iter()
                .map(|p| json!({"person": format!("P{}", p.person), "score": round(p.score)}))
                .collect();
        }
        writeln!(out, "{answer}").map_err(|e| format!("stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))
}

fn round(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}
