//! What the IIS keeps of each received message: the idempotency record (so a
//! resend gets the very same answer) and, for an accepted VXU, the accepted
//! message itself (raw text plus the validated content), whose arrival in the
//! store is the event the matcher consumes; and the audit record of a
//! query (who asked about whom, what they were told).

use base64::Engine;
use serde::{Deserialize, Serialize};
use store::{Condition, Item, ItemStore, StoreError, Write};

use crate::keys;

/// One per (Authorized User, MSH-4, MSH-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub au: String,
    pub facility: String,
    pub control_id: String,
    /// SHA-256 of the message with its segment ends normalised (hex).
    pub content_hash: String,
    /// The answer sent, byte for byte.
    pub answer: String,
    /// MSA-1 of the answer.
    pub ack_code: String,
    pub accepted: bool,
    /// Set when the message was accepted and stored for matching.
    pub message_id: Option<String>,
    /// Epoch seconds.
    pub received_at: i64,
}

/// The message exactly as received: text when it is UTF-8, else base64, so
/// that no byte is ever lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawMessage {
    Text(String),
    Base64(String),
}

impl RawMessage {
    pub fn from_bytes(bytes: &[u8]) -> RawMessage {
        match std::str::from_utf8(bytes) {
            Ok(s) => RawMessage::Text(s.to_string()),
            Err(_) => RawMessage::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            RawMessage::Text(s) => Some(s.as_bytes().to_vec()),
            RawMessage::Base64(b) => base64::engine::general_purpose::STANDARD.decode(b).ok(),
        }
    }
}

/// One validation finding as stored (and reported in the ACK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFinding {
    /// ERL, e.g. `RXA^1^5^1^1`.
    pub location: String,
    pub hl7_code: String,
    pub severity: String,
    pub app_code: Option<String>,
    pub message: String,
}

impl From<&iz::Finding> for StoredFinding {
    fn from(f: &iz::Finding) -> Self {
        StoredFinding {
            location: f.location.to_erl(),
            hl7_code: f.hl7_code.code().to_string(),
            severity: f.severity.code().to_string(),
            app_code: f.app_code.map(|a| a.code().to_string()),
            message: f.message.clone(),
        }
    }
}

/// An accepted VXU, ready for matching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedMessage {
    pub message_id: String,
    pub au: String,
    pub facility: String,
    pub control_id: String,
    pub received_at: i64,
    pub raw: RawMessage,
    pub findings: Vec<StoredFinding>,
    pub vxu: iz::Vxu,
}

/// Head item of an accepted message: how many parts to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedHead {
    pub message_id: String,
    pub au: String,
    pub parts: usize,
    pub bytes: usize,
}

/// The profile a FHIR `Patient/$match` is recorded under in its
/// [`QueryRecord`] (a history query records its HL7 profile, Z34 or Z44).
pub const MATCH_PROFILE: &str = "FHIR $match";

/// Who asked about whom, and what they were told (audit, and the
/// "queried by this Authorized User" signal for Group membership).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    pub au: String,
    pub control_id: String,
    pub profile: String,
    /// QAK-2: OK, NF or TM.
    pub status: String,
    pub grade: matching::Grade,
    pub persons: Vec<String>,
    pub at: i64,
}

/// Segment ends normalised to CR, MLLP framing, BOM and blank lines dropped:
/// the same message sent over SOAP (LF) and REST (CR) is the same message.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut h = Sha256::new();
    for line in body.split(|&b| b == b'\r' || b == b'\n') {
        let line: &[u8] = {
            let start = line
                .iter()
                .position(|&b| b != 0x0b && b != 0x1c)
                .unwrap_or(line.len());
            let end = line
                .iter()
                .rposition(|&b| b != 0x0b && b != 0x1c)
                .map_or(start, |e| e + 1);
            &line[start..end.max(start)]
        };
        if line.is_empty() {
            continue;
        }
        h.update(line);
        h.update(b"\r");
    }
    crate::keys::hex(&h.finalize())
}

/// Accepted-message JSON is split into parts below DynamoDB's 400 KB item limit.
const PART_BYTES: usize = 350_000;

/// The accepted message's items: its parts, then the head consumers wait for.
pub(crate) fn accepted_items(m: &AcceptedMessage) -> Result<Vec<Write>, StoreError> {
    let json = crate::json::encode(m)?;
    let parts: Vec<&[u8]> = json.chunks(PART_BYTES).collect();
    let head = AcceptedHead {
        message_id: m.message_id.clone(),
        au: m.au.clone(),
        parts: parts.len(),
        bytes: json.len(),
    };
    let mut writes = Vec::with_capacity(parts.len() + 1);
    for (n, part) in parts.iter().enumerate() {
        writes.push(Write::Put {
            item: Item::new(keys::accepted_part(&m.message_id, n), part.to_vec()),
            cond: Condition::Absent,
        });
    }
    // The head goes last in the transaction but is what consumers wait for:
    // the transaction makes all parts visible together with it.
    writes.push(Write::Put {
        item: Item::new(
            keys::accepted_head(&m.message_id),
            crate::json::encode(&head)?,
        ),
        cond: Condition::Absent,
    });
    Ok(writes)
}

/// Reads an accepted message back (for the matcher and for tests).
pub async fn load_accepted(
    store: &dyn ItemStore,
    message_id: &str,
) -> Result<Option<AcceptedMessage>, StoreError> {
    let Some(head) = store.get(&keys::accepted_head(message_id)).await? else {
        return Ok(None);
    };
    let head: AcceptedHead = serde_json::from_slice(&head.data)
        .map_err(|e| StoreError::Corrupt(format!("accepted head: {e}")))?;
    let mut json = Vec::with_capacity(head.bytes);
    for n in 0..head.parts {
        let part = store
            .get(&keys::accepted_part(message_id, n))
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("accepted message {message_id} lacks part {n}"))
            })?;
        json.extend_from_slice(&part.data);
    }
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("accepted message: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_and_framing_do_not_change_the_hash() {
        let cr = content_hash(b"MSH|^~\\&|A\rPID|1\r");
        assert_eq!(cr, content_hash(b"MSH|^~\\&|A\nPID|1\n"));
        assert_eq!(cr, content_hash(b"\x0bMSH|^~\\&|A\r\nPID|1\r\n\r\n\x1c\r"));
        assert_eq!(cr, content_hash(b"\xEF\xBB\xBFMSH|^~\\&|A\rPID|1"));
        assert_ne!(cr, content_hash(b"MSH|^~\\&|A\rPID|2\r"));
    }

    #[test]
    fn raw_bytes_survive() {
        let bytes = b"MSH|^~\\&|\xff\xfe\r";
        assert_eq!(
            RawMessage::from_bytes(bytes).to_bytes().unwrap(),
            bytes.to_vec()
        );
    }
}
