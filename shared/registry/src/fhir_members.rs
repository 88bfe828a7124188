//! `Group/$member-add` and `Group/$member-remove` requests, in the shape of
//! Da Vinci Member Attribution (ATR): the patient as `patientReference`
//! (`Patient/<id>`, the id a V2-dynamic Z32, a `$match` or an export gave),
//! as `memberId` (the Authorized User's own chart number, as its VXUs carry
//! it), or as a `patient` resource with identifiers and demographics,
//! matched as `Patient/$match` matches (only a certain match counts). An
//! add may carry an `attestation` of the relationship, which counts where
//! the jurisdiction's policy allows it; a remove may carry `reason`, or be
//! a `reset` of the whole Group. ATR's provider parameters
//! (`providerNpi`, `providerReference`) and `attributionPeriod` have no
//! meaning here (the Authorized User is the provider; membership has no
//! planned end) and are listed back as ignored. Pure: the FHIR side
//! resolves and applies.

use serde_json::Value;

use iz::view::Identifier;

use crate::fhir_match::{patient_request, MatchRequest};
use crate::problem::{bad, Problem};

/// Which operation a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberOperation {
    Add,
    Remove,
}

impl MemberOperation {
    pub fn name(self) -> &'static str {
        match self {
            MemberOperation::Add => "$member-add",
            MemberOperation::Remove => "$member-remove",
        }
    }
}

/// The patient a request names.
#[derive(Clone, Debug)]
pub enum NamedPatient {
    /// A registry Patient id.
    Reference(String),
    /// The Authorized User's own chart number.
    MemberId(Identifier),
    /// Demographics to match (a certain match only).
    Described(Box<MatchRequest>),
}

/// What a `$member-add` / `$member-remove` asks.
#[derive(Clone, Debug)]
pub enum MemberRequest {
    /// Add or remove one patient.
    One {
        patient: NamedPatient,
        /// Add: the client's attestation of a relationship.
        attestation: Option<String>,
        /// Remove: why, in the client's words.
        reason: Option<String>,
        /// ATR parameters accepted and not used, by name.
        ignored: Vec<String>,
    },
    /// Remove every member (`$member-remove` with `reset` true).
    Reset { reason: Option<String> },
}

fn text_value(p: &Value, name: &str) -> Result<String, Problem> {
    p.get("valueString")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad(name, format!("{name} must be a non-empty valueString")))
}

