//! Patients: every accepted VXU ends as one person with a consolidated,
//! deduplicated history. Source records (one per sender + MRN) are linked
//! to persons; merges and unmerges are link edits; a manual link is never
//! overridden by the algorithm.

pub mod count;
pub mod demographics;
pub mod doses;
pub mod events;
mod items;
mod linking;
mod reading;
mod resolving;
pub mod source;

pub use demographics::{Demographics, Stamped};
pub use doses::{BestRecord, Immunization, SourceDose, VaccinationRules, VaccineGroups};
pub use items::{
    Link, LinkHow, MatchView, MatchedMessage, Person, PersonStatus, PotentialDuplicate,
    SourceRecord,
};
pub use linking::{Found, MatchError, Matched, PatientMatching, RelinkError};
pub use reading::PersonRecord;
