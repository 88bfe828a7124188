//! The embedded backend: one redb file.
//!
//! Why redb: it is pure Rust (no C toolchain, quick to build on two cores),
//! ACID with crash-safe copy-on-write B-trees (a torn write can never corrupt
//! committed data, so no write-ahead-log replay of our own), a single file
//! that is easy to back up and delete, and ordered keys, which turn DynamoDB's
//! sort-key conditions into plain range scans. It allows one writer at a time,
//! which the group-commit writer (`writer.rs`) turns into an advantage: many
//! callers' writes share one fsync.
//!
//! Layout of the file: see `tables.rs`; key encoding: see `keys.rs`.
//!
//! Every acknowledged write is durable (committed with
//! `Durability::Immediate` before the caller hears back), except in a store
//! opened with [`EmbeddedStore::open_for_bulk_load`]. Reads run on
//! tokio's blocking pool so async callers never stall the runtime.

mod keys;
mod reader;
mod tables;
mod values;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::Database;
use tokio::sync::{oneshot, watch};

use crate::error::{Result, StoreError};
use crate::limits::{check_item, check_key, check_query, check_transaction, now_epoch_seconds};
use crate::model::{Change, Condition, Item, Key, Page, QueryOpts, Trim, Write};
use crate::port::{ChangeFeed, ItemStore};
use writer::{Done, Op, Request, Sync, Writer};

pub use writer::MAX_BATCH;

/// Map any redb error to the port's error: corruption is `Corrupt`, anything
/// else (I/O, a full disk, a held lock) is `Unavailable`.
fn storage_error(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(m) => StoreError::Corrupt(m),
        other => StoreError::Unavailable(format!("redb: {other}")),
    }
}

/// [`ItemStore`] + [`ChangeFeed`] on one redb file.
pub struct EmbeddedStore {
    path: PathBuf,
    db: Arc<Database>,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    published: watch::Receiver<u64>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("last_seq", &*self.published.borrow())
            .finish_non_exhaustive()
    }
}

/// redb's page cache.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

