//! The backend contract: one async function per behaviour every
//! [`ItemStore`] must show, run by each backend's tests through
//! [`contract_tests!`](crate::contract_tests).
//!
//! Each function gets its own partition prefix so runs against a shared
//! DynamoDB table never collide, and polls where DynamoDB is only eventually
//! consistent (GSIs). Failures panic with a message naming the behaviour, as
//! tests do; this module is compiled only with the `contract` feature.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{now_epoch_seconds, MAX_ITEM_BYTES, MAX_TRANSACTION_WRITES};
use crate::{
    ChangeFeed, Condition, Cursor, Index, Item, ItemStore, Key, Page, QueryOpts, SkRange,
    StoreError, Trim, Write,
};

/// What a backend's test setup hands to a contract test.
pub struct Harness {
    pub store: Arc<dyn ItemStore>,
    /// Unique per test run; every key a test writes starts with it.
    pub prefix: String,
    /// Keeps whatever backs the store (a temp dir, a table) alive.
    pub guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A prefix unique to this process, test and moment.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t{}-{nanos:x}-{test}", std::process::id())
}

/// Expand to one `#[tokio::test]` per contract behaviour. `$setup` is an
/// `async fn(&'static str) -> Option<Harness>` taking the test's name;
/// returning `None` skips the test (e.g. no DynamoDB endpoint configured).
#[macro_export]
macro_rules! contract_tests {
    ($setup:path) => {
        $crate::contract_tests!(@each $setup;
            get_missing, get_many_in_order, put_if_absent, version_conditions, delete_conditions, invalid_keys,
            query_ranges, query_paging, query_many_as_query, query_gsi, transaction_atomicity, transaction_limit,
            transaction_duplicate_key, item_size_limit, ttl_hides_expired, binary_round_trip,
            unicode_keys, invalid_cursor, concurrent_increments);
    };
    (@each $setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(h) = $setup(stringify!($name)).await {
                    $crate::contract::$name(h.store.clone(), &h.prefix).await;
                }
            }
        )*
    };
}

/// Expand to one `#[tokio::test]` per change-feed behaviour. `$setup` is an
/// `async fn(&'static str) -> Option<(Harness, Arc<dyn ChangeFeed>)>`.
#[macro_export]
macro_rules! feed_contract_tests {
    ($setup:path) => {
        $crate::feed_contract_tests!(@each $setup;
            feed_records_writes, feed_wait_wakes, feed_checkpoints, feed_trim);
    };
    (@each $setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some((h, feed)) = $setup(stringify!($name)).await {
                    $crate::contract::$name(h.store.clone(), feed, &h.prefix).await;
                }
            }
        )*
    };
}

type Store = Arc<dyn ItemStore>;

fn key(prefix: &str, pk: &str, sk: &str) -> Key {
    Key::new(format!("{prefix}#{pk}"), sk)
}

fn item(k: &Key, data: &str) -> Item {
    Item::new(k.clone(), data.as_bytes().to_vec())
}

async fn all_sks(store: &dyn ItemStore, pk: &str, opts: QueryOpts) -> Vec<String> {
    collect(store, pk, opts)
        .await
        .into_iter()
        .map(|i| i.key.sk)
        .collect()
}

/// Follow cursors to the end; asserts each page respects the limit.
async fn collect(store: &dyn ItemStore, pk: &str, opts: QueryOpts) -> Vec<Item> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..10_000 {
        let page = store
            .query(pk, opts.clone().after(cursor))
            .await
            .expect("query");
        assert!(page.items.len() <= opts.limit as usize, "page over limit");
        out.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("query never ended");
}

/// Retry `check` for up to 10 s (for eventually consistent indexes).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn assert_condition_failed<T: std::fmt::Debug>(
    r: crate::Result<T>,
    index: Option<usize>,
    what: &str,
) {
    match r {
        Err(StoreError::ConditionFailed { index: got }) => assert_eq!(got, index, "{what}"),
        other => panic!("{what}: expected ConditionFailed, got {other:?}"),
    }
}

pub async fn get_missing(store: Store, p: &str) {
    let got = store.get(&key(p, "none", "x")).await.expect("get");
    assert_eq!(got, None);
}

