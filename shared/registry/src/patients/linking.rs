//! The matcher use case: apply one accepted VXU to the registry.
//!
//! 1. Identity (one transaction): find or create the person for the
//!    message's source record. Every blocking key read is guarded by a
//!    version check on its head item, and every key filed bumps its head, so
//!    two messages for the same new child committing at once conflict on a
//!    shared key: one wins, the other retries and finds the first's person.
//! 2. Doses: the sender's adds, updates and deletes, with a bump of the
//!    person's `facts` counter.
//! 3. History: the person's consolidated immunizations rebuilt from every
//!    linked source's doses, committed only if `facts` did not move meanwhile.
//! 4. The message is marked matched; a redelivered message stops at the mark.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use matching::blocking::{index_keys, query_keys, within_budget};
use matching::resolve::{resolve, Resolution, Standing};
use matching::{Grade, MatchRecord, Matcher};
use store::{Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

use super::count::{self, ChartCount};
use super::resolving::FollowUp;
use crate::json::{decode, encode};
use crate::keys;
use crate::message::{load_accepted, AcceptedMessage};
use crate::persons::demographics::Demographics;
use crate::persons::doses::{
    self, consolidate, DoseChange, SourceDose, VaccinationRules, VaccineGroups,
};
use crate::persons::items::{
    Link, LinkHow, MatchView, MatchedMessage, Person, PersonStatus, PotentialDuplicate,
    SourceRecord,
};
use crate::persons::source::{patient_record, source_id};
use crate::persons::Persons;
use crate::retry::{is_conflict, MAX_ATTEMPTS};

/// DynamoDB's limit, shared by the embedded store.
const MAX_WRITES: usize = 100;
/// At most this many potential duplicates are flagged per new person.
const MAX_DUPLICATES: usize = 10;

#[derive(Debug)]
pub enum MatchError {
    /// No accepted message with this id (nothing to do, never retried).
    UnknownMessage(String),
    /// Storage failed or kept conflicting: retry the message later.
    Store(StoreError),
}

impl std::fmt::Display for MatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatchError::UnknownMessage(id) => write!(f, "no accepted message {id}"),
            MatchError::Store(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for MatchError {}

impl From<StoreError> for MatchError {
    fn from(e: StoreError) -> Self {
        MatchError::Store(e)
    }
}

#[derive(Debug, Default)]
pub(super) struct Candidates {
    heads: BTreeMap<String, Option<u64>>,
    pub(super) entries: BTreeMap<String, MatchView>,
    skipped_blocks: usize,
    largest_block: usize,
}

/// The result of [`PatientMatching::find`].
#[derive(Clone, Debug)]
pub struct Found {
    pub probe: MatchRecord,
    pub outcome: matching::Outcome<String>,
    /// Blocking keys skipped as over the cap, and the largest block read.
    pub skipped_blocks: usize,
    pub largest_block: usize,
}

/// Why a link edit was refused.
#[derive(Debug)]
pub enum RelinkError {
    UnknownSource,
    UnknownPerson,
    /// The target was itself merged away; link to this person instead.
    MergedPerson(String),
    Store(StoreError),
}

impl std::fmt::Display for RelinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelinkError::UnknownSource => write!(f, "no such source record"),
            RelinkError::UnknownPerson => write!(f, "no such person"),
            RelinkError::MergedPerson(into) => {
                write!(f, "that person was merged into {into}; link to it instead")
            }
            RelinkError::Store(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for RelinkError {}

impl From<StoreError> for RelinkError {
    fn from(e: StoreError) -> Self {
        RelinkError::Store(e)
    }
}

/// What happened to one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    pub person: String,
    pub source: String,
    /// certain: linked to an existing person; possible: a new provisional
    /// person flagged against its candidates; none: a new person. For a
    /// source seen before, the grade of its original link.
    pub grade: Grade,
    pub new_person: bool,
    /// Redelivery of a message already applied.
    pub already: bool,
}

/// The matcher: applies accepted messages (`process`), finds a query's
/// patient (`find`) and makes a reviewer's link edits (`relink`,
/// `confirm`). Readers that never match hold a [`Persons`] instead.
#[derive(Clone)]
pub struct PatientMatching {
    /// The reading side, for the matcher's own reads (and, through
    /// `Deref`, for callers that hold a matcher anyway).
    persons: Persons,
    pub(super) store: Arc<dyn ItemStore>,
    pub(super) matcher: Arc<Matcher>,
    groups: &'static VaccineGroups,
    /// The registry's chart count, as last read (the bands follow it).
    pub(super) charts: Arc<ChartCount>,
    /// How reports become vaccination events (the jurisdiction's policy).
    vaccination: Arc<VaccinationRules>,
}

impl std::fmt::Debug for PatientMatching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientMatching")
            .field("config", &self.matcher.config().version)
            .finish_non_exhaustive()
    }
}

