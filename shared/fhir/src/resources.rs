//! The resources. Each carries a zero-sized `resourceType` marker, so a
//! resource serializes on its own with the right type and a Patient's JSON
//! never deserializes as a Group.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::datatypes::*;

macro_rules! resource_type {
    ($marker:ident, $name:literal) => {
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $marker;

        impl $marker {
            pub const NAME: &'static str = $name;
        }

        impl Serialize for $marker {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($name)
            }
        }

        impl<'de> Deserialize<'de> for $marker {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let got = String::deserialize(d)?;
                if got == $name {
                    Ok($marker)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "resourceType is {got:?}, expected {:?}",
                        $name
                    )))
                }
            }
        }
    };
}

resource_type!(GroupType, "Group");
resource_type!(PatientType, "Patient");
resource_type!(ImmunizationType, "Immunization");
resource_type!(OrganizationType, "Organization");
resource_type!(OperationOutcomeType, "OperationOutcome");
resource_type!(BundleType, "Bundle");
resource_type!(ImmunizationEvaluationType, "ImmunizationEvaluation");
resource_type!(ImmunizationRecommendationType, "ImmunizationRecommendation");
resource_type!(ParametersType, "Parameters");
resource_type!(AuditEventType, "AuditEvent");
resource_type!(ProvenanceType, "Provenance");

fn meta_is_empty(m: &Option<Meta>) -> bool {
    m.as_ref().is_none_or(Meta::is_empty)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub resource_type: GroupType,
    pub id: String,
    #[serde(default, skip_serializing_if = "meta_is_empty")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    pub active: bool,
    /// Always `person` for an Authorized User's Group.
    pub r#type: String,
    /// Always true: the members are enumerated.
    pub actual: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quantity: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managing_entity: Option<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member: Vec<GroupMember>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub resource_type: PatientType,
    pub id: String,
    #[serde(default, skip_serializing_if = "meta_is_empty")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_boolean: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_birth_boolean: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_birth_integer: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<Contact>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Immunization {
    pub resource_type: ImmunizationType,
    pub id: String,
    #[serde(default, skip_serializing_if = "meta_is_empty")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// completed | not-done (entered-in-error records are deleted instead).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<CodeableConcept>,
    pub vaccine_code: CodeableConcept,
    pub patient: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_source: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_origin: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<Performer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_subpotent: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub education: Vec<Education>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub program_eligibility: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding_source: Option<CodeableConcept>,
}

/// One dose judged against a schedule (CDC CDSi through the ImmDS
/// `$immds-forecast` operation): one per dose and vaccine group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationEvaluation {
    pub resource_type: ImmunizationEvaluationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// completed (entered-in-error is never produced).
    pub status: String,
    pub patient: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Reference>,
    pub target_disease: CodeableConcept,
    pub immunization_event: Reference,
    /// valid | notvalid (immunization-evaluation-dose-status).
    pub dose_status: CodeableConcept,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dose_status_reason: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_number_positive_int: Option<u32>,
}

/// A patient's forecast as of a date: one recommendation per vaccine group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationRecommendation {
    pub resource_type: ImmunizationRecommendationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub patient: Reference,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Reference>,
    pub recommendation: Vec<Recommendation>,
}

/// `ImmunizationRecommendation.recommendation`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vaccine_code: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_disease: Option<CodeableConcept>,
    pub forecast_status: CodeableConcept,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forecast_reason: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub date_criterion: Vec<DateCriterion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_number_positive_int: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_immunization: Vec<Reference>,
}

/// A date that matters for a recommendation (earliest, due, overdue, latest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateCriterion {
    pub code: CodeableConcept,
    pub value: String,
}

/// The in- and out-parameters of an operation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    pub resource_type: ParametersType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter: Vec<Parameter>,
}

/// One parameter: a resource (already serialized, any type) or a value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
}