/// Answers in the order asked, repeated keys included, across more keys
/// than one DynamoDB `BatchGetItem` takes; missing and expired are `None`.
pub async fn get_many_in_order(store: Store, p: &str) {
    assert_eq!(store.get_many(&[]).await.expect("no keys"), Vec::new());
    let now = now_epoch_seconds();
    let keys: Vec<Key> = (0..130)
        .map(|n| key(p, "many", &format!("{n:03}")))
        .collect();
    let mut writes: Vec<Write> = keys
        .iter()
        .map(|k| Write::Put {
            item: item(k, &k.sk),
            cond: Condition::None,
        })
        .collect();
    let rest = writes.split_off(100);
    store.transact(writes).await.expect("first 100");
    store.transact(rest).await.expect("last 30");
    let dead = Item::new(key(p, "many", "dead"), b"x".to_vec()).with_expiry(now - 60);
    store
        .put(dead.clone(), Condition::None)
        .await
        .expect("put dead");
    let missing = key(p, "many", "never");

    let mut asked: Vec<Key> = keys.iter().rev().cloned().collect();
    asked.insert(7, missing.clone());
    asked.insert(50, dead.key.clone());
    asked.push(keys[3].clone());
    let got = store.get_many(&asked).await.expect("get_many");
    assert_eq!(got.len(), asked.len());
    for (k, answer) in asked.iter().zip(&got) {
        if *k == missing || *k == dead.key {
            assert_eq!(answer, &None, "{} is missing or expired", k.sk);
        } else {
            let i = answer
                .as_ref()
                .unwrap_or_else(|| panic!("{} was written", k.sk));
            assert_eq!(
                (&i.key, i.data.as_slice(), i.version),
                (k, k.sk.as_bytes(), 1)
            );
        }
    }
    let bad = Key::new(String::new(), "x");
    assert!(matches!(
        store.get_many(&[keys[0].clone(), bad]).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn put_if_absent(store: Store, p: &str) {
    let k = key(p, "abs", "one");
    let v = store
        .put(item(&k, "first"), Condition::Absent)
        .await
        .expect("first put");
    assert_eq!(v, 1, "create gives version 1");
    let second = store.put(item(&k, "second"), Condition::Absent).await;
    assert_condition_failed(second, None, "second put-if-absent");
    let got = store.get(&k).await.expect("get").expect("item exists");
    assert_eq!(got.data, b"first");
    assert_eq!(got.version, 1);
    assert_eq!(got.key, k);
}

pub async fn version_conditions(store: Store, p: &str) {
    let k = key(p, "ver", "x");
    assert_condition_failed(
        store.put(item(&k, "a"), Condition::Exists).await,
        None,
        "Exists on a missing item",
    );
    assert_condition_failed(
        store.put(item(&k, "a"), Condition::Version(1)).await,
        None,
        "Version on a missing item",
    );
    assert_eq!(store.put(item(&k, "a"), Condition::None).await, Ok(1));
    assert_eq!(store.put(item(&k, "b"), Condition::Version(1)).await, Ok(2));
    assert_condition_failed(
        store.put(item(&k, "c"), Condition::Version(1)).await,
        None,
        "stale version",
    );
    assert_eq!(store.put(item(&k, "d"), Condition::Exists).await, Ok(3));
    assert_eq!(store.put(item(&k, "e"), Condition::None).await, Ok(4));
    let got = store.get(&k).await.expect("get").expect("exists");
    assert_eq!((got.version, got.data.as_slice()), (4, b"e".as_slice()));
}

pub async fn delete_conditions(store: Store, p: &str) {
    let k = key(p, "del", "x");
    store
        .delete(&k, Condition::None)
        .await
        .expect("delete missing is fine");
    assert_condition_failed(
        store.delete(&k, Condition::Exists).await,
        None,
        "delete Exists on missing",
    );
    store
        .put(item(&k, "a"), Condition::Absent)
        .await
        .expect("put");
    store
        .put(item(&k, "b"), Condition::Version(1))
        .await
        .expect("put v2");
    assert_condition_failed(
        store.delete(&k, Condition::Version(1)).await,
        None,
        "delete with stale version",
    );
    assert_condition_failed(
        store.delete(&k, Condition::Absent).await,
        None,
        "delete Absent on existing",
    );
    assert!(store.get(&k).await.expect("get").is_some());
    store
        .delete(&k, Condition::Version(2))
        .await
        .expect("delete v2");
    assert_eq!(store.get(&k).await.expect("get"), None);
    assert_eq!(store.put(item(&k, "again"), Condition::Absent).await, Ok(1));
}

pub async fn invalid_keys(store: Store, p: &str) {
    let cases = [
        Key::new("", "s"),
        Key::new(format!("{p}#k"), ""),
        Key::new(format!("{p}#k"), "s".repeat(1025)),
        Key::new("p".repeat(2049), "s"),
    ];
    for k in cases {
        let r = store
            .put(Item::new(k.clone(), b"x".to_vec()), Condition::None)
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "put {k:?}: {r:?}");
    }
    let bad_gsi = Item::new(key(p, "k", "s"), b"x".to_vec()).with_gsi1(Key::new("", "x"));
    let r = store.put(bad_gsi, Condition::None).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "empty gsi key: {r:?}"
    );
    let r = store.query("", QueryOpts::default()).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "empty query pk: {r:?}"
    );
    let backwards = QueryOpts::new(Index::Table, SkRange::Between("b".into(), "a".into()));
    let r = store.query(&format!("{p}#k"), backwards).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "reversed between: {r:?}"
    );
    // A long but legal key works.
    let long = Key::new(format!("{p}#{}", "p".repeat(1900)), "s".repeat(1024));
    assert_eq!(store.put(item(&long, "ok"), Condition::Absent).await, Ok(1));
    assert!(store.get(&long).await.expect("get long").is_some());
}

