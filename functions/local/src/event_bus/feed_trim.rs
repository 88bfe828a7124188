//! Keeps the local change feed from growing forever: changes every
//! consumer (matcher, membership, export) has checkpointed past are
//! deleted, a chunk per transaction. On AWS the stream's 24-hour retention
//! does this; without it the embedded store would hold every item twice
//! (the item, and its image in the feed).

use std::sync::Arc;
use std::time::Duration;

use store::{ChangeFeed, StoreError, Trim};

/// The consumers `iisbulk serve` runs: a consumer left out of this list
/// would lose the changes trimmed before it read them.
pub const CONSUMERS: [&str; 3] = [
    crate::event_bus::matcher_loop::CONSUMER,
    crate::event_bus::membership_loop::CONSUMER,
    crate::event_bus::export_loop::CONSUMER,
];

/// Changes deleted per transaction, so a first trim of a long feed never
/// holds the writer for long.
const CHUNK: u64 = 20_000;

/// Runs forever, trimming every `every`.
pub async fn run(feed: Arc<dyn ChangeFeed>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match trim_behind(feed.as_ref(), &CONSUMERS, CHUNK).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "change feed trimmed"),
            Err(e) => tracing::warn!(error = %e, "change feed not trimmed; will retry"),
        }
    }
}

/// Deletes the changes all `consumers` have processed; none while one of
/// them has never checkpointed. Returns how many were deleted.
pub async fn trim_behind(
    feed: &dyn ChangeFeed,
    consumers: &[&str],
    chunk: u64,
) -> Result<u64, StoreError> {
    let mut through: Option<u64> = None;
    for c in consumers {
        let Some(p) = feed.position(c).await? else {
            return Ok(0);
        };
        through = Some(through.map_or(p, |t| t.min(p)));
    }
    let Some(through) = through else {
        return Ok(0);
    };
    let mut removed = 0;
    loop {
        let Some(first) = feed.read(None, 1).await?.first().map(|c| c.seq) else {
            return Ok(removed);
        };
        if first > through {
            return Ok(removed);
        }
        removed += feed
            .trim(Trim::Through(through.min(first.saturating_add(chunk - 1))))
            .await?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use store::embedded::EmbeddedStore;
    use store::{Condition, Item, ItemStore, Key};

    #[tokio::test]
    async fn only_changes_every_consumer_passed_are_deleted_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
        for n in 0..10 {
            store
                .put(
                    Item::new(Key::new(format!("P#{n}"), "S"), b"x".to_vec()),
                    Condition::None,
                )
                .await
                .unwrap();
        }
        let seqs: Vec<u64> = store
            .read(None, 100)
            .await
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(seqs.len(), 10);
        // One consumer has never checkpointed: nothing goes.
        store.checkpoint("a", seqs[7]).await.unwrap();
        assert_eq!(
            trim_behind(store.as_ref(), &["a", "b"], 3).await.unwrap(),
            0
        );
        // The slowest consumer decides, whatever the chunk size.
        store.checkpoint("b", seqs[4]).await.unwrap();
        assert_eq!(
            trim_behind(store.as_ref(), &["a", "b"], 2).await.unwrap(),
            5
        );
        let left: Vec<u64> = store
            .read(None, 100)
            .await
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(left, seqs[5..]);
        // Nothing new passed: nothing more goes.
        assert_eq!(
            trim_behind(store.as_ref(), &["a", "b"], 2).await.unwrap(),
            0
        );
        // The items themselves are untouched.
        assert!(store.get(&Key::new("P#0", "S")).await.unwrap().is_some());
    }
}
