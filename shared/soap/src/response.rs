//! Writing the CDC IIS SOAP answers: responses and faults, in the SOAP
//! version the request used.
//!
//! The shapes follow NIST's reference envelopes for the CDC 2011 service:
//! the operation's response element in `urn:cdc:iisb:2011` holding `return`,
//! and faults whose Detail holds the CDC fault element (`SecurityFault`,
//! `MessageTooLargeFault`, `UnsupportedOperationFault`, or `fault` for the
//! WSDL's UnknownFault) with the `Code`/`Reason`/`Detail` children the 2011
//! XSD defines. Envelope elements use the `soap` prefix (SOAP 1.1 fault
//! children must be unqualified, which a default namespace would break); the
//! CDC elements use a default namespace exactly like NIST's samples.
//!
//! Output is compact (no indentation), UTF-8, with an XML declaration. All
//! text goes through one escaper that writes CR as `&#13;` so HL7 segment
//! separators survive the receiving parser's line-end normalisation.

use crate::version::SoapVersion;
use crate::xml::{push_attr, push_text};
use crate::CDC_NAMESPACE;

/// The faults this service sends.
///
/// The four CDC faults carry the CDC detail element; `MustUnderstand` is
/// SOAP's own fault for unimplemented mandatory headers; `Sender` and
/// `Receiver` are plain SOAP faults (no CDC detail) for malformed requests
/// and for our own failures respectively.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// `SecurityFault`: bad or missing credentials, facility not allowed.
    Security,
    /// `MessageTooLargeFault`: the HL7 message (or request) exceeds our limit.
    MessageTooLarge {
        /// Size received, in bytes.
        size: u64,
        /// Largest size accepted, in bytes.
        limit: u64,
    },
    /// `UnsupportedOperationFault`: the Body's element is not an operation
    /// we implement.
    UnsupportedOperation {
        /// What was asked for, as the client would recognise it
        /// (`{namespace}name` when not in the CDC namespace).
        operation: String,
    },
    /// The WSDL's `UnknownFault` (element `fault`): something failed on our
    /// side. Never use it for a problem with the input.
    Unknown,
    /// SOAP `MustUnderstand`: a mandatory header block we do not implement.
    MustUnderstand {
        /// Namespace URI of the header block ("" when none).
        namespace: String,
        /// Local name of the header block.
        name: String,
    },
    /// Plain SOAP Sender (1.1: Client) fault: the request is malformed.
    Sender,
    /// Plain SOAP Receiver (1.1: Server) fault: we failed, no CDC detail.
    Receiver,
}

