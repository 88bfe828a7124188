//! Matching throughput and accuracy over a synthetic registry in the
//! embedded store, through `PatientMatching::find`.
//!
//! `cargo bench -p registry --bench matching_store` bulk-loads
//! `IISBULK_BENCH_PEOPLE` synthetic people (the population of the in-memory
//! bench, `synthetic-population`, same seed) as blocking-key items into an
//! `EmbeddedStore` in a temporary directory (`IISBULK_BENCH_DIR` picks the
//! disk), then matches `IISBULK_BENCH_QUERIES` queries (default 100,000) one
//! at a time on one task and prints the same figures as the in-memory bench.
//!
//! The default is 100,000 people, not the 1,000,000: every person is
//! filed under ~20 blocking keys, each an item holding the person's whole
//! matching record (~0.7 KB of JSON), and the store logs every write to its
//! change feed, so 1,000,000 people would be ~25 million durable writes and
//! tens of GB on disk, well over ten minutes on the benchmark machine
//! (2 shared cores). Set `IISBULK_BENCH_PEOPLE=1000000` to load the full
//! population anyway.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version
//! (1,000 people, 200 queries: a few seconds unoptimised) so CI stays fast;
//! the environment overrides apply only with `--bench`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matching::blocking::index_keys;
use matching::Matcher;
use registry::patients::{MatchView, PatientMatching};
use store::embedded::EmbeddedStore;
use store::{Condition, Item, ItemStore, Key, Write};
use synthetic_population::{Accuracy, Population, Query};
use tokio::task::JoinSet;

use synthetic_population::bench::{env_count, machine, process_cpu};

/// The in-memory bench's seeds: the same people and queries.
const POPULATION_SEED: u64 = 20_251_031;
const QUERY_SEED: u64 = 7;
const DEFAULT_PEOPLE: usize = 100_000;
const CANDIDATE_TARGET: usize = 200;
/// DynamoDB's (and the embedded store's) largest transaction.
const WRITES_PER_TRANSACTION: usize = 100;
/// Transactions in flight while loading: the store's writer commits what
/// is queued together, one fsync per group.
const IN_FLIGHT: usize = 32;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (people, queries) = if bench {
        (
            env_count("IISBULK_BENCH_PEOPLE", DEFAULT_PEOPLE),
            env_count("IISBULK_BENCH_QUERIES", 100_000),
        )
    } else {
        (1_000, 200)
    };
    println!(
        "matching bench (embedded store){}: {people} people, {queries} queries",
        if bench { "" } else { " SMOKE" }
    );
    if bench && people == DEFAULT_PEOPLE && std::env::var_os("IISBULK_BENCH_PEOPLE").is_none() {
        println!(
            "note: default population is {DEFAULT_PEOPLE}, not 1,000,000: loading 1M people takes well over 10 minutes here (set IISBULK_BENCH_PEOPLE=1000000 to do it anyway)"
        );
    }
    println!("machine: {}", machine());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(people, queries));
    println!();
    println!("machine at end: {}", machine());
}

