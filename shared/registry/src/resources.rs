//! The registry's records as FHIR R4 resources (the payload of the read API
//! and of Bulk Data export), with US Core in mind: CVX/NDC/MVX systems, OMB
//! race and ethnicity extensions, identifiers with systems.
//!
//! A Patient is rendered for one Authorized User: besides our id it carries
//! only that user's own identifiers, never another clinic's MRNs.

use fhir::{
    identifier_system, system_for_v2, Address as FhirAddress, CodeableConcept, Coding, Contact,
    ContactPoint, Education, Extension, GroupMember, HumanName, Identifier as FhirIdentifier, Meta,
    Performer, Period, Quantity, Reference,
};
use iz::view::{
    Address, Administration, Coded, CompletionStatus, Identifier, NextOfKin, PersonName, Phone,
    Provider,
};
use iz::Clock;

use crate::authorized_user::{AuKind, AuthorizedUser};
use crate::keys::short_hash;
use crate::membership::{GroupRecord, Member};
use crate::persons::{Demographics, Immunization, Person};

/// A FHIR id for one of ours: kept when FHIR allows it (`[A-Za-z0-9-.]{1,64}`),
/// else a stable hash of it.
pub fn fhir_id(id: &str) -> String {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        id.to_owned()
    } else {
        format!("h{}", &short_hash(id.as_bytes())[..31])
    }
}

/// An instant from epoch milliseconds.
pub fn instant(ms: i64) -> String {
    Clock::at(ms.div_euclid(1000)).instant()
}

fn system(base: &str, what: &str) -> String {
    format!("{}/{what}", base.trim_end_matches('/'))
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn coding(c: &Coded) -> Coding {
    Coding {
        system: c.system.as_deref().and_then(system_for_v2),
        code: Some(c.code.clone()).filter(|s| !s.is_empty()),
        display: some(&c.text),
    }
}

fn concept(c: &Coded) -> CodeableConcept {
    CodeableConcept {
        coding: vec![coding(c)],
        text: None,
    }
}

pub fn organization(au: &AuthorizedUser, base: &str) -> fhir::Organization {
    let (code, display) = match au.kind {
        AuKind::Clinic | AuKind::HealthSystem | AuKind::Pharmacy => ("prov", "Healthcare Provider"),
        AuKind::HealthDepartment => ("govt", "Government"),
        AuKind::School => ("edu", "Educational Institute"),
        AuKind::Payer => ("pay", "Payer"),
        AuKind::Other => ("other", "Other"),
    };
    fhir::Organization {
        id: fhir_id(&au.id),
        identifier: vec![FhirIdentifier {
            system: Some(system(base, "authorized-user")),
            value: Some(au.id.clone()),
            ..FhirIdentifier::default()
        }],
        active: true,
        r#type: vec![CodeableConcept::coded(Coding::new(
            fhir::ORGANIZATION_TYPE,
            code,
            Some(display),
        ))],
        name: au.name.clone(),
        ..fhir::Organization::default()
    }
}

/// The Group identifier system; its value is the Authorized User's id.
pub fn group_identifier_system(base: &str) -> String {
    system(base, "authorized-user-group")
}

/// The Group; `members` may be a page, or empty when the Group is
/// summarised (then tagged SUBSETTED).
pub fn group(
    record: &GroupRecord,
    au: &AuthorizedUser,
    quantity: u64,
    members: &[Member],
    subsetted: bool,
    base: &str,
) -> fhir::Group {
    let meta = subsetted.then(|| Meta {
        tag: vec![Coding::new(fhir::V3_OBSERVATION_VALUE, "SUBSETTED", None)],
        ..Meta::default()
    });
    fhir::Group {
        id: record.id.clone(),
        meta,
        identifier: vec![FhirIdentifier {
            system: Some(group_identifier_system(base)),
            value: Some(au.id.clone()),
            ..FhirIdentifier::default()
        }],
        active: true,
        r#type: "person".into(),
        actual: true,
        name: Some(record.name.clone()),
        quantity,
        managing_entity: Some(Reference {
            display: Some(au.name.clone()),
            ..Reference::to("Organization", &fhir_id(&au.id))
        }),
        member: members.iter().map(group_member).collect(),
        ..fhir::Group::default()
    }
}

pub fn group_member(m: &Member) -> GroupMember {
    GroupMember {
        entity: Reference::to("Patient", &fhir_id(&m.person)),
        period: Some(Period {
            start: Some(instant(m.added_at)),
            end: m.removed_at.map(instant),
        }),
        inactive: !m.active,
    }
}

