//! The review queue emptying itself: what a new link decides about the
//! provisional persons the matcher made earlier.
//!
//! * **Merged**: a record certainly both a provisional person and another
//!   shows them to be one child; the provisional person's charts move to
//!   the other (automatic links that say why), and it is kept as merged.
//! * **Separated**: a record certainly a provisional person, and graded
//!   none against every chart of a person it was flagged against, shows
//!   them to be two children; the flag goes, and a provisional person left
//!   with no flag is active.
//! * **Re-decided**: a new report for a provisional person's own chart (its
//!   first name given at last, say) is matched again; it may now link
//!   certainly elsewhere, or match no one.
//!
//! A reviewer's decision is never undone: a person confirmed or separated
//! by a reviewer is active, and charts linked by a reviewer never move. A
//! step that cannot be done (a conflict that keeps coming back, too many
//! writes for one transaction) leaves the person in the queue, for a
//! person to decide; it never fails the message.

use std::collections::{BTreeMap, BTreeSet};

use matching::resolve::{resolve, Resolution, Standing};
use matching::{Grade, MatchRecord, Outcome};
use store::{Condition, Item, StoreError, Write};

use super::linking::{person_item, Matched, PatientMatching};
use crate::json::{decode, encode};
use crate::keys;
use crate::persons::items::{LinkHow, MatchView, Person, PersonStatus, SourceRecord};

/// DynamoDB's limit on one transaction.
const MAX_WRITES: usize = 100;

/// What a link leaves to decide once it is committed.
#[derive(Clone, Debug, Default)]
pub(super) struct FollowUp {
    /// Provisional persons to merge into the person linked to.
    pub absorb: Vec<String>,
    /// The record that linked certainly to a provisional person: its
    /// flagged partners may now be told apart.
    pub separate: Option<MatchRecord>,
    /// A provisional person's own chart reported again: match it again.
    pub redecide: Option<MatchRecord>,
}

impl PatientMatching {
    /// The person behind an Authorized User's own chart, when a query
    /// names the chart number it reported (PID-3) and the query's
    /// demographics do not contradict the chart: the sender knows its own
    /// patient, so a twin or a namesake elsewhere in the registry does not
    /// make the answer a list. `None` when the chart is unknown to the
    /// registry or the demographics say another child (then the query is
    /// matched as any other).
    pub async fn find_by_chart(
        &self,
        au: &str,
        identifiers: &[iz::view::Identifier],
        record: &matching::PatientRecord,
    ) -> Result<Option<super::linking::Found>, StoreError> {
        let Some(sid) = crate::persons::source::chart_source_id(au, identifiers) else {
            return Ok(None);
        };
        let Some(source) = self.source(&sid).await? else {
            return Ok(None);
        };
        let probe = self.matcher.normalize(record);
        let records = self.registry_size().await?;
        let mut decision = self
            .matcher
            .decide_in(records, &probe, &source.match_record);
        if decision.grade == Grade::None {
            return Ok(None);
        }
        decision.grade = Grade::Certain;
        Ok(Some(super::linking::Found {
            probe,
            outcome: Outcome {
                grade: Grade::Certain,
                person: Some(source.person.clone()),
                candidates: vec![(source.person, decision)],
                compared: 1,
            },
            skipped_blocks: 0,
            largest_block: 0,
        }))
    }

    /// The registry's chart count, when it is known (the bands follow it).
    pub(crate) async fn registry_size(&self) -> Result<Option<u64>, StoreError> {
        self.charts.get(self.store.as_ref()).await
    }

    /// Where each person graded certain stands: provisional persons may be
    /// merged by a record, active ones only by a reviewer.
    pub(super) async fn standings(
        &self,
        outcome: &Outcome<String>,
    ) -> Result<BTreeMap<String, Standing>, StoreError> {
        let certain: Vec<&String> = outcome
            .candidates
            .iter()
            .filter(|(_, d)| d.grade == Grade::Certain)
            .map(|(p, _)| p)
            .collect();
        let mut out = BTreeMap::new();
        if certain.len() < 2 {
            // One certain person links whatever its standing; only several
            // need telling apart. A provisional target is still separated.
            for p in certain {
                if let Some(person) = self.person(p).await? {
                    out.insert(p.clone(), standing(&person));
                }
            }
            return Ok(out);
        }
        let keys: Vec<store::Key> = certain.iter().map(|p| keys::person(p)).collect();
        for (p, item) in certain.iter().zip(self.store.get_many(&keys).await?) {
            if let Some(item) = item {
                let person: Person = decode(&item, "person")?;
                out.insert((*p).clone(), standing(&person));
            }
        }
        Ok(out)
    }

