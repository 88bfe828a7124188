//! Reads: each call is one redb read transaction, a consistent snapshot that
//! never waits for the writer (redb is MVCC), so reads stay fast while a group
//! commit is in flight. Callers run these on tokio's blocking pool.

use std::ops::Bound;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase};

use super::keys::{bounds, partition, parts, table_key};
use super::storage_error;
use super::tables::{for_index, Bytes, CHANGES, CHECKPOINTS, ITEMS, LAST_SEQ, META};
use super::values::{decode_change, decode_item, decode_item_in};
use crate::error::{Result, StoreError};
use crate::limits::item_size;
use crate::model::{Change, Cursor, Index, Item, Key, Page, QueryOpts};

/// A page stops growing past this many bytes, like a DynamoDB query page.
pub const PAGE_BYTES: usize = 1024 * 1024;

pub fn get(db: &Database, key: &Key, now_s: i64) -> Result<Option<Item>> {
    let txn = db.begin_read().map_err(storage_error)?;
    let items = txn.open_table(ITEMS).map_err(storage_error)?;
    lookup(&items, key, now_s)
}

/// Several point lookups in one read transaction (one snapshot).
pub fn get_many(db: &Database, keys: &[Key], now_s: i64) -> Result<Vec<Option<Item>>> {
    let txn = db.begin_read().map_err(storage_error)?;
    let items = txn.open_table(ITEMS).map_err(storage_error)?;
    keys.iter().map(|key| lookup(&items, key, now_s)).collect()
}

/// The live item at `key` in an open `items` table.
fn lookup(items: &ReadOnlyTable<Bytes, Bytes>, key: &Key, now_s: i64) -> Result<Option<Item>> {
    let Some(raw) = items
        .get(table_key(key).as_slice())
        .map_err(storage_error)?
    else {
        return Ok(None);
    };
    let item = decode_item(raw.value(), key)?;
    Ok(Some(item).filter(|i| !i.is_expired(now_s)))
}

fn index_tag(index: Index) -> u8 {
    match index {
        Index::Table => b'T',
        Index::Gsi1 => b'1',
        Index::Gsi2 => b'2',
    }
}

/// Number of string parts in an encoded key of `index`.
fn key_parts(index: Index) -> usize {
    match index {
        Index::Table => 2,
        Index::Gsi1 | Index::Gsi2 => 4,
    }
}

/// Cursor = base64url(index tag ‖ last encoded key seen).
fn encode_cursor(index: Index, key: &[u8]) -> Cursor {
    let mut raw = Vec::with_capacity(key.len() + 1);
    raw.push(index_tag(index));
    raw.extend_from_slice(key);
    Cursor::new(URL_SAFE_NO_PAD.encode(raw))
}

fn decode_cursor(cursor: &Cursor, index: Index, partition: &[u8]) -> Result<Vec<u8>> {
    let invalid = || StoreError::Invalid("cursor does not belong to this query".into());
    let raw = URL_SAFE_NO_PAD
        .decode(cursor.as_str())
        .map_err(|_| invalid())?;
    match raw.split_first() {
        Some((&tag, key))
            if tag == index_tag(index)
                && key.starts_with(partition)
                && parts(key).is_some_and(|p| p.len() == key_parts(index)) =>
        {
            Ok(key.to_vec())
        }
        _ => Err(invalid()),
    }
}

fn is_empty_range(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

pub fn query(db: &Database, pk: &str, opts: &QueryOpts, now_s: i64) -> Result<Page> {
    Snapshot::new(db).query(pk, opts, now_s)
}

/// Several queries answered from one read transaction (one snapshot), in
/// the order asked: a matcher reads a few dozen blocks per patient, and
/// beginning a transaction and opening the table for each cost more than
/// most of those (small) reads.
pub fn query_many(db: &Database, queries: &[(String, QueryOpts)], now_s: i64) -> Result<Vec<Page>> {
    let mut snapshot = Snapshot::new(db);
    queries
        .iter()
        .map(|(pk, opts)| snapshot.query(pk, opts, now_s))
        .collect()
}

/// A read transaction begun at the first query that reads anything, and
/// the tables opened so far in it (each opened once, however many queries
/// walk it).
struct Snapshot<'d> {
    db: &'d Database,
    txn: Option<ReadTransaction>,
    items: Option<ReadOnlyTable<Bytes, Bytes>>,
    gsi1: Option<ReadOnlyTable<Bytes, Bytes>>,
    gsi2: Option<ReadOnlyTable<Bytes, Bytes>>,
}

