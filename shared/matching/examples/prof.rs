#![allow(clippy::unwrap_used, clippy::all, missing_debug_implementations)]
// TEMPORARY profiling harness (to be deleted).
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use matching::blocking::{index_keys, query_keys};
use matching::index::MemoryIndex;
use matching::score::assess;
use matching::synth::Population;
use matching::{Config, Grade, Matcher};

fn main() {
    if std::env::var("KEYS").is_ok() {
        let pop = Population::generate(300_000, 20_251_031);
        let m = Matcher::default();
        let mut h = rustc_hash::FxHasher::default();
        let mut n = 0usize;
        for r in pop.people.iter().chain(
            pop.queries(7)
                .take(30_000)
                .map(|q| q.record)
                .collect::<Vec<_>>()
                .iter(),
        ) {
            let x = m.normalize(r);
            let (a, b) = (index_keys(&x), query_keys(&x));
            n += a.len() + b.len();
            a.hash(&mut h);
            b.hash(&mut h);
        }
        println!("keys {n} fingerprint {:016x}", h.finish());
        return;
    }
    if let Ok(c) = std::env::var("SWEEP") {
        febrl_sweep(&c);
        return;
    }
    if let Ok(c) = std::env::var("EM") {
        febrl_em(&c);
        return;
    }
    if let Ok(c) = std::env::var("MISSES") {
        febrl_misses(&c);
        return;
    }
    println!(
        "sizes: Sketch {} MatchRecord {}",
        std::mem::size_of::<matching::Sketch>(),
        std::mem::size_of::<matching::MatchRecord>()
    );
    if std::env::var("FEBRL").is_ok() {
        febrl_kinds();
        return;
    }
    let people: usize = std::env::var("P")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let nq: usize = std::env::var("Q")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let general = Config::parse(include_str!("../config/general-fs-1.toml")).unwrap();
    let configs = [Config::built_in(), general];
    let matcher = Matcher::default();
    let pop = Population::generate(people, 20_251_031);
    let mut index = MemoryIndex::new(300);
    for (i, r) in pop.people.iter().enumerate() {
        index.insert(i as u32, matcher.normalize(r));
    }
    let queries: Vec<_> = pop.queries(7).take(nq).collect();
    let probes: Vec<_> = queries
        .iter()
        .map(|q| matcher.normalize(&q.record))
        .collect();
    if std::env::var("FIND_ONLY").is_ok() {
        eprintln!("index ready");
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed().as_secs() < 20 {
            for p in &probes {
                n += index.find(&matcher, p).scored;
            }
        }
        println!("{n}");
        return;
    }
    let t = Instant::now();
    let lookups: Vec<Vec<u32>> = probes.iter().map(|p| index.lookup(p).records).collect();
    let lookup_time = t.elapsed();
    let pairs: usize = lookups.iter().map(Vec::len).sum();
    println!(
        "lookup {:.3}s for {} queries, {} pairs ({:.1}/q), {:.0} ns/query",
        lookup_time.as_secs_f64(),
        nq,
        pairs,
        pairs as f64 / nq as f64,
        lookup_time.as_nanos() as f64 / nq as f64
    );
    for config in &configs {
        let mut h = rustc_hash::FxHasher::default();
        let mut grades = [0usize; 3];
        let t = Instant::now();
        for (p, cands) in probes.iter().zip(&lookups) {
            for &at in cands {
                let (_, r) = index.record(at).unwrap();
                let a = assess(config, p, r);
                grades[a.grade as usize] += 1;
                (
                    a.grade as u8,
                    a.uncapped as u8,
                    a.score.to_bits(),
                    a.compared,
                    a.vetoes,
                )
                    .hash(&mut h);
                for l in a.levels {
                    (l as u8).hash(&mut h);
                }
            }
        }
        let el = t.elapsed();
        println!("{}: assess {:.3}s = {:.0} ns/pair; grades none/possible/certain {:?}; fingerprint {:016x}", config.version, el.as_secs_f64(), el.as_nanos() as f64 / pairs as f64, grades, h.finish());
        let t = Instant::now();
        let m = Matcher::new(config.clone());
        let mut h = rustc_hash::FxHasher::default();
        for (p, cands) in probes.iter().zip(&lookups) {
            let o = m.choose(p, cands.iter().filter_map(|at| index.record(*at)));
            (o.grade as u8, o.person, o.compared).hash(&mut h);
            for (person, d) in &o.candidates {
                (person, d.grade as u8, d.score.to_bits()).hash(&mut h);
            }
        }
        let el = t.elapsed();
        println!(
            "{}: choose {:.3}s = {:.0} ns/pair; outcome fingerprint {:016x}",
            config.version,
            el.as_secs_f64(),
            el.as_nanos() as f64 / pairs as f64,
            h.finish()
        );
    }
    let sketches: Vec<_> = (0..index.len() as u32)
        .map(|at| matching::Sketch::of(index.record(at).unwrap().1))
        .collect();
    for config in &configs {
        let (mut pass, mut real, mut total) = (0usize, 0usize, 0usize);
        let mut slack: BTreeMap<i64, usize> = BTreeMap::new();
        for (p, cands) in probes.iter().zip(&lookups) {
            let ps = matching::Sketch::of(p);
            for &at in cands {
                let (_, r) = index.record(at).unwrap();
                let a = assess(config, p, r);
                let c = matching::sketch::ceiling(config, &ps, &sketches[at as usize]);
                assert!(c >= a.score, "ceiling {c} < {} for {p:?} vs {r:?}", a.score);
                total += 1;
                if c >= config.bands.possible {
                    pass += 1;
                    *slack.entry((c - a.score).round() as i64).or_default() += 1;
                }
                if a.uncapped != Grade::None {
                    real += 1;
                }
            }
        }
        println!("{}: screen passes {pass} of {total} ({:.1}%), truly possible+ {real}; slack of passing: {:?}", config.version, 100.0 * pass as f64 / total as f64, slack);
        let m = Matcher::new(config.clone());
        let t = Instant::now();
        let mut h = rustc_hash::FxHasher::default();
        let mut scored = 0;
        for p in &probes {
            let f = index.find(&m, p);
            scored += f.scored;
            let o = f.outcome;
            (o.grade as u8, o.person, o.compared).hash(&mut h);
            for (person, d) in &o.candidates {
                (person, d.grade as u8, d.score.to_bits()).hash(&mut h);
            }
        }
        let el = t.elapsed();
        println!(
            "{}: find {:.3}s = {:.0} us/query, {:.1} scored/query; outcome fingerprint {:016x}",
            config.version,
            el.as_secs_f64(),
            el.as_micros() as f64 / nq as f64,
            scored as f64 / nq as f64,
            h.finish()
        );
    }
    if std::env::var("KINDS").is_ok() {
        // Which key kinds brought each candidate, and what it graded (iis).
        let mut stats: BTreeMap<String, [usize; 3]> = BTreeMap::new();
        let mut solo: BTreeMap<char, [usize; 3]> = BTreeMap::new();
        for (p, cands) in probes.iter().zip(&lookups) {
            let qk = query_keys(p);
            for &at in cands {
                let (_, r) = index.record(at).unwrap();
                let ik = index_keys(r);
                let mut kinds: Vec<char> = qk
                    .iter()
                    .filter(|k| ik.contains(k))
                    .filter_map(|k| k.chars().next())
                    .collect();
                kinds.sort();
                kinds.dedup();
                let g = assess(&configs[0], p, r).grade as usize;
                stats.entry(kinds.iter().collect()).or_default()[g] += 1;
                if kinds.len() == 1 {
                    solo.entry(kinds[0]).or_default()[g] += 1;
                }
            }
        }
        let mut v: Vec<_> = stats.into_iter().collect();
        v.sort_by_key(|(_, c)| std::cmp::Reverse(c.iter().sum::<usize>()));
        for (k, c) in v.iter().take(30) {
            println!(
                "  {k:<8} none {:>8} possible {:>6} certain {:>6}",
                c[0], c[1], c[2]
            );
        }
        println!("only one kind:");
        for (k, c) in solo {
            println!(
                "  {k:<8} none {:>8} possible {:>6} certain {:>6}",
                c[0], c[1], c[2]
            );
        }
    }
    let _ = Grade::None;
}