async fn run(people: usize, queries: usize) {
    let dir = match std::env::var_os("IISBULK_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("bench temp dir");
    let path = dir.path().join("registry.redb");
    let store = Arc::new(EmbeddedStore::open(&path).expect("open the embedded store"));
    let matcher = Arc::new(Matcher::default());

    let started = Instant::now();
    let population = Population::generate(people, POPULATION_SEED);
    println!(
        "population: {} people ({} twins) generated in {:.1} s",
        population.len(),
        population.twins(),
        started.elapsed().as_secs_f64()
    );

    let load = load(&store, &matcher, &population).await;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "load: {} items ({} block heads + {} block entries) in {} transactions of <= {WRITES_PER_TRANSACTION} writes, {:.1} s: {:.0} items/s, {:.0} people/s; store file {:.2} GiB",
        load.heads + load.entries,
        load.heads,
        load.entries,
        load.transactions,
        load.took.as_secs_f64(),
        (load.heads + load.entries) as f64 / load.took.as_secs_f64(),
        people as f64 / load.took.as_secs_f64(),
        bytes as f64 / f64::from(1u32 << 30),
    );

    let matching = PatientMatching::new(store.clone(), matcher.clone());
    self_check(&matching, &population).await;

    let started = Instant::now();
    let queries: Vec<Query> = population.queries(QUERY_SEED).take(queries).collect();
    println!(
        "queries: {} generated in {:.1} s (not timed below)",
        queries.len(),
        started.elapsed().as_secs_f64()
    );

    let mut latencies = Vec::with_capacity(queries.len());
    let mut candidates = Vec::with_capacity(queries.len());
    let mut largest_read = 0;
    let mut skipped = 0usize;
    let mut accuracy = Accuracy::default();
    let cpu_before = process_cpu();
    let run = Instant::now();
    for q in &queries {
        let t0 = Instant::now();
        let found = matching.find(&q.record).await.expect("find");
        latencies.push(t0.elapsed());
        candidates.push(found.outcome.compared);
        largest_read = largest_read.max(found.largest_block);
        skipped += found.skipped_blocks;
        accuracy.add(
            q,
            found.outcome.grade,
            found.outcome.person.as_deref().and_then(person_index),
            found
                .outcome
                .candidates
                .iter()
                .filter_map(|(p, _)| person_index(p)),
        );
    }
    let wall = run.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);

    println!();
    println!("== matching through PatientMatching::find, one task ==");
    report_speed(&latencies, wall);
    if let Some(cpu) = cpu {
        println!(
            "  the process used {:.1} s of CPU for the queries ({:.0}% of one core over the wall time): {:.0} matches per CPU-second",
            cpu.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            latencies.len() as f64 / cpu.as_secs_f64().max(1e-9),
        );
    }
    report_candidates(&candidates, largest_read, load.largest_block, skipped);
    println!();
    println!("== accuracy vs truth ==");
    print!("{accuracy}");
    summary(&accuracy);
    drop(matching);
    drop(store);
}

fn person_id(index: usize) -> String {
    format!("P{index}")
}

fn person_index(id: &str) -> Option<u32> {
    id.strip_prefix('P')?.parse().ok()
}

// The registry's blocking-key items (`registry::keys`): the head at sk `#`
// and one entry per source at `S#<source id>`; `self_check` proves `find`
// reads what is loaded here.
fn block_head(blocking_key: &str) -> Key {
    registry::keys::block_head(blocking_key)
}

fn block_entry(blocking_key: &str, source_id: &str) -> Key {
    registry::keys::block_entry(blocking_key, source_id)
}

#[derive(Debug, Default)]
struct Load {
    heads: u64,
    entries: u64,
    transactions: u64,
    largest_block: usize,
    took: Duration,
}

/// Files every person's one source record under its blocking keys: the
/// key's head once (identifier-slip `J:` keys have none) and an empty
/// entry naming the source, plus the source's match view (person and
/// matching record), 100 writes a transaction.
async fn load(store: &Arc<EmbeddedStore>, matcher: &Matcher, population: &Population) -> Load {
    let started = Instant::now();
    let mut out = Load::default();
    // Records per blocking key: a key seen for the first time gets its head.
    let mut blocks: HashMap<String, usize> = HashMap::new();
    let mut batch: Vec<Write> = Vec::with_capacity(WRITES_PER_TRANSACTION);
    let mut in_flight: JoinSet<store::Result<()>> = JoinSet::new();
    for (i, source) in population.people.iter().enumerate() {
        let record = matcher.normalize(source);
        let keys = index_keys(&record);
        let view = serde_json::to_vec(&MatchView {
            person: person_id(i),
            record,
        })
        .expect("match view JSON");
        let mut writes = vec![put(registry::keys::match_view(&source.id), view)];
        for key in keys {
            if !key.starts_with("J:") && !blocks.contains_key(&key) {
                writes.push(put(block_head(&key), Vec::new()));
                out.heads += 1;
            }
            writes.push(put(block_entry(&key, &source.id), Vec::new()));
            out.entries += 1;
            *blocks.entry(key).or_default() += 1;
        }
        for w in writes {
            batch.push(w);
            if batch.len() == WRITES_PER_TRANSACTION {
                submit(store, &mut in_flight, std::mem::take(&mut batch)).await;
                out.transactions += 1;
            }
        }
    }
    if !batch.is_empty() {
        submit(store, &mut in_flight, batch).await;
        out.transactions += 1;
    }
    while let Some(done) = in_flight.join_next().await {
        done.expect("load task").expect("load transaction");
    }
    out.took = started.elapsed();
    out.largest_block = blocks.values().copied().max().unwrap_or(0);
    out
}

