//! Where an exported record came from, as FHIR Provenance (the Bulk Data
//! `includeAssociatedData=LatestProvenanceResources` payload): for a
//! Patient, the charts behind the consolidated demographics; for an
//! Immunization, every report behind the vaccination event. Each names the
//! Authorized Users whose messages said it (agents of type author, by their
//! identifier) and those messages (entities of role source, by our message
//! id), recorded as of the newest of them. One Provenance per exported
//! resource, so each is that resource's latest. Pure.

use fhir::{CodeableConcept, Coding, Identifier as FhirIdentifier, Reference};

use crate::persons::{Immunization, Person, SourceRecord};
use crate::resources::{fhir_id, instant};

/// The HL7 provenance participant types.
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

fn system(base: &str, what: &str) -> String {
    format!("{}/{what}", base.trim_end_matches('/'))
}

/// When a message was received: our message ids are UUIDv7, whose first 48
/// bits are the receipt's Unix milliseconds. `None` for an id that is not one.
pub fn received_ms(message_id: &str) -> Option<i64> {
    let hex = message_id.get(..12)?;
    let ms = i64::from_str_radix(hex, 16).ok()?;
    (message_id.len() == 32 && message_id.as_bytes().get(12) == Some(&b'7')).then_some(ms)
}

fn author(au: &str, base: &str) -> fhir::ProvenanceAgent {
    fhir::ProvenanceAgent {
        r#type: Some(CodeableConcept::coded(Coding::new(
            PARTICIPANT_TYPE,
            "author",
            Some("Author"),
        ))),
        who: Reference {
            identifier: Some(FhirIdentifier {
                system: Some(system(base, "authorized-user")),
                value: Some(au.to_owned()),
                ..FhirIdentifier::default()
            }),
            ..Reference::default()
        },
    }
}

fn message(id: &str, base: &str) -> fhir::ProvenanceEntity {
    fhir::ProvenanceEntity {
        role: "source".into(),
        what: Reference {
            identifier: Some(FhirIdentifier {
                system: Some(system(base, "message")),
                value: Some(id.to_owned()),
                ..FhirIdentifier::default()
            }),
            display: Some("HL7 v2 VXU".into()),
            ..Reference::default()
        },
    }
}

/// `(au, message id)` pairs into a Provenance of `target`: one author per
/// Authorized User, one entity per message, both in first-seen order.
fn provenance<'a>(
    id: String,
    target: Reference,
    reports: impl Iterator<Item = (&'a str, &'a str)>,
    fallback_ms: i64,
    base: &str,
) -> Option<fhir::Provenance> {
    let mut aus: Vec<&str> = Vec::new();
    let mut messages: Vec<&str> = Vec::new();
    for (au, msg) in reports {
        if !aus.contains(&au) {
            aus.push(au);
        }
        if !msg.is_empty() && !messages.contains(&msg) {
            messages.push(msg);
        }
    }
    if aus.is_empty() {
        return None;
    }
    let recorded = messages
        .iter()
        .filter_map(|m| received_ms(m))
        .max()
        .unwrap_or(fallback_ms);
    Some(fhir::Provenance {
        id,
        target: vec![target],
        recorded: instant(recorded),
        agent: aus.into_iter().map(|au| author(au, base)).collect(),
        entity: messages.into_iter().map(|m| message(m, base)).collect(),
        ..fhir::Provenance::default()
    })
}

/// The Provenance of an exported Patient: the Authorized Users whose charts
/// (`sources`, the person's source records) make its demographics, and
/// each chart's latest message.
pub fn patient_provenance(
    person: &Person,
    sources: &[SourceRecord],
    base: &str,
) -> Option<fhir::Provenance> {
    let patient = fhir_id(&person.id);
    let newest = sources.iter().map(|s| s.updated_at).max().unwrap_or(0);
    provenance(
        format!("pat-{patient}"),
        Reference::to("Patient", &patient),
        sources
            .iter()
            .map(|s| (s.au.as_str(), s.last_message.as_str())),
        newest,
        base,
    )
}

/// The Provenance of an exported Immunization: every report behind the
/// vaccination event, by Authorized User and message.
pub fn immunization_provenance(
    imm: &Immunization,
    fallback_ms: i64,
    base: &str,
) -> Option<fhir::Provenance> {
    let id = fhir_id(&imm.id);
    provenance(
        format!("imm-{id}"),
        Reference::to("Immunization", &id),
        imm.sources
            .iter()
            .map(|s| (s.au.as_str(), s.message_id.as_str())),
        fallback_ms,
        base,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_v7_message_id_gives_its_receipt_time() {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let now = store::limits::now_epoch_millis();
        let got = received_ms(&id).unwrap();
        assert!((now - got).abs() < 5_000, "{got} vs {now}");
        assert_eq!(received_ms("m1"), None);
        assert_eq!(
            received_ms(&uuid::Uuid::new_v4().simple().to_string()),
            None
        );
    }

    #[test]
    fn authors_and_messages_are_listed_once_each() {
        let m1 = "0190b8a1c2d37000800000000000000a";
        let m2 = "0190b8a1c2d47000800000000000000b";
        let p = provenance(
            "imm-x".into(),
            Reference::to("Immunization", "x"),
            [("clinic-a", m1), ("clinic-b", m2), ("clinic-a", m1)].into_iter(),
            0,
            "urn:iisbulk:id",
        )
        .unwrap();
        assert_eq!(p.agent.len(), 2);
        assert_eq!(p.entity.len(), 2);
        assert_eq!(p.recorded, instant(received_ms(m2).unwrap()));
        assert_eq!(
            p.agent[1].who.identifier.as_ref().unwrap().value.as_deref(),
            Some("clinic-b")
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["resourceType"], "Provenance");
        assert_eq!(json["entity"][0]["role"], "source");
        assert_eq!(
            json["agent"][0]["type"]["coding"][0]["code"], "author",
            "{json}"
        );
        // Nobody reported it: no Provenance rather than an invalid one.
        assert!(provenance(
            "x".into(),
            Reference::to("Patient", "x"),
            std::iter::empty(),
            0,
            "b"
        )
        .is_none());
    }
}
