//! # stream-batch — a DynamoDB stream batch, as our functions read it
//!
//! Each record becomes the item key it changed and the item's data before
//! and after (our table keeps an item's JSON in the binary attribute `d`;
//! the stream carries both images). The answer is the
//! `ReportBatchItemFailures` shape: Lambda retries from the first failed
//! record and never re-runs the ones before it.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use store::Key;

/// The attribute that holds an item's data in the table.
const DATA_ATTRIBUTE: &str = "d";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// What a batch failure names.
    pub sequence: String,
    /// INSERT, MODIFY or REMOVE.
    pub event_name: String,
    /// `None` for records of tables or items outside our layout.
    pub key: Option<Key>,
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
}

/// The `ReportBatchItemFailures` answer.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl BatchResponse {
    /// Retry from this record on.
    pub fn retry_from(record: &StreamRecord) -> BatchResponse {
        BatchResponse {
            batch_item_failures: vec![ItemFailure {
                item_identifier: record.sequence.clone(),
            }],
        }
    }
}

fn image(ddb: &Value, which: &str, n: usize) -> Result<Option<Vec<u8>>, String> {
    let Some(data) = ddb
        .get(which)
        .and_then(|i| i.get(DATA_ATTRIBUTE))
        .and_then(|d| d.get("B"))
    else {
        return Ok(None);
    };
    let text = data.as_str().ok_or(format!(
        "record {n}: {which}.{DATA_ATTRIBUTE}.B is not a string"
    ))?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(Some)
        .map_err(|e| format!("record {n}: {which}.{DATA_ATTRIBUTE}.B is not base64: {e}"))
}

/// Reads a DynamoDB stream event. A malformed event is an error naming what
/// is missing; records of other shapes come back without a key.
pub fn records(event: &Value) -> Result<Vec<StreamRecord>, String> {
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
            let key = match (key_part("pk"), key_part("sk")) {
                (Some(pk), Some(sk)) => Some(Key::new(pk, sk)),
                _ => None,
            };
            Ok(StreamRecord {
                sequence,
                event_name: r
                    .get("eventName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                key,
                old: image(ddb, "OldImage", n)?,
                new: image(ddb, "NewImage", n)?,
            })
        })
        .collect()
}

/// A change of the embedded store's feed as the DynamoDB stream record the
/// table would deliver for it (keys plus both images): how the local
/// composition and the tests feed stream-driven functions.
pub fn stream_record(c: &store::Change) -> Value {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let event_name = match (&c.old, &c.new) {
        (None, Some(_)) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        _ => "REMOVE",
    };
    let keys = serde_json::json!({"pk": {"S": c.key.pk}, "sk": {"S": c.key.sk}});
    let mut ddb = serde_json::json!({"SequenceNumber": c.seq.to_string(), "Keys": keys});
    let image = |data: &[u8]| serde_json::json!({"pk": {"S": c.key.pk}, "sk": {"S": c.key.sk}, DATA_ATTRIBUTE: {"B": b64(data)}});
    if let Some(old) = &c.old {
        ddb["OldImage"] = image(&old.data);
    }
    if let Some(new) = &c.new {
        ddb["NewImage"] = image(&new.data);
    }
    serde_json::json!({"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": ddb})
}

/// Changes as one stream event (`{"Records": [...]}`).
pub fn stream_event(changes: &[store::Change]) -> Value {
    serde_json::json!({"Records": changes.iter().map(stream_record).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_images_are_read() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let event = json!({"Records": [
            {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "7",
                "Keys": {"pk": {"S": "SRC#1"}, "sk": {"S": "SRC"}},
                "OldImage": {"pk": {"S": "SRC#1"}, "d": {"B": b64("{\"person\":\"a\"}")}},
                "NewImage": {"pk": {"S": "SRC#1"}, "d": {"B": b64("{\"person\":\"b\"}")}}}},
            {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "8", "Keys": {"id": {"S": "x"}}}}
        ]});
        let r = records(&event).unwrap();
        assert_eq!(r[0].key, Some(Key::new("SRC#1", "SRC")));
        assert_eq!(r[0].old.as_deref(), Some(&b"{\"person\":\"a\"}"[..]));
        assert_eq!(r[0].new.as_deref(), Some(&b"{\"person\":\"b\"}"[..]));
        assert_eq!(r[1].key, None);
        assert_eq!(r[1].event_name, "INSERT");
        assert_eq!(
            serde_json::to_value(BatchResponse::retry_from(&r[1])).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "8"}]})
        );
    }

    #[test]
    fn malformed_events_are_named() {
        assert!(records(&json!({"foo": 1})).unwrap_err().contains("Records"));
        let no_seq = json!({"Records": [{"eventName": "INSERT", "dynamodb": {}}]});
        assert!(records(&no_seq).unwrap_err().contains("SequenceNumber"));
        let bad = json!({"Records": [{"dynamodb": {"SequenceNumber": "1", "NewImage": {"d": {"B": "!!"}}}}]});
        assert!(records(&bad).unwrap_err().contains("base64"));
    }
}
