//! Builders for the IIS's answers: ACK^V04 (Z23) and RSP^K11 (Z33).

use crate::finding::{Finding, Severity};
use crate::intake::AckCode;
use crate::Clock;
use hl7::{escape, Delimiters, Element, Message, MessageWriter};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// How the IIS names itself in MSH-3/MSH-4 (and MSH-22) of its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IisIdentity {
    /// MSH-3, already encoded as HD (e.g. `IISBULK`).
    pub application: String,
    /// MSH-4, already encoded as HD (e.g. `MYIIS`).
    pub facility: String,
    /// MSH-22, already encoded as XON; empty to leave it out.
    pub organization: String,
}

impl Default for IisIdentity {
    fn default() -> Self {
        IisIdentity {
            application: "IISBULK".into(),
            facility: "IIS".into(),
            organization: String::new(),
        }
    }
}

/// Most ERR segments one ACK carries; the rest are summarised in a last ERR.
pub const MAX_ERR_SEGMENTS: usize = 100;

/// A fresh MSH-10 for an outgoing message: unique per process (counter) and
/// across processes (random per-process prefix), short enough for ST 199.
pub fn new_control_id(clock: Clock) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        h.finish() as u32
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // 20 characters at most: the base HL7 length of MSH-10.
    format!(
        "{:06X}{:08X}{:06}",
        prefix & 0xFF_FFFF,
        clock.unix_seconds as u32,
        n % 1_000_000
    )
}

/// Re-encodes an element received with any delimiters in the guide's delimiters.
fn reencode(e: Element<'_>) -> String {
    let d = Delimiters::default();
    let mut out = String::new();
    for (r, rep) in e.children().enumerate() {
        if r > 0 {
            out.push('~');
        }
        for (c, comp) in rep.children().enumerate() {
            if c > 0 {
                out.push('^');
            }
            for (s, sub) in comp.children().enumerate() {
                if s > 0 {
                    out.push('&');
                }
                out.push_str(&escape(&sub.text(), &d));
            }
        }
    }
    out.trim_end_matches(['^', '&', '~']).to_string()
}

/// What an answer needs to know about the message it answers.
#[derive(Debug, Clone)]
pub struct Received {
    pub control_id: String,
    pub sending_application: String,
    pub sending_facility: String,
    pub sending_organization: String,
    pub processing_id: String,
}

impl Received {
    pub fn from_message(msg: &Message<'_>) -> Received {
        let msh = msg.msh();
        let processing = msh.field(11).at(1, 1, 0).text().trim().to_string();
        Received {
            control_id: msh.field(10).first_leaf().text().into_owned(),
            sending_application: reencode(msh.field(3)),
            sending_facility: reencode(msh.field(4)),
            sending_organization: reencode(msh.field(22)),
            processing_id: if matches!(processing.as_str(), "P" | "T" | "D") {
                processing
            } else {
                "P".into()
            },
        }
    }
}

pub(crate) fn write_msh(
    w: &mut MessageWriter,
    me: &IisIdentity,
    to: &Received,
    clock: Clock,
    control_id: &str,
    ty: [&str; 3],
    profile: &str,
) {
    let mut s = w.segment("MSH");
    s.raw(3, &me.application)
        .raw(4, &me.facility)
        .raw(5, &to.sending_application)
        .raw(6, &to.sending_facility)
        .text(7, &clock.hl7_timestamp())
        .components(9, &ty)
        .text(10, control_id)
        .text(11, &to.processing_id)
        .text(12, "2.5.1")
        .text(15, "NE")
        .text(16, "NE")
        .components(21, &[profile, "CDCPHINVS"])
        .raw(22, &me.organization)
        .raw(23, &to.sending_organization);
}

/// MSA-2 echoes MSH-10; when the sender gave none, the HL7 null `""` says so.
pub(crate) fn write_msa(w: &mut MessageWriter, code: AckCode, to: &Received) {
    let mut s = w.segment("MSA");
    s.text(1, code.code());
    if to.control_id.is_empty() {
        s.raw(2, "\"\"");
    } else {
        s.text(2, &to.control_id);
    }
}

/// Keeps ERR-8 within its 250-character length (counted before escaping).
fn user_message(text: &str) -> String {
    if text.chars().count() <= 250 {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(249).collect();
        t.push('…');
        t
    }
}

