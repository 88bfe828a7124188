//! The WSDL we serve: the vendored CDC 2011 files are the reference copies,
//! and what `wsdl()` returns is well-formed, self-contained and addressed to
//! us.
#![allow(clippy::unwrap_used)]

mod support;

use soap::{wsdl, WSDL_2011, XSD_2011};

const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const SOAP12_BINDING_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap12/";
const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

#[test]
fn vendored_copies_equal_the_reference_files() {
    let dir = support::reference_dir();
    for (name, vendored) in [
        ("cdc-iis-2011.wsdl", WSDL_2011),
        ("cdc-iis-2011.xsd", XSD_2011),
    ] {
        let path = dir.join(name);
        if !path.exists() {
            eprintln!("skipped: {} is not present", path.display());
            continue;
        }
        let reference = std::fs::read(&path).unwrap();
        assert!(
            reference == vendored.as_bytes(),
            "spec/{name} differs from {}; re-copy it",
            path.display()
        );
    }
}

#[test]
fn address_is_replaced_and_escaped() {
    let address = "https://iis.example.org/soap?x=1&y=\"2\"";
    let xml = wsdl(address);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let addresses: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "address")
        .collect();
    assert_eq!(addresses.len(), 1);
    assert!(addresses[0].has_tag_name((SOAP12_BINDING_NS, "address")));
    assert_eq!(addresses[0].attribute("location"), Some(address));
    assert!(!xml.contains("localhost/IISService2011"));
}

#[test]
fn schema_is_inlined() {
    let xml = wsdl("https://iis.example.org/soap");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let types = doc
        .descendants()
        .find(|n| n.has_tag_name((WSDL_NS, "types")))
        .unwrap();
    let schemas: Vec<_> = types.children().filter(|n| n.is_element()).collect();
    assert_eq!(schemas.len(), 1);
    let schema = schemas[0];
    assert!(schema.has_tag_name((XSD_NS, "schema")));
    assert_eq!(schema.attribute("targetNamespace"), Some(support::CDC));
    assert!(!doc
        .descendants()
        .any(|n| n.has_tag_name((XSD_NS, "import"))));
    // The elements the WSDL's messages refer to are all defined in it.
    let defined: Vec<&str> = schema
        .children()
        .filter(|n| n.has_tag_name((XSD_NS, "element")))
        .filter_map(|n| n.attribute("name"))
        .collect();
    for part in doc
        .descendants()
        .filter(|n| n.has_tag_name((WSDL_NS, "part")))
    {
        let element = part.attribute("element").unwrap();
        let (prefix, local) = element.split_once(':').unwrap();
        assert_eq!(part.lookup_namespace_uri(Some(prefix)), Some(support::CDC));
        assert!(
            defined.contains(&local),
            "{local} not defined in the inlined schema"
        );
    }
    // Everything else is untouched.
    let original = roxmltree::Document::parse(WSDL_2011).unwrap();
    let count = |d: &roxmltree::Document<'_>| {
        d.descendants()
            .filter(|n| n.is_element() && n.tag_name().namespace() != Some(XSD_NS))
            .count()
    };
    assert_eq!(count(&doc), count(&original));
}
