//! Patient matching: every accepted VXU ends as one person with a
//! consolidated, deduplicated history. The matcher ([`PatientMatching`])
//! links each source record (one per sender + MRN) to a person; merges and
//! unmerges are link edits; a manual link is never overridden by the
//! algorithm. Reading persons is [`crate::persons`]; its types are
//! re-exported here under their old paths.

pub mod count;
pub mod decisions;
pub mod events;
mod linking;
mod resolving;

pub use crate::persons::{
    demographics, doses, source, BestRecord, Demographics, Immunization, Link, LinkHow, MatchView,
    MatchedMessage, Person, PersonRecord, PersonStatus, Persons, PotentialDuplicate, SourceDose,
    SourceRecord, Stamped, VaccinationRules, VaccineGroups,
};
pub use linking::{Found, MatchError, Matched, PatientMatching, RelinkError};
