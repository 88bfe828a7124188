//! Crash safety: a child process writes in a loop and prints each key only
//! after `put` returned; we SIGKILL it mid-stream, reopen the file and demand
//! every printed key. An acknowledged write that is not on disk fails this.
//!
//! The child is this same test binary re-run with `STORE_CRASH_CHILD` set to
//! the store path (see `crash_child`), so no extra binary is needed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::embedded::EmbeddedStore;
use store::{Condition, Item, ItemStore, Key};

const CHILD_ENV: &str = "STORE_CRASH_CHILD";
const WRITERS: usize = 8;

fn data_for(key: &str) -> Vec<u8> {
    key.as_bytes().repeat(64)
}

/// Child side; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(&path).expect("open in child"));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let sk = format!("w{w}-{i:08}");
                    let item = Item::new(Key::new("crash", sk.as_str()), data_for(&sk));
                    store
                        .put(item, Condition::Absent)
                        .await
                        .expect("put in child");
                    println!("ACK {sk}");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.strip_prefix("ACK ") {
                acked.push(k.to_owned());
            }
        }
        acked
    });

    // Give the child time to open the file and commit for ~300 ms.
    let started = Instant::now();
    while !path.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL child");
    let _ = child.wait();
    let acked = reader.join().expect("reader thread");
    assert!(
        !acked.is_empty(),
        "child acknowledged nothing before it was killed"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = EmbeddedStore::open(&path).expect("reopen after crash");
        for sk in &acked {
            let got = store
                .get(&Key::new("crash", sk.as_str()))
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("acknowledged {sk} lost ({} acked)", acked.len()));
            assert_eq!(got.data, data_for(sk));
        }
        eprintln!("{} acknowledged writes survived SIGKILL", acked.len());
    });
}
