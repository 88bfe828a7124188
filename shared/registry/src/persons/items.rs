//! What the patient families store (JSON in the item's data).

use matching::{Grade, MatchRecord, PatientRecord};
use serde::{Deserialize, Serialize};

use super::demographics::Demographics;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkHow {
    /// Decided by the matcher.
    Auto,
    /// Set by a person reviewing records; the matcher never changes it.
    Manual,
}

/// Why a source record belongs to its person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub how: LinkHow,
    pub grade: Grade,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The decision's full explanation (per-field levels and weights,
    /// vetoes, configuration version), for the best candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<serde_json::Value>,
    pub config: String,
    pub at: i64,
    /// Why a later record changed this link without a reviewer (it showed
    /// the chart's provisional person to be another person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
}

/// One sender's chart for one patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub id: String,
    pub au: String,
    pub person: String,
    pub link: Link,
    /// The latest report, as matching reads it.
    pub record: PatientRecord,
    pub match_record: MatchRecord,
    /// Blocking keys it is filed under (to re-file when it changes).
    pub index_keys: Vec<String>,
    /// Everything this sender said about the patient, consolidated.
    pub demographics: Demographics,
    pub first_message: String,
    pub last_message: String,
    pub updated_at: i64,
    /// The person a reviewer moved this source away from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_from: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    Active,
    /// A possible match that was not merged, or a record with too little
    /// identity to match: kept apart and waiting for review.
    Provisional,
    /// Every source was linked elsewhere by a reviewer (`merged_into` says
    /// where): kept so references to the old id can be followed.
    Merged,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub status: PersonStatus,
    /// The grade that created the person or last linked a source to it.
    pub certainty: Grade,
    pub demographics: Demographics,
    /// Why the person is provisional, in words a reviewer reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every change to the person's doses, so a rebuild of the
    /// history knows whether it read everything.
    pub facts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// A source record's person and matching record: what a candidate found
/// under a blocking key is scored on. Stored once per source (its match
/// view); block entries written before the view existed carry a copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchView {
    pub person: String,
    pub record: MatchRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PotentialDuplicate {
    pub other: String,
    pub score: f64,
    pub explanation: serde_json::Value,
    pub at: i64,
}

/// Marks a message as fully applied (redelivery is a no-op).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchedMessage {
    pub person: String,
    pub source: String,
    pub grade: Grade,
    pub at: i64,
}
