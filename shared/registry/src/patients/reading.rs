//! Read-side views of a person for readers that render rather than match
//! (exports, the read API): each decodes only what a FHIR resource is made
//! of, since a source record and a dose's report list are mostly matching
//! and provenance material.

use store::{Item, StoreError};

use super::doses::Immunization;
use super::items::Person;
use super::linking::PatientMatching;
use crate::json::decode;
use crate::keys;

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

fn immunization_of(item: &Item) -> Result<Immunization, StoreError> {
    decode::<Immunization>(item, "immunization")
}

impl PatientMatching {
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
