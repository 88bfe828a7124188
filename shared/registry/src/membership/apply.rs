//! The membership use case: one event in, the Groups brought in line with
//! the registry's current facts and the jurisdiction's policy.

use std::sync::Arc;

use matching::Grade;
use store::StoreError;

use super::events::MembershipEvent;
use super::groups::{Added, Evidence, EvidenceKind, Groups};
use super::policy::{Certainty, JurisdictionPolicy};
use crate::authorized_user::{AuError, AuthorizedUser, AuthorizedUsers};
use crate::json::decode;
use crate::keys;
use crate::message::QueryRecord;
use crate::persons::{LinkHow, MatchedMessage, Person, PersonStatus, Persons, SourceRecord};

/// Merge chains longer than this are corrupt, not followed forever.
const MAX_MERGE_HOPS: usize = 16;

/// What one event did, for the log (ids only, never PHI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Added {
        group: String,
        person: String,
        left: Vec<String>,
    },
    AlreadyMember {
        group: String,
        person: String,
    },
    Removed {
        group: String,
        person: String,
    },
    /// Nothing to do, and why (policy, grade, unknown records…).
    Skipped(&'static str),
    Stale {
        group: String,
        person: String,
    },
}

#[derive(Clone)]
pub struct Membership {
    patients: Persons,
    users: AuthorizedUsers,
    groups: Groups,
    policy: Arc<JurisdictionPolicy>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("policy", &self.policy.version)
            .finish_non_exhaustive()
    }
}

fn au_error(e: AuError) -> StoreError {
    match e {
        AuError::Store(e) => e,
        other => StoreError::Other(other.to_string()),
    }
}

/// How sure the registry is that this source is this person's.
fn certainty_of(source: &SourceRecord, person: &Person) -> Certainty {
    if source.link.how == LinkHow::Manual {
        return Certainty::Manual;
    }
    match (person.status, source.link.grade) {
        (PersonStatus::Provisional, _) => Certainty::Possible,
        (_, Grade::Certain) => Certainty::Certain,
        // Kept apart after a possible match, then confirmed by a reviewer.
        (_, Grade::Possible) => Certainty::Manual,
        (_, Grade::None) => Certainty::New,
    }
}

impl Membership {
    pub fn new(patients: Persons, policy: Arc<JurisdictionPolicy>) -> Self {
        let store = patients.store_arc();
        Membership {
            patients,
            users: AuthorizedUsers::new(store.clone()),
            groups: Groups::new(store),
            policy,
        }
    }

    pub fn policy(&self) -> &JurisdictionPolicy {
        &self.policy
    }

    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Applies one event. Safe to repeat; errors are storage trouble worth
    /// retrying.
    pub async fn apply(&self, event: &MembershipEvent) -> Result<Vec<Outcome>, StoreError> {
        match event {
            MembershipEvent::Matched { message_id } => self.on_matched(message_id).await,
            MembershipEvent::Queried { key } => self.on_queried(key).await,
            MembershipEvent::SourceMoved { source } => self.on_source_moved(source).await,
            MembershipEvent::PersonConfirmed { person } => self.on_confirmed(person).await,
        }
    }

    async fn on_matched(&self, message_id: &str) -> Result<Vec<Outcome>, StoreError> {
        let Some(item) = self
            .patients
            .store()
            .get(&keys::matched(message_id))
            .await?
        else {
            return Ok(vec![Outcome::Skipped("no matched-message record")]);
        };
        let mark: MatchedMessage = decode(&item, "matched message")?;
        let Some(source) = self.patients.source(&mark.source).await? else {
            return Ok(vec![Outcome::Skipped("source record not found")]);
        };
        Ok(vec![
            self.add_for_source(&source, EvidenceKind::Vxu, message_id, mark.at)
                .await?,
        ])
    }

    /// Adds the source's person to its Authorized User's Group, if the
    /// policy admits a VXU relationship at the link's certainty.
    async fn add_for_source(
        &self,
        source: &SourceRecord,
        kind: EvidenceKind,
        message: &str,
        at: i64,
    ) -> Result<Outcome, StoreError> {
        if !self.policy.vxu {
            return Ok(Outcome::Skipped("policy: VXUs create no relationship"));
        }
        let Some(person) = self.current_person(&source.person).await? else {
            return Ok(Outcome::Skipped("person not found"));
        };
        let certainty = certainty_of(source, &person);
        if !self.policy.admits(certainty) {
            return Ok(Outcome::Skipped("policy: match certainty too low"));
        }
        let evidence = self.evidence(kind, message, certainty, at, None);
        self.add(&source.au, &person.id, &evidence).await
    }

