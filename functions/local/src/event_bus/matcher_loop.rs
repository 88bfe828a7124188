//! The matcher function of the local composition: applies every accepted
//! message from the change feed, in order.

use std::sync::Arc;

use registry::patients::{events, MatchError, PatientMatching};
use store::{ChangeFeed, ItemStore};

use crate::event_bus::consumer::{Consumer, Failure, Retry};

/// Its name in the change feed's checkpoints (see `feed_trim`).
pub const CONSUMER: &str = "matcher";

pub async fn run(
    feed: Arc<dyn ChangeFeed>,
    items: Arc<dyn ItemStore>,
    retry: Retry,
    matching: PatientMatching,
) {
    Consumer {
        name: CONSUMER,
        feed,
        items,
        retry,
        extract: |change: &store::Change| events::accepted_message(change).map(str::to_owned),
        apply: move |message_id: String| {
            let matching = matching.clone();
            async move { apply(&matching, &message_id).await }
        },
    }
    .run()
    .await
}

async fn apply(matching: &PatientMatching, message_id: &str) -> Result<(), Failure> {
    let now_ms = iz::Clock::now().unix_seconds * 1000;
    match matching.process(message_id, now_ms).await {
        Ok(m) => {
            tracing::info!(
                message_id = message_id,
                person = %m.person,
                grade = m.grade.as_str(),
                new_person = m.new_person,
                "message matched"
            );
            Ok(())
        }
        Err(MatchError::UnknownMessage(_)) => {
            tracing::error!(
                message_id = message_id,
                "matcher: announced message not found"
            );
            Ok(())
        }
        Err(MatchError::Store(e)) => Err(Failure::from(e)),
    }
}