fn identifier(id: &Identifier, base: &str) -> FhirIdentifier {
    FhirIdentifier {
        r#use: Some("usual".into()),
        r#type: id
            .type_code
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| CodeableConcept::coded(Coding::new(fhir::V2_0203, t, None))),
        system: id
            .authority
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(|a| identifier_system(a, &system(base, "authority"))),
        value: Some(id.id.clone()),
    }
}

fn human_name(n: &PersonName) -> HumanName {
    let r#use = match n.name_type.as_deref() {
        None | Some("L") | Some("C") => "official",
        Some("M") => "maiden",
        Some("N") => "nickname",
        Some("B") => "old",
        _ => "usual",
    };
    HumanName {
        r#use: Some(r#use.into()),
        family: some(&n.family),
        given: [some(&n.given), some(&n.middle)]
            .into_iter()
            .flatten()
            .collect(),
        suffix: some(&n.suffix).into_iter().collect(),
    }
}

fn address(a: &Address) -> FhirAddress {
    let (r#use, r#type) = match a.address_type.as_deref() {
        Some("H") | Some("P") | Some("L") => (Some("home"), None),
        Some("B") | Some("O") => (Some("work"), None),
        Some("C") => (Some("temp"), None),
        Some("M") => (None, Some("postal")),
        _ => (None, None),
    };
    FhirAddress {
        r#use: r#use.map(str::to_owned),
        r#type: r#type.map(str::to_owned),
        line: [some(&a.street), some(&a.other)]
            .into_iter()
            .flatten()
            .collect(),
        city: some(&a.city),
        district: some(&a.county),
        state: some(&a.state),
        postal_code: some(&a.zip),
        country: some(&a.country),
    }
}

fn telecom(p: &Phone) -> Option<ContactPoint> {
    if let Some(email) = some(&p.email) {
        return Some(ContactPoint {
            system: Some("email".into()),
            value: Some(email),
            r#use: None,
        });
    }
    let digits = p.digits();
    if digits.is_empty() {
        return None;
    }
    let value = if digits.len() == 10 {
        format!("({}) {}-{}", &digits[..3], &digits[3..6], &digits[6..])
    } else {
        digits
    };
    let r#use = match (p.use_code.as_deref(), p.equipment.as_deref()) {
        (_, Some("CP")) => Some("mobile"),
        (Some("PRN"), _) => Some("home"),
        (Some("WPN"), _) => Some("work"),
        (Some("ORN"), _) => Some("temp"),
        _ => None,
    };
    Some(ContactPoint {
        system: Some(
            if p.equipment.as_deref() == Some("FX") {
                "fax"
            } else {
                "phone"
            }
            .into(),
        ),
        value: Some(value),
        r#use: r#use.map(str::to_owned),
    })
}

/// The five OMB race categories and the two ethnicity categories (CDC Race
/// & Ethnicity code system); anything else is a detailed code.
const OMB_RACE: [&str; 5] = ["1002-5", "2028-9", "2054-5", "2076-8", "2106-3"];
const OMB_ETHNICITY: [&str; 2] = ["2135-2", "2186-5"];

fn omb_extension(url: &str, codes: &[Coded], omb: &[&str]) -> Option<Extension> {
    let mut parts = Vec::new();
    let mut texts = Vec::new();
    for c in codes {
        // Only CDC Race & Ethnicity codes belong in these extensions.
        let cdcrec = c
            .system
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("CDCREC"));
        if !cdcrec || c.code.is_empty() {
            continue;
        }
        let kind = if omb.contains(&c.code.as_str()) {
            "ombCategory"
        } else {
            "detailed"
        };
        parts.push(Extension {
            url: kind.into(),
            value_coding: Some(Coding::new(
                fhir::CDC_RACE_ETHNICITY,
                &c.code,
                c.text.as_deref().filter(|t| !t.is_empty()),
            )),
            ..Extension::default()
        });
        texts.push(
            c.text
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| c.code.clone()),
        );
    }
    if parts.is_empty() {
        return None;
    }
    parts.push(Extension {
        url: "text".into(),
        value_string: Some(texts.join(", ")),
        ..Extension::default()
    });
    Some(Extension {
        url: url.into(),
        extension: parts,
        ..Extension::default()
    })
}

fn gender(sex: &str) -> &'static str {
    match sex {
        "F" => "female",
        "M" => "male",
        "U" => "unknown",
        _ => "other",
    }
}

fn contact(k: &NextOfKin) -> Contact {
    Contact {
        relationship: k.relationship.iter().map(concept).collect(),
        name: k.name.as_ref().map(human_name),
        telecom: k.phones.iter().filter_map(telecom).collect(),
        address: k.addresses.first().map(address),
    }
}

