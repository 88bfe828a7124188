//! The local stand-in for a stream-driven Lambda: reads the embedded
//! store's change feed in order from a durable checkpoint and hands each
//! change to one function (the DynamoDB stream plays this part on AWS).
//!
//! Storage trouble is retried until it clears, so nothing is skipped while
//! the store is unwell. A change that fails for any other reason (its data
//! cannot be applied by this version of the code) is tried a few times and
//! then parked (see `parked`), so one bad record never holds up the rest of
//! the feed; on AWS the event source mapping's retry limit and dead-letter
//! queue do the same.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use store::{Change, ChangeFeed, ItemStore, StoreError};

use crate::event_bus::parked::{self, ParkedChange};

/// Why one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// The store could not answer now (throttled, unavailable): retried
    /// until it can, never parked.
    Transient(String),
    /// Anything else: parked after `Retry::attempts` tries.
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

/// How hard a consumer tries before it parks a change.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Failed attempts (storage trouble not counted) before a change is
    /// parked; a replay of a parked change gets `replay_attempts`.
    pub attempts: u32,
    pub replay_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // 8 attempts wait 12.7 s in all: long enough for a lost race or a
        // busy disk, short enough that the feed behind it barely notices.
        Retry {
            attempts: 8,
            replay_attempts: 3,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Doubling waits between tries, from `first_delay` up to `max_delay`.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(retry: &Retry) -> Self {
        Backoff {
            next: retry.first_delay,
            max: retry.max_delay,
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}

/// One consumer of the feed: `extract` picks the changes it owns and turns
/// each into its event; `apply` makes one attempt at an event.
pub struct Consumer<X, F> {
    pub name: &'static str,
    pub feed: Arc<dyn ChangeFeed>,
    pub items: Arc<dyn ItemStore>,
    pub retry: Retry,
    pub extract: X,
    pub apply: F,
}

impl<E, X, F, Fut> Consumer<X, F>
where
    E: Clone + Serialize + DeserializeOwned,
    X: Fn(&Change) -> Option<E>,
    F: Fn(E) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    /// Replays what this consumer parked before, then follows the feed
    /// forever from its checkpoint.
    pub async fn run(self) {
        self.replay_parked().await;
        let consumer = self.name;
        let mut after = match self.feed.position(consumer).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(consumer, error = %e, "cannot read its checkpoint; not started");
                return;
            }
        };
        loop {
            let changes = match self.feed.read(after, 64).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(consumer, error = %e, "change feed unreadable, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if changes.is_empty() {
                self.feed.wait(after).await;
                continue;
            }
            for change in changes {
                if let Some(event) = (self.extract)(&change) {
                    self.settle(change.seq, event).await;
                }
                after = Some(change.seq);
            }
            if let Some(seq) = after {
                if let Err(e) = self.feed.checkpoint(consumer, seq).await {
                    tracing::warn!(consumer, error = %e, "checkpoint not saved (work will be redone, harmlessly)");
                }
            }
        }
    }

    /// Applies one change's event, or parks it: either way the feed can move
    /// past it.
    async fn settle(&self, seq: u64, event: E) {
        let Err((error, attempts)) = self.attempt(&event, self.retry.attempts).await else {
            return;
        };
        tracing::error!(
            consumer = self.name,
            seq,
            attempts,
            error = %error,
            "change parked: it will be tried again when iisbulk serve restarts (iisbulk feed parked lists it)"
        );
        let now = store::limits::now_epoch_millis();
        let mut parked = match ParkedChange::new(self.name, seq, &event, error, attempts, now) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(consumer = self.name, seq, error = %e, "change cannot be parked; skipped");
                return;
            }
        };
        // Parked before and read again (the process stopped before its
        // checkpoint): keep its history rather than start it over.
        if let Ok(Some(before)) = parked::get(self.items.as_ref(), self.name, seq).await {
            parked.attempts = parked.attempts.saturating_add(before.attempts);
            parked.parked_at_ms = before.parked_at_ms;
        }
        self.keep(&parked).await;
    }

    /// Writes a parked change, retrying until the store takes it: moving on
    /// without it would lose the change.
    async fn keep(&self, parked: &ParkedChange) {
        let mut backoff = Backoff::new(&self.retry);
        while let Err(e) = parked::put(self.items.as_ref(), parked).await {
            tracing::warn!(consumer = self.name, error = %e, "parked change not saved, retrying");
            backoff.wait().await;
        }
    }

    /// Up to `limit` failed attempts (storage trouble retried without
    /// counting); the last error and the count if none succeeded.
    async fn attempt(&self, event: &E, limit: u32) -> Result<(), (String, u32)> {
        let mut backoff = Backoff::new(&self.retry);
        let mut failed = 0;
        loop {
            let error = match (self.apply)(event.clone()).await {
                Ok(()) => return Ok(()),
                Err(Failure::Transient(e)) => e,
                Err(Failure::Permanent(e)) => {
                    failed += 1;
                    if failed >= limit.max(1) {
                        return Err((e, failed));
                    }
                    e
                }
            };
            tracing::warn!(consumer = self.name, error = %error, "retrying");
            backoff.wait().await;
        }
    }

    /// Every change parked before gets another chance (the code or the
    /// data may have been repaired since); what goes through is removed.
    async fn replay_parked(&self) {
        let mut backoff = Backoff::new(&self.retry);
        let waiting = loop {
            match parked::list(self.items.as_ref(), self.name).await {
                Ok(w) => break w,
                Err(e) if e.is_retryable() => backoff.wait().await,
                Err(e) => {
                    tracing::error!(consumer = self.name, error = %e, "parked changes unreadable; not replayed");
                    return;
                }
            }
        };
        for mut p in waiting {
            let event = match p.event::<E>() {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(consumer = self.name, seq = p.seq, error = %e, "parked change not replayable by this version");
                    continue;
                }
            };
            match self.attempt(&event, self.retry.replay_attempts).await {
                Ok(()) => {
                    tracing::info!(consumer = self.name, seq = p.seq, "parked change applied");
                    if let Err(e) = parked::remove(self.items.as_ref(), self.name, p.seq).await {
                        // Harmless: every consumer is idempotent, so the
                        // next replay applies it again as a no-op.
                        tracing::warn!(consumer = self.name, seq = p.seq, error = %e, "applied parked change not removed");
                    }
                }
                Err((error, attempts)) => {
                    tracing::error!(consumer = self.name, seq = p.seq, error = %error, "parked change still fails");
                    p.error = error;
                    p.attempts = p.attempts.saturating_add(attempts);
                    p.last_attempt_ms = store::limits::now_epoch_millis();
                    self.keep(&p).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    use store::embedded::EmbeddedStore;
    use store::{Condition, Item, Key};

    fn quick() -> Retry {
        Retry {
            attempts: 3,
            replay_attempts: 2,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    /// Events are the sort keys of `T#` items; "bad" ones fail with
    /// `failure` until `repaired` is set.
    struct Harness {
        store: Arc<EmbeddedStore>,
        applied: Arc<Mutex<Vec<String>>>,
        calls: Arc<AtomicU32>,
    }

    impl Harness {
        fn new(dir: &std::path::Path) -> Self {
            Harness {
                store: Arc::new(EmbeddedStore::open(dir.join("t.redb")).unwrap()),
                applied: Arc::default(),
                calls: Arc::default(),
            }
        }

        async fn write(&self, sk: &str) {
            self.store
                .put(
                    Item::new(Key::new("T#", sk), b"{}".to_vec()),
                    Condition::None,
                )
                .await
                .unwrap();
        }

        fn spawn(&self, repaired: bool, transient_first: u32) -> tokio::task::JoinHandle<()> {
            let (applied, calls) = (self.applied.clone(), self.calls.clone());
            let consumer = Consumer {
                name: "test",
                feed: self.store.clone(),
                items: self.store.clone(),
                retry: quick(),
                extract: |c: &Change| (c.key.pk == "T#").then(|| c.key.sk.clone()),
                apply: move |event: String| {
                    let (applied, calls) = (applied.clone(), calls.clone());
                    async move {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        if n < transient_first {
                            return Err(Failure::Transient("throttled".into()));
                        }
                        if event.starts_with("bad") && !repaired {
                            return Err(Failure::Permanent(format!("{event} cannot be applied")));
                        }
                        applied.lock().unwrap().push(event);
                        Ok(())
                    }
                },
            };
            tokio::spawn(consumer.run())
        }

        async fn until_applied(&self, n: usize) {
            for _ in 0..2000 {
                if self.applied.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("only {:?} applied", self.applied.lock().unwrap());
        }

        /// Until the consumer has checkpointed the whole feed, so a restart
        /// starts after it.
        async fn settled(&self) {
            for _ in 0..2000 {
                let last = self
                    .store
                    .read(None, 10_000)
                    .await
                    .unwrap()
                    .last()
                    .map(|c| c.seq);
                if last.is_some() && self.store.position("test").await.unwrap() >= last {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("the consumer never caught up with the feed");
        }
    }

    #[tokio::test]
    async fn a_failing_change_is_parked_and_the_feed_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::new(dir.path());
        for sk in ["a", "bad-1", "b"] {
            h.write(sk).await;
        }
        let task = h.spawn(false, 0);
        h.until_applied(2).await;
        task.abort();
        assert_eq!(*h.applied.lock().unwrap(), vec!["a", "b"]);
        let parked = parked::list(h.store.as_ref(), "test").await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].event::<String>().unwrap(), "bad-1");
        assert_eq!(parked[0].attempts, 3);
        assert!(parked[0].error.contains("cannot be applied"));
        // 1 + 3 + 1 attempts: the bad change exactly `attempts` times.
        assert_eq!(h.calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn storage_trouble_is_retried_without_parking() {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::new(dir.path());
        h.write("a").await;
        let task = h.spawn(false, 10);
        h.until_applied(1).await;
        task.abort();
        assert_eq!(*h.applied.lock().unwrap(), vec!["a"]);
        assert!(parked::list(h.store.as_ref(), "test")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_restart_replays_parked_changes_and_removes_what_goes_through() {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::new(dir.path());
        h.write("bad-1").await;
        h.write("a").await;
        let task = h.spawn(false, 0);
        h.until_applied(1).await;
        h.settled().await;
        task.abort();
        assert_eq!(
            parked::list(h.store.as_ref(), "test").await.unwrap().len(),
            1
        );

        // Restarted still broken: kept, with its attempts counted.
        let task = h.spawn(false, 0);
        h.write("b").await;
        h.until_applied(2).await;
        h.settled().await;
        task.abort();
        let still = parked::list(h.store.as_ref(), "test").await.unwrap();
        assert_eq!(still.len(), 1);
        assert_eq!(still[0].attempts, 3 + 2);

        // Restarted repaired: applied once, removed, nothing else redone.
        // The removal follows the apply, so it is waited for (on a loaded
        // machine the task may be between the two).
        let task = h.spawn(true, 0);
        h.until_applied(3).await;
        let mut waited = 0;
        while !parked::list(h.store.as_ref(), "test")
            .await
            .unwrap()
            .is_empty()
        {
            waited += 1;
            assert!(waited < 2000, "the repaired change was never unparked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
        assert_eq!(*h.applied.lock().unwrap(), vec!["a", "b", "bad-1"]);
    }
}
