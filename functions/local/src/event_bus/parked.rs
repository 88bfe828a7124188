//! Changes a local consumer could not apply, set aside so the rest of the
//! feed keeps moving: the local counterpart of the stream mapping's
//! on-failure destination (an SQS dead-letter queue on AWS).
//!
//! A parked change is kept in the store (`PARKED#<consumer>`, sort key its
//! feed sequence number) with the event it carried and the last error, so
//! nothing is lost: `iisbulk serve` tries every parked change of a consumer
//! again when it starts (after an upgrade or a repair), and `iisbulk feed
//! parked` lists what is still waiting.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, Key, QueryOpts, SkRange, StoreError};

fn pk(consumer: &str) -> String {
    format!("PARKED#{consumer}")
}

fn sk(seq: u64) -> String {
    format!("{seq:020}")
}

/// What is kept about one change a consumer gave up on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParkedChange {
    pub consumer: String,
    /// The change's sequence number in the feed.
    pub seq: u64,
    /// The consumer's own event (what it would have applied), as JSON.
    pub event: serde_json::Value,
    /// The last error, in the consumer's words.
    pub error: String,
    /// Attempts so far, replays included.
    pub attempts: u32,
    pub parked_at_ms: i64,
    pub last_attempt_ms: i64,
}

impl ParkedChange {
    pub fn new<E: Serialize>(
        consumer: &str,
        seq: u64,
        event: &E,
        error: String,
        attempts: u32,
        now_ms: i64,
    ) -> Result<Self, StoreError> {
        Ok(ParkedChange {
            consumer: consumer.to_owned(),
            seq,
            event: serde_json::to_value(event)
                .map_err(|e| StoreError::Invalid(format!("parked event: {e}")))?,
            error,
            attempts,
            parked_at_ms: now_ms,
            last_attempt_ms: now_ms,
        })
    }

    /// The event again, for a replay.
    pub fn event<E: DeserializeOwned>(&self) -> Result<E, String> {
        serde_json::from_value(self.event.clone())
            .map_err(|e| format!("parked change {} of {}: {e}", self.seq, self.consumer))
    }
}

/// Keep (or update) a parked change.
pub async fn put(items: &dyn ItemStore, parked: &ParkedChange) -> Result<(), StoreError> {
    let data = serde_json::to_vec(parked)
        .map_err(|e| StoreError::Invalid(format!("parked change: {e}")))?;
    items
        .put(
            Item::new(Key::new(pk(&parked.consumer), sk(parked.seq)), data),
            Condition::None,
        )
        .await
        .map(|_| ())
}

/// The change `consumer` parked at `seq`, if any.
pub async fn get(
    items: &dyn ItemStore,
    consumer: &str,
    seq: u64,
) -> Result<Option<ParkedChange>, StoreError> {
    let Some(item) = items.get(&Key::new(pk(consumer), sk(seq))).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&item.data)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("parked change {}: {e}", item.key.sk)))
}

/// A parked change that now went through.
pub async fn remove(items: &dyn ItemStore, consumer: &str, seq: u64) -> Result<(), StoreError> {
    items
        .delete(&Key::new(pk(consumer), sk(seq)), Condition::None)
        .await
}

/// Every change `consumer` has parked, oldest first.
pub async fn list(items: &dyn ItemStore, consumer: &str) -> Result<Vec<ParkedChange>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = items
            .query(
                &pk(consumer),
                QueryOpts::new(Index::Table, SkRange::All)
                    .limit(200)
                    .after(cursor),
            )
            .await?;
        for item in page.items {
            out.push(
                serde_json::from_slice(&item.data).map_err(|e| {
                    StoreError::Corrupt(format!("parked change {}: {e}", item.key.sk))
                })?,
            );
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn parked_changes_are_kept_listed_in_feed_order_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("t.redb")).unwrap();
        for seq in [12u64, 3, 7] {
            let p =
                ParkedChange::new("matcher", seq, &format!("m{seq}"), "bad".into(), 8, 1).unwrap();
            put(&store, &p).await.unwrap();
        }
        let other = ParkedChange::new("export", 1, &"job", "x".into(), 8, 1).unwrap();
        put(&store, &other).await.unwrap();
        let listed = list(&store, "matcher").await.unwrap();
        assert_eq!(
            listed.iter().map(|p| p.seq).collect::<Vec<_>>(),
            vec![3, 7, 12]
        );
        assert_eq!(listed[0].event::<String>().unwrap(), "m3");
        assert_eq!(get(&store, "matcher", 7).await.unwrap().unwrap().seq, 7);
        assert!(get(&store, "matcher", 8).await.unwrap().is_none());
        remove(&store, "matcher", 7).await.unwrap();
        assert_eq!(list(&store, "matcher").await.unwrap().len(), 2);
        assert_eq!(list(&store, "export").await.unwrap(), vec![other]);
    }
}
