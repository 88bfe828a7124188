//! HL7 text survives the XML round trip byte for byte: `|^~\&`, CRs, markup
//! characters, non-ASCII, in both SOAP versions, in answers and in requests.
#![allow(clippy::unwrap_used)]

mod support;

use proptest::prelude::*;
use soap::{
    connectivity_test_response, fault, parse_request, submit_single_message_response, FaultKind,
    Request, SoapVersion,
};
use support::*;

const ACK: &str = "MSH|^~\\&|IIS|IIS|EHR|X68|20240101120000-0500||ACK^V04^ACK|A1|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS\r\
MSA|AA|NIST-IZ-007.00\r\
ERR||RXA^1^5^1^1|103^Table value not found^HL70357|W||||Cod\\E\\igo <5> & \"Jos\u{e9}\" ]]> \\F\\\\S\\\\T\\\\R\\\r";

fn returned(xml: &str) -> String {
    text_at(xml, CDC, "return").unwrap()
}

#[test]
fn hl7_answer_round_trips_byte_identical() {
    for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
        let xml = submit_single_message_response(ACK, version);
        assert!(!xml.contains('\r'), "CR must be written as &#13;");
        assert_eq!(returned(&xml).as_bytes(), ACK.as_bytes());
        let echo = connectivity_test_response(ACK, version);
        assert_eq!(returned(&echo), ACK);
    }
}

#[test]
fn hl7_request_round_trips_byte_identical() {
    let body = env12(&submit(&submit_children("u", "p", "F", &esc(ACK))));
    match parse_request(body.as_bytes()).unwrap() {
        Request::SubmitSingleMessage { hl7_message, .. } => {
            assert_eq!(hl7_message.as_bytes(), ACK.as_bytes())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parsed_request_answered_and_reparsed() {
    // What a server does: parse NIST's request, answer with its HL7 as is.
    let request = parse_request(&nist(NIST_SUBMIT_REQUEST)).unwrap();
    let Request::SubmitSingleMessage {
        hl7_message,
        version,
        ..
    } = request
    else {
        panic!("not a submit")
    };
    let xml = submit_single_message_response(&hl7_message, version);
    assert_eq!(returned(&xml), NIST_HL7);
}

#[test]
fn fault_text_round_trips() {
    let message = "bad <x> & \"y\"\r\nline";
    for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
        let xml = fault(FaultKind::Security, message, version);
        let reason = match version {
            SoapVersion::Soap12 => text_at(&xml, SOAP12, "Text"),
            SoapVersion::Soap11 => text_at(&xml, "", "faultstring"),
        };
        assert_eq!(reason.as_deref(), Some(message));
        assert_eq!(text_at(&xml, CDC, "Detail").as_deref(), Some(message));
    }
}

#[test]
fn characters_xml_cannot_carry_become_replacement_characters() {
    let xml =
        submit_single_message_response("\u{0B}MSH|\u{1C}\r\u{0}x\u{FFFF}", SoapVersion::Soap12);
    assert_eq!(returned(&xml), "\u{FFFD}MSH|\u{FFFD}\r\u{FFFD}x\u{FFFD}");
}

/// Strings of characters XML can carry, weighted towards the troublesome ones.
fn xml_text() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        '\r', '\n', '\t', '&', '<', '>', ']', '"', '\'', '|', '^', '~', '\\', ' ', 'é', '😀',
        '\u{FFFD}',
    ]);
    let any_xml = any::<char>().prop_filter("XML Char", |c| {
        !matches!(*c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    });
    prop::collection::vec(prop_oneof![interesting, any_xml], 0..200)
        .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn any_xml_text_round_trips_through_answers(text in xml_text()) {
        for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
            let xml = submit_single_message_response(&text, version);
            prop_assert_eq!(returned(&xml), text.clone());
            let xml = fault(FaultKind::Unknown, &text, version);
            prop_assert!(roxmltree::Document::parse(&xml).is_ok());
        }
    }

    #[test]
    fn any_xml_text_round_trips_through_requests(text in xml_text(), user in "[A-Za-z0-9._@-]{1,20}") {
        let body = env12(&submit(&submit_children(&user, "p", "F", &esc(&text))));
        let parsed = parse_request(body.as_bytes());
        match parsed {
            Ok(Request::SubmitSingleMessage { hl7_message, username, .. }) => {
                prop_assert_eq!(hl7_message, text);
                prop_assert_eq!(username, user);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn any_string_gives_well_formed_answers(text in any::<String>()) {
        for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
            for xml in [
                submit_single_message_response(&text, version),
                connectivity_test_response(&text, version),
                fault(FaultKind::Security, &text, version),
                fault(FaultKind::MustUnderstand { namespace: text.clone(), name: text.clone() }, &text, version),
            ] {
                prop_assert!(roxmltree::Document::parse(&xml).is_ok(), "{}", xml);
            }
        }
    }
}