    pub(super) async fn add(
        &self,
        au: &str,
        person: &str,
        evidence: &Evidence,
    ) -> Result<Outcome, StoreError> {
        let Some(group) = self.group_of(au, evidence.at).await? else {
            return Ok(Outcome::Skipped(
                "policy: this kind of Authorized User has no Group",
            ));
        };
        let (group, person) = (group, person.to_owned());
        Ok(
            match self
                .groups
                .add(&group, &person, evidence, self.policy.association)
                .await?
            {
                Added::Joined { left } => Outcome::Added {
                    group,
                    person,
                    left,
                },
                Added::AlreadyMember => Outcome::AlreadyMember { group, person },
                Added::Stale => Outcome::Stale { group, person },
            },
        )
    }

    /// The Authorized User's Group, created on first use when the policy
    /// gives its kind one; `None` when it does not.
    async fn group_of(&self, au: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        let Some(user): Option<AuthorizedUser> = self.users.get(au).await.map_err(au_error)? else {
            return Ok(None);
        };
        if !self.policy.gives_group(user.kind) {
            return Ok(None);
        }
        match user.group {
            Some(g) => Ok(Some(g)),
            None => self
                .groups
                .ensure_group(&self.users, au, now_ms)
                .await
                .map(Some)
                .map_err(au_error),
        }
    }

    pub(super) fn evidence(
        &self,
        kind: EvidenceKind,
        message: &str,
        certainty: Certainty,
        at: i64,
        from_person: Option<String>,
    ) -> Evidence {
        Evidence {
            kind,
            message: message.to_owned(),
            certainty,
            at,
            policy: self.policy.version.clone(),
            from_person,
            basis: None,
        }
    }

    /// Whether a query of this profile (a Z34/Z44, or a FHIR `$match`)
    /// makes a relationship under the policy.
    fn query_counts(&self, profile: &str) -> bool {
        if profile == crate::message::MATCH_PROFILE {
            self.policy.fhir_match
        } else {
            self.policy.qbp
        }
    }

    /// The person now standing for `id`: merged persons are followed to
    /// the survivor.
    pub async fn current_person(&self, id: &str) -> Result<Option<Person>, StoreError> {
        let mut id = id.to_owned();
        for _ in 0..MAX_MERGE_HOPS {
            let Some(p) = self.patients.person(&id).await? else {
                return Ok(None);
            };
            match (&p.status, &p.merged_into) {
                (PersonStatus::Merged, Some(next)) => id = next.clone(),
                _ => return Ok(Some(p)),
            }
        }
        Err(StoreError::Corrupt(format!(
            "person {id}: merge chain longer than {MAX_MERGE_HOPS}"
        )))
    }

    async fn on_queried(&self, key: &store::Key) -> Result<Vec<Outcome>, StoreError> {
        if !self.policy.qbp && !self.policy.fhir_match {
            return Ok(vec![Outcome::Skipped(
                "policy: queries create no relationship",
            )]);
        }
        let Some(item) = self.patients.store().get(key).await? else {
            return Ok(vec![Outcome::Skipped("query record not found")]);
        };
        let q: QueryRecord = decode(&item, "query record")?;
        if !self.query_counts(&q.profile) {
            return Ok(vec![Outcome::Skipped(
                "policy: queries create no relationship",
            )]);
        }
        // Only an answer that identified one patient with certainty (Z32,
        // or a $match's one certain match): a candidate list (Z31) is
        // nobody's relationship.
        let [person] = q.persons.as_slice() else {
            return Ok(vec![Outcome::Skipped("query did not identify one patient")]);
        };
        if q.status != "OK" || q.grade != Grade::Certain {
            return Ok(vec![Outcome::Skipped("query did not identify one patient")]);
        }
        let Some(p) = self.current_person(person).await? else {
            return Ok(vec![Outcome::Skipped("person not found")]);
        };
        let kind = if q.profile == crate::message::MATCH_PROFILE {
            EvidenceKind::FhirMatch
        } else {
            EvidenceKind::Qbp
        };
        let evidence = self.evidence(kind, &q.control_id, Certainty::Certain, q.at, None);
        Ok(vec![self.add(&q.au, &p.id, &evidence).await?])
    }

