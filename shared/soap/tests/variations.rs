//! What real senders do differently from NIST's samples, and what broken or
//! hostile ones send: each case gives the right request or its specific
//! error, never a panic.
#![allow(clippy::unwrap_used)]

mod support;

use soap::{parse_request, FaultKind, Request, RequestError, SoapVersion};
use support::*;

fn ok(body: impl AsRef<[u8]>) -> Request {
    match parse_request(body.as_ref()) {
        Ok(r) => r,
        Err(e) => panic!(
            "expected a request, got {e:?}\n{}",
            String::from_utf8_lossy(body.as_ref())
        ),
    }
}

fn err(body: impl AsRef<[u8]>) -> RequestError {
    match parse_request(body.as_ref()) {
        Ok(r) => panic!(
            "expected an error, got {r:?}\n{}",
            String::from_utf8_lossy(body.as_ref())
        ),
        Err(e) => e,
    }
}

fn submitted(r: &Request) -> (&str, &str, Option<&str>, &str) {
    match r {
        Request::SubmitSingleMessage {
            username,
            password,
            facility_id,
            hl7_message,
            ..
        } => (username, password, facility_id.as_deref(), hl7_message),
        other => panic!("not a submit: {other:?}"),
    }
}

fn basic() -> String {
    submit(&submit_children(
        "u",
        "p",
        "F1",
        "MSH|^~\\&amp;|A&#13;PID|1",
    ))
}

// ---------------------------------------------------------------- namespaces

#[test]
fn prefixes_do_not_matter() {
    let body = format!(
        "<S:Envelope xmlns:S=\"{SOAP12}\"><S:Header/><S:Body>\
         <ns2:submitSingleMessage xmlns:ns2=\"{CDC}\"><ns2:username>u</ns2:username>\
         <ns2:password>p</ns2:password><ns2:facilityID>F1</ns2:facilityID>\
         <ns2:hl7Message>MSH|^~\\&amp;|A&#13;PID|1</ns2:hl7Message></ns2:submitSingleMessage>\
         </S:Body></S:Envelope>"
    );
    let r = ok(&body);
    assert_eq!(submitted(&r), ("u", "p", Some("F1"), "MSH|^~\\&|A\rPID|1"));
    assert_eq!(ok(env12(&basic())), r);
}

#[test]
fn one_prefix_rebound_at_each_level() {
    let body = format!(
        "<x:Envelope xmlns:x=\"{SOAP12}\"><x:Body><x:submitSingleMessage xmlns:x=\"{CDC}\">\
         <x:username>u</x:username><x:password>p</x:password><x:hl7Message>M</x:hl7Message>\
         </x:submitSingleMessage></x:Body></x:Envelope>"
    );
    assert_eq!(submitted(&ok(body)), ("u", "p", None, "M"));
}

#[test]
fn soap_prefix_bound_to_another_namespace_is_not_soap() {
    let body = "<soap:Envelope xmlns:soap=\"urn:not-soap\"><soap:Body/></soap:Envelope>";
    let e = err(body);
    assert!(matches!(e, RequestError::NotSoapEnvelope { .. }), "{e:?}");
    assert!(e.message().contains("urn:not-soap"), "{e}");
    assert_eq!(e.version(), None);
}

#[test]
fn unqualified_children_are_tolerated() {
    let body = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP12}\"><soapenv:Body>\
         <urn:submitSingleMessage xmlns:urn=\"{CDC}\"><username>u</username><password>p</password>\
         <facilityID>F</facilityID><hl7Message>M</hl7Message></urn:submitSingleMessage>\
         </soapenv:Body></soapenv:Envelope>"
    );
    assert_eq!(submitted(&ok(body)), ("u", "p", Some("F"), "M"));
}

#[test]
fn children_in_any_order() {
    let body = env12(&submit(
        "<hl7Message>M</hl7Message><facilityID>F</facilityID><password>p</password><username>u</username>",
    ));
    assert_eq!(submitted(&ok(body)), ("u", "p", Some("F"), "M"));
}

