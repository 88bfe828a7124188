//! A store that passes everything through until told to refuse writes, as
//! throttled or unreachable storage would: for tests of retry and partial
//! batch failure paths.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{Condition, Item, Key, Page, QueryOpts, Write};
use crate::{ItemStore, Result, StoreError};

pub struct FailingWrites {
    inner: Arc<dyn ItemStore>,
    failing: AtomicBool,
}

impl std::fmt::Debug for FailingWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailingWrites")
            .field("failing", &self.failing.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl FailingWrites {
    pub fn new(inner: Arc<dyn ItemStore>) -> Self {
        FailingWrites {
            inner,
            failing: AtomicBool::new(false),
        }
    }

    pub fn fail_writes(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Throttled("injected".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl ItemStore for FailingWrites {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        self.inner.get_many(keys).await
    }
    async fn put(&self, item: Item, cond: Condition) -> Result<u64> {
        self.check()?;
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        self.check()?;
        self.inner.delete(key, cond).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Page> {
        self.inner.query(pk, opts).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        self.check()?;
        self.inner.transact(writes).await
    }
}

/// A blob store that refuses new uploads whose key contains a given text,
/// until told otherwise, as a failing bucket would mid-export.
pub struct FailingUploads {
    inner: Arc<dyn crate::BlobStore>,
    failing: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for FailingUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailingUploads").finish_non_exhaustive()
    }
}

impl FailingUploads {
    pub fn new(inner: Arc<dyn crate::BlobStore>) -> Self {
        FailingUploads {
            inner,
            failing: std::sync::Mutex::new(None),
        }
    }

    /// Uploads of keys containing `text` fail from now on (`None`: none do).
    pub fn fail_keys_containing(&self, text: Option<&str>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = text.map(str::to_owned);
        }
    }
}

#[async_trait]
impl crate::BlobStore for FailingUploads {
    async fn begin(&self, key: &str, content_type: &str) -> Result<Box<dyn crate::BlobUpload>> {
        let refuse = self
            .failing
            .lock()
            .map(|f| f.as_deref().is_some_and(|t| key.contains(t)))
            .unwrap_or(true);
        if refuse {
            return Err(StoreError::Unavailable("injected upload failure".into()));
        }
        self.inner.begin(key, content_type).await
    }

    async fn get(&self, key: &str) -> Result<Option<(crate::BlobReader, u64)>> {
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.inner.delete_prefix(prefix).await
    }
}
