//! QBP^Q11 Z34 (Request Complete Immunization History) and Z44 (Request
//! Evaluated History and Forecast) answered from the registry: for the one
//! patient the query certainly identifies, Z32 (the consolidated history)
//! or Z42 (that same history evaluated by CDC CDSi as of the query's date,
//! and the forecast per vaccine group); Z31 candidates when only possible
//! matches exist, Z33 NF / TM otherwise. Both profiles follow the same match
//! rules. A query never creates or merges anyone, and a do-not-share patient
//! is "not found" to everyone but the Authorized Users that reported them.

use std::collections::BTreeSet;

use hl7::{Location, Message};
use iz::view::{Identifier, Patient, Value};
use iz::{
    build_rsp_z31, build_rsp_z32, build_rsp_z33, build_rsp_z42, new_control_id, AckCode, AppError,
    Clock, Finding, Hl7Error, IisIdentity, ProfileId, QueryStatus, Received, RspDose, RspPatient,
    Severity, Validation,
};
use store::{Condition, Item, StoreError, Write};

use std::sync::Arc;

use crate::audit::{clean, Actor, AuditEvent, AuditTrail, Outcome, MAX_CALLER_TEXT};
use crate::authorized_user::AuthorizedUser;
use crate::fhir_match::{score, MatchAnswer, MatchRequest, PatientMatch, MATCH_PROFILE};
use crate::keys;
use crate::membership::{Groups, JurisdictionPolicy, PossibleMatches};
pub use crate::message::QueryRecord;
use crate::patients::PatientMatching;
pub use crate::persons::source::query_record;
use crate::persons::{Demographics, Immunization, Person, PersonStatus, Stamped};
use matching::Grade;

/// Jurisdiction settings for answering queries.
#[derive(Clone)]
pub struct QueryPolicy {
    /// Most candidates a Z31 ever lists, whatever RCP-2 asks.
    pub max_candidates: u32,
    /// Whether a do-not-share (PD1-12 = Y) patient is visible to the
    /// Authorized Users that reported them. `false`: hidden from everyone.
    pub protected_visible_to_reporters: bool,
    /// The Group rules: whether a Z32 carries the asker's Group id.
    pub jurisdiction: Arc<JurisdictionPolicy>,
    /// The CDC CDSi supporting data Z44 answers are evaluated and forecast
    /// with: a release the jurisdiction pinned, or `None` for the built-in
    /// one ([`cdsi::builtin`], 4.64). Every Z42 states the release it used.
    pub cdsi_data: Option<Arc<cdsi::SupportingData>>,
}

impl Default for QueryPolicy {
    fn default() -> Self {
        QueryPolicy {
            max_candidates: 10,
            protected_visible_to_reporters: true,
            jurisdiction: Arc::new(JurisdictionPolicy::default()),
            cdsi_data: None,
        }
    }
}

impl std::fmt::Debug for QueryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The supporting data is large: its release names it.
        f.debug_struct("QueryPolicy")
            .field("max_candidates", &self.max_candidates)
            .field(
                "protected_visible_to_reporters",
                &self.protected_visible_to_reporters,
            )
            .field("jurisdiction", &self.jurisdiction)
            .field(
                "cdsi_data",
                &self.cdsi_data.as_ref().map(|d| d.version.as_str()),
            )
            .finish()
    }
}