    /// Applies what a committed link leaves to decide; returns the persons
    /// whose charts moved (their histories are rebuilt). Never fails: what
    /// it cannot do stays in the review queue.
    pub(super) async fn follow_up(
        &self,
        matched: &Matched,
        follow_up: FollowUp,
        now_ms: i64,
    ) -> Vec<String> {
        let mut touched = Vec::new();
        for other in &follow_up.absorb {
            let reason = format!(
                "merged automatically: a later report ({}) was certainly this child and person {}",
                matched.source, matched.person
            );
            match self
                .retry(|| self.absorb(other, &matched.person, &reason, now_ms))
                .await
            {
                Ok(true) => touched.push(other.clone()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "provisional person left for review"),
            }
        }
        if let Some(probe) = &follow_up.separate {
            if let Err(e) = self
                .retry(|| self.separate(&matched.person, probe, now_ms))
                .await
            {
                tracing::warn!(error = %e, "provisional person left for review");
            }
        }
        if let Some(probe) = &follow_up.redecide {
            match self.redecide(matched, probe, now_ms).await {
                Ok(moved) => touched.extend(moved),
                Err(e) => tracing::warn!(error = %e, "provisional person left for review"),
            }
        }
        touched
    }

    /// Merges provisional person `from` into `into`. `Ok(false)` when there
    /// is nothing to do or it is no longer the matcher's to do: `from` is
    /// not provisional (a reviewer decided), one of its charts was linked by
    /// a reviewer, or it has too many charts for one transaction.
    pub(super) async fn absorb(
        &self,
        from: &str,
        into: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if from == into {
            return Ok(false);
        }
        let (Some(from_item), Some(into_item)) = (
            self.store.get(&keys::person(from)).await?,
            self.store.get(&keys::person(into)).await?,
        ) else {
            return Ok(false);
        };
        let mut gone: Person = decode(&from_item, "person")?;
        let mut target: Person = decode(&into_item, "person")?;
        if gone.status != PersonStatus::Provisional || target.status == PersonStatus::Merged {
            return Ok(false);
        }
        let mut writes = Vec::new();
        let mut sources = Vec::new();
        for sid in self.sources_of(from).await? {
            let Some(item) = self.store.get(&keys::source(&sid)).await? else {
                continue;
            };
            let source: SourceRecord = decode(&item, "source record")?;
            if source.link.how == LinkHow::Manual {
                return Ok(false);
            }
            sources.push((item.version, source));
        }
        for (version, mut source) in sources {
            target.demographics.merge(&source.demographics);
            writes.push(Write::Delete {
                key: keys::person_source(from, &source.id),
                cond: Condition::None,
            });
            writes.push(Write::Put {
                item: Item::new(keys::person_source(into, &source.id), Vec::new()),
                cond: Condition::None,
            });
            writes.push(self.view_put(&source.id, into, &source.match_record)?);
            for key in source.index_keys.iter().filter(|k| !k.starts_with("J:")) {
                writes.push(self.bump_head(key).await?);
            }
            source.person = into.to_owned();
            source.link_from = Some(from.to_owned());
            source.link.grade = Grade::Certain;
            source.link.at = now_ms;
            source.link.resolved = Some(reason.to_owned());
            source.updated_at = now_ms;
            writes.push(Write::Put {
                item: Item::new(keys::source(&source.id), encode(&source)?),
                cond: Condition::Version(version),
            });
        }
        for dup in self.potential_duplicates(from).await? {
            for (a, b) in [(from, dup.other.as_str()), (dup.other.as_str(), from)] {
                writes.push(Write::Delete {
                    key: keys::potential_duplicate(a, b),
                    cond: Condition::None,
                });
            }
        }
        gone.status = PersonStatus::Merged;
        gone.merged_into = Some(into.to_owned());
        gone.notes.push(reason.to_owned());
        gone.updated_at = now_ms;
        target.updated_at = now_ms;
        writes.push(Write::Put {
            item: person_item(&gone)?,
            cond: Condition::Version(from_item.version),
        });
        writes.push(Write::Put {
            item: person_item(&target)?,
            cond: Condition::Version(into_item.version),
        });
        if writes.len() > MAX_WRITES {
            tracing::warn!(
                writes = writes.len(),
                "a provisional person too large to merge in one transaction is left for review"
            );
            return Ok(false);
        }
        self.store.transact(writes).await?;
        Ok(true)
    }

