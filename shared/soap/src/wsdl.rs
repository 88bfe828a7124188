//! The service description clients generate their stubs from (`GET ?wsdl`).
//!
//! We serve the CDC **2011** WSDL (`spec/cdc-iis-2011.wsdl`, vendored byte
//! for byte from the reference copy, see `tests/wsdl.rs`), because it is the
//! contract this crate implements: `urn:cdc:iisb:2011`, `submitSingleMessage`
//! / `connectivityTest`, the elements NIST's test envelopes use. The
//! `cdc-iis.wsdl` beside it is IZ Gateway's 2014 flavour (namespace
//! `urn:cdc:iisb:2014`, `SubmitSingleMessageRequest`, `Hl7Message`, ...);
//! advertising it would make generated clients send requests we refuse.
//!
//! Two changes are made on the way out:
//! - the schema (`spec/cdc-iis-2011.xsd`) is inlined into `<types>` in place
//!   of its `xsd:import`, whose `schemaLocation` points at IZ Gateway's own
//!   server path; a self-contained WSDL needs no second URL to serve;
//! - every `soap12:address` / `soap:address` `location` becomes our address.

/// The CDC 2011 WSDL exactly as published (IZ Gateway's copy).
pub const WSDL_2011: &str = include_str!("../spec/cdc-iis-2011.wsdl");

/// The CDC 2011 schema exactly as published (IZ Gateway's copy).
pub const XSD_2011: &str = include_str!("../spec/cdc-iis-2011.xsd");

/// `Content-Type` for serving [`wsdl`]'s output.
pub const WSDL_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

const WSDL_SOAP12: &str = "http://schemas.xmlsoap.org/wsdl/soap12/";
const WSDL_SOAP11: &str = "http://schemas.xmlsoap.org/wsdl/soap/";

/// The CDC 2011 WSDL with its schema inlined and every SOAP address
/// `location` set to `address` (escaped as an attribute value).
pub fn wsdl(address: &str) -> String {
    let inlined = inline_schema(WSDL_2011, XSD_2011);
    set_addresses(&inlined, address)
}

/// Replaces the content of `<types>` with the schema document's root element
/// (its XML declaration dropped), indented to sit inside `<types>`.
fn inline_schema(wsdl: &str, xsd: &str) -> String {
    let schema = xsd.find("?>").map_or(xsd, |end| &xsd[end + 2..]).trim();
    let (Some(open), Some(close)) = (wsdl.find("<types>"), wsdl.find("</types>")) else {
        return wsdl.to_owned();
    };
    if close < open {
        return wsdl.to_owned();
    }
    let body_start = open + "<types>".len();
    let mut out = String::with_capacity(wsdl.len() + xsd.len() + 1024);
    out.push_str(&wsdl[..body_start]);
    out.push('\n');
    for line in schema.lines() {
        if !line.trim().is_empty() {
            out.push_str("        ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str("    ");
    out.push_str(&wsdl[close..]);
    out
}

/// Sets the `location` of every WSDL SOAP 1.1/1.2 `address` element, found
/// by namespace (not prefix) through roxmltree's attribute value ranges.
fn set_addresses(wsdl: &str, address: &str) -> String {
    let Ok(doc) = roxmltree::Document::parse(wsdl) else {
        return wsdl.to_owned();
    };
    let mut ranges: Vec<std::ops::Range<usize>> = doc
        .descendants()
        .filter(|n| {
            let tag = n.tag_name();
            tag.name() == "address" && matches!(tag.namespace(), Some(WSDL_SOAP12 | WSDL_SOAP11))
        })
        .filter_map(|n| n.attribute_node("location").map(|a| a.range_value()))
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut escaped = String::new();
    crate::xml::push_attr(&mut escaped, address);
    let mut out = String::with_capacity(wsdl.len() + address.len() * ranges.len());
    let mut at = 0;
    for range in ranges {
        if range.start < at || range.end > wsdl.len() {
            continue;
        }
        out.push_str(&wsdl[at..range.start]);
        out.push_str(&escaped);
        at = range.end;
    }
    out.push_str(&wsdl[at..]);
    out
}
