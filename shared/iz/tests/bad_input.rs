#![allow(clippy::unwrap_used)]
//! The bad-input table: each gets the specific answer the guide calls for, never a panic.

use hl7::{Message, ParseError};
use iz::{respond, AckCode, Clock, IisIdentity, Response, Severity};

const HEAD: &str = "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20250101120000-0500||VXU^V04^VXU_V04|CTRL-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r";
const PID: &str = "PID|1||123^^^EHR^MR||Doe^Jane^^^^^L|Roe^Mary^^^^^M|20200115|F\r";
const ORDER: &str =
    "ORC|RE||9999^EHR\rRXA|0|1|20240101||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";

fn clock() -> Clock {
    Clock::at(1_790_000_000) // 2026-09-21
}

fn run(text: &[u8]) -> Response {
    respond(text, &IisIdentity::default(), clock())
}

fn has(r: &Response, loc: &str, code: &str, sev: Severity) -> bool {
    r.findings()
        .iter()
        .any(|f| f.location.to_erl() == loc && f.hl7_code.code() == code && f.severity == sev)
}

#[test]
fn a_conformant_minimal_vxu_is_aa() {
    let r = run(format!("{HEAD}{PID}{ORDER}").as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AA), "{:?}", r.findings());
}

#[test]
fn empty_body_and_missing_msh_are_unreadable() {
    assert_eq!(run(b"").unreadable, Some(ParseError::Empty));
    assert_eq!(run(b"\r\n").unreadable, Some(ParseError::Empty));
    assert_eq!(
        run(format!("{PID}{ORDER}").as_bytes()).unreadable,
        Some(ParseError::NoMsh)
    );
}

#[test]
fn hash_field_separator_is_rejected_ar() {
    let text = format!("{HEAD}{PID}").replace('|', "#");
    let r = run(text.as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AR));
    assert!(
        has(&r, "MSH^1^1", "102", Severity::Error),
        "{:?}",
        r.findings()
    );
    let answer = r.answer.expect("answer");
    assert!(
        answer.contains("\rMSA|AR|CTRL-1\r"),
        "answer uses our delimiters and echoes MSH-10: {answer}"
    );
}

#[test]
fn version_231_is_ar_203() {
    let r = run(format!("{}{PID}", HEAD.replace("2.5.1", "2.3.1")).as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AR));
    assert!(has(&r, "MSH^1^12", "203", Severity::Error));
}

#[test]
fn adt_a04_is_ar_200() {
    let r = run(format!(
        "{}{PID}",
        HEAD.replace("VXU^V04^VXU_V04", "ADT^A04^ADT_A01")
    )
    .as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AR));
    assert!(
        has(&r, "MSH^1^9^1^1", "200", Severity::Error),
        "{:?}",
        r.findings()
    );
}

#[test]
fn unknown_cvx_drops_the_order_not_the_message() {
    let r = run(format!(
        "{HEAD}{PID}{}",
        ORDER.replace("08^HepB^CVX", "999999^Mystery^CVX")
    )
    .as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AE));
    assert!(r.accepted, "the patient is still accepted");
    assert!(
        has(&r, "RXA^1^5^1^1", "103", Severity::Error),
        "{:?}",
        r.findings()
    );
    assert!(has(&r, "RXA^1^5", "101", Severity::Error));
    assert!(has(&r, "RXA^1", "100", Severity::Error));
}

#[test]
fn future_birth_date_rejects_the_message() {
    let r = run(format!("{HEAD}{}{ORDER}", PID.replace("20200115", "20991231")).as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AE));
    assert!(!r.accepted);
    assert!(
        has(&r, "PID^1^7^1^1", "999", Severity::Error),
        "{:?}",
        r.findings()
    );
    assert!(r
        .findings()
        .iter()
        .any(|f| f.app_code.map(|a| a.code()) == Some("1")));
    assert!(has(&r, "PID^1", "100", Severity::Error));
}

#[test]
fn impossible_birth_date_is_invalid_date() {
    let r = run(format!("{HEAD}{}{ORDER}", PID.replace("20200115", "20251301")).as_bytes());
    assert!(!r.accepted);
    let f = r
        .findings()
        .iter()
        .find(|f| f.location.to_erl() == "PID^1^7^1^1")
        .expect("PID-7.1 finding");
    assert_eq!(f.hl7_code.code(), "102");
    assert_eq!(f.app_code.map(|a| a.code()), Some("2"));
    assert!(f.message.contains("month 13"), "{}", f.message);
}

