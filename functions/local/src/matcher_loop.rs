//! The matcher function of the local composition: applies every accepted
//! message from the change feed, in order.

use std::sync::Arc;

use registry::patients::{events, MatchError, PatientMatching};
use store::ChangeFeed;

use crate::consumer;

/// Its name in the change feed's checkpoints (see `feed_trim`).
pub const CONSUMER: &str = "matcher";

pub async fn run(feed: Arc<dyn ChangeFeed>, matching: PatientMatching) {
    consumer::run(feed, CONSUMER, |change| {
        let matching = matching.clone();
        async move {
            if let Some(id) = events::accepted_message(&change) {
                apply(&matching, id).await;
            }
        }
    })
    .await
}

/// Retries storage trouble until it clears: a message is never skipped.
async fn apply(matching: &PatientMatching, message_id: &str) {
    consumer::until_done(CONSUMER, || async {
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
            Err(e) => Err(format!("message {message_id}: {e}")),
        }
    })
    .await
}
