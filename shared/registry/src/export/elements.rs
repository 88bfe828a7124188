//! `_elements`: a resource cut to the top-level elements asked for, keeping
//! those FHIR requires (a cut resource must still be valid) and tagged
//! SUBSETTED, as the Bulk Data IG asks.

use serde_json::{json, Map, Value};

use super::request::ResourceType;

/// Elements a resource of this type cannot be valid without.
fn mandatory(t: ResourceType) -> &'static [&'static str] {
    match t {
        ResourceType::Immunization => &[
            "status",
            "vaccineCode",
            "patient",
            "occurrenceDateTime",
            "occurrenceString",
        ],
        ResourceType::Group => &["type", "actual"],
        ResourceType::ImmunizationRecommendation => &["patient", "date", "recommendation"],
        ResourceType::Provenance => &["target", "recorded", "agent"],
        ResourceType::Patient | ResourceType::Organization => &[],
    }
}

/// The elements that apply to `t` (`None`: no `_elements` for it, keep all).
pub fn wanted(t: ResourceType, elements: &[(Option<ResourceType>, String)]) -> Option<Vec<&str>> {
    let mine: Vec<&str> = elements
        .iter()
        .filter(|(only, _)| only.is_none_or(|o| o == t))
        .map(|(_, e)| e.as_str())
        .collect();
    (!mine.is_empty()).then_some(mine)
}

/// Cuts `resource` (a JSON object of type `t`) to `keep` plus what is required.
pub fn subset(t: ResourceType, resource: Value, keep: &[&str]) -> Value {
    let Value::Object(map) = resource else {
        return resource;
    };
    let mut out = Map::new();
    for (k, v) in map {
        let always = matches!(k.as_str(), "resourceType" | "id" | "meta");
        if always || keep.contains(&k.as_str()) || mandatory(t).contains(&k.as_str()) {
            out.insert(k, v);
        }
    }
    let meta = out.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            // System and code only, as the Bulk Data IG shows the tag
            // (clients compare the coding whole).
            tags.push(json!({
                "system": fhir::V3_OBSERVATION_VALUE,
                "code": "SUBSETTED"
            }));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_required_and_tagged() {
        let imm = json!({"resourceType": "Immunization", "id": "i", "status": "completed",
            "vaccineCode": {"text": "x"}, "patient": {"reference": "Patient/p"},
            "occurrenceDateTime": "2026-01-01", "lotNumber": "L1", "site": {"text": "LA"}});
        let elements = vec![
            (Some(ResourceType::Patient), "name".to_owned()),
            (None, "lotNumber".to_owned()),
        ];
        let keep = wanted(ResourceType::Immunization, &elements).unwrap();
        assert_eq!(keep, ["lotNumber"]);
        let cut = subset(ResourceType::Immunization, imm, &keep);
        assert_eq!(cut["lotNumber"], "L1");
        assert!(cut.get("site").is_none());
        assert_eq!(cut["status"], "completed");
        assert_eq!(cut["meta"]["tag"][0]["code"], "SUBSETTED");
        assert!(wanted(
            ResourceType::Group,
            &[(Some(ResourceType::Patient), "name".into())]
        )
        .is_none());
    }
}