    /// After `probe` linked certainly to provisional `person`: each flagged
    /// partner every chart of which the probe grades none is another child
    /// (the flag goes both ways); a provisional person left with no flag
    /// is active.
    pub(super) async fn separate(
        &self,
        person: &str,
        probe: &MatchRecord,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let records = self.registry_size().await?;
        let mut apart = Vec::new();
        let partners = self.potential_duplicates(person).await?;
        for dup in &partners {
            let sources = self.sources_of(&dup.other).await?;
            let views: Vec<store::Key> = sources.iter().map(|s| keys::match_view(s)).collect();
            let mut different = true;
            for view in self.store.get_many(&views).await?.into_iter().flatten() {
                let view: MatchView = decode(&view, "match view")?;
                if self.matcher.decide_in(records, probe, &view.record).grade != Grade::None {
                    different = false;
                    break;
                }
            }
            if different {
                apart.push(dup.other.clone());
            }
        }
        if apart.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::new();
        for other in &apart {
            for (a, b) in [(person, other.as_str()), (other.as_str(), person)] {
                writes.push(Write::Delete {
                    key: keys::potential_duplicate(a, b),
                    cond: Condition::None,
                });
            }
        }
        let note = |others: usize| {
            format!(
                "confirmed automatically: a later report certainly this child is none of the {others} person(s) it was flagged against"
            )
        };
        // Whoever is left without a flag is decided.
        let mut decided = BTreeSet::new();
        if partners.len() == apart.len() {
            decided.insert(person.to_owned());
        }
        for other in &apart {
            let remaining = self.potential_duplicates(other).await?;
            if remaining.iter().all(|d| d.other == person) {
                decided.insert(other.clone());
            }
        }
        for p in &decided {
            let Some(item) = self.store.get(&keys::person(p)).await? else {
                continue;
            };
            let mut value: Person = decode(&item, "person")?;
            if value.status != PersonStatus::Provisional {
                continue;
            }
            value.status = PersonStatus::Active;
            value.notes.push(note(apart.len()));
            value.updated_at = now_ms;
            writes.push(Write::Put {
                item: person_item(&value)?,
                cond: Condition::Version(item.version),
            });
        }
        if writes.len() > MAX_WRITES {
            return Ok(());
        }
        self.store.transact(writes).await
    }

    /// A provisional person's own chart was reported again: match its new
    /// record against everyone else. Linking certainly elsewhere merges the
    /// provisional person there; matching no one makes it active. Returns
    /// the persons whose charts moved.
    async fn redecide(
        &self,
        matched: &Matched,
        probe: &MatchRecord,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let own = matched.person.as_str();
        let candidates = self.candidates(probe).await?;
        let records = self.registry_size().await?;
        let outcome = self.matcher.choose_in(
            records,
            probe,
            candidates
                .entries
                .values()
                .filter(|e| e.person != own)
                .map(|e| Some((e.person.clone(), &e.record))),
        );
        let standings = self.standings(&outcome).await?;
        let resolution = resolve(&outcome, |p| {
            standings.get(p).copied().unwrap_or(Standing::Active)
        });
        match resolution {
            Resolution::Link { person, absorbed } => {
                let reason = format!(
                    "merged automatically: a later report from its own chart ({}) was certainly person {person}",
                    matched.source
                );
                let mut moved = Vec::new();
                for other in std::iter::once(own.to_owned()).chain(absorbed) {
                    if self
                        .retry(|| self.absorb(&other, &person, &reason, now_ms))
                        .await?
                    {
                        moved.push(other);
                    }
                }
                if !moved.is_empty() {
                    moved.push(person);
                }
                Ok(moved)
            }
            Resolution::NewPerson {
                provisional: false, ..
            } => {
                self.retry(|| self.activate_alone(own, now_ms)).await?;
                Ok(Vec::new())
            }
            Resolution::NewPerson { .. } => Ok(Vec::new()),
        }
    }

    /// A provisional person whose record now matches no one: its flags go
    /// and it is active.
    async fn activate_alone(&self, person: &str, now_ms: i64) -> Result<(), StoreError> {
        let Some(item) = self.store.get(&keys::person(person)).await? else {
            return Ok(());
        };
        let mut value: Person = decode(&item, "person")?;
        if value.status != PersonStatus::Provisional {
            return Ok(());
        }
        let mut writes = Vec::new();
        for dup in self
            .potential_duplicates(person)
            .await?
            .iter()
            .take(MAX_WRITES / 2 - 1)
        {
            for (a, b) in [(person, dup.other.as_str()), (dup.other.as_str(), person)] {
                writes.push(Write::Delete {
                    key: keys::potential_duplicate(a, b),
                    cond: Condition::None,
                });
            }
        }
        value.status = PersonStatus::Active;
        value.notes.push(
            "confirmed automatically: a later report from its own chart matches no one".into(),
        );
        value.updated_at = now_ms;
        writes.push(Write::Put {
            item: person_item(&value)?,
            cond: Condition::Version(item.version),
        });
        self.store.transact(writes).await
    }
}

fn standing(person: &Person) -> Standing {
    match person.status {
        PersonStatus::Provisional => Standing::Provisional,
        _ => Standing::Active,
    }
}
