//! SOAP 1.1 / 1.2: the envelope namespace and the HTTP content type of each.
//!
//! The CDC guide specifies SOAP 1.2, but senders built on older stacks post
//! SOAP 1.1. The server answers in the version it was spoken to, so the
//! version travels with every parsed request and every error that got far
//! enough to see the envelope.

use crate::{SOAP11_NAMESPACE, SOAP12_NAMESPACE};

/// Which SOAP envelope a request used (and the answer must use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SoapVersion {
    /// `http://schemas.xmlsoap.org/soap/envelope/`, HTTP content type `text/xml`.
    Soap11,
    /// `http://www.w3.org/2003/05/soap-envelope`, HTTP content type
    /// `application/soap+xml`. What the CDC guide mandates; the default when a
    /// request is too broken to tell.
    #[default]
    Soap12,
}

impl SoapVersion {
    /// The envelope namespace URI of this version.
    pub const fn namespace(self) -> &'static str {
        match self {
            SoapVersion::Soap11 => SOAP11_NAMESPACE,
            SoapVersion::Soap12 => SOAP12_NAMESPACE,
        }
    }

    /// The version whose envelope namespace is `uri`, if any.
    pub fn from_namespace(uri: &str) -> Option<SoapVersion> {
        match uri {
            SOAP12_NAMESPACE => Some(SoapVersion::Soap12),
            SOAP11_NAMESPACE => Some(SoapVersion::Soap11),
            _ => None,
        }
    }

    /// `Content-Type` for an answer (response or fault) in this version.
    ///
    /// SOAP 1.2's HTTP binding registers `application/soap+xml`; SOAP 1.1
    /// uses `text/xml`. Both always carry `charset=utf-8` because every
    /// builder here produces UTF-8, and .NET/Java clients otherwise guess.
    /// No `action` parameter: it is optional and the CDC 2011 WSDL's actions
    /// are informative only.
    pub const fn content_type(self) -> &'static str {
        match self {
            SoapVersion::Soap11 => "text/xml; charset=utf-8",
            SoapVersion::Soap12 => "application/soap+xml; charset=utf-8",
        }
    }

    /// A guess from a request's `Content-Type`, for answering requests whose
    /// body could not be parsed far enough to see the envelope
    /// ([`RequestError::version`](crate::RequestError::version) is `None`):
    /// `application/soap+xml` means 1.2, `text/xml` means 1.1, anything else
    /// `None` (callers then use [`SoapVersion::default`], 1.2).
    pub fn from_content_type(value: &str) -> Option<SoapVersion> {
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/soap+xml") {
            Some(SoapVersion::Soap12)
        } else if media.eq_ignore_ascii_case("text/xml") {
            Some(SoapVersion::Soap11)
        } else {
            None
        }
    }

    /// "SOAP 1.1" / "SOAP 1.2", for messages.
    pub const fn label(self) -> &'static str {
        match self {
            SoapVersion::Soap11 => "SOAP 1.1",
            SoapVersion::Soap12 => "SOAP 1.2",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_guess() {
        assert_eq!(
            SoapVersion::from_content_type("application/soap+xml;charset=UTF-8;action=\"x\""),
            Some(SoapVersion::Soap12)
        );
        assert_eq!(
            SoapVersion::from_content_type(" Text/XML; charset=utf-8"),
            Some(SoapVersion::Soap11)
        );
        assert_eq!(SoapVersion::from_content_type("application/json"), None);
        assert_eq!(SoapVersion::from_content_type(""), None);
    }

    #[test]
    fn namespaces_round_trip() {
        for v in [SoapVersion::Soap11, SoapVersion::Soap12] {
            assert_eq!(SoapVersion::from_namespace(v.namespace()), Some(v));
        }
        assert_eq!(SoapVersion::from_namespace("urn:x"), None);
    }
}
