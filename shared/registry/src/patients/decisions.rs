//! Reviewers' decisions on the possible-duplicate queue, kept with who,
//! when and why: the record a data-quality lead audits, and labelled pairs
//! for matching training (`same_person` true or false).

use std::sync::Arc;

use matching::labelled::LabelledPair;
use serde::{Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError};

use crate::keys;
use crate::persons::{PersonStatus, Persons, SourceRecord};

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
    /// The decided person's source records when the decision was made, and
    /// the compared persons': the two sides of the labelled pairs, however
    /// the records move later. Empty in decisions kept before these were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_sources: Vec<String>,
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
    page.items.iter().map(decode_decision).collect()
}

fn decode_decision(item: &Item) -> Result<ReviewDecision, StoreError> {
    serde_json::from_slice(&item.data)
        .map_err(|e| StoreError::Corrupt(format!("review decision item: {e}")))
}

/// Every decision, oldest first (the partition holds a few thousand a
/// year; read in pages).
pub async fn all_decisions(store: &Arc<dyn ItemStore>) -> Result<Vec<ReviewDecision>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(
                keys::REVIEW_DECISIONS_PK,
                QueryOpts::new(Index::Table, SkRange::All).after(cursor),
            )
            .await?;
        for item in &page.items {
            out.push(decode_decision(item)?);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

/// A decision as labelled pairs for matching: every record of the decided
/// person beside every record of the persons it was compared with,
/// labelled with the reviewer's verdict. The sides are the source records
/// the decision names; a decision kept before it named them is resolved
/// from the persons as they are now (see [`records_of`]). Empty when the
/// registry no longer knows one side.
///
/// The records are the source records' latest reports, as matching reads
/// them: the registry keeps a source's latest report, not the one the
/// reviewer saw, so a record reported again since shows its newer form.
pub async fn labelled_pairs(
    persons: &Persons,
    decision: &ReviewDecision,
) -> Result<Vec<LabelledPair>, StoreError> {
    let (mine, theirs) = if decision.sources.is_empty() || decision.other_sources.is_empty() {
        let mine = records_of(persons, &decision.person).await?;
        let mut theirs = Vec::new();
        for other in &decision.others {
            theirs.extend(records_of(persons, other).await?);
        }
        (mine, theirs)
    } else {
        (
            read_sources(persons, &decision.sources).await?,
            read_sources(persons, &decision.other_sources).await?,
        )
    };
    let mut pairs = Vec::new();
    for a in &mine {
        // After a merge both sides can live under one person: a record is
        // never paired with itself.
        for b in theirs.iter().filter(|b| !mine.iter().any(|a| a.id == b.id)) {
            let mut ra = a.record.clone();
            ra.id = a.id.clone();
            let mut rb = b.record.clone();
            rb.id = b.id.clone();
            pairs.push(LabelledPair {
                id: format!("{}:{}:{}", decision.at_ms, a.id, b.id),
                a: ra,
                b: rb,
                same_person: decision.same_person,
                decided_at: Some(decision.at_ms),
            });
        }
    }
    Ok(pairs)
}

async fn read_sources(persons: &Persons, ids: &[String]) -> Result<Vec<SourceRecord>, StoreError> {
    let mut records = Vec::new();
    for id in ids {
        if let Some(source) = persons.source(id).await? {
            records.push(source);
        }
    }
    Ok(records)
}

/// The source records that were a person's, as far as the registry still
/// knows: those linked to it now, and, when a reviewer merged it away,
/// those its merge moved (the sources of the person it was merged into
/// that name it as where they came from). A source moved on again since
/// names only its last move, and is then not found here.
pub async fn records_of(persons: &Persons, person: &str) -> Result<Vec<SourceRecord>, StoreError> {
    let mut records = read_sources(persons, &persons.sources_of(person).await?).await?;
    if let Some(p) = persons.person(person).await? {
        if let (PersonStatus::Merged, Some(into)) = (p.status, p.merged_into.as_deref()) {
            for sid in persons.sources_of(into).await? {
                if let Some(source) = persons.source(&sid).await? {
                    if source.link_from.as_deref() == Some(person)
                        && !records.iter().any(|r| r.id == source.id)
                    {
                        records.push(source);
                    }
                }
            }
        }
    }
    Ok(records)
}
