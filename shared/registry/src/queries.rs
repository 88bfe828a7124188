//! QBP^Q11 Z34 (Request Complete Immunization History) answered from the
//! registry: Z32 for the one patient the query certainly identifies, Z31
//! candidates when only possible matches exist, Z33 NF / TM otherwise. A
//! query never creates or merges anyone, and a do-not-share patient is
//! "not found" to everyone but the Authorized Users that reported them.

use std::collections::BTreeSet;

use hl7::Message;
use iz::view::{Identifier, Patient, Value};
use iz::{
    build_rsp_z31, build_rsp_z32, build_rsp_z33, new_control_id, AckCode, Clock, IisIdentity,
    QueryStatus, Received, RspDose, RspPatient, Validation,
};
use matching::Grade;
use serde::{Deserialize, Serialize};
use store::{Condition, Item, StoreError, Write};

use std::sync::Arc;

use crate::authorized_user::AuthorizedUser;
use crate::keys;
use crate::membership::{Groups, JurisdictionPolicy};
pub use crate::patients::source::query_record;
use crate::patients::{Demographics, Immunization, PatientMatching, Person, PersonStatus, Stamped};

/// Jurisdiction settings for answering queries.
#[derive(Debug, Clone)]
pub struct QueryPolicy {
    /// Most candidates a Z31 ever lists, whatever RCP-2 asks.
    pub max_candidates: u32,
    /// Whether a do-not-share (PD1-12 = Y) patient is visible to the
    /// Authorized Users that reported them. `false`: hidden from everyone.
    pub protected_visible_to_reporters: bool,
    /// The Group rules: whether a Z32 carries the asker's Group id.
    pub jurisdiction: Arc<JurisdictionPolicy>,
}

impl Default for QueryPolicy {
    fn default() -> Self {
        QueryPolicy {
            max_candidates: 10,
            protected_visible_to_reporters: true,
            jurisdiction: Arc::new(JurisdictionPolicy::default()),
        }
    }
}

/// Who asked about whom, and what they were told (audit, and the
/// "queried by this Authorized User" signal for Group membership).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    pub au: String,
    pub control_id: String,
    pub profile: String,
    /// QAK-2: OK, NF or TM.
    pub status: String,
    pub grade: Grade,
    pub persons: Vec<String>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct Queries {
    matching: PatientMatching,
    policy: QueryPolicy,
}

/// The answer to one query.
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    pub rsp: String,
    pub record: QueryRecord,
}

impl Queries {
    pub fn new(matching: PatientMatching, policy: QueryPolicy) -> Self {
        Queries { matching, policy }
    }

    /// Answers a valid Z34 query and records it.
    pub async fn answer(
        &self,
        au: &AuthorizedUser,
        msg: &Message<'_>,
        validation: &Validation,
        me: &IisIdentity,
        clock: Clock,
    ) -> Result<QueryAnswer, StoreError> {
        let query = iz::query(msg, validation);
        let to = Received::from_message(msg);
        let control_id = new_control_id(clock);
        let record = query_record(&query);
        let found = match self
            .matching
            .find_by_chart(&au.id, &query.identifiers, &record)
            .await?
        {
            Some(found) => found,
            None => self.matching.find(&record).await?,
        };
        let mut record = QueryRecord {
            au: au.id.clone(),
            control_id: query.header.control_id.clone().unwrap_or_default(),
            profile: "Z34".into(),
            status: String::new(),
            grade: found.outcome.grade,
            persons: Vec::new(),
            at: clock.unix_seconds * 1000,
        };
        let z33 = |status: QueryStatus| {
            build_rsp_z33(msg, &to, AckCode::AA, status, &[], me, clock, &control_id)
        };

        let rsp = if let Some(pid) = &found.outcome.person {
            match self.visible_person(au, pid).await? {
                Some(person) => {
                    let mut patient = self.patient_view(au, &person).await?;
                    if let Some(id) = self.group_identifier(au, &person.id).await? {
                        patient.identifiers.push(id);
                    }
                    let mut history = self.matching.history(&person.id).await?;
                    history.sort_by_key(|i| (i.order.administered, i.id.clone()));
                    let doses: Vec<RspDose<'_>> = history
                        .iter()
                        .map(|i: &Immunization| RspDose {
                            iis_id: &i.id,
                            order: &i.order,
                        })
                        .collect();
                    record.status = "OK".into();
                    record.persons.push(person.id.clone());
                    build_rsp_z32(
                        msg,
                        &to,
                        me,
                        clock,
                        &control_id,
                        RspPatient {
                            iis_id: &person.id,
                            patient: &patient,
                        },
                        &doses,
                    )
                }
                None => {
                    record.status = "NF".into();
                    z33(QueryStatus::NotFound)
                }
            }
        } else {
            let mut persons: Vec<Person> = Vec::new();
            let mut seen = BTreeSet::new();
            // A candidate whose first name differs from the one asked for is
            // a sibling or twin sharing the household: another child, never
            // offered as a candidate for this one.
            let named = found.outcome.candidates.iter().filter(|(_, d)| {
                !d.explanation.fields.iter().any(|e| {
                    e.field == matching::Field::Given && e.level == matching::Level::Different
                })
            });
            for (pid, _) in named {
                if let Some(person) = self.visible_person(au, pid).await? {
                    if seen.insert(person.id.clone()) {
                        persons.push(person);
                    }
                }
            }
            let limit = query
                .limit
                .unwrap_or(self.policy.max_candidates)
                .min(self.policy.max_candidates) as usize;
            if persons.is_empty() {
                record.status = "NF".into();
                z33(QueryStatus::NotFound)
            } else if persons.len() > limit {
                record.status = "TM".into();
                z33(QueryStatus::TooMany)
            } else {
                let mut views = Vec::new();
                for p in &persons {
                    views.push((p.id.clone(), self.patient_view(au, p).await?));
                }
                let candidates: Vec<RspPatient<'_>> = views
                    .iter()
                    .map(|(id, p)| RspPatient {
                        iis_id: id,
                        patient: p,
                    })
                    .collect();
                record.status = "OK".into();
                record.persons = persons.iter().map(|p| p.id.clone()).collect();
                build_rsp_z31(msg, &to, me, clock, &control_id, &candidates)
            }
        };
        self.remember(&record).await?;
        Ok(QueryAnswer { rsp, record })
    }

