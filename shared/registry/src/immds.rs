//! The HL7 Immunization Decision Support Forecast (ImmDS) operation,
//! `$immds-forecast`, as pure mappings (no store, no I/O): its in-parameters
//! (a FHIR `Parameters` body) into a CDC CDSi [`AssessmentRequest`], and a
//! CDSi [`Assessment`] into the out-parameters, one `ImmunizationEvaluation`
//! per evaluated dose and vaccine group and one `ImmunizationRecommendation`
//! with one recommendation per vaccine group. The registry's consolidated
//! vaccination events map the same way ([`registry_request`]), for the
//! operation on a registry Patient and for Group export.
//!
//! How the answer reads (the choices the IG leaves open):
//! * Vaccine groups are named by the CVX standing for the group as a whole,
//!   as Z42's OBX 30956-7 does (`vaccineCode`); `targetDisease` is text, the
//!   group's CDSi antigens ("Diphtheria, Tetanus, Pertussis").
//! * `doseStatus` is `valid` or `notvalid`
//!   (`immunization-evaluation-dose-status`), with the CDSi status as its
//!   text (an extraneous or sub-standard dose is not valid); a dose not valid
//!   gets its CDSi reason as `doseStatusReason` text (`outsidesched` coded
//!   too when the reason is an age or an interval).
//! * `forecastStatus` is coded where `immunization-recommendation-status`
//!   has the status (due, overdue once the past-due date is reached,
//!   complete, immune, contraindicated), always with the CDSi status as
//!   text ("Aged Out" and "Not Recommended" are text only). Dates are
//!   `dateCriterion`s coded in LOINC as Z42 codes them: earliest 30981-5,
//!   recommended 30980-7, past due 59778-1, latest 59777-3.
//! * The CDSi supporting-data release used is in every resource's
//!   `description` ("... CDC CDSi, supporting data 4.64"), the standard
//!   free-text element of both resources, as Z42 states it in an OBX note.

use cdsi::data::Gender;
use cdsi::model::{
    AdministeredDose, Assessment, AssessmentRequest, EvaluationReason, EvaluationStatus,
    Patient as CdsiPatient, SeriesStatus, VaccineGroupForecast,
};
use cdsi::Date;
use fhir::{
    CodeableConcept, Coding, DateCriterion, ImmunizationEvaluation, ImmunizationRecommendation,
    Parameters, Recommendation, Reference,
};
use serde_json::{Map, Value};

use crate::patients::{Immunization, Person};
use crate::resources::fhir_id;

/// Why a request cannot be answered: the HTTP status, the FHIR IssueType
/// code, what to tell the client, and the parameter at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 400 (malformed), 422 (well formed, but cannot be evaluated).
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub expression: String,
}

fn bad(expression: &str, message: impl Into<String>) -> Problem {
    Problem {
        status: 400,
        code: "invalid",
        message: message.into(),
        expression: expression.to_owned(),
    }
}

fn unprocessable(expression: &str, message: impl Into<String>) -> Problem {
    Problem {
        status: 422,
        code: "processing",
        message: message.into(),
        expression: expression.to_owned(),
    }
}

/// What a `$immds-forecast` request asks for.
#[derive(Clone, Debug)]
pub enum ForecastRequest {
    /// The patient and the immunizations are in the request (the IG's
    /// operation): nothing of the registry is read.
    Supplied(Supplied),
    /// A registry Patient, named by a `patient` parameter that is a
    /// reference (`valueReference` `Patient/<id>`) or a Patient resource
    /// holding nothing but its `id`: its consolidated history is assessed.
    Registry {
        patient: String,
        assessment_date: Option<Date>,
    },
}

/// A request carrying its own data, ready for [`cdsi::assess`].
#[derive(Clone, Debug)]
pub struct Supplied {
    pub request: AssessmentRequest,
    /// The patient as the answer refers to it.
    pub patient: Reference,
    /// The Immunization behind `request.doses[i]`.
    pub events: Vec<Reference>,
}

/// A date as FHIR writes a full `date` (`YYYY-MM-DD`); partial dates
/// (`2024`, `2024-05`) are not days a schedule can be computed from.
fn full_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
        .then(|| Date::parse(text))
        .flatten()
}

/// The day part of a FHIR `dateTime` (`YYYY-MM-DD[Thh:mm:ss...]`).
fn day_of(date_time: &str) -> Option<Date> {
    match date_time.get(..10) {
        Some(day) if date_time.len() == 10 || date_time.as_bytes().get(10) == Some(&b'T') => {
            full_date(day)
        }
        _ => None,
    }
}

fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// A FHIR id as the answer may repeat it in a reference.
fn plain_id(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|id| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    })
}

/// Reads a `$immds-forecast` Parameters body. `today` is the assessment
/// date when the request gives none.
pub fn parse_request(body: &Value, today: Date) -> Result<ForecastRequest, Problem> {
    let Some(obj) = body.as_object() else {
        return Err(bad(
            "body",
            "the body must be a FHIR Parameters resource (JSON object)",
        ));
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(bad(
            "body",
            "the body must be a FHIR Parameters resource (resourceType Parameters)",
        ));
    }
    let parameters = match obj.get("parameter") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return Err(bad("parameter", "Parameters.parameter must be an array")),
    };
    let mut assessment_date = None;
    let mut patient: Option<&Value> = None;
    let mut patient_reference: Option<&str> = None;
    let mut immunizations: Vec<&Map<String, Value>> = Vec::new();
    for (n, p) in parameters.iter().enumerate() {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(bad(
                &format!("parameter[{n}]"),
                format!("parameter {} has no name", n + 1),
            ));
        };
        match name {
            "assessmentDate" => {
                if assessment_date.is_some() {
                    return Err(bad(name, "assessmentDate is given more than once"));
                }
                let value = p.get("valueDate").and_then(Value::as_str).ok_or_else(|| {
                    bad(name, "assessmentDate must be a valueDate (YYYY-MM-DD)")
                })?;
                assessment_date = Some(full_date(value).ok_or_else(|| {
                    bad(
                        name,
                        format!("assessmentDate {value:?} is not a full date (YYYY-MM-DD)"),
                    )
                })?);
            }
            "patient" => {
                if patient.is_some() || patient_reference.is_some() {
                    return Err(bad(name, "patient is given more than once"));
                }
                if let Some(r) = p.get("resource") {
                    if r.get("resourceType").and_then(Value::as_str) != Some("Patient") {
                        return Err(bad(name, "the patient parameter's resource must be a Patient"));
                    }
                    patient = Some(r);
                } else if let Some(r) = p
                    .get("valueReference")
                    .and_then(|r| r.get("reference"))
                    .and_then(Value::as_str)
                {
                    patient_reference = Some(r);
                } else {
                    return Err(bad(
                        name,
                        "the patient parameter must hold a Patient resource, or a valueReference to a registry Patient (Patient/<id>)",
                    ));
                }
            }
            "immunization" => match p.get("resource").and_then(Value::as_object) {
                Some(r) if r.get("resourceType").and_then(Value::as_str) == Some("Immunization") => {
                    immunizations.push(r)
                }
                _ => {
                    return Err(bad(
                        name,
                        format!(
                            "immunization parameter {} must hold an Immunization resource",
                            immunizations.len() + 1
                        ),
                    ))
                }
            },
            other => {
                return Err(bad(
                    other,
                    format!("{other} is not a parameter of $immds-forecast (assessmentDate, patient, immunization)"),
                ))
            }
        }
    }
    // A Patient holding nothing but its id names a registry Patient.
    let only_id = patient.and_then(Value::as_object).is_some_and(|p| {
        p.keys()
            .all(|k| matches!(k.as_str(), "resourceType" | "id" | "meta"))
    });
    let registry_id = match (patient_reference, patient) {
        (Some(r), _) => Some(registry_patient_id(r)?),
        (None, Some(p)) if only_id => Some(
            plain_id(p.get("id"))
                .ok_or_else(|| bad("patient", "the patient's id is not a FHIR id"))?
                .to_owned(),
        ),
        _ => None,
    };
    if let Some(id) = registry_id {
        if !immunizations.is_empty() {
            return Err(bad(
                "immunization",
                "immunization parameters go with a supplied Patient; a registry Patient is assessed on the registry's history alone",
            ));
        }
        return Ok(ForecastRequest::Registry {
            patient: id,
            assessment_date,
        });
    }
    let Some(patient) = patient else {
        return Err(bad(
            "patient",
            "the patient parameter is required: a Patient resource (with birthDate), or a valueReference to a registry Patient",
        ));
    };
    supplied(patient, &immunizations, assessment_date.unwrap_or(today))
        .map(ForecastRequest::Supplied)
}

/// `Patient/<id>`, or an absolute URL ending so: the id.
fn registry_patient_id(reference: &str) -> Result<String, Problem> {
    let id = reference
        .rsplit_once("Patient/")
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty() && !id.contains('/'));
    match id {
        Some(id) => Ok(id.to_owned()),
        None => Err(bad(
            "patient",
            format!("patient reference {reference:?} is not Patient/<id>"),
        )),
    }
}