pub async fn query_ranges(store: Store, p: &str) {
    let pk = format!("{p}#q");
    let sks = ["a", "b", "b1", "b2", "ba", "c", "d"];
    for sk in sks {
        store
            .put(item(&Key::new(pk.clone(), sk), sk), Condition::None)
            .await
            .expect("put");
    }
    // Neighbouring partitions must never leak in.
    for other in [format!("{pk}x"), format!("{p}#"), format!("{p}#p")] {
        store
            .put(item(&Key::new(other, "b"), "other"), Condition::None)
            .await
            .expect("put neighbour");
    }
    let q = |range: SkRange| QueryOpts::new(Index::Table, range);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(all_sks(&*store, &pk, q(SkRange::All)).await, s(&sks));
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::Prefix(String::new()))).await,
        s(&sks)
    );
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::Prefix("b".into()))).await,
        s(&["b", "b1", "b2", "ba"])
    );
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::Prefix("b".into())).backward()).await,
        s(&["ba", "b2", "b1", "b"])
    );
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::Between("b1".into(), "c".into()))).await,
        s(&["b1", "b2", "ba", "c"])
    );
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::Between("b1".into(), "b1".into()))).await,
        s(&["b1"])
    );
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::From("ba".into()))).await,
        s(&["ba", "c", "d"])
    );
    assert_eq!(
        all_sks(&*store, &pk, q(SkRange::All).backward()).await,
        s(&["d", "c", "ba", "b2", "b1", "b", "a"])
    );
    assert!(all_sks(&*store, &pk, q(SkRange::Prefix("z".into())))
        .await
        .is_empty());
    assert!(all_sks(&*store, &format!("{p}#empty"), q(SkRange::All))
        .await
        .is_empty());
}

/// `query_many` answers each query, in the order asked, as `query` does:
/// empty partitions, full pages with their cursor, backward walks and
/// prefixes (table queries only: a GSI may lag on DynamoDB).
pub async fn query_many_as_query(store: Store, p: &str) {
    let pk = |n: &str| format!("{p}#many{n}");
    for i in 0..5 {
        let sk = format!("s{i}");
        store
            .put(item(&Key::new(pk("a"), sk.as_str()), &sk), Condition::None)
            .await
            .expect("put");
    }
    store
        .put(item(&Key::new(pk("b"), "only"), "only"), Condition::None)
        .await
        .expect("put");
    let all = || QueryOpts::new(Index::Table, SkRange::All);
    let queries = vec![
        (pk("a"), all()),
        (pk("missing"), all()),
        (pk("a"), all().limit(2)),
        (pk("b"), all()),
        (pk("a"), all().limit(3).backward()),
        (
            pk("a"),
            QueryOpts::new(Index::Table, SkRange::Prefix("s3".into())),
        ),
    ];
    let many = store.query_many(&queries).await.expect("query_many");
    assert_eq!(many.len(), queries.len());
    for ((pk, opts), page) in queries.into_iter().zip(many) {
        let one = store.query(&pk, opts.clone()).await.expect("query");
        let sks = |p: &Page| p.items.iter().map(|i| i.key.sk.clone()).collect::<Vec<_>>();
        assert_eq!(sks(&page), sks(&one), "{pk} {opts:?}");
        assert_eq!(page.next.is_some(), one.next.is_some(), "{pk} {opts:?}");
        if let (Some(a), Some(b)) = (&page.next, &one.next) {
            assert_eq!(a.as_str(), b.as_str(), "{pk} {opts:?}");
        }
    }
    assert!(store.query_many(&[]).await.expect("none").is_empty());
}

