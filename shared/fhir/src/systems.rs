//! Code system and extension URIs, in one place.

pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
pub const MVX: &str = "http://terminology.hl7.org/CodeSystem/MVX";
pub const NCI_THESAURUS: &str = "http://ncithesaurus-stage.nci.nih.gov";
pub const LOINC: &str = "http://loinc.org";
/// valid | notvalid (ImmunizationEvaluation.doseStatus).
pub const EVALUATION_DOSE_STATUS: &str =
    "http://terminology.hl7.org/CodeSystem/immunization-evaluation-dose-status";
/// Why a dose is not valid (ImmunizationEvaluation.doseStatusReason).
pub const EVALUATION_DOSE_STATUS_REASON: &str =
    "http://terminology.hl7.org/CodeSystem/immunization-evaluation-dose-status-reason";
/// due | overdue | immune | contraindicated | complete.
pub const RECOMMENDATION_STATUS: &str =
    "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status";
/// The ImmDS IG's forecast operation, named in the CapabilityStatement.
pub const IMMDS_FORECAST_OPERATION: &str =
    "http://hl7.org/fhir/us/immds/OperationDefinition/ImmDSForecastOperation";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const V3_ACT_SITE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActSite";
pub const V3_ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub const V3_OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub const V2_0443: &str = "http://terminology.hl7.org/CodeSystem/v2-0443";
pub const IMMUNIZATION_ORIGIN: &str = "http://terminology.hl7.org/CodeSystem/immunization-origin";
pub const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
pub const CDC_RACE_ETHNICITY: &str = "urn:oid:2.16.840.1.113883.6.238";
pub const US_CORE_RACE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";
pub const US_CORE_ETHNICITY: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity";
pub const MOTHERS_MAIDEN_NAME: &str =
    "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName";
pub const US_CORE_PATIENT: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient";
pub const US_CORE_IMMUNIZATION: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization";

/// The FHIR system for an HL7 v2 coding system name as it appears in CE/CWE
/// component 3 (`CVX`, `HL70162`, `NCIT`…), when there is a well-known one.
/// Local and unknown systems get none: a bare code is honest, an invented
/// URI is not.
pub fn system_for_v2(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    let known = match upper.as_str() {
        "CVX" => Some(CVX),
        "NDC" => Some(NDC),
        "MVX" => Some(MVX),
        "NCIT" => Some(NCI_THESAURUS),
        "UCUM" => Some(UCUM),
        "CDCREC" => Some(CDC_RACE_ETHNICITY),
        "HL70163" => Some(V3_ACT_SITE),
        _ => None,
    };
    if let Some(k) = known {
        return Some(k.to_owned());
    }
    // HL7-defined tables (HL70162 route, HL70064 financial class, …).
    let table = upper.strip_prefix("HL7")?;
    (table.len() == 4 && table.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("http://terminology.hl7.org/CodeSystem/v2-{table}"))
}

/// An identifier system for an HL7 v2 assigning authority (CX-4.1): an OID
/// becomes `urn:oid:`, a URI is kept, anything else is namespaced under the
/// jurisdiction's base so that two senders' "MRN" namespaces never collide.
pub fn identifier_system(authority: &str, base: &str) -> String {
    let a = authority.trim();
    let is_oid = !a.is_empty()
        && a.split('.').count() > 1
        && a.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_oid {
        format!("urn:oid:{a}")
    } else if a.starts_with("urn:") || a.starts_with("http://") || a.starts_with("https://") {
        a.to_owned()
    } else {
        let safe: String = a
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}/{safe}", base.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_systems() {
        assert_eq!(system_for_v2("CVX").as_deref(), Some(CVX));
        assert_eq!(
            system_for_v2("hl70162").as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v2-0162")
        );
        assert_eq!(system_for_v2("HL70163").as_deref(), Some(V3_ACT_SITE));
        assert_eq!(system_for_v2("99TPG"), None);
        assert_eq!(system_for_v2("HL7"), None);
    }

    #[test]
    fn identifier_systems() {
        assert_eq!(
            identifier_system("2.16.840.1.113883.19", "urn:x"),
            "urn:oid:2.16.840.1.113883.19"
        );
        assert_eq!(
            identifier_system("MYEHR", "urn:iisbulk:authority"),
            "urn:iisbulk:authority/MYEHR"
        );
        assert_eq!(identifier_system("A B&C", "urn:b/"), "urn:b/A_B_C");
        assert_eq!(
            identifier_system("https://x.org/mrn", "urn:b"),
            "https://x.org/mrn"
        );
    }
}