/// A person's profile item; provisional persons are also filed in the
/// review queue (GSI1 `REVIEW`, oldest first).
pub(super) fn person_item(person: &Person) -> Result<Item, StoreError> {
    let item = Item::new(keys::person(&person.id), encode(person)?);
    Ok(match person.status {
        PersonStatus::Provisional => {
            item.with_gsi1(keys::review_queue(person.created_at, &person.id))
        }
        _ => item,
    })
}

/// `Absent` for an item not read, else its exact version.
pub(super) fn guard(version: Option<u64>) -> Condition {
    version.map_or(Condition::Absent, Condition::Version)
}

impl std::ops::Deref for PatientMatching {
    type Target = Persons;

    fn deref(&self) -> &Persons {
        &self.persons
    }
}

impl PatientMatching {
    pub fn new(store: Arc<dyn ItemStore>, matcher: Arc<Matcher>) -> Self {
        PatientMatching {
            persons: Persons::new(store.clone()),
            store,
            matcher,
            groups: VaccineGroups::built_in(),
            charts: Arc::new(ChartCount::default()),
            vaccination: Arc::new(VaccinationRules::default()),
        }
    }

    /// Reports consolidated into vaccination events by these rules (the
    /// jurisdiction policy's `[vaccination_events]`) instead of the default.
    pub fn with_vaccination_rules(mut self, rules: VaccinationRules) -> Self {
        self.vaccination = Arc::new(rules);
        self
    }

