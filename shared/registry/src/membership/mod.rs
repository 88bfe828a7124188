//! Group membership from V2 traffic: each Authorized User has one
//! persistent, enumerated Group, and the jurisdiction's policy decides which
//! of its VXUs, QBPs and FHIR `$match` requests add the patient to it; the
//! Authorized User may also add (on a relationship the registry holds) and
//! remove members itself (`client`).
//!
//! Membership follows the registry's facts, read fresh at each event: a
//! message matched, a query answered, a record moved between persons by a
//! reviewer, a provisional person confirmed. Events are only triggers, so
//! replays, duplicates and out-of-order delivery end in the same state.

mod apply;
mod client;
mod events;
mod groups;
mod onboarding;
mod policy;

pub use apply::{Membership, Outcome};
pub use client::{ClientAdd, ClientRemove, MAX_ATTESTATION};
pub use events::{change_event, membership_event, MembershipEvent};
pub use groups::{
    create_group, Added, Evidence, EvidenceKind, GroupRecord, Groups, Member, PersonGroup,
};
pub use onboarding::onboard;
pub use policy::{
    Association, Certainty, JurisdictionPolicy, MinimumCertainty, PossibleMatches,
    RspGroupIdentifier, RspPatientIdentifier, DEFAULT_POLICY,
};
