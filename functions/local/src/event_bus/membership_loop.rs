//! The membership function of the local composition: every matched message,
//! answered query and reviewer link edit from the change feed, in order.

use std::sync::Arc;

use registry::membership::{change_event, Membership};
use store::{ChangeFeed, ItemStore};

use crate::event_bus::consumer::{Consumer, Failure, Retry};

/// Its name in the change feed's checkpoints (see `feed_trim`).
pub const CONSUMER: &str = "membership";

pub async fn run(
    feed: Arc<dyn ChangeFeed>,
    items: Arc<dyn ItemStore>,
    retry: Retry,
    membership: Membership,
) {
    Consumer {
        name: CONSUMER,
        feed,
        items,
        retry,
        extract: change_event,
        apply: move |event| {
            let membership = membership.clone();
            async move {
                let outcomes = membership.apply(&event).await.map_err(Failure::from)?;
                membership::log(&outcomes);
                Ok(())
            }
        },
    }
    .run()
    .await
}