fn supplied(
    patient: &Value,
    immunizations: &[&Map<String, Value>],
    assessment_date: Date,
) -> Result<Supplied, Problem> {
    let birth = match patient.get("birthDate") {
        None => return Err(bad(
            "patient.birthDate",
            "patient.birthDate is required: no dose can be evaluated nor forecast made without it",
        )),
        Some(v) => v.as_str().and_then(full_date).ok_or_else(|| {
            bad(
                "patient.birthDate",
                format!("patient.birthDate {v} is not a full date (YYYY-MM-DD)"),
            )
        })?,
    };
    if assessment_date < birth {
        return Err(unprocessable(
            "assessmentDate",
            format!(
                "assessmentDate {} is before the patient's birthDate {}",
                iso(assessment_date),
                iso(birth)
            ),
        ));
    }
    let gender = match patient.get("gender").and_then(Value::as_str) {
        Some("female") => Gender::Female,
        Some("male") => Gender::Male,
        _ => Gender::Unknown,
    };
    let patient_ref = match plain_id(patient.get("id")) {
        Some(id) => Reference::to("Patient", id),
        None => Reference {
            display: Some("the patient of the request".into()),
            ..Reference::default()
        },
    };
    let mut doses = Vec::new();
    let mut events = Vec::new();
    for (n, imm) in immunizations.iter().enumerate() {
        let at = format!("immunization[{n}]");
        let named = match plain_id(imm.get("id")) {
            Some(id) => format!("immunization parameter {} (Immunization/{id})", n + 1),
            None => format!("immunization parameter {}", n + 1),
        };
        match imm.get("status").and_then(Value::as_str) {
            Some("completed") => {}
            // Not a dose given: nothing to evaluate.
            Some("not-done") | Some("entered-in-error") => continue,
            Some(other) => {
                return Err(bad(
                    &format!("{at}.status"),
                    format!(
                        "{named}: status {other:?} is not completed, not-done or entered-in-error"
                    ),
                ))
            }
            None => {
                return Err(bad(
                    &format!("{at}.status"),
                    format!("{named}: status is required"),
                ))
            }
        }
        let cvx = imm
            .get("vaccineCode")
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("system").and_then(Value::as_str) == Some(fhir::CVX))
            .find_map(|c| c.get("code").and_then(Value::as_str))
            .ok_or_else(|| {
                unprocessable(
                    &format!("{at}.vaccineCode"),
                    format!(
                        "{named}: no CVX code ({}) in vaccineCode; doses are evaluated by CVX",
                        fhir::CVX
                    ),
                )
            })?;
        let cvx: u16 = cvx.trim().parse().map_err(|_| {
            unprocessable(
                &format!("{at}.vaccineCode"),
                format!("{named}: CVX code {cvx:?} is not a CVX code"),
            )
        })?;
        let date = imm
            .get("occurrenceDateTime")
            .and_then(Value::as_str)
            .and_then(day_of)
            .ok_or_else(|| {
                unprocessable(
                    &format!("{at}.occurrenceDateTime"),
                    format!("{named}: occurrenceDateTime with a full date is required to evaluate the dose"),
                )
            })?;
        let sub_standard = imm.get("isSubpotent").and_then(Value::as_bool) == Some(true);
        doses.push(AdministeredDose {
            date,
            cvx,
            mvx: None,
            sub_standard,
        });
        events.push(match plain_id(imm.get("id")) {
            Some(id) => Reference::to("Immunization", id),
            None => Reference {
                display: Some(named),
                ..Reference::default()
            },
        });
    }
    Ok(Supplied {
        request: AssessmentRequest {
            patient: CdsiPatient {
                date_of_birth: birth,
                gender,
                country_of_birth: None,
                // Conditions and evidence of immunity are not read from
                // the request: the forecast is the routine schedule's.
                observations: Vec::new(),
            },
            assessment_date,
            doses,
        },
        patient: patient_ref,
        events,
    })
}

/// The CDSi request for a registry person's consolidated vaccination
/// events (one dose per event, as Z42 lists them), and the Immunization
/// behind each dose. `None` when the registry holds no birth date.
pub fn registry_request(
    person: &Person,
    history: &[Immunization],
    assessment_date: Date,
) -> Option<Supplied> {
    let view = crate::queries::patient_from(&person.demographics, Vec::new());
    let mut request = iz::assessment_request(&view, &[], assessment_date, Vec::new())?;
    let mut sorted: Vec<&Immunization> = history.iter().collect();
    sorted.sort_by_key(|i| (i.order.administered, i.id.clone()));
    let mut events = Vec::new();
    for imm in sorted {
        if let Some(dose) = iz::evaluable(&imm.order) {
            request.doses.push(dose);
            events.push(Reference::to("Immunization", &fhir_id(&imm.id)));
        }
    }
    Some(Supplied {
        request,
        patient: Reference::to("Patient", &fhir_id(&person.id)),
        events,
    })
}

