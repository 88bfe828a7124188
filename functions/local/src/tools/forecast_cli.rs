//! `iisbulk forecast --cases FILE [--check]`: the CDSi engine over CDC test
//! cases (JSON lines, the schema of the cdsi crate's `testcases.ndjson`).
//! A loop over `cdsi::cases`; the engine and the comparison live there.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cdsi::SupportingData;
use clap::Args;

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// CDC test cases, one JSON object per line.
    #[arg(long)]
    cases: PathBuf,
    /// Compare with each case's expected values: print PASS or FAIL (with
    /// the first difference) per case and a summary; exit 1 if any fails.
    #[arg(long)]
    check: bool,
    /// Load the supporting data from this directory (CDC's
    /// ScheduleSupportingData.xml and AntigenSupportingData*.xml) instead
    /// of the built-in release.
    #[arg(long, value_name = "DIR")]
    cdsi_data: Option<PathBuf>,
    /// The release name reported in every answer for --cdsi-data; by
    /// default taken from the directory's name ("Version 4.65 - 508/XML"
    /// gives "4.65").
    #[arg(long, value_name = "VERSION", requires = "cdsi_data")]
    cdsi_version: Option<String>,
}

/// Counts for the --check summary.
#[derive(Default)]
struct Tally {
    cases: usize,
    pass: usize,
    evaluation: usize,
    forecast: usize,
}

pub fn run(args: &ForecastArgs) -> ExitCode {
    match forecast(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("iisbulk forecast: {message}");
            ExitCode::from(2)
        }
    }
}

/// The --cdsi-data release, when one is asked for.
fn loaded_data(args: &ForecastArgs) -> Result<Option<SupportingData>, String> {
    args.cdsi_data
        .as_deref()
        .map(|dir| crate::cdsi_data::load(dir, args.cdsi_version.as_deref()))
        .transpose()
}

/// Runs every case; `Ok(false)` when --check found a failing case.
fn forecast(args: &ForecastArgs) -> Result<bool, String> {
    let loaded = loaded_data(args)?;
    let data = match &loaded {
        Some(data) => data,
        None => cdsi::builtin().map_err(|e| e.to_string())?,
    };
    let path: &Path = &args.cases;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut tally = Tally::default();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let at = || format!("{} line {}", path.display(), n + 1);
        let line = line.map_err(|e| format!("{}: {e}", at()))?;
        if line.trim().is_empty() {
            continue;
        }
        let (case, result, outcome) =
            cdsi::cases::run_line(data, &line).map_err(|e| format!("{}: {e}", at()))?;
        let written = if args.check {
            tally.cases += 1;
            tally.pass += usize::from(outcome.pass());
            tally.evaluation += usize::from(outcome.evaluation_pass);
            tally.forecast += usize::from(outcome.forecast_pass);
            match &outcome.first_difference {
                None => writeln!(out, "PASS {}", case.id),
                Some(difference) => writeln!(
                    out,
                    "FAIL {} [{}] {difference}",
                    case.id, case.vaccine_group_cdsi
                ),
            }
        } else {
            let json = serde_json::to_string(&result).map_err(|e| format!("{}: {e}", at()))?;
            writeln!(out, "{json}")
        };
        written.map_err(|e| format!("stdout: {e}"))?;
    }
    if args.check {
        writeln!(
            out,
            "{} cases: {} pass, {} fail (evaluation {}, forecast {}); supporting data {}",
            tally.cases,
            tally.pass,
            tally.cases - tally.pass,
            tally.evaluation,
            tally.forecast,
            data.version
        )
        .map_err(|e| format!("stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    Ok(tally.pass == tally.cases)
}
