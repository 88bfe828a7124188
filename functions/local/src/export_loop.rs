//! The export worker of the local composition: every new export job from
//! the change feed is planned and its shards written in parallel tasks of
//! this process (in the cloud each shard item's creation starts its own
//! worker instead), and expired jobs' files are swept away every minute.

use std::sync::Arc;
use std::time::Duration;

use registry::export::{job_created, ExportJobs};
use store::ChangeFeed;

use crate::consumer;

/// Its name in the change feed's checkpoints (see `feed_trim`).
pub const CONSUMER: &str = "export";

const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub async fn run(feed: Arc<dyn ChangeFeed>, jobs: ExportJobs) {
    tokio::spawn(sweep(jobs.clone()));
    consumer::run(feed, CONSUMER, |change| {
        let jobs = jobs.clone();
        async move {
            let old = change.old.as_ref().map(|i| i.data.as_slice());
            let new = change.new.as_ref().map(|i| i.data.as_slice());
            let Some(id) = job_created(&change.key, old, new) else {
                return;
            };
            consumer::until_done(CONSUMER, || async {
                jobs.run_here(id).await.map_err(|e| e.to_string())?;
                tracing::info!(job = id, "export written");
                Ok(())
            })
            .await
        }
    })
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