pub async fn query_paging(store: Store, p: &str) {
    let pk = format!("{p}#page");
    let expected: Vec<String> = (0..25).map(|i| format!("s{i:03}")).collect();
    for sk in &expected {
        store
            .put(
                item(&Key::new(pk.clone(), sk.as_str()), sk),
                Condition::None,
            )
            .await
            .expect("put");
    }
    for limit in [1, 4, 25, 100] {
        let opts = QueryOpts::new(Index::Table, SkRange::All).limit(limit);
        assert_eq!(
            all_sks(&*store, &pk, opts.clone()).await,
            expected,
            "limit {limit}"
        );
        let mut rev = expected.clone();
        rev.reverse();
        assert_eq!(
            all_sks(&*store, &pk, opts.backward()).await,
            rev,
            "backward limit {limit}"
        );
    }
    let between =
        QueryOpts::new(Index::Table, SkRange::Between("s005".into(), "s014".into())).limit(3);
    assert_eq!(
        all_sks(&*store, &pk, between).await,
        expected[5..=14].to_vec()
    );
    let first = store
        .query(&pk, QueryOpts::new(Index::Table, SkRange::All).limit(10))
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 10);
    let cursor = first.next.expect("a cursor after a full page");
    // The cursor survives a trip through a URL query string.
    let token = cursor.as_str().to_owned();
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~=%".contains(&b)));
    let second = store
        .query(
            &pk,
            QueryOpts::new(Index::Table, SkRange::All)
                .limit(10)
                .after(Some(Cursor::new(token))),
        )
        .await
        .expect("second page");
    assert_eq!(
        second.items.first().map(|i| i.key.sk.as_str()),
        Some("s010")
    );
}

pub async fn query_gsi(store: Store, p: &str) {
    let g1 = format!("{p}#g1");
    let g2 = format!("{p}#g2");
    for i in 0..6 {
        let mut it = item(&key(p, &format!("gsi{i}"), "row"), &format!("d{i}"))
            .with_gsi1(Key::new(g1.clone(), format!("k{}", 5 - i)));
        if i % 2 == 0 {
            it = it.with_gsi2(Key::new(g2.clone(), format!("e{i}")));
        }
        store.put(it, Condition::None).await.expect("put");
    }
    store
        .put(item(&key(p, "plain", "row"), "no index"), Condition::None)
        .await
        .expect("put plain");
    // gsi sk runs k5..k0 as i runs 0..6, so index order is the reverse.
    let want: Vec<String> = (0..6)
        .rev()
        .map(|i| key(p, &format!("gsi{i}"), "row").pk)
        .collect();
    let s = store.clone();
    let g1c = g1.clone();
    eventually("gsi1 lists all six in gsi sort order", move || {
        let s = s.clone();
        let g1 = g1c.clone();
        let want = want.clone();
        async move {
            let items = collect(&*s, &g1, QueryOpts::new(Index::Gsi1, SkRange::All).limit(4)).await;
            let got: Vec<_> = items.iter().map(|i| i.key.pk.clone()).collect();
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        }
    })
    .await;
    let page = collect(
        &*store,
        &g1,
        QueryOpts::new(Index::Gsi1, SkRange::Between("k1".into(), "k2".into())).backward(),
    )
    .await;
    let sks: Vec<_> = page.iter().map(|i| i.gsi1.clone().map(|k| k.sk)).collect();
    assert_eq!(sks, vec![Some("k2".to_string()), Some("k1".to_string())]);
    assert_eq!(page[0].data, b"d3", "index query returns the whole item");

    let s = store.clone();
    let g2c = g2.clone();
    eventually("gsi2 lists the even ones", move || {
        let s = s.clone();
        let g2 = g2c.clone();
        async move {
            let n = collect(
                &*s,
                &g2,
                QueryOpts::new(Index::Gsi2, SkRange::Prefix("e".into())),
            )
            .await
            .len();
            if n == 3 {
                Ok(())
            } else {
                Err(format!("{n} items"))
            }
        }
    })
    .await;

    // Moving an item in the index and deleting another both show up.
    store
        .put(
            item(&key(p, "gsi0", "row"), "moved").with_gsi1(Key::new(g1.clone(), "k9")),
            Condition::Exists,
        )
        .await
        .expect("move");
    store
        .delete(&key(p, "gsi1", "row"), Condition::Exists)
        .await
        .expect("delete");
    let s = store.clone();
    let g1c = g1.clone();
    eventually("gsi1 follows updates and deletes", move || {
        let s = s.clone();
        let g1 = g1c.clone();
        async move {
            let items = collect(&*s, &g1, QueryOpts::new(Index::Gsi1, SkRange::All)).await;
            let sks: Vec<_> = items
                .iter()
                .filter_map(|i| i.gsi1.clone().map(|k| k.sk))
                .collect();
            if sks == ["k0", "k1", "k2", "k3", "k9"] {
                Ok(())
            } else {
                Err(format!("{sks:?}"))
            }
        }
    })
    .await;
}