#[test]
fn soap11_envelope_is_read_and_remembered() {
    let body = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP11}\" xmlns:urn=\"{CDC}\"><soapenv:Header/>\
         <soapenv:Body><urn:connectivityTest><urn:echoBack>ping</urn:echoBack></urn:connectivityTest>\
         </soapenv:Body></soapenv:Envelope>"
    );
    let r = ok(body);
    assert_eq!(
        r,
        Request::ConnectivityTest {
            version: SoapVersion::Soap11,
            echo_back: "ping".into()
        }
    );
}

#[test]
fn soap11_errors_carry_the_version() {
    let body = format!("<e:Envelope xmlns:e=\"{SOAP11}\"><e:Body/></e:Envelope>");
    let e = err(body);
    assert!(matches!(e, RequestError::EmptyBody { .. }), "{e:?}");
    assert_eq!(e.version(), Some(SoapVersion::Soap11));
}

// ---------------------------------------------------------------- text

#[test]
fn cdata_hl7_message() {
    let body = env12(&submit(
        "<username>u</username><password>p</password>\
         <hl7Message><![CDATA[MSH|^~\\&|<tag>|x]]>&#13;<![CDATA[PID|1]]></hl7Message>",
    ));
    assert_eq!(submitted(&ok(body)).3, "MSH|^~\\&|<tag>|x\rPID|1");
}

#[test]
fn cr_references_survive_literal_line_ends_do_not() {
    let body = env12(&submit(
        "<username>u</username><password>p</password>\
         <hl7Message>A&#13;B&#xD;C&#xd;D\r\nE\rF\nG</hl7Message>",
    ));
    // &#13; / &#xD; are CRs; literal CRLF and CR are normalised to LF by XML.
    assert_eq!(submitted(&ok(body)).3, "A\rB\rC\rD\nE\nF\nG");
}

#[test]
fn cr_in_cdata_becomes_lf() {
    let body = env12(&submit(
        "<username>u</username><password>p</password><hl7Message><![CDATA[A\rB\r\nC]]></hl7Message>",
    ));
    assert_eq!(submitted(&ok(body)).3, "A\nB\nC");
}

#[test]
fn entity_references_are_decoded() {
    let body = env12(&submit(
        "<username>a&amp;b&lt;&gt;&quot;&apos;&#233;&#x1F600;</username><password>p</password>\
         <hl7Message>M</hl7Message>",
    ));
    assert_eq!(submitted(&ok(body)).0, "a&b<>\"'é😀");
}

#[test]
fn whitespace_around_credentials_is_trimmed_but_hl7_is_verbatim() {
    let body = format!(
        "\n\n  <?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Envelope xmlns=\"{SOAP12}\">\n  <Body>\n    \
         <submitSingleMessage xmlns=\"{CDC}\">\n      <username>\n        u\n      </username>\n      \
         <password>\tp \t</password>\n      <facilityID>  F  </facilityID>\n      \
         <hl7Message>\n  MSH|^~\\&amp;|&#13;\n  </hl7Message>\n    </submitSingleMessage>\n  </Body>\n\
         </Envelope>\n\n  \n"
    );
    assert_eq!(
        submitted(&ok(body)),
        ("u", "p", Some("F"), "\n  MSH|^~\\&|\r\n  ")
    );
}

#[test]
fn comments_and_processing_instructions_are_skipped() {
    let body = env12(&submit(
        "<!-- c --><username>u<!-- in --></username><?pi x?><password>p</password>\
         <hl7Message>MS<!-- split -->H</hl7Message>",
    ));
    assert_eq!(submitted(&ok(body)), ("u", "p", None, "MSH"));
}

#[test]
fn utf8_bom_and_declaration() {
    let mut body = vec![0xEF, 0xBB, 0xBF];
    body.extend_from_slice(env12(&basic()).as_bytes());
    assert_eq!(submitted(&ok(&body)).0, "u");
}

