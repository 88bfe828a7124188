//! FHIR `Patient/$match` (R4): the request's Patient read as matching reads
//! a Z34's patient, and the answer's searchset Bundle. Matching itself is
//! [`crate::queries::Queries::match_patient`], with the same matcher, bands
//! and visibility rules as a history query; this module is pure.
//!
//! What an answer gives: a certain match comes with the patient's
//! demographics (and the asker's own identifiers, never another clinic's);
//! possible matches are withheld (their count only) or listed with what a
//! Z31 candidate list gives, as the jurisdiction's policy says. Every entry
//! carries `search.score` and the `match-grade` extension.

use serde_json::{Map, Value};

use iz::view::Identifier;
use matching::{Grade, PatientRecord};

use crate::persons::Person;
use crate::problem::{bad, unprocessable, Problem};

/// The standard extension that grades a `$match` entry.
pub const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";
/// The extension on a `Patient/$bulk-match` result Bundle's `meta` that
/// references the input patient (by the client's id) the Bundle answers.
pub const MATCH_RESOURCE: &str =
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/match-resource";
/// The US SSN identifier system: matched as an SSN, never as a chart number.
pub const US_SSN: &str = "http://hl7.org/fhir/sid/us-ssn";
pub use crate::message::MATCH_PROFILE;
/// Most entries an answer ever holds, whatever `count` asks.
pub const MAX_COUNT: u32 = 20;

/// What a `$match` request asks.
#[derive(Clone, Debug)]
pub struct MatchRequest {
    /// The patient as matching reads it.
    pub record: PatientRecord,
    /// The Patient's identifiers as v2 would carry them (authority, type):
    /// the asker's own chart number finds its chart, as in a Z34.
    pub identifiers: Vec<Identifier>,
    /// `onlyCertainMatches`: leave possible matches out entirely.
    pub only_certain: bool,
    /// `count`: at most this many entries (1 to [`MAX_COUNT`]).
    pub count: u32,
}

/// One patient the answer is about.
#[derive(Clone, Debug)]
pub struct PatientMatch {
    pub person: Person,
    /// The asker's own identifiers for this person.
    pub identifiers: Vec<Identifier>,
    pub grade: Grade,
    /// 0 to 1: certain matches at 0.9 and above, possible ones from 0.5 to
    /// under 0.9, ordered by the matcher's weight of evidence.
    pub score: f64,
}

/// The answer of one `$match`, before it is written as a Bundle.
#[derive(Clone, Debug, Default)]
pub struct MatchAnswer {
    /// The certain match, or the possible ones the policy lists.
    pub matches: Vec<PatientMatch>,
    /// Possible matches found but not listed (policy, or
    /// `onlyCertainMatches`).
    pub withheld: usize,
}