impl FaultKind {
    /// True when the fault blames the request (SOAP `Sender`/`Client`, or
    /// `MustUnderstand`); false for `Unknown` and `Receiver`, which blame us.
    /// Use this, not the HTTP status, to count client versus server errors:
    /// under SOAP 1.1 both travel as 500.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, FaultKind::Unknown | FaultKind::Receiver)
    }

    /// The HTTP status to send this fault with.
    ///
    /// **SOAP 1.2** (what the CDC guide mandates): the SOAP 1.2 HTTP binding
    /// (Part 2, table 20) gives 400 for `env:Sender` and 500 otherwise. We
    /// follow it for Sender and Receiver, and send `MustUnderstand` (which
    /// the table puts at 500) as 400 too, so every input problem is a 4xx and
    /// a 500 always means *we* failed (`Unknown`, `Receiver`). 400 rather
    /// than 401/403/413 for Security and MessageTooLarge: SOAP 1.2 stacks
    /// (Metro/JAX-WS, CXF, WCF) read a fault body from any 4xx/5xx, while
    /// proxies and load balancers give 401/413 special treatment (challenge
    /// headers, replaced bodies) that would hide the CDC fault.
    ///
    /// **SOAP 1.1**: every fault is 500. SOAP 1.1 §6.2 and WS-I Basic
    /// Profile R1126 require it, and the clients that still speak 1.1 only
    /// look for a fault in a 500: JAX-WS accepts 200/202/500 for SOAP 1.1 and
    /// raises a bare transport error otherwise, Axis 1 parses faults only
    /// from 5xx, .NET `SoapHttpClientProtocol` turns a 500 into a
    /// `SoapException`. Sending 400 would make the sender lose the reason
    /// ("invalid username or password") exactly when it needs it. This is the
    /// one place a 500 can answer an input problem; monitoring should use
    /// [`FaultKind::is_client_error`] instead of the status.
    pub fn http_status(&self, version: SoapVersion) -> u16 {
        match version {
            SoapVersion::Soap11 => 500,
            SoapVersion::Soap12 if self.is_client_error() => 400,
            SoapVersion::Soap12 => 500,
        }
    }

    /// Local name of the CDC detail element, for the four CDC faults.
    pub fn cdc_element(&self) -> Option<&'static str> {
        match self {
            FaultKind::Security => Some("SecurityFault"),
            FaultKind::MessageTooLarge { .. } => Some("MessageTooLargeFault"),
            FaultKind::UnsupportedOperation { .. } => Some("UnsupportedOperationFault"),
            FaultKind::Unknown => Some("fault"),
            FaultKind::MustUnderstand { .. } | FaultKind::Sender | FaultKind::Receiver => None,
        }
    }

    /// The integer in the CDC detail's `Code`. The CDC guide leaves the
    /// values to each IIS; ours are stable: 10 security (as in NIST's
    /// sample), 20 too large, 30 unsupported operation, 99 unknown.
    pub fn cdc_code(&self) -> Option<u32> {
        match self {
            FaultKind::Security => Some(10),
            FaultKind::MessageTooLarge { .. } => Some(20),
            FaultKind::UnsupportedOperation { .. } => Some(30),
            FaultKind::Unknown => Some(99),
            FaultKind::MustUnderstand { .. } | FaultKind::Sender | FaultKind::Receiver => None,
        }
    }

    /// The CDC detail's `Reason`: the fault's category, as in NIST's samples.
    fn cdc_reason(&self) -> &'static str {
        match self {
            FaultKind::Security => "Security",
            FaultKind::MessageTooLarge { .. } => "MessageTooLarge",
            FaultKind::UnsupportedOperation { .. } => "UnsupportedOperation",
            _ => "Unknown",
        }
    }

    /// SOAP fault code local name (prefixed with the envelope's `soap:`).
    fn soap_code(&self, version: SoapVersion) -> &'static str {
        match (self, version) {
            (FaultKind::MustUnderstand { .. }, _) => "MustUnderstand",
            (k, SoapVersion::Soap12) if k.is_client_error() => "Sender",
            (_, SoapVersion::Soap12) => "Receiver",
            (k, SoapVersion::Soap11) if k.is_client_error() => "Client",
            (_, SoapVersion::Soap11) => "Server",
        }
    }

    /// Reason used when the caller's message is blank.
    fn default_reason(&self) -> &'static str {
        match self {
            FaultKind::Security => "Security fault",
            FaultKind::MessageTooLarge { .. } => "Message too large",
            FaultKind::UnsupportedOperation { .. } => "Unsupported operation",
            FaultKind::Unknown | FaultKind::Receiver => "Internal error",
            FaultKind::MustUnderstand { .. } => "Mandatory SOAP header not understood",
            FaultKind::Sender => "Malformed request",
        }
    }

    /// The CDC detail's `Detail` text.
    fn cdc_detail(&self, reason: &str) -> String {
        match self {
            FaultKind::MessageTooLarge { size, limit } => {
                format!("{size} bytes received; the maximum is {limit} bytes")
            }
            FaultKind::UnsupportedOperation { operation } => format!(
                "operation {operation} is not supported; the supported operations are \
                 submitSingleMessage and connectivityTest in namespace {CDC_NAMESPACE}"
            ),
            _ => reason.to_owned(),
        }
    }
}

fn open_envelope(out: &mut String, version: SoapVersion) {
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"");
    out.push_str(version.namespace());
    out.push_str("\">");
}

const CLOSE_ENVELOPE: &str = "</soap:Body></soap:Envelope>";

fn operation_response(element: &str, text: &str, version: SoapVersion) -> String {
    let mut out = String::with_capacity(text.len() + 320);
    open_envelope(&mut out, version);
    out.push_str("<soap:Body><");
    out.push_str(element);
    out.push_str(" xmlns=\"");
    out.push_str(CDC_NAMESPACE);
    out.push_str("\"><return>");
    push_text(&mut out, text);
    out.push_str("</return></");
    out.push_str(element);
    out.push('>');
    out.push_str(CLOSE_ENVELOPE);
    out
}

/// `submitSingleMessageResponse` holding the HL7 answer in `return`.
///
/// The answer is written byte for byte (escaped), CRs as `&#13;`, so the
/// sender's parser hands back exactly `hl7_answer`.
pub fn submit_single_message_response(hl7_answer: &str, version: SoapVersion) -> String {
    operation_response("submitSingleMessageResponse", hl7_answer, version)
}