fn put(key: Key, data: Vec<u8>) -> Write {
    Write::Put {
        item: Item::new(key, data),
        cond: Condition::None,
    }
}

async fn submit(
    store: &Arc<EmbeddedStore>,
    in_flight: &mut JoinSet<store::Result<()>>,
    writes: Vec<Write>,
) {
    while in_flight.len() >= IN_FLIGHT {
        if let Some(done) = in_flight.join_next().await {
            done.expect("load task").expect("load transaction");
        }
    }
    let store = store.clone();
    in_flight.spawn(async move { store.transact(writes).await });
}

/// Unchanged records of the registry must find themselves: proof that the
/// bench filed its items where `find` reads them.
async fn self_check(matching: &PatientMatching, population: &Population) {
    let step = (population.len() / 50).max(1);
    let mut checked = 0;
    for i in (0..population.len()).step_by(step) {
        let record = &population.people[i];
        if record.multiple_birth == Some(true) {
            continue;
        }
        let found = matching.find(record).await.expect("find");
        assert!(
            found
                .outcome
                .candidates
                .iter()
                .any(|(p, _)| p == &person_id(i)),
            "person {i} does not find itself: the bench's item layout no longer matches registry::keys"
        );
        checked += 1;
    }
    println!("self-check: {checked} registry records find themselves");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn report_speed(latencies: &[Duration], wall: Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let sum: Duration = sorted.iter().sum();
    println!(
        "  find (normalize + store reads + choose) {:>8.0} matches/s (one task)   p50 {}   p99 {}   max {}   mean {}",
        sorted.len() as f64 / sum.as_secs_f64().max(1e-9),
        ms(percentile(&sorted, 0.50)),
        ms(percentile(&sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default()),
        ms(sum / sorted.len().max(1) as u32),
    );
    println!(
        "  wall time {:.1} s for {} queries, one at a time; the store's reads run on tokio's blocking pool, so one task can use more than one core",
        wall.as_secs_f64(),
        latencies.len()
    );
}

fn report_candidates(candidates: &[usize], largest_read: usize, largest: usize, skipped: usize) {
    let mut sorted = candidates.to_vec();
    sorted.sort_unstable();
    let n = sorted.len().max(1);
    let mean = sorted.iter().sum::<usize>() as f64 / n as f64;
    let p99 = sorted
        .get(((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1)
        .copied()
        .unwrap_or(0);
    let over = sorted.iter().filter(|c| **c > CANDIDATE_TARGET).count();
    println!(
        "  candidates per query: mean {mean:.1}   p50 {}   p99 {p99}   max {}   ({over} queries = {:.2}% over {CANDIDATE_TARGET})",
        sorted.get(n / 2).copied().unwrap_or(0),
        sorted.last().copied().unwrap_or(0),
        100.0 * over as f64 / n as f64,
    );
    println!(
        "  largest block: in the store {largest}, read by a query {largest_read}; blocks skipped as over the cap: {skipped} ({:.2} per query)",
        skipped as f64 / n as f64
    );
}

fn summary(a: &Accuracy) {
    let known = a.total(false);
    let new = a.total(true);
    let pct = |x: u64, of: u64| 100.0 * x as f64 / of.max(1) as f64;
    println!(
        "  known persons: {:.2}% linked right, {} false merges ({:.3}%), {:.2}% possible (review), {:.2}% missed",
        pct(known.certain_right, known.queries),
        known.certain_wrong,
        pct(known.certain_wrong, known.queries),
        pct(known.possible_listed + known.possible_other, known.queries),
        pct(known.none, known.queries),
    );
    println!(
        "  new persons:   {:.2}% new (right), {:.2}% possible (review), {} false merges ({:.3}%)",
        pct(new.none, new.queries),
        pct(new.possible_listed + new.possible_other, new.queries),
        new.certain_wrong,
        pct(new.certain_wrong, new.queries),
    );
}
