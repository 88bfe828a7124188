//! AIRA's labelled IIS pairs (testdata/matching/miis/, every file): no
//! multiple-birth scenario graded certain, at least 90% of "Match" pairs
//! certain, and the "Not a Match" pairs graded certain exactly the ones
//! looked at and listed below. Prints the accuracy per file and per
//! scenario (`cargo test -p matching --test miis -- --nocapture`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use matching::{miis, Grade, Matcher};

fn miis_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/matching/miis")
}

#[derive(Default)]
struct Tally {
    // [expected][graded] over none/possible/certain; "Not Sure" is not counted.
    grid: [[usize; 3]; 3],
}

impl Tally {
    fn add(&mut self, expected: Grade, graded: Grade) {
        self.grid[expected as usize][graded as usize] += 1;
    }
    fn total(&self) -> usize {
        self.grid.iter().flatten().sum()
    }
    fn agree(&self) -> usize {
        (0..3).map(|i| self.grid[i][i]).sum()
    }
    fn false_merges(&self) -> usize {
        self.grid[Grade::None as usize][Grade::Certain as usize]
    }
    fn row(&self, name: &str) -> String {
        let g = &self.grid;
        format!(
            "{name:<40} {:>5} {:>6.1}%  match→certain {:>4}/{:<4} possible→possible {:>4}/{:<4} none→none {:>4}/{:<4} FALSE MERGES {}",
            self.total(),
            100.0 * self.agree() as f64 / self.total().max(1) as f64,
            g[2][2],
            g[2].iter().sum::<usize>(),
            g[1][1],
            g[1].iter().sum::<usize>(),
            g[0][0],
            g[0].iter().sum::<usize>(),
            self.false_merges()
        )
    }
}

/// "Not a Match" pairs the shipped configuration grades certain, each
/// looked at. Two kinds:
///
/// * the very same pair is labelled "Match" in other MIIS files (MIIS-C
///   labels the SSN scenarios' thin records "Not a Match" where five files
///   say "Match"; D-1378 is "Match" in MIIS-D): no decision can agree with
///   both labels;
/// * AIRA's constructed negatives where every field the two share agrees
///   and what differs is what changes for one child (an address, a phone, a
///   guardian's surname), often with a shared chart or Medicaid number: the
///   evidence says one child.
///
/// The list is exact: a new false merge fails, and so does one that is
/// gone (take it out, and out of the README).
const KNOWN: &[(&str, &str)] = &[
    ("MIIS-B.txt", "D-611:MEDICAID_NUM_MISSING:GOODA-GREATA"),
    ("MIIS-B.txt", "D-680:MEDICAID_NUM_SHARED:BAD-IDEAL"),
    ("MIIS-B.txt", "D-1100:MRN_SHARED_MRN:GOODA-IDEAL"),
    ("MIIS-B.txt", "D-1124:MRN_SHARED_MRN:BAD-GOODA"),
    ("MIIS-B.txt", "D-1137:PHONE_AREA_CODE_CHANGE:GREATA-GREATB"),
    ("MIIS-B.txt", "D-1378:SUFFIX_MISSING:IDEAL-POOR"),
    ("MIIS-C.txt", "D-786:MIDDLE_NAME_TYPO:IDEAL-GREATA"),
    ("MIIS-C.txt", "D-1063:MRN_SHARED_MRN:GOODB-POOR"),
    ("MIIS-C.txt", "D-1090:PHONE_AREA_CODE_CHANGE:GREATA-GOODB"),
    ("MIIS-C.txt", "D-1378:SUFFIX_MISSING:IDEAL-POOR"),
    ("MIIS-C.txt", "S-1301:SSN_SHARED:GOODA-POOR"),
    ("MIIS-C.txt", "S-1308:SSN_SHARED:GOODB-POOR"),
    ("MIIS-C.txt", "S-1313:SSN_SHARED:POOR-GOODA"),
    ("MIIS-C.txt", "S-1314:SSN_SHARED:POOR-GOODB"),
    ("MIIS-C.txt", "S-1315:SSN_SHARED:POOR-POOR"),
    ("MIIS-C.txt", "S-1350:SSN_TYPO:GOODA-POOR"),
    ("MIIS-C.txt", "S-1357:SSN_TYPO:GOODB-POOR"),
    ("MIIS-C.txt", "S-1362:SSN_TYPO:POOR-GOODA"),
    ("MIIS-C.txt", "S-1363:SSN_TYPO:POOR-GOODB"),
];