/// Reads a `$match` Parameters body: `resource` (a Patient, required),
/// `onlyCertainMatches` and `count`. `identifier_base` is the
/// jurisdiction's, so the identifier systems this IIS exports map back to
/// their v2 assigning authorities.
pub fn parse_match_request(body: &Value, identifier_base: &str) -> Result<MatchRequest, Problem> {
    let Some(obj) = body.as_object() else {
        return Err(bad(
            "body",
            "the body must be a FHIR Parameters resource (JSON object)",
        ));
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(bad(
            "body",
            "the body must be a FHIR Parameters resource (resourceType Parameters) with a Patient in its resource parameter",
        ));
    }
    let parameters = match obj.get("parameter") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return Err(bad("parameter", "Parameters.parameter must be an array")),
    };
    let mut patient: Option<&Map<String, Value>> = None;
    let mut only_certain = None;
    let mut count = None;
    for (n, p) in parameters.iter().enumerate() {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(bad(
                &format!("parameter[{n}]"),
                format!("parameter {} has no name", n + 1),
            ));
        };
        match name {
            "resource" => {
                if patient.is_some() {
                    return Err(bad(name, "resource is given more than once: one Patient per $match (Patient/$bulk-match takes many)"));
                }
                let Some(r) = p.get("resource").and_then(Value::as_object) else {
                    return Err(bad(name, "the resource parameter must hold a Patient resource"));
                };
                if r.get("resourceType").and_then(Value::as_str) != Some("Patient") {
                    return Err(bad(name, "the resource parameter's resource must be a Patient"));
                }
                patient = Some(r);
            }
            "onlyCertainMatches" => {
                if only_certain.is_some() {
                    return Err(bad(name, "onlyCertainMatches is given more than once"));
                }
                only_certain = Some(
                    p.get("valueBoolean")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| bad(name, "onlyCertainMatches must be a valueBoolean"))?,
                );
            }
            "count" => {
                if count.is_some() {
                    return Err(bad(name, "count is given more than once"));
                }
                let n = p
                    .get("valueInteger")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad(name, "count must be a valueInteger"))?;
                if n < 1 {
                    return Err(bad(name, format!("count {n} must be at least 1")));
                }
                count = Some(u32::try_from(n).unwrap_or(u32::MAX).min(MAX_COUNT));
            }
            other => {
                return Err(bad(
                    other,
                    format!("unknown parameter {other:?}: $match takes resource, onlyCertainMatches and count"),
                ))
            }
        }
    }
    let Some(patient) = patient else {
        return Err(bad(
            "resource",
            "the resource parameter (the Patient to match) is required",
        ));
    };
    let mut request = patient_request(patient, identifier_base)?;
    request.only_certain = only_certain.unwrap_or(false);
    request.count = count.unwrap_or(MAX_COUNT);
    Ok(request)
}

/// Most input patients one `Patient/$bulk-match` takes unless the
/// deployment says otherwise.
pub const DEFAULT_BULK_MAX_PATIENTS: usize = 10_000;

/// One input patient of a `Patient/$bulk-match`: the client's own id (the
/// result Bundle names it) and the Patient as sent, already checked to be
/// one [`patient_request`] accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct BulkMatchInput {
    pub id: String,
    pub patient: Map<String, Value>,
}

/// What a `Patient/$bulk-match` asks: the patients, and the
/// `onlyCertainMatches` and `count` that apply to every one of them.
#[derive(Clone, Debug, PartialEq)]
pub struct BulkMatchRequest {
    pub patients: Vec<BulkMatchInput>,
    pub only_certain: bool,
    pub count: u32,
}

/// The request of one input patient, with the bulk request's
/// `onlyCertainMatches` and `count`.
pub fn bulk_input_request(
    input: &BulkMatchInput,
    only_certain: bool,
    count: u32,
    identifier_base: &str,
) -> Result<MatchRequest, Problem> {
    let mut request = patient_request(&input.patient, identifier_base)?;
    request.only_certain = only_certain;
    request.count = count;
    Ok(request)
}