/// The consolidated patient, for an Authorized User whose own identifiers
/// for the patient are `theirs`.
pub fn patient(person: &Person, theirs: &[Identifier], base: &str) -> fhir::Patient {
    let d: &Demographics = &person.demographics;
    let mut identifiers = vec![FhirIdentifier {
        r#use: Some("official".into()),
        r#type: Some(CodeableConcept::coded(Coding::new(
            fhir::V2_0203,
            "SR",
            Some("State registry ID"),
        ))),
        system: Some(system(base, "patient")),
        value: Some(person.id.clone()),
    }];
    identifiers.extend(theirs.iter().map(|i| identifier(i, base)));
    let mut names: Vec<HumanName> = d.name.value.iter().map(human_name).collect();
    names.extend(d.other_names.value.iter().flatten().map(human_name));
    let mut extension = Vec::new();
    if let Some(e) = d
        .races
        .value
        .as_deref()
        .and_then(|r| omb_extension(fhir::US_CORE_RACE, r, &OMB_RACE))
    {
        extension.push(e);
    }
    if let Some(e) = d
        .ethnicity
        .value
        .as_deref()
        .and_then(|r| omb_extension(fhir::US_CORE_ETHNICITY, r, &OMB_ETHNICITY))
    {
        extension.push(e);
    }
    if let Some(family) = d
        .mother_maiden_name
        .value
        .as_ref()
        .and_then(|n| some(&n.family))
    {
        extension.push(Extension {
            url: fhir::MOTHERS_MAIDEN_NAME.into(),
            value_string: Some(family),
            ..Extension::default()
        });
    }
    let (deceased_boolean, deceased_date_time) = match (&d.death_date.value, &d.deceased.value) {
        (Some(date), _) => (None, Some(date.iso())),
        (None, Some(b)) => (Some(*b), None),
        (None, None) => (None, None),
    };
    let (multiple_birth_boolean, multiple_birth_integer) =
        match (&d.birth_order.value, &d.multiple_birth.value) {
            (Some(order), _) if *order > 0 => (None, Some(*order)),
            (_, Some(b)) => (Some(*b), None),
            _ => (None, None),
        };
    fhir::Patient {
        id: fhir_id(&person.id),
        extension,
        identifier: identifiers,
        active: Some(true),
        name: names,
        telecom: d
            .phones
            .value
            .iter()
            .flatten()
            .filter_map(telecom)
            .collect(),
        gender: d.sex.value.as_deref().map(|s| gender(s).to_owned()),
        birth_date: d.birth_date.value.map(|b| b.iso()),
        deceased_boolean,
        deceased_date_time,
        address: d.addresses.value.iter().flatten().map(address).collect(),
        multiple_birth_boolean,
        multiple_birth_integer,
        contact: d.next_of_kin.value.iter().flatten().map(contact).collect(),
        ..fhir::Patient::default()
    }
}

fn provider(p: &Provider, function: &str, display: &str, base: &str) -> Performer {
    let name: Vec<String> = [some(&p.given), some(&p.family)]
        .into_iter()
        .flatten()
        .collect();
    Performer {
        function: Some(CodeableConcept::coded(Coding::new(
            fhir::V2_0443,
            function,
            Some(display),
        ))),
        actor: Reference {
            reference: None,
            identifier: some(&p.id).map(|id| FhirIdentifier {
                system: p
                    .authority
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .map(|a| identifier_system(a, &system(base, "authority"))),
                value: Some(id),
                ..FhirIdentifier::default()
            }),
            display: (!name.is_empty()).then(|| name.join(" ")),
        },
    }
}

/// NIP001 immunization information sources (RXA-9) as FHIR report origins.
fn report_origin(code: &str) -> CodeableConcept {
    let origin = match code {
        "02" => Some(("provider", "Other Provider")),
        "03" => Some(("record", "Written Record")),
        "04" => Some(("recall", "Parent/Guardian/Patient Recall")),
        "07" => Some(("school", "School Record")),
        _ => None,
    };
    let mut coding = vec![Coding::new("urn:oid:2.16.840.1.114222.4.5.274", code, None)];
    if let Some((c, d)) = origin {
        coding.insert(0, Coding::new(fhir::IMMUNIZATION_ORIGIN, c, Some(d)));
    }
    CodeableConcept { coding, text: None }
}

