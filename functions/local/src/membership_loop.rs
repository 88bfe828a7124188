//! The membership function of the local composition: every matched message,
//! answered query and reviewer link edit from the change feed, in order.

use std::sync::Arc;

use registry::membership::{change_event, Membership};
use store::ChangeFeed;

use crate::consumer;

/// Its name in the change feed's checkpoints (see `feed_trim`).
pub const CONSUMER: &str = "membership";

pub async fn run(feed: Arc<dyn ChangeFeed>, membership: Membership) {
    consumer::run(feed, CONSUMER, |change| {
        let membership = membership.clone();
        async move {
            let Some(event) = change_event(&change) else {
                return;
            };
            consumer::until_done(CONSUMER, || async {
                let outcomes = membership.apply(&event).await.map_err(|e| e.to_string())?;
                membership::log(&outcomes);
                Ok(())
            })
            .await
        }
    })
    .await
}
