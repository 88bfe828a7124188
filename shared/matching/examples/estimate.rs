//! Estimates Fellegi-Sunter m and u from FEBRL 3 and 4 without their
//! labels (see `matching::estimate`): how config/general-fs-2.toml's
//! weights for the fields FEBRL holds were found. The configuration keeps
//! them to two significant figures, keeps general-fs-1's values for levels
//! seen too rarely (m below 0.001), and raises u where a level would
//! outweigh exact agreement.
//!
//!     IISBULK_FEBRL_DIR=<dir of febrl3.jsonl, febrl4a.jsonl, febrl4b.jsonl> \
//!         cargo run --release -p matching --example estimate

use std::path::PathBuf;

use matching::estimate::{estimate, Levels};
use matching::index::MemoryIndex;
use matching::rng::Rng;
use matching::score::assess;
use matching::{Config, Field, Matcher, PatientRecord};

const RANDOM_PAIRS_PER_SET: usize = 300_000;
const ROUNDS: usize = 200;

fn read(dir: &std::path::Path, name: &str) -> Result<Vec<PatientRecord>, String> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

fn main() -> Result<(), String> {
    let dir = PathBuf::from(std::env::var_os("IISBULK_FEBRL_DIR").ok_or("set IISBULK_FEBRL_DIR")?);
    // Levels do not depend on the weights; blocking uses the shipped cap.
    let config = Config::built_in();
    let matcher = Matcher::new(config.clone());
    let mut candidates: Vec<Levels> = Vec::new();
    let mut random: Vec<Levels> = Vec::new();
    let mut rng = Rng::new(42);
    let sets = [
        vec![read(&dir, "febrl3.jsonl")?],
        vec![read(&dir, "febrl4a.jsonl")?, read(&dir, "febrl4b.jsonl")?],
    ];
    for files in &sets {
        // Deduplicate one file, or link the second file to the first.
        let records: Vec<(usize, _)> = files
            .iter()
            .enumerate()
            .flat_map(|(f, rs)| rs.iter().map(move |r| (f, r)))
            .map(|(f, r)| (f, matcher.normalize(r)))
            .collect();
        let mut index = MemoryIndex::new(config.blocking.max_block);
        for (i, (file, probe)) in records.iter().enumerate() {
            for at in index.lookup(probe).records {
                if let Some((other_file, other)) = records.get(at as usize) {
                    if files.len() == 1 || other_file != file {
                        candidates.push(assess(&config, probe, other).levels);
                    }
                }
            }
            index.insert(i as u32, probe.clone());
        }
        for _ in 0..RANDOM_PAIRS_PER_SET {
            let (i, j) = (rng.below(records.len()), rng.below(records.len()));
            if i != j {
                random.push(assess(&config, &records[i].1, &records[j].1).levels);
            }
        }
    }
    let e = estimate(&candidates, &random, ROUNDS);
    println!(
        "# {} candidate pairs, {} random pairs; matches among candidates {:.4}",
        candidates.len(),
        random.len(),
        e.match_share
    );
    for field in Field::ALL {
        if e.present[field as usize] == 0 {
            println!("# [fields.{}]: not in the data", field.name());
            continue;
        }
        println!("[fields.{}]", field.name());
        for level in field.levels() {
            let (m, u) = (
                e.m[field as usize][*level as usize],
                e.u[field as usize][*level as usize],
            );
            println!(
                "{:<14} = {{ m = {m:.5}, u = {u:.6} }}  # weight {:.2}",
                level.name(),
                (m / u).log2()
            );
        }
    }
    Ok(())
}