fn write_err(w: &mut MessageWriter, f: &Finding) {
    let mut s = w.segment("ERR");
    let erl = f.location.to_erl_parts();
    let erl: Vec<&str> = erl.iter().map(String::as_str).collect();
    s.components(2, &erl)
        .components(3, &[f.hl7_code.code(), f.hl7_code.text(), "HL70357"])
        .text(4, f.severity.code());
    if let Some(app) = f.app_code {
        s.components(5, &[app.code(), app.text(), "HL70533"]);
    }
    s.text(8, &user_message(&f.message));
}

/// ACK^V04 (profile Z23) for a VXU, or for any message the IIS cannot process.
pub fn build_ack(
    to: &Received,
    code: AckCode,
    findings: &[Finding],
    me: &IisIdentity,
    clock: Clock,
    control_id: &str,
) -> String {
    let mut w = MessageWriter::new();
    write_msh(
        &mut w,
        me,
        to,
        clock,
        control_id,
        ["ACK", "V04", "ACK"],
        "Z23",
    );
    write_msa(&mut w, code, to);
    if findings.len() <= MAX_ERR_SEGMENTS {
        for f in findings {
            write_err(&mut w, f);
        }
    } else {
        for f in &findings[..MAX_ERR_SEGMENTS - 1] {
            write_err(&mut w, f);
        }
        let rest = &findings[MAX_ERR_SEGMENTS - 1..];
        let worst = rest
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Warning);
        let mut summary = rest[0].clone();
        summary.severity = worst;
        summary.message = format!(
            "{} further problems like this one were found and are not listed; first: {}",
            rest.len(),
            rest[0].message
        );
        write_err(&mut w, &summary);
    }
    w.finish()
}

/// QAK-2 query response status (HL7 table 0208).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryStatus {
    /// Data found (used with Z31/Z32).
    Ok,
    /// No data found.
    NotFound,
    /// Too many candidates found.
    TooMany,
    /// Application error.
    Error,
    /// Application reject.
    Reject,
}

impl QueryStatus {
    pub fn code(self) -> &'static str {
        match self {
            QueryStatus::Ok => "OK",
            QueryStatus::NotFound => "NF",
            QueryStatus::TooMany => "TM",
            QueryStatus::Error => "AE",
            QueryStatus::Reject => "AR",
        }
    }
}

/// RSP^K11 with profile Z33: no person records (not found, too many, or a
/// query error). The guide allows a single ERR, so the most severe finding is used.
#[allow(clippy::too_many_arguments)] // each is one field of the answer; a struct would only rename them
pub fn build_rsp_z33(
    query: &Message<'_>,
    to: &Received,
    code: AckCode,
    status: QueryStatus,
    findings: &[Finding],
    me: &IisIdentity,
    clock: Clock,
    control_id: &str,
) -> String {
    let mut w = MessageWriter::new();
    write_msh(
        &mut w,
        me,
        to,
        clock,
        control_id,
        ["RSP", "K11", "RSP_K11"],
        "Z33",
    );
    write_msa(&mut w, code, to);
    let worst = findings
        .iter()
        .enumerate()
        .max_by_key(|(i, f)| (f.severity, std::cmp::Reverse(*i)))
        .map(|(_, f)| f);
    if let Some(f) = worst {
        write_err(&mut w, f);
    }
    write_qak_qpd(&mut w, query, status);
    w.finish()
}

/// QAK (echoing QPD-2 and QPD-1) and the query's QPD, as every RSP carries.
pub(crate) fn write_qak_qpd(w: &mut MessageWriter, query: &Message<'_>, status: QueryStatus) {
    let qpd = query.first("QPD");
    let tag = qpd
        .map(|q| q.field(2).first_leaf().text().into_owned())
        .unwrap_or_default();
    let name = qpd
        .map(|q| reencode(q.field(1)))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Z34^Request Immunization History^CDCPHINVS".into());
    w.segment("QAK")
        .text(1, &tag)
        .text(2, status.code())
        .raw(3, &name);
    match qpd {
        Some(q) => {
            let mut s = w.segment("QPD");
            for n in 1..=q.field_count() {
                s.raw(n, &reencode(q.field(n)));
            }
        }
        None => {
            w.segment("QPD").raw(1, &name);
        }
    }
}
