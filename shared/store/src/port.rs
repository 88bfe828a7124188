//! The ports: what repositories and consumers program against.
//!
//! Both traits are object-safe (`async-trait`) so the composition root can
//! hand out `Arc<dyn ItemStore>` / `Arc<dyn ChangeFeed>` and the use cases never
//! learn which backend they run on.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Change, Condition, Item, Key, Page, QueryOpts, Trim, Write};

/// A DynamoDB-shaped item store: single-item conditional writes, ordered
/// sort-key queries on the table and two secondary indexes, and small atomic
/// transactions.
///
/// Expired items (`expires_at <= now`) behave as absent everywhere: reads skip
/// them and conditions treat them as missing.
#[async_trait]
pub trait ItemStore: Send + Sync {
    /// Strongly consistent read of one item.
    async fn get(&self, key: &Key) -> Result<Option<Item>>;

    /// Strongly consistent reads of several items, answered in the order
    /// asked: `None` for a missing or expired item, and the same answer for
    /// a key asked twice. Each item is read consistently, not all of them at
    /// one instant. Backends override this to answer in as few round trips
    /// as they can (DynamoDB `BatchGetItem`).
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    /// Create or replace `item` if `cond` holds; returns the new version
    /// (1 on create, previous + 1 otherwise). `item.version` is ignored.
    async fn put(&self, item: Item, cond: Condition) -> Result<u64>;

    /// Remove the item if `cond` holds. Deleting a missing item with
    /// `Condition::None` succeeds.
    async fn delete(&self, key: &Key, cond: Condition) -> Result<()>;

    /// One page of the items whose (index) partition key is `pk`, in sort-key
    /// order. Table queries are strongly consistent; GSI queries are
    /// eventually consistent on DynamoDB.
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Page>;

    /// The first page of each query, answered in the order asked, as
    /// [`ItemStore::query`] answers each. Like [`ItemStore::get_many`],
    /// each is read consistently, not all of them at one instant; backends
    /// override this to answer in fewer round trips or transactions.
    async fn query_many(&self, queries: &[(String, QueryOpts)]) -> Result<Vec<Page>> {
        let mut out = Vec::with_capacity(queries.len());
        for (pk, opts) in queries {
            out.push(self.query(pk, opts.clone()).await?);
        }
        Ok(out)
    }

    /// Apply all writes atomically or none of them. At most 100 writes, no two
    /// on the same key. A failed condition is reported as
    /// `ConditionFailed { index: Some(i) }`. An empty list is a no-op.
    async fn transact(&self, writes: Vec<Write>) -> Result<()>;
}

/// An ordered log of every write, readable by durable named consumers.
///
/// Locally this is the embedded store's outbox (written in the same
/// transaction as the item); in AWS the same role is played by the DynamoDB
/// stream, consumed by Lambda.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Up to `limit` changes with `seq > after` (from the oldest kept change
    /// when `after` is `None`), oldest first.
    async fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<Change>>;

    /// Resolve once a change with `seq > after` has been committed (at once if
    /// one already has). Wrap in `tokio::time::timeout` to bound the wait.
    async fn wait(&self, after: Option<u64>);

    /// Durably record that `consumer` has processed every change up to `seq`.
    async fn checkpoint(&self, consumer: &str, seq: u64) -> Result<()>;

    /// The last checkpoint of `consumer`, if any.
    async fn position(&self, consumer: &str) -> Result<Option<u64>>;

    /// Remove old changes; returns how many were removed.
    async fn trim(&self, trim: Trim) -> Result<u64>;
}