    /// The person to answer with (following merges), or `None` when the
    /// asker may not see them.
    async fn visible_person(
        &self,
        au: &AuthorizedUser,
        pid: &str,
    ) -> Result<Option<Person>, StoreError> {
        let mut id = pid.to_owned();
        for _ in 0..8 {
            let Some(person) = self.matching.person(&id).await? else {
                return Ok(None);
            };
            if person.status == PersonStatus::Merged {
                match &person.merged_into {
                    Some(next) => {
                        id = next.clone();
                        continue;
                    }
                    None => return Ok(None),
                }
            }
            if person.demographics.protected.value == Some(true) {
                let reporter = self.policy.protected_visible_to_reporters
                    && self.matching.reported_by(&person.id, &au.id).await?;
                if !reporter {
                    return Ok(None);
                }
            }
            return Ok(Some(person));
        }
        Ok(None)
    }

    /// The asker's Group id as an extra, non-unique patient identifier,
    /// when the jurisdiction returns it and the patient is in that Group or
    /// this very query puts them there.
    async fn group_identifier(
        &self,
        au: &AuthorizedUser,
        person: &str,
    ) -> Result<Option<Identifier>, StoreError> {
        let j = &self.policy.jurisdiction;
        let (Some(spec), Some(group)) = (&j.rsp_group_identifier, &au.group) else {
            return Ok(None);
        };
        let joins_now = j.qbp && j.gives_group(au.kind);
        let member = joins_now
            || Groups::new(self.matching.store_arc())
                .member(group, person)
                .await?
                .is_some_and(|m| m.active);
        Ok(member.then(|| Identifier {
            id: group.clone(),
            authority: Some(spec.assigning_authority.clone()),
            type_code: Some(spec.identifier_type.clone()),
        }))
    }

    /// The consolidated patient as PID/PD1/NK1 see it; identifiers are the
    /// asker's own (never another clinic's MRNs).
    async fn patient_view(
        &self,
        au: &AuthorizedUser,
        person: &Person,
    ) -> Result<Patient, StoreError> {
        let identifiers = self.matching.identifiers_from(&person.id, &au.id).await?;
        Ok(patient_from(&person.demographics, identifiers))
    }

    async fn remember(&self, record: &QueryRecord) -> Result<(), StoreError> {
        let data = crate::json::encode(record)?;
        let mut writes = vec![Write::Put {
            item: Item::new(
                keys::query_audit(
                    &record.au,
                    record.at,
                    &uuid::Uuid::now_v7().simple().to_string(),
                ),
                data.clone(),
            ),
            cond: Condition::None,
        }];
        for pid in record.persons.iter().take(50) {
            writes.push(Write::Put {
                item: Item::new(keys::queried_by(pid, &record.au), data.clone()),
                cond: Condition::None,
            });
        }
        self.matching.store().transact(writes).await
    }
}

fn present<T: Clone>(s: &Stamped<T>) -> Value<T> {
    s.value.clone().map_or(Value::Absent, Value::Present)
}

/// PID/PD1/NK1 content from consolidated demographics. A cleared value is
/// simply not sent: an answer reports what the registry holds.
pub fn patient_from(d: &Demographics, identifiers: Vec<Identifier>) -> Patient {
    let mut names: Vec<_> = d.name.value.iter().cloned().collect();
    names.extend(d.other_names.value.iter().flatten().cloned());
    Patient {
        identifiers,
        names,
        mother_maiden_name: present(&d.mother_maiden_name),
        birth_date: present(&d.birth_date),
        sex: present(&d.sex),
        races: present(&d.races),
        addresses: present(&d.addresses),
        phones: present(&d.phones),
        ethnicity: present(&d.ethnicity),
        multiple_birth: present(&d.multiple_birth),
        birth_order: present(&d.birth_order),
        death_date: present(&d.death_date),
        deceased: present(&d.deceased),
        publicity: present(&d.publicity),
        protected: present(&d.protected),
        next_of_kin: d.next_of_kin.value.clone().unwrap_or_default(),
        ..Patient::default()
    }
}
