//! The read side of the registry's persons: a person, their source records
//! and links, their consolidated history, their potential duplicates and
//! the review queue, read from the store alone (no matcher). Readers that
//! render rather than match (exports, the read API) also get views that
//! decode only what a FHIR resource is made of, since a source record and a
//! dose's report list are mostly matching and provenance material.

use std::sync::Arc;

use store::{Index, Item, ItemStore, QueryOpts, SkRange, StoreError};

use super::doses::Immunization;
use super::items::{Person, PotentialDuplicate, SourceRecord};
use crate::json::decode;
use crate::keys;

/// Reads persons; cheap to clone (one store handle).
#[derive(Clone)]
pub struct Persons {
    store: Arc<dyn ItemStore>,
}

impl std::fmt::Debug for Persons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persons").finish_non_exhaustive()
    }
}

/// A person's partition, read in one query: the profile, the linked source
/// ids and (when asked for) the consolidated history's items, decoded on
/// demand by [`PersonRecord::history`].
#[derive(Clone, Debug)]
pub struct PersonRecord {
    pub person: Person,
    pub sources: Vec<String>,
    immunizations: Vec<Item>,
}

impl PersonRecord {
    /// The consolidated history, in key order.
    pub fn history(&self) -> Result<Vec<Immunization>, StoreError> {
        self.immunizations.iter().map(immunization_of).collect()
    }
}

/// A source record's sender and PID-3 list, nothing else.
#[derive(serde::Deserialize)]
struct SourceIdentifiers {
    au: String,
    record: RecordIdentifiers,
}

#[derive(serde::Deserialize)]
struct RecordIdentifiers {
    #[serde(default)]
    identifiers: Vec<matching::RecordIdentifier>,
}

/// Persons read per page of the review queue.
const REVIEW_QUEUE_PAGE: u32 = 200;

/// Part of the review queue: see [`Persons::review_queue_slice`].
#[derive(Clone, Debug)]
pub struct ReviewQueueSlice {
    /// The oldest waiting persons that pass the filter, oldest first.
    pub persons: Vec<Person>,
    /// How many waiting persons pass the filter, all told.
    pub waiting: u64,
}

fn immunization_of(item: &Item) -> Result<Immunization, StoreError> {
    decode::<Immunization>(item, "immunization")
}