#[allow(dead_code)]
pub fn febrl_kinds() {
    use matching::PatientRecord;
    let dir = std::path::PathBuf::from(std::env::var("IISBULK_FEBRL_DIR").unwrap());
    let read = |n: &str| -> Vec<PatientRecord> {
        std::fs::read_to_string(dir.join(n))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let m = Matcher::default();
    let person = |id: &str| id.split('-').nth(1).unwrap_or(id).to_owned();
    for (name, sets) in [
        ("febrl3", vec![read("febrl3.jsonl")]),
        ("febrl4", vec![read("febrl4a.jsonl"), read("febrl4b.jsonl")]),
    ] {
        let all: Vec<(usize, &PatientRecord)> = sets
            .iter()
            .enumerate()
            .flat_map(|(s, v)| v.iter().map(move |r| (s, r)))
            .collect();
        let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, r)) in all.iter().enumerate() {
            by.entry(person(&r.id)).or_default().push(i);
        }
        let norm: Vec<_> = all.iter().map(|(_, r)| m.normalize(r)).collect();
        let mut stats: BTreeMap<String, usize> = BTreeMap::new();
        let mut total = 0;
        for ids in by.values() {
            for (x, &i) in ids.iter().enumerate() {
                for &j in &ids[x + 1..] {
                    if sets.len() == 2 && all[i].0 == all[j].0 {
                        continue;
                    }
                    total += 1;
                    let qk = query_keys(&norm[i]);
                    let ik = index_keys(&norm[j]);
                    let qk2 = query_keys(&norm[j]);
                    let ik2 = index_keys(&norm[i]);
                    let mut kinds: Vec<char> = qk
                        .iter()
                        .filter(|k| ik.contains(k))
                        .chain(qk2.iter().filter(|k| ik2.contains(k)))
                        .filter_map(|k| k.chars().next())
                        .collect();
                    kinds.sort();
                    kinds.dedup();
                    let s: String = kinds.iter().collect();
                    if s == "J" || s == "IJ" && std::env::var("IJ").is_ok() {
                        println!("{s}: {:?}\n    {:?}", all[i].1, all[j].1);
                    }
                    if kinds.len() <= 2 {
                        *stats.entry(s).or_default() += 1;
                    }
                }
            }
        }
        println!("{name}: {total} true pairs; those sharing <= 2 kinds:");
        let mut v: Vec<_> = stats.into_iter().collect();
        v.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
        for (k, c) in v {
            println!("  {k:<6} {c}");
        }
    }
}
#[test]
fn sizes() {}

