//! The export worker of the local composition: every new export job from
//! the change feed is written, in order.

use std::sync::Arc;

use registry::export::{job_created, ExportJobs};
use store::ChangeFeed;

use crate::consumer;

pub async fn run(feed: Arc<dyn ChangeFeed>, jobs: ExportJobs) {
    consumer::run(feed, "export", |change| {
        let jobs = jobs.clone();
        async move {
            let old = change.old.as_ref().map(|i| i.data.as_slice());
            let new = change.new.as_ref().map(|i| i.data.as_slice());
            let Some(id) = job_created(&change.key, old, new) else {
                return;
            };
            consumer::until_done("export", || async {
                jobs.run(id).await.map_err(|e| e.to_string())?;
                tracing::info!(job = id, "export written");
                Ok(())
            })
            .await
        }
    })
    .await
}
