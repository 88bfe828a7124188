//! AIRA's labelled IIS pairs (../shared/matching/miis/, every file): no pair
//! AIRA calls "Not a Match" and no multiple-birth scenario may be graded
//! certain. Prints the accuracy per file and per scenario
//! (`cargo test -p matching --test miis -- --nocapture`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use matching::{miis, Grade, Matcher};

fn miis_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/matching/miis")
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

#[test]
fn no_false_merges_on_aira_pairs() {
    let matcher = Matcher::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(miis_dir())
        .expect("../shared/matching/miis is beside the repository")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected every MIIS file, found {}",
        files.len()
    );
    let mut per_scenario: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    println!("{:<40} {:>5} {:>7}", "file / scenario", "pairs", "agree");
    let mut all = Tally::default();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let pairs = miis::parse(&text).expect("well-formed MIIS file");
        let mut tally = Tally::default();
        for pair in &pairs {
            let a = matcher.normalize(&pair.a);
            let b = matcher.normalize(&pair.b);
            let d = matcher.decide(&a, &b);
            // Twin scenarios: two children of one multiple birth must never be
            // merged, whatever AIRA expects for the pair otherwise.
            let twin = pair.scenario().contains("BIRTH_") && pair.expect != Some(Grade::Certain);
            if d.grade == Grade::Certain && (pair.expect == Some(Grade::None) || twin) {
                failures.push(format!(
                    "{} {}: graded certain, expected {:?}\n{}",
                    file.display(),
                    pair.id,
                    pair.expect,
                    serde_json::to_string(&d.explanation).unwrap_or_default()
                ));
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
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("{}", tally.row(&name));
    }
    println!("{}", all.row("ALL FILES"));
    println!();
    for (scenario, tally) in &per_scenario {
        println!("{}", tally.row(scenario));
    }
    assert!(
        failures.is_empty(),
        "{} false merges:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