pub async fn transaction_atomicity(store: Store, p: &str) {
    let a = key(p, "tx", "a");
    let b = key(p, "tx", "b");
    let c = key(p, "tx", "c");
    let d = key(p, "tx", "d");
    store
        .put(item(&a, "a1"), Condition::Absent)
        .await
        .expect("put a");
    let failing = vec![
        Write::Put {
            item: item(&b, "b1"),
            cond: Condition::Absent,
        },
        Write::Put {
            item: item(&c, "c1"),
            cond: Condition::None,
        },
        Write::Check {
            key: a.clone(),
            cond: Condition::Version(1),
        },
        Write::Delete {
            key: d.clone(),
            cond: Condition::Exists,
        },
    ];
    assert_condition_failed(
        store.transact(failing).await,
        Some(3),
        "failing transaction",
    );
    assert_eq!(store.get(&b).await.expect("get b"), None, "nothing written");
    assert_eq!(store.get(&c).await.expect("get c"), None, "nothing written");

    let ok = vec![
        Write::Put {
            item: item(&b, "b1"),
            cond: Condition::Absent,
        },
        Write::Put {
            item: item(&a, "a2"),
            cond: Condition::Version(1),
        },
        Write::Check {
            key: d.clone(),
            cond: Condition::Absent,
        },
    ];
    store.transact(ok).await.expect("transaction");
    let got_a = store.get(&a).await.expect("get a").expect("a");
    assert_eq!(
        (got_a.version, got_a.data.as_slice()),
        (2, b"a2".as_slice())
    );
    assert_eq!(
        store.get(&b).await.expect("get b").map(|i| i.version),
        Some(1)
    );

    let delete = vec![
        Write::Delete {
            key: a.clone(),
            cond: Condition::Version(2),
        },
        Write::Check {
            key: b.clone(),
            cond: Condition::Exists,
        },
    ];
    store.transact(delete).await.expect("delete transaction");
    assert_eq!(store.get(&a).await.expect("get a"), None);
    assert_condition_failed(
        store
            .transact(vec![Write::Check {
                key: a.clone(),
                cond: Condition::Exists,
            }])
            .await,
        Some(0),
        "check on deleted",
    );
    store
        .transact(Vec::new())
        .await
        .expect("empty transaction is a no-op");
}

pub async fn transaction_limit(store: Store, p: &str) {
    let writes = |n: usize, tag: &str| -> Vec<Write> {
        (0..n)
            .map(|i| Write::Put {
                item: item(&key(p, tag, &format!("{i:03}")), "x"),
                cond: Condition::Absent,
            })
            .collect()
    };
    match store
        .transact(writes(MAX_TRANSACTION_WRITES + 1, "big"))
        .await
    {
        Err(StoreError::TooManyWrites {
            count: 101,
            limit: 100,
        }) => {}
        other => panic!("101 writes: {other:?}"),
    }
    assert!(store
        .get(&key(p, "big", "000"))
        .await
        .expect("get")
        .is_none());
    store
        .transact(writes(MAX_TRANSACTION_WRITES, "max"))
        .await
        .expect("100 writes are allowed");
    let pk = format!("{p}#max");
    assert_eq!(collect(&*store, &pk, QueryOpts::default()).await.len(), 100);
}

