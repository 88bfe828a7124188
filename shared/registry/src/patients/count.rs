//! How many charts (source records) the registry holds: the matcher's bands
//! move with it (a registry of N records needs log2(N / records) more bits
//! of evidence than the configuration's reference registry, since a record
//! is likelier to meet a namesake among more people).
//!
//! Counted in 64 shards, each new chart adding one to the shard its id
//! falls in, inside the transaction that creates it: concurrent new charts
//! rarely meet on one item, and a retried transaction never counts twice.
//! The count is read with one query of its partition and remembered for a
//! minute (a factor of two moves the bands by one bit only).
//!
//! A registry counts from its first chart only if it knew to: the marker
//! `SINCE` is written with the registry's first Authorized User. A registry
//! onboarded by an earlier version has no marker, and its count is unknown:
//! the matcher then uses the configuration's own bands (set for a registry
//! of the configuration's reference size, a state's), which only errs on
//! the careful side.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

use crate::json::{decode, encode};
use crate::keys;

/// Shards of the chart count.
pub const SHARDS: u32 = 64;
/// How long a count read is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Shard {
    count: u64,
}

/// The chart count as last read.
#[derive(Debug, Default)]
pub struct ChartCount {
    cached: Mutex<Option<(Instant, Option<u64>)>>,
}

impl ChartCount {
    /// The registry's chart count, or `None` when it is not known.
    pub async fn get(&self, store: &dyn ItemStore) -> Result<Option<u64>, StoreError> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, count)) = *cached {
                if at.elapsed() < FRESH_FOR {
                    return Ok(count);
                }
            }
        }
        let count = read(store).await?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), count));
        }
        Ok(count)
    }
}

/// Reads the count: the sum of the shards, if the registry counts from
/// its start.
pub async fn read(store: &dyn ItemStore) -> Result<Option<u64>, StoreError> {
    let mut total = 0u64;
    let mut since = false;
    let mut cursor = None;
    loop {
        let mut opts = QueryOpts::new(Index::Table, SkRange::All);
        opts.cursor = cursor;
        let page = store.query(keys::CHART_COUNT_PK, opts).await?;
        for item in &page.items {
            if item.key == keys::chart_count_since() {
                since = true;
            } else {
                total = total.saturating_add(decode::<Shard>(item, "chart count")?.count);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(since.then_some(total))
}

/// The write that counts one more chart, for the transaction that creates
/// chart `source_id` (guarded by the shard's version, so a conflict retries
/// the whole creation).
pub async fn one_more(store: &dyn ItemStore, source_id: &str) -> Result<Write, StoreError> {
    let key = keys::chart_count_shard(shard_of(source_id));
    let (count, cond) = match store.get(&key).await? {
        Some(item) => (
            decode::<Shard>(&item, "chart count")?.count,
            Condition::Version(item.version),
        ),
        None => (0, Condition::Absent),
    };
    Ok(Write::Put {
        item: Item::new(key, encode(&Shard { count: count + 1 })?),
        cond,
    })
}

fn shard_of(source_id: &str) -> u32 {
    let h = source_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    h % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_spread_over_every_shard() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..2_000 {
            seen.insert(shard_of(&format!("s{n:024x}")));
        }
        assert_eq!(seen.len(), SHARDS as usize);
    }
}
