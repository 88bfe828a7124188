//! RSP^K11 answers carrying patients: Z32 (the complete history of the one
//! patient the query identified) and Z31 (a list of candidates, no history).
//! Z33 (no data, too many, errors) is in `ack`.

use hl7::{Message, MessageWriter};

use crate::ack::{write_msa, write_msh, write_qak_qpd, IisIdentity, QueryStatus, Received};
use crate::datetime::{Clock, Date};
use crate::intake::AckCode;
use crate::view::{
    Address, Administration, Coded, CompletionStatus, NextOfKin, Order, Patient, PersonName, Phone,
    Value,
};

/// A patient as the IIS answers it: its consolidated demographics and the
/// IIS's own id for it (PID-3, type SR).
#[derive(Debug, Clone, Copy)]
pub struct RspPatient<'a> {
    pub iis_id: &'a str,
    pub patient: &'a Patient,
}

/// One consolidated dose and the IIS's id for it (ORC-3).
#[derive(Debug, Clone, Copy)]
pub struct RspDose<'a> {
    pub iis_id: &'a str,
    pub order: &'a Order,
}

/// RSP^K11 Z32: MSA AA, QAK OK, then PID/PD1/NK1 and one ORDER group per dose.
#[allow(clippy::too_many_arguments)]
pub fn build_rsp_z32(
    query: &Message<'_>,
    to: &Received,
    me: &IisIdentity,
    clock: Clock,
    control_id: &str,
    patient: RspPatient<'_>,
    doses: &[RspDose<'_>],
) -> String {
    let mut w = MessageWriter::new();
    write_msh(
        &mut w,
        me,
        to,
        clock,
        control_id,
        ["RSP", "K11", "RSP_K11"],
        "Z32",
    );
    write_msa(&mut w, AckCode::AA, to);
    write_qak_qpd(&mut w, query, QueryStatus::Ok);
    write_patient(&mut w, me, 1, patient);
    for dose in doses {
        write_order(&mut w, me, dose);
    }
    w.finish()
}

/// RSP^K11 Z31: MSA AA, QAK OK, then PID (PID-1 = 1..n), PD1 and NK1 per
/// candidate; never immunizations.
pub fn build_rsp_z31(
    query: &Message<'_>,
    to: &Received,
    me: &IisIdentity,
    clock: Clock,
    control_id: &str,
    candidates: &[RspPatient<'_>],
) -> String {
    let mut w = MessageWriter::new();
    write_msh(
        &mut w,
        me,
        to,
        clock,
        control_id,
        ["RSP", "K11", "RSP_K11"],
        "Z31",
    );
    write_msa(&mut w, AckCode::AA, to);
    write_qak_qpd(&mut w, query, QueryStatus::Ok);
    for (n, candidate) in candidates.iter().enumerate() {
        write_patient(&mut w, me, n + 1, *candidate);
    }
    w.finish()
}

/// Encodes components, escaping each and dropping trailing empty ones.
pub(crate) fn comps(w: &MessageWriter, parts: &[&str]) -> String {
    let last = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    parts[..last]
        .iter()
        .map(|p| w.escape(p))
        .collect::<Vec<_>>()
        .join("^")
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn coded(w: &MessageWriter, c: &Coded) -> String {
    comps(w, &[&c.code, opt(&c.text), opt(&c.system)])
}

fn name(w: &MessageWriter, n: &PersonName, default_type: &str) -> String {
    let ty = n.name_type.as_deref().unwrap_or(default_type);
    comps(
        w,
        &[
            opt(&n.family),
            opt(&n.given),
            opt(&n.middle),
            opt(&n.suffix),
            "",
            "",
            ty,
        ],
    )
}

fn address(w: &MessageWriter, a: &Address) -> String {
    comps(
        w,
        &[
            opt(&a.street),
            opt(&a.other),
            opt(&a.city),
            opt(&a.state),
            opt(&a.zip),
            opt(&a.country),
            opt(&a.address_type),
            "",
            opt(&a.county),
        ],
    )
}

fn phone(w: &MessageWriter, p: &Phone) -> String {
    comps(
        w,
        &[
            "",
            opt(&p.use_code),
            opt(&p.equipment),
            opt(&p.email),
            "",
            opt(&p.area_code),
            opt(&p.local_number),
            opt(&p.extension),
        ],
    )
}

fn date(d: &Date) -> String {
    d.to_hl7()
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Y"
    } else {
        "N"
    }
}

/// A field from a value that may be present, an HL7 null, or absent.
fn value<T>(v: &Value<T>, f: impl FnOnce(&T) -> String) -> String {
    match v {
        Value::Present(x) => f(x),
        Value::Null => "\"\"".into(),
        Value::Absent => String::new(),
    }
}

fn repeat<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join("~")
}

/// PID: the IIS's id first, then the patient's demographics.
pub(crate) fn write_pid(
    w: &mut MessageWriter,
    me: &IisIdentity,
    set_id: usize,
    rsp: RspPatient<'_>,
) {
    let p = rsp.patient;
    // Our id first (type SR, the registry's), then what the senders gave.
    let mut ids = vec![comps(w, &[rsp.iis_id, "", "", &me.facility, "SR"])];
    ids.extend(
        p.identifiers
            .iter()
            .map(|i| comps(w, &[&i.id, "", "", opt(&i.authority), opt(&i.type_code)])),
    );
    let names = repeat(&p.names, |n| name(w, n, "L"));
    let fields = [
        (3, ids.join("~")),
        (5, names),
        (6, value(&p.mother_maiden_name, |n| name(w, n, "M"))),
        (7, value(&p.birth_date, date)),
        (8, value(&p.sex, |s| w.escape(s))),
        (10, value(&p.races, |r| repeat(r, |c| coded(w, c)))),
        (11, value(&p.addresses, |a| repeat(a, |x| address(w, x)))),
        (13, value(&p.phones, |ph| repeat(ph, |x| phone(w, x)))),
        (22, value(&p.ethnicity, |e| repeat(e, |c| coded(w, c)))),
        (24, value(&p.multiple_birth, |b| yes_no(*b).into())),
        (25, value(&p.birth_order, |o| o.to_string())),
        (29, value(&p.death_date, date)),
        (30, value(&p.deceased, |b| yes_no(*b).into())),
    ];
    {
        let mut s = w.segment("PID");
        s.text(1, &set_id.to_string());
        for (n, v) in &fields {
            s.raw(*n, v);
        }
    }
}

fn write_patient(w: &mut MessageWriter, me: &IisIdentity, set_id: usize, rsp: RspPatient<'_>) {
    write_pid(w, me, set_id, rsp);
    let p = rsp.patient;
    let pd1 = [
        (11, value(&p.publicity, |c| coded(w, c))),
        (12, value(&p.protected, |b| yes_no(*b).into())),
        (13, value(&p.protection_date, date)),
        (16, value(&p.registry_status, |s| w.escape(s))),
        (17, value(&p.registry_status_date, date)),
    ];
    if pd1.iter().any(|(_, v)| !v.is_empty()) {
        let mut s = w.segment("PD1");
        for (n, v) in &pd1 {
            s.raw(*n, v);
        }
    }
    for (i, kin) in p.next_of_kin.iter().enumerate() {
        write_nk1(w, i + 1, kin);
    }
}

fn write_nk1(w: &mut MessageWriter, set_id: usize, kin: &NextOfKin) {
    let name = kin
        .name
        .as_ref()
        .map(|n| name(w, n, "L"))
        .unwrap_or_default();
    let relationship = kin
        .relationship
        .as_ref()
        .map(|c| coded(w, c))
        .unwrap_or_default();
    let addresses = repeat(&kin.addresses, |a| address(w, a));
    let phones = repeat(&kin.phones, |p| phone(w, p));
    w.segment("NK1")
        .text(1, &set_id.to_string())
        .raw(2, &name)
        .raw(3, &relationship)
        .raw(4, &addresses)
        .raw(5, &phones);
}

fn write_order(w: &mut MessageWriter, me: &IisIdentity, dose: &RspDose<'_>) {
    let when = write_dose(w, me, dose);
    write_observations(w, dose.order, &when);
}

/// ORC, RXA and RXR of one dose; returns RXA-3 as written.
pub(crate) fn write_dose(w: &mut MessageWriter, me: &IisIdentity, dose: &RspDose<'_>) -> String {
    let o = dose.order;
    let filler = comps(w, &[dose.iis_id, &me.facility]);
    w.segment("ORC").text(1, "RE").raw(3, &filler);
    // RXA-5: primary triplet, then the alternate in components 4-6.
    let vaccine = match o.vaccine.as_slice() {
        [] => String::new(),
        [one] => coded(w, one),
        [first, alt, ..] => comps(
            w,
            &[
                &first.code,
                opt(&first.text),
                opt(&first.system),
                &alt.code,
                opt(&alt.text),
                opt(&alt.system),
            ],
        ),
    };
    let when = o.administered.map(|d| d.to_hl7()).unwrap_or_default();
    let administration = match &o.administration {
        Administration::New => comps(w, &["00", "New immunization record", "NIP001"]),
        Administration::Historical(code) => comps(w, &[code, "Historical information", "NIP001"]),
        Administration::Unknown => String::new(),
    };
    let completion = match o.completion {
        CompletionStatus::Complete => "CP",
        CompletionStatus::PartiallyAdministered => "PA",
        CompletionStatus::NotAdministered => "NA",
        CompletionStatus::Refused => "RE",
    };
    let facility = o
        .administered_at_facility
        .as_deref()
        .map(|f| comps(w, &["", "", "", f]))
        .unwrap_or_default();
    let lots = repeat(&o.lot_numbers, |l| w.escape(l));
    let reasons = repeat(&o.refusal_reasons, |c| coded(w, c));
    // The guide's "999": amount not recorded (refusals and historical doses).
    let amount = o.amount.clone().unwrap_or_else(|| "999".into());
    let units = o
        .amount_units
        .as_ref()
        .map(|c| coded(w, c))
        .unwrap_or_default();
    let manufacturer = o
        .manufacturer
        .as_ref()
        .map(|c| coded(w, c))
        .unwrap_or_default();
    {
        let mut s = w.segment("RXA");
        s.text(1, "0")
            .text(2, "1")
            .text(3, &when)
            .text(4, &when)
            .raw(5, &vaccine)
            .text(6, &amount)
            .raw(7, &units)
            .raw(9, &administration)
            .raw(11, &facility)
            .raw(15, &lots)
            .text(16, &o.expiration.map(|d| d.to_hl7()).unwrap_or_default())
            .raw(17, &manufacturer)
            .raw(18, &reasons)
            .text(20, completion)
            .text(21, "A");
    }
    if o.route.is_some() || o.site.is_some() {
        let route = o.route.as_ref().map(|c| coded(w, c)).unwrap_or_default();
        let site = o.site.as_ref().map(|c| coded(w, c)).unwrap_or_default();
        w.segment("RXR").raw(1, &route).raw(2, &site);
    }
    when
}

/// The order's observations as the guide groups them: funding eligibility
/// (64994-7) and source (30963-3), then each VIS with its type or document,
/// edition and presentation dates, tied together by OBX-4.
fn write_observations(w: &mut MessageWriter, o: &Order, when: &str) {
    // (OBX-2, OBX-3 code, OBX-3 text, OBX-4, OBX-5 encoded)
    let mut rows: Vec<(&str, &str, &str, usize, String)> = Vec::new();
    let mut sub = 0;
    if let Some(c) = &o.funding_eligibility {
        sub += 1;
        rows.push((
            "CE",
            "64994-7",
            "Vaccine funding program eligibility category",
            sub,
            coded(w, c),
        ));
    }
    if let Some(c) = &o.funding_source {
        sub += 1;
        rows.push(("CE", "30963-3", "Vaccine funding source", sub, coded(w, c)));
    }
    for vis in &o.vis {
        sub += 1;
        if let Some(c) = &vis.document {
            rows.push(("CE", "69764-9", "Document type", sub, coded(w, c)));
        }
        if let Some(c) = &vis.vaccine_type {
            rows.push(("CE", "30956-7", "Vaccine type", sub, coded(w, c)));
        }
        if let Some(d) = &vis.published {
            rows.push((
                "DT",
                "29768-9",
                "Date vaccine information statement published",
                sub,
                d.to_hl7(),
            ));
        }
        if let Some(d) = &vis.presented {
            rows.push((
                "DT",
                "29769-7",
                "Date vaccine information statement presented",
                sub,
                d.to_hl7(),
            ));
        }
    }
    for (n, (value_type, code, text, sub, value)) in rows.iter().enumerate() {
        let id = comps(w, &[code, text, "LN"]);
        let method = comps(
            w,
            &[
                "VXC40",
                "Eligibility captured at the immunization level",
                "CDCPHINVS",
            ],
        );
        let mut s = w.segment("OBX");
        s.text(1, &(n + 1).to_string())
            .text(2, value_type)
            .raw(3, &id)
            .text(4, &sub.to_string())
            .raw(5, value)
            .text(11, "F")
            .text(14, when);
        if *code == "64994-7" {
            s.raw(17, &method);
        }
    }
}