impl Parameters {
    /// Adds a parameter holding a serializable resource.
    pub fn push_resource<R: Serialize>(
        &mut self,
        name: &str,
        resource: &R,
    ) -> serde_json::Result<()> {
        self.parameter.push(Parameter {
            name: name.to_owned(),
            resource: Some(serde_json::to_value(resource)?),
            ..Parameter::default()
        });
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub resource_type: OrganizationType,
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#type: Vec<CodeableConcept>,
    pub name: String,
}

/// Where a record came from: the Bulk Data `includeAssociatedData =
/// LatestProvenanceResources` payload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub resource_type: ProvenanceType,
    pub id: String,
    pub target: Vec<Reference>,
    /// When the newest information it describes was received (an instant).
    pub recorded: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<CodeableConcept>,
    pub agent: Vec<ProvenanceAgent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity: Vec<ProvenanceEntity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceAgent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<CodeableConcept>,
    pub who: Reference,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceEntity {
    /// derivation | revision | quotation | source | removal
    pub role: String,
    pub what: Reference,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    pub resource_type: OperationOutcomeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub issue: Vec<Issue>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// fatal | error | warning | information
    pub severity: String,
    /// The IssueType code (invalid, not-found, forbidden, processing…).
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

impl OperationOutcome {
    /// One error issue: what the client sees for a refused request.
    pub fn error(code: &str, diagnostics: impl Into<String>) -> OperationOutcome {
        OperationOutcome::single("error", code, diagnostics)
    }

    pub fn single(severity: &str, code: &str, diagnostics: impl Into<String>) -> OperationOutcome {
        OperationOutcome {
            resource_type: OperationOutcomeType,
            id: None,
            issue: vec![Issue {
                severity: severity.to_owned(),
                code: code.to_owned(),
                diagnostics: Some(diagnostics.into()),
                expression: Vec::new(),
            }],
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub resource_type: BundleType,
    /// A `Patient/$bulk-match` result Bundle names the input patient it
    /// answers here (the `match-resource` extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::Meta>,
    /// searchset for search results.
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<BundleLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleLink {
    pub relation: String,
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// Any resource, already serialized (a searchset mixes types).
    pub resource: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<BundleSearch>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleSearch {
    /// match | include | outcome
    pub mode: String,
    /// How well the entry matches (0 to 1): `Patient/$match` answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The match-grade extension of a `Patient/$match` entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<crate::Extension>,
}

impl Bundle {
    pub fn searchset(total: u64, self_url: &str) -> Bundle {
        Bundle {
            resource_type: BundleType,
            meta: None,
            r#type: "searchset".into(),
            total: Some(total),
            link: vec![BundleLink {
                relation: "self".into(),
                url: self_url.to_owned(),
            }],
            entry: Vec::new(),
        }
    }

    /// Adds a match entry for a serializable resource.
    pub fn push<R: Serialize>(&mut self, full_url: String, resource: &R) -> serde_json::Result<()> {
        self.entry.push(BundleEntry {
            full_url: Some(full_url),
            resource: serde_json::to_value(resource)?,
            search: Some(BundleSearch {
                mode: "match".into(),
                ..BundleSearch::default()
            }),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_type_is_written_and_checked() {
        let p = Patient {
            id: "p1".into(),
            gender: Some("female".into()),
            ..Patient::default()
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["resourceType"], "Patient");
        assert_eq!(json["gender"], "female");
        // Empty elements are left out, never null or [].
        assert!(json.get("name").is_none());
        assert!(json.get("meta").is_none());
        let back: Patient = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, p);
        let err = serde_json::from_value::<Group>(json).unwrap_err();
        assert!(err.to_string().contains("expected \"Group\""), "{err}");
    }

    #[test]
    fn group_member_inactive_only_when_true() {
        let g = Group {
            id: "g".into(),
            active: true,
            r#type: "person".into(),
            actual: true,
            quantity: 1,
            member: vec![
                GroupMember {
                    entity: Reference::to("Patient", "a"),
                    period: Some(Period {
                        start: Some("2026-01-01T00:00:00Z".into()),
                        end: None,
                    }),
                    inactive: false,
                },
                GroupMember {
                    entity: Reference::to("Patient", "b"),
                    period: None,
                    inactive: true,
                },
            ],
            ..Group::default()
        };
        let json = serde_json::to_value(&g).unwrap();
        assert!(json["member"][0].get("inactive").is_none());
        assert_eq!(json["member"][1]["inactive"], true);
        assert_eq!(serde_json::from_value::<Group>(json).unwrap(), g);
    }

    #[test]
    fn operation_outcome_error() {
        let o = OperationOutcome::error("not-found", "no such Group");
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(
            json,
            r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"no such Group"}]}"#
        );
    }
}

/// One entry of the IIS's audit trail, as an auditor exports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub resource_type: AuditEventType,
    pub id: String,
    pub r#type: Coding,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtype: Vec<Coding>,
    /// C | R | U | D | E
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub recorded: String,
    /// 0 success | 4 minor failure | 8 serious failure | 12 major failure
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_desc: Option<String>,
    pub agent: Vec<AuditEventAgent>,
    pub source: AuditEventSource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity: Vec<AuditEventEntity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventAgent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<Reference>,
    pub requestor: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<AuditEventNetwork>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// 1 machine name | 2 IP address | ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub observer: Reference,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<Coding>,
}
