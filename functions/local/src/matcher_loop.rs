//! The matcher function of the local composition: applies every accepted
//! message from the embedded store's change feed, in order, with a durable
//! checkpoint (the DynamoDB stream plays this part on AWS).

use std::sync::Arc;
use std::time::Duration;

use registry::patients::{events, MatchError, PatientMatching};
use store::ChangeFeed;

const CONSUMER: &str = "matcher";

pub async fn run(feed: Arc<dyn ChangeFeed>, matching: PatientMatching) {
    let mut after = match feed.position(CONSUMER).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "matcher: cannot read its checkpoint; not started");
            return;
        }
    };
    loop {
        let changes = match feed.read(after, 64).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "matcher: change feed unreadable, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if changes.is_empty() {
            feed.wait(after).await;
            continue;
        }
        for change in &changes {
            if let Some(id) = events::accepted_message(change) {
                apply(&matching, id).await;
            }
            after = Some(change.seq);
        }
        if let Some(seq) = after {
            if let Err(e) = feed.checkpoint(CONSUMER, seq).await {
                tracing::warn!(error = %e, "matcher: checkpoint not saved (work will be redone, harmlessly)");
            }
        }
    }
}

/// Retries storage trouble until it clears: a message is never skipped.
async fn apply(matching: &PatientMatching, message_id: &str) {
    let mut delay = Duration::from_millis(100);
    loop {
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
                return;
            }
            Err(MatchError::UnknownMessage(_)) => {
                tracing::error!(
                    message_id = message_id,
                    "matcher: announced message not found"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(message_id = message_id, error = %e, "matcher: retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}
