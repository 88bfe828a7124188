//! Reading a CDC IIS SOAP request: bytes in, [`Request`] or a precise
//! [`RequestError`] out.
//!
//! Why it is written this way:
//! - Elements are matched by (namespace URI, local name), never by prefix:
//!   senders use `soap:`, `soapenv:`, `S:`, `env:`, default namespaces and
//!   per-element redeclarations interchangeably, and all mean the same.
//! - Both SOAP 1.2 (what the CDC guide requires) and SOAP 1.1 envelopes are
//!   read, because both reach IIS's in practice; the version is kept so the
//!   answer is in the same one.
//! - DOCTYPEs are refused outright (roxmltree's default `allow_dtd: false`,
//!   kept on purpose): SOAP forbids them and they are how entity bombs and
//!   XXE arrive. The node count is capped at [`MAX_XML_NODES`] so a body of
//!   millions of tiny elements cannot make us allocate a tree for each.
//! - Tolerance is limited to what real senders do and is unambiguous:
//!   unqualified children of the operation element (hand-written envelopes
//!   often declare the CDC namespace with a prefix on the operation only),
//!   children in any order, whitespace around credentials. Anything
//!   ambiguous (two Bodies, two operations, a repeated `username`) is an
//!   error rather than a guess, so no intermediary can see one request while
//!   we process another.
//! - Every error names what was wrong and what was expected: the sender's
//!   developer reads it in a fault, often without access to our logs.

use crate::version::SoapVersion;
use crate::CDC_NAMESPACE;
use roxmltree::{Document, Node, ParsingOptions};
use std::fmt;

/// Most XML nodes (elements, text runs, comments, processing instructions;
/// attributes do not count) a request may hold. A CDC request has about a dozen; a WS-Security or WS-Addressing
/// header adds a few dozen. The HL7 message itself is one text node however
/// long it is, so this bounds memory without limiting message size (the HTTP
/// layer limits bytes).
pub const MAX_XML_NODES: u32 = 10_000;

const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";
const SOAP12_ROLE_NEXT: &str = "http://www.w3.org/2003/05/soap-envelope/role/next";
const SOAP12_ROLE_ULTIMATE: &str = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver";
const SOAP11_ACTOR_NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";
const WSA_NAMESPACES: [&str; 2] = [
    "http://www.w3.org/2005/08/addressing",
    "http://schemas.xmlsoap.org/ws/2004/08/addressing",
];
const WSA_HEADERS: [&str; 7] = [
    "To",
    "From",
    "ReplyTo",
    "FaultTo",
    "Action",
    "MessageID",
    "RelatesTo",
];

const SUBMIT: &str = "submitSingleMessage";
const CONNECTIVITY: &str = "connectivityTest";
const SUBMIT_CHILDREN: [&str; 4] = ["username", "password", "facilityID", "hl7Message"];

/// A CDC IIS SOAP request, as sent.
///
/// `Debug` prints the password as `"***"` so a request can be logged.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// `submitSingleMessage`: one HL7 v2 message with the sender's
    /// credentials.
    SubmitSingleMessage {
        /// Envelope version of the request; answer in the same one.
        version: SoapVersion,
        /// `username`, surrounding whitespace removed.
        username: String,
        /// `password`, surrounding whitespace removed (pretty-printed
        /// envelopes put newlines there; CDC credentials never start or end
        /// with whitespace).
        password: String,
        /// `facilityID`, surrounding whitespace removed; `None` when absent
        /// or `xsi:nil` (the schema makes it optional; whether an IIS
        /// requires it is the caller's policy). `Some("")` when empty.
        facility_id: Option<String>,
        /// `hl7Message` exactly as it decodes from XML: CDATA, `&#13;`,
        /// `&amp;` resolved, nothing trimmed. Literal CRs in the XML arrive
        /// as LF (XML line-end normalisation); restoring HL7 segment ends is
        /// the caller's job.
        hl7_message: String,
    },
    /// `connectivityTest`: a ping whose text is echoed back.
    ConnectivityTest {
        /// Envelope version of the request; answer in the same one.
        version: SoapVersion,
        /// `echoBack` exactly as decoded; empty when absent or `xsi:nil`
        /// (a connectivity test should succeed if at all possible).
        echo_back: String,
    },
}