#[test]
fn aira_pairs_twins_never_certain_and_matches_mostly_certain() {
    let matcher = Matcher::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(miis_dir())
        .expect("testdata/matching/miis is part of the repository")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected every MIIS file, found {}",
        files.len()
    );
    // Every pair's labels across the files, to tell a contradicted label.
    let mut parsed = Vec::new();
    let mut labels: BTreeMap<String, Vec<Option<Grade>>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let pairs = miis::parse(&text).expect("well-formed MIIS file");
        for pair in &pairs {
            labels.entry(content(pair)).or_default().push(pair.expect);
        }
        parsed.push((file, pairs));
    }
    let mut per_scenario: BTreeMap<String, Tally> = BTreeMap::new();
    let mut twins = Vec::new();
    let mut not_a_match = Vec::new();
    println!("{:<40} {:>5} {:>7}", "file / scenario", "pairs", "agree");
    let mut all = Tally::default();
    for (file, pairs) in &parsed {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tally = Tally::default();
        for pair in pairs {
            let a = matcher.normalize(&pair.a);
            let b = matcher.normalize(&pair.b);
            let d = matcher.decide(&a, &b);
            // Twin scenarios: two children of one multiple birth must never be
            // merged, whatever AIRA expects for the pair otherwise.
            let twin = pair.scenario().contains("BIRTH_") && pair.expect != Some(Grade::Certain);
            if d.grade == Grade::Certain && twin {
                twins.push(format!("{name} {}", pair.id));
            }
            if d.grade == Grade::Certain && pair.expect == Some(Grade::None) {
                let contradicted = labels
                    .get(&content(pair))
                    .is_some_and(|l| l.contains(&Some(Grade::Certain)));
                not_a_match.push((name.clone(), pair.id.clone(), contradicted, d.score));
            }
            if let Some(expected) = pair.expect {
                tally.add(expected, d.grade);
                all.add(expected, d.grade);
                per_scenario
                    .entry(pair.scenario().to_owned())
                    .or_default()
                    .add(expected, d.grade);
            }
        }
        println!("{}", tally.row(&name));
    }
    println!("{}", all.row("ALL FILES"));
    println!();
    for (scenario, tally) in &per_scenario {
        println!("{}", tally.row(scenario));
    }
    println!();
    for (file, id, contradicted, score) in &not_a_match {
        println!(
            "Not a Match graded certain: {file} {id} (score {score:.2}){}",
            if *contradicted {
                "; the same pair is labelled Match in another MIIS file"
            } else {
                ""
            }
        );
    }
    assert!(twins.is_empty(), "twin pairs graded certain: {twins:?}");
    let certain = all.grid[Grade::Certain as usize][Grade::Certain as usize];
    let matches: usize = all.grid[Grade::Certain as usize].iter().sum();
    assert!(
        certain * 10 >= matches * 9,
        "only {certain} of {matches} Match pairs graded certain (at least 90% expected)"
    );
    let found: Vec<(&str, &str)> = not_a_match
        .iter()
        .map(|(f, id, _, _)| (f.as_str(), id.as_str()))
        .collect();
    let unexpected: Vec<_> = found.iter().filter(|p| !KNOWN.contains(p)).collect();
    let gone: Vec<_> = KNOWN.iter().filter(|p| !found.contains(p)).collect();
    assert!(
        unexpected.is_empty() && gone.is_empty(),
        "Not a Match pairs graded certain changed: new {unexpected:?}, no longer {gone:?}"
    );
}

/// A pair's records as written, to find the same pair in another file.
fn content(pair: &miis::MiisPair) -> String {
    format!("{:?}|{:?}", strip(&pair.a), strip(&pair.b))
}

fn strip(r: &matching::PatientRecord) -> matching::PatientRecord {
    matching::PatientRecord {
        id: String::new(),
        ..r.clone()
    }
}