/// `connectivityTestResponse` holding `echo` in `return`. What to echo (the
/// request's `echoBack` as is, or decorated like NIST's "You sent: ...") is
/// the caller's choice.
pub fn connectivity_test_response(echo: &str, version: SoapVersion) -> String {
    operation_response("connectivityTestResponse", echo, version)
}

/// A SOAP fault of `kind` in `version`, `message` as its Reason
/// (`faultstring` in 1.1) and, for the CDC faults, in the CDC detail.
///
/// Send it with [`FaultKind::http_status`] and [`SoapVersion::content_type`].
/// `message` reaches the sender: say what to fix, never echo a password.
pub fn fault(kind: FaultKind, message: &str, version: SoapVersion) -> String {
    let reason = if message.trim().is_empty() {
        kind.default_reason()
    } else {
        message
    };
    let mut out = String::with_capacity(reason.len() * 2 + 640);
    open_envelope(&mut out, version);
    if let (FaultKind::MustUnderstand { namespace, name }, SoapVersion::Soap12) = (&kind, version) {
        // SOAP 1.2 §5.4.8: name the header blocks that were not understood.
        out.push_str("<soap:Header><soap:NotUnderstood qname=\"");
        if namespace.is_empty() {
            push_attr(&mut out, name);
            out.push('"');
        } else {
            out.push_str("h:");
            push_attr(&mut out, name);
            out.push_str("\" xmlns:h=\"");
            push_attr(&mut out, namespace);
            out.push('"');
        }
        out.push_str("/></soap:Header>");
    }
    out.push_str("<soap:Body><soap:Fault>");
    let code = kind.soap_code(version);
    match version {
        SoapVersion::Soap12 => {
            out.push_str("<soap:Code><soap:Value>soap:");
            out.push_str(code);
            out.push_str("</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang=\"en\">");
            push_text(&mut out, reason);
            out.push_str("</soap:Text></soap:Reason>");
        }
        SoapVersion::Soap11 => {
            out.push_str("<faultcode>soap:");
            out.push_str(code);
            out.push_str("</faultcode><faultstring>");
            push_text(&mut out, reason);
            out.push_str("</faultstring>");
        }
    }
    if let (Some(element), Some(cdc_code)) = (kind.cdc_element(), kind.cdc_code()) {
        out.push_str(match version {
            SoapVersion::Soap12 => "<soap:Detail>",
            SoapVersion::Soap11 => "<detail>",
        });
        out.push('<');
        out.push_str(element);
        out.push_str(" xmlns=\"");
        out.push_str(CDC_NAMESPACE);
        out.push_str("\"><Code>");
        out.push_str(&cdc_code.to_string());
        out.push_str("</Code><Reason>");
        out.push_str(kind.cdc_reason());
        out.push_str("</Reason><Detail>");
        push_text(&mut out, &kind.cdc_detail(reason));
        out.push_str("</Detail></");
        out.push_str(element);
        out.push('>');
        out.push_str(match version {
            SoapVersion::Soap12 => "</soap:Detail>",
            SoapVersion::Soap11 => "</detail>",
        });
    }
    out.push_str("</soap:Fault>");
    out.push_str(CLOSE_ENVELOPE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        use SoapVersion::*;
        let client = [
            FaultKind::Security,
            FaultKind::MessageTooLarge { size: 2, limit: 1 },
            FaultKind::UnsupportedOperation {
                operation: "x".into(),
            },
            FaultKind::MustUnderstand {
                namespace: "urn:x".into(),
                name: "y".into(),
            },
            FaultKind::Sender,
        ];
        for k in &client {
            assert!(k.is_client_error());
            assert_eq!(k.http_status(Soap12), 400, "{k:?}");
            assert_eq!(k.http_status(Soap11), 500, "{k:?}");
        }
        for k in [FaultKind::Unknown, FaultKind::Receiver] {
            assert!(!k.is_client_error());
            assert_eq!(k.http_status(Soap12), 500);
            assert_eq!(k.http_status(Soap11), 500);
        }
    }

    #[test]
    fn blank_message_gets_a_default_reason() {
        let xml = fault(FaultKind::Sender, "  ", SoapVersion::Soap12);
        assert!(xml.contains(">Malformed request<"), "{xml}");
    }

    #[test]
    fn response_is_compact_and_escaped() {
        let xml = submit_single_message_response("MSH|^~\\&|A\rPID|", SoapVersion::Soap12);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope \
             xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body>\
             <submitSingleMessageResponse xmlns=\"urn:cdc:iisb:2011\"><return>\
             MSH|^~\\&amp;|A&#13;PID|</return></submitSingleMessageResponse></soap:Body>\
             </soap:Envelope>"
        );
    }
}
