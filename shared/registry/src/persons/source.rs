//! What one sender says about one patient: the source record key (sender +
//! MRN) and the matching view of PID/NK1.

use hl7::Location;
use iz::view::{Address, Identifier, PersonName};
use iz::{AppError, Finding, Hl7Error, Severity, Vxu};
use matching::{Alias, PatientRecord, RecordIdentifier};

use crate::keys::short_hash;

/// PID-3 identifier types that are the sender's own chart number.
const CHART_TYPES: &[&str] = &["MR", "PI", "PN", "PT"];

/// A source record is one sender's chart for one patient: the Authorized
/// User plus the MRN it assigned (PID-3 of type MR/PI/PT, with its
/// assigning authority). Without one, each message is its own source.
pub fn source_id(au: &str, vxu: &Vxu, message_id: &str) -> String {
    chart_source_id(au, &vxu.patient.identifiers).unwrap_or_else(|| format!("m{message_id}"))
}

/// The source record an Authorized User's chart number names (a VXU's or a
/// query's PID-3), if the identifiers hold one.
pub fn chart_source_id(au: &str, identifiers: &[Identifier]) -> Option<String> {
    let chart = identifiers
        .iter()
        .find(|i| {
            i.type_code
                .as_deref()
                .is_some_and(|t| CHART_TYPES.contains(&t))
        })
        .or_else(|| identifiers.iter().find(|i| !is_ssn(i)))?;
    if chart.id.trim().is_empty() {
        return None;
    }
    let authority = chart.authority.as_deref().unwrap_or("");
    let key = format!("{au}\u{0}{authority}\u{0}{}", chart.id);
    Some(format!("s{}", &short_hash(key.as_bytes())[..24]))
}

fn is_ssn(id: &Identifier) -> bool {
    id.type_code.as_deref() == Some("SS")
}

/// Which of PID-5's names is the legal one: XPN-7 `L` (or untyped), else the first.
pub fn legal_name_at(names: &[PersonName]) -> Option<usize> {
    names
        .iter()
        .position(PersonName::is_legal)
        .or((!names.is_empty()).then_some(0))
}

/// The record matching compares, built from PID, PD1 and NK1.
pub fn patient_record(id: &str, vxu: &Vxu) -> PatientRecord {
    let p = &vxu.patient;
    let legal_at = legal_name_at(&p.names);
    let legal = legal_at.map(|i| &p.names[i]);
    let mut record = PatientRecord {
        id: id.to_owned(),
        birth_date: p.birth_date.present().map(|d| d.iso()),
        sex: p.sex.present().cloned(),
        mothers_maiden_family: p
            .mother_maiden_name
            .present()
            .and_then(|n| n.family.clone()),
        multiple_birth: p.multiple_birth.present().copied(),
        birth_order: p.birth_order.present().copied(),
        ..Default::default()
    };
    if let Some(name) = legal {
        set_name(&mut record, name);
    }
    for (_, name) in p
        .names
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != legal_at)
    {
        record.aliases.push(Alias::Name {
            given: name.given.clone(),
            family: name.family.clone(),
        });
    }
    add_identifiers(&mut record, &p.identifiers);
    if let Some(phone) = p
        .phones
        .present()
        .and_then(|phones| phones.iter().map(|ph| ph.digits()).find(|d| !d.is_empty()))
    {
        record.phone = Some(phone);
    }
    if let Some(address) = p.addresses.present().and_then(|a| a.first()) {
        set_address(&mut record, address);
    }
    // The responsible person: a guardian, mother or father from NK1.
    let guardian = p
        .next_of_kin
        .iter()
        .find(|k| {
            k.relationship
                .as_ref()
                .is_some_and(|r| matches!(r.code.as_str(), "GRD" | "MTH" | "FTH" | "PAR"))
        })
        .or_else(|| p.next_of_kin.first());
    if let Some(name) = guardian.and_then(|k| k.name.as_ref()) {
        record.guardian_given = name.given.clone();
        record.guardian_family = name.family.clone();
    }
    record
}

/// The patient a Z34 describes (QPD-3..11), as matching reads it: the same
/// mapping as a VXU's patient, so a query and a report compare alike.
pub fn query_record(q: &iz::Query) -> PatientRecord {
    let mut record = PatientRecord {
        id: "query".into(),
        birth_date: q.birth_date.map(|d| d.iso()),
        sex: q.sex.clone(),
        mothers_maiden_family: q.mother_maiden_name.as_ref().and_then(|n| n.family.clone()),
        multiple_birth: q.multiple_birth,
        birth_order: q.birth_order,
        phone: q
            .phone
            .as_ref()
            .map(|p| p.digits())
            .filter(|d| !d.is_empty()),
        ..Default::default()
    };
    if let Some(name) = &q.name {
        set_name(&mut record, name);
    }
    if let Some(address) = &q.address {
        set_address(&mut record, address);
    }
    add_identifiers(&mut record, &q.identifiers);
    record
}

fn set_name(record: &mut PatientRecord, name: &PersonName) {
    record.given = name.given.clone();
    record.middle = name.middle.clone();
    record.family = name.family.clone();
    record.suffix = name.suffix.clone();
}

fn set_address(record: &mut PatientRecord, address: &Address) {
    record.street = address.street.clone();
    record.city = address.city.clone();
    record.state = address.state.clone();
    record.zip = address.zip.clone();
}

/// PID-3 / QPD-3: the SSN (type SS) apart, every other identifier with its
/// assigning authority and type.
pub(crate) fn add_identifiers(record: &mut PatientRecord, identifiers: &[Identifier]) {
    for id in identifiers {
        if is_ssn(id) {
            record.ssn.get_or_insert_with(|| id.id.clone());
        } else {
            record.identifiers.push(RecordIdentifier {
                system: id.authority.clone().unwrap_or_default(),
                kind: id.type_code.clone().unwrap_or_default(),
                value: id.id.clone(),
            });
        }
    }
}

/// Warnings for the sender when the patient cannot take part in matching:
/// placeholder names or numbers (BABY GIRL, 999-99-9999), or too little
/// identity to ever be linked. The message is still accepted; the patient
/// becomes a provisional person of its own until better data arrives.
pub fn identity_warnings(vxu: &Vxu) -> Vec<Finding> {
    let record = patient_record("", vxu);
    let m = matching::normalize::normalize(&record, matching::Nicknames::built_in());
    let mut out = Vec::new();
    let warn = |field: u32, app: AppError, rule: &str, text: &str| {
        Finding::new(
            Location::field("PID", 1, field),
            Hl7Error::ApplicationError,
            Severity::Warning,
            Some(app),
            rule,
            text,
        )
    };
    let has = |what: &str| m.placeholders.iter().any(|p| p == what);
    if has("given") || has("family") || has("name") {
        out.push(warn(
            5,
            AppError::IllogicalValue,
            "placeholder-name",
            "The patient name is a placeholder (such as BABY GIRL or UNKNOWN): this record will not be merged with any other until a real name is sent",
        ));
    }
    if has("ssn") || has("identifier") {
        out.push(warn(
            3,
            AppError::IllogicalValue,
            "placeholder-identifier",
            "A patient identifier is a placeholder (such as 999-99-9999 or 123456789) and is ignored for matching",
        ));
    }
    if !m.is_linkable() && out.is_empty() {
        out.push(warn(
            7,
            AppError::RequiredDataMissing,
            "insufficient-identity",
            "Too little identity to match this patient (a name plus a birth date or an identifier are needed): the record is kept as a provisional patient of its own",
        ));
    }
    out
}
