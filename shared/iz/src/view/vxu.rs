//! The VXU^V04 (Z22) view: who sent it, the patient (PID, PD1, NK1) and each
//! immunization order (ORC, RXA, RXR, OBX).

use super::fields::{date, yes_no, Fields, Rep, Seg};
use super::types::{Address, Coded, EntityId, Identifier, PersonName, Phone, Provider};
use super::Value;
use crate::datetime::Date;
use crate::validate::Validation;
use hl7::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The MSH fields the IIS acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Header {
    /// MSH-10, unique per sender: with MSH-4 it identifies the message.
    pub control_id: Option<String>,
    /// MSH-3.1
    pub sending_application: Option<String>,
    /// MSH-4.1, the facility the Authorized User sends for.
    pub sending_facility: Option<String>,
    /// MSH-6.1
    pub receiving_facility: Option<String>,
    /// MSH-7 as sent.
    pub message_time: Option<String>,
    /// MSH-21.1, the profile the sender claims (Z22, Z34, …).
    pub profile: Option<String>,
}

impl Header {
    pub(crate) fn read(f: &Fields<'_, '_, '_>) -> Header {
        let Some(msh) = f.top_level("MSH").into_iter().next() else {
            return Header::default();
        };
        Header {
            control_id: msh.text(10),
            sending_application: msh.text(3),
            sending_facility: msh.text(4),
            receiving_facility: msh.text(6),
            message_time: msh.text(7),
            profile: msh.text(21),
        }
    }
}

/// A vaccination update, as far as it survived validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vxu {
    pub header: Header,
    pub patient: Patient,
    pub orders: Vec<Order>,
}

/// The patient as the sender describes them. Each `Value` field is an update
/// instruction: absent keeps, null clears, present replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Patient {
    /// PID-3: MRNs, Medicaid numbers, … with their assigning authority.
    pub identifiers: Vec<Identifier>,
    /// PID-5: legal name first as sent, then aliases and earlier names.
    pub names: Vec<PersonName>,
    /// PID-6
    pub mother_maiden_name: Value<PersonName>,
    /// PID-7
    pub birth_date: Value<Date>,
    /// PID-8, HL7 table 0001 (F, M, U, …).
    pub sex: Value<String>,
    /// PID-10
    pub races: Value<Vec<Coded>>,
    /// PID-11
    pub addresses: Value<Vec<Address>>,
    /// PID-13
    pub phones: Value<Vec<Phone>>,
    /// PID-22
    pub ethnicity: Value<Vec<Coded>>,
    /// PID-24
    pub multiple_birth: Value<bool>,
    /// PID-25
    pub birth_order: Value<u32>,
    /// PID-29
    pub death_date: Value<Date>,
    /// PID-30
    pub deceased: Value<bool>,
    /// PD1-11, reminder/recall publicity (HL7 table 0215).
    pub publicity: Value<Coded>,
    /// PD1-12: `Y` means the patient's data must not be shared.
    pub protected: Value<bool>,
    /// PD1-13
    pub protection_date: Value<Date>,
    /// PD1-16, registry status with this provider (HL7 table 0441: A active, I inactive, …).
    pub registry_status: Value<String>,
    /// PD1-17
    pub registry_status_date: Value<Date>,
    /// NK1, in message order.
    pub next_of_kin: Vec<NextOfKin>,
}

/// A responsible person (NK1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextOfKin {
    pub name: Option<PersonName>,
    /// NK1-3, HL7 table 0063 (MTH mother, FTH father, GRD guardian, …).
    pub relationship: Option<Coded>,
    pub addresses: Vec<Address>,
    pub phones: Vec<Phone>,
}

/// RXA-9 (NIP001): whether the sender gave this dose or is recording one
/// given elsewhere, which decides how far the record is to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "source")]
pub enum Administration {
    /// `00`: administered by the sender.
    New,
    /// `01`–`08`: historical, with the NIP001 code saying where it came from.
    Historical(String),
    Unknown,
}

/// RXA-20 (HL7 table 0322).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionStatus {
    /// `CP`, or empty: the guide reads an empty RXA-20 as complete.
    Complete,
    /// `PA`
    PartiallyAdministered,
    /// `NA`
    NotAdministered,
    /// `RE`: the patient or guardian refused (RXA-18 says why).
    Refused,
}

/// RXA-21 (HL7 table 0206).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `A`, or empty.
    Add,
    /// `U`
    Update,
    /// `D`: the sender withdraws a dose it reported before.
    Delete,
}

/// One OBX of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// OBX-3 (a LOINC code for the IZ observations).
    pub code: Coded,
    /// OBX-2
    pub value_type: Option<String>,
    /// OBX-4, ties related observations (a VIS and its dates) together.
    pub sub_id: Option<String>,
    /// OBX-5 when coded.
    pub coded: Option<Coded>,
    /// OBX-5 when a date.
    pub date: Option<Date>,
    /// OBX-5 otherwise, as text.
    pub text: Option<String>,
}

