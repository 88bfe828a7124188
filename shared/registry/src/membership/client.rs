//! Client-managed membership (the Bulk Retrieval of Public Health Data
//! guide's operations, in the shape of Da Vinci Member Attribution's
//! `Group/$member-add` and `$member-remove`): an Authorized User adds a
//! patient to its own Group, removes one, or resets the Group.
//!
//! An add needs a relationship the registry holds between this Authorized
//! User and the patient, as the jurisdiction's policy counts them (a VXU it
//! sent, a query or `$match` that identified the patient), or, where the
//! policy allows attestation, the client's own statement of one. Every add
//! and remove keeps its provenance as the V2 adds do: what, when, under
//! which policy, on what basis.

use store::StoreError;

use super::apply::{Membership, Outcome};
use super::groups::EvidenceKind;
use super::policy::Certainty;

/// Longest attestation kept in a membership's provenance.
pub const MAX_ATTESTATION: usize = 200;

/// What a client's add did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAdd {
    /// Newly a member (or a member again); under single association the
    /// patient left these Groups.
    Added { left: Vec<String> },
    /// Already a member: only the newest evidence was recorded.
    AlreadyMember,
    /// A newer relationship with another Group stands (single
    /// association), or the patient was removed after this request was
    /// made: nothing changed.
    Stale,
    /// No relationship the policy counts, and no attestation it allows.
    NoRelationship,
    /// The Authorized User has no Group (its kind gets none, or it is gone).
    NoGroup,
    /// The person is no longer in the registry (merged chains end nowhere).
    UnknownPerson,
}

/// What a client's remove did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRemove {
    Removed,
    /// The patient had been a member and already left.
    AlreadyRemoved,
    /// The patient was never in this Group.
    NotAMember,
    NoGroup,
}

impl Membership {
    /// Adds `person` (followed through merges) to `au`'s Group at the
    /// client's request `request` (its id, kept as the evidence's message),
    /// on the relationship the registry holds or, when the policy allows,
    /// on `attestation`. Safe to repeat.
    pub async fn add_by_client(
        &self,
        au: &str,
        person: &str,
        attestation: Option<&str>,
        request: &str,
        at: i64,
    ) -> Result<ClientAdd, StoreError> {
        let Some(person) = self.current_person(person).await? else {
            return Ok(ClientAdd::UnknownPerson);
        };
        let basis = match self.relationship(&person.id, au).await? {
            Some(kind) => match kind {
                EvidenceKind::Vxu => "a VXU from this Authorized User".to_owned(),
                EvidenceKind::FhirMatch => {
                    "a FHIR $match by this Authorized User answered with this patient".to_owned()
                }
                _ => "a query by this Authorized User answered with this patient".to_owned(),
            },
            None => match attestation.map(str::trim).filter(|a| !a.is_empty()) {
                Some(text) if self.policy().attestation => {
                    let text: String = text.chars().take(MAX_ATTESTATION).collect();
                    format!("attested by the Authorized User: {text}")
                }
                _ => return Ok(ClientAdd::NoRelationship),
            },
        };
        let mut evidence = self.evidence(
            EvidenceKind::MemberAdd,
            request,
            Certainty::Certain,
            at,
            None,
        );
        evidence.basis = Some(basis);
        Ok(match self.add(au, &person.id, &evidence).await? {
            Outcome::Added { left, .. } => ClientAdd::Added { left },
            Outcome::AlreadyMember { .. } => ClientAdd::AlreadyMember,
            Outcome::Stale { .. } => ClientAdd::Stale,
            _ => ClientAdd::NoGroup,
        })
    }

    /// Removes `person` from `group` (the caller's own, checked by the
    /// caller) at the client's request. Safe to repeat.
    pub async fn remove_by_client(
        &self,
        group: &str,
        person: &str,
        at: i64,
        because: &str,
    ) -> Result<ClientRemove, StoreError> {
        let Some(member) = self.groups().member(group, person).await? else {
            return Ok(ClientRemove::NotAMember);
        };
        if !member.active {
            return Ok(ClientRemove::AlreadyRemoved);
        }
        Ok(if self.groups().remove(group, person, at, because).await? {
            ClientRemove::Removed
        } else {
            ClientRemove::AlreadyRemoved
        })
    }
}