/// Whether `id` is a FHIR id (`[A-Za-z0-9\-\.]{1,64}`): the client's input
/// ids are echoed in results, so nothing else is taken.
fn fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Reads a `Patient/$bulk-match` Parameters body (Bulk Data IG, bulk
/// match): 1 to `max_patients` `resource` parameters, each a Patient with an
/// `id` (the client's, unique in the request) that a `$match` would accept,
/// and optional `onlyCertainMatches`, `onlySingleMatch` (the most likely
/// match only: `count` 1) and `count` for every patient, and
/// `_outputFormat` (NDJSON, the only format served). Every
/// patient is checked here, so a job never starts on a request it cannot
/// finish; a refusal names the parameter at fault (`resource[i]` is the
/// i-th resource parameter, from 0). Too many patients is status 413.
pub fn parse_bulk_match_request(
    body: &Value,
    identifier_base: &str,
    max_patients: usize,
) -> Result<BulkMatchRequest, Problem> {
    let Some(obj) = body.as_object() else {
        return Err(bad(
            "body",
            "the body must be a FHIR Parameters resource (JSON object)",
        ));
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(bad(
            "body",
            "the body must be a FHIR Parameters resource (resourceType Parameters) with one resource parameter per Patient to match",
        ));
    }
    let parameters = match obj.get("parameter") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return Err(bad("parameter", "Parameters.parameter must be an array")),
    };
    let given = parameters
        .iter()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
        .count();
    if given > max_patients {
        // Refused before any patient is read: the count alone decides.
        return Err(Problem {
            status: 413,
            code: "too-costly",
            message: format!(
                "{given} patients in one $bulk-match; this server takes at most {max_patients}: split the request"
            ),
            expression: "resource".into(),
        });
    }
    let mut patients: Vec<BulkMatchInput> = Vec::with_capacity(given);
    let mut ids = std::collections::HashSet::with_capacity(given);
    let mut only_certain = None;
    let mut only_single = None;
    let mut count = None;
    let mut output_format = false;
    for (n, p) in parameters.iter().enumerate() {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(bad(
                &format!("parameter[{n}]"),
                format!("parameter {} has no name", n + 1),
            ));
        };
        match name {
            "resource" => {
                let at = format!("resource[{}]", patients.len());
                let Some(r) = p.get("resource").and_then(Value::as_object) else {
                    return Err(bad(&at, format!("{at} must hold a Patient resource")));
                };
                if r.get("resourceType").and_then(Value::as_str) != Some("Patient") {
                    return Err(bad(&at, format!("{at}'s resource must be a Patient")));
                }
                let id = match r.get("id") {
                    None => {
                        return Err(bad(
                            &format!("{at}.id"),
                            format!("{at}: every Patient of a $bulk-match needs an id (yours), so its result can be tied to it"),
                        ))
                    }
                    Some(v) => match v.as_str() {
                        Some(s) if fhir_id(s) => s.to_owned(),
                        _ => {
                            return Err(bad(
                                &format!("{at}.id"),
                                format!("{at}: Patient.id must be a FHIR id (1 to 64 letters, digits, '-' or '.')"),
                            ))
                        }
                    },
                };
                if !ids.insert(id.clone()) {
                    return Err(bad(
                        &format!("{at}.id"),
                        format!("{at}: Patient.id {id:?} is given twice; each input patient needs its own id"),
                    ));
                }
                // Checked now so the job cannot fail on it later.
                if let Err(problem) = patient_request(r, identifier_base) {
                    return Err(Problem {
                        message: format!("{at} (Patient {id}): {}", problem.message),
                        expression: format!("{at}.{}", problem.expression),
                        ..problem
                    });
                }
                patients.push(BulkMatchInput {
                    id,
                    patient: r.clone(),
                });
            }
            "onlyCertainMatches" => {
                if only_certain.is_some() {
                    return Err(bad(name, "onlyCertainMatches is given more than once"));
                }
                only_certain = Some(
                    p.get("valueBoolean")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| bad(name, "onlyCertainMatches must be a valueBoolean"))?,
                );
            }
            "onlySingleMatch" => {
                if only_single.is_some() {
                    return Err(bad(name, "onlySingleMatch is given more than once"));
                }
                only_single = Some(
                    p.get("valueBoolean")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| bad(name, "onlySingleMatch must be a valueBoolean"))?,
                );
            }
            "count" => {
                if count.is_some() {
                    return Err(bad(name, "count is given more than once"));
                }
                let n = p
                    .get("valueInteger")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad(name, "count must be a valueInteger"))?;
                if n < 1 {
                    return Err(bad(name, format!("count {n} must be at least 1")));
                }
                count = Some(u32::try_from(n).unwrap_or(u32::MAX).min(MAX_COUNT));
            }
            "_outputFormat" => {
                if output_format {
                    return Err(bad(name, "_outputFormat is given more than once"));
                }
                output_format = true;
                let format = p.get("valueString").and_then(Value::as_str).ok_or_else(|| {
                    bad(name, "_outputFormat must be a valueString")
                })?;
                if !matches!(
                    format,
                    "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                ) {
                    return Err(bad(
                        name,
                        format!("_outputFormat {format:?} is not served: results are NDJSON (application/fhir+ndjson)"),
                    ));
                }
            }
            other => {
                return Err(bad(
                    other,
                    format!("unknown parameter {other:?}: $bulk-match takes resource (one per Patient), onlyCertainMatches, onlySingleMatch, count and _outputFormat"),
                ))
            }
        }
    }
    // The most likely match only: entries are ordered most likely first.
    if only_single == Some(true) {
        count = Some(1);
    }
    if patients.is_empty() {
        return Err(bad(
            "resource",
            "at least one resource parameter (a Patient to match) is required",
        ));
    }
    Ok(BulkMatchRequest {
        patients,
        only_certain: only_certain.unwrap_or(false),
        count: count.unwrap_or(MAX_COUNT),
    })
}