/// A Vaccine Information Statement shared with the patient (IZ-24): either a
/// GS1 bar code, or a vaccine type with an edition date, plus when it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VisDocument {
    /// 69764-9
    pub document: Option<Coded>,
    /// 30956-7
    pub vaccine_type: Option<Coded>,
    /// 29768-9
    pub published: Option<Date>,
    /// 29769-7
    pub presented: Option<Date>,
}

/// One immunization event (an ORDER group whose RXA survived validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Message index of the RXA, for locating problems in answers.
    pub rxa_segment: usize,
    /// ORC-2
    pub placer_order: Option<EntityId>,
    /// ORC-3: the sender's unique id for this dose, which later updates and
    /// deletes refer to.
    pub filler_order: Option<EntityId>,
    /// ORC-12
    pub ordering_provider: Option<Provider>,
    /// ORC-10
    pub entered_by: Option<Provider>,
    /// RXA-3
    pub administered: Option<Date>,
    /// RXA-5: primary code first, then the alternate (CVX and/or NDC).
    pub vaccine: Vec<Coded>,
    /// RXA-6; `None` for the guide's "999" (amount unknown).
    pub amount: Option<String>,
    /// RXA-7
    pub amount_units: Option<Coded>,
    /// RXA-9
    pub administration: Administration,
    /// RXA-10
    pub administering_provider: Option<Provider>,
    /// RXA-11.4.1, the facility where it was given.
    pub administered_at_facility: Option<String>,
    /// RXA-15
    pub lot_numbers: Vec<String>,
    /// RXA-16
    pub expiration: Option<Date>,
    /// RXA-17 (MVX)
    pub manufacturer: Option<Coded>,
    /// RXA-18
    pub refusal_reasons: Vec<Coded>,
    /// RXA-20
    pub completion: CompletionStatus,
    /// RXA-21
    pub action: Action,
    /// RXR-1
    pub route: Option<Coded>,
    /// RXR-2
    pub site: Option<Coded>,
    /// 64994-7, the patient's eligibility for this dose (VFC, …).
    pub funding_eligibility: Option<Coded>,
    /// 30963-3
    pub funding_source: Option<Coded>,
    /// VIS documents, in OBX-4 order.
    pub vis: Vec<VisDocument>,
    /// Every OBX of the order, including the ones summarised above.
    pub observations: Vec<Observation>,
}

impl Order {
    /// The CVX code, whichever triplet carries it.
    pub fn cvx(&self) -> Option<&str> {
        self.code_in("CVX")
    }

    /// The NDC, whichever triplet carries it.
    pub fn ndc(&self) -> Option<&str> {
        self.code_in("NDC")
    }

    fn code_in(&self, system: &str) -> Option<&str> {
        self.vaccine
            .iter()
            .find(|c| c.is_system(system))
            .map(|c| c.code.as_str())
    }
}

/// Builds the view of a VXU from the message and its validation.
pub fn vxu(msg: &Message<'_>, validation: &Validation) -> Vxu {
    let f = Fields::new(msg, validation);
    Vxu {
        header: Header::read(&f),
        patient: patient(&f),
        orders: f
            .groups("VXU_V04.ORDER")
            .into_iter()
            .filter_map(|g| order(&f, g))
            .collect(),
    }
}

fn text1(r: &Rep<'_, '_>) -> Option<String> {
    r.text(1)
}

fn first<T>(s: &Seg<'_, '_, '_>, field: u32, read: fn(&Rep<'_, '_>) -> Option<T>) -> Option<T> {
    s.rep(field, 1).as_ref().and_then(read)
}

fn all<T>(s: &Seg<'_, '_, '_>, field: u32, read: fn(&Rep<'_, '_>) -> Option<T>) -> Vec<T> {
    s.reps(field).iter().filter_map(read).collect()
}

fn patient(f: &Fields<'_, '_, '_>) -> Patient {
    let mut p = Patient::default();
    if let Some(pid) = f.top_level("PID").into_iter().next() {
        p.identifiers = all(&pid, 3, Identifier::read);
        p.names = all(&pid, 5, PersonName::read);
        p.mother_maiden_name = pid.tri(6, PersonName::read);
        p.birth_date = pid.tri(7, date);
        p.sex = pid.tri(8, text1);
        p.races = pid.tri_list(10, Coded::read);
        p.addresses = pid.tri_list(11, Address::read);
        p.phones = pid.tri_list(13, Phone::read);
        p.ethnicity = pid.tri_list(22, Coded::read);
        p.multiple_birth = pid.tri(24, yes_no);
        p.birth_order = pid.tri(25, |r| r.text(1)?.parse().ok());
        p.death_date = pid.tri(29, date);
        p.deceased = pid.tri(30, yes_no);
    }
    if let Some(pd1) = f.top_level("PD1").into_iter().next() {
        p.publicity = pd1.tri(11, Coded::read);
        p.protected = pd1.tri(12, yes_no);
        p.protection_date = pd1.tri(13, date);
        p.registry_status = pd1.tri(16, text1);
        p.registry_status_date = pd1.tri(17, date);
    }
    p.next_of_kin = f
        .top_level("NK1")
        .iter()
        .map(|nk1| NextOfKin {
            name: first(nk1, 2, PersonName::read),
            relationship: first(nk1, 3, Coded::read),
            addresses: all(nk1, 4, Address::read),
            phones: all(nk1, 5, Phone::read),
        })
        .filter(|k| k.name.is_some() || k.relationship.is_some())
        .collect();
    p
}

