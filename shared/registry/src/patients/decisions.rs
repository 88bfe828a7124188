//! Reviewers' decisions on the possible-duplicate queue, kept with who,
//! when and why: the record a data-quality lead audits, and labelled pairs
//! for matching training (`same_person` true or false).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError};

use crate::keys;

/// One decision on a provisional person and a candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewDecision {
    /// The provisional person the decision was about.
    pub person: String,
    /// The candidate it was compared with (for "different people", the
    /// candidates it was kept apart from).
    pub others: Vec<String>,
    /// Whether the reviewer said they are the same person (merged).
    pub same_person: bool,
    /// The staff member who decided.
    pub reviewer: String,
    /// In the reviewer's words (no PHI expected; shown to auditors).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub at_ms: i64,
}

/// Keeps one decision (never changed or deleted afterwards).
pub async fn record_decision(
    store: &Arc<dyn ItemStore>,
    decision: &ReviewDecision,
) -> Result<(), StoreError> {
    let data = serde_json::to_vec(decision).map_err(|e| StoreError::Other(e.to_string()))?;
    store
        .put(
            Item::new(
                keys::review_decision(decision.at_ms, &decision.person),
                data,
            ),
            Condition::Absent,
        )
        .await?;
    Ok(())
}

/// Decisions, newest first, at most `limit`.
pub async fn recent_decisions(
    store: &Arc<dyn ItemStore>,
    limit: u32,
) -> Result<Vec<ReviewDecision>, StoreError> {
    let page = store
        .query(
            keys::REVIEW_DECISIONS_PK,
            QueryOpts::new(Index::Table, SkRange::All)
                .limit(limit)
                .backward(),
        )
        .await?;
    page.items
        .iter()
        .map(|i| {
            serde_json::from_slice(&i.data)
                .map_err(|e| StoreError::Corrupt(format!("review decision item: {e}")))
        })
        .collect()
}
