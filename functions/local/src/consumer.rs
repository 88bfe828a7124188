//! The local stand-in for a stream-driven Lambda: reads the embedded
//! store's change feed in order from a durable checkpoint and hands each
//! change to one function (the DynamoDB stream plays this part on AWS).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use store::{Change, ChangeFeed};

/// Runs forever. `apply` must finish a change (retrying storage trouble
/// itself) before the next is read: nothing is skipped.
pub async fn run<F, Fut>(feed: Arc<dyn ChangeFeed>, consumer: &'static str, mut apply: F)
where
    F: FnMut(Change) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut after = match feed.position(consumer).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(consumer, error = %e, "cannot read its checkpoint; not started");
            return;
        }
    };
    loop {
        let changes = match feed.read(after, 64).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(consumer, error = %e, "change feed unreadable, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if changes.is_empty() {
            feed.wait(after).await;
            continue;
        }
        for change in changes {
            let seq = change.seq;
            apply(change).await;
            after = Some(seq);
        }
        if let Some(seq) = after {
            if let Err(e) = feed.checkpoint(consumer, seq).await {
                tracing::warn!(consumer, error = %e, "checkpoint not saved (work will be redone, harmlessly)");
            }
        }
    }
}

/// Retries `attempt` with backoff until it succeeds or says to give up.
pub async fn until_done<F, Fut>(consumer: &'static str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut delay = Duration::from_millis(100);
    while let Err(e) = attempt().await {
        tracing::warn!(consumer, error = %e, "retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