/// One forecast per vaccine group (the one a single answer reports, as
/// Z42 does), in the supporting data's order.
pub fn forecasts(assessment: &Assessment) -> Vec<&VaccineGroupForecast> {
    let mut out: Vec<&VaccineGroupForecast> = Vec::new();
    for g in &assessment.vaccine_groups {
        if out.iter().any(|f| f.vaccine_group == g.vaccine_group) {
            continue;
        }
        if let Some(f) = cdsi::cases::primary_forecast(assessment, &g.vaccine_group) {
            out.push(f);
        }
    }
    out
}

/// The diseases a vaccine group protects against: its CDSi antigens.
fn target_disease(f: &VaccineGroupForecast) -> CodeableConcept {
    let mut antigens: Vec<&str> = Vec::new();
    for s in &f.series {
        if !antigens.contains(&s.antigen.as_str()) {
            antigens.push(&s.antigen);
        }
    }
    let text = if antigens.is_empty() {
        f.vaccine_group.clone()
    } else {
        antigens.join(", ")
    };
    CodeableConcept::text(&text)
}

fn vaccine_code(f: &VaccineGroupForecast) -> Vec<CodeableConcept> {
    f.vaccine_type
        .iter()
        .map(|t| {
            let mut c = CodeableConcept::coded(Coding::new(
                fhir::CVX,
                &format!("{:02}", t.cvx),
                Some(&t.description),
            ));
            c.text = Some(f.vaccine_group.clone());
            c
        })
        .collect()
}

fn by_cdsi(version: &str) -> String {
    format!("CDC CDSi, supporting data {version}")
}

fn dose_status(status: EvaluationStatus) -> CodeableConcept {
    let (code, display) = if status == EvaluationStatus::Valid {
        ("valid", "Valid")
    } else {
        ("notvalid", "Not valid")
    };
    CodeableConcept {
        coding: vec![Coding::new(
            fhir::EVALUATION_DOSE_STATUS,
            code,
            Some(display),
        )],
        text: Some(status.as_str().to_owned()),
    }
}

fn dose_status_reason(reason: EvaluationReason) -> CodeableConcept {
    let outside_schedule = matches!(
        reason,
        EvaluationReason::TooYoung | EvaluationReason::TooOld | EvaluationReason::TooSoon
    );
    CodeableConcept {
        coding: if outside_schedule {
            vec![Coding::new(
                fhir::EVALUATION_DOSE_STATUS_REASON,
                "outsidesched",
                Some("Administered outside recommended schedule"),
            )]
        } else {
            Vec::new()
        },
        text: Some(reason.as_str().to_owned()),
    }
}

/// One `ImmunizationEvaluation` per evaluated dose and vaccine group, in
/// dose order; `events[i]` is the Immunization of the request's dose `i`.
pub fn evaluations(
    assessment: &Assessment,
    patient: &Reference,
    events: &[Reference],
) -> Vec<ImmunizationEvaluation> {
    let date = iso(assessment.assessment_date);
    let mut out: Vec<(usize, usize, ImmunizationEvaluation)> = Vec::new();
    for (g, f) in forecasts(assessment).into_iter().enumerate() {
        for e in assessment.group_dose_evaluations(f) {
            let Some(event) = events.get(e.dose_index) else {
                continue;
            };
            let valid = e.status == EvaluationStatus::Valid;
            let reason = if valid {
                Vec::new()
            } else {
                vec![match e.reason {
                    Some(r) => dose_status_reason(r),
                    None => CodeableConcept::text(e.status.as_str()),
                }]
            };
            out.push((
                e.dose_index,
                g,
                ImmunizationEvaluation {
                    status: "completed".into(),
                    patient: patient.clone(),
                    date: Some(date.clone()),
                    target_disease: target_disease(f),
                    immunization_event: event.clone(),
                    dose_status: dose_status(e.status),
                    dose_status_reason: reason,
                    description: Some(format!(
                        "{} dose evaluated by {}",
                        f.vaccine_group,
                        by_cdsi(&assessment.supporting_data_version)
                    )),
                    series: Some(e.series_name.clone()).filter(|s| !s.is_empty()),
                    dose_number_positive_int: e.dose_number.filter(|n| *n > 0),
                    ..ImmunizationEvaluation::default()
                },
            ));
        }
    }
    out.sort_by_key(|(dose, group, _)| (*dose, *group));
    out.into_iter().map(|(_, _, e)| e).collect()
}

