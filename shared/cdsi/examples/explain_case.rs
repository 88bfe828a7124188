//! Prints the full assessment (every antigen's best series, evaluations and
//! forecasts) for one CDC test case: `cargo run -p cdsi --example
//! explain_case -- CASE_ID [FILE]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(id) = args.get(1) else {
        eprintln!("usage: explain_case CASE_ID [FILE]");
        return ExitCode::FAILURE;
    };
    let file = args.get(2).cloned().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/testcases.ndjson").into()
    });
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data = match cdsi::builtin() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for line in text.lines() {
        let Ok(case) = cdsi::cases::TestCase::parse(line) else {
            continue;
        };
        if &case.id != id {
            continue;
        }
        println!("{line}");
        match case.request() {
            Ok(request) => {
                let assessment = cdsi::assess(data, &request);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&assessment).unwrap_or_default()
                );
                if let Ok(result) = cdsi::cases::run(data, &case) {
                    let outcome = cdsi::cases::check(&case, &result);
                    println!("{}", serde_json::to_string(&result).unwrap_or_default());
                    println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
                }
            }
            Err(e) => eprintln!("{e}"),
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("no case {id} in {file}");
    ExitCode::FAILURE
}