impl Request {
    /// The SOAP version the request came in, and the answer must use.
    pub fn version(&self) -> SoapVersion {
        match self {
            Request::SubmitSingleMessage { version, .. }
            | Request::ConnectivityTest { version, .. } => *version,
        }
    }

    /// The operation's element name (`submitSingleMessage` or
    /// `connectivityTest`).
    pub fn operation(&self) -> &'static str {
        match self {
            Request::SubmitSingleMessage { .. } => SUBMIT,
            Request::ConnectivityTest { .. } => CONNECTIVITY,
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::SubmitSingleMessage {
                version,
                username,
                password: _,
                facility_id,
                hl7_message,
            } => f
                .debug_struct("SubmitSingleMessage")
                .field("version", version)
                .field("username", username)
                .field("password", &"***")
                .field("facility_id", facility_id)
                .field("hl7_message", hl7_message)
                .finish(),
            Request::ConnectivityTest { version, echo_back } => f
                .debug_struct("ConnectivityTest")
                .field("version", version)
                .field("echo_back", echo_back)
                .finish(),
        }
    }
}

/// Why a request body is not a usable CDC IIS SOAP request.
///
/// Each variant carries a `message` meant for the sender (safe to put in a
/// fault: it never quotes the password). Variants from [`NoBody`] on know the
/// SOAP version; earlier ones do not, and the caller falls back on
/// [`SoapVersion::from_content_type`] or the default, SOAP 1.2.
///
/// [`NoBody`]: RequestError::NoBody
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The bytes are not text in an encoding we read (UTF-8, UTF-16 with a
    /// BOM, or declared ISO-8859-1).
    Encoding {
        /// What was wrong, with the byte offset.
        message: String,
    },
    /// Empty, truncated or otherwise not well-formed XML (includes more than
    /// [`MAX_XML_NODES`] nodes).
    NotXml {
        /// roxmltree's diagnosis with line and column.
        message: String,
    },
    /// The document has a DOCTYPE (SOAP forbids it; it is how entity
    /// expansion and external-entity attacks arrive).
    Doctype {
        /// Explanation.
        message: String,
    },
    /// Well-formed XML whose root is not a SOAP 1.1 or 1.2 `Envelope`.
    NotSoapEnvelope {
        /// What the root was and what was expected.
        message: String,
    },
    /// The Envelope has no `Body` in its own namespace.
    NoBody {
        /// Envelope version.
        version: SoapVersion,
        /// Explanation.
        message: String,
    },
    /// The `Body` holds no element.
    EmptyBody {
        /// Envelope version.
        version: SoapVersion,
        /// Explanation.
        message: String,
    },
    /// The Body's element is not one of our operations: answer with an
    /// `UnsupportedOperationFault` naming it (see [`RequestError::fault_kind`]).
    UnknownOperation {
        /// Envelope version.
        version: SoapVersion,
        /// Namespace URI of the element ("" when none).
        namespace: String,
        /// Local name of the element.
        name: String,
        /// Explanation, with a hint when the namespace or case is off.
        message: String,
    },
    /// A required child of the operation element is absent or `xsi:nil`.
    MissingElement {
        /// Envelope version.
        version: SoapVersion,
        /// `submitSingleMessage`.
        operation: &'static str,
        /// `username`, `password` or `hl7Message`.
        element: &'static str,
        /// Explanation.
        message: String,
    },
    /// A SOAP header block addressed to us has `mustUnderstand` set and we
    /// do not implement it.
    MustUnderstand {
        /// Envelope version.
        version: SoapVersion,
        /// Namespace URI of the header block.
        namespace: String,
        /// Local name of the header block.
        name: String,
        /// Explanation.
        message: String,
    },
    /// Anything else that makes the envelope unusable or ambiguous: a
    /// repeated Body or child, an unexpected element, element content where
    /// text belongs.
    Invalid {
        /// Envelope version.
        version: SoapVersion,
        /// Explanation.
        message: String,
    },
}

