//! The CDC IIS SOAP web service's XML, read and written without any I/O.
//!
//! Immunization Information Systems receive HL7 v2 over the CDC "IIS SOAP
//! web service" (namespace `urn:cdc:iisb:2011`, operations
//! `submitSingleMessage` and `connectivityTest`). This crate is the whole
//! XML side of that contract, kept pure so it can be tested exhaustively and
//! reused by any HTTP front end (Lambda, local server, test harness):
//!
//! - [`parse_request`] turns request bytes into a [`Request`] or a precise
//!   [`RequestError`]. It is namespace-aware (prefixes never matter), accepts
//!   SOAP 1.2 as the CDC guide requires *and* SOAP 1.1 because real senders
//!   use both (the CDC 2011 WSDL itself names the SOAP 1.1 HTTP transport in
//!   its SOAP 1.2 binding), and records which version arrived so the answer
//!   uses the same one.
//! - [`submit_single_message_response`], [`connectivity_test_response`] and
//!   [`fault`] build the answers, shaped like NIST's reference envelopes.
//!   Every text is escaped; carriage returns are written as `&#13;` because
//!   XML parsers turn a literal CR into LF, and CR is HL7's segment separator.
//! - [`wsdl`] serves the CDC 2011 WSDL (vendored byte for byte in `spec/`)
//!   with its schema inlined and its address pointing at us.
//! - [`SoapVersion::content_type`] and [`FaultKind::http_status`] are the
//!   HTTP-level choices, documented where they are made.
//!
//! Nothing here panics on any input: hostile bytes, DOCTYPEs (entity bombs,
//! XXE) and truncated documents all come back as [`RequestError`]s.
//!
//! A server's whole SOAP path, minus HTTP and the HL7 processing:
//!
//! ```
//! use soap::{parse_request, Request, SoapVersion};
//!
//! fn answer(body: &[u8], content_type: &str) -> (u16, &'static str, String) {
//!     match parse_request(body) {
//!         Ok(Request::SubmitSingleMessage { version, hl7_message, .. }) => {
//!             let ack = hl7_message.replace('\n', "\r"); // stand-in for the IIS
//!             (200, version.content_type(), soap::submit_single_message_response(&ack, version))
//!         }
//!         Ok(Request::ConnectivityTest { version, echo_back }) => {
//!             (200, version.content_type(), soap::connectivity_test_response(&echo_back, version))
//!         }
//!         Err(e) => {
//!             let version = e
//!                 .version()
//!                 .or_else(|| SoapVersion::from_content_type(content_type))
//!                 .unwrap_or_default();
//!             let kind = e.fault_kind();
//!             (kind.http_status(version), version.content_type(), soap::fault(kind, e.message(), version))
//!         }
//!     }
//! }
//!
//! let (status, content_type, xml) = answer(b"<not-soap/>", "application/soap+xml");
//! assert_eq!((status, content_type), (400, "application/soap+xml; charset=utf-8"));
//! assert!(xml.contains("not a SOAP Envelope"));
//! ```

mod request;
mod response;
mod version;
mod wsdl;
mod xml;

pub use request::{parse_request, Request, RequestError, MAX_XML_NODES};
pub use response::{connectivity_test_response, fault, submit_single_message_response, FaultKind};
pub use version::SoapVersion;
pub use wsdl::{wsdl, WSDL_2011, WSDL_CONTENT_TYPE, XSD_2011};

/// Namespace of the CDC IIS 2011 service's elements (`submitSingleMessage`,
/// `return`, `SecurityFault`, ...).
pub const CDC_NAMESPACE: &str = "urn:cdc:iisb:2011";

/// SOAP 1.2 envelope namespace.
pub const SOAP12_NAMESPACE: &str = "http://www.w3.org/2003/05/soap-envelope";

/// SOAP 1.1 envelope namespace.
pub const SOAP11_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
