//! Group commit: one thread owns redb's write side.
//!
//! A durable commit costs an `fsync`, a few milliseconds on ordinary disks,
//! which would cap one-at-a-time writes at a few hundred per second. Callers
//! send requests over a channel; the writer drains whatever is queued (up to
//! [`MAX_BATCH`]), applies each request in order inside ONE write transaction
//! — every request checks its own conditions and succeeds or fails on its own,
//! later requests see earlier ones — commits once with
//! `Durability::Immediate`, and only then answers every caller. An answer is
//! therefore never sent for a write that is not on disk. Under load the batch
//! grows by itself, so throughput scales with concurrency while a lone writer
//! still pays just one fsync.
//!
//! A store opened for a bulk load ([`Sync::BulkLoad`]) is the one exception:
//! it answers before the fsync and makes its batches durable about once a
//! second, for loads that can be started over.
//!
//! The change-log entry of a write goes into the same transaction as the
//! item, which makes the log a transactional outbox: no change without its
//! write, no write without its change.
//!
//! A request is checked completely before it mutates anything, so a refused
//! request leaves no trace in the shared transaction. A storage error, on the
//! other hand, may leave partial state, so it aborts the whole batch and every
//! caller in it gets the error.

use std::sync::mpsc;
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::{oneshot, watch};

use super::keys::{index_key, table_key};
use super::storage_error;
use super::tables::{
    expiry_key, expiry_prefix, Bytes, CHANGES, CHECKPOINTS, EXPIRY, GSI1, GSI2, ITEMS, LAST_SEQ,
    META,
};
use super::values::{change_time, decode_item, decode_item_in, encode_change_parts, encode_item};
use crate::error::{Result, StoreError};
use crate::limits::now_epoch_millis;
use crate::model::{Condition, Item, Key, Trim, Write};

/// Most requests applied in one write transaction.
pub const MAX_BATCH: usize = 256;
/// How often (at most) a batch also purges expired items.
const PURGE_EVERY_MS: i64 = 1_000;
/// Most expired items purged per batch, to keep batches short.
const PURGE_MAX: usize = 256;

/// What a caller asks the writer to do.
#[derive(Debug)]
pub enum Op {
    Put(Item, Condition),
    Delete(Key, Condition),
    Transact(Vec<Write>),
    Checkpoint(String, u64),
    Trim(Trim),
}

/// What the writer answers on success.
#[derive(Debug)]
pub enum Done {
    Version(u64),
    Unit,
    Count(u64),
}

/// One queued request and the way back to its caller.
#[derive(Debug)]
pub struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done>>,
}

/// Why applying one request stopped.
enum Failure {
    /// The request was refused; nothing of it was written.
    Refused(StoreError),
    /// redb failed; the transaction may hold partial state and must be aborted.
    Storage(StoreError),
}

impl From<redb::StorageError> for Failure {
    fn from(e: redb::StorageError) -> Self {
        Failure::Storage(storage_error(e))
    }
}

type Applied = std::result::Result<Done, Failure>;

/// The writer thread's state.
pub struct Writer {
    pub db: Arc<Database>,
    pub rx: mpsc::Receiver<Request>,
    /// Publishes the last committed change sequence number.
    pub published: watch::Sender<u64>,
    /// Last committed change sequence number.
    pub seq: u64,
    pub last_purge_ms: i64,
    pub sync: Sync,
    /// When the last durable commit happened.
    pub last_durable_ms: i64,
    /// Whether the last commit is not yet on disk (bulk load only).
    pub unsynced: bool,
}

/// When commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Every batch is durable before anyone hears back: the store's contract.
    EveryCommit,
    /// A bulk load: batches are acknowledged from memory; the first batch
    /// at least this many milliseconds after the last durable one is
    /// committed durably (making every batch before it durable too), and so
    /// is the store's close. A crash loses what was acknowledged since the
    /// last durable commit, so this is only for loads that can be started
    /// over.
    BulkLoad { every_ms: i64 },
}

