//! NIST's reference envelopes for the CDC 2011 service: their requests parse
//! to exactly the values they hold, and our answers have exactly the element
//! structure (namespaces and local names) of their answers.
#![allow(clippy::unwrap_used)]

mod support;

use soap::{
    connectivity_test_response, fault, parse_request, submit_single_message_response, FaultKind,
    Request, SoapVersion,
};
use support::*;

#[test]
fn every_nist_request_parses() {
    for name in NIST_REQUESTS {
        let body = nist(name);
        let parsed = parse_request(&body);
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
    }
}

#[test]
fn nist_connectivity_request_values() {
    let request = parse_request(&nist(NIST_CONNECTIVITY_REQUEST)).unwrap();
    assert_eq!(
        request,
        Request::ConnectivityTest {
            version: SoapVersion::Soap12,
            echo_back: "Hello world!".to_owned(),
        }
    );
    assert_eq!(request.operation(), "connectivityTest");
}

#[test]
fn nist_submit_request_values() {
    let request = parse_request(&nist(NIST_SUBMIT_REQUEST)).unwrap();
    assert_eq!(
        request,
        Request::SubmitSingleMessage {
            version: SoapVersion::Soap12,
            username: "leonidas".to_owned(),
            password: "Spartans300!".to_owned(),
            facility_id: Some("EHR1234".to_owned()),
            hl7_message: NIST_HL7.to_owned(),
        }
    );
    assert_eq!(request.version(), SoapVersion::Soap12);
    assert_eq!(request.operation(), "submitSingleMessage");
}

#[test]
fn connectivity_response_matches_nist_structure() {
    let ours = connectivity_test_response("You sent: Hello world!", SoapVersion::Soap12);
    let reference = String::from_utf8(nist(NIST_CONNECTIVITY_RESPONSE)).unwrap();
    assert_same_structure(&ours, &reference, "connectivityTestResponse");
    assert_eq!(
        text_at(&ours, CDC, "return"),
        text_at(&reference, CDC, "return")
    );
}

#[test]
fn submit_response_matches_nist_structure() {
    let answer =
        "MSH|^~|&|IISSUT|IISSUT|NISTEHR||<date/timeMSG>||ACK^V04^ACK|<msgControlID>|P|2.5.1|||NE";
    let ours = submit_single_message_response(answer, SoapVersion::Soap12);
    let reference = String::from_utf8(nist(NIST_SUBMIT_RESPONSE)).unwrap();
    assert_same_structure(&ours, &reference, "submitSingleMessageResponse");
    // NIST writes it as CDATA, we escape: the decoded text is the same.
    assert_eq!(text_at(&ours, CDC, "return").as_deref(), Some(answer));
    assert_eq!(text_at(&reference, CDC, "return").as_deref(), Some(answer));
}

#[test]
fn faults_match_nist_structure() {
    let cases = [
        (
            FaultKind::MessageTooLarge {
                size: 2_000_000,
                limit: 1_000_000,
            },
            NIST_TOO_LARGE_FAULT,
        ),
        (FaultKind::Security, NIST_SECURITY_FAULT),
        (
            FaultKind::UnsupportedOperation {
                operation: "submitBatch".to_owned(),
            },
            NIST_UNSUPPORTED_FAULT,
        ),
        (FaultKind::Unknown, NIST_UNKNOWN_FAULT),
    ];
    for (kind, name) in cases {
        let ours = fault(kind.clone(), "Something to fix", SoapVersion::Soap12);
        let reference = String::from_utf8(nist(name)).unwrap();
        assert_same_structure(&ours, &reference, name);

        // Same field semantics: CDC Code is an integer, Reason the category
        // (NIST's samples use these words, except "My Reason" for Unknown).
        let element = kind.cdc_element().unwrap();
        let code = cdc_child(&ours, element, "Code");
        assert!(code.parse::<u64>().is_ok(), "{name}: Code {code:?}");
        assert_eq!(code, kind.cdc_code().unwrap().to_string());
        if kind != FaultKind::Unknown {
            assert_eq!(
                cdc_child(&ours, element, "Reason"),
                cdc_child(&reference, element, "Reason"),
                "{name}"
            );
        }
        assert_eq!(
            text_at(&ours, SOAP12, "Text").as_deref(),
            Some("Something to fix")
        );
        assert!(!cdc_child(&ours, element, "Detail").is_empty());
        // Fault code values are QNames resolving into the envelope namespace.
        let expected = if kind == FaultKind::Unknown {
            "Receiver"
        } else {
            "Sender"
        };
        assert_eq!(fault_code(&ours), (SOAP12.to_owned(), expected.to_owned()));
        assert_eq!(
            fault_code(&reference),
            (SOAP12.to_owned(), "Sender".to_owned())
        );
    }
}

#[test]
fn fault_codes_resolve_to_soap_qnames() {
    let cases = [
        (FaultKind::Security, "Sender"),
        (FaultKind::Sender, "Sender"),
        (FaultKind::Unknown, "Receiver"),
        (FaultKind::Receiver, "Receiver"),
        (
            FaultKind::MustUnderstand {
                namespace: "urn:x".into(),
                name: "H".into(),
            },
            "MustUnderstand",
        ),
    ];
    for (kind, code) in cases {
        let xml = fault(kind, "m", SoapVersion::Soap12);
        assert_eq!(
            fault_code(&xml),
            (SOAP12.to_owned(), code.to_owned()),
            "{xml}"
        );
    }
}