fn order(f: &Fields<'_, '_, '_>, g: &crate::structure::GroupInstance) -> Option<Order> {
    let rxa = f.in_group(g, "RXA").into_iter().next()?;
    let orc = f.in_group(g, "ORC").into_iter().next();
    let rxr = f.in_group(g, "RXR").into_iter().next();
    let observations: Vec<Observation> = f
        .in_group(g, "OBX")
        .iter()
        .filter_map(observation)
        .collect();

    let administration = match rxa.text(9).as_deref() {
        Some("00") => Administration::New,
        Some(code) => Administration::Historical(code.to_string()),
        None => Administration::Unknown,
    };
    let completion = match rxa.text(20).map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("RE") => CompletionStatus::Refused,
        Some("NA") => CompletionStatus::NotAdministered,
        Some("PA") => CompletionStatus::PartiallyAdministered,
        _ => CompletionStatus::Complete,
    };
    let action = match rxa.text(21).map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("D") => Action::Delete,
        Some("U") => Action::Update,
        _ => Action::Add,
    };
    let find = |loinc: &str| {
        observations
            .iter()
            .find(|o| o.code.code == loinc)
            .and_then(|o| o.coded.clone())
    };

    Some(Order {
        rxa_segment: rxa.index(),
        placer_order: orc.as_ref().and_then(|o| first(o, 2, EntityId::read)),
        filler_order: orc.as_ref().and_then(|o| first(o, 3, EntityId::read)),
        ordering_provider: orc.as_ref().and_then(|o| first(o, 12, Provider::read)),
        entered_by: orc.as_ref().and_then(|o| first(o, 10, Provider::read)),
        administered: first(&rxa, 3, date),
        vaccine: rxa
            .rep(5, 1)
            .map(|r| Coded::read_both(&r))
            .unwrap_or_default(),
        amount: rxa.text(6).filter(|a| a.trim_start_matches('0') != "999"),
        amount_units: first(&rxa, 7, Coded::read),
        administration,
        administering_provider: first(&rxa, 10, Provider::read),
        administered_at_facility: rxa.rep(11, 1).and_then(|r| r.sub(4, 1)),
        lot_numbers: all(&rxa, 15, text1),
        expiration: first(&rxa, 16, date),
        manufacturer: first(&rxa, 17, Coded::read),
        refusal_reasons: all(&rxa, 18, Coded::read),
        completion,
        action,
        route: rxr.as_ref().and_then(|r| first(r, 1, Coded::read)),
        site: rxr.as_ref().and_then(|r| first(r, 2, Coded::read)),
        funding_eligibility: find("64994-7"),
        funding_source: find("30963-3"),
        vis: vis_documents(&observations),
        observations,
    })
}

fn observation(obx: &Seg<'_, '_, '_>) -> Option<Observation> {
    let code = first(obx, 3, Coded::read)?;
    let value_type = obx.text(2).map(|t| t.to_ascii_uppercase());
    let value = obx.rep(5, 1);
    let (mut coded, mut date_value, mut text) = (None, None, None);
    match value_type.as_deref() {
        Some("CE" | "CWE") => coded = value.as_ref().and_then(Coded::read),
        Some("DT" | "TS" | "DTM") => date_value = value.as_ref().and_then(date),
        _ => text = value.as_ref().and_then(text1),
    }
    Some(Observation {
        code,
        value_type,
        sub_id: obx.text(4),
        coded,
        date: date_value,
        text,
    })
}

fn vis_documents(observations: &[Observation]) -> Vec<VisDocument> {
    let mut by_sub: BTreeMap<String, VisDocument> = BTreeMap::new();
    for o in observations {
        let slot = || o.sub_id.clone().unwrap_or_default();
        match o.code.code.as_str() {
            "69764-9" => by_sub.entry(slot()).or_default().document = o.coded.clone(),
            "30956-7" => by_sub.entry(slot()).or_default().vaccine_type = o.coded.clone(),
            "29768-9" => by_sub.entry(slot()).or_default().published = o.date,
            "29769-7" => by_sub.entry(slot()).or_default().presented = o.date,
            _ => {}
        }
    }
    // OBX-4 sub-ids are numbers sent as text: order them numerically.
    let mut docs: Vec<(String, VisDocument)> = by_sub.into_iter().collect();
    docs.sort_by_key(|(k, _)| (k.parse::<u64>().unwrap_or(u64::MAX), k.clone()));
    docs.into_iter().map(|(_, d)| d).collect()
}