#[test]
fn ten_thousand_orders_are_processed() {
    let mut text = format!("{HEAD}{PID}");
    for _ in 0..10_000 {
        text.push_str(ORDER);
    }
    let r = run(text.as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AA), "{:?}", r.findings().first());
}

#[test]
fn ten_thousand_bare_rxa_are_reported_within_the_err_limit() {
    let mut text = format!("{HEAD}{PID}");
    for _ in 0..10_000 {
        text.push_str("RXA|0|1|20240101||08^HepB^CVX|999\r");
    }
    let r = run(text.as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AE));
    assert!(r.findings().iter().all(|f| f.hl7_code.code() == "100"));
    let answer = r.answer.expect("answer");
    let errs = answer.matches("\rERR|").count();
    assert_eq!(errs, iz::ack::MAX_ERR_SEGMENTS, "ERR segments are capped");
    assert!(answer.contains("further problems"));
}

#[test]
fn five_megabyte_field_is_answered() {
    let big = "A".repeat(5 * 1024 * 1024);
    let r = run(format!(
        "{HEAD}{}{ORDER}",
        PID.replace("Doe^Jane", &format!("{big}^Jane"))
    )
    .as_bytes());
    let f = r
        .findings()
        .iter()
        .find(|f| f.location.to_erl().starts_with("PID^1^5"))
        .expect("PID-5 length finding");
    assert_eq!(f.hl7_code.code(), "102");
    assert!(f.message.contains("characters long"), "{}", f.message);
    let answer = r.answer.expect("answer");
    assert!(answer.len() < 10_000, "the answer does not echo the field");
}

#[test]
fn non_utf8_bytes_are_reported_where_they_are() {
    let mut text = format!("{HEAD}{PID}{ORDER}").into_bytes();
    let pos = text.windows(4).position(|w| w == b"Jane").expect("Jane");
    text[pos + 1] = 0xFF;
    let r = run(&text);
    assert!(
        r.findings()
            .iter()
            .any(|f| f.location.to_erl() == "PID^1^5^1^2" && f.message.contains("UTF-8")),
        "{:?}",
        r.findings()
    );
}

#[test]
fn trailing_escape_character_is_harmless() {
    let text = format!("{HEAD}{PID}{ORDER}NTE|1||ends with \\");
    let r = run(text.as_bytes());
    assert!(r.answer.is_some());
    let m = Message::parse(text.as_bytes()).expect("parse");
    assert_eq!(m.first("NTE").expect("NTE").value(3), "ends with \\");
}

#[test]
fn err8_is_escaped_and_at_most_250_characters() {
    let r = run(format!(
        "{HEAD}{PID}{}",
        ORDER.replace("08^HepB^CVX", "X|Y^Z&W~V\\U^Mystery^CVX")
    )
    .as_bytes());
    let answer = r.answer.expect("answer");
    let m = Message::parse(answer.as_bytes()).expect("our ACK parses");
    for err in m.segments().filter(|s| s.id() == "ERR") {
        let text = err.value(8);
        assert!(text.chars().count() <= 250);
        assert!(err.field(9).raw().is_empty());
    }
}

#[test]
fn recent_vaccines_and_any_well_formed_ndc_are_accepted() {
    // COVID-19 (CVX 208) from Moderna (MVX MOD): codes newer than the 2016
    // profiles, carried by the code supplement; and an NDC the 2016 lists
    // do not know.
    let covid = "ORC|RE||C-1^EHR\rRXA|0|1|20240101||208^COVID-19 mRNA^CVX|999|||01^Historical^NIP001||||||L1|20250101|MOD^Moderna US^MVX|||CP|A\r";
    let ndc = "ORC|RE||C-2^EHR\rRXA|0|1|20240101||80777-0102-99^Spikevax^NDC|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let r = run(format!("{HEAD}{PID}{covid}{ndc}").as_bytes());
    assert_eq!(r.ack_code, Some(AckCode::AA), "{:#?}", r.findings());

    let bad_ndc = "ORC|RE||C-3^EHR\rRXA|0|1|20240101||8077-0102^X^NDC|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let r = run(format!("{HEAD}{PID}{bad_ndc}").as_bytes());
    assert!(
        has(&r, "RXA^1^5^1^1", "103", Severity::Error),
        "{:#?}",
        r.findings()
    );
}