/// Reads the Parameters body of `operation`. `identifier_base` maps the
/// identifier systems this IIS exports back to v2 assigning authorities.
pub fn parse_member_request(
    body: &Value,
    operation: MemberOperation,
    identifier_base: &str,
) -> Result<MemberRequest, Problem> {
    let op = operation.name();
    let Some(obj) = body.as_object() else {
        return Err(bad(
            "body",
            format!("the body of {op} must be a FHIR Parameters resource (JSON object)"),
        ));
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(bad(
            "body",
            format!(
                "the body of {op} must be a FHIR Parameters resource (resourceType Parameters)"
            ),
        ));
    }
    let parameters = match obj.get("parameter") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return Err(bad("parameter", "Parameters.parameter must be an array")),
    };
    let mut named: Vec<(&str, NamedPatient)> = Vec::new();
    let mut attestation = None;
    let mut reason = None;
    let mut reset = None;
    let mut ignored = Vec::new();
    for (n, p) in parameters.iter().enumerate() {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(bad(
                &format!("parameter[{n}]"),
                format!("parameter {} has no name", n + 1),
            ));
        };
        match name {
            "patientReference" => {
                let reference = p
                    .get("valueReference")
                    .and_then(|r| r.get("reference"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(
                            name,
                            "patientReference must be a valueReference to Patient/<id>",
                        )
                    })?;
                let id = reference
                    .rsplit_once("Patient/")
                    .map(|(_, id)| id)
                    .filter(|id| {
                        !id.is_empty()
                            && id.len() <= 64
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    })
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!(
                                "patientReference {reference:?} is not a reference to Patient/<id>"
                            ),
                        )
                    })?;
                named.push((name, NamedPatient::Reference(id.to_owned())));
            }
            "memberId" => {
                let id = p.get("valueIdentifier").ok_or_else(|| {
                    bad(
                        name,
                        "memberId must be a valueIdentifier (your chart number for the patient)",
                    )
                })?;
                let identifier = crate::fhir_match::v2_identifier(id, identifier_base)
                    .ok_or_else(|| bad(name, "memberId has no value"))?;
                named.push((name, NamedPatient::MemberId(identifier)));
            }
            "patient" => {
                let Some(r) = p.get("resource").and_then(Value::as_object) else {
                    return Err(bad(
                        name,
                        "the patient parameter must hold a Patient resource",
                    ));
                };
                if r.get("resourceType").and_then(Value::as_str) != Some("Patient") {
                    return Err(bad(
                        name,
                        "the patient parameter's resource must be a Patient",
                    ));
                }
                let request = patient_request(r, identifier_base)?;
                named.push((name, NamedPatient::Described(Box::new(request))));
            }
            "attestation" if operation == MemberOperation::Add => {
                attestation = Some(text_value(p, name)?);
            }
            "reason" if operation == MemberOperation::Remove => {
                reason = Some(text_value(p, name)?);
            }
            "reset" if operation == MemberOperation::Remove => {
                reset = Some(
                    p.get("valueBoolean")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| bad(name, "reset must be a valueBoolean"))?,
                );
            }
            "providerNpi" | "providerReference" | "attributionPeriod" | "coverageReference" => {
                ignored.push(name.to_owned());
            }
            other => {
                let takes = match operation {
                    MemberOperation::Add => {
                        "patientReference, memberId or patient, and attestation"
                    }
                    MemberOperation::Remove => {
                        "patientReference, memberId or patient, and reason; or reset"
                    }
                };
                return Err(bad(
                    other,
                    format!("unknown parameter {other:?}: {op} takes {takes}"),
                ));
            }
        }
    }
    if reset == Some(true) {
        if let Some((name, _)) = named.first() {
            return Err(bad(
                name,
                "reset removes every member: name no patient with it",
            ));
        }
        return Ok(MemberRequest::Reset { reason });
    }
    let mut named = named.into_iter();
    let Some((_, patient)) = named.next() else {
        return Err(bad(
            "patientReference",
            format!("{op} needs the patient: patientReference, memberId or patient"),
        ));
    };
    if let Some((name, _)) = named.next() {
        return Err(bad(
            name,
            format!("{op} takes one patient: give one of patientReference, memberId or patient"),
        ));
    }
    Ok(MemberRequest::One {
        patient,
        attestation,
        reason,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(params: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": params})
    }

    #[test]
    fn each_way_of_naming_the_patient_is_read() {
        let r = parse_member_request(
            &body(json!([
                {"name": "patientReference", "valueReference": {"reference": "Patient/abc123"}},
                {"name": "providerNpi", "valueIdentifier": {"value": "1234567890"}},
                {"name": "attestation", "valueString": "scheduled well-child visit"}
            ])),
            MemberOperation::Add,
            "urn:iisbulk:id",
        )
        .unwrap();
        let MemberRequest::One {
            patient: NamedPatient::Reference(id),
            attestation,
            ignored,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(id, "abc123");
        assert_eq!(attestation.as_deref(), Some("scheduled well-child visit"));
        assert_eq!(ignored, vec!["providerNpi".to_owned()]);

        let r = parse_member_request(
            &body(json!([{"name": "memberId", "valueIdentifier": {"system": "urn:iisbulk:id/authority/MYEHR", "value": "MRN-7"}}])),
            MemberOperation::Remove,
            "urn:iisbulk:id",
        )
        .unwrap();
        let MemberRequest::One {
            patient: NamedPatient::MemberId(id),
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (
                id.id.as_str(),
                id.authority.as_deref(),
                id.type_code.as_deref()
            ),
            ("MRN-7", Some("MYEHR"), Some("MR"))
        );

        let r = parse_member_request(
            &body(json!([{"name": "patient", "resource": {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Ann"]}], "birthDate": "2021-03-04"}}])),
            MemberOperation::Add,
            "urn:iisbulk:id",
        )
        .unwrap();
        assert!(matches!(
            r,
            MemberRequest::One {
                patient: NamedPatient::Described(_),
                ..
            }
        ));

        let r = parse_member_request(
            &body(json!([{"name": "reset", "valueBoolean": true}, {"name": "reason", "valueString": "new school year"}])),
            MemberOperation::Remove,
            "urn:iisbulk:id",
        )
        .unwrap();
        assert!(
            matches!(r, MemberRequest::Reset { reason: Some(ref why) } if why == "new school year")
        );
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let p = |v: Value| body(v);
        for (request, op, expression) in [
            (json!({}), MemberOperation::Add, "body"),
            (p(json!([])), MemberOperation::Add, "patientReference"),
            (
                p(
                    json!([{"name": "patientReference", "valueReference": {"reference": "Group/1"}}]),
                ),
                MemberOperation::Add,
                "patientReference",
            ),
            (
                p(json!([{"name": "patientReference", "valueString": "Patient/1"}])),
                MemberOperation::Add,
                "patientReference",
            ),
            (
                p(json!([
                    {"name": "patientReference", "valueReference": {"reference": "Patient/1"}},
                    {"name": "memberId", "valueIdentifier": {"value": "7"}}
                ])),
                MemberOperation::Add,
                "memberId",
            ),
            (
                p(json!([{"name": "memberId", "valueIdentifier": {"system": "x"}}])),
                MemberOperation::Add,
                "memberId",
            ),
            (
                p(json!([{"name": "reset", "valueBoolean": true}])),
                MemberOperation::Add,
                "reset",
            ),
            (
                p(json!([{"name": "attestation", "valueString": "x"}])),
                MemberOperation::Remove,
                "attestation",
            ),
            (
                p(json!([
                    {"name": "reset", "valueBoolean": true},
                    {"name": "patientReference", "valueReference": {"reference": "Patient/1"}}
                ])),
                MemberOperation::Remove,
                "patientReference",
            ),
            (
                p(json!([{"name": "patient", "resource": {"resourceType": "Patient"}}])),
                MemberOperation::Add,
                "Patient.name",
            ),
        ] {
            let e = parse_member_request(&request, op, "urn:iisbulk:id").unwrap_err();
            assert_eq!(e.expression, expression, "{request}: {e:?}");
        }
    }
}
