//! Durable conditional puts per second on the embedded store.
//!
//! `cargo bench -p store --bench puts` measures 1 and 64 concurrent writers,
//! each put a ~4 KB put-if-absent acknowledged only after fsync, for
//! `STORE_BENCH_SECS` seconds (default 3) per case. The store file goes in
//! `STORE_BENCH_DIR` (default: the system temp dir) — put it on the disk you
//! care about; tmpfs makes fsync free and the figure meaningless. Under
//! `cargo test` (no `--bench` flag) it runs a few puts per case as a smoke test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::embedded::EmbeddedStore;
use store::{Condition, Item, ItemStore, Key};

const PAYLOAD: usize = 4 * 1024;

async fn run(writers: usize, budget: Budget) -> (u64, Duration) {
    let dir = match std::env::var_os("STORE_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("bench temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path().join("bench.redb")).expect("open"));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        let done = done.clone();
        tasks.spawn(async move {
            let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 31 + w) as u8).collect();
            for i in 0u64.. {
                let stop = match budget {
                    Budget::Time(d) => started.elapsed() >= d,
                    Budget::Count(n) => i >= n,
                };
                if stop {
                    break;
                }
                let key = Key::new(format!("BENCH#{w}"), format!("{i:010}"));
                store
                    .put(Item::new(key, payload.clone()), Condition::Absent)
                    .await
                    .expect("put");
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer task");
    }
    (done.load(Ordering::Relaxed), started.elapsed())
}

#[derive(Clone, Copy)]
enum Budget {
    Time(Duration),
    Count(u64),
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("STORE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for writers in [1usize, 64] {
        let budget = if bench {
            Budget::Time(Duration::from_secs(secs))
        } else {
            Budget::Count(3)
        };
        let (n, took) = rt.block_on(run(writers, budget));
        let rate = n as f64 / took.as_secs_f64();
        println!(
            "embedded durable put-if-absent, {PAYLOAD} B, {writers:>2} writer(s): {n:>7} puts in {:.2} s = {rate:>8.0} puts/s",
            took.as_secs_f64()
        );
    }
}