impl EmbeddedStore {
    /// Open (or create) the store file at `path`, creating its folder if
    /// needed. After a crash, redb repairs the file here.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), Sync::EveryCommit)
    }

    /// Open for a bulk load that can be started over if it fails: writes
    /// are acknowledged before they are durable and reach the disk together
    /// about once a second and when the store is dropped, which saves an
    /// fsync per batch. A crash loses up to the last second of acknowledged
    /// writes (never corrupts the file). Never for live traffic.
    pub fn open_for_bulk_load(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), Sync::BulkLoad { every_ms: 1_000 })
    }

    fn open_with(path: &Path, sync: Sync) -> Result<Self> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("create {}: {e}", dir.display())))?;
        }
        // redb caches up to 1 GiB by default; the local process is meant to
        // stay small (the OS page cache still holds hot pages).
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(storage_error)?;
        create_tables(&db)?;
        let seq = reader::last_seq(&db)?;
        let db = Arc::new(db);
        let (published_tx, published) = watch::channel(seq);
        let (requests, rx) = mpsc::channel();
        let writer = Writer {
            db: Arc::clone(&db),
            rx,
            published: published_tx,
            seq,
            last_purge_ms: 0,
            sync,
            last_durable_ms: 0,
            unsynced: false,
        };
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Other(format!("spawn writer thread: {e}")))?;
        Ok(EmbeddedStore {
            path,
            db,
            requests: Some(requests),
            writer: Some(writer),
            published,
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence number of the last committed change (0 before any).
    pub fn last_seq(&self) -> u64 {
        *self.published.borrow()
    }

    async fn submit(&self, op: Op) -> Result<Done> {
        let stopped = || StoreError::Unavailable("store writer stopped".into());
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request { op, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Other(format!("read task failed: {e}")))?
    }
}

impl Drop for EmbeddedStore {
    /// Stop the writer after it has answered what is queued, so the file lock
    /// is released when `drop` returns and the file can be reopened at once.
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn create_tables(db: &Database) -> Result<()> {
    let txn = db.begin_write().map_err(storage_error)?;
    for def in [tables::ITEMS, tables::GSI1, tables::GSI2] {
        txn.open_table(def).map_err(storage_error)?;
    }
    txn.open_table(tables::EXPIRY).map_err(storage_error)?;
    txn.open_table(tables::CHANGES).map_err(storage_error)?;
    txn.open_table(tables::CHECKPOINTS).map_err(storage_error)?;
    txn.open_table(tables::META).map_err(storage_error)?;
    txn.commit().map_err(storage_error)
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Other(format!("store writer answered {done:?} unexpectedly"))
}

/// Query pages of at most this many items are read without leaving the task:
/// this covers a matcher's block read (its cap, 300, plus one), a few
/// hundred small items already in the page cache. Handing each of a
/// match's ~20 block reads to a blocking thread cost more in wake-ups than
/// the reads themselves (Z34 bench at 300,000 children).
const INLINE_QUERY_LIMIT: u32 = 512;

#[async_trait]
impl ItemStore for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        check_key(key)?;
        // A point lookup is one B-tree descent in pages the OS has cached:
        // microseconds, cheaper than handing it to a blocking thread and
        // waking the task again (which cost more than the read itself).
        reader::get(&self.db, key, now_epoch_seconds())
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        for key in keys {
            check_key(key)?;
        }
        // A matcher's candidates (a few hundred at most) are read in place,
        // as single gets are; a longer list goes to a blocking thread.
        if keys.len() <= INLINE_QUERY_LIMIT as usize {
            return reader::get_many(&self.db, keys, now_epoch_seconds());
        }
        let keys = keys.to_vec();
        self.read(move |db| reader::get_many(db, &keys, now_epoch_seconds()))
            .await
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<u64> {
        check_item(&item)?;
        match self.submit(Op::Put(item, cond)).await? {
            Done::Version(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        check_key(key)?;
        self.submit(Op::Delete(key.clone(), cond)).await.map(drop)
    }

    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Page> {
        check_query(pk, &opts)?;
        // Small pages are read in place, as a get is; large ones on a
        // blocking thread so a long scan never stalls the runtime.
        if opts.limit <= INLINE_QUERY_LIMIT {
            return reader::query(&self.db, pk, &opts, now_epoch_seconds());
        }
        let pk = pk.to_owned();
        self.read(move |db| reader::query(db, &pk, &opts, now_epoch_seconds()))
            .await
    }

    async fn query_many(&self, queries: &[(String, QueryOpts)]) -> Result<Vec<Page>> {
        for (pk, opts) in queries {
            check_query(pk, opts)?;
        }
        // One read transaction for all of them. Small pages are read in
        // place, as each would be by `query` (a matcher's block reads); a
        // batch with a large page goes to a blocking thread.
        if queries.iter().all(|(_, o)| o.limit <= INLINE_QUERY_LIMIT) {
            return reader::query_many(&self.db, queries, now_epoch_seconds());
        }
        let queries = queries.to_vec();
        self.read(move |db| reader::query_many(db, &queries, now_epoch_seconds()))
            .await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        check_transaction(&writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        self.submit(Op::Transact(writes)).await.map(drop)
    }
}

#[async_trait]
impl ChangeFeed for EmbeddedStore {
    async fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<Change>> {
        self.read(move |db| reader::read_changes(db, after, limit))
            .await
    }

    async fn wait(&self, after: Option<u64>) {
        let after = after.unwrap_or(0);
        let mut rx = self.published.clone();
        // Err only if the writer is gone, and then nothing new will come:
        // return rather than hang.
        let _ = rx.wait_for(|&last| last > after).await;
    }

    async fn checkpoint(&self, consumer: &str, seq: u64) -> Result<()> {
        if consumer.is_empty() {
            return Err(StoreError::Invalid("consumer name is empty".into()));
        }
        self.submit(Op::Checkpoint(consumer.to_owned(), seq))
            .await
            .map(drop)
    }

    async fn position(&self, consumer: &str) -> Result<Option<u64>> {
        let consumer = consumer.to_owned();
        self.read(move |db| reader::position(db, &consumer)).await
    }

    async fn trim(&self, trim: Trim) -> Result<u64> {
        match self.submit(Op::Trim(trim)).await? {
            Done::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }
}
