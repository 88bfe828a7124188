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
//!   group's CDSi antigens ("Diphtheria, Pertussis, Tetanus").
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

use crate::persons::{Immunization, Person};
use crate::resources::fhir_id;

pub use crate::problem::Problem;
use crate::problem::{bad, unprocessable};

/// What a `$immds-forecast` request asks for.
#[derive(Clone, Debug)]
pub enum ForecastRequest {
    /// The patient and the immunizations are in the request (the IG's
    /// operation): nothing of the registry is read.
    Supplied(Box<Supplied>),
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

/// Most immunizations one request may carry: a lifetime's history is a
/// few dozen; the cap keeps one request's assessment cheap.
pub const MAX_IMMUNIZATIONS: usize = 500;

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
            "immunization" if immunizations.len() >= MAX_IMMUNIZATIONS => {
                return Err(bad(
                    name,
                    format!("at most {MAX_IMMUNIZATIONS} immunization parameters are assessed at once"),
                ))
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
        p.contains_key("id")
            && p.keys()
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
        .map(|s| ForecastRequest::Supplied(Box::new(s)))
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
        // The manufacturer as our own Immunizations carry it: an MVX
        // identifier (some CDSi vaccines are told apart by trade name).
        let mvx = imm
            .get("manufacturer")
            .and_then(|m| m.get("identifier"))
            .filter(|i| i.get("system").and_then(Value::as_str) == Some(fhir::MVX))
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        doses.push(AdministeredDose {
            date,
            cvx,
            mvx,
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
    // Only what the assessment reads of PID, through the rule Z42 uses.
    let d = &person.demographics;
    let view = iz::view::Patient {
        birth_date: d
            .birth_date
            .value
            .map_or(iz::Value::Absent, iz::Value::Present),
        sex: d
            .sex
            .value
            .clone()
            .map_or(iz::Value::Absent, iz::Value::Present),
        ..iz::view::Patient::default()
    };
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
    // FHIR needs one recommendation at least; no vaccine group, no line.
    Some(recommendation(&assessment, &s.patient, &s.events, Some(id)))
        .filter(|r| !r.recommendation.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn imm(id: &str, cvx: &str, date: &str) -> Value {
        json!({"name": "immunization", "resource": {
            "resourceType": "Immunization", "id": id, "status": "completed",
            "vaccineCode": {"coding": [{"system": fhir::CVX, "code": cvx}]},
            "patient": {"reference": "Patient/p1"}, "occurrenceDateTime": date}})
    }

    fn params(patient: Value, rest: Vec<Value>) -> Value {
        let mut p = vec![
            json!({"name": "assessmentDate", "valueDate": "2025-11-10"}),
            json!({"name": "patient", "resource": patient}),
        ];
        p.extend(rest);
        json!({"resourceType": "Parameters", "parameter": p})
    }

    fn child() -> Value {
        json!({"resourceType": "Patient", "id": "p1", "birthDate": "2025-09-06", "gender": "female"})
    }

    fn supplied_of(body: &Value) -> Supplied {
        match parse_request(body, d("2026-01-01")).unwrap() {
            ForecastRequest::Supplied(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    fn problem_of(body: &Value) -> Problem {
        parse_request(body, d("2026-01-01")).unwrap_err()
    }

    #[test]
    fn supplied_data_becomes_a_cdsi_request() {
        let mut body = params(
            child(),
            vec![
                imm("i1", "107", "2025-10-15T10:00:00-05:00"),
                imm("i2", "107", "2025-11-10"),
            ],
        );
        // A refusal is no dose.
        body["parameter"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "immunization",
            "resource": {"resourceType": "Immunization", "status": "not-done",
            "vaccineCode": {"coding": [{"system": fhir::CVX, "code": "03"}]},
            "patient": {"reference": "Patient/p1"}, "occurrenceDateTime": "2025-11-01"}}));
        let s = supplied_of(&body);
        assert_eq!(s.request.assessment_date, d("2025-11-10"));
        assert_eq!(s.request.patient.date_of_birth, d("2025-09-06"));
        assert_eq!(s.request.patient.gender, Gender::Female);
        let doses: Vec<(Date, u16)> = s.request.doses.iter().map(|x| (x.date, x.cvx)).collect();
        assert_eq!(doses, [(d("2025-10-15"), 107), (d("2025-11-10"), 107)]);
        assert_eq!(s.patient, Reference::to("Patient", "p1"));
        assert_eq!(s.events[1], Reference::to("Immunization", "i2"));

        // The second DTaP (at 9 weeks) is too soon after the first, and
        // the next dose is forecast: CDC case 2013-0002.
        let a = cdsi::assess(cdsi::builtin().unwrap(), &s.request);
        let evals = evaluations(&a, &s.patient, &s.events);
        let dtap: Vec<&ImmunizationEvaluation> = evals
            .iter()
            .filter(|e| {
                e.description
                    .as_deref()
                    .unwrap()
                    .starts_with("DTaP/Tdap/Td ")
            })
            .collect();
        assert_eq!(dtap.len(), 2);
        assert_eq!(dtap[0].dose_status.coding[0].code.as_deref(), Some("valid"));
        assert_eq!(dtap[0].dose_number_positive_int, Some(1));
        assert_eq!(
            dtap[1].dose_status.coding[0].code.as_deref(),
            Some("notvalid")
        );
        assert_eq!(
            dtap[1].immunization_event,
            Reference::to("Immunization", "i2")
        );
        assert!(!dtap[1].dose_status_reason.is_empty());
        assert_eq!(dtap[0].status, "completed");
        assert!(dtap[0]
            .description
            .as_deref()
            .unwrap()
            .ends_with("CDC CDSi, supporting data 4.64"));
        let r = recommendation(&a, &s.patient, &s.events, None);
        let group = r
            .recommendation
            .iter()
            .find(|x| x.vaccine_code[0].coding[0].code.as_deref() == Some("107"))
            .unwrap();
        let dates: Vec<(&str, &str)> = group
            .date_criterion
            .iter()
            .map(|c| (c.code.coding[0].code.as_deref().unwrap(), c.value.as_str()))
            .collect();
        assert_eq!(
            dates,
            [
                ("30981-5", "2025-12-08"),
                ("30980-7", "2026-01-06"),
                ("59778-1", "2026-03-05")
            ]
        );
        assert_eq!(group.dose_number_positive_int, Some(2));
        assert_eq!(group.forecast_status.coding[0].code.as_deref(), Some("due"));
        assert_eq!(group.supporting_immunization.len(), 2);
        assert_eq!(
            group.target_disease.as_ref().unwrap().text.as_deref(),
            Some("Diphtheria, Pertussis, Tetanus")
        );
        let json = serde_json::to_value(parameters(&evals, &r).unwrap()).unwrap();
        let names: Vec<&str> = json["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.last(), Some(&"recommendation"));
        assert!(names[..names.len() - 1].iter().all(|n| *n == "evaluation"));
        assert_eq!(
            json["parameter"][0]["resource"]["resourceType"],
            "ImmunizationEvaluation"
        );
    }

    #[test]
    fn a_past_due_forecast_is_overdue() {
        let mut body = params(child(), vec![]);
        body["parameter"][0]["valueDate"] = json!("2026-06-01");
        let s = supplied_of(&body);
        let a = cdsi::assess(cdsi::builtin().unwrap(), &s.request);
        let r = recommendation(&a, &s.patient, &s.events, Some("f1".into()));
        assert_eq!(r.id.as_deref(), Some("f1"));
        assert_eq!(r.date, "2026-06-01");
        let codes: Vec<Option<&str>> = r
            .recommendation
            .iter()
            .map(|x| {
                x.forecast_status
                    .coding
                    .first()
                    .and_then(|c| c.code.as_deref())
            })
            .collect();
        assert!(codes.contains(&Some("overdue")), "{codes:?}");
        assert!(evaluations(&a, &s.patient, &s.events).is_empty());
    }

    #[test]
    fn a_registry_patient_is_named_by_reference_or_a_bare_patient() {
        let by_ref = json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": "https://iis.example/fhir/Patient/abc-1"}}]});
        match parse_request(&by_ref, d("2026-01-01")).unwrap() {
            ForecastRequest::Registry {
                patient,
                assessment_date,
            } => {
                assert_eq!(patient, "abc-1");
                assert_eq!(assessment_date, None);
            }
            other => panic!("{other:?}"),
        }
        let bare = params(json!({"resourceType": "Patient", "id": "abc-2"}), vec![]);
        match parse_request(&bare, d("2026-01-01")).unwrap() {
            ForecastRequest::Registry {
                patient,
                assessment_date,
            } => {
                assert_eq!(patient, "abc-2");
                assert_eq!(assessment_date, Some(d("2025-11-10")));
            }
            other => panic!("{other:?}"),
        }
        // A registry patient is assessed on the registry's history alone.
        let mixed = params(
            json!({"resourceType": "Patient", "id": "abc-2"}),
            vec![imm("i1", "107", "2025-10-15")],
        );
        assert_eq!(problem_of(&mixed).expression, "immunization");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let no_birth = params(json!({"resourceType": "Patient", "gender": "male"}), vec![]);
        for (body, status, expression, says) in [
            (json!([1, 2]), 400, "body", "Parameters"),
            (
                json!({"resourceType": "Patient"}),
                400,
                "body",
                "Parameters",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": {}}),
                400,
                "parameter",
                "array",
            ),
            (
                json!({"resourceType": "Parameters"}),
                400,
                "patient",
                "required",
            ),
            (no_birth, 400, "patient.birthDate", "required"),
            (
                params(json!({"resourceType": "Patient"}), vec![]),
                400,
                "patient.birthDate",
                "required",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "birthDate": "2025"}),
                    vec![],
                ),
                400,
                "patient.birthDate",
                "full date",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [
                    {"name": "assessmentDate", "valueDate": "11/10/2025"}]}),
                400,
                "assessmentDate",
                "full date",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [{"name": "nope", "valueString": "x"}]}),
                400,
                "nope",
                "not a parameter",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [{"valueString": "x"}]}),
                400,
                "parameter[0]",
                "no name",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [
                    {"name": "patient", "valueReference": {"reference": "Group/1"}}]}),
                400,
                "patient",
                "Patient/<id>",
            ),
            (
                params(
                    child(),
                    vec![json!({"name": "immunization", "resource": {"resourceType": "Patient"}})],
                ),
                400,
                "immunization",
                "Immunization resource",
            ),
            (
                params(child(), vec![imm("i1", "abc", "2025-10-15")]),
                422,
                "immunization[0].vaccineCode",
                "not a CVX",
            ),
            (
                params(child(), vec![imm("i1", "107", "2025-10")]),
                422,
                "immunization[0].occurrenceDateTime",
                "full date",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "birthDate": "2026-09-06"}),
                    vec![],
                ),
                422,
                "assessmentDate",
                "before",
            ),
        ] {
            let p = problem_of(&body);
            assert_eq!(
                (p.status, p.expression.as_str()),
                (status, expression),
                "{body}: {p:?}"
            );
            assert!(p.message.contains(says), "{body}: {}", p.message);
        }
        // NDC only: evaluated by CVX, so unprocessable, naming the dose.
        let mut ndc = params(child(), vec![imm("i9", "107", "2025-10-15")]);
        ndc["parameter"][2]["resource"]["vaccineCode"]["coding"][0]["system"] = json!(fhir::NDC);
        let p = problem_of(&ndc);
        assert_eq!(p.status, 422);
        assert!(p.message.contains("Immunization/i9"), "{}", p.message);
    }

    /// Every healthy-schedule CDC test case, sent through FHIR (a Patient
    /// and its Immunizations in) and read back from the FHIR answer, gives
    /// the case's expected series status, dose number, earliest,
    /// recommended and past-due dates, and each dose's evaluation status.
    #[test]
    fn cdc_cases_through_fhir_give_the_expected_forecast() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cdsi/tests/data/testcases.ndjson"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let data = cdsi::builtin().unwrap();
        let (mut cases, mut doses) = (0, 0);
        for line in text.lines() {
            let case = cdsi::cases::TestCase::parse(line).unwrap();
            if case.source.as_deref() != Some("healthy") {
                continue;
            }
            let gender = match case.gender.as_str() {
                "F" => "female",
                "M" => "male",
                _ => "unknown",
            };
            let mut parameter = vec![
                json!({"name": "assessmentDate", "valueDate": case.assessment_date}),
                json!({"name": "patient", "resource": {"resourceType": "Patient", "id": "case",
                    "birthDate": case.dob, "gender": gender}}),
            ];
            for (n, dose) in case.doses.iter().enumerate() {
                let mut r = json!({"resourceType": "Immunization", "id": format!("d{n}"),
                    "status": "completed", "patient": {"reference": "Patient/case"},
                    "vaccineCode": {"coding": [{"system": fhir::CVX, "code": dose.cvx}]},
                    "occurrenceDateTime": dose.date});
                if let Some(mvx) = dose.mvx.as_deref().filter(|m| !m.trim().is_empty()) {
                    r["manufacturer"] = json!({"identifier": {"system": fhir::MVX, "value": mvx}});
                }
                parameter.push(json!({"name": "immunization", "resource": r}));
            }
            let body = json!({"resourceType": "Parameters", "parameter": parameter});
            let s = supplied_of(&body);
            let a = cdsi::assess(data, &s.request);
            let evals = evaluations(&a, &s.patient, &s.events);
            let answer =
                serde_json::to_value(recommendation(&a, &s.patient, &s.events, None)).unwrap();
            let group = &case.vaccine_group_cdsi;
            let rec = answer["recommendation"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| {
                    r["description"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{group} forecast"))
                })
                .unwrap_or_else(|| panic!("{}: no {group} recommendation", case.id));
            let e = &case.expected_forecast;
            let date = |loinc: &str| {
                rec["dateCriterion"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["code"]["coding"][0]["code"] == loinc)
                    .and_then(|c| c["value"].as_str())
                    .map(str::to_owned)
            };
            let id = &case.id;
            assert_eq!(
                rec["forecastStatus"]["text"]
                    .as_str()
                    .map(str::to_ascii_lowercase),
                e.series_status.as_deref().map(str::to_ascii_lowercase),
                "{id}"
            );
            if e.series_status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("not complete"))
            {
                assert_eq!(
                    rec["doseNumberPositiveInt"].as_u64(),
                    e.dose_number.map(u64::from),
                    "{id}"
                );
            }
            assert_eq!(date("30981-5"), e.earliest, "{id} earliest");
            assert_eq!(date("30980-7"), e.recommended, "{id} recommended");
            assert_eq!(date("59778-1"), e.past_due, "{id} past due");
            for (n, dose) in case.doses.iter().enumerate() {
                let Some(expected) = &dose.expected_evaluation_status else {
                    continue;
                };
                let event = Reference::to("Immunization", &format!("d{n}"));
                // A dose of another group (there for a live virus conflict)
                // is evaluated in its own group, not the case's.
                let Some(ev) = evals.iter().find(|v| {
                    v.immunization_event == event
                        && v.description
                            .as_deref()
                            .is_some_and(|t| t.starts_with(&format!("{group} dose")))
                }) else {
                    continue;
                };
                assert_eq!(
                    ev.dose_status.text.as_deref().map(str::to_ascii_lowercase),
                    Some(expected.to_ascii_lowercase()),
                    "{id} dose {}",
                    n + 1
                );
                let code = ev.dose_status.coding[0].code.as_deref();
                let valid = expected.eq_ignore_ascii_case("valid");
                assert_eq!(code, Some(if valid { "valid" } else { "notvalid" }), "{id}");
                doses += 1;
            }
            cases += 1;
        }
        assert_eq!(cases, 812);
        assert!(doses > 1000, "{doses} doses compared");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod hostile {
    use super::*;
    use serde_json::json;

    #[test]
    fn too_many_immunizations_are_refused() {
        let imm = json!({"name": "immunization", "resource": {"resourceType": "Immunization",
            "status": "completed", "occurrenceDateTime": "2020-02-01",
            "vaccineCode": {"coding": [{"system": fhir::CVX, "code": "03"}]}}});
        let mut parameter = vec![json!({"name": "patient", "resource":
            {"resourceType": "Patient", "birthDate": "2020-01-01"}})];
        parameter.extend(std::iter::repeat_n(imm, MAX_IMMUNIZATIONS + 1));
        let body = json!({"resourceType": "Parameters", "parameter": parameter});
        let p = parse_request(&body, Date::parse("2026-01-01").unwrap()).unwrap_err();
        assert_eq!((p.status, p.expression.as_str()), (400, "immunization"));
    }

    /// Dates at the ends of what a FHIR date can say never make the engine
    /// panic: they are refused, or assessed.
    #[test]
    fn extreme_dates_never_panic() {
        let today = Date::parse("2026-01-01").unwrap();
        for (birth, at, dose) in [
            ("0001-01-01", "9999-12-31", "9999-12-31"),
            ("9999-12-31", "9999-12-31", "9999-12-31"),
            ("2020-01-01", "9999-12-31", "0001-01-01"),
            ("2020-01-01", "2020-01-01", "2019-01-01"),
            ("2020-02-29", "2020-03-01", "2020-02-29"),
        ] {
            let body = json!({"resourceType": "Parameters", "parameter": [
                {"name": "assessmentDate", "valueDate": at},
                {"name": "patient", "resource": {"resourceType": "Patient", "birthDate": birth}},
                {"name": "immunization", "resource": {"resourceType": "Immunization",
                    "status": "completed", "occurrenceDateTime": dose,
                    "vaccineCode": {"coding": [{"system": fhir::CVX, "code": "03"}]}}}]});
            if let Ok(ForecastRequest::Supplied(s)) = parse_request(&body, today) {
                let a = cdsi::assess(cdsi::builtin().unwrap(), &s.request);
                let _ = evaluations(&a, &s.patient, &s.events);
                let _ = recommendation(&a, &s.patient, &s.events, None);
            }
        }
    }
}
