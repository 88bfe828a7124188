//! Behaviour only the embedded backend has: its file survives a reopen, and
//! group commit keeps every request's outcome independent and ordered.

use std::collections::HashSet;
use std::sync::Arc;

use store::embedded::EmbeddedStore;
use store::{ChangeFeed, Condition, Item, ItemStore, Key, QueryOpts, StoreError};

#[tokio::test]
async fn reopen_keeps_items_change_log_and_checkpoints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/store.redb");
    let k = Key::new("PAT#1", "profile");
    let last = {
        let store = EmbeddedStore::open(&path).expect("open");
        store
            .put(
                Item::new(k.clone(), b"v1".to_vec()).with_gsi1(Key::new("BLK#x", "PAT#1")),
                Condition::Absent,
            )
            .await
            .expect("put");
        store
            .put(Item::new(k.clone(), b"v2".to_vec()), Condition::Version(1))
            .await
            .expect("put");
        let last = store.last_seq();
        store.checkpoint("matcher", last).await.expect("checkpoint");
        last
    };
    let store = EmbeddedStore::open(&path).expect("reopen right after drop");
    let got = store.get(&k).await.expect("get").expect("item survived");
    assert_eq!((got.version, got.data.as_slice()), (2, b"v2".as_slice()));
    assert_eq!(store.last_seq(), last, "sequence survives");
    assert_eq!(
        store.position("matcher").await.expect("position"),
        Some(last)
    );
    assert_eq!(
        store.read(None, 100).await.expect("read").len(),
        2,
        "change log survives"
    );
    // New changes continue the sequence instead of restarting it.
    store
        .put(Item::new(k.clone(), b"v3".to_vec()), Condition::None)
        .await
        .expect("put");
    let next = store.read(Some(last), 10).await.expect("read");
    assert_eq!(
        next.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![last + 1]
    );
}

#[tokio::test]
async fn second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    let _first = EmbeddedStore::open(&path).expect("open");
    let second = EmbeddedStore::open(&path);
    assert!(
        matches!(second, Err(StoreError::Unavailable(_))),
        "{second:?}"
    );
}

/// 16 writers race: each creates its own keys, all fight over shared
/// put-if-absent keys, and all increment one counter. Batches mix winners and
/// losers, so this checks that one refused request never spoils its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_under_16_concurrent_writers() {
    const WRITERS: usize = 16;
    const EACH: usize = 40;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path().join("s.redb")).expect("open"));
    let counter = Key::new("counter", "n");
    store
        .put(Item::new(counter.clone(), b"0".to_vec()), Condition::Absent)
        .await
        .expect("counter");
    let start = store.last_seq();

    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let counter = counter.clone();
        tasks.spawn(async move {
            let mut won = Vec::new();
            for i in 0..EACH {
                let own = Key::new(format!("w{w:02}"), format!("{i:03}"));
                let v = store
                    .put(
                        Item::new(own, format!("{w}-{i}").into_bytes()),
                        Condition::Absent,
                    )
                    .await
                    .expect("own key");
                assert_eq!(v, 1);
                let shared = Key::new("shared", format!("{i:03}"));
                match store
                    .put(Item::new(shared, vec![w as u8]), Condition::Absent)
                    .await
                {
                    Ok(_) => won.push(i),
                    Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => panic!("shared: {e}"),
                }
                loop {
                    let cur = store.get(&counter).await.expect("get").expect("counter");
                    let n: u64 = String::from_utf8_lossy(&cur.data).parse().expect("number");
                    let next = Item::new(counter.clone(), (n + 1).to_string().into_bytes());
                    match store.put(next, Condition::Version(cur.version)).await {
                        Ok(_) => break,
                        Err(StoreError::ConditionFailed { .. }) => continue,
                        Err(e) => panic!("counter: {e}"),
                    }
                }
            }
            won
        });
    }
    let mut winners = Vec::new();
    while let Some(won) = tasks.join_next().await {
        winners.extend(won.expect("writer task"));
    }
    winners.sort_unstable();
    assert_eq!(
        winners,
        (0..EACH).collect::<Vec<_>>(),
        "each shared key has exactly one winner"
    );

    for w in 0..WRITERS {
        let page = store
            .query(&format!("w{w:02}"), QueryOpts::default().limit(1000))
            .await
            .expect("query");
        assert_eq!(page.items.len(), EACH, "writer {w}");
    }
    let c = store.get(&counter).await.expect("get").expect("counter");
    assert_eq!(c.data, (WRITERS * EACH).to_string().into_bytes());

    // One change per successful write, contiguous sequence numbers.
    let changes = store.read(Some(start), 100_000).await.expect("read");
    let expected = WRITERS * EACH /* own */ + EACH /* shared */ + WRITERS * EACH /* counter */;
    assert_eq!(changes.len(), expected);
    let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (start + 1..=start + expected as u64).collect::<Vec<_>>()
    );
    let counter_versions: HashSet<u64> = changes
        .iter()
        .filter(|c| c.key == counter)
        .filter_map(|c| c.new.as_ref().map(|i| i.version))
        .collect();
    assert_eq!(counter_versions.len(), WRITERS * EACH, "no lost update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_is_on_disk_once_the_store_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bulk.redb");
    let keys: Vec<Key> = (0..500)
        .map(|i| Key::new(format!("PAT#{i}"), "profile"))
        .collect();
    {
        let store = Arc::new(EmbeddedStore::open_for_bulk_load(&path).expect("open"));
        let mut tasks = Vec::new();
        for chunk in keys.chunks(50) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                for k in chunk {
                    store
                        .put(Item::new(k, b"loaded".to_vec()), Condition::Absent)
                        .await
                        .expect("put");
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
        // The last writes are still unsynced here (the load took far less
        // than the sync interval): dropping the store must sync them.
    }
    let store = EmbeddedStore::open(&path).expect("reopen");
    for k in &keys {
        let got = store.get(k).await.expect("get");
        assert_eq!(got.map(|i| i.data), Some(b"loaded".to_vec()), "{k:?}");
    }
    assert_eq!(store.last_seq(), 500, "every change is in the log");
}