/// One Patient resource as a request for its certain match only (as
/// `$member-add` names a patient by demographics).
pub fn patient_request(
    patient: &Map<String, Value>,
    identifier_base: &str,
) -> Result<MatchRequest, Problem> {
    let (record, identifiers) = patient_record(patient, identifier_base)?;
    Ok(MatchRequest {
        record,
        identifiers,
        only_certain: true,
        count: 1,
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn array<'a>(p: &'a Map<String, Value>, field: &str) -> Result<&'a [Value], Problem> {
    match p.get(field) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a.as_slice()),
        Some(_) => Err(bad(
            &format!("Patient.{field}"),
            format!("Patient.{field} must be an array"),
        )),
    }
}

/// The name matching compares: the official (or usual, or untyped) one,
/// else the first.
fn chosen_name(names: &[Value]) -> Option<&Value> {
    let usable = |n: &&Value| {
        matches!(
            n.get("use").and_then(Value::as_str),
            None | Some("official") | Some("usual")
        )
    };
    names.iter().find(usable).or_else(|| names.first())
}

/// A FHIR identifier system back to the v2 assigning authority this IIS
/// would have exported it from (see `fhir::identifier_system`).
pub(crate) fn authority_of(system: &str, identifier_base: &str) -> String {
    let exported = format!("{}/authority/", identifier_base.trim_end_matches('/'));
    if let Some(a) = system.strip_prefix(&exported) {
        return a.to_owned();
    }
    if let Some(oid) = system.strip_prefix("urn:oid:") {
        return oid.to_owned();
    }
    system.to_owned()
}

/// A FHIR Identifier as v2 carries one in PID-3: the value, the assigning
/// authority this IIS would have exported the system from, and the type
/// (a clinic's identifier sent without a type is its chart number, MR, as
/// the IIS keeps charts from VXUs). `None` without a value.
pub(crate) fn v2_identifier(id: &Value, identifier_base: &str) -> Option<Identifier> {
    let value = text(id.get("value"))?;
    let system = text(id.get("system"));
    let type_code = id
        .get("type")
        .and_then(|t| t.get("coding"))
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find_map(|c| text(c.get("code"))));
    Some(Identifier {
        id: value,
        authority: system.map(|s| authority_of(&s, identifier_base)),
        type_code: Some(type_code.unwrap_or_else(|| "MR".into())),
    })
}

