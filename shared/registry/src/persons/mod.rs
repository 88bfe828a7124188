//! Persons: the registry's consolidated patients as stored, and how to read
//! them. Source records (one per sender + MRN) are linked to persons; a
//! person has demographics merged from its sources and a consolidated,
//! deduplicated history. This module only reads ([`Persons`]) and holds the
//! item types and the pure rules (demographics, doses into vaccination
//! events, a VXU's source record); writing persons is the matcher's
//! (`patients`).

pub mod demographics;
pub mod doses;
pub(crate) mod items;
mod reading;
pub mod source;

pub use demographics::{Demographics, Stamped};
pub use doses::{BestRecord, Immunization, SourceDose, VaccinationRules, VaccineGroups};
pub use items::{
    Link, LinkHow, MatchView, MatchedMessage, Person, PersonStatus, PotentialDuplicate,
    SourceRecord,
};
pub use reading::{PersonRecord, Persons, ReviewQueueSlice};