    /// The reading side alone: what a reader that never matches needs.
    pub fn persons(&self) -> &Persons {
        &self.persons
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Applies one accepted message. Safe to call again for the same
    /// message (redelivery), and concurrently for different messages.
    pub async fn process(&self, message_id: &str, now_ms: i64) -> Result<Matched, MatchError> {
        if let Some(done) = self.store.get(&keys::matched(message_id)).await? {
            let done: MatchedMessage = decode(&done, "matched message")?;
            return Ok(Matched {
                person: done.person,
                source: done.source,
                grade: done.grade,
                new_person: false,
                already: true,
            });
        }
        let msg = load_accepted(self.store.as_ref(), message_id)
            .await?
            .ok_or_else(|| MatchError::UnknownMessage(message_id.to_owned()))?;
        let (matched, follow_up) = self.retry(|| self.link_identity(&msg, now_ms)).await?;
        // What the new link decides about provisional persons: best done
        // now, and never a reason to fail the message (a person reviewing
        // the queue sees whatever is left undecided).
        let mut touched_by_resolution = self.follow_up(&matched, follow_up, now_ms).await;
        let touched = self
            .retry(|| self.apply_doses(&msg, &matched.source, &matched.person))
            .await?;
        touched_by_resolution.extend(touched);
        for person in touched_by_resolution
            .iter()
            .chain(std::iter::once(&matched.person))
            .collect::<BTreeSet<_>>()
        {
            self.retry(|| self.rebuild_history(person)).await?;
        }
        let mark = MatchedMessage {
            person: matched.person.clone(),
            source: matched.source.clone(),
            grade: matched.grade,
            at: now_ms,
        };
        self.store
            .put(
                Item::new(keys::matched(message_id), encode(&mark)?),
                Condition::None,
            )
            .await?;
        Ok(matched)
    }

    pub(super) async fn retry<T, F, Fut>(&self, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        crate::retry::on_conflict(attempt).await
    }

    async fn link_identity(
        &self,
        msg: &AcceptedMessage,
        now_ms: i64,
    ) -> Result<(Matched, FollowUp), StoreError> {
        let sid = source_id(&msg.au, &msg.vxu, &msg.message_id);
        let record = patient_record(&sid, &msg.vxu);
        let probe = self.matcher.normalize(&record);
        match self.store.get(&keys::source(&sid)).await? {
            Some(item) => self.update_source(msg, item, record, probe, now_ms).await,
            None => self.new_source(msg, &sid, record, probe, now_ms).await,
        }
    }

    /// A sender we know reports on its patient again: the link stands (it
    /// was decided once, or by a person); demographics and filing update.
    async fn update_source(
        &self,
        msg: &AcceptedMessage,
        item: Item,
        record: matching::PatientRecord,
        probe: MatchRecord,
        now_ms: i64,
    ) -> Result<(Matched, FollowUp), StoreError> {
        let mut source: SourceRecord = decode(&item, "source record")?;
        let stored_person = self
            .store
            .get(&keys::person(&source.person))
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("source {} links to a missing person", source.id))
            })?;
        let mut person: Person = decode(&stored_person, "person")?;
        source
            .demographics
            .apply(&msg.vxu, msg.received_at, &source.id);
        person.demographics.merge(&source.demographics);
        person.updated_at = now_ms;
        // Block entries are plain puts and deletes (harmless to repeat); the
        // source, the person and the head bumps are the guarded part. When
        // everything does not fit one transaction, the surplus entries go
        // first, so a crash or conflict before the guarded commit leaves a
        // state the retry or redelivery rewrites identically.
        let mut entries = Vec::new();
        let mut guarded = Vec::new();
        let new_keys = index_keys(&probe);
        if probe != source.match_record {
            let old: BTreeSet<&String> = source.index_keys.iter().collect();
            let new: BTreeSet<&String> = new_keys.iter().collect();
            for key in old.difference(&new) {
                entries.push(Write::Delete {
                    key: keys::block_entry(key, &source.id),
                    cond: Condition::None,
                });
            }
            for key in new.difference(&old) {
                entries.push(Write::Put {
                    item: Item::new(keys::block_entry(key, &source.id), Vec::new()),
                    cond: Condition::None,
                });
            }
            guarded.push(self.view_put(&source.id, &source.person, &probe)?);
            // Re-filed keys change what those blocks hold: bump their heads
            // so a concurrent new-source decision that read them retries.
            for key in old
                .symmetric_difference(&new)
                .filter(|k| !k.starts_with("J:"))
            {
                guarded.push(self.bump_head(key).await?);
            }
        }
        source.record = record;
        source.match_record = probe;
        source.index_keys = new_keys;
        source.last_message = msg.message_id.clone();
        source.updated_at = now_ms;
        guarded.push(Write::Put {
            item: Item::new(keys::source(&source.id), encode(&source)?),
            cond: Condition::Version(item.version),
        });
        guarded.push(Write::Put {
            item: person_item(&person)?,
            cond: Condition::Version(stored_person.version),
        });
        let room = MAX_WRITES.saturating_sub(guarded.len());
        let surplus = entries.len().saturating_sub(room);
        for chunk in entries[..surplus].chunks(MAX_WRITES) {
            self.store.transact(chunk.to_vec()).await?;
        }
        guarded.extend(entries.drain(surplus..));
        self.store.transact(guarded).await?;
        // A provisional person the matcher made: the new report may now
        // decide it (its first name given at last, say).
        let follow_up = FollowUp {
            redecide: (person.status == PersonStatus::Provisional
                && source.link.how == LinkHow::Auto)
                .then(|| source.match_record.clone()),
            ..FollowUp::default()
        };
        Ok((
            Matched {
                person: person.id,
                source: source.id,
                grade: source.link.grade,
                new_person: false,
                already: false,
            },
            follow_up,
        ))
    }

    /// The source's match view, written wherever its person or matching
    /// record changes.
    pub(super) fn view_put(
        &self,
        sid: &str,
        person: &str,
        record: &MatchRecord,
    ) -> Result<Write, StoreError> {
        let view = MatchView {
            person: person.to_owned(),
            record: record.clone(),
        };
        Ok(Write::Put {
            item: Item::new(keys::match_view(sid), encode(&view)?),
            cond: Condition::None,
        })
    }

    pub(super) async fn bump_head(&self, key: &str) -> Result<Write, StoreError> {
        let head = self.store.get(&keys::block_head(key)).await?;
        let version = head.as_ref().map(|h| h.version);
        Ok(Write::Put {
            item: Item::new(keys::block_head(key), Vec::new()),
            cond: guard(version),
        })
    }

    /// Every source record sharing a blocking key with `probe` (each key's
    /// block read only up to the cap), and the head versions read.
    pub(super) async fn candidates(&self, probe: &MatchRecord) -> Result<Candidates, StoreError> {
        let max_block = self.matcher.config().blocking.max_block;
        let mut found = Candidates::default();
        let mut pages = Vec::new();
        let block_keys = query_keys(probe);
        // The head (sort key `#`) sorts before every entry (`S#…`): one
        // query reads both, as one snapshot where the backend has one. All
        // the keys' blocks are read in one call (one read transaction on
        // the embedded store), each still only up to the cap.
        let mut opts = QueryOpts::new(Index::Table, SkRange::All);
        opts.limit = u32::try_from(max_block + 2).unwrap_or(u32::MAX);
        let queries: Vec<(String, QueryOpts)> = block_keys
            .iter()
            .map(|key| (keys::block_pk(key), opts.clone()))
            .collect();
        let read = self.store.query_many(&queries).await?;
        for (key, page) in block_keys.into_iter().zip(read) {
            let mut entries = page.items;
            let head = match entries.first() {
                Some(first) if first.key == keys::block_head(&key) => {
                    Some(entries.remove(0).version)
                }
                _ => None,
            };
            // One-slip identifier keys have no head (see new_source); any
            // other key without one has no entries either.
            if !key.starts_with("J:") {
                found.heads.insert(key.clone(), head);
                if head.is_none() {
                    continue;
                }
            }
            if entries.len() > max_block || (page.next.is_some() && entries.len() >= max_block) {
                // Never scanned: a key this common says nothing about anyone.
                tracing::info!(kind = %&key[..1], "blocking key over its cap skipped");
                found.skipped_blocks += 1;
                continue;
            }
            pages.push(entries);
        }
        // The configuration's candidate budget: the smallest blocks first,
        // as the in-memory index does (matching::blocking::within_budget).
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        let mut listed: BTreeMap<&str, &Item> = BTreeMap::new();
        let budget = self.matcher.config().blocking.max_candidates;
        for (items, read) in pages.iter().zip(within_budget(&sizes, budget)) {
            if !read {
                tracing::debug!(
                    entries = items.len(),
                    "block left unread for the candidate budget"
                );
                continue;
            }
            found.largest_block = found.largest_block.max(items.len());
            for item in items {
                let source = item.key.sk.trim_start_matches(keys::BLOCK_ENTRY_PREFIX);
                listed.entry(source).or_insert(item);
            }
        }
        // Each candidate's match view, in one round trip. The view wins over
        // a copy in an entry: entries filed before views existed keep the
        // record (and person) they were written with, which a later relink
        // or update changes only in the view.
        let views: Vec<store::Key> = listed.keys().map(|s| keys::match_view(s)).collect();
        let read = self.store.get_many(&views).await?;
        for ((source, entry), view) in listed.into_iter().zip(read) {
            let view: MatchView = match view {
                Some(view) => decode(&view, "match view")?,
                None if !entry.data.is_empty() => decode(entry, "block entry")?,
                None => {
                    // Never written so by this code: skipping keeps the match
                    // going, and at worst leaves a duplicate for review.
                    tracing::warn!(source, "block entry without a match view skipped");
                    continue;
                }
            };
            found.entries.insert(source.to_owned(), view);
        }
        Ok(found)
    }

    /// Matches a patient against the registry without changing it (what a
    /// query needs): the decision per candidate person, best first.
    pub async fn find(&self, record: &matching::PatientRecord) -> Result<Found, StoreError> {
        let probe = self.matcher.normalize(record);
        let c = self.candidates(&probe).await?;
        let records = self.registry_size().await?;
        // Persons by reference while comparing: most candidates grade none,
        // and only the few kept need their own copy of the id (`&str` and
        // `String` order alike, so the ranking is the same).
        let chosen = self.matcher.choose_in(
            records,
            &probe,
            c.entries
                .values()
                .map(|e| Some((e.person.as_str(), &e.record))),
        );
        let outcome = matching::Outcome {
            grade: chosen.grade,
            person: chosen.person.map(str::to_owned),
            candidates: chosen
                .candidates
                .into_iter()
                .map(|(p, d)| (p.to_owned(), d))
                .collect(),
            compared: chosen.compared,
        };
        Ok(Found {
            probe,
            outcome,
            skipped_blocks: c.skipped_blocks,
            largest_block: c.largest_block,
        })
    }

    /// A source never seen: find its person among the candidates sharing a
    /// blocking key, or create one.
    async fn new_source(
        &self,
        msg: &AcceptedMessage,
        sid: &str,
        record: matching::PatientRecord,
        probe: MatchRecord,
        now_ms: i64,
    ) -> Result<(Matched, FollowUp), StoreError> {
        let filed = index_keys(&probe);
        let Candidates { heads, entries, .. } = self.candidates(&probe).await?;
        let records = self.registry_size().await?;
        let outcome = self.matcher.choose_in(
            records,
            &probe,
            entries
                .values()
                .map(|e| Some((e.person.clone(), &e.record))),
        );
        let standings = self.standings(&outcome).await?;
        let resolution = resolve(&outcome, |p| {
            standings.get(p).copied().unwrap_or(Standing::Active)
        });
        let best = outcome.candidates.first();
        let mut source_demographics = Demographics::default();
        source_demographics.apply(&msg.vxu, msg.received_at, sid);
        let mut writes = Vec::new();
        let mut follow_up = FollowUp::default();
        let linked_to = match &resolution {
            Resolution::Link { person, absorbed } => {
                follow_up.absorb = absorbed.clone();
                if standings.get(person) == Some(&Standing::Provisional) {
                    follow_up.separate = Some(probe.clone());
                }
                Some(person.clone())
            }
            Resolution::NewPerson { .. } => None,
        };
        let grade = match &resolution {
            Resolution::Link { .. } => Grade::Certain,
            Resolution::NewPerson {
                provisional: true, ..
            } => Grade::Possible,
            Resolution::NewPerson { .. } => Grade::None,
        };
        let (person_id, new_person) = match &linked_to {
            Some(pid) => {
                let item = self.store.get(&keys::person(pid)).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("block entry names missing person {pid}"))
                })?;
                let mut person: Person = decode(&item, "person")?;
                person.demographics.merge(&source_demographics);
                person.certainty = Grade::Certain;
                person.updated_at = now_ms;
                writes.push(Write::Put {
                    item: person_item(&person)?,
                    cond: Condition::Version(item.version),
                });
                (pid.clone(), false)
            }
            None => {
                let pid = uuid::Uuid::now_v7().simple().to_string();
                let mut notes = Vec::new();
                if !probe.is_linkable() {
                    notes.push("too little identity to match (a name and a birth date or identifier are needed)".to_owned());
                }
                if grade == Grade::Possible {
                    notes.push(format!(
                        "possible match with {} existing person(s), not merged",
                        outcome.candidates.len()
                    ));
                }
                let person = Person {
                    id: pid.clone(),
                    status: if notes.is_empty() {
                        PersonStatus::Active
                    } else {
                        PersonStatus::Provisional
                    },
                    certainty: grade,
                    demographics: source_demographics.clone(),
                    notes,
                    created_at: now_ms,
                    updated_at: now_ms,
                    facts: 0,
                    merged_into: None,
                };
                writes.push(Write::Put {
                    item: person_item(&person)?,
                    cond: Condition::Absent,
                });
                for (other, decision) in outcome.candidates.iter().take(MAX_DUPLICATES) {
                    let explanation =
                        serde_json::to_value(&decision.explanation).unwrap_or_default();
                    for (a, b) in [(&pid, other), (other, &pid)] {
                        let dup = PotentialDuplicate {
                            other: b.clone(),
                            score: decision.score,
                            explanation: explanation.clone(),
                            at: now_ms,
                        };
                        writes.push(Write::Put {
                            item: Item::new(keys::potential_duplicate(a, b), encode(&dup)?),
                            cond: Condition::None,
                        });
                    }
                }
                (pid, true)
            }
        };
        let source = SourceRecord {
            id: sid.to_owned(),
            au: msg.au.clone(),
            person: person_id.clone(),
            link: Link {
                how: LinkHow::Auto,
                grade,
                score: best.map(|(_, d)| d.score),
                explanation: best.and_then(|(_, d)| serde_json::to_value(&d.explanation).ok()),
                config: self.matcher.config().version.clone(),
                at: now_ms,
                resolved: None,
            },
            record,
            match_record: probe.clone(),
            index_keys: filed.clone(),
            demographics: source_demographics,
            first_message: msg.message_id.clone(),
            last_message: msg.message_id.clone(),
            updated_at: now_ms,
            link_from: None,
        };
        writes.push(Write::Put {
            item: Item::new(keys::source(sid), encode(&source)?),
            cond: Condition::Absent,
        });
        writes.push(Write::Put {
            item: Item::new(keys::person_source(&person_id, sid), Vec::new()),
            cond: Condition::None,
        });
        // Every head read is guarded; the keys filed are bumped. The one-slip
        // identifier keys (J) are filed without a head: too many to guard in
        // one transaction, and two records alike only there never certain-match.
        for (key, version) in &heads {
            let item = Item::new(keys::block_head(key), Vec::new());
            writes.push(if filed.contains(key) {
                Write::Put {
                    item,
                    cond: guard(*version),
                }
            } else {
                Write::Check {
                    key: keys::block_head(key),
                    cond: guard(*version),
                }
            });
        }
        for key in filed
            .iter()
            .filter(|k| !heads.contains_key(*k) && !k.starts_with("J:"))
        {
            writes.push(self.bump_head(key).await?);
        }
        writes.push(self.view_put(sid, &person_id, &probe)?);
        // One chart more: the registry's size moves its bands.
        writes.push(count::one_more(self.store.as_ref(), sid).await?);
        let mut entries: Vec<&String> = filed.iter().collect();
        entries.sort_by_key(|k| k.starts_with("J:"));
        for key in entries {
            if writes.len() >= MAX_WRITES {
                tracing::warn!("blocking entries beyond one transaction not filed");
                break;
            }
            writes.push(Write::Put {
                item: Item::new(keys::block_entry(key, sid), Vec::new()),
                cond: Condition::None,
            });
        }
        self.store.transact(writes).await?;
        Ok((
            Matched {
                person: person_id,
                source: sid.to_owned(),
                grade,
                new_person,
                already: false,
            },
            follow_up,
        ))
    }

    /// The sender's adds, updates and deletes. Returns the persons whose
    /// doses changed besides `person` (a dose filed under another of the
    /// sender's charts).
    async fn apply_doses(
        &self,
        msg: &AcceptedMessage,
        sid: &str,
        person: &str,
    ) -> Result<Vec<String>, StoreError> {
        let changes = doses::changes(
            self.groups,
            &msg.au,
            sid,
            &msg.message_id,
            msg.received_at,
            &msg.vxu.orders,
        );
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut writes = Vec::new();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for change in changes {
            let (au, new_key, legacy) = change.keys();
            // The report the sender means: stored under its key, or, for a
            // report without ORC-3 stored by an earlier version, under the
            // key that version gave it (updated and deleted there, so
            // nothing is left behind).
            let mut key = new_key.to_owned();
            let mut found = self.store.get(&keys::dose_ref(au, new_key)).await?;
            if found.is_none() {
                if let Some(old) = legacy {
                    if let Some(r) = self.store.get(&keys::dose_ref(au, old)).await? {
                        key = old.to_owned();
                        found = Some(r);
                    }
                }
            }
            // The dose may live under another chart of the same sender (the
            // clinic re-registered the child): updates and deletes follow it.
            let home = match found {
                Some(r) => String::from_utf8_lossy(&r.data).into_owned(),
                None => sid.to_owned(),
            };
            if home != sid {
                if let Some(other) = self.store.get(&keys::source(&home)).await? {
                    let other: SourceRecord = decode(&other, "source record")?;
                    touched.insert(other.person);
                }
            }
            let au = au.to_owned();
            match change {
                DoseChange::Upsert { mut dose, .. } => {
                    dose.source = home.clone();
                    dose.dose_key = key;
                    writes.push(Write::Put {
                        item: Item::new(keys::source_dose(&home, &dose.dose_key), encode(&dose)?),
                        cond: Condition::None,
                    });
                    writes.push(Write::Put {
                        item: Item::new(
                            keys::dose_ref(&dose.au, &dose.dose_key),
                            home.into_bytes(),
                        ),
                        cond: Condition::None,
                    });
                }
                DoseChange::Delete { .. } => {
                    writes.push(Write::Delete {
                        key: keys::source_dose(&home, &key),
                        cond: Condition::None,
                    });
                    writes.push(Write::Delete {
                        key: keys::dose_ref(&au, &key),
                        cond: Condition::None,
                    });
                }
            }
        }
        touched.remove(person);
        // The facts bump rides in the last transaction, after every dose.
        let mut chunks: Vec<Vec<Write>> = writes
            .chunks(MAX_WRITES - touched.len() - 1)
            .map(<[Write]>::to_vec)
            .collect();
        for p in touched
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(person))
        {
            let item = self
                .store
                .get(&keys::person(p))
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("missing person {p}")))?;
            let mut value: Person = decode(&item, "person")?;
            value.facts += 1;
            if let Some(last) = chunks.last_mut() {
                last.push(Write::Put {
                    item: person_item(&value)?,
                    cond: Condition::Version(item.version),
                });
            }
        }
        for chunk in chunks {
            self.store.transact(chunk).await?;
        }
        Ok(touched.into_iter().collect())
    }

    /// Rebuilds the consolidated history; fails with a conflict (retried) if
    /// the person's doses changed while it read them.
    async fn rebuild_history(&self, person: &str) -> Result<(), StoreError> {
        let Some(profile) = self.store.get(&keys::person(person)).await? else {
            return Ok(());
        };
        let mut reported: Vec<SourceDose> = Vec::new();
        for sid in self.sources_of(person).await? {
            for item in self
                .query_all(&format!("SRC#{sid}"), keys::DOSE_PREFIX)
                .await?
            {
                reported.push(decode(&item, "dose")?);
            }
        }
        let history = consolidate(self.groups, &self.vaccination, &reported);
        let mut stale: BTreeMap<String, Item> = self
            .query_all(&keys::person_pk(person), keys::IMMUNIZATION_PREFIX)
            .await?
            .into_iter()
            .map(|i| {
                (
                    i.key
                        .sk
                        .trim_start_matches(keys::IMMUNIZATION_PREFIX)
                        .to_owned(),
                    i,
                )
            })
            .collect();
        let mut writes = Vec::new();
        for imm in &history {
            let data = encode(imm)?;
            match stale.remove(&imm.id) {
                Some(old) if old.data == data => {}
                _ => writes.push(Write::Put {
                    item: Item::new(keys::person_immunization(person, &imm.id), data),
                    cond: Condition::None,
                }),
            }
        }
        for id in stale.keys() {
            writes.push(Write::Delete {
                key: keys::person_immunization(person, id),
                cond: Condition::None,
            });
        }
        for chunk in writes.chunks(MAX_WRITES - 1) {
            let mut chunk = chunk.to_vec();
            chunk.push(Write::Check {
                key: keys::person(person),
                cond: Condition::Version(profile.version),
            });
            self.store.transact(chunk).await?;
        }
        Ok(())
    }

    /// A reviewer's link edit: moves a source record to another person, or
    /// to a new person of its own (`to: None`, an unmerge). The link becomes
    /// manual, so the matcher never decides it again; both persons'
    /// demographics and histories are recomputed from their sources. A
    /// person left without sources is kept as merged into the target.
    pub async fn relink(
        &self,
        source_id: &str,
        to: Option<&str>,
        now_ms: i64,
    ) -> Result<String, RelinkError> {
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.try_relink(source_id, to, now_ms).await {
                Err(RelinkError::Store(e)) if is_conflict(&e) => last = Some(e),
                Ok(person) => {
                    // Histories follow the sources; a conflict here only means
                    // another writer rebuilt meanwhile, so retry the rebuild.
                    let source = self
                        .source(source_id)
                        .await?
                        .ok_or(RelinkError::UnknownSource)?;
                    for p in [person.as_str(), source.link_from.as_deref().unwrap_or("")] {
                        if !p.is_empty() {
                            self.retry(|| self.rebuild_history(p)).await?;
                        }
                    }
                    return Ok(person);
                }
                Err(e) => return Err(e),
            }
        }
        Err(RelinkError::Store(
            last.unwrap_or(StoreError::Other("retries exhausted".into())),
        ))
    }

    async fn try_relink(
        &self,
        source_id: &str,
        to: Option<&str>,
        now_ms: i64,
    ) -> Result<String, RelinkError> {
        let item = self
            .store
            .get(&keys::source(source_id))
            .await?
            .ok_or(RelinkError::UnknownSource)?;
        let mut source: SourceRecord = decode(&item, "source record")?;
        let from = source.person.clone();
        if to == Some(from.as_str()) {
            return Ok(from);
        }
        let mut writes = Vec::new();
        let target_id = match to {
            Some(pid) => {
                let t = self
                    .store
                    .get(&keys::person(pid))
                    .await?
                    .ok_or(RelinkError::UnknownPerson)?;
                let mut target: Person = decode(&t, "person")?;
                if target.status == PersonStatus::Merged {
                    return Err(RelinkError::MergedPerson(
                        target.merged_into.unwrap_or_default(),
                    ));
                }
                target.demographics.merge(&source.demographics);
                target.updated_at = now_ms;
                writes.push(Write::Put {
                    item: person_item(&target)?,
                    cond: Condition::Version(t.version),
                });
                pid.to_owned()
            }
            None => {
                let pid = uuid::Uuid::now_v7().simple().to_string();
                let person = Person {
                    id: pid.clone(),
                    status: PersonStatus::Active,
                    certainty: Grade::Certain,
                    demographics: source.demographics.clone(),
                    notes: vec!["separated by a reviewer".into()],
                    created_at: now_ms,
                    updated_at: now_ms,
                    facts: 0,
                    merged_into: None,
                };
                writes.push(Write::Put {
                    item: person_item(&person)?,
                    cond: Condition::Absent,
                });
                pid
            }
        };
        // The person left behind: demographics from its remaining sources.
        let old = self
            .store
            .get(&keys::person(&from))
            .await?
            .ok_or(RelinkError::UnknownPerson)?;
        let mut left: Person = decode(&old, "person")?;
        let mut remaining = Demographics::default();
        let mut any = false;
        for other in self
            .sources_of(&from)
            .await?
            .iter()
            .filter(|s| *s != source_id)
        {
            if let Some(o) = self.source(other).await? {
                remaining.merge(&o.demographics);
                any = true;
            }
        }
        left.demographics = remaining;
        left.updated_at = now_ms;
        if !any {
            left.status = PersonStatus::Merged;
            left.merged_into = Some(target_id.clone());
        }
        writes.push(Write::Put {
            item: person_item(&left)?,
            cond: Condition::Version(old.version),
        });
        writes.push(Write::Delete {
            key: keys::person_source(&from, source_id),
            cond: Condition::None,
        });
        writes.push(Write::Put {
            item: Item::new(keys::person_source(&target_id, source_id), Vec::new()),
            cond: Condition::None,
        });
        writes.push(self.view_put(source_id, &target_id, &source.match_record)?);
        for key in source.index_keys.iter().filter(|k| !k.starts_with("J:")) {
            writes.push(self.bump_head(key).await?);
        }
        source.person = target_id.clone();
        source.link_from = Some(from);
        source.link = Link {
            how: LinkHow::Manual,
            grade: Grade::Certain,
            score: None,
            explanation: None,
            config: self.matcher.config().version.clone(),
            at: now_ms,
            resolved: None,
        };
        source.updated_at = now_ms;
        writes.push(Write::Put {
            item: Item::new(keys::source(source_id), encode(&source)?),
            cond: Condition::Version(item.version),
        });
        if writes.len() > MAX_WRITES {
            return Err(RelinkError::Store(StoreError::TooManyWrites {
                count: writes.len(),
                limit: MAX_WRITES,
            }));
        }
        self.store.transact(writes).await?;
        Ok(target_id)
    }

    /// A reviewer's verdict that a provisional person is nobody else: it
    /// becomes active and its potential-duplicate flags (both ways) go.
    pub async fn confirm(&self, person_id: &str, now_ms: i64) -> Result<(), RelinkError> {
        let item = self
            .store
            .get(&keys::person(person_id))
            .await?
            .ok_or(RelinkError::UnknownPerson)?;
        let mut person: Person = decode(&item, "person")?;
        if person.status == PersonStatus::Merged {
            return Err(RelinkError::MergedPerson(
                person.merged_into.unwrap_or_default(),
            ));
        }
        person.status = PersonStatus::Active;
        person.notes.push("confirmed distinct by a reviewer".into());
        person.updated_at = now_ms;
        let mut writes = vec![Write::Put {
            item: person_item(&person)?,
            cond: Condition::Version(item.version),
        }];
        for dup in self
            .potential_duplicates(person_id)
            .await?
            .iter()
            .take(MAX_WRITES / 2 - 1)
        {
            writes.push(Write::Delete {
                key: keys::potential_duplicate(person_id, &dup.other),
                cond: Condition::None,
            });
            writes.push(Write::Delete {
                key: keys::potential_duplicate(&dup.other, person_id),
                cond: Condition::None,
            });
        }
        self.store.transact(writes).await?;
        Ok(())
    }
}