impl QueryPolicy {
    /// The supporting data Z44 answers use.
    pub fn supporting_data(&self) -> Result<&cdsi::SupportingData, cdsi::LoadError> {
        match &self.cdsi_data {
            Some(data) => Ok(data),
            None => cdsi::builtin(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queries {
    matching: PatientMatching,
    policy: QueryPolicy,
    /// Where every answer is recorded, in the same transaction as its
    /// query record.
    audit: AuditTrail,
}

/// Most persons named as subjects of one answer's audit event (a Z31 lists
/// at most the policy's candidates; the detail gives the count).
pub const MAX_AUDITED_PERSONS: usize = 20;

/// The answer to one query.
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    pub rsp: String,
    /// MSA-1 of `rsp`: AA, except a Z44 that found its patient but could
    /// not evaluate them (AE, with an ERR saying why).
    pub ack_code: AckCode,
    pub record: QueryRecord,
}

impl Queries {
    pub fn new(matching: PatientMatching, policy: QueryPolicy) -> Self {
        let audit = AuditTrail::new(matching.store_arc());
        Queries {
            matching,
            policy,
            audit,
        }
    }

    /// Records answers in this trail (e.g. one with the jurisdiction's
    /// retention) instead of the default one.
    pub fn with_audit(mut self, audit: AuditTrail) -> Self {
        self.audit = audit;
        self
    }

    /// Answers a valid Z34 or Z44 query (`profile`, as intake judged it)
    /// from `source` (the caller's address, when the transport knows it)
    /// and records it. A Z44 is assessed as of `clock`'s date.
    ///
    /// The query record and the answer's audit event (`hl7.query.z34` /
    /// `hl7.query.z44`: the Authorized User, the persons answered about as
    /// ids, the response profile and MSH-10; never a name, birth date or
    /// identifier) are written in one transaction before the answer is
    /// returned: no audit, no answer. A store that cannot take them fails
    /// the query (the transports answer 503 or a SOAP fault, and the asker
    /// sends it again), as a console read fails without its event.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &self,
        au: &AuthorizedUser,
        msg: &Message<'_>,
        validation: &Validation,
        profile: ProfileId,
        me: &IisIdentity,
        clock: Clock,
        source: Option<&str>,
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
            profile: profile.code().into(),
            status: String::new(),
            grade: found.outcome.grade,
            persons: Vec::new(),
            at: clock.unix_seconds * 1000,
        };
        let z33 = |status: QueryStatus| {
            build_rsp_z33(msg, &to, AckCode::AA, status, &[], me, clock, &control_id)
        };
        let mut ack_code = AckCode::AA;
        // What the answer was, for the audit event (no PHI).
        let answered_as: String;

        let rsp = if let Some(pid) = &found.outcome.person {
            match self.visible_person(au, pid).await? {
                Some(person) => {
                    let mut patient = self.patient_view(au, &person).await?;
                    if let Some(id) = self.group_identifier(au, &person.id).await? {
                        patient.identifiers.push(id);
                    }
                    // V2-dynamic: the FHIR Patient id, for the asker's FHIR
                    // requests (a Z31 candidate list never carries it). A
                    // person id is its Patient id: the registry makes them
                    // hex, which `resources::fhir_id` keeps as it is.
                    if let Some(spec) = &self.policy.jurisdiction.rsp_patient_identifier {
                        patient.identifiers.push(Identifier {
                            id: person.id.clone(),
                            authority: Some(spec.assigning_authority.clone()),
                            type_code: Some(spec.identifier_type.clone()),
                        });
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
                    let answered = RspPatient {
                        iis_id: &person.id,
                        patient: &patient,
                    };
                    if profile == ProfileId::Z44 {
                        match self.evaluate(&patient, &doses, clock) {
                            Ok(assessment) => {
                                answered_as = format!("Z42, doses: {}", doses.len());
                                build_rsp_z42(
                                    msg,
                                    &to,
                                    me,
                                    clock,
                                    &control_id,
                                    answered,
                                    &doses,
                                    &assessment,
                                )
                            }
                            Err(why) => {
                                // The patient was found but cannot be
                                // assessed: say why, never a guess.
                                tracing::warn!(
                                    person = %person.id,
                                    reason = %why.rule,
                                    "Z44 answered AE: no evaluation"
                                );
                                record.status = "AE".into();
                                ack_code = AckCode::AE;
                                answered_as = format!("Z33 AE, no evaluation ({})", why.rule);
                                build_rsp_z33(
                                    msg,
                                    &to,
                                    AckCode::AE,
                                    QueryStatus::Error,
                                    std::slice::from_ref(&why),
                                    me,
                                    clock,
                                    &control_id,
                                )
                            }
                        }
                    } else {
                        answered_as = format!("Z32, doses: {}", doses.len());
                        build_rsp_z32(msg, &to, me, clock, &control_id, answered, &doses)
                    }
                }
                None => {
                    record.status = "NF".into();
                    answered_as = "Z33 NF".into();
                    z33(QueryStatus::NotFound)
                }
            }
        } else {
            let mut persons: Vec<Person> = Vec::new();
            let mut seen = BTreeSet::new();
            let named = same_child_candidates(&found);
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
                answered_as = "Z33 NF".into();
                z33(QueryStatus::NotFound)
            } else if persons.len() > limit {
                record.status = "TM".into();
                answered_as = format!("Z33 TM, candidates: {} over {limit}", persons.len());
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
                answered_as = format!("Z31, candidates: {}", persons.len());
                build_rsp_z31(msg, &to, me, clock, &control_id, &candidates)
            }
        };
        let event = audit_event(&record, profile, ack_code, &answered_as, clock, source);
        self.remember(&record, &event).await?;
        Ok(QueryAnswer {
            rsp,
            ack_code,
            record,
        })
    }

    /// The CDSi assessment of `patient`'s consolidated `doses` as of the
    /// clock's date, with the policy's supporting data; the finding to
    /// answer with when there can be none.
    fn evaluate(
        &self,
        patient: &Patient,
        doses: &[RspDose<'_>],
        clock: Clock,
    ) -> Result<cdsi::Assessment, Finding> {
        let today = clock.today();
        let assessment_date =
            cdsi::Date::new(i32::from(today.year), today.month, today.day).ok_or_else(|| {
                Finding::new(
                    Location::field("QPD", 1, 1),
                    Hl7Error::ApplicationInternalError,
                    Severity::Error,
                    None,
                    "forecast-date",
                    "The IIS clock gives no valid assessment date; no evaluated history and forecast could be made",
                )
            })?;
        let data = self.policy.supporting_data().map_err(|e| {
            tracing::error!(error = %e, "CDSi supporting data cannot be loaded");
            Finding::new(
                Location::field("QPD", 1, 1),
                Hl7Error::ApplicationInternalError,
                Severity::Error,
                None,
                "forecast-data",
                "The IIS cannot load its CDSi supporting data; no evaluated history and forecast could be made",
            )
        })?;
        // Observations (conditions, evidence of immunity) are not held by
        // the registry: the assessment is the routine schedule's.
        let request = iz::assessment_request(patient, doses, assessment_date, Vec::new())
            .ok_or_else(|| {
                // QPD-1: the evaluation asked for cannot be made (the
                // query itself is fine).
                Finding::new(
                    Location::field("QPD", 1, 1),
                    Hl7Error::ApplicationError,
                    Severity::Error,
                    Some(AppError::RequiredDataMissing),
                    "forecast-birth-date",
                    "The IIS holds no birth date for this patient, without which no history can be evaluated nor forecast made; report the birth date (PID-7) in a VXU",
                )
            })?;
        Ok(cdsi::assess(data, &request))
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

    /// The query record, the person-side signals and the audit event, in
    /// one transaction.
    async fn remember(&self, record: &QueryRecord, event: &AuditEvent) -> Result<(), StoreError> {
        let mut writes = record_writes(record)?;
        writes.push(self.audit.write(event)?);
        self.matching.store().transact(writes).await
    }

    /// Answers a FHIR `Patient/$match` from `au` with the same matcher,
    /// bands, chart rule and visibility as a Z34: one certain match with
    /// its demographics, else the possible matches (other first names on
    /// the same birth date are other children, never candidates) listed or
    /// withheld as the jurisdiction's policy says. Creates and merges no
    /// one.
    ///
    /// Returns the answer, its query record (profile [`MATCH_PROFILE`],
    /// `request_id` as its control id) and the writes that record it; the
    /// caller commits them in one transaction with the answer's audit
    /// event, and membership reads the record as it reads a Z34's (a
    /// certain match joins the asker's Group when the policy's
    /// `fhir_match` says so).
    pub async fn match_patient(
        &self,
        au: &AuthorizedUser,
        request: &MatchRequest,
        now_ms: i64,
        request_id: &str,
    ) -> Result<(MatchAnswer, QueryRecord, Vec<Write>), StoreError> {
        let found = self.find(&au.id, request).await?;
        let bands = self
            .matching
            .matcher()
            .config()
            .bands
            .at(self.matching.registry_size().await?);
        let mut record = QueryRecord {
            au: au.id.clone(),
            control_id: request_id.to_owned(),
            profile: MATCH_PROFILE.into(),
            status: "NF".into(),
            grade: found.outcome.grade,
            persons: Vec::new(),
            at: now_ms,
        };
        let weight_of = |pid: &str| {
            found
                .outcome
                .candidates
                .iter()
                .find(|(p, _)| p == pid)
                .map(|(_, d)| d.score)
        };
        let mut answer = MatchAnswer::default();
        if let Some(pid) = &found.outcome.person {
            if let Some(person) = self.visible_person(au, pid).await? {
                let weight = weight_of(pid).unwrap_or(bands.certain);
                answer.matches.push(PatientMatch {
                    identifiers: self.matching.identifiers_from(&person.id, &au.id).await?,
                    grade: Grade::Certain,
                    score: score(Grade::Certain, weight, bands.certain, bands.possible),
                    person,
                });
            }
        } else {
            let named = same_child_candidates(&found);
            let mut seen = BTreeSet::new();
            let mut possible = Vec::new();
            for (pid, d) in named {
                if let Some(person) = self.visible_person(au, pid).await? {
                    if seen.insert(person.id.clone()) {
                        possible.push((person, d.score));
                    }
                }
            }
            let listed = !request.only_certain
                && self.policy.jurisdiction.possible_matches == PossibleMatches::Listed;
            if listed {
                for (person, weight) in possible.into_iter().take(request.count as usize) {
                    answer.matches.push(PatientMatch {
                        identifiers: self.matching.identifiers_from(&person.id, &au.id).await?,
                        grade: Grade::Possible,
                        score: score(Grade::Possible, weight, bands.certain, bands.possible),
                        person,
                    });
                }
            } else {
                answer.withheld = possible.len();
            }
        }
        answer.matches.truncate(request.count as usize);
        if !answer.matches.is_empty() {
            record.status = "OK".into();
            record.persons = answer.matches.iter().map(|m| m.person.id.clone()).collect();
        }
        let writes = record_writes(&record)?;
        Ok((answer, record, writes))
    }
}

impl Queries {
    /// The matcher's answer for a FHIR request's patient: the asker's own
    /// chart when its identifiers name one, else the registry-wide match.
    async fn find(
        &self,
        au: &str,
        request: &MatchRequest,
    ) -> Result<crate::patients::Found, StoreError> {
        Ok(
            match self
                .matching
                .find_by_chart(au, &request.identifiers, &request.record)
                .await?
            {
                Some(found) => found,
                None => self.matching.find(&request.record).await?,
            },
        )
    }

    /// The one person `request` certainly identifies and `au` may see, as
    /// a `$match` would give it, without recording a query (a
    /// `$member-add` or `$member-remove` naming its patient by
    /// demographics); `None` when there is no certain match.
    pub async fn identify(
        &self,
        au: &AuthorizedUser,
        request: &MatchRequest,
    ) -> Result<Option<Person>, StoreError> {
        let found = self.find(&au.id, request).await?;
        match &found.outcome.person {
            Some(pid) => self.visible_person(au, pid).await,
            None => Ok(None),
        }
    }

    /// The person a chart number of `au`'s names (`memberId`), when the
    /// registry holds that chart.
    pub async fn chart_person(
        &self,
        au: &str,
        identifier: &Identifier,
    ) -> Result<Option<String>, StoreError> {
        let Some(sid) =
            crate::persons::source::chart_source_id(au, std::slice::from_ref(identifier))
        else {
            return Ok(None);
        };
        Ok(self.matching.source(&sid).await?.map(|s| s.person))
    }
}

/// The possible candidates a query may be answered with. A candidate whose
/// first name differs from the one asked for is a sibling or twin sharing
/// the household: another child, never offered as a candidate for this one.
fn same_child_candidates(
    found: &crate::patients::Found,
) -> impl Iterator<Item = &(String, matching::Decision)> {
    found.outcome.candidates.iter().filter(|(_, d)| {
        !d.explanation
            .fields
            .iter()
            .any(|e| e.field == matching::Field::Given && e.level == matching::Level::Different)
    })
}

/// The query record and, per person it was about, the latest "queried by
/// this Authorized User" signal membership reads.
fn record_writes(record: &QueryRecord) -> Result<Vec<Write>, StoreError> {
    {
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
        Ok(writes)
    }
}

/// The audit action of a query answered as `profile`.
pub fn audit_action(profile: ProfileId) -> String {
    format!("hl7.query.{}", profile.code().to_ascii_lowercase())
}

/// One answer's audit event: the asker, the persons it was about (ids only:
/// the one whose history was given, or the Z31 candidates shown), the
/// response profile and MSH-10.
fn audit_event(
    record: &QueryRecord,
    profile: ProfileId,
    ack_code: AckCode,
    answered_as: &str,
    clock: Clock,
    source: Option<&str>,
) -> AuditEvent {
    let outcome = if ack_code == AckCode::AA {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let mut event = AuditEvent::new(
        Actor::authorized_user(&record.au),
        &audit_action(profile),
        outcome,
        clock.unix_seconds.saturating_mul(1000),
    )
    .detail(format!(
        "{answered_as}; MSH-10 {}",
        clean(&record.control_id, MAX_CALLER_TEXT)
    ))
    .from_source(source);
    for pid in record.persons.iter().take(MAX_AUDITED_PERSONS) {
        event = event.subject(format!("Person/{pid}"));
    }
    event
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