    /// A reviewer moved a source: its new person joins the sender's Group;
    /// the person it left either was merged away (its memberships follow
    /// the survivor) or was split (it keeps the sender's Group only if other
    /// evidence for it remains).
    async fn on_source_moved(&self, source_id: &str) -> Result<Vec<Outcome>, StoreError> {
        let Some(source) = self.patients.source(source_id).await? else {
            return Ok(vec![Outcome::Skipped("source record not found")]);
        };
        let at = source.link.at;
        let mut out = vec![
            self.add_for_source(&source, EvidenceKind::Relink, source_id, at)
                .await?,
        ];
        let Some(from) = source.link_from.as_deref() else {
            return Ok(out);
        };
        let Some(to) = self.current_person(&source.person).await? else {
            return Ok(out);
        };
        let Some(left) = self.patients.person(from).await? else {
            return Ok(out);
        };
        if left.id == to.id {
            return Ok(out);
        }
        if left.status == PersonStatus::Merged {
            for pg in self.groups.of_person(&left.id).await? {
                if !pg.active {
                    continue;
                }
                let certainty = match self.groups.member(&pg.group, &left.id).await? {
                    Some(m) => m.latest.certainty,
                    None => Certainty::Manual,
                };
                let evidence = self.evidence(
                    EvidenceKind::Merge,
                    source_id,
                    certainty,
                    at,
                    Some(left.id.clone()),
                );
                let (group, person) = (pg.group.clone(), to.id.clone());
                out.push(
                    match self
                        .groups
                        .add(&pg.group, &to.id, &evidence, self.policy.association)
                        .await?
                    {
                        Added::Joined { left } => Outcome::Added {
                            group,
                            person,
                            left,
                        },
                        Added::AlreadyMember => Outcome::AlreadyMember { group, person },
                        Added::Stale => Outcome::Stale { group, person },
                    },
                );
                let because = format!("merged into person {}", to.id);
                if self
                    .groups
                    .remove(&pg.group, &left.id, at, &because)
                    .await?
                {
                    out.push(Outcome::Removed {
                        group: pg.group,
                        person: left.id.clone(),
                    });
                }
            }
        } else if let Some(group) = self.existing_group(&source.au).await? {
            if !self.has_evidence(&left.id, &source.au).await? {
                let because = format!(
                    "its record from this Authorized User was moved to person {}",
                    to.id
                );
                if self.groups.remove(&group, &left.id, at, &because).await? {
                    out.push(Outcome::Removed {
                        group,
                        person: left.id.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn existing_group(&self, au: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .users
            .get(au)
            .await
            .map_err(au_error)?
            .and_then(|u| u.group))
    }

    /// Whether anything still ties the person to the Authorized User: a
    /// record it reported, or a query it made that counts under the policy.
    async fn has_evidence(&self, person: &str, au: &str) -> Result<bool, StoreError> {
        Ok(self.relationship(person, au).await?.is_some())
    }

    /// The relationship the registry holds between the person and the
    /// Authorized User, as the policy counts them: a record it reported
    /// (VXU), else its latest query that identified the person with
    /// certainty (Z32/Z42, or a `$match`'s one certain match). `None`: no
    /// relationship (a candidate list is none).
    pub async fn relationship(
        &self,
        person: &str,
        au: &str,
    ) -> Result<Option<EvidenceKind>, StoreError> {
        if self.policy.vxu && self.patients.reported_by(person, au).await? {
            return Ok(Some(EvidenceKind::Vxu));
        }
        if !self.policy.qbp && !self.policy.fhir_match {
            return Ok(None);
        }
        let Some(item) = self
            .patients
            .store()
            .get(&keys::queried_by(person, au))
            .await?
        else {
            return Ok(None);
        };
        let q: QueryRecord = decode(&item, "query record")?;
        let identified = q.status == "OK" && q.grade == Grade::Certain && q.persons.len() == 1;
        Ok((identified && self.query_counts(&q.profile)).then_some(
            if q.profile == crate::message::MATCH_PROFILE {
                EvidenceKind::FhirMatch
            } else {
                EvidenceKind::Qbp
            },
        ))
    }

    async fn on_confirmed(&self, person: &str) -> Result<Vec<Outcome>, StoreError> {
        let mut out = Vec::new();
        for sid in self.patients.sources_of(person).await? {
            if let Some(source) = self.patients.source(&sid).await? {
                let at = source.updated_at;
                let message = source.last_message.clone();
                out.push(
                    self.add_for_source(&source, EvidenceKind::Vxu, &message, at)
                        .await?,
                );
            }
        }
        Ok(out)
    }
}