impl RequestError {
    /// The human explanation, suitable for a fault's Reason.
    pub fn message(&self) -> &str {
        match self {
            RequestError::Encoding { message }
            | RequestError::NotXml { message }
            | RequestError::Doctype { message }
            | RequestError::NotSoapEnvelope { message }
            | RequestError::NoBody { message, .. }
            | RequestError::EmptyBody { message, .. }
            | RequestError::UnknownOperation { message, .. }
            | RequestError::MissingElement { message, .. }
            | RequestError::MustUnderstand { message, .. }
            | RequestError::Invalid { message, .. } => message,
        }
    }

    /// The SOAP version of the envelope, when parsing got that far.
    pub fn version(&self) -> Option<SoapVersion> {
        match self {
            RequestError::Encoding { .. }
            | RequestError::NotXml { .. }
            | RequestError::Doctype { .. }
            | RequestError::NotSoapEnvelope { .. } => None,
            RequestError::NoBody { version, .. }
            | RequestError::EmptyBody { version, .. }
            | RequestError::UnknownOperation { version, .. }
            | RequestError::MissingElement { version, .. }
            | RequestError::MustUnderstand { version, .. }
            | RequestError::Invalid { version, .. } => Some(*version),
        }
    }

    /// The fault to answer with: `UnsupportedOperation` for an unknown
    /// operation (the CDC fault for it), `MustUnderstand` for an
    /// unimplemented mandatory header, a plain `Sender` fault otherwise.
    /// All are the sender's problem (see [`crate::FaultKind::http_status`]).
    pub fn fault_kind(&self) -> crate::FaultKind {
        match self {
            RequestError::UnknownOperation {
                namespace, name, ..
            } => crate::FaultKind::UnsupportedOperation {
                operation: if namespace == CDC_NAMESPACE {
                    name.clone()
                } else {
                    clark(namespace, name)
                },
            },
            RequestError::MustUnderstand {
                namespace, name, ..
            } => crate::FaultKind::MustUnderstand {
                namespace: namespace.clone(),
                name: name.clone(),
            },
            _ => crate::FaultKind::Sender,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for RequestError {}

/// `{namespace}local`, or just `local` without a namespace.
fn clark(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{{{namespace}}}{name}")
    }
}

fn clark_of(node: Node<'_, '_>) -> String {
    let tag = node.tag_name();
    clark(tag.namespace().unwrap_or(""), tag.name())
}

fn has_name(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    let tag = node.tag_name();
    tag.name() == name && tag.namespace().unwrap_or("") == namespace
}

/// Parses a CDC IIS SOAP request body (see the module docs for what is
/// accepted and why).
pub fn parse_request(body: &[u8]) -> Result<Request, RequestError> {
    let decoded = crate::xml::decode(body).map_err(|message| RequestError::Encoding { message })?;
    // An XML declaration must be the very first thing, but senders prepend
    // newlines (templates, string concatenation); drop leading whitespace and
    // any BOM that survived decoding.
    let text = decoded
        .as_str()
        .trim_start_matches(['\u{FEFF}', ' ', '\t', '\r', '\n']);
    if text.trim_end().is_empty() {
        return Err(RequestError::NotXml {
            message: if body.is_empty() {
                "request body is empty; expected a SOAP Envelope".to_owned()
            } else {
                "request body holds only whitespace; expected a SOAP Envelope".to_owned()
            },
        });
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(xml_error)?;
    let envelope = doc.root_element();
    let version = envelope_version(envelope)?;
    let env_ns = version.namespace();

    let mut header = None;
    let mut body = None;
    let mut stray_body = None;
    for child in envelope.children().filter(Node::is_element) {
        let tag = child.tag_name();
        if tag.namespace() != Some(env_ns) {
            // SOAP 1.1 allows trailing elements of other namespaces; a Body
            // of the other SOAP version is remembered for a better message.
            if tag.name() == "Body" {
                stray_body.get_or_insert(child);
            }
            continue;
        }
        match tag.name() {
            "Header" => {
                if header.is_some() {
                    return Err(invalid(version, "SOAP Envelope has more than one Header"));
                }
                if body.is_some() {
                    return Err(invalid(version, "SOAP Header must come before the Body"));
                }
                header = Some(child);
            }
            "Body" => {
                if body.is_some() {
                    return Err(invalid(version, "SOAP Envelope has more than one Body"));
                }
                body = Some(child);
            }
            other => {
                return Err(invalid(
                    version,
                    format!(
                        "unexpected element {other} in the SOAP Envelope (namespace {env_ns}); \
                         only Header and Body belong there"
                    ),
                ))
            }
        }
    }

    if let Some(header) = header {
        check_header(header, version)?;
    }

    let Some(body) = body else {
        let mut message = format!("{} Envelope has no Body element", version.label());
        if let Some(stray) = stray_body {
            message.push_str(&format!(
                " in namespace {env_ns} (found a Body in namespace \"{}\"; Header and Body must \
                 be in the Envelope's namespace)",
                stray.tag_name().namespace().unwrap_or("")
            ));
        }
        return Err(RequestError::NoBody { version, message });
    };

    let operations: Vec<Node<'_, '_>> = body.children().filter(Node::is_element).collect();
    let operation = match operations.as_slice() {
        [] => {
            let has_text = body
                .children()
                .any(|n| n.is_text() && n.text().is_some_and(|t| !t.trim().is_empty()));
            return Err(RequestError::EmptyBody {
                version,
                message: format!(
                    "SOAP Body {}; expected one {SUBMIT} or {CONNECTIVITY} element in namespace \
                     {CDC_NAMESPACE}",
                    if has_text {
                        "holds text but no element"
                    } else {
                        "is empty"
                    }
                ),
            });
        }
        [one] => *one,
        many => {
            let names: Vec<String> = many.iter().map(|n| clark_of(*n)).collect();
            return Err(invalid(
                version,
                format!(
                    "SOAP Body holds {} elements ({}); exactly one operation element is expected",
                    many.len(),
                    names.join(", ")
                ),
            ));
        }
    };

    if has_name(operation, CDC_NAMESPACE, SUBMIT) {
        parse_submit(operation, version)
    } else if has_name(operation, CDC_NAMESPACE, CONNECTIVITY) {
        parse_connectivity(operation, version)
    } else {
        Err(unknown_operation(operation, version))
    }
}

fn xml_error(e: roxmltree::Error) -> RequestError {
    match e {
        roxmltree::Error::DtdDetected => RequestError::Doctype {
            message: "request contains a DOCTYPE declaration, which SOAP forbids (and which can \
                      carry entity-expansion or external-entity attacks); remove it"
                .to_owned(),
        },
        roxmltree::Error::NodesLimitReached => RequestError::NotXml {
            message: format!(
                "request has more than {MAX_XML_NODES} XML nodes; a CDC SOAP request needs a few \
                 dozen"
            ),
        },
        other => RequestError::NotXml {
            message: format!("request is not well-formed XML: {other}"),
        },
    }
}

fn invalid(version: SoapVersion, message: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        version,
        message: message.into(),
    }
}

fn envelope_version(root: Node<'_, '_>) -> Result<SoapVersion, RequestError> {
    let tag = root.tag_name();
    let namespace = tag.namespace().unwrap_or("");
    if tag.name() != "Envelope" {
        let hint = if namespace == CDC_NAMESPACE {
            format!(
                " (the {} element must be wrapped in a SOAP 1.2 Envelope and Body)",
                tag.name()
            )
        } else {
            String::new()
        };
        return Err(RequestError::NotSoapEnvelope {
            message: format!(
                "root element is {}, not a SOAP Envelope{hint}",
                clark(namespace, tag.name())
            ),
        });
    }
    SoapVersion::from_namespace(namespace).ok_or_else(|| RequestError::NotSoapEnvelope {
        message: if namespace.is_empty() {
            format!(
                "Envelope element has no namespace; expected {} (SOAP 1.2) or {} (SOAP 1.1)",
                crate::SOAP12_NAMESPACE,
                crate::SOAP11_NAMESPACE
            )
        } else {
            format!(
                "Envelope is in namespace \"{namespace}\", which is not a SOAP envelope version we \
                 support; expected {} (SOAP 1.2) or {} (SOAP 1.1)",
                crate::SOAP12_NAMESPACE,
                crate::SOAP11_NAMESPACE
            )
        },
    })
}

/// SOAP processing rules for headers: a block addressed to us (no role/actor,
/// or `next`, or SOAP 1.2's `ultimateReceiver`) with `mustUnderstand` true
/// must be understood or the message refused. We understand WS-Addressing's
/// message headers (WCF and Metro clients mark `Action`/`To` mandatory); the
/// answer travels back on the same HTTP exchange, which is what anonymous
/// addressing means. Everything else (WS-Security in particular: credentials
/// belong in the body for this service) is refused, as the spec requires.
fn check_header(header: Node<'_, '_>, version: SoapVersion) -> Result<(), RequestError> {
    let env_ns = version.namespace();
    for block in header.children().filter(Node::is_element) {
        let must = block
            .attribute((env_ns, "mustUnderstand"))
            .map(str::trim)
            .is_some_and(|v| v == "1" || v == "true");
        if !must {
            continue;
        }
        let role = match version {
            SoapVersion::Soap12 => block.attribute((env_ns, "role")),
            SoapVersion::Soap11 => block.attribute((env_ns, "actor")),
        }
        .map(str::trim)
        .unwrap_or("");
        let for_us = match version {
            SoapVersion::Soap12 => {
                role.is_empty() || role == SOAP12_ROLE_NEXT || role == SOAP12_ROLE_ULTIMATE
            }
            SoapVersion::Soap11 => role.is_empty() || role == SOAP11_ACTOR_NEXT,
        };
        if !for_us {
            continue;
        }
        let tag = block.tag_name();
        let namespace = tag.namespace().unwrap_or("");
        if WSA_NAMESPACES.contains(&namespace) && WSA_HEADERS.contains(&tag.name()) {
            continue;
        }
        return Err(RequestError::MustUnderstand {
            version,
            namespace: namespace.to_owned(),
            name: tag.name().to_owned(),
            message: format!(
                "SOAP header {} is marked mustUnderstand but this service does not implement it; \
                 remove it or drop mustUnderstand (credentials go in the {SUBMIT} body)",
                clark(namespace, tag.name())
            ),
        });
    }
    Ok(())
}

fn unknown_operation(operation: Node<'_, '_>, version: SoapVersion) -> RequestError {
    let tag = operation.tag_name();
    let namespace = tag.namespace().unwrap_or("");
    let name = tag.name();
    let ours = [SUBMIT, CONNECTIVITY];
    let hint = if ours.contains(&name) {
        format!(
            "; {name} must be in namespace {CDC_NAMESPACE}, not {}",
            if namespace.is_empty() {
                "without a namespace".to_owned()
            } else {
                format!("\"{namespace}\"")
            }
        )
    } else if let Some(right) = ours.iter().find(|o| o.eq_ignore_ascii_case(name)) {
        format!("; element names are case-sensitive: did you mean {right}?")
    } else if namespace == "urn:cdc:iisb:2014" {
        format!(
            "; this IIS implements the CDC 2011 WSDL ({CDC_NAMESPACE}: {SUBMIT}, {CONNECTIVITY}), \
             not the 2014 IZ Gateway flavour"
        )
    } else {
        String::new()
    };
    RequestError::UnknownOperation {
        version,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        message: format!(
            "unsupported operation {}; this service supports {SUBMIT} and {CONNECTIVITY} in \
             namespace {CDC_NAMESPACE}{hint}",
            clark(namespace, name)
        ),
    }
}

/// A child of an operation element is ours when it is in the CDC namespace
/// (the schema is `elementFormDefault="qualified"`) or, tolerated, in none.
fn child_name<'a>(child: Node<'a, '_>) -> Option<&'a str> {
    let tag = child.tag_name();
    match tag.namespace() {
        None | Some(CDC_NAMESPACE) => Some(tag.name()),
        Some(_) => None,
    }
}

/// The operation's children by expected name, refusing repeats and strangers.
fn collect_children<'a, 'i, const N: usize>(
    operation: Node<'a, 'i>,
    op_name: &str,
    expected: [&'static str; N],
    version: SoapVersion,
) -> Result<[Option<Node<'a, 'i>>; N], RequestError> {
    let mut found: [Option<Node<'a, 'i>>; N] = [None; N];
    for child in operation.children().filter(Node::is_element) {
        let index = child_name(child).and_then(|name| expected.iter().position(|e| *e == name));
        let Some(index) = index else {
            let list = expected.join(", ");
            let name = child.tag_name().name();
            let hint = match expected.iter().find(|e| e.eq_ignore_ascii_case(name)) {
                Some(right) if child_name(child).is_some() => {
                    format!(" (element names are case-sensitive: did you mean {right}?)")
                }
                _ if expected.contains(&name) => {
                    format!(" (it must be in namespace {CDC_NAMESPACE} or unqualified)")
                }
                _ => String::new(),
            };
            return Err(invalid(
                version,
                format!(
                    "unexpected element {} in {op_name}; expected {list}{hint}",
                    clark_of(child)
                ),
            ));
        };
        if found[index].is_some() {
            return Err(invalid(
                version,
                format!("{op_name} has more than one {} element", expected[index]),
            ));
        }
        found[index] = Some(child);
    }
    Ok(found)
}

/// The text of a simple element: `Ok(None)` when `xsi:nil`, the concatenation
/// of its text and CDATA otherwise (comments skipped). Child elements are an
/// error: these are `xsd:string`s.
fn text_of(element: Node<'_, '_>, version: SoapVersion) -> Result<Option<String>, RequestError> {
    let nil = element
        .attribute((XSI_NAMESPACE, "nil"))
        .map(str::trim)
        .is_some_and(|v| v == "true" || v == "1");
    if let Some(child) = element.children().find(Node::is_element) {
        return Err(invalid(
            version,
            format!(
                "{} must hold text only, found element {}",
                element.tag_name().name(),
                clark_of(child)
            ),
        ));
    }
    let mut text = String::new();
    for piece in element.children().filter(Node::is_text) {
        text.push_str(piece.text().unwrap_or(""));
    }
    if nil {
        if text.trim().is_empty() {
            return Ok(None);
        }
        return Err(invalid(
            version,
            format!(
                "{} is marked xsi:nil but has content",
                element.tag_name().name()
            ),
        ));
    }
    Ok(Some(text))
}

fn required(
    node: Option<Node<'_, '_>>,
    element: &'static str,
    version: SoapVersion,
) -> Result<String, RequestError> {
    let missing = |why: &str| RequestError::MissingElement {
        version,
        operation: SUBMIT,
        element,
        message: format!("{SUBMIT} {why}; it is required"),
    };
    match node {
        None => Err(missing(&format!("has no {element} element"))),
        Some(node) => {
            text_of(node, version)?.ok_or_else(|| missing(&format!("{element} is xsi:nil")))
        }
    }
}

fn parse_submit(operation: Node<'_, '_>, version: SoapVersion) -> Result<Request, RequestError> {
    let [username, password, facility, hl7] =
        collect_children(operation, SUBMIT, SUBMIT_CHILDREN, version)?;
    // Checked in schema order, so the first error is the first element.
    let username = required(username, "username", version)?.trim().to_owned();
    let password = required(password, "password", version)?.trim().to_owned();
    let facility_id = match facility {
        Some(node) => text_of(node, version)?.map(|t| t.trim().to_owned()),
        None => None,
    };
    let hl7_message = required(hl7, "hl7Message", version)?;
    Ok(Request::SubmitSingleMessage {
        version,
        username,
        password,
        facility_id,
        hl7_message,
    })
}

fn parse_connectivity(
    operation: Node<'_, '_>,
    version: SoapVersion,
) -> Result<Request, RequestError> {
    let [echo] = collect_children(operation, CONNECTIVITY, ["echoBack"], version)?;
    let echo_back = match echo {
        Some(node) => text_of(node, version)?.unwrap_or_default(),
        None => String::new(),
    };
    Ok(Request::ConnectivityTest { version, echo_back })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_password() {
        let r = Request::SubmitSingleMessage {
            version: SoapVersion::Soap12,
            username: "u".into(),
            password: "Spartans300!".into(),
            facility_id: None,
            hl7_message: "MSH".into(),
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("Spartans300!"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn clark_names() {
        assert_eq!(clark("", "a"), "a");
        assert_eq!(clark("urn:x", "a"), "{urn:x}a");
    }
}