pub async fn transaction_duplicate_key(store: Store, p: &str) {
    let k = key(p, "dup", "x");
    let writes = vec![
        Write::Put {
            item: item(&k, "a"),
            cond: Condition::None,
        },
        Write::Check {
            key: k.clone(),
            cond: Condition::Absent,
        },
    ];
    match store.transact(writes).await {
        Err(StoreError::DuplicateKeyInTransaction { index: 1 }) => {}
        other => panic!("duplicate key: {other:?}"),
    }
    assert!(store.get(&k).await.expect("get").is_none());
}

pub async fn item_size_limit(store: Store, p: &str) {
    let big = Item::new(key(p, "size", "big"), vec![7u8; MAX_ITEM_BYTES + 1]);
    match store.put(big, Condition::None).await {
        Err(StoreError::TooLarge { .. }) => {}
        other => panic!("400 KB + 1: {other:?}"),
    }
    let fits = Item::new(key(p, "size", "fits"), vec![7u8; 399 * 1024]);
    store
        .put(fits.clone(), Condition::None)
        .await
        .expect("399 KB fits");
    let got = store.get(&fits.key).await.expect("get").expect("stored");
    assert_eq!(got.data, fits.data);
    let in_tx = vec![Write::Put {
        item: Item::new(key(p, "size", "tx"), vec![1u8; MAX_ITEM_BYTES + 1]),
        cond: Condition::None,
    }];
    assert!(matches!(
        store.transact(in_tx).await,
        Err(StoreError::TooLarge { .. })
    ));
}