#[test]
fn latin1_declared_body() {
    let text = env12(&submit(
        "<username>Jos\u{e9}</username><password>p</password><hl7Message>M</hl7Message>",
    ))
    .replace("encoding='UTF-8'", "encoding='ISO-8859-1'");
    let bytes: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    assert_eq!(submitted(&ok(&bytes)).0, "José");
}

#[test]
fn utf16_with_bom() {
    let text = env12(&basic());
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(submitted(&ok(&bytes)).0, "u");
}

#[test]
fn non_utf8_bytes_are_an_encoding_error() {
    let mut body = env12(&basic()).into_bytes();
    body.insert(120, 0xFF);
    let e = err(&body);
    assert!(matches!(e, RequestError::Encoding { .. }), "{e:?}");
    assert!(e.message().contains("offset 120"), "{e}");
}

// ---------------------------------------------------------------- optional / nil

#[test]
fn facility_absent_nil_or_empty() {
    let r = ok(env12(&submit(
        "<username>u</username><password>p</password><hl7Message>M</hl7Message>",
    )));
    assert_eq!(submitted(&r).2, None);
    let nil = "<username>u</username><password>p</password>\
         <facilityID xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"/>\
         <hl7Message>M</hl7Message>";
    assert_eq!(submitted(&ok(env12(&submit(nil)))).2, None);
    let empty =
        "<username>u</username><password>p</password><facilityID/><hl7Message>M</hl7Message>";
    assert_eq!(submitted(&ok(env12(&submit(empty)))).2, Some(""));
}

#[test]
fn echo_back_absent_or_nil_is_empty() {
    let absent = env12(&format!("<connectivityTest xmlns=\"{CDC}\"/>"));
    assert_eq!(
        ok(absent),
        Request::ConnectivityTest {
            version: SoapVersion::Soap12,
            echo_back: String::new()
        }
    );
    let nil = env12(&format!(
        "<connectivityTest xmlns=\"{CDC}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <echoBack xsi:nil=\"1\"/></connectivityTest>"
    ));
    assert!(matches!(ok(nil), Request::ConnectivityTest { echo_back, .. } if echo_back.is_empty()));
    let spaced = env12(&format!(
        "<connectivityTest xmlns=\"{CDC}\"><echoBack>  hi  </echoBack></connectivityTest>"
    ));
    assert!(
        matches!(ok(spaced), Request::ConnectivityTest { echo_back, .. } if echo_back == "  hi  ")
    );
}

// ---------------------------------------------------------------- headers

#[test]
fn header_without_must_understand_is_ignored() {
    let body = format!(
        "<e:Envelope xmlns:e=\"{SOAP12}\"><e:Header><t:Trace xmlns:t=\"urn:trace\">1</t:Trace>\
         <t:Other xmlns:t=\"urn:trace\" e:mustUnderstand=\"false\"/></e:Header>\
         <e:Body>{}</e:Body></e:Envelope>",
        basic()
    );
    assert_eq!(submitted(&ok(body)).0, "u");
}