/// Reads the Patient: name, birth date, sex, identifiers, phone, address,
/// mother's maiden name and multiple birth. A birth date and a family name
/// are required, as a Z34 requires them (QPD-4, QPD-6).
fn patient_record(
    p: &Map<String, Value>,
    identifier_base: &str,
) -> Result<(PatientRecord, Vec<Identifier>), Problem> {
    let mut record = PatientRecord {
        id: "match".into(),
        ..PatientRecord::default()
    };
    if let Some(name) = chosen_name(array(p, "name")?) {
        let given = strings(name.get("given"));
        record.given = given.first().cloned();
        if given.len() > 1 {
            record.middle = Some(given[1..].join(" "));
        }
        record.family = text(name.get("family"));
        record.suffix = strings(name.get("suffix")).into_iter().next();
    }
    if record.family.is_none() {
        return Err(unprocessable(
            "Patient.name",
            "the Patient needs a family name to be matched (as a Z34 needs QPD-4)",
        ));
    }
    match p.get("birthDate") {
        None => {
            return Err(unprocessable(
                "Patient.birthDate",
                "the Patient needs a birth date to be matched (as a Z34 needs QPD-6)",
            ))
        }
        Some(v) => {
            let d = v.as_str().unwrap_or("");
            let full = d.len() == 10 && cdsi::Date::parse(d).is_some_and(|x| x.to_string() == d);
            if !full {
                return Err(bad(
                    "Patient.birthDate",
                    format!("Patient.birthDate {v} is not a full date (YYYY-MM-DD)"),
                ));
            }
            record.birth_date = Some(d.to_owned());
        }
    }
    if let Some(g) = p.get("gender") {
        record.sex = Some(
            match g.as_str() {
                Some("female") => "F",
                Some("male") => "M",
                Some("other") | Some("unknown") => "U",
                _ => {
                    return Err(bad(
                        "Patient.gender",
                        format!("Patient.gender {g} is not male, female, other or unknown"),
                    ))
                }
            }
            .to_owned(),
        );
    }
    let mut identifiers = Vec::new();
    for (n, id) in array(p, "identifier")?.iter().enumerate() {
        let Some(id) = v2_identifier(id, identifier_base) else {
            return Err(bad(
                &format!("Patient.identifier[{n}]"),
                "an identifier without a value cannot be matched",
            ));
        };
        if id.authority.as_deref() == Some(US_SSN) || id.type_code.as_deref() == Some("SS") {
            record.ssn.get_or_insert(id.id);
            continue;
        }
        identifiers.push(id);
    }
    crate::persons::source::add_identifiers(&mut record, &identifiers);
    record.phone = array(p, "telecom")?
        .iter()
        .filter(|t| t.get("system").and_then(Value::as_str) == Some("phone"))
        .filter_map(|t| text(t.get("value")))
        .map(|v| v.chars().filter(char::is_ascii_digit).collect::<String>())
        .find(|d| !d.is_empty());
    let addresses = array(p, "address")?;
    let address = addresses
        .iter()
        .find(|a| matches!(a.get("use").and_then(Value::as_str), None | Some("home")))
        .or_else(|| addresses.first());
    if let Some(a) = address {
        record.street = strings(a.get("line")).into_iter().next();
        record.city = text(a.get("city"));
        record.state = text(a.get("state"));
        record.zip = text(a.get("postalCode"));
    }
    record.mothers_maiden_family = array(p, "extension")?
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(fhir::MOTHERS_MAIDEN_NAME))
        .and_then(|e| text(e.get("valueString")));
    if let Some(b) = p.get("multipleBirthBoolean") {
        record.multiple_birth = Some(b.as_bool().ok_or_else(|| {
            bad(
                "Patient.multipleBirthBoolean",
                "multipleBirthBoolean must be true or false",
            )
        })?);
    }
    if let Some(n) = p.get("multipleBirthInteger") {
        let order = n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=9).contains(n))
            .ok_or_else(|| {
                bad(
                    "Patient.multipleBirthInteger",
                    "multipleBirthInteger must be a birth order from 1 to 9",
                )
            })?;
        record.multiple_birth = Some(true);
        record.birth_order = Some(order);
    }
    Ok((record, identifiers))
}

/// A 0-to-1 score for an entry: the grade fixes the band (certain from
/// 0.9, possible from 0.5 to under 0.9) and the weight of evidence orders
/// entries inside it, so a client sorting on score never puts a possible
/// match above a certain one.
pub fn score(grade: Grade, weight: f64, certain: f64, possible: f64) -> f64 {
    let s = match grade {
        Grade::Certain => 1.0 - 0.1 * (-(weight - certain).max(0.0) / 4.0).exp(),
        Grade::Possible => {
            let span = (certain - possible).max(1.0);
            0.5 + 0.399 * ((weight - possible) / span).clamp(0.0, 1.0)
        }
        Grade::None => 0.0,
    };
    (s * 1000.0).round() / 1000.0
}

fn grade_code(grade: Grade) -> &'static str {
    match grade {
        Grade::Certain => "certain",
        Grade::Possible => "possible",
        Grade::None => "certainly-not",
    }
}