#[allow(dead_code)]
pub fn febrl_misses(config_path: &str) {
    use matching::PatientRecord;
    let dir = std::path::PathBuf::from(std::env::var("IISBULK_FEBRL_DIR").unwrap());
    let read = |n: &str| -> Vec<PatientRecord> {
        std::fs::read_to_string(dir.join(n))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let config = Config::parse(&std::fs::read_to_string(config_path).unwrap()).unwrap();
    let m = Matcher::new(config.clone());
    let person = |id: &str| id.split('-').nth(1).unwrap_or(id).to_owned();
    let show = std::env::var("SHOW").is_ok();
    for (name, sets) in [
        ("febrl3", vec![read("febrl3.jsonl")]),
        ("febrl4", vec![read("febrl4a.jsonl"), read("febrl4b.jsonl")]),
    ] {
        let all: Vec<(usize, &PatientRecord)> = sets
            .iter()
            .enumerate()
            .flat_map(|(s, v)| v.iter().map(move |r| (s, r)))
            .collect();
        let norm: Vec<_> = all.iter().map(|(_, r)| m.normalize(r)).collect();
        let mut index = MemoryIndex::new(config.blocking.max_block);
        let mut hist_true: BTreeMap<i64, usize> = BTreeMap::new();
        let mut hist_false: BTreeMap<i64, usize> = BTreeMap::new();
        let mut missed_levels: BTreeMap<String, usize> = BTreeMap::new();
        for (i, r) in norm.iter().enumerate() {
            for at in index.lookup(r).records {
                let j = at as usize;
                if sets.len() == 2 && all[i].0 == all[j].0 {
                    continue;
                }
                let a = assess(&config, r, &norm[j]);
                let same = person(&all[i].1.id) == person(&all[j].1.id);
                let bucket = a.score.floor() as i64;
                if same {
                    *hist_true.entry(bucket).or_default() += 1;
                } else {
                    *hist_false.entry(bucket).or_default() += 1;
                }
                if same && a.grade != Grade::Certain {
                    let lv: Vec<String> = matching::Field::ALL
                        .iter()
                        .filter(|f| a.level(**f) != matching::Level::Missing)
                        .map(|f| format!("{}={}", f.name(), a.level(*f).name()))
                        .collect();
                    *missed_levels
                        .entry(format!("{} v{:x}", lv.join(" "), a.vetoes))
                        .or_default() += 1;
                    if show {
                        println!(
                            "MISS {:.1} {:?}\n   {:?}\n   {:?}",
                            a.score, lv, all[i].1, all[j].1
                        );
                    }
                }
                if !same && a.grade == Grade::Certain && show {
                    println!("FALSE {:.1} {:?}\n   {:?}", a.score, all[i].1, all[j].1);
                }
            }
            index.insert(i as u32, r.clone());
        }
        println!("{name}: score histogram true / false:");
        let keys: std::collections::BTreeSet<i64> =
            hist_true.keys().chain(hist_false.keys()).copied().collect();
        for k in keys {
            println!(
                "  {k:>4}: {:>6} {:>8}",
                hist_true.get(&k).unwrap_or(&0),
                hist_false.get(&k).unwrap_or(&0)
            );
        }
        let mut v: Vec<_> = missed_levels.into_iter().collect();
        v.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
        for (k, c) in v.iter().take(40) {
            println!("  {c:>4} {k}");
        }
    }
}

#[allow(dead_code)]
pub fn febrl_em(config_path: &str) {
    use matching::{Field, Level, PatientRecord};
    let dir = std::path::PathBuf::from(std::env::var("IISBULK_FEBRL_DIR").unwrap());
    let read = |n: &str| -> Vec<PatientRecord> {
        std::fs::read_to_string(dir.join(n))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let config = Config::parse(&std::fs::read_to_string(config_path).unwrap()).unwrap();
    let m = Matcher::new(config.clone());
    let lv = |l: Level| l as usize;
    let mut vectors: Vec<[Level; Field::COUNT]> = Vec::new();
    let mut randoms: Vec<[Level; Field::COUNT]> = Vec::new();
    let mut rng = matching::synth::Rng::new(42);
    for sets in [
        vec![read("febrl3.jsonl")],
        vec![read("febrl4a.jsonl"), read("febrl4b.jsonl")],
    ] {
        let all: Vec<(usize, &PatientRecord)> = sets
            .iter()
            .enumerate()
            .flat_map(|(s, v)| v.iter().map(move |r| (s, r)))
            .collect();
        let norm: Vec<_> = all.iter().map(|(_, r)| m.normalize(r)).collect();
        let mut index = MemoryIndex::new(config.blocking.max_block);
        for (i, r) in norm.iter().enumerate() {
            for at in index.lookup(r).records {
                let j = at as usize;
                if sets.len() == 2 && all[i].0 == all[j].0 {
                    continue;
                }
                vectors.push(assess(&config, r, &norm[j]).levels);
            }
            index.insert(i as u32, r.clone());
        }
        for _ in 0..300_000 {
            let (i, j) = (rng.below(norm.len()), rng.below(norm.len()));
            if i != j {
                randoms.push(assess(&config, &norm[i], &norm[j]).levels);
            }
        }
    }
    // u from random pairs (nearly all different people).
    let mut u = [[0.0f64; Level::COUNT]; Field::COUNT];
    for f in Field::ALL {
        let present: Vec<_> = randoms
            .iter()
            .filter(|v| v[f as usize] != Level::Missing)
            .collect();
        for l in f.levels() {
            let c = present.iter().filter(|v| v[f as usize] == *l).count();
            u[f as usize][lv(*l)] =
                (c as f64 + 0.5) / (present.len() as f64 + 0.5 * f.levels().len() as f64);
        }
    }
    // EM for m (u fixed) and the match share among candidate pairs.
    let mut mm = [[0.0f64; Level::COUNT]; Field::COUNT];
    for f in Field::ALL {
        for (k, l) in f.levels().iter().enumerate() {
            mm[f as usize][lv(*l)] = if k == 0 {
                0.9
            } else {
                0.1 / (f.levels().len() - 1) as f64
            };
        }
    }
    let mut p: f64 = 0.5;
    for _ in 0..200 {
        let mut acc = [[0.0f64; Level::COUNT]; Field::COUNT];
        let mut tot = [0.0f64; Field::COUNT];
        let mut sum_w = 0.0;
        for v in &vectors {
            let (mut lm, mut lu) = (p.ln(), (1.0 - p).ln());
            for f in Field::ALL {
                let l = v[f as usize];
                if l != Level::Missing {
                    lm += mm[f as usize][lv(l)].ln();
                    lu += u[f as usize][lv(l)].ln();
                }
            }
            let w = 1.0 / (1.0 + (lu - lm).exp());
            sum_w += w;
            for f in Field::ALL {
                let l = v[f as usize];
                if l != Level::Missing {
                    acc[f as usize][lv(l)] += w;
                    tot[f as usize] += w;
                }
            }
        }
        p = sum_w / vectors.len() as f64;
        for f in Field::ALL {
            for l in f.levels() {
                mm[f as usize][lv(*l)] = (acc[f as usize][lv(*l)] + 0.5)
                    / (tot[f as usize] + 0.5 * f.levels().len() as f64);
            }
        }
    }
    println!(
        "{} candidate pairs, {} random; match share {p:.4}",
        vectors.len(),
        randoms.len()
    );
    // Model-estimated precision of "score >= t" (no labels): posterior non-match mass above t.
    let mut scored: Vec<(f64, f64)> = vectors
        .iter()
        .map(|v| {
            let (mut lm, mut lu, mut sc) = (p.ln(), (1.0 - p).ln(), 0.0);
            for f in Field::ALL {
                let l = v[f as usize];
                if l != Level::Missing {
                    lm += mm[f as usize][lv(l)].ln();
                    lu += u[f as usize][lv(l)].ln();
                    sc += (mm[f as usize][lv(l)] / u[f as usize][lv(l)]).log2();
                }
            }
            (sc, 1.0 / (1.0 + (lu - lm).exp()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    for t in [8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0] {
        let above: Vec<_> = scored.iter().filter(|(s, _)| *s >= t).collect();
        let fp: f64 = above.iter().map(|(_, w)| 1.0 - w).sum();
        let tp: f64 = above.iter().map(|(_, w)| *w).sum();
        let all_tp: f64 = scored.iter().map(|(_, w)| *w).sum();
        println!(
            "# model: t {t}: est. precision {:.5} est. recall {:.4} (est. false {fp:.1})",
            tp / (tp + fp),
            tp / all_tp
        );
    }
    for f in Field::ALL {
        println!("[fields.{}]", f.name());
        for l in f.levels() {
            let (a, b) = (mm[f as usize][lv(*l)], u[f as usize][lv(*l)]);
            println!(
                "{:<14} = {{ m = {a:.5}, u = {b:.6} }}   # weight {:.2} (now {:.2})",
                l.name(),
                (a / b).log2(),
                config.weight(f, *l)
            );
        }
    }
}

#[allow(dead_code)]
pub fn febrl_sweep(config_path: &str) {
    use matching::PatientRecord;
    let dir = std::path::PathBuf::from(std::env::var("IISBULK_FEBRL_DIR").unwrap());
    let read = |n: &str| -> Vec<PatientRecord> {
        std::fs::read_to_string(dir.join(n))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let config = Config::parse(&std::fs::read_to_string(config_path).unwrap()).unwrap();
    let m = Matcher::new(config.clone());
    let person = |id: &str| id.split('-').nth(1).unwrap_or(id).to_owned();
    for (name, sets) in [
        ("febrl3", vec![read("febrl3.jsonl")]),
        ("febrl4", vec![read("febrl4a.jsonl"), read("febrl4b.jsonl")]),
    ] {
        let all: Vec<(usize, &PatientRecord)> = sets
            .iter()
            .enumerate()
            .flat_map(|(s, v)| v.iter().map(move |r| (s, r)))
            .collect();
        let norm: Vec<_> = all.iter().map(|(_, r)| m.normalize(r)).collect();
        let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, r)) in all.iter().enumerate() {
            by.entry(person(&r.id)).or_default().push(i);
        }
        let truth: usize = by
            .values()
            .map(|ids| {
                if sets.len() == 2 {
                    let a = ids.iter().filter(|i| all[**i].0 == 0).count();
                    let b = ids.len() - a;
                    a * b
                } else {
                    ids.len() * (ids.len() - 1) / 2
                }
            })
            .sum();
        let mut index = MemoryIndex::new(config.blocking.max_block);
        let mut pairs = Vec::new();
        for (i, r) in norm.iter().enumerate() {
            for at in index.lookup(r).records {
                let j = at as usize;
                if sets.len() == 2 && all[i].0 == all[j].0 {
                    continue;
                }
                pairs.push((i, j, person(&all[i].1.id) == person(&all[j].1.id)));
            }
            index.insert(i as u32, r.clone());
        }
        print!("{name} ({truth} true):");
        for t in [
            8.0, 10.0, 12.0, 14.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 24.0,
        ] {
            let mut c = config.clone();
            c.bands.certain = t;
            if std::env::var("SHOWFP").is_ok() && t == 12.0 {
                for &(i, j, same) in &pairs {
                    let a = assess(&c, &norm[i], &norm[j]);
                    if !same && a.grade == Grade::Certain {
                        println!(
                            "FP {:.1} {:?}\n   {:?}\n   {:?}",
                            a.score, a.levels, all[i].1, all[j].1
                        );
                    }
                }
            }
            c.bands.possible = c.bands.possible.min(t);
            let (mut tp, mut fp) = (0, 0);
            for &(i, j, same) in &pairs {
                if assess(&c, &norm[i], &norm[j]).grade == Grade::Certain {
                    if same {
                        tp += 1
                    } else {
                        fp += 1
                    }
                }
            }
            let p = tp as f64 / (tp + fp).max(1) as f64;
            let r = tp as f64 / truth as f64;
            print!(
                "  t{t}: P {p:.4} R {r:.4} F {:.4} fp {fp}",
                2.0 * p * r / (p + r)
            );
            if t == 16.0 {
                let mut both = [0usize; 2];
                for &(i, j, same) in &pairs {
                    let a = assess(&c, &norm[i], &norm[j]);
                    if a.grade == Grade::Certain && a.level(matching::Field::BirthDate) == matching::Level::Different && a.level(matching::Field::Identifier) == matching::Level::Different { both[same as usize] += 1; }
                }
                print!(" [dob+id both different among certain: false {} true {}]", both[0], both[1]);
            }
        }
        println!();
    }
}
