//! Helpers shared by the integration tests: the NIST reference envelopes
//! (read from `testdata/cdc-iis-soap`), a structural
//! comparator, and envelope builders for hand-made requests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const CDC: &str = "urn:cdc:iisb:2011";

/// `testdata/cdc-iis-soap`: the CDC WSDL/XSD and NIST's sample envelopes,
/// copied unchanged (see `testdata/README.md`).
pub fn reference_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/cdc-iis-soap"
    ))
}

/// One NIST envelope by its file name; panics loudly when the reference
/// folder is missing so these tests never pass over nothing.
pub fn nist(name: &str) -> Vec<u8> {
    let path = reference_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read NIST sample {} ({e}); the reference folder testdata/cdc-iis-soap is \
             part of the repository",
            path.display()
        )
    })
}

pub const NIST_CONNECTIVITY_REQUEST: &str = "nist-sender-SOAPENV_1_ConnectivityMessage_Request.xml";
pub const NIST_SUBMIT_REQUEST: &str = "nist-sender-SOAPENV_2_SubmitSingleMessage_Request.xml";
pub const NIST_CONNECTIVITY_RESPONSE: &str =
    "nist-receiver-SOAPENV_1_ConnectivityMessage_Response.xml";
pub const NIST_SUBMIT_RESPONSE: &str = "nist-receiver-SOAPENV_2_SubmitSingleMessage_Response.xml";
pub const NIST_TOO_LARGE_FAULT: &str = "nist-receiver-SOAPENV_3_MessageTooLarge_Fault.xml";
pub const NIST_SECURITY_FAULT: &str = "nist-receiver-SOAPENV_4_Security_Fault.xml";
pub const NIST_UNSUPPORTED_FAULT: &str = "nist-receiver-SOAPENV_5_UnsupportedOperation_Fault.xml";
pub const NIST_UNKNOWN_FAULT: &str = "nist-receiver-SOAPENV_6_Unknown_Fault.xml";

pub const NIST_REQUESTS: [&str; 2] = [NIST_CONNECTIVITY_REQUEST, NIST_SUBMIT_REQUEST];

/// The HL7 message in NIST's submitSingleMessage sample, after XML decoding.
pub const NIST_HL7: &str = "MSH|^~\\&|Test EHR Application|X68||NIST Test Iz Reg|201207010822||\
VXU^V04^VXU_V04|NIST-IZ-007.00|P|2.5.1|||AL|ER\rPID|1||MR-99922^^^NIST MPI^MR||\
Montgomery^Lewis^^^^^L||20010821|M\rORC|RE||IZ-783276^NDA\rRXA|0|1|20110215||118^HPV^CVX|999|||\
01^Historical information - source unspecified^NIP001";

/// The element structure of an XML document as an indented outline of
/// `{namespace}local` names: text, comments and attributes ignored, and an
/// empty SOAP `Header` dropped (it is optional and says nothing; NIST's
/// samples have it on some answers and not others).
pub fn structure(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml)
        .unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{xml}"));
    let mut out = String::new();
    outline(doc.root_element(), 0, &mut out);
    out
}

fn outline(node: roxmltree::Node<'_, '_>, depth: usize, out: &mut String) {
    let tag = node.tag_name();
    let ns = tag.namespace().unwrap_or("");
    let is_empty_header = tag.name() == "Header"
        && (ns == SOAP12 || ns == SOAP11)
        && !node.children().any(|c| c.is_element());
    if is_empty_header {
        return;
    }
    out.push_str(&"  ".repeat(depth));
    out.push_str(&format!("{{{ns}}}{}\n", tag.name()));
    for child in node.children().filter(|c| c.is_element()) {
        outline(child, depth + 1, out);
    }
}

/// Asserts two documents have the same element structure, showing both
/// outlines when they differ.
pub fn assert_same_structure(ours: &str, reference: &str, what: &str) {
    let a = structure(ours);
    let b = structure(reference);
    assert_eq!(
        a, b,
        "{what}: element structure differs\n--- ours ---\n{a}--- reference ---\n{b}--- our XML ---\n{ours}"
    );
}

/// Text of the first element named (namespace, local), all text children
/// concatenated.
pub fn text_at(xml: &str, namespace: &str, local: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let node = doc.descendants().find(|n| {
        n.is_element()
            && n.tag_name().name() == local
            && n.tag_name().namespace().unwrap_or("") == namespace
    })?;
    Some(
        node.children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect(),
    )
}

/// Escapes text for element content the way a careful sender would (CR as a
/// reference so it survives), independently of the crate's own escaper.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#13;")
}

/// A SOAP 1.2 envelope with default namespaces around `body_inner`.
pub fn env12(body_inner: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n<Envelope xmlns=\"{SOAP12}\"><Body>{body_inner}</Body></Envelope>"
    )
}

/// A submitSingleMessage element (default CDC namespace) from raw child XML.
pub fn submit(children: &str) -> String {
    format!("<submitSingleMessage xmlns=\"{CDC}\">{children}</submitSingleMessage>")
}

/// The usual four children with the given (already escaped) values.
pub fn submit_children(username: &str, password: &str, facility: &str, hl7: &str) -> String {
    format!(
        "<username>{username}</username><password>{password}</password>\
         <facilityID>{facility}</facilityID><hl7Message>{hl7}</hl7Message>"
    )
}
