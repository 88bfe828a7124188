//! # fhir — the FHIR R4 resources iisbulk produces
//!
//! Typed structs for exactly the resources and elements we emit: the
//! Authorized User's [`Group`], [`Patient`] and [`Immunization`] (mapped from
//! the consolidated registry, with US Core in mind), [`Organization`] for the
//! Authorized User, [`OperationOutcome`] for errors, a searchset
//! [`Bundle`], and the `$immds-forecast` answer: [`ImmunizationEvaluation`]
//! and [`ImmunizationRecommendation`] in [`Parameters`]; and the audit
//! trail's [`AuditEvent`]. Empty optional
//! elements are left out, as FHIR JSON requires (no `null`, no empty
//! arrays). Each resource serializes with its
//! `resourceType` and refuses to deserialize from another type's JSON.
//!
//! No I/O and no registry types here: `registry` maps its records onto these.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod datatypes;
mod resources;
mod systems;

pub use datatypes::*;
pub use resources::*;
pub use systems::*;