pub async fn ttl_hides_expired(store: Store, p: &str) {
    let now = now_epoch_seconds();
    let pk = format!("{p}#ttl");
    let gpk = format!("{p}#ttlg");
    let dead = Item::new(Key::new(pk.clone(), "dead"), b"x".to_vec())
        .with_expiry(now - 60)
        .with_gsi1(Key::new(gpk.clone(), "dead"));
    let alive = Item::new(Key::new(pk.clone(), "alive"), b"y".to_vec())
        .with_expiry(now + 3600)
        .with_gsi1(Key::new(gpk.clone(), "alive"));
    store
        .put(dead.clone(), Condition::None)
        .await
        .expect("put dead");
    store
        .put(alive.clone(), Condition::None)
        .await
        .expect("put alive");
    assert_eq!(
        store.get(&dead.key).await.expect("get"),
        None,
        "expired is invisible"
    );
    let got = store.get(&alive.key).await.expect("get").expect("alive");
    assert_eq!(got.expires_at, Some(now + 3600));
    assert_eq!(
        all_sks(&*store, &pk, QueryOpts::default()).await,
        vec!["alive"]
    );
    let s = store.clone();
    eventually("gsi hides expired", move || {
        let s = s.clone();
        let gpk = gpk.clone();
        async move {
            let got: Vec<String> = collect(&*s, &gpk, QueryOpts::new(Index::Gsi1, SkRange::All))
                .await
                .into_iter()
                .map(|i| i.key.sk)
                .collect();
            if got == ["alive"] {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        }
    })
    .await;
    // An expired item counts as absent for conditions.
    assert_condition_failed(
        store.put(item(&dead.key, "z"), Condition::Exists).await,
        None,
        "Exists on expired",
    );
    store
        .put(item(&dead.key, "reborn"), Condition::Absent)
        .await
        .expect("put-if-absent over an expired item");
    let reborn = store.get(&dead.key).await.expect("get").expect("reborn");
    assert_eq!(
        (reborn.data.as_slice(), reborn.expires_at),
        (b"reborn".as_slice(), None)
    );
}

pub async fn binary_round_trip(store: Store, p: &str) {
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let k = key(p, "bin", "all");
    store
        .put(Item::new(k.clone(), all.clone()), Condition::None)
        .await
        .expect("put");
    assert_eq!(store.get(&k).await.expect("get").expect("item").data, all);
    let e = key(p, "bin", "empty");
    store
        .put(Item::new(e.clone(), Vec::new()), Condition::None)
        .await
        .expect("put empty");
    assert_eq!(
        store.get(&e).await.expect("get").expect("item").data,
        Vec::<u8>::new()
    );
    let page = store
        .query(
            &format!("{p}#bin"),
            QueryOpts::new(Index::Table, SkRange::Prefix("all".into())),
        )
        .await
        .expect("query");
    assert_eq!(page.items[0].data, all);
}

pub async fn unicode_keys(store: Store, p: &str) {
    let pk = format!("{p}#ünï·日本");
    // Byte-wise UTF-8 order: ASCII < Latin-1 < CJK < emoji.
    let sks = ["Zoë", "zoe", "ÿ", "日本#1", "日本#2", "😀"];
    for sk in sks.iter().rev() {
        store
            .put(item(&Key::new(pk.clone(), *sk), sk), Condition::Absent)
            .await
            .expect("put");
    }
    let got = all_sks(&*store, &pk, QueryOpts::default().limit(2)).await;
    assert_eq!(got, sks.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let cjk = all_sks(
        &*store,
        &pk,
        QueryOpts::new(Index::Table, SkRange::Prefix("日本".into())),
    )
    .await;
    assert_eq!(cjk, vec!["日本#1", "日本#2"]);
    let got = store
        .get(&Key::new(pk.clone(), "😀"))
        .await
        .expect("get")
        .expect("emoji");
    assert_eq!(got.data, "😀".as_bytes());
}

pub async fn invalid_cursor(store: Store, p: &str) {
    let pk = format!("{p}#cur");
    for sk in ["a", "b", "c"] {
        store
            .put(item(&Key::new(pk.clone(), sk), sk), Condition::None)
            .await
            .expect("put");
    }
    let r = store
        .query(
            &pk,
            QueryOpts::default().after(Some(Cursor::new("not a cursor!"))),
        )
        .await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "garbage cursor: {r:?}"
    );
    let page = store
        .query(&pk, QueryOpts::default().limit(1))
        .await
        .expect("query");
    let other = store
        .query(
            &format!("{p}#elsewhere"),
            QueryOpts::default().after(page.next),
        )
        .await;
    assert!(
        other.is_err() || other.is_ok_and(|p| p.items.is_empty()),
        "cursor of another partition"
    );
}

pub async fn concurrent_increments(store: Store, p: &str) {
    const TASKS: usize = 8;
    const EACH: usize = 50;
    let k = key(p, "counter", "n");
    store
        .put(item(&k, "0"), Condition::Absent)
        .await
        .expect("create counter");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let store = store.clone();
        let k = k.clone();
        tasks.spawn(async move {
            let mut conflicts = 0usize;
            for _ in 0..EACH {
                loop {
                    let cur = store.get(&k).await.expect("get").expect("counter");
                    let n: u64 = std::str::from_utf8(&cur.data)
                        .expect("utf8")
                        .parse()
                        .expect("number");
                    let next = item(&k, &(n + 1).to_string());
                    match store.put(next, Condition::Version(cur.version)).await {
                        Ok(_) => break,
                        Err(StoreError::ConditionFailed { .. }) => conflicts += 1,
                        Err(e) if e.is_retryable() => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(e) => panic!("increment: {e}"),
                    }
                }
            }
            conflicts
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    let got = store.get(&k).await.expect("get").expect("counter");
    assert_eq!(got.data, (TASKS * EACH).to_string().as_bytes());
    assert_eq!(got.version, (TASKS * EACH) as u64 + 1);
}

// ---- change feed -------------------------------------------------------------

async fn changes_for(feed: &dyn ChangeFeed, after: Option<u64>, p: &str) -> Vec<crate::Change> {
    feed.read(after, 10_000)
        .await
        .expect("read feed")
        .into_iter()
        .filter(|c| c.key.pk.starts_with(p))
        .collect()
}

async fn last_seq(feed: &dyn ChangeFeed) -> Option<u64> {
    let mut last = None;
    loop {
        let batch = feed.read(last, 1000).await.expect("read feed");
        match batch.last() {
            Some(c) => last = Some(c.seq),
            None => return last,
        }
    }
}

pub async fn feed_records_writes(store: Store, feed: Arc<dyn ChangeFeed>, p: &str) {
    let start = last_seq(&*feed).await;
    let k = key(p, "feed", "x");
    store
        .put(item(&k, "v1"), Condition::Absent)
        .await
        .expect("create");
    store
        .put(item(&k, "v2"), Condition::Version(1))
        .await
        .expect("update");
    let refused = store.put(item(&k, "nope"), Condition::Absent).await;
    assert!(refused.is_err(), "refused writes leave no change");
    store.delete(&k, Condition::None).await.expect("delete");
    store
        .delete(&k, Condition::None)
        .await
        .expect("delete again (no-op)");
    let other = key(p, "feed", "y");
    store
        .transact(vec![
            Write::Put {
                item: item(&other, "t"),
                cond: Condition::Absent,
            },
            Write::Check {
                key: k.clone(),
                cond: Condition::Absent,
            },
        ])
        .await
        .expect("transaction");

    let changes = changes_for(&*feed, start, p).await;
    let summary: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.key.sk.clone(),
                c.old.as_ref().map(|i| (i.version, i.data.clone())),
                c.new.as_ref().map(|i| (i.version, i.data.clone())),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("x".into(), None, Some((1, b"v1".to_vec()))),
            (
                "x".into(),
                Some((1, b"v1".to_vec())),
                Some((2, b"v2".to_vec()))
            ),
            ("x".into(), Some((2, b"v2".to_vec())), None),
            ("y".into(), None, Some((1, b"t".to_vec()))),
        ]
    );
    assert!(
        changes.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq increases"
    );
    assert!(changes.iter().all(|c| c.at_ms > 0));
}

pub async fn feed_wait_wakes(store: Store, feed: Arc<dyn ChangeFeed>, p: &str) {
    let start = last_seq(&*feed).await;
    let waiter = {
        let feed = feed.clone();
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(10), feed.wait(start))
                .await
                .is_ok()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .put(item(&key(p, "wake", "x"), "v"), Condition::None)
        .await
        .expect("put");
    assert!(
        waiter.await.expect("waiter task"),
        "wait() woke on a new change"
    );
    // Already-available changes return at once.
    tokio::time::timeout(Duration::from_secs(1), feed.wait(start))
        .await
        .expect("wait returns at once when changes exist");
}

pub async fn feed_checkpoints(store: Store, feed: Arc<dyn ChangeFeed>, p: &str) {
    let consumer = format!("{p}-consumer");
    assert_eq!(feed.position(&consumer).await.expect("position"), None);
    store
        .put(item(&key(p, "cp", "x"), "v"), Condition::None)
        .await
        .expect("put");
    let seq = last_seq(&*feed).await.expect("a change exists");
    feed.checkpoint(&consumer, seq).await.expect("checkpoint");
    assert_eq!(feed.position(&consumer).await.expect("position"), Some(seq));
    assert!(
        changes_for(&*feed, Some(seq), p).await.is_empty(),
        "resume after checkpoint"
    );
}

pub async fn feed_trim(store: Store, feed: Arc<dyn ChangeFeed>, p: &str) {
    for i in 0..10 {
        store
            .put(item(&key(p, "trim", &i.to_string()), "v"), Condition::None)
            .await
            .expect("put");
    }
    let all = changes_for(&*feed, None, p).await;
    assert_eq!(all.len(), 10);
    let fourth = all[3].seq;
    assert!(feed.trim(Trim::Through(fourth)).await.expect("trim") >= 4);
    let left = changes_for(&*feed, None, p).await;
    assert_eq!(left.first().map(|c| c.seq), Some(all[4].seq));

    let a = format!("{p}-a");
    let b = format!("{p}-b");
    feed.checkpoint(&a, all[8].seq).await.expect("checkpoint a");
    feed.checkpoint(&b, all[6].seq).await.expect("checkpoint b");
    feed.trim(Trim::Consumed).await.expect("trim consumed");
    let left = changes_for(&*feed, None, p).await;
    assert_eq!(
        left.first().map(|c| c.seq),
        Some(all[7].seq),
        "slowest consumer wins"
    );

    assert_eq!(
        feed.trim(Trim::OlderThan(Duration::from_secs(3600))).await,
        Ok(0)
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    feed.trim(Trim::OlderThan(Duration::from_millis(1)))
        .await
        .expect("trim by age");
    assert!(changes_for(&*feed, None, p).await.is_empty());
}
