//! The JSON shapes of requests, answers and errors, and their conversions
//! to and from the port's model.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use store::{Condition, Cursor, Index, Item, Key, Page, QueryOpts, SkRange, StoreError, Write};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireItem {
    key: Key,
    version: u64,
    /// base64
    data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1: Option<Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2: Option<Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl From<&Item> for WireItem {
    fn from(item: &Item) -> Self {
        WireItem {
            key: item.key.clone(),
            version: item.version,
            data: B64.encode(&item.data),
            gsi1: item.gsi1.clone(),
            gsi2: item.gsi2.clone(),
            expires_at: item.expires_at,
        }
    }
}

impl TryFrom<WireItem> for Item {
    type Error = StoreError;
    fn try_from(w: WireItem) -> Result<Self, StoreError> {
        Ok(Item {
            key: w.key,
            version: w.version,
            data: B64
                .decode(w.data.as_bytes())
                .map_err(|e| StoreError::Invalid(format!("item data is not base64: {e}")))?,
            gsi1: w.gsi1,
            gsi2: w.gsi2,
            expires_at: w.expires_at,
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireCondition {
    None,
    Absent,
    Exists,
    Version(u64),
}

impl From<Condition> for WireCondition {
    fn from(c: Condition) -> Self {
        match c {
            Condition::None => WireCondition::None,
            Condition::Absent => WireCondition::Absent,
            Condition::Exists => WireCondition::Exists,
            Condition::Version(v) => WireCondition::Version(v),
        }
    }
}

impl From<WireCondition> for Condition {
    fn from(c: WireCondition) -> Self {
        match c {
            WireCondition::None => Condition::None,
            WireCondition::Absent => Condition::Absent,
            WireCondition::Exists => Condition::Exists,
            WireCondition::Version(v) => Condition::Version(v),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "write")]
pub(crate) enum WireWrite {
    Put { item: WireItem, cond: WireCondition },
    Delete { key: Key, cond: WireCondition },
    Check { key: Key, cond: WireCondition },
}

impl From<&Write> for WireWrite {
    fn from(w: &Write) -> Self {
        match w {
            Write::Put { item, cond } => WireWrite::Put {
                item: item.into(),
                cond: (*cond).into(),
            },
            Write::Delete { key, cond } => WireWrite::Delete {
                key: key.clone(),
                cond: (*cond).into(),
            },
            Write::Check { key, cond } => WireWrite::Check {
                key: key.clone(),
                cond: (*cond).into(),
            },
        }
    }
}

impl TryFrom<WireWrite> for Write {
    type Error = StoreError;
    fn try_from(w: WireWrite) -> Result<Self, StoreError> {
        Ok(match w {
            WireWrite::Put { item, cond } => Write::Put {
                item: item.try_into()?,
                cond: cond.into(),
            },
            WireWrite::Delete { key, cond } => Write::Delete {
                key,
                cond: cond.into(),
            },
            WireWrite::Check { key, cond } => Write::Check {
                key,
                cond: cond.into(),
            },
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireRange {
    All,
    Prefix(String),
    Between(String, String),
    From(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireQuery {
    index: u8,
    range: WireRange,
    limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<Cursor>,
    forward: bool,
}

impl From<&QueryOpts> for WireQuery {
    fn from(o: &QueryOpts) -> Self {
        WireQuery {
            index: match o.index {
                Index::Table => 0,
                Index::Gsi1 => 1,
                Index::Gsi2 => 2,
            },
            range: match &o.range {
                SkRange::All => WireRange::All,
                SkRange::Prefix(p) => WireRange::Prefix(p.clone()),
                SkRange::Between(a, b) => WireRange::Between(a.clone(), b.clone()),
                SkRange::From(a) => WireRange::From(a.clone()),
            },
            limit: o.limit,
            cursor: o.cursor.clone(),
            forward: o.forward,
        }
    }
}

impl TryFrom<WireQuery> for QueryOpts {
    type Error = StoreError;
    fn try_from(w: WireQuery) -> Result<Self, StoreError> {
        Ok(QueryOpts {
            index: match w.index {
                0 => Index::Table,
                1 => Index::Gsi1,
                2 => Index::Gsi2,
                n => return Err(StoreError::Invalid(format!("no index {n}"))),
            },
            range: match w.range {
                WireRange::All => SkRange::All,
                WireRange::Prefix(p) => SkRange::Prefix(p),
                WireRange::Between(a, b) => SkRange::Between(a, b),
                WireRange::From(a) => SkRange::From(a),
            },
            limit: w.limit,
            cursor: w.cursor,
            forward: w.forward,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WirePage {
    items: Vec<WireItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<Cursor>,
}

impl From<&Page> for WirePage {
    fn from(p: &Page) -> Self {
        WirePage {
            items: p.items.iter().map(WireItem::from).collect(),
            next: p.next.clone(),
        }
    }
}

impl TryFrom<WirePage> for Page {
    type Error = StoreError;
    fn try_from(w: WirePage) -> Result<Self, StoreError> {
        Ok(Page {
            items: w
                .items
                .into_iter()
                .map(Item::try_from)
                .collect::<Result<_, _>>()?,
            next: w.next,
        })
    }
}

/// One store operation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub(crate) enum Request {
    Get { key: Key },
    GetMany { keys: Vec<Key> },
    Put { item: WireItem, cond: WireCondition },
    Delete { key: Key, cond: WireCondition },
    Query { pk: String, opts: WireQuery },
    Transact { writes: Vec<WireWrite> },
}

/// What an operation answered.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Answer {
    Item(Option<WireItem>),
    Items(Vec<Option<WireItem>>),
    Version(u64),
    Done,
    Page(WirePage),
    Error(WireError),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error")]
pub(crate) enum WireError {
    ConditionFailed { index: Option<usize> },
    TooLarge { size: usize, limit: usize },
    TooManyWrites { count: usize, limit: usize },
    DuplicateKeyInTransaction { index: usize },
    Invalid { detail: String },
    Throttled { detail: String },
    Unavailable { detail: String },
    Corrupt { detail: String },
    Other { detail: String },
}

impl From<&StoreError> for WireError {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::ConditionFailed { index } => WireError::ConditionFailed { index: *index },
            StoreError::TooLarge { size, limit } => WireError::TooLarge {
                size: *size,
                limit: *limit,
            },
            StoreError::TooManyWrites { count, limit } => WireError::TooManyWrites {
                count: *count,
                limit: *limit,
            },
            StoreError::DuplicateKeyInTransaction { index } => {
                WireError::DuplicateKeyInTransaction { index: *index }
            }
            StoreError::Invalid(d) => WireError::Invalid { detail: d.clone() },
            StoreError::Throttled(d) => WireError::Throttled { detail: d.clone() },
            StoreError::Unavailable(d) => WireError::Unavailable { detail: d.clone() },
            StoreError::Corrupt(d) => WireError::Corrupt { detail: d.clone() },
            other => WireError::Other {
                detail: other.to_string(),
            },
        }
    }
}

impl From<WireError> for StoreError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::ConditionFailed { index } => StoreError::ConditionFailed { index },
            WireError::TooLarge { size, limit } => StoreError::TooLarge { size, limit },
            WireError::TooManyWrites { count, limit } => StoreError::TooManyWrites { count, limit },
            WireError::DuplicateKeyInTransaction { index } => {
                StoreError::DuplicateKeyInTransaction { index }
            }
            WireError::Invalid { detail } => StoreError::Invalid(detail),
            WireError::Throttled { detail } => StoreError::Throttled(detail),
            WireError::Unavailable { detail } => StoreError::Unavailable(detail),
            WireError::Corrupt { detail } => StoreError::Corrupt(detail),
            WireError::Other { detail } => StoreError::Other(detail),
        }
    }
}
