//! The export worker of the local composition: every new export job from
//! the change feed is planned and its shards written in parallel tasks of
//! this process (in the cloud each shard item's creation starts its own
//! worker instead), and expired jobs' files are swept away every minute.

use std::sync::Arc;
use std::time::Duration;

use registry::export::{job_created, ExportJobs};
use store::{ChangeFeed, ItemStore};

use crate::event_bus::consumer::{Consumer, Failure, Retry};

/// Its name in the change feed's checkpoints (see `feed_trim`).
pub const CONSUMER: &str = "export";

const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub async fn run(
    feed: Arc<dyn ChangeFeed>,
    items: Arc<dyn ItemStore>,
    retry: Retry,
    jobs: ExportJobs,
) {
    tokio::spawn(sweep(jobs.clone()));
    Consumer {
        name: CONSUMER,
        feed,
        items,
        retry,
        extract: |change: &store::Change| {
            let old = change.old.as_ref().map(|i| i.data.as_slice());
            let new = change.new.as_ref().map(|i| i.data.as_slice());
            job_created(&change.key, old, new).map(str::to_owned)
        },
        apply: move |id: String| {
            let jobs = jobs.clone();
            async move {
                jobs.run_here(&id).await.map_err(Failure::from)?;
                tracing::info!(job = %id, "export written");
                Ok(())
            }
        },
    }
    .run()
    .await
}

async fn sweep(jobs: ExportJobs) {
    loop {
        let now = store::limits::now_epoch_seconds();
        match jobs.sweep(now, 100).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "expired exports deleted"),
            Err(e) => tracing::warn!(error = %e, "expired exports not swept; will retry"),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}
