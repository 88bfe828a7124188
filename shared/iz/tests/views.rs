//! The typed VXU and QBP views: what callers read, null versus empty, and
//! that nothing the validation cascade emptied shows through.
#![allow(clippy::unwrap_used)]

use hl7::Message;
use iz::view::{Action, Administration, CompletionStatus, Value};
use iz::{judge, query, vxu, Clock, Date};
use std::path::PathBuf;

fn corpus(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7");
    std::fs::read(p.join(name)).unwrap_or_else(|e| panic!("corpus file {name}: {e}"))
}

fn clock() -> Clock {
    // 2026-01-01: every corpus date is in the past.
    Clock::at(1_767_225_600)
}

fn vxu_of(bytes: &[u8]) -> iz::Vxu {
    let msg = Message::parse(bytes).unwrap();
    let intake = judge(&msg, clock());
    vxu(&msg, intake.validation.as_ref().unwrap())
}

fn d(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

#[test]
fn vxu_001_patient_and_orders() {
    let v = vxu_of(&corpus("vxu-001.hl7"));
    assert_eq!(
        v.header.control_id.as_deref(),
        Some("NIST-IZ-AD-1.1_Send_V04_Z22")
    );
    assert_eq!(v.header.sending_facility.as_deref(), Some("NISTEHRFAC"));
    assert_eq!(v.header.profile.as_deref(), Some("Z22"));

    let p = &v.patient;
    assert_eq!(p.identifiers.len(), 1);
    assert_eq!(p.identifiers[0].id, "3123");
    assert_eq!(p.identifiers[0].authority.as_deref(), Some("NIST-MPI-1"));
    assert_eq!(p.identifiers[0].type_code.as_deref(), Some("MR"));
    assert_eq!(p.names[0].family.as_deref(), Some("Richardson"));
    assert_eq!(p.names[0].given.as_deref(), Some("Russell"));
    assert_eq!(p.names[0].middle.as_deref(), Some("Clint"));
    assert!(p.names[0].is_legal());
    assert_eq!(
        p.mother_maiden_name.present().unwrap().family.as_deref(),
        Some("Billington")
    );
    assert_eq!(p.birth_date, Value::Present(d(2015, 4, 15)));
    assert_eq!(p.sex, Value::Present("M".into()));
    assert_eq!(p.races.present().unwrap()[0].code, "1002-5");
    let addr = &p.addresses.present().unwrap()[0];
    assert_eq!(addr.street.as_deref(), Some("543 Blount Drive"));
    assert_eq!(addr.zip.as_deref(), Some("59715"));
    assert_eq!(p.phones.present().unwrap()[0].digits(), "4065557690");
    assert_eq!(p.ethnicity.present().unwrap()[0].code, "2186-5");
    assert_eq!(p.multiple_birth, Value::Present(false));
    assert_eq!(p.birth_order, Value::Present(1));
    assert_eq!(p.deceased, Value::Present(false));
    assert_eq!(p.protected, Value::Present(false));
    assert_eq!(p.publicity.present().unwrap().code, "02");
    assert_eq!(p.registry_status, Value::Present("A".into()));
    assert_eq!(p.next_of_kin.len(), 2);
    assert_eq!(p.next_of_kin[0].relationship.as_ref().unwrap().code, "MTH");
    assert_eq!(p.next_of_kin[1].phones[0].equipment.as_deref(), Some("CP"));

    assert_eq!(v.orders.len(), 5);
    let o = &v.orders[0];
    assert_eq!(o.filler_order.as_ref().unwrap().id, "38766");
    assert_eq!(
        o.filler_order.as_ref().unwrap().namespace.as_deref(),
        Some("NIST-AA-IZ-2")
    );
    assert_eq!(o.placer_order.as_ref().unwrap().id, "3140");
    assert_eq!(o.administered, Some(d(2015, 6, 24)));
    assert_eq!(o.ndc(), Some("49281-0560-05"));
    assert_eq!(o.cvx(), None);
    assert_eq!(o.amount.as_deref(), Some("0.5"));
    assert_eq!(o.amount_units.as_ref().unwrap().code, "mL");
    assert_eq!(o.administration, Administration::New);
    assert_eq!(o.lot_numbers, vec!["526434".to_string()]);
    assert_eq!(o.expiration, Some(d(2015, 7, 22)));
    assert_eq!(o.manufacturer.as_ref().unwrap().code, "PMC");
    assert_eq!(o.completion, CompletionStatus::Complete);
    assert_eq!(o.action, Action::Add);
    assert_eq!(o.route.as_ref().unwrap().code, "C28161");
    assert_eq!(o.site.as_ref().unwrap().code, "RT");
    assert_eq!(o.funding_eligibility.as_ref().unwrap().code, "V04");
    assert_eq!(o.funding_source.as_ref().unwrap().code, "VXC50");
    assert_eq!(o.vis.len(), 3);
    assert_eq!(
        o.vis[0].document.as_ref().unwrap().code,
        "253088698300017211160720"
    );
    assert_eq!(o.vis[0].presented, Some(d(2015, 6, 24)));
    assert_eq!(o.observations.len(), 8);
    assert_eq!(
        o.administering_provider.as_ref().unwrap().family.as_deref(),
        Some("Jackson")
    );
    assert_eq!(
        o.ordering_provider.as_ref().unwrap().type_code.as_deref(),
        Some("MD")
    );

    // The historical Hep B doses: CVX, amount unknown (999), no ORC-2.
    let h = &v.orders[3];
    assert_eq!(h.cvx(), Some("45"));
    assert_eq!(h.amount, None);
    assert_eq!(h.administration, Administration::Historical("01".into()));
    assert_eq!(h.placer_order, None);
    assert_eq!(h.filler_order.as_ref().unwrap().id, "31528");
}

#[test]
fn refusal_partial_update_and_delete_are_read() {
    let refusal = vxu_of(&corpus("vxu-005.hl7"));
    assert_eq!(refusal.orders.len(), 4);
    let o = &refusal.orders[3];
    assert_eq!(o.completion, CompletionStatus::Refused);
    assert_eq!(o.filler_order.as_ref().unwrap().id, "9999");
    assert_eq!(o.refusal_reasons[0].code, "00");
    assert_eq!(o.cvx(), Some("21"));

    assert_eq!(
        vxu_of(&corpus("vxu-011.hl7")).orders[0].completion,
        CompletionStatus::PartiallyAdministered
    );
    assert_eq!(
        vxu_of(&corpus("vxu-006.hl7")).orders[0].action,
        Action::Update
    );
    assert_eq!(
        vxu_of(&corpus("vxu-004.hl7")).orders[0].action,
        Action::Delete
    );

    // CVX with an NDC alternate: both kept.
    let both = vxu_of(&corpus("vxu-013.hl7"));
    let o = &both.orders[0];
    assert_eq!((o.cvx(), o.ndc()), (Some("08"), Some("58160-0820-11")));
}

const BASE: &str = "MSH|^~\\&|APP|CLINIC-A|IIS|IIS|20250101120000-0500||VXU^V04^VXU_V04|CTRL-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|CLINIC-A|IIS\r";

#[test]
fn null_clears_and_empty_keeps() {
    let msg = format!(
        "{BASE}PID|1||A1^^^CLINIC-A^MR||Doe^Jane^^^^^L|\"\"|20200101|F||\"\"|||\"\"|||||||||||\"\"\r\
         PD1|||||||||||\"\"|Y|20240101\r"
    );
    let v = vxu_of(msg.as_bytes());
    let p = &v.patient;
    assert_eq!(p.mother_maiden_name, Value::Null);
    assert_eq!(p.sex, Value::Present("F".into()));
    assert_eq!(p.races, Value::Null);
    assert_eq!(p.phones, Value::Null);
    assert_eq!(p.multiple_birth, Value::Null);
    // Not sent at all: keep what is stored.
    assert_eq!(p.addresses, Value::Absent);
    assert_eq!(p.ethnicity, Value::Absent);
    assert_eq!(p.birth_order, Value::Absent);
    assert_eq!(p.death_date, Value::Absent);
    assert_eq!(p.publicity, Value::Null);
    assert_eq!(p.protected, Value::Present(true));
    assert_eq!(p.protection_date, Value::Present(d(2024, 1, 1)));
    assert!(v.orders.is_empty());
}

#[test]
fn values_emptied_by_validation_are_not_shown() {
    // PID-10 is not a CDC race code and PID-24 not Y/N, RXA-3 of the first
    // order is not a date: the cascade empties PID-10 and PID-24 (the patient
    // stands) and drops the order whose required RXA-3 is lost (the other
    // order stands).
    let msg = format!(
        "{BASE}PID|1||A1^^^CLINIC-A^MR||Doe^Jane^^^^^L||20200101|F||9999-9^Martian^CDCREC||||||||||||||Q\r\
         ORC|RE||F-1^CLINIC-A\r\
         RXA|0|1|20241399||08^Hep B^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
         ORC|RE||F-2^CLINIC-A\r\
         RXA|0|1|20240102||08^Hep B^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    );
    let msg_bytes = msg.into_bytes();
    let parsed = Message::parse(&msg_bytes).unwrap();
    let intake = judge(&parsed, clock());
    assert!(intake.accepted, "{:#?}", intake.findings);
    let v = vxu(&parsed, intake.validation.as_ref().unwrap());
    assert_eq!(v.patient.birth_date, Value::Present(d(2020, 1, 1)));
    assert_eq!(v.patient.sex, Value::Present("F".into()));
    assert_eq!(v.patient.races, Value::Absent);
    assert_eq!(v.patient.multiple_birth, Value::Absent);
    assert_eq!(v.orders.len(), 1, "{:#?}", v.orders);
    assert_eq!(v.orders[0].filler_order.as_ref().unwrap().id, "F-2");
}

#[test]
fn null_in_a_required_field_is_not_a_value() {
    let msg = format!("{BASE}PID|1||A1^^^CLINIC-A^MR||Doe^Jane^^^^^L||\"\"\r");
    let parsed = Message::parse(msg.as_bytes()).unwrap();
    let intake = judge(&parsed, clock());
    assert!(!intake.accepted);
    assert!(intake
        .findings
        .iter()
        .any(|f| f.location.to_erl() == "PID^1^7" && f.message.contains("null")));
}

#[test]
fn the_view_round_trips_through_json() {
    let v = vxu_of(&corpus("vxu-012.hl7"));
    let json = serde_json::to_string(&v).unwrap();
    let back: iz::Vxu = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
}

#[test]
fn qbp_query_parameters() {
    let bytes = corpus("qbp-001.hl7");
    let msg = Message::parse(&bytes).unwrap();
    let intake = judge(&msg, clock());
    let q = query(&msg, intake.validation.as_ref().unwrap());
    assert_eq!(q.query_name.as_deref(), Some("Z44"));
    assert_eq!(q.query_tag.as_deref(), Some("IZ-1.1-2015"));
    assert_eq!(q.identifiers[0].id, "171122");
    assert_eq!(q.identifiers[0].authority.as_deref(), Some("NIST-MPI-1"));
    let name = q.name.as_ref().unwrap();
    assert_eq!(
        (name.family.as_deref(), name.given.as_deref()),
        (Some("Fairchild"), Some("Cameron"))
    );
    assert_eq!(
        q.mother_maiden_name.as_ref().unwrap().family.as_deref(),
        Some("Fairlady")
    );
    assert_eq!(q.birth_date, Some(d(2009, 2, 14)));
    assert_eq!(q.sex.as_deref(), Some("M"));
    assert_eq!(q.address.as_ref().unwrap().city.as_deref(), Some("Bozeman"));
    assert_eq!(q.limit, Some(1));
    assert_eq!(q.header.sending_facility.as_deref(), Some("NISTEHRFAC"));
}

#[test]
fn qbp_phone_multiple_birth_and_order() {
    let msg = "MSH|^~\\&|APP|CLINIC-A|IIS|IIS|20250101120000-0500||QBP^Q11^QBP_Q11|Q-1|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|CLINIC-A|IIS\r\
               QPD|Z34^Request Immunization History^CDCPHINVS|TAG-9|A1^^^CLINIC-A^MR|Doe^Jane^^^^^L|Smith^^^^^^M|20200101|F|1 Main St^^Town^MT^59715^USA^P|^PRN^PH^^^406^5551234|Y|2\r\
               RCP|I|20^RD&Records&HL70126|R\r";
    let msg = Message::parse(msg.as_bytes()).unwrap();
    let intake = judge(&msg, clock());
    assert!(intake.accepted, "{:#?}", intake.findings);
    let q = query(&msg, intake.validation.as_ref().unwrap());
    assert_eq!(q.query_name.as_deref(), Some("Z34"));
    assert_eq!(q.phone.as_ref().unwrap().digits(), "4065551234");
    assert_eq!(q.multiple_birth, Some(true));
    assert_eq!(q.birth_order, Some(2));
    assert_eq!(q.limit, Some(20));
}

#[test]
fn every_accepted_corpus_vxu_has_a_usable_view() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("vxu-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let msg = Message::parse(&bytes).unwrap();
        let intake = judge(&msg, clock());
        if !intake.accepted {
            continue;
        }
        let v = vxu(&msg, intake.validation.as_ref().unwrap());
        assert!(!v.patient.identifiers.is_empty(), "{name}: no PID-3");
        assert!(!v.patient.names.is_empty(), "{name}: no PID-5");
        assert!(v.patient.birth_date.present().is_some(), "{name}: no DOB");
        for o in &v.orders {
            assert!(!o.vaccine.is_empty(), "{name}: order without RXA-5");
            assert!(o.administered.is_some(), "{name}: order without RXA-3");
        }
        seen += 1;
    }
    assert!(seen >= 15, "only {seen} accepted VXUs in the corpus");
}
