//! `iisbulk forecast --cases`: the built binary over a few of the CDC cases
//! the cdsi crate vendors, with and without --check, on another copy of the
//! supporting data, and on bad input.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cdsi crate in this repository (its vendored cases and data).
fn cdsi_crate() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("shared")
        .join("cdsi")
}

/// The lines of the vendored cases with these ids, in the file's order.
fn cases(ids: &[&str]) -> String {
    let all = std::fs::read_to_string(cdsi_crate().join("tests/data/testcases.ndjson")).unwrap();
    let lines: Vec<&str> = all
        .lines()
        .filter(|l| {
            ids.iter()
                .any(|id| l.contains(&format!("\"id\": \"{id}\"")))
        })
        .collect();
    assert_eq!(lines.len(), ids.len(), "every asked case is vendored");
    lines.join("\n") + "\n"
}

fn forecast(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .arg("forecast")
        .arg("--cases")
        .arg(file)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// Healthy DTaP cases, and underlying-condition ones (encephalopathy
// after DTaP, HepA travel dose).
const PASSING: [&str; 4] = ["2013-0001", "2013-0002", "2016-UC-0003", "2024-UC-0012"];

#[test]
fn check_passes_vendored_cases_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.ndjson");
    std::fs::write(&file, cases(&PASSING)).unwrap();
    let out = forecast(&["--check"], &file);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for id in PASSING {
        assert!(stdout.contains(&format!("PASS {id}\n")), "{stdout}");
    }
    assert!(
        stdout.ends_with(
            "4 cases: 4 pass, 0 fail (evaluation 4, forecast 4); supporting data 4.64\n"
        ),
        "{stdout}"
    );
}

#[test]
fn check_names_a_failing_case_with_its_first_difference_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.ndjson");
    // A case whose expected earliest date is moved by a day.
    let moved = cases(&["2013-0002"]).replacen(
        "\"earliest\": \"2025-12-08\"",
        "\"earliest\": \"2025-12-09\"",
        1,
    );
    std::fs::write(&file, cases(&["2013-0001"]) + &moved).unwrap();
    let out = forecast(&["--check"], &file);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PASS 2013-0001\n"), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL 2013-0002 [DTaP/Tdap/Td] earliest: expected 2025-12-09, got 2025-12-08\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("2 cases: 1 pass, 1 fail"), "{stdout}");
}

#[test]
fn without_check_each_case_is_one_json_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.ndjson");
    std::fs::write(&file, cases(&["2013-0002", "2016-UC-0003"])).unwrap();
    let out = forecast(&[], &file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answers: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["id"], "2013-0002");
    assert_eq!(answers[0]["doses"][0]["dose_number"], 1);
    assert!(answers[0]["doses"][0]["evaluation_status"].is_string());
    let f = &answers[1]["forecast"];
    assert_eq!(f["vaccine_group_cdsi"], "DTaP/Tdap/Td");
    assert_eq!(f["series_status"], "Not Complete");
    assert_eq!(f["dose_number"], 2);
    assert_eq!(f["earliest"], "2011-04-30");
    assert_eq!(f["recommended"], "2011-06-02");
    assert_eq!(f["past_due"], "2011-07-29");
    assert!(f["latest"].is_null());
    assert_eq!(answers[1]["supporting_data_version"], "4.64");
}

#[test]
fn another_release_is_loaded_from_a_directory_and_named_in_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    // CDC's own layout: "Version <release> - 508/XML".
    let xml = dir.path().join("Version 4.64-local - 508").join("XML");
    std::fs::create_dir_all(&xml).unwrap();
    for entry in std::fs::read_dir(cdsi_crate().join("data/4.64")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, xml.join(path.file_name().unwrap())).unwrap();
    }
    let file = dir.path().join("cases.ndjson");
    std::fs::write(&file, cases(&["2013-0001"])).unwrap();
    let out = forecast(&["--cdsi-data", xml.to_str().unwrap()], &file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(answer["supporting_data_version"], "4.64-local");

    // A directory without the data is an error naming the file.
    let out = forecast(&["--cdsi-data", dir.path().to_str().unwrap()], &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ScheduleSupportingData.xml"));
}

#[test]
fn bad_input_is_exit_2_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.ndjson");
    std::fs::write(
        &file,
        cases(&["2013-0001"]) + "\n{\"id\": \"broken\", \"dob\": \n",
    )
    .unwrap();
    let out = forecast(&["--check"], &file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("iisbulk forecast: {} line 3: ", file.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A readable line that is no valid case names the case too.
    std::fs::write(
        &file,
        cases(&["2013-0001"]).replace("\"dob\": \"", "\"dob\": \"not-a-date "),
    )
    .unwrap();
    let out = forecast(&[], &file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 1: case 2013-0001: dob"), "{stderr}");

    let missing = dir.path().join("missing.ndjson");
    let out = forecast(&["--check"], &missing);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("{}: ", missing.display())));
}