#[test]
fn must_understand_unknown_header_is_refused() {
    for value in ["true", "1", " true "] {
        let body = format!(
            "<e:Envelope xmlns:e=\"{SOAP12}\"><e:Header>\
             <wsse:Security xmlns:wsse=\"urn:wsse\" e:mustUnderstand=\"{value}\"/></e:Header>\
             <e:Body>{}</e:Body></e:Envelope>",
            basic()
        );
        let e = err(body);
        match &e {
            RequestError::MustUnderstand {
                version,
                namespace,
                name,
                message,
            } => {
                assert_eq!(*version, SoapVersion::Soap12);
                assert_eq!(
                    (namespace.as_str(), name.as_str()),
                    ("urn:wsse", "Security")
                );
                assert!(message.contains("{urn:wsse}Security"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.fault_kind(),
            FaultKind::MustUnderstand {
                namespace: "urn:wsse".into(),
                name: "Security".into()
            }
        );
    }
}

#[test]
fn must_understand_attribute_must_be_in_the_envelope_namespace() {
    // An unqualified or foreign mustUnderstand attribute is not SOAP's.
    let body = format!(
        "<e:Envelope xmlns:e=\"{SOAP12}\"><e:Header>\
         <h:A xmlns:h=\"urn:h\" mustUnderstand=\"true\"/>\
         <h:B xmlns:h=\"urn:h\" xmlns:o=\"{SOAP11}\" o:mustUnderstand=\"1\"/></e:Header>\
         <e:Body>{}</e:Body></e:Envelope>",
        basic()
    );
    ok(body);
}

#[test]
fn must_understand_for_another_role_is_not_ours() {
    for role in [
        "http://www.w3.org/2003/05/soap-envelope/role/none",
        "urn:some:intermediary",
    ] {
        let body = format!(
            "<e:Envelope xmlns:e=\"{SOAP12}\"><e:Header>\
             <h:X xmlns:h=\"urn:h\" e:mustUnderstand=\"true\" e:role=\"{role}\"/></e:Header>\
             <e:Body>{}</e:Body></e:Envelope>",
            basic()
        );
        ok(body);
    }
    let next = format!(
        "<e:Envelope xmlns:e=\"{SOAP12}\"><e:Header>\
         <h:X xmlns:h=\"urn:h\" e:mustUnderstand=\"true\" \
         e:role=\"http://www.w3.org/2003/05/soap-envelope/role/next\"/></e:Header>\
         <e:Body>{}</e:Body></e:Envelope>",
        basic()
    );
    assert!(matches!(err(next), RequestError::MustUnderstand { .. }));
}

#[test]
fn soap11_must_understand() {
    let body = format!(
        "<e:Envelope xmlns:e=\"{SOAP11}\"><e:Header>\
         <h:X xmlns:h=\"urn:h\" e:mustUnderstand=\"1\"/></e:Header>\
         <e:Body>{}</e:Body></e:Envelope>",
        basic()
    );
    let e = err(body);
    assert!(matches!(e, RequestError::MustUnderstand { .. }), "{e:?}");
    assert_eq!(e.version(), Some(SoapVersion::Soap11));
    let other_actor = format!(
        "<e:Envelope xmlns:e=\"{SOAP11}\"><e:Header>\
         <h:X xmlns:h=\"urn:h\" e:mustUnderstand=\"1\" e:actor=\"urn:proxy\"/></e:Header>\
         <e:Body>{}</e:Body></e:Envelope>",
        basic()
    );
    ok(other_actor);
}

#[test]
fn ws_addressing_headers_are_understood() {
    let body = format!(
        "<s:Envelope xmlns:s=\"{SOAP12}\" xmlns:a=\"http://www.w3.org/2005/08/addressing\"><s:Header>\
         <a:Action s:mustUnderstand=\"1\">urn:cdc:iisb:2011:submitSingleMessage</a:Action>\
         <a:MessageID>urn:uuid:1</a:MessageID>\
         <a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>\
         <a:To s:mustUnderstand=\"1\">https://iis.example/soap</a:To></s:Header>\
         <s:Body>{}</s:Body></s:Envelope>",
        basic()
    );
    assert_eq!(submitted(&ok(body)).0, "u");
}

// ---------------------------------------------------------------- operations

#[test]
fn unknown_operation_is_named() {
    let e = err(env12(&format!("<submitBatch xmlns=\"{CDC}\"/>")));
    match &e {
        RequestError::UnknownOperation {
            namespace, name, ..
        } => assert_eq!((namespace.as_str(), name.as_str()), (CDC, "submitBatch")),
        other => panic!("{other:?}"),
    }
    assert!(e.message().contains("submitBatch"), "{e}");
    assert_eq!(
        e.fault_kind(),
        FaultKind::UnsupportedOperation {
            operation: "submitBatch".into()
        }
    );
}

#[test]
fn operation_in_wrong_namespace_gets_a_hint() {
    let e = err(env12(&submit_in(
        "urn:cdc:iisb:2014",
        "submitSingleMessage",
    )));
    assert!(matches!(e, RequestError::UnknownOperation { .. }));
    assert!(
        e.message()
            .contains("must be in namespace urn:cdc:iisb:2011"),
        "{e}"
    );
    assert_eq!(
        e.fault_kind(),
        FaultKind::UnsupportedOperation {
            operation: "{urn:cdc:iisb:2014}submitSingleMessage".into()
        }
    );
    let bare = err(env12(
        "<submitSingleMessage xmlns=\"\"><username>u</username></submitSingleMessage>",
    ));
    assert!(bare.message().contains("not without a namespace"), "{bare}");
    // Unprefixed inside a default-namespace envelope: it is in SOAP's namespace.
    let inherited = err(env12(
        "<submitSingleMessage><username>u</username></submitSingleMessage>",
    ));
    assert!(
        inherited.message().contains(&format!("not \"{SOAP12}\"")),
        "{inherited}"
    );
    let iz = err(env12(&submit_in(
        "urn:cdc:iisb:2014",
        "SubmitSingleMessageRequest",
    )));
    assert!(iz.message().contains("2014"), "{iz}");
    let case = err(env12(&submit_in(CDC, "SubmitSingleMessage")));
    assert!(
        case.message().contains("did you mean submitSingleMessage"),
        "{case}"
    );
}

fn submit_in(namespace: &str, name: &str) -> String {
    format!("<{name} xmlns=\"{namespace}\"><username>u</username></{name}>")
}

#[test]
fn missing_password() {
    let e = err(env12(&submit(
        "<username>u</username><facilityID>F</facilityID><hl7Message>M</hl7Message>",
    )));
    match &e {
        RequestError::MissingElement {
            version,
            operation,
            element,
            message,
        } => {
            assert_eq!(*version, SoapVersion::Soap12);
            assert_eq!((*operation, *element), ("submitSingleMessage", "password"));
            assert!(message.contains("no password element"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.fault_kind(), FaultKind::Sender);
}

#[test]
fn missing_or_nil_username_and_message() {
    let e = err(env12(&submit(
        "<password>p</password><hl7Message>M</hl7Message>",
    )));
    assert!(
        matches!(
            e,
            RequestError::MissingElement {
                element: "username",
                ..
            }
        ),
        "{e:?}"
    );
    let e = err(env12(&submit(
        "<username>u</username><password>p</password>",
    )));
    assert!(
        matches!(
            e,
            RequestError::MissingElement {
                element: "hl7Message",
                ..
            }
        ),
        "{e:?}"
    );
    let nil =
        "<username xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"/>\
         <password>p</password><hl7Message>M</hl7Message>";
    let e = err(env12(&submit(nil)));
    assert!(
        matches!(
            e,
            RequestError::MissingElement {
                element: "username",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.message().contains("xsi:nil"), "{e}");
}

#[test]
fn nil_with_content_is_invalid() {
    let body = "<username>u</username><password>p</password>\
         <hl7Message xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\">M</hl7Message>";
    let e = err(env12(&submit(body)));
    assert!(matches!(e, RequestError::Invalid { .. }), "{e:?}");
}

#[test]
fn repeated_unexpected_or_structured_children_are_invalid() {
    let twice = "<username>u</username><username>v</username><password>p</password><hl7Message>M</hl7Message>";
    let e = err(env12(&submit(twice)));
    assert!(matches!(e, RequestError::Invalid { .. }), "{e:?}");
    assert!(e.message().contains("more than one username"), "{e}");

    let stranger = "<username>u</username><password>p</password><hl7Message>M</hl7Message><extra/>";
    let e = err(env12(&submit(stranger)));
    assert!(
        e.message()
            .contains("unexpected element {urn:cdc:iisb:2011}extra"),
        "{e}"
    );

    let typo = "<username>u</username><password>p</password><facilityId>F</facilityId><hl7Message>M</hl7Message>";
    let e = err(env12(&submit(typo)));
    assert!(e.message().contains("did you mean facilityID"), "{e}");

    let foreign = "<x:username xmlns:x=\"urn:x\">u</x:username><password>p</password><hl7Message>M</hl7Message>";
    let e = err(env12(&submit(foreign)));
    assert!(e.message().contains("must be in namespace"), "{e}");

    let nested = "<username>u</username><password>p</password><hl7Message><MSH/></hl7Message>";
    let e = err(env12(&submit(nested)));
    assert!(
        e.message().contains("hl7Message must hold text only"),
        "{e}"
    );
}

// ---------------------------------------------------------------- envelope shape

#[test]
fn empty_body() {
    for inner in ["", "   \n  ", "<!-- nothing -->"] {
        let e = err(env12(inner));
        assert!(matches!(e, RequestError::EmptyBody { .. }), "{e:?}");
        assert!(e.message().contains("is empty"), "{e}");
    }
    let e = err(env12("just text"));
    assert!(e.message().contains("holds text but no element"), "{e}");
    let e = err(format!("<Envelope xmlns=\"{SOAP12}\"><Body/></Envelope>"));
    assert!(matches!(e, RequestError::EmptyBody { .. }), "{e:?}");
}

#[test]
fn two_operations_are_ambiguous() {
    let e = err(env12(&format!("{}{}", basic(), basic())));
    assert!(matches!(e, RequestError::Invalid { .. }), "{e:?}");
    assert!(e.message().contains("2 elements"), "{e}");
}

#[test]
fn no_body() {
    let e = err(format!("<Envelope xmlns=\"{SOAP12}\"><Header/></Envelope>"));
    assert!(matches!(e, RequestError::NoBody { .. }), "{e:?}");
    let e = err(format!(
        "<e:Envelope xmlns:e=\"{SOAP12}\"><o:Body xmlns:o=\"{SOAP11}\">{}</o:Body></e:Envelope>",
        basic()
    ));
    assert!(matches!(e, RequestError::NoBody { .. }), "{e:?}");
    assert!(e.message().contains(SOAP11), "{e}");
}

#[test]
fn duplicate_or_misplaced_envelope_children() {
    let two_bodies = format!(
        "<Envelope xmlns=\"{SOAP12}\"><Body>{0}</Body><Body>{0}</Body></Envelope>",
        basic()
    );
    assert!(err(two_bodies).message().contains("more than one Body"));
    let header_after = format!(
        "<Envelope xmlns=\"{SOAP12}\"><Body>{}</Body><Header/></Envelope>",
        basic()
    );
    assert!(err(header_after).message().contains("before the Body"));
    let stranger = format!(
        "<Envelope xmlns=\"{SOAP12}\"><Trailer/><Body>{}</Body></Envelope>",
        basic()
    );
    assert!(err(stranger)
        .message()
        .contains("unexpected element Trailer"));
    // Elements of other namespaces are skipped (SOAP 1.1 allows trailers).
    let foreign = format!(
        "<Envelope xmlns=\"{SOAP12}\"><Body>{}</Body><x:T xmlns:x=\"urn:x\"/></Envelope>",
        basic()
    );
    ok(foreign);
}

#[test]
fn not_an_envelope() {
    let e = err(basic());
    assert!(matches!(e, RequestError::NotSoapEnvelope { .. }), "{e:?}");
    assert!(e.message().contains("must be wrapped"), "{e}");
    let e = err("<Envelope><Body/></Envelope>");
    assert!(e.message().contains("no namespace"), "{e}");
    let e = err("<html><body>hi</body></html>");
    assert!(e.message().contains("root element is html"), "{e}");
}

// ---------------------------------------------------------------- not XML

#[test]
fn not_xml() {
    for body in [
        "hello",
        "{\"json\": true}",
        "<",
        "<a>",
        "<a></b>",
        "&amp;",
        "MSH|^~\\&|",
    ] {
        let e = err(body);
        assert!(matches!(e, RequestError::NotXml { .. }), "{body}: {e:?}");
        assert!(
            e.message().starts_with("request is not well-formed XML"),
            "{e}"
        );
        assert_eq!(e.version(), None);
        assert_eq!(e.fault_kind(), FaultKind::Sender);
    }
    let e = err("");
    assert!(e.message().contains("empty"), "{e}");
    let e = err(" \r\n\t");
    assert!(e.message().contains("only whitespace"), "{e}");
}

#[test]
fn every_truncation_of_a_sample_is_an_error() {
    let full = nist(NIST_SUBMIT_REQUEST);
    let end = full.windows(11).position(|w| w == b"</Envelope>").unwrap() + 11;
    for cut in 0..end {
        let e = err(&full[..cut]);
        assert!(
            matches!(
                e,
                RequestError::NotXml { .. } | RequestError::Encoding { .. }
            ),
            "cut at {cut}: {e:?}"
        );
    }
    ok(&full[..end]);
}

#[test]
fn undeclared_entity_is_not_xml() {
    let e = err(env12(&submit("<username>&foo;</username>")));
    assert!(matches!(e, RequestError::NotXml { .. }), "{e:?}");
}

// ---------------------------------------------------------------- hostile

#[test]
fn doctype_entity_bomb_is_refused() {
    let bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n\
        <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n\
        <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n\
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n\
        <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n]>\n";
    let body = format!(
        "{bomb}<Envelope xmlns=\"{SOAP12}\"><Body>{}</Body></Envelope>",
        submit("<username>&lol9;</username><password>p</password><hl7Message>M</hl7Message>")
    );
    let e = err(body);
    assert!(matches!(e, RequestError::Doctype { .. }), "{e:?}");
    assert!(e.message().contains("DOCTYPE"), "{e}");
    assert_eq!(e.fault_kind(), FaultKind::Sender);
}

#[test]
fn doctype_external_entity_is_refused() {
    let body = format!(
        "<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
         <Envelope xmlns=\"{SOAP12}\"><Body>{}</Body></Envelope>",
        submit("<username>&xxe;</username><password>p</password><hl7Message>M</hl7Message>")
    );
    assert!(matches!(err(body), RequestError::Doctype { .. }));
    // Even an empty DOCTYPE is refused: SOAP forbids any.
    let plain = format!(
        "<!DOCTYPE Envelope><Envelope xmlns=\"{SOAP12}\"><Body>{}</Body></Envelope>",
        basic()
    );
    assert!(matches!(err(plain), RequestError::Doctype { .. }));
}

#[test]
fn node_flood_and_deep_nesting_are_bounded() {
    let flood = env12(&format!(
        "<connectivityTest xmlns=\"{CDC}\"><echoBack>x</echoBack></connectivityTest>{}",
        "<a/>".repeat(50_000)
    ));
    let e = err(flood);
    assert!(matches!(e, RequestError::NotXml { .. }), "{e:?}");
    assert!(e.message().contains("10000"), "{e}");

    let depth = 200_000;
    let deep = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    assert!(matches!(err(deep), RequestError::NotXml { .. }));
}

// ---------------------------------------------------------------- errors to faults

#[test]
fn every_error_becomes_a_well_formed_client_fault() {
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\xFF\xFE\x00".to_vec(),
        b"<a".to_vec(),
        b"<!DOCTYPE a><a/>".to_vec(),
        b"<a/>".to_vec(),
        format!("<Envelope xmlns=\"{SOAP12}\"/>").into_bytes(),
        env12("").into_bytes(),
        env12("<x/>").into_bytes(),
        env12(&submit("")).into_bytes(),
        format!(
            "<e:Envelope xmlns:e=\"{SOAP11}\"><e:Header><h xmlns=\"urn:h\" e:mustUnderstand=\"1\"/>\
             </e:Header><e:Body/></e:Envelope>"
        )
        .into_bytes(),
    ];
    for body in bodies {
        let e = err(&body);
        let version = e.version().unwrap_or_default();
        let kind = e.fault_kind();
        assert!(kind.is_client_error(), "{e:?}");
        if version == SoapVersion::Soap12 {
            assert_eq!(kind.http_status(version), 400, "{e:?}");
        }
        let xml = soap::fault(kind, e.message(), version);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert!(doc
            .root_element()
            .has_tag_name((version.namespace(), "Envelope")));
        assert!(xml.contains(&support::esc(e.message())), "{xml}");
    }
}