const EARLIEST: (&str, &str) = ("30981-5", "Earliest date to give");
const RECOMMENDED: (&str, &str) = ("30980-7", "Date vaccine due");
const PAST_DUE: (&str, &str) = ("59778-1", "Date dose is overdue");
const LATEST: (&str, &str) = ("59777-3", "Latest date next dose may be given");

fn forecast_status(f: &VaccineGroupForecast, today: Date) -> CodeableConcept {
    let code = match f.status {
        SeriesStatus::NotComplete if f.past_due.is_some_and(|d| today >= d) => {
            Some(("overdue", "Overdue"))
        }
        SeriesStatus::NotComplete => Some(("due", "Due")),
        SeriesStatus::Complete => Some(("complete", "Complete")),
        SeriesStatus::Immune => Some(("immune", "Immune")),
        SeriesStatus::Contraindicated => Some(("contraindicated", "Contraindicated")),
        SeriesStatus::AgedOut | SeriesStatus::NotRecommended => None,
    };
    CodeableConcept {
        coding: code
            .map(|(c, d)| Coding::new(fhir::RECOMMENDATION_STATUS, c, Some(d)))
            .into_iter()
            .collect(),
        text: Some(f.status.as_str().to_owned()),
    }
}

fn criterion((code, display): (&str, &str), date: Option<Date>) -> Option<DateCriterion> {
    date.map(|d| DateCriterion {
        code: CodeableConcept::coded(Coding::new(fhir::LOINC, code, Some(display))),
        value: iso(d),
    })
}

/// The forecast: one recommendation per vaccine group. `id` is given when
/// the resource stands alone (an export line).
pub fn recommendation(
    assessment: &Assessment,
    patient: &Reference,
    events: &[Reference],
    id: Option<String>,
) -> ImmunizationRecommendation {
    let today = assessment.assessment_date;
    let mut recommendations = Vec::new();
    for f in forecasts(assessment) {
        let due = f.status == SeriesStatus::NotComplete;
        let mut series: Vec<&str> = Vec::new();
        for s in &f.series {
            if !series.contains(&s.series_name.as_str()) {
                series.push(&s.series_name);
            }
        }
        let mut supporting: Vec<Reference> = Vec::new();
        for e in assessment.group_dose_evaluations(f) {
            if let Some(r) = events.get(e.dose_index) {
                if !supporting.contains(r) {
                    supporting.push(r.clone());
                }
            }
        }
        recommendations.push(Recommendation {
            vaccine_code: vaccine_code(f),
            target_disease: Some(target_disease(f)),
            forecast_status: forecast_status(f, today),
            forecast_reason: f
                .reasons
                .iter()
                .map(|r| CodeableConcept::text(r.as_str()))
                .collect(),
            date_criterion: if due {
                [
                    criterion(EARLIEST, f.earliest),
                    criterion(RECOMMENDED, f.recommended),
                    criterion(PAST_DUE, f.past_due),
                    criterion(LATEST, f.latest),
                ]
                .into_iter()
                .flatten()
                .collect()
            } else {
                Vec::new()
            },
            description: Some(format!(
                "{} forecast by {}",
                f.vaccine_group,
                by_cdsi(&assessment.supporting_data_version)
            )),
            series: Some(series.join("; ")).filter(|s| !s.is_empty()),
            dose_number_positive_int: f.dose_number.filter(|n| due && *n > 0),
            supporting_immunization: supporting,
        });
    }
    ImmunizationRecommendation {
        id,
        patient: patient.clone(),
        date: iso(today),
        recommendation: recommendations,
        ..ImmunizationRecommendation::default()
    }
}

/// The operation's answer: every evaluation, then the recommendation.
pub fn parameters(
    evaluations: &[ImmunizationEvaluation],
    recommendation: &ImmunizationRecommendation,
) -> serde_json::Result<Parameters> {
    let mut p = Parameters::default();
    for e in evaluations {
        p.push_resource("evaluation", e)?;
    }
    p.push_resource("recommendation", recommendation)?;
    Ok(p)
}

/// A registry person's forecast as an export line: as of `date`, its id
/// stable per person. `None` without a birth date.
pub fn person_recommendation(
    data: &cdsi::SupportingData,
    person: &Person,
    history: &[Immunization],
    date: Date,
) -> Option<ImmunizationRecommendation> {
    let s = registry_request(person, history, date)?;
    let assessment = cdsi::assess(data, &s.request);
    let id = fhir_id(&format!("forecast-{}", person.id));
    Some(recommendation(&assessment, &s.patient, &s.events, Some(id)))
}