#[test]
fn message_too_large_detail_names_sizes() {
    let xml = fault(
        FaultKind::MessageTooLarge {
            size: 2_000_000,
            limit: 1_000_000,
        },
        "HL7 message too large",
        SoapVersion::Soap12,
    );
    let detail = cdc_child(&xml, "MessageTooLargeFault", "Detail");
    assert!(
        detail.contains("2000000") && detail.contains("1000000"),
        "{detail}"
    );
}

#[test]
fn unsupported_operation_detail_names_it() {
    let xml = fault(
        FaultKind::UnsupportedOperation {
            operation: "{urn:x}doIt".to_owned(),
        },
        "Unsupported operation",
        SoapVersion::Soap12,
    );
    let detail = cdc_child(&xml, "UnsupportedOperationFault", "Detail");
    assert!(detail.contains("{urn:x}doIt"), "{detail}");
}

#[test]
fn plain_faults_have_no_cdc_detail() {
    for kind in [FaultKind::Sender, FaultKind::Receiver] {
        let xml = fault(kind, "bad", SoapVersion::Soap12);
        assert_eq!(
            structure(&xml),
            format!(
                "{{{SOAP12}}}Envelope\n  {{{SOAP12}}}Body\n    {{{SOAP12}}}Fault\n      \
                 {{{SOAP12}}}Code\n        {{{SOAP12}}}Value\n      {{{SOAP12}}}Reason\n        \
                 {{{SOAP12}}}Text\n"
            )
        );
    }
}

#[test]
fn must_understand_fault_names_the_header() {
    let xml = fault(
        FaultKind::MustUnderstand {
            namespace:
                "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
                    .into(),
            name: "Security".into(),
        },
        "not understood",
        SoapVersion::Soap12,
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let nu = doc
        .descendants()
        .find(|n| n.has_tag_name((SOAP12, "NotUnderstood")))
        .unwrap();
    let qname = nu.attribute("qname").unwrap();
    let (prefix, local) = qname.split_once(':').unwrap();
    assert_eq!(local, "Security");
    assert_eq!(
        nu.lookup_namespace_uri(Some(prefix)),
        Some("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd")
    );
    // SOAP 1.1 has no NotUnderstood header: just the fault code.
    let xml11 = fault(
        FaultKind::MustUnderstand {
            namespace: "urn:x".into(),
            name: "H".into(),
        },
        "not understood",
        SoapVersion::Soap11,
    );
    assert!(
        xml11.contains("<faultcode>soap:MustUnderstand</faultcode>"),
        "{xml11}"
    );
    assert!(!xml11.contains("Header"));
}

#[test]
fn soap11_answers_have_soap11_shape() {
    let ok = submit_single_message_response("MSH|^~\\&|", SoapVersion::Soap11);
    assert_eq!(
        structure(&ok),
        format!(
            "{{{SOAP11}}}Envelope\n  {{{SOAP11}}}Body\n    {{{CDC}}}submitSingleMessageResponse\n      \
             {{{CDC}}}return\n"
        )
    );
    let xml = fault(
        FaultKind::Security,
        "Invalid Username or Password",
        SoapVersion::Soap11,
    );
    assert_eq!(
        structure(&xml),
        format!(
            "{{{SOAP11}}}Envelope\n  {{{SOAP11}}}Body\n    {{{SOAP11}}}Fault\n      {{}}faultcode\n      \
             {{}}faultstring\n      {{}}detail\n        {{{CDC}}}SecurityFault\n          {{{CDC}}}Code\n          \
             {{{CDC}}}Reason\n          {{{CDC}}}Detail\n"
        )
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let code = doc
        .descendants()
        .find(|n| n.has_tag_name("faultcode"))
        .unwrap();
    let (prefix, local) = code.text().unwrap().split_once(':').unwrap();
    assert_eq!(code.lookup_namespace_uri(Some(prefix)), Some(SOAP11));
    assert_eq!(local, "Client");
    assert!(fault(FaultKind::Unknown, "x", SoapVersion::Soap11).contains("soap:Server"));
}

#[test]
fn http_choices() {
    assert_eq!(
        SoapVersion::Soap12.content_type(),
        "application/soap+xml; charset=utf-8"
    );
    assert_eq!(
        SoapVersion::Soap11.content_type(),
        "text/xml; charset=utf-8"
    );
    assert_eq!(FaultKind::Security.http_status(SoapVersion::Soap12), 400);
    assert_eq!(FaultKind::Unknown.http_status(SoapVersion::Soap12), 500);
    assert_eq!(FaultKind::Security.http_status(SoapVersion::Soap11), 500);
    assert_eq!(soap::WSDL_CONTENT_TYPE, "text/xml; charset=utf-8");
}

/// Text of `child` (CDC namespace) inside the CDC fault element `element`.
fn cdc_child(xml: &str, element: &str, child: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let parent = doc
        .descendants()
        .find(|n| n.has_tag_name((CDC, element)))
        .unwrap_or_else(|| panic!("no {element} in\n{xml}"));
    let node = parent
        .children()
        .find(|n| n.has_tag_name((CDC, child)))
        .unwrap_or_else(|| panic!("no {child} in {element}"));
    node.text().unwrap_or("").to_owned()
}

/// The SOAP 1.2 fault Code/Value resolved as a QName: (namespace, local).
fn fault_code(xml: &str) -> (String, String) {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let value = doc
        .descendants()
        .find(|n| n.has_tag_name((SOAP12, "Value")))
        .unwrap();
    let text = value.text().unwrap().trim();
    let (prefix, local) = match text.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, text),
    };
    (
        value.lookup_namespace_uri(prefix).unwrap_or("").to_owned(),
        local.to_owned(),
    )
}