impl Writer {
    /// Serve requests until every sender is gone.
    pub fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut batch = Vec::with_capacity(32);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        if self.unsynced {
            // The last bulk-load batches reach the disk before the file closes.
            if let Err(e) = self.sync_now() {
                tracing::error!(error = %e, "bulk-loaded writes could not be made durable at close");
            }
        }
    }

    /// An empty durable commit, which makes every earlier one durable.
    fn sync_now(&mut self) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(storage_error)?;
        txn.set_durability(Durability::Immediate)
            .map_err(storage_error)?;
        txn.commit().map_err(storage_error)?;
        self.committed(true, now_epoch_millis());
        Ok(())
    }

    /// Records a commit's durability (what decides when the next must be).
    fn committed(&mut self, durable: bool, at_ms: i64) {
        if durable {
            self.last_durable_ms = at_ms;
        }
        self.unsynced = !durable;
    }

    /// Whether the next batch's commit must reach the disk.
    fn durable(&self, now_ms: i64) -> bool {
        match self.sync {
            Sync::EveryCommit => true,
            Sync::BulkLoad { every_ms } => now_ms - self.last_durable_ms >= every_ms,
        }
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let mut seq = self.seq;
        match self.apply_batch(&batch, &mut seq) {
            Ok(outcomes) => {
                self.seq = seq;
                self.published.send_replace(seq);
                for (req, outcome) in batch.into_iter().zip(outcomes) {
                    // A caller that stopped waiting is not our problem.
                    let _ = req.reply.send(outcome);
                }
            }
            Err(e) => {
                for req in batch {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Apply every request in one transaction and commit it. `Err` means
    /// nothing was committed.
    fn apply_batch(&mut self, batch: &[Request], seq: &mut u64) -> Result<Vec<Result<Done>>> {
        let now_ms = now_epoch_millis();
        let durable = self.durable(now_ms);
        let mut txn = self.db.begin_write().map_err(storage_error)?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(storage_error)?;
        let outcomes = {
            let mut t = Tables::open(&txn, now_ms, *seq)?;
            if now_ms - self.last_purge_ms >= PURGE_EVERY_MS {
                self.last_purge_ms = now_ms;
                t.purge_expired(PURGE_MAX).map_err(unwrap_failure)?;
            }
            let mut outcomes = Vec::with_capacity(batch.len());
            for req in batch {
                match t.apply(&req.op) {
                    Ok(done) => outcomes.push(Ok(done)),
                    Err(Failure::Refused(e)) => outcomes.push(Err(e)),
                    // Dropping `txn` uncommitted aborts it.
                    Err(Failure::Storage(e)) => return Err(e),
                }
            }
            if t.seq != *seq {
                t.meta.insert(LAST_SEQ, t.seq).map_err(storage_error)?;
                *seq = t.seq;
            }
            outcomes
        };
        txn.commit().map_err(storage_error)?;
        self.committed(durable, now_ms);
        Ok(outcomes)
    }
}

fn unwrap_failure(f: Failure) -> StoreError {
    match f {
        Failure::Refused(e) | Failure::Storage(e) => e,
    }
}

/// Whether `cond` holds for the visible (non-expired) current item.
fn holds(cond: Condition, current: Option<&Item>) -> bool {
    match cond {
        Condition::None => true,
        Condition::Absent => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::Version(v) => current.is_some_and(|i| i.version == v),
    }
}

/// A stored item with its encoded bytes (reused as the change's old image).
struct Stored {
    item: Item,
    raw: Vec<u8>,
}

/// The open tables of one write transaction plus the batch's clock and
/// sequence counter.
struct Tables<'t> {
    items: Table<'t, Bytes, Bytes>,
    gsi1: Table<'t, Bytes, Bytes>,
    gsi2: Table<'t, Bytes, Bytes>,
    expiry: Table<'t, Bytes, ()>,
    changes: Table<'t, u64, Bytes>,
    checkpoints: Table<'t, &'static str, u64>,
    meta: Table<'t, &'static str, u64>,
    now_ms: i64,
    now_s: i64,
    seq: u64,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction, now_ms: i64, seq: u64) -> Result<Self> {
        Ok(Tables {
            items: txn.open_table(ITEMS).map_err(storage_error)?,
            gsi1: txn.open_table(GSI1).map_err(storage_error)?,
            gsi2: txn.open_table(GSI2).map_err(storage_error)?,
            expiry: txn.open_table(EXPIRY).map_err(storage_error)?,
            changes: txn.open_table(CHANGES).map_err(storage_error)?,
            checkpoints: txn.open_table(CHECKPOINTS).map_err(storage_error)?,
            meta: txn.open_table(META).map_err(storage_error)?,
            now_ms,
            now_s: now_ms.div_euclid(1000),
            seq,
        })
    }

    fn apply(&mut self, op: &Op) -> Applied {
        match op {
            Op::Put(item, cond) => {
                let stored = self.load(&item.key)?;
                self.check(*cond, stored.as_ref(), None)?;
                Ok(Done::Version(self.put(item, stored)?))
            }
            Op::Delete(key, cond) => {
                let stored = self.load(key)?;
                self.check(*cond, stored.as_ref(), None)?;
                self.delete(key, stored)?;
                Ok(Done::Unit)
            }
            Op::Transact(writes) => self.transact(writes),
            Op::Checkpoint(consumer, seq) => {
                self.checkpoints.insert(consumer.as_str(), *seq)?;
                Ok(Done::Unit)
            }
            Op::Trim(trim) => Ok(Done::Count(self.trim(*trim)?)),
        }
    }

    /// All conditions first, then all writes: a refused transaction writes nothing.
    fn transact(&mut self, writes: &[Write]) -> Applied {
        let mut stored = Vec::with_capacity(writes.len());
        for (index, write) in writes.iter().enumerate() {
            let current = self.load(write.key())?;
            let cond = match write {
                Write::Put { cond, .. }
                | Write::Delete { cond, .. }
                | Write::Check { cond, .. } => *cond,
            };
            self.check(cond, current.as_ref(), Some(index))?;
            stored.push(current);
        }
        for (write, current) in writes.iter().zip(stored) {
            match write {
                Write::Put { item, .. } => {
                    self.put(item, current)?;
                }
                Write::Delete { key, .. } => self.delete(key, current)?,
                Write::Check { .. } => {}
            }
        }
        Ok(Done::Unit)
    }

    fn check(
        &self,
        cond: Condition,
        stored: Option<&Stored>,
        index: Option<usize>,
    ) -> Result<(), Failure> {
        let visible = stored
            .map(|s| &s.item)
            .filter(|i| !i.is_expired(self.now_s));
        if holds(cond, visible) {
            Ok(())
        } else {
            Err(Failure::Refused(StoreError::ConditionFailed { index }))
        }
    }

    /// The stored item at `key`, expired or not.
    fn load(&self, key: &Key) -> Result<Option<Stored>, Failure> {
        let Some(guard) = self.items.get(table_key(key).as_slice())? else {
            return Ok(None);
        };
        let raw = guard.value().to_vec();
        let item = decode_item(&raw, key).map_err(Failure::Refused)?;
        Ok(Some(Stored { item, raw }))
    }

    fn put(&mut self, item: &Item, stored: Option<Stored>) -> Result<u64, Failure> {
        let tk = table_key(&item.key);
        let old = match stored {
            Some(s) => {
                self.unindex(&s.item, &tk)?;
                Some(s).filter(|s| !s.item.is_expired(self.now_s))
            }
            None => None,
        };
        let mut new = item.clone();
        new.version = old.as_ref().map_or(1, |s| s.item.version + 1);
        let raw = encode_item(&new);
        self.items.insert(tk.as_slice(), raw.as_slice())?;
        self.index(&new, &tk)?;
        self.log(&new.key, old.as_ref().map(|s| s.raw.as_slice()), Some(&raw))?;
        Ok(new.version)
    }

    fn delete(&mut self, key: &Key, stored: Option<Stored>) -> Result<(), Failure> {
        let Some(s) = stored else {
            return Ok(());
        };
        let tk = table_key(key);
        self.items.remove(tk.as_slice())?;
        self.unindex(&s.item, &tk)?;
        if !s.item.is_expired(self.now_s) {
            self.log(key, Some(&s.raw), None)?;
        }
        Ok(())
    }

    fn index(&mut self, item: &Item, tk: &[u8]) -> Result<(), Failure> {
        if let Some(g) = &item.gsi1 {
            self.gsi1.insert(index_key(g, tk).as_slice(), tk)?;
        }
        if let Some(g) = &item.gsi2 {
            self.gsi2.insert(index_key(g, tk).as_slice(), tk)?;
        }
        if let Some(t) = item.expires_at {
            self.expiry.insert(expiry_key(t, tk).as_slice(), ())?;
        }
        Ok(())
    }

    fn unindex(&mut self, item: &Item, tk: &[u8]) -> Result<(), Failure> {
        if let Some(g) = &item.gsi1 {
            self.gsi1.remove(index_key(g, tk).as_slice())?;
        }
        if let Some(g) = &item.gsi2 {
            self.gsi2.remove(index_key(g, tk).as_slice())?;
        }
        if let Some(t) = item.expires_at {
            self.expiry.remove(expiry_key(t, tk).as_slice())?;
        }
        Ok(())
    }

    fn log(&mut self, key: &Key, old: Option<&[u8]>, new: Option<&[u8]>) -> Result<(), Failure> {
        self.seq += 1;
        let entry = encode_change_parts(self.now_ms, key, old, new);
        self.changes.insert(self.seq, entry.as_slice())?;
        Ok(())
    }

    /// Remove up to `max` items whose expiry has passed. Like DynamoDB's TTL
    /// sweeper this runs late; unlike it, purges are not logged as changes
    /// (readers already treat expired items as gone).
    fn purge_expired(&mut self, max: usize) -> Result<(), Failure> {
        let end = expiry_prefix(self.now_s.saturating_add(1));
        let mut due = Vec::new();
        for entry in self.expiry.range::<&[u8]>(..end.as_slice())?.take(max) {
            let (k, ()) = entry.map(|(k, v)| (k.value().to_vec(), v.value()))?;
            due.push(k);
        }
        for ek in due {
            let tk = &ek[8..];
            let stored = match self.items.get(tk)? {
                Some(g) => decode_item_in(g.value(), tk).ok(),
                None => None,
            };
            match stored {
                Some(item) if item.is_expired(self.now_s) => {
                    self.items.remove(tk)?;
                    self.unindex(&item, tk)?;
                }
                // A stale pointer (should not happen): drop just the pointer.
                _ => {
                    self.expiry.remove(ek.as_slice())?;
                }
            }
        }
        Ok(())
    }

    fn trim(&mut self, trim: Trim) -> Result<u64, Failure> {
        let through = match trim {
            Trim::Through(n) => Some(n),
            Trim::Consumed => {
                let mut min: Option<u64> = None;
                for entry in self.checkpoints.iter()? {
                    let (_, seq) = entry?;
                    min = Some(min.map_or(seq.value(), |m| m.min(seq.value())));
                }
                min
            }
            Trim::OlderThan(age) => {
                let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                let cutoff = self.now_ms.saturating_sub(age_ms);
                let mut last = None;
                for entry in self.changes.iter()? {
                    let (seq, raw) = entry?;
                    if change_time(raw.value()).map_err(Failure::Refused)? >= cutoff {
                        break;
                    }
                    last = Some(seq.value());
                }
                last
            }
        };
        let Some(through) = through else {
            return Ok(0);
        };
        let mut removed = 0u64;
        self.changes.retain_in(..=through, |_, _| {
            removed += 1;
            false
        })?;
        Ok(removed)
    }
}
