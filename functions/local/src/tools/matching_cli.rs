//! `iisbulk matching compare|link`: the matcher on files, for the people who
//! tune matching in a jurisdiction. JSON lines in, JSON lines out.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use matching::link::Linker;
use matching::{miis, Config, Grade, Matcher, PatientRecord};
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
    /// Learn a matching configuration from a jurisdiction's own records
    /// (no labels): u from random pairs, m by expectation-maximisation,
    /// term frequencies of names, bands from the posterior odds of a match.
    /// Prints what it learned; writes the configuration to --out (or to
    /// stdout, the summary then going to stderr).
    Train(TrainArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// JSON-lines patient records (the `link` format), any order.
    #[arg(long)]
    records: PathBuf,
    /// Where to write the trained configuration (TOML).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The configuration to start from (blocking, similarity, vetoes, and
    /// fields the records lack); the shipped one if not given.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The `version` written into the configuration.
    #[arg(long, default_value = "trained")]
    version: String,
    /// The number of records of the registry the bands are for (default:
    /// the records read). A bigger registry holds more namesakes and needs
    /// more evidence for certain.
    #[arg(long)]
    population: Option<u64>,
    /// Posterior probability of a match at which a pair is certain.
    #[arg(long, default_value_t = 0.9999)]
    certain_posterior: f64,
    /// Posterior probability at which a pair is a possible match (review).
    #[arg(long, default_value_t = 0.05)]
    possible_posterior: f64,
    /// Random pairs drawn for u.
    #[arg(long, default_value_t = 2_000_000)]
    random_pairs: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Labelled pairs (JSON lines, as `iisbulk patients decisions --export`
    /// writes them from reviewers' decisions) to judge the result on: the
    /// summary then says how the base and the trained configuration grade
    /// the pairs of one person and of different people. They are not
    /// trained on: reviewers' pairs are the hard ones the matcher sent
    /// them, no fair sample for m or u. The file holds PHI; nothing of its
    /// records is printed.
    #[arg(long, value_name = "FILE")]
    labelled_pairs: Option<PathBuf>,
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
    /// A labelled pair's label (`matching::labelled`), echoed in the answer.
    #[serde(default)]
    same_person: Option<bool>,
    /// Read so an export's lines are taken as they are; not used here.
    #[serde(default)]
    #[allow(dead_code)]
    decided_at: Option<i64>,
}

pub fn run(command: &MatchingCommand) -> ExitCode {
    let result = match command {
        MatchingCommand::Compare(args) => compare(args),
        MatchingCommand::Link(args) => link(args),
        MatchingCommand::Train(args) => train(args),
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
            let expected = pair.same_person.map(|same| {
                if same {
                    "same person"
                } else {
                    "different people"
                }
            });
            emit(pair.id, &pair.a, &pair.b, expected)?;
        }
    }
    out.flush().map_err(|e| format!("stdout: {e}"))
}

fn link(args: &LinkArgs) -> Result<(), String> {
    let mut linker = Linker::new(matcher(args.config.as_deref())?);
    let mut linked = Vec::new();
    for (n, line) in open(&args.records)?.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", args.records.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: PatientRecord = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: {e}", args.records.display(), n + 1))?;
        let result = linker.link(&record);
        linked.push((record.id, result));
    }
    // Printed once every record is in: a later record can merge a
    // provisional person into another, and each line names the person its
    // record belongs to at the end, as the registry would hold it.
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut grades = [0usize; 3];
    for (id, result) in &linked {
        grades[result.grade as usize] += 1;
        let person = linker.person_now(result.person);
        let mut answer = json!({"id": id, "person": format!("P{person}"), "grade": result.grade});
        if person != result.person {
            answer["linked_to"] = json!(format!("P{}", result.person));
        }
        if let Some(score) = result.score {
            answer["score"] = json!(round(score));
        }
        if !result.possible.is_empty() {
            answer["possible_duplicates"] = result
                .possible
                .iter()
                .map(|p| json!({"person": format!("P{}", linker.person_now(p.person)), "score": round(p.score)}))
                .collect();
        }
        if !result.merged.is_empty() {
            answer["merged"] = result
                .merged
                .iter()
                .map(|p| json!(format!("P{p}")))
                .collect();
        }
        writeln!(out, "{answer}").map_err(|e| format!("stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    let queue = linker.queue();
    eprintln!(
        "iisbulk matching link: {} records: {} certain, {} possible, {} none; review queue at the end: {} provisional persons ({} merged and {} confirmed by later records)",
        linked.len(),
        grades[Grade::Certain as usize],
        grades[Grade::Possible as usize],
        grades[Grade::None as usize],
        queue.waiting,
        queue.merged,
        queue.confirmed
    );
    Ok(())
}

fn odds_bits(posterior: f64, flag: &str) -> Result<f64, String> {
    if !(posterior > 0.0 && posterior < 1.0) {
        return Err(format!("{flag} must be between 0 and 1 (exclusive)"));
    }
    Ok((posterior / (1.0 - posterior)).log2())
}

fn train(args: &TrainArgs) -> Result<(), String> {
    let base = matcher(args.config.as_deref())?.config().clone();
    let mut records = Vec::new();
    for (n, line) in open(&args.records)?.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", args.records.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(
            serde_json::from_str::<PatientRecord>(&line)
                .map_err(|e| format!("{} line {}: {e}", args.records.display(), n + 1))?,
        );
    }
    // Read before the long part, so a bad file fails at once.
    let labelled = match &args.labelled_pairs {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let pairs =
                matching::labelled::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            Some((path, pairs))
        }
        None => None,
    };
    let certain = odds_bits(args.certain_posterior, "--certain-posterior")?;
    let possible = odds_bits(args.possible_posterior, "--possible-posterior")?;
    if possible > certain {
        return Err("--possible-posterior is above --certain-posterior".into());
    }
    let options = matching::train::TrainOptions {
        version: args.version.clone(),
        random_pairs: args.random_pairs,
        seed: args.seed,
        population: args.population,
        certain_odds: certain,
        possible_odds: possible,
        ..Default::default()
    };
    let mut trained = matching::train::train(&records, &base, &options)?;
    if let Some((path, pairs)) = &labelled {
        trained
            .summary
            .push_str(&labelled_summary(path, pairs, &base, &trained.config));
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &trained.config_text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            print!("{}", trained.summary);
            println!("written to {}", path.display());
        }
        None => {
            eprint!("{}", trained.summary);
            print!("{}", trained.config_text);
        }
    }
    Ok(())
}

/// How the base and the trained configuration grade the labelled pairs,
/// in words (counts only).
fn labelled_summary(
    path: &Path,
    pairs: &[matching::labelled::LabelledPair],
    base: &Config,
    trained: &Config,
) -> String {
    use matching::labelled::grade;
    let before = grade(&Matcher::new(base.clone()), pairs);
    let after = grade(&Matcher::new(trained.clone()), pairs);
    let mut text = format!(
        "labelled pairs ({}, judged on, not trained on): {} pairs\n",
        path.display(),
        pairs.len()
    );
    text.push_str(&before.summary(&format!("base ({})", base.version)));
    text.push_str(&after.summary(&format!("trained ({})", trained.version)));
    text.push_str(&format!(
        "  same person graded certain: {} -> {}; different people graded certain (false merges): {} -> {}\n",
        before.same_certain(),
        after.same_certain(),
        before.false_merges(),
        after.false_merges()
    ));
    text
}

fn round(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}
