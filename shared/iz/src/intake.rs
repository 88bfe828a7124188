//! What the IIS makes of one received message: which profile applies, whether
//! the header can be processed at all, the validation findings and the MSA-1
//! acknowledgement code they add up to.

use crate::finding::{AppError, Finding, Hl7Error, Severity};
use crate::profile::{profile, ProfileId};
use crate::validate::{validate, Validation};
use crate::Clock;
use hl7::{Location, Message};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    AA,
    AE,
    AR,
}

impl AckCode {
    pub fn from_code(code: &str) -> Option<AckCode> {
        match code {
            "AA" => Some(AckCode::AA),
            "AE" => Some(AckCode::AE),
            "AR" => Some(AckCode::AR),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
        }
    }
}

/// The kinds of request this IIS answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// VXU^V04, profile Z22.
    Vxu,
    /// QBP^Q11 with profile Z34 (history) or Z44 (evaluated history and forecast).
    Qbp(ProfileId),
}

/// The judgement on one message.
#[derive(Debug)]
pub struct Intake {
    pub kind: Option<RequestKind>,
    pub findings: Vec<Finding>,
    /// Profile validation, when the header allowed it to run.
    pub validation: Option<Validation>,
    pub ack_code: AckCode,
    /// The message (or what survived the cascade) will be used by the IIS.
    pub accepted: bool,
}

impl Intake {
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Judges a parsed message as the IIS receiving it.
pub fn judge(msg: &Message<'_>, clock: Clock) -> Intake {
    match header(msg) {
        Err(f) => Intake {
            kind: None,
            findings: vec![f],
            validation: None,
            ack_code: AckCode::AR,
            accepted: false,
        },
        Ok(kind) => {
            let id = match kind {
                RequestKind::Vxu => ProfileId::Z22,
                RequestKind::Qbp(p) => p,
            };
            let v = validate(msg, profile(id), clock);
            let findings = v.findings.clone();
            let accepted = !v.rejected;
            let ack_code = if findings.iter().any(|f| f.severity >= Severity::Warning) || !accepted
            {
                AckCode::AE
            } else {
                AckCode::AA
            };
            Intake {
                kind: Some(kind),
                findings,
                validation: Some(v),
                ack_code,
                accepted,
            }
        }
    }
}

/// Validates any IZ message (including ACK and RSP) against the profile it
/// declares, for checking what other systems send back.
pub fn validate_declared(msg: &Message<'_>, clock: Clock) -> Option<(ProfileId, Validation)> {
    let id = declared_profile(msg)?;
    Some((id, validate(msg, profile(id), clock)))
}

/// The profile a message claims: MSH-21, else what MSH-9 implies.
pub fn declared_profile(msg: &Message<'_>) -> Option<ProfileId> {
    let msh = msg.msh();
    for rep in msh.field(21).children() {
        if let Some(p) = ProfileId::from_code(&rep.child(1).first_leaf().text()) {
            return Some(p);
        }
    }
    match msh.value(9).trim() {
        "VXU" => Some(ProfileId::Z22),
        "ACK" => Some(ProfileId::Z23),
        "QBP" => Some(query_profile(msg)),
        _ => None,
    }
}

/// Z34 or Z44: MSH-21 says which, else QPD-1; Z34 when neither does.
fn query_profile(msg: &Message<'_>) -> ProfileId {
    for rep in msg.msh().field(21).children() {
        if let Some(p @ (ProfileId::Z34 | ProfileId::Z44)) =
            ProfileId::from_code(&rep.child(1).first_leaf().text())
        {
            return p;
        }
    }
    let from_qpd = msg
        .first("QPD")
        .and_then(|q| ProfileId::from_code(&q.field(1).at(1, 1, 0).text()));
    match from_qpd {
        Some(ProfileId::Z44) => ProfileId::Z44,
        _ => ProfileId::Z34,
    }
}

fn reject(field: u32, comp: u32, code: Hl7Error, app: Option<AppError>, text: String) -> Finding {
    let mut l = Location::field("MSH", 1, field);
    if comp > 0 {
        l = l.with_rep(1).with_component(comp);
    }
    Finding::new(l, code, Severity::Error, app, "header", text)
}

/// The message-level checks that decide whether the IIS can process the message at all.
fn header(msg: &Message<'_>) -> Result<RequestKind, Finding> {
    let d = msg.delimiters();
    let msh = msg.msh();
    if d.field != b'|' {
        return Err(reject(
            1,
            0,
            Hl7Error::DataType,
            Some(AppError::InvalidValue),
            format!(
                "IZ-12: MSH-1 field separator is '{}'; this IIS accepts only '|'. Message rejected",
                d.field as char
            ),
        ));
    }
    if !d.is_standard() {
        return Err(reject(2, 0, Hl7Error::DataType, Some(AppError::InvalidValue), format!(
            "IZ-13: MSH-2 encoding characters are '{}'; this IIS accepts only '^~\\&'. Message rejected",
            d.encoding_characters()
        )));
    }
    if !msh.field(10).has_value() {
        return Err(reject(10, 0, Hl7Error::RequiredFieldMissing, Some(AppError::RequiredDataMissing),
            "MSH-10 (Message Control ID) is missing, so the message cannot be acknowledged. Message rejected".into()));
    }
    let version = msh.field(12).at(1, 1, 0).text();
    if version.trim() != "2.5.1" {
        let shown = if version.is_empty() {
            "missing".to_string()
        } else {
            format!("'{version}'")
        };
        return Err(reject(
            12,
            0,
            Hl7Error::UnsupportedVersionId,
            None,
            format!(
                "MSH-12 version ID is {shown}; this IIS accepts HL7 2.5.1 only. Message rejected"
            ),
        ));
    }
    let processing = msh.field(11).at(1, 1, 0).text();
    if !matches!(processing.trim(), "P" | "T" | "D") {
        return Err(reject(
            11,
            0,
            Hl7Error::UnsupportedProcessingId,
            None,
            format!("MSH-11 processing ID '{processing}' is not P, T or D. Message rejected"),
        ));
    }
    let ty = msh.field(9);
    let code = ty.at(1, 1, 0).text();
    let event = ty.at(1, 2, 0).text();
    match code.trim() {
        "VXU" if event.trim() == "V04" => Ok(RequestKind::Vxu),
        "QBP" if event.trim() == "Q11" => Ok(RequestKind::Qbp(query_profile(msg))),
        "VXU" | "QBP" => Err(reject(9, 2, Hl7Error::UnsupportedEventCode, None, format!(
            "MSH-9 trigger event '{event}' is not supported for {code}; expected {}. Message rejected",
            if code.trim() == "VXU" { "V04" } else { "Q11" }
        ))),
        _ => Err(reject(9, 1, Hl7Error::UnsupportedMessageType, None, format!(
            "MSH-9 message type '{}' is not supported; this IIS accepts VXU^V04 and QBP^Q11. Message rejected",
            if event.is_empty() { code.to_string() } else { format!("{code}^{event}") }
        ))),
    }
}