pub fn immunization(person_id: &str, imm: &Immunization, base: &str) -> fhir::Immunization {
    let o = &imm.order;
    let not_done = matches!(
        o.completion,
        CompletionStatus::NotAdministered | CompletionStatus::Refused
    );
    let status_reason = match o.completion {
        CompletionStatus::Refused => {
            let mut c = CodeableConcept::coded(Coding::new(
                fhir::V3_ACT_REASON,
                "PATOBJ",
                Some("patient objection"),
            ));
            c.coding.extend(o.refusal_reasons.iter().map(coding));
            Some(c)
        }
        CompletionStatus::NotAdministered if !o.refusal_reasons.is_empty() => {
            Some(CodeableConcept {
                coding: o.refusal_reasons.iter().map(coding).collect(),
                text: None,
            })
        }
        _ => None,
    };
    let mut vaccine = CodeableConcept {
        coding: o.vaccine.iter().map(coding).collect(),
        text: o.vaccine.iter().find_map(|c| some(&c.text)),
    };
    if vaccine.is_empty() {
        // vaccineCode is required; CVX 999 is "unknown vaccine".
        vaccine = CodeableConcept::coded(Coding::new(fhir::CVX, "999", Some("unknown")));
    }
    let dose_quantity = o
        .amount
        .as_deref()
        .filter(|a| *a != "999")
        .and_then(|a| a.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|value| Quantity {
            value: Some(value),
            unit: o
                .amount_units
                .as_ref()
                .map(|u| u.text.clone().unwrap_or_else(|| u.code.clone())),
            system: o
                .amount_units
                .as_ref()
                .filter(|u| u.is_system("UCUM"))
                .map(|_| fhir::UCUM.to_owned()),
            code: o
                .amount_units
                .as_ref()
                .filter(|u| u.is_system("UCUM"))
                .map(|u| u.code.clone()),
        });
    let mut performer = Vec::new();
    if let Some(p) = &o.administering_provider {
        performer.push(provider(p, "AP", "Administering Provider", base));
    }
    if let Some(p) = &o.ordering_provider {
        performer.push(provider(p, "OP", "Ordering Provider", base));
    }
    let education = o
        .vis
        .iter()
        .filter_map(|v| {
            let document_type = v.document.as_ref().or(v.vaccine_type.as_ref()).map(|c| {
                c.text
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| c.code.clone())
            })?;
            Some(Education {
                document_type: Some(document_type),
                publication_date: v.published.map(|d| d.iso()),
                presentation_date: v.presented.map(|d| d.iso()),
            })
        })
        .collect();
    fhir::Immunization {
        id: fhir_id(&imm.id),
        // The event's own id, then one identifier per report behind it
        // (`<base>/report/<Authorized User>`, the report's key: ORC-3
        // hashed, never the sender's number itself), so a reader sees how
        // many reports, and from whom, one event consolidates.
        identifier: std::iter::once(FhirIdentifier {
            system: Some(system(base, "immunization")),
            value: Some(imm.id.clone()),
            ..FhirIdentifier::default()
        })
        .chain(imm.sources.iter().map(|r| FhirIdentifier {
            r#use: Some("secondary".into()),
            system: Some(system(base, &format!("report/{}", fhir_id(&r.au)))),
            value: Some(r.dose_key.clone()),
            ..FhirIdentifier::default()
        }))
        .collect(),
        status: if not_done { "not-done" } else { "completed" }.into(),
        status_reason,
        vaccine_code: vaccine,
        patient: Reference::to("Patient", &fhir_id(person_id)),
        occurrence_date_time: o.administered.map(|d| d.iso()),
        occurrence_string: o.administered.is_none().then(|| "unknown".into()),
        primary_source: match &o.administration {
            Administration::New => Some(true),
            Administration::Historical(_) => Some(false),
            Administration::Unknown => None,
        },
        report_origin: match &o.administration {
            Administration::Historical(code) => Some(report_origin(code)),
            _ => None,
        },
        manufacturer: o.manufacturer.as_ref().map(|m| Reference {
            reference: None,
            identifier: Some(FhirIdentifier {
                system: Some(fhir::MVX.into()),
                value: Some(m.code.clone()),
                ..FhirIdentifier::default()
            }),
            display: some(&m.text).or_else(|| Some(m.code.clone())),
        }),
        lot_number: o.lot_numbers.first().cloned(),
        expiration_date: o.expiration.map(|d| d.iso()),
        site: o.site.as_ref().map(concept),
        route: o.route.as_ref().map(concept),
        dose_quantity,
        performer,
        is_subpotent: (o.completion == CompletionStatus::PartiallyAdministered).then_some(true),
        education,
        program_eligibility: o.funding_eligibility.iter().map(concept).collect(),
        funding_source: o.funding_source.as_ref().map(concept),
        ..fhir::Immunization::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fhir_accepts_are_kept_and_others_hashed() {
        assert_eq!(fhir_id("clinic-a.1"), "clinic-a.1");
        let h = fhir_id("clinic_a");
        assert!(h.starts_with('h') && h.len() == 32, "{h}");
        assert_eq!(h, fhir_id("clinic_a"));
        assert_ne!(h, fhir_id("clinic-a"));
    }

    #[test]
    fn instants_from_milliseconds() {
        assert_eq!(instant(1_500), "1970-01-01T00:00:01Z");
    }
}
