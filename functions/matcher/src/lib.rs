//! The matcher function: reads a DynamoDB stream batch, applies every newly
//! accepted message (in stream order, as the shard delivers them) and
//! reports partial batch failures so Lambda retries from the first message
//! that could not be applied, never skipping one.

use registry::patients::{events, MatchError, PatientMatching};
use serde::Serialize;
use serde_json::Value;
use store::Key;

/// One stream record, as far as the matcher cares.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// The record's sequence number: what a batch failure names.
    pub sequence: String,
    /// The accepted message it announces (an INSERT of `IN#<id>` / `HEAD`).
    pub message_id: Option<String>,
}

/// The `ReportBatchItemFailures` answer.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// Reads the records of a DynamoDB stream event. Records the matcher does
/// not act on (modifications, deletes, other item families) come back with
/// no message id; a malformed event is an error naming what is missing.
pub fn stream_records(event: &Value) -> Result<Vec<StreamRecord>, String> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or("the event has no Records array (is this a DynamoDB stream event?)")?;
    records
        .iter()
        .enumerate()
        .map(|(n, r)| {
            let ddb = r
                .get("dynamodb")
                .ok_or(format!("record {n} has no dynamodb member"))?;
            let sequence = ddb
                .get("SequenceNumber")
                .and_then(Value::as_str)
                .ok_or(format!("record {n} has no dynamodb.SequenceNumber"))?
                .to_owned();
            let key_part = |name: &str| {
                ddb.get("Keys")
                    .and_then(|k| k.get(name))
                    .and_then(|v| v.get("S"))
                    .and_then(Value::as_str)
            };
            let message_id = match (
                r.get("eventName").and_then(Value::as_str),
                key_part("pk"),
                key_part("sk"),
            ) {
                (Some("INSERT"), Some(pk), Some(sk)) => {
                    events::accepted_message_key(&Key::new(pk, sk)).map(str::to_owned)
                }
                _ => None,
            };
            Ok(StreamRecord {
                sequence,
                message_id,
            })
        })
        .collect()
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
