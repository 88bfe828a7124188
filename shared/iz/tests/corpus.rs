#![allow(clippy::unwrap_used)]
//! Every message of the shared corpus, judged as the IIS judges it, with the
//! outcomes `SOURCES.md` gives (scripted simulator outcomes excepted, see below).

use hl7::Message;
use iz::{
    respond, validate_declared, AckCode, Clock, IisIdentity, ProfileId, RequestKind, Severity,
};
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("IISBULK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7")
        });
    assert!(
        dir.is_dir(),
        "corpus folder {} is missing: the corpus tests cannot run",
        dir.display()
    );
    dir
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fixed "today" after every corpus date, so results do not drift.
fn clock() -> Clock {
    Clock::at(1_790_000_000) // 2026-09-21
}

fn findings_of(name: &str) -> (Option<AckCode>, bool, Vec<(String, String, Severity)>) {
    let r = respond(&read(name), &IisIdentity::default(), clock());
    let f = r
        .findings()
        .iter()
        .map(|f| {
            (
                f.location.to_erl(),
                f.hl7_code.code().to_string(),
                f.severity,
            )
        })
        .collect();
    (r.ack_code, r.accepted, f)
}

#[test]
fn corpus_is_complete() {
    let n = std::fs::read_dir(corpus_dir())
        .expect("corpus")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "hl7"))
        })
        .count();
    assert!(n >= 60, "expected at least 60 corpus messages, found {n}");
}

#[test]
fn conformant_vxus_are_accepted_with_aa() {
    // vxu-007..010 are NIST test steps where a *simulated* IIS was scripted to
    // answer AE/AR; the messages themselves conform, so a real IIS answers AA.
    for n in [
        "001", "002", "003", "004", "005", "006", "007", "008", "009", "010", "011", "012", "013",
    ] {
        let name = format!("vxu-{n}.hl7");
        let (code, accepted, f) = findings_of(&name);
        assert_eq!(code, Some(AckCode::AA), "{name}: {f:?}");
        assert!(accepted, "{name}");
    }
}

#[test]
fn ig_example_with_bad_time_zone_is_accepted_with_a_warning_on_msh7() {
    let (code, accepted, f) = findings_of("vxu-014.hl7");
    assert_eq!(code, Some(AckCode::AE));
    assert!(accepted);
    assert!(
        f.iter()
            .any(|(l, c, s)| l.starts_with("MSH^1^7") && c == "102" && *s == Severity::Warning),
        "{f:?}"
    );
}

#[test]
fn aira_examples_get_warnings_and_the_missing_profile_id_is_an_error() {
    for name in ["vxu-016.hl7", "vxu-017.hl7"] {
        let (code, accepted, f) = findings_of(name);
        assert_eq!(code, Some(AckCode::AE), "{name}");
        assert!(accepted, "{name}: the patient data must still be accepted");
        assert!(
            f.iter()
                .any(|(l, c, s)| l == "MSH^1^21" && c == "101" && *s == Severity::Error),
            "{name}: {f:?}"
        );
        assert!(
            f.iter().any(|(l, c, _)| l == "MSH^1^15" && c == "101"),
            "{name}: {f:?}"
        );
        // RXR-1 'SC' is not an NCIT route: the code is dropped, so is the RE segment.
        assert!(
            f.iter().any(|(l, c, _)| l == "RXR^1^1^1^1" && c == "103"),
            "{name}: {f:?}"
        );
    }
    // vxu-016: bad lot, and the second order lacks its required lot number.
    let (_, _, f) = findings_of("vxu-016.hl7");
    assert!(
        f.iter()
            .any(|(l, c, s)| l == "RXA^2^15" && c == "101" && *s == Severity::Error),
        "{f:?}"
    );
    assert!(
        f.iter().any(|(l, c, _)| l == "RXA^2" && c == "100"),
        "{f:?}"
    );
}

#[test]
fn cair_example_is_accepted() {
    let (code, accepted, f) = findings_of("vxu-015.hl7");
    assert!(accepted);
    assert!(matches!(code, Some(AckCode::AA | AckCode::AE)));
    assert!(f.iter().all(|(_, _, s)| *s != Severity::Error), "{f:?}");
}

#[test]
fn legacy_231_message_is_rejected_with_203() {
    let (code, accepted, f) = findings_of("vxu-018.hl7");
    assert_eq!(code, Some(AckCode::AR));
    assert!(!accepted);
    assert_eq!(
        f,
        vec![("MSH^1^12".to_string(), "203".to_string(), Severity::Error)]
    );
}

#[test]
fn valid_queries_pass_validation() {
    // Z34 (qbp-005/006) and Z44 (qbp-001..004) alike: valid, and answered by
    // the query service from the registry (Z32 or Z42, Z31, Z33 NF/TM), so
    // there is no answer before the registry is asked.
    for name in [
        "qbp-005.hl7",
        "qbp-006.hl7",
        "qbp-001.hl7",
        "qbp-002.hl7",
        "qbp-003.hl7",
        "qbp-004.hl7",
    ] {
        let r = respond(&read(name), &IisIdentity::default(), clock());
        assert!(r.accepted, "{name}: {:?}", r.findings());
        assert!(
            r.findings().iter().all(|f| f.severity < Severity::Error),
            "{name}: {:?}",
            r.findings()
        );
        assert!(
            r.answer.is_none() && r.ack_code.is_none(),
            "{name}: a valid query is answered by the query service"
        );
    }
    for name in ["qbp-001.hl7", "qbp-002.hl7", "qbp-003.hl7", "qbp-004.hl7"] {
        let r = respond(&read(name), &IisIdentity::default(), clock());
        assert_eq!(
            r.kind(),
            Some(RequestKind::Qbp(ProfileId::Z44)),
            "{name} is a Z44"
        );
    }
}

