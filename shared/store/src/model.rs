//! The data model of the port, shaped like DynamoDB so the same item layout
//! works on both backends: a partition key plus a sort key, opaque bytes, two
//! optional secondary-index keys and an optional expiry.
//!
//! Repositories own the meaning of `data` (they serialize JSON into it); the
//! store only owns `version`, which it sets itself so optimistic concurrency
//! cannot be forged by a caller.

use serde::{Deserialize, Serialize};

/// Primary key: partition key + sort key, both non-empty UTF-8 strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: Key,
    /// Set by the store: 1 on create, +1 on every put. Ignored on input.
    pub version: u64,
    /// Opaque payload.
    pub data: Vec<u8>,
    /// Key in secondary index 1 (eventually consistent on DynamoDB).
    pub gsi1: Option<Key>,
    /// Key in secondary index 2 (eventually consistent on DynamoDB).
    pub gsi2: Option<Key>,
    /// Expiry in epoch seconds; once `expires_at <= now` the item is invisible.
    pub expires_at: Option<i64>,
}

impl Item {
    /// An item with no index keys and no expiry; `version` is filled by the store.
    pub fn new(key: Key, data: impl Into<Vec<u8>>) -> Self {
        Item {
            key,
            version: 0,
            data: data.into(),
            gsi1: None,
            gsi2: None,
            expires_at: None,
        }
    }

    pub fn with_gsi1(mut self, key: Key) -> Self {
        self.gsi1 = Some(key);
        self
    }

    pub fn with_gsi2(mut self, key: Key) -> Self {
        self.gsi2 = Some(key);
        self
    }

    pub fn with_expiry(mut self, epoch_seconds: i64) -> Self {
        self.expires_at = Some(epoch_seconds);
        self
    }

    /// Whether the item is expired at `now` (epoch seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// A write's precondition on the current item. Expired items count as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Unconditional.
    None,
    /// The item must not exist.
    Absent,
    /// The item must exist.
    Exists,
    /// The item must exist with exactly this version.
    Version(u64),
}

/// One member of an atomic transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put {
        item: Item,
        cond: Condition,
    },
    Delete {
        key: Key,
        cond: Condition,
    },
    /// Asserts a condition without writing.
    Check {
        key: Key,
        cond: Condition,
    },
}

impl Write {
    /// The key this write addresses.
    pub fn key(&self) -> &Key {
        match self {
            Write::Put { item, .. } => &item.key,
            Write::Delete { key, .. } | Write::Check { key, .. } => key,
        }
    }
}

/// Which key space a query walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    Table,
    Gsi1,
    Gsi2,
}

/// Sort-key condition of a query (byte-wise UTF-8 order, like DynamoDB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    /// Sort key starts with this string (`""` means all).
    Prefix(String),
    /// `low <= sk <= high`; `low > high` is rejected as invalid.
    Between(String, String),
    /// `sk >= low`.
    From(String),
}

/// Options of [`crate::ItemStore::query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOpts {
    pub index: Index,
    pub range: SkRange,
    /// Most items per page, at least 1. A page may hold fewer (expired items
    /// are filtered after the limit on DynamoDB, and pages stop at 1 MB) and
    /// still have a `next` cursor: loop until `next` is `None`.
    pub limit: u32,
    /// Continue after the page that returned this cursor (same pk, index and
    /// direction; the range may stay the same too).
    pub cursor: Option<Cursor>,
    /// Ascending sort-key order when true.
    pub forward: bool,
}

impl QueryOpts {
    /// Default page size used by [`QueryOpts::default`].
    pub const DEFAULT_LIMIT: u32 = 100;

    pub fn new(index: Index, range: SkRange) -> Self {
        QueryOpts {
            index,
            range,
            ..Self::default()
        }
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }
}

impl Default for QueryOpts {
    fn default() -> Self {
        QueryOpts {
            index: Index::Table,
            range: SkRange::All,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
            forward: true,
        }
    }
}

/// Opaque, URL-safe paging token. Only meaningful to the backend that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// Wrap a token (e.g. one read back from a URL).
    pub fn new(token: impl Into<String>) -> Self {
        Cursor(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow.
    pub next: Option<Cursor>,
}

/// One entry of the change feed: the item before and after a write, like a
/// DynamoDB stream record with `NEW_AND_OLD_IMAGES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Monotonic per store; gaps are allowed.
    pub seq: u64,
    /// Commit time, epoch milliseconds.
    pub at_ms: i64,
    pub key: Key,
    /// `None` for a create (or a write over an expired item).
    pub old: Option<Item>,
    /// `None` for a delete.
    pub new: Option<Item>,
}

/// Which changes [`crate::ChangeFeed::trim`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Changes every registered consumer has checkpointed past (nothing if
    /// there is no consumer).
    Consumed,
    /// Changes committed more than this long ago, read or not (DynamoDB
    /// streams keep 24 hours).
    OlderThan(std::time::Duration),
    /// Changes with `seq <= n`.
    Through(u64),
}