impl<'d> Snapshot<'d> {
    fn new(db: &'d Database) -> Self {
        Snapshot {
            db,
            txn: None,
            items: None,
            gsi1: None,
            gsi2: None,
        }
    }

    /// Opens `items` and, for an index query, the index table.
    fn open(&mut self, index: Index) -> Result<()> {
        let txn = match &mut self.txn {
            Some(txn) => txn,
            none => none.insert(self.db.begin_read().map_err(storage_error)?),
        };
        if self.items.is_none() {
            self.items = Some(txn.open_table(ITEMS).map_err(storage_error)?);
        }
        let slot = match index {
            Index::Table => return Ok(()),
            Index::Gsi1 => &mut self.gsi1,
            Index::Gsi2 => &mut self.gsi2,
        };
        if slot.is_none() {
            *slot = Some(txn.open_table(for_index(index)).map_err(storage_error)?);
        }
        Ok(())
    }

    fn query(&mut self, pk: &str, opts: &QueryOpts, now_s: i64) -> Result<Page> {
        let (mut lo, mut hi) = bounds(pk, &opts.range);
        if let Some(cursor) = &opts.cursor {
            let after = decode_cursor(cursor, opts.index, &partition(pk))?;
            if opts.forward {
                lo = Bound::Excluded(after);
            } else {
                hi = Bound::Excluded(after);
            }
        }
        let empty = Page {
            items: Vec::new(),
            next: None,
        };
        if is_empty_range(&lo, &hi) {
            return Ok(empty);
        }
        self.open(opts.index)?;
        let opened = || StoreError::Other("read table not opened".into());
        let items = self.items.as_ref().ok_or_else(opened)?;
        let walked = match opts.index {
            Index::Table => items,
            Index::Gsi1 => self.gsi1.as_ref().ok_or_else(opened)?,
            Index::Gsi2 => self.gsi2.as_ref().ok_or_else(opened)?,
        };
        let range = walked
            .range::<&[u8]>((
                lo.as_ref().map(Vec::as_slice),
                hi.as_ref().map(Vec::as_slice),
            ))
            .map_err(storage_error)?;
        let mut iter: Box<dyn Iterator<Item = _>> = if opts.forward {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let limit = opts.limit as usize;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // The key a full page stopped at (where the next page starts after);
        // copied only then, not for every entry walked.
        let mut last: Option<Vec<u8>> = None;
        for entry in iter.by_ref() {
            let (k, v) = entry.map_err(storage_error)?;
            let item = match opts.index {
                Index::Table => decode_item_in(v.value(), k.value())?,
                Index::Gsi1 | Index::Gsi2 => match items.get(v.value()).map_err(storage_error)? {
                    Some(raw) => decode_item_in(raw.value(), v.value())?,
                    None => return Err(StoreError::Corrupt("index entry without item".into())),
                },
            };
            if item.is_expired(now_s) {
                continue;
            }
            bytes += item_size(&item);
            out.push(item);
            if out.len() >= limit || bytes >= PAGE_BYTES {
                last = Some(k.value().to_vec());
                break;
            }
        }
        let more = last.is_some() && iter.next().is_some();
        Ok(Page {
            items: out,
            next: match last {
                Some(k) if more => Some(encode_cursor(opts.index, &k)),
                _ => None,
            },
        })
    }
}

pub fn read_changes(db: &Database, after: Option<u64>, limit: usize) -> Result<Vec<Change>> {
    let txn = db.begin_read().map_err(storage_error)?;
    let changes = txn.open_table(CHANGES).map_err(storage_error)?;
    let lo = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut out = Vec::new();
    for entry in changes
        .range::<u64>((lo, Bound::Unbounded))
        .map_err(storage_error)?
        .take(limit)
    {
        let (seq, raw) = entry.map_err(storage_error)?;
        out.push(decode_change(seq.value(), raw.value())?);
    }
    Ok(out)
}

pub fn position(db: &Database, consumer: &str) -> Result<Option<u64>> {
    let txn = db.begin_read().map_err(storage_error)?;
    let table = txn.open_table(CHECKPOINTS).map_err(storage_error)?;
    Ok(table
        .get(consumer)
        .map_err(storage_error)?
        .map(|g| g.value()))
}

pub fn last_seq(db: &Database) -> Result<u64> {
    let txn = db.begin_read().map_err(storage_error)?;
    let table = txn.open_table(META).map_err(storage_error)?;
    Ok(table
        .get(LAST_SEQ)
        .map_err(storage_error)?
        .map_or(0, |g| g.value()))
}