#[test]
fn an_invalid_z44_still_gets_z33_ae_with_its_errors() {
    // qbp-001 without its query tag (QPD-2): refused before the registry.
    let text = String::from_utf8(read("qbp-001.hl7"))
        .unwrap()
        .replace("|IZ-1.1-2015|", "||");
    let r = respond(text.as_bytes(), &IisIdentity::default(), clock());
    assert!(!r.accepted);
    assert_eq!(r.kind(), Some(RequestKind::Qbp(ProfileId::Z44)));
    assert_eq!(r.ack_code, Some(AckCode::AE));
    let answer = r.answer.expect("an invalid Z44 is answered at once");
    let m = Message::parse(answer.as_bytes()).expect("our answer parses");
    assert_eq!(m.msh().field(9).raw(), b"RSP^K11^RSP_K11");
    assert_eq!(m.msh().field(21).first_leaf().text(), "Z33");
    assert_eq!(
        m.first("MSA").map(|s| s.value(1).into_owned()).as_deref(),
        Some("AE")
    );
    let errs: Vec<_> = m.segments().filter(|s| s.id() == "ERR").collect();
    assert!(
        errs.iter().any(|e| e.field(2).raw() == b"QPD^1^2"),
        "{answer:?}"
    );
}

#[test]
fn malformed_query_gets_z33_ae_with_qpd_1_2() {
    let r = respond(&read("qbp-007.hl7"), &IisIdentity::default(), clock());
    assert!(!r.accepted);
    let answer = r.answer.expect("answer");
    let m = Message::parse(answer.as_bytes()).expect("our answer parses");
    assert_eq!(m.msh().field(9).raw(), b"RSP^K11^RSP_K11");
    assert_eq!(
        m.first("MSA").map(|s| s.value(1).into_owned()).as_deref(),
        Some("AE")
    );
    assert_eq!(
        m.first("MSA").map(|s| s.value(2).into_owned()).as_deref(),
        Some("793543")
    );
    let errs: Vec<_> = m.segments().filter(|s| s.id() == "ERR").collect();
    assert_eq!(errs.len(), 1, "Z33 carries one ERR");
    assert_eq!(errs[0].field(2).raw(), b"QPD^1^2");
    assert_eq!(errs[0].value(3), "101");
    assert_eq!(errs[0].value(4), "E");
    assert_eq!(
        m.first("QAK").map(|s| s.value(2).into_owned()).as_deref(),
        Some("AE")
    );
    let order: Vec<String> = m.segments().map(|s| s.id().into_owned()).collect();
    assert_eq!(order, ["MSH", "MSA", "ERR", "QAK", "QPD"]);
}

#[test]
fn every_ack_and_rsp_parses_and_validates_against_its_profile() {
    for e in std::fs::read_dir(corpus_dir()).expect("corpus") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("ack-") || name.starts_with("rsp-")) {
            continue;
        }
        let bytes = std::fs::read(&p).expect("read");
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Messages that declare a profile are validated against it without panicking.
        let _ = validate_declared(&m, clock());
    }
}

fn profile_findings(name: &str) -> Vec<(String, String, Severity, String)> {
    let bytes = read(name);
    let m = Message::parse(&bytes).expect("parse");
    let (_, v) = validate_declared(&m, clock()).expect("declared profile");
    v.findings
        .iter()
        .map(|f| {
            (
                f.location.to_erl(),
                f.hl7_code.code().to_string(),
                f.severity,
                f.message.clone(),
            )
        })
        .collect()
}

#[test]
fn defective_guide_examples_are_flagged_for_their_defect() {
    // ack-010/011: the guide's printed "-500" time zone.
    for name in ["ack-010.hl7", "ack-011.hl7"] {
        let f = profile_findings(name);
        assert!(
            f.iter()
                .any(|(l, _, _, m)| l.starts_with("MSH^1^7") && m.contains("time zone")),
            "{name}: {f:?}"
        );
    }
    // The guide's examples put the user message in ERR-9 (Inform Person Indicator).
    for name in ["ack-006.hl7", "ack-009.hl7", "ack-010.hl7"] {
        let f = profile_findings(name);
        let err9 = |l: &String| l.starts_with("ERR^") && l.split('^').nth(2) == Some("9");
        assert!(
            f.iter().any(|(l, _, _, _)| err9(l)),
            "{name}: ERR-9 text not flagged: {f:?}"
        );
    }
    // ack-012: ERR-3 left blank although it is required.
    let f = profile_findings("ack-012.hl7");
    assert!(
        f.iter().any(|(l, c, _, _)| l == "ERR^1^3" && c == "101"),
        "ack-012: {f:?}"
    );
    // rsp-012: impossible dates printed in the guide's Z42 example.
    let f = profile_findings("rsp-012.hl7");
    assert!(
        f.iter()
            .any(|(_, c, _, m)| c == "102" && m.contains("200900531")),
        "rsp-012: {f:?}"
    );
    // rsp-010: MSH-21 printed with a stray space.
    let f = profile_findings("rsp-010.hl7");
    assert!(
        f.iter().any(|(l, _, _, _)| l.starts_with("MSH^1^21")),
        "rsp-010: {f:?}"
    );
}
