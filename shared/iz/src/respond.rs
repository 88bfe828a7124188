//! From received bytes to the answer the guide requires: ACK^V04 for a VXU
//! (and for anything that is not a query), RSP^K11 Z33 for a query that fails.

use crate::ack::{build_ack, build_rsp_z33, new_control_id, IisIdentity, QueryStatus, Received};
use crate::finding::Finding;
use crate::intake::{judge, AckCode, Intake, RequestKind};
use crate::Clock;
use hl7::{Message, ParseError};

/// What the IIS does with one message.
#[derive(Debug)]
pub struct Response {
    /// The bytes could not be read as HL7 at all (no usable MSH): no HL7 answer is possible.
    pub unreadable: Option<ParseError>,
    pub intake: Option<Intake>,
    /// The ER7 answer, when one is due now. A valid query (Z34 or Z44) has
    /// none here: it is answered by the query service with the registry's
    /// data (Z32 or Z42, Z31, Z33 NF/TM).
    pub answer: Option<String>,
    pub ack_code: Option<AckCode>,
    /// The message (or what survived the cascade) is to be stored and used.
    pub accepted: bool,
}

impl Response {
    pub fn findings(&self) -> &[Finding] {
        self.intake.as_ref().map_or(&[], |i| &i.findings)
    }
    pub fn kind(&self) -> Option<RequestKind> {
        self.intake.as_ref().and_then(|i| i.kind)
    }
}

/// Judges `bytes` and builds the answer, as of `clock`.
pub fn respond(bytes: &[u8], me: &IisIdentity, clock: Clock) -> Response {
    let msg = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            return Response {
                unreadable: Some(e),
                intake: None,
                answer: None,
                ack_code: None,
                accepted: false,
            }
        }
    };
    respond_parsed(&msg, me, clock)
}

pub fn respond_parsed(msg: &Message<'_>, me: &IisIdentity, clock: Clock) -> Response {
    let intake = judge(msg, clock);
    let to = Received::from_message(msg);
    let control_id = new_control_id(clock);
    let is_query = msg.msh().field(9).at(1, 1, 0).text().trim() == "QBP";
    let answer = match intake.kind {
        Some(RequestKind::Vxu) => Some(build_ack(
            &to,
            intake.ack_code,
            &intake.findings,
            me,
            clock,
            &control_id,
        )),
        Some(RequestKind::Qbp(_)) if !intake.accepted => Some(build_rsp_z33(
            msg,
            &to,
            AckCode::AE,
            QueryStatus::Error,
            &intake.findings,
            me,
            clock,
            &control_id,
        )),
        Some(RequestKind::Qbp(_)) => None,
        None if is_query => Some(build_rsp_z33(
            msg,
            &to,
            AckCode::AR,
            QueryStatus::Reject,
            &intake.findings,
            me,
            clock,
            &control_id,
        )),
        None => Some(build_ack(
            &to,
            intake.ack_code,
            &intake.findings,
            me,
            clock,
            &control_id,
        )),
    };
    let ack_code = match (intake.kind, intake.accepted) {
        (Some(RequestKind::Qbp(_)), true) => None,
        _ => Some(intake.ack_code),
    };
    let accepted = intake.accepted;
    Response {
        unreadable: None,
        intake: Some(intake),
        answer,
        ack_code,
        accepted,
    }
}

/// The answer to a message the IIS refuses for a reason outside the guide's
/// validation (an unknown sending facility, a reused control id, a service
/// that cannot run): an ACK for anything but a query, an RSP Z33 for a query,
/// with the given MSA-1 and one ERR per finding.
pub fn answer_refusal(
    msg: &Message<'_>,
    code: AckCode,
    findings: &[Finding],
    me: &IisIdentity,
    clock: Clock,
) -> String {
    let to = Received::from_message(msg);
    let control_id = new_control_id(clock);
    let is_query = msg.msh().field(9).at(1, 1, 0).text().trim() == "QBP";
    if is_query {
        let status = if code == AckCode::AR {
            QueryStatus::Reject
        } else {
            QueryStatus::Error
        };
        build_rsp_z33(msg, &to, code, status, findings, me, clock, &control_id)
    } else {
        build_ack(&to, code, findings, me, clock, &control_id)
    }
}