/// The answer as a searchset Bundle: certain matches as the full Patient
/// the export would give, possible ones with Z31 demographics only, and an
/// OperationOutcome entry when possible matches were withheld.
pub fn match_bundle(answer: &MatchAnswer, fhir_base: &str, identifier_base: &str) -> fhir::Bundle {
    let self_url = format!("{fhir_base}/Patient/$match");
    let mut bundle = fhir::Bundle::searchset(answer.matches.len() as u64, &self_url);
    for m in &answer.matches {
        let mut patient = crate::resources::patient(&m.person, &m.identifiers, identifier_base);
        if m.grade != Grade::Certain {
            // What a Z31 candidate gives: who the candidate is, not their
            // contacts, next of kin or other details.
            patient.telecom.clear();
            patient.contact.clear();
            patient.extension.clear();
            patient.deceased_boolean = None;
            patient.deceased_date_time = None;
        }
        let full_url = format!("{fhir_base}/Patient/{}", patient.id);
        let Ok(resource) = serde_json::to_value(&patient) else {
            continue;
        };
        bundle.entry.push(fhir::BundleEntry {
            full_url: Some(full_url),
            resource,
            search: Some(fhir::BundleSearch {
                mode: "match".into(),
                score: Some(m.score),
                extension: vec![fhir::Extension {
                    url: MATCH_GRADE.into(),
                    value_code: Some(grade_code(m.grade).into()),
                    ..fhir::Extension::default()
                }],
            }),
        });
    }
    if answer.withheld > 0 {
        let outcome = fhir::OperationOutcome::single(
            "information",
            "informational",
            format!(
                "{} possible match(es) found but not disclosed: send more of the patient's details (identifiers, address, mother's maiden name) or report the patient in a VXU",
                answer.withheld
            ),
        );
        if let Ok(resource) = serde_json::to_value(&outcome) {
            bundle.entry.push(fhir::BundleEntry {
                full_url: None,
                resource,
                search: Some(fhir::BundleSearch {
                    mode: "outcome".into(),
                    ..fhir::BundleSearch::default()
                }),
            });
        }
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(patient: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": patient},
            {"name": "count", "valueInteger": 3},
            {"name": "onlyCertainMatches", "valueBoolean": true}
        ]})
    }

    #[test]
    fn a_patient_is_read_as_a_z34_patient_is() {
        let r = parse_match_request(
            &params(json!({
                "resourceType": "Patient",
                "identifier": [
                    {"system": "urn:iisbulk:id/authority/MYEHR", "value": "MRN-1",
                     "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}},
                    {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "x"},
                    {"system": US_SSN, "value": "123-45-6789"}
                ],
                "name": [{"use": "nickname", "given": ["Bobby"]},
                         {"family": "Doe", "given": ["Robert", "James", "Q"], "suffix": ["Jr"]}],
                "gender": "male",
                "birthDate": "2020-02-29",
                "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "(555) 123-4567"}],
                "address": [{"use": "work", "line": ["1 Office"]}, {"use": "home", "line": ["12 Main St", "Apt 2"], "city": "Springfield", "state": "IL", "postalCode": "62701"}],
                "extension": [{"url": fhir::MOTHERS_MAIDEN_NAME, "valueString": "Smith"}],
                "multipleBirthInteger": 2
            })),
            "urn:iisbulk:id",
        )
        .unwrap();
        assert!(r.only_certain);
        assert_eq!(r.count, 3);
        let rec = &r.record;
        assert_eq!(rec.given.as_deref(), Some("Robert"));
        assert_eq!(rec.middle.as_deref(), Some("James Q"));
        assert_eq!(rec.family.as_deref(), Some("Doe"));
        assert_eq!(rec.suffix.as_deref(), Some("Jr"));
        assert_eq!(rec.sex.as_deref(), Some("M"));
        assert_eq!(rec.birth_date.as_deref(), Some("2020-02-29"));
        assert_eq!(rec.phone.as_deref(), Some("5551234567"));
        assert_eq!(rec.street.as_deref(), Some("12 Main St"));
        assert_eq!(rec.zip.as_deref(), Some("62701"));
        assert_eq!(rec.mothers_maiden_family.as_deref(), Some("Smith"));
        assert_eq!((rec.multiple_birth, rec.birth_order), (Some(true), Some(2)));
        assert_eq!(rec.ssn.as_deref(), Some("123-45-6789"));
        // The exported system maps back to the v2 authority; an OID to the
        // OID; an untyped identifier is a chart number.
        assert_eq!(r.identifiers.len(), 2);
        assert_eq!(r.identifiers[0].authority.as_deref(), Some("MYEHR"));
        assert_eq!(r.identifiers[0].type_code.as_deref(), Some("MR"));
        assert_eq!(
            r.identifiers[1].authority.as_deref(),
            Some("2.16.840.1.113883.4.1")
        );
        assert_eq!(rec.identifiers.len(), 2);
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let cases = [
            (json!([]), 400, "body"),
            (json!({"resourceType": "Patient"}), 400, "body"),
            (json!({"resourceType": "Parameters"}), 400, "resource"),
            (
                json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}]}),
                400,
                "resource",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [{"name": "limit", "valueInteger": 1}]}),
                400,
                "limit",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 0}]}),
                400,
                "count",
            ),
            (
                params(json!({"resourceType": "Patient", "birthDate": "2020-01-01"})),
                422,
                "Patient.name",
            ),
            (
                params(json!({"resourceType": "Patient", "name": [{"family": "Doe"}]})),
                422,
                "Patient.birthDate",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "name": [{"family": "Doe"}], "birthDate": "2020-02-30"}),
                ),
                400,
                "Patient.birthDate",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "name": [{"family": "Doe"}], "birthDate": "2020-02"}),
                ),
                400,
                "Patient.birthDate",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "name": [{"family": "Doe"}], "birthDate": "2020-02-01", "gender": "f"}),
                ),
                400,
                "Patient.gender",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "name": {"family": "Doe"}, "birthDate": "2020-02-01"}),
                ),
                400,
                "Patient.name",
            ),
            (
                params(
                    json!({"resourceType": "Patient", "name": [{"family": "Doe"}], "birthDate": "2020-02-01", "identifier": [{"system": "x"}]}),
                ),
                400,
                "Patient.identifier[0]",
            ),
        ];
        for (body, status, expression) in cases {
            let e = parse_match_request(&body, "urn:iisbulk:id").unwrap_err();
            assert_eq!(
                (e.status, e.expression.as_str()),
                (status, expression),
                "{body}: {e:?}"
            );
        }
    }

    fn bulk(list: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": list})
    }

    fn patient(id: &str) -> Value {
        json!({"name": "resource", "resource": {"resourceType": "Patient", "id": id,
            "name": [{"family": "Doe", "given": ["Ann"]}], "birthDate": "2020-02-01"}})
    }

    #[test]
    fn a_bulk_match_takes_many_patients_each_with_its_id() {
        let r = parse_bulk_match_request(
            &bulk(json!([patient("a-1"), patient("a.2"),
                {"name": "onlyCertainMatches", "valueBoolean": true},
                {"name": "count", "valueInteger": 5}])),
            "urn:iisbulk:id",
            10,
        )
        .unwrap();
        let ids: Vec<_> = r.patients.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a-1", "a.2"]);
        assert!(r.only_certain);
        assert_eq!(r.count, 5);
        let one =
            bulk_input_request(&r.patients[1], r.only_certain, r.count, "urn:iisbulk:id").unwrap();
        assert_eq!(one.record.family.as_deref(), Some("Doe"));
        assert_eq!((one.only_certain, one.count), (true, 5));
        let defaults =
            parse_bulk_match_request(&bulk(json!([patient("x")])), "urn:iisbulk:id", 1).unwrap();
        assert_eq!((defaults.only_certain, defaults.count), (false, MAX_COUNT));
        // onlySingleMatch: the most likely match only, whatever count says;
        // NDJSON asked for by any of the IG's three names.
        for format in ["application/fhir+ndjson", "application/ndjson", "ndjson"] {
            let single = parse_bulk_match_request(
                &bulk(json!([patient("x"),
                    {"name": "onlySingleMatch", "valueBoolean": true},
                    {"name": "count", "valueInteger": 4},
                    {"name": "_outputFormat", "valueString": format}])),
                "urn:iisbulk:id",
                1,
            )
            .unwrap();
            assert_eq!(single.count, 1, "{format}");
        }
        let not_single = parse_bulk_match_request(
            &bulk(json!([patient("x"), {"name": "onlySingleMatch", "valueBoolean": false}])),
            "urn:iisbulk:id",
            1,
        )
        .unwrap();
        assert_eq!(not_single.count, MAX_COUNT);
    }

    #[test]
    fn bad_bulk_requests_name_the_patient_or_parameter_at_fault() {
        let no_id = json!({"name": "resource", "resource": {"resourceType": "Patient",
            "name": [{"family": "Doe"}], "birthDate": "2020-02-01"}});
        let no_birth = json!({"name": "resource", "resource": {"resourceType": "Patient", "id": "b",
            "name": [{"family": "Doe"}]}});
        let cases = [
            (json!({"resourceType": "Patient"}), 400, "body"),
            (bulk(json!([])), 400, "resource"),
            (
                bulk(json!([patient("a"), patient("b"), patient("c")])),
                413,
                "resource",
            ),
            (bulk(json!([patient("a"), no_id])), 400, "resource[1].id"),
            (
                bulk(json!([patient("a"), patient("a")])),
                400,
                "resource[1].id",
            ),
            (bulk(json!([patient("a b")])), 400, "resource[0].id"),
            (
                bulk(json!([patient("a"), no_birth])),
                422,
                "resource[1].Patient.birthDate",
            ),
            (
                bulk(
                    json!([{"name": "resource", "resource": {"resourceType": "Observation", "id": "o"}}]),
                ),
                400,
                "resource[0]",
            ),
            (
                bulk(json!([patient("a"), {"name": "count", "valueInteger": 0}])),
                400,
                "count",
            ),
            (
                bulk(json!([patient("a"), {"name": "count", "valueString": "2"}])),
                400,
                "count",
            ),
            (
                bulk(json!([patient("a"), {"name": "onlyCertainMatches", "valueString": "yes"}])),
                400,
                "onlyCertainMatches",
            ),
            (
                bulk(json!([patient("a"), {"name": "limit", "valueInteger": 1}])),
                400,
                "limit",
            ),
            (
                bulk(json!([patient("a"), {"name": "onlySingleMatch", "valueInteger": 1}])),
                400,
                "onlySingleMatch",
            ),
            (
                bulk(json!([patient("a"), {"name": "_outputFormat", "valueString": "text/csv"}])),
                400,
                "_outputFormat",
            ),
            (
                bulk(json!([patient("a"), {"name": "_outputFormat", "valueCode": "ndjson"}])),
                400,
                "_outputFormat",
            ),
        ];
        for (body, status, expression) in cases {
            let e = parse_bulk_match_request(&body, "urn:iisbulk:id", 2).unwrap_err();
            assert_eq!(
                (e.status, e.expression.as_str()),
                (status, expression),
                "{body}: {e:?}"
            );
        }
    }

    #[test]
    fn scores_keep_grades_apart_and_order_within_them() {
        let (c, p) = (20.0, 10.0);
        let certain_low = score(Grade::Certain, 20.0, c, p);
        let certain_high = score(Grade::Certain, 40.0, c, p);
        let possible_high = score(Grade::Possible, 19.9, c, p);
        let possible_low = score(Grade::Possible, 10.0, c, p);
        assert!(certain_high > certain_low && certain_low >= 0.9);
        assert!(possible_high < 0.9 && possible_high > possible_low && possible_low >= 0.5);
        // A certain grade from a chart lookup below the band is still certain.
        assert!(score(Grade::Certain, 5.0, c, p) >= 0.9);
    }
}