impl Persons {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Persons { store }
    }

    pub fn store(&self) -> &dyn ItemStore {
        self.store.as_ref()
    }

    pub fn store_arc(&self) -> Arc<dyn ItemStore> {
        self.store.clone()
    }

    pub(crate) async fn query_all(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let mut opts = QueryOpts::new(Index::Table, SkRange::Prefix(prefix.to_owned()));
            opts.cursor = cursor;
            let page = self.store.query(pk, opts).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The person's sources (ids).
    pub async fn sources_of(&self, person: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query_all(&keys::person_pk(person), keys::PERSON_SOURCE_PREFIX)
            .await?
            .into_iter()
            .map(|i| {
                i.key
                    .sk
                    .trim_start_matches(keys::PERSON_SOURCE_PREFIX)
                    .to_owned()
            })
            .collect())
    }

    /// Whether the Authorized User reported this person (has a record linked).
    pub async fn reported_by(&self, person: &str, au: &str) -> Result<bool, StoreError> {
        let sources = self.sources_of(person).await?;
        self.reported_among(&sources, au).await
    }

    /// Provisional persons waiting for review, oldest first.
    pub async fn review_queue(&self, limit: u32) -> Result<Vec<Person>, StoreError> {
        let mut opts = QueryOpts::new(Index::Gsi1, SkRange::All);
        opts.limit = limit.max(1);
        let page = self.store.query(keys::REVIEW_QUEUE, opts).await?;
        page.items.iter().map(|i| decode(i, "person")).collect()
    }

    /// The oldest provisional persons waiting for review, at most `limit`,
    /// with a source record from `au` when one is named, and how many wait
    /// in all (with that filter).
    ///
    /// Nothing indexes persons by the Authorized Users behind their
    /// sources (source ids are hashes, and a person's sources can come from
    /// several users, while an item has one GSI key per index), so the
    /// filter pages through the whole queue (GSI1 `REVIEW`) and reads each
    /// waiting person's sources: one pass over the queue, never over every
    /// person. The queue is what reviewers have not decided yet (hundreds
    /// to a few thousand); the count needs the whole pass either way.
    pub async fn review_queue_slice(
        &self,
        au: Option<&str>,
        limit: u32,
    ) -> Result<ReviewQueueSlice, StoreError> {
        let mut slice = ReviewQueueSlice {
            persons: Vec::new(),
            waiting: 0,
        };
        let mut cursor = None;
        loop {
            let opts = QueryOpts::new(Index::Gsi1, SkRange::All)
                .limit(REVIEW_QUEUE_PAGE)
                .after(cursor);
            let page = self.store.query(keys::REVIEW_QUEUE, opts).await?;
            for item in &page.items {
                if let Some(au) = au {
                    // The person's id is its partition's: no need to decode
                    // a profile that will only be counted.
                    let id = item
                        .key
                        .pk
                        .strip_prefix(keys::person_pk("").as_str())
                        .ok_or_else(|| {
                            StoreError::Corrupt("a review queue entry is not a person".into())
                        })?;
                    if !self.reported_by(id, au).await? {
                        continue;
                    }
                }
                slice.waiting += 1;
                if slice.persons.len() < limit as usize {
                    slice.persons.push(decode(item, "person")?);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(slice),
            }
        }
    }

    pub async fn person(&self, id: &str) -> Result<Option<Person>, StoreError> {
        match self.store.get(&keys::person(id)).await? {
            Some(item) => decode(&item, "person").map(Some),
            None => Ok(None),
        }
    }

    pub async fn source(&self, id: &str) -> Result<Option<SourceRecord>, StoreError> {
        match self.store.get(&keys::source(id)).await? {
            Some(item) => decode(&item, "source record").map(Some),
            None => Ok(None),
        }
    }

    /// The person's consolidated immunization history.
    pub async fn history(&self, person: &str) -> Result<Vec<Immunization>, StoreError> {
        self.decode_all(person, keys::IMMUNIZATION_PREFIX, "immunization")
            .await
    }

    /// Persons flagged as potential duplicates of this one.
    pub async fn potential_duplicates(
        &self,
        person: &str,
    ) -> Result<Vec<PotentialDuplicate>, StoreError> {
        self.decode_all(person, "DUP#", "potential duplicate").await
    }

    /// The items of one family in the person's partition, decoded.
    async fn decode_all<T: serde::de::DeserializeOwned>(
        &self,
        person: &str,
        prefix: &str,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query_all(&keys::person_pk(person), prefix)
            .await?
            .iter()
            .map(|i| decode(i, what))
            .collect()
    }

    /// The person's partition in one query instead of a read per family;
    /// `None` when there is no profile.
    pub async fn person_record(
        &self,
        id: &str,
        with_history: bool,
    ) -> Result<Option<PersonRecord>, StoreError> {
        let mut person = None;
        let mut sources = Vec::new();
        let mut immunizations = Vec::new();
        for item in self.query_all(&keys::person_pk(id), "").await? {
            let sk = item.key.sk.as_str();
            if sk == keys::person(id).sk {
                person = Some(decode::<Person>(&item, "person")?);
            } else if let Some(sid) = sk.strip_prefix(keys::PERSON_SOURCE_PREFIX) {
                sources.push(sid.to_owned());
            } else if with_history && sk.starts_with(keys::IMMUNIZATION_PREFIX) {
                immunizations.push(item);
            }
        }
        Ok(person.map(|person| PersonRecord {
            person,
            sources,
            immunizations,
        }))
    }

    /// The identifiers an Authorized User itself gave for the person (its
    /// records' PID-3), never another sender's.
    pub async fn identifiers_from(
        &self,
        person: &str,
        au: &str,
    ) -> Result<Vec<iz::view::Identifier>, StoreError> {
        let sources = self.sources_of(person).await?;
        self.identifiers_among(&sources, au).await
    }

    /// [`Self::identifiers_from`] over source ids already read.
    pub async fn identifiers_among(
        &self,
        sources: &[String],
        au: &str,
    ) -> Result<Vec<iz::view::Identifier>, StoreError> {
        let mut identifiers = Vec::new();
        for sid in sources {
            let Some(item) = self.store.get(&keys::source(sid)).await? else {
                continue;
            };
            let source: SourceIdentifiers = decode(&item, "source record")?;
            if source.au != au {
                continue;
            }
            for id in &source.record.identifiers {
                let identifier = iz::view::Identifier {
                    id: id.value.clone(),
                    authority: Some(id.system.clone()).filter(|s| !s.is_empty()),
                    type_code: Some(id.kind.clone()).filter(|s| !s.is_empty()),
                };
                if !identifiers.contains(&identifier) {
                    identifiers.push(identifier);
                }
            }
        }
        Ok(identifiers)
    }

    /// Whether one of these source records was reported by the Authorized
    /// User.
    pub async fn reported_among(&self, sources: &[String], au: &str) -> Result<bool, StoreError> {
        for sid in sources {
            if let Some(item) = self.store.get(&keys::source(sid)).await? {
                if decode::<SourceIdentifiers>(&item, "source record")?.au == au {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}
