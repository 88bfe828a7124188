//! The matcher function: reads a DynamoDB stream batch, applies every newly
//! accepted message (in stream order, as the shard delivers them) and
//! reports partial batch failures so Lambda retries from the first message
//! that could not be applied, never skipping one.

use registry::patients::{events, MatchError, PatientMatching};
use serde_json::Value;
pub use stream_batch::{BatchResponse, ItemFailure};

/// One stream record, as far as the matcher cares.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// The record's sequence number: what a batch failure names.
    pub sequence: String,
    /// The accepted message it announces (an INSERT of `IN#<id>` / `HEAD`).
    pub message_id: Option<String>,
}

/// Reads the records of a DynamoDB stream event. Records the matcher does
/// not act on (modifications, deletes, other item families) come back with
/// no message id; a malformed event is an error naming what is missing.
pub fn stream_records(event: &Value) -> Result<Vec<StreamRecord>, String> {
    Ok(stream_batch::records(event)?
        .into_iter()
        .map(|r| StreamRecord {
            message_id: match (&r.key, r.event_name.as_str()) {
                (Some(key), "INSERT") => events::accepted_message_key(key).map(str::to_owned),
                _ => None,
            },
            sequence: r.sequence,
        })
        .collect())
}

/// Applies a batch in order. At the first message that fails for a reason
/// worth retrying, stops and names it: Lambda retries the batch from there.
pub async fn handle(
    matching: &PatientMatching,
    event: &Value,
    now_ms: i64,
) -> Result<BatchResponse, String> {
    let records = stream_records(event)?;
    for record in &records {
        let Some(id) = &record.message_id else {
            continue;
        };
        match matching.process(id, now_ms).await {
            Ok(m) => {
                tracing::info!(message_id = %id, grade = m.grade.as_str(), new_person = m.new_person, "message matched")
            }
            Err(MatchError::UnknownMessage(_)) => {
                // Announced but unreadable: retrying cannot help; logged loudly.
                tracing::error!(message_id = %id, "announced accepted message not found");
            }
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "message not applied; batch will be retried from here");
                return Ok(BatchResponse {
                    batch_item_failures: vec![ItemFailure {
                        item_identifier: record.sequence.clone(),
                    }],
                });
            }
        }
    }
    Ok(BatchResponse::default())
}

/// The matching use case from the environment, as `main.rs` builds it once
/// per container (and the cloud end-to-end test builds it against moto):
/// `IISBULK_TABLE` (required), `IISBULK_DYNAMODB_ENDPOINT` (tests only),
/// `IISBULK_MATCHING_CONFIG` (a matching configuration TOML file path; the
/// shipped one otherwise), `IISBULK_JURISDICTION_POLICY` (the policy's
/// `[vaccination_events]` rules; the shipped policy otherwise).
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<PatientMatching, lambda_runtime::Error> {
    use std::sync::Arc;
    let table = settings::dynamodb_table()?;
    let matcher = settings::configured_matcher()?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    let policy = settings::jurisdiction_policy()?;
    Ok(PatientMatching::new(store, matcher).with_vaccination_rules(policy.vaccination_events))
}
