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
