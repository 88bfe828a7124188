//! Receiving one HL7 message from an authenticated Authorized User: check the
//! sender is who it says, answer exactly once per (user, MSH-4, MSH-10), and
//! store an accepted VXU durably *before* the answer leaves, so an
//! acknowledged message is never lost and an unstored one never acknowledged.

use crate::audit::{clean, Actor, AuditEvent, AuditTrail, Outcome, MAX_CALLER_TEXT};
use crate::authorized_user::AuthorizedUser;
use crate::keys;
pub use crate::message::load_accepted;
use crate::message::{
    accepted_items, content_hash, AcceptedMessage, MessageRecord, RawMessage, StoredFinding,
};
use hl7::{Location, Message};
use iz::{
    answer_refusal, build_ack, new_control_id, respond_parsed, AckCode, AppError, Clock, Finding,
    Hl7Error, IisIdentity, ProfileId, Received, RequestKind, Severity,
};
use std::sync::Arc;
use store::{Condition, Item, ItemStore, StoreError, Write};

/// How the message arrived; SOAP carries its own facility claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Rest,
    Soap { facility_id: String },
}

/// The answer to send, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// ER7 answer (ACK or RSP), segments ended by CR.
    pub answer: String,
    /// MSA-1 of the answer.
    pub ack_code: AckCode,
    /// The message is stored for matching.
    pub accepted: bool,
    /// This is a resend: the stored answer was returned and nothing changed.
    pub duplicate: bool,
    /// Id of the stored accepted message, if any.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeError {
    /// No MSH could be read: no HL7 answer is possible.
    Unreadable(String),
    /// The store failed; nothing was acknowledged. Retryable when the store says so.
    Store(StoreError),
}

impl std::fmt::Display for IntakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntakeError::Unreadable(m) => write!(f, "{m}"),
            IntakeError::Store(e) => write!(f, "storage error: {e}"),
        }
    }
}

impl std::error::Error for IntakeError {}

impl From<StoreError> for IntakeError {
    fn from(e: StoreError) -> Self {
        IntakeError::Store(e)
    }
}

/// The intake use case.
#[derive(Clone)]
pub struct Intake {
    store: Arc<dyn ItemStore>,
    iis: IisIdentity,
    queries: Option<crate::queries::Queries>,
    /// Where refused queries are recorded (answered ones are recorded by
    /// [`crate::queries::Queries`], with their query record).
    audit: AuditTrail,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").field("iis", &self.iis).finish()
    }
}

fn finding(
    loc: Location,
    code: Hl7Error,
    app: Option<AppError>,
    rule: &str,
    text: String,
) -> Finding {
    Finding::new(loc, code, Severity::Error, app, rule, text)
}

/// The query profile MSH-21 names (Z34 or Z44), for a query refused before
/// it was judged.
fn declared_query_profile(msg: &Message<'_>) -> Option<ProfileId> {
    match msg.msh().field(21).at(1, 1, 0).text().trim() {
        "Z34" => Some(ProfileId::Z34),
        "Z44" => Some(ProfileId::Z44),
        _ => None,
    }
}

fn msa1(answer: &str) -> AckCode {
    let code = Message::parse(answer.as_bytes())
        .ok()
        .and_then(|m| m.first("MSA").map(|s| s.value(1).into_owned()));
    match code.as_deref() {
        Some("AA") => AckCode::AA,
        Some("AR") => AckCode::AR,
        _ => AckCode::AE,
    }
}

impl Intake {
    pub fn new(store: Arc<dyn ItemStore>, iis: IisIdentity) -> Self {
        Intake {
            audit: AuditTrail::new(store.clone()),
            store,
            iis,
            queries: None,
        }
    }

    /// Records refused queries in this trail instead of the default one.
    pub fn with_audit(mut self, audit: AuditTrail) -> Self {
        self.audit = audit;
        self
    }

    /// Answers valid Z34 and Z44 queries from the registry (without this,
    /// they get an honest Z33 AE saying queries are not served here).
    pub fn with_queries(mut self, queries: crate::queries::Queries) -> Self {
        self.queries = Some(queries);
        self
    }

    pub fn iis(&self) -> &IisIdentity {
        &self.iis
    }

    /// Receives `body` from `au`, as of `clock`, from a caller whose
    /// address the transport does not give.
    pub async fn receive(
        &self,
        au: &AuthorizedUser,
        transport: &Transport,
        body: &[u8],
        clock: Clock,
    ) -> Result<Delivery, IntakeError> {
        self.receive_from(au, transport, body, clock, None).await
    }

    /// Receives `body` from `au` at `source` (the caller's address, for the
    /// audit trail of queries), as of `clock`.
    ///
    /// Every QBP is recorded in the audit trail: an answered Z34/Z44 by the
    /// query service, in the transaction of its query record (no audit, no
    /// answer); a refused one here, as a failure. A refusal discloses
    /// nothing, so a store that cannot take its event only logs a warning
    /// and the refusal is sent anyway.
    pub async fn receive_from(
        &self,
        au: &AuthorizedUser,
        transport: &Transport,
        body: &[u8],
        clock: Clock,
        source: Option<&str>,
    ) -> Result<Delivery, IntakeError> {
        let msg = Message::parse(body).map_err(|e| {
            IntakeError::Unreadable(format!("the body is not an HL7 v2 message: {e}"))
        })?;
        let facility = msg.msh().field(4).at(1, 1, 0).text().trim().to_string();
        let is_query = msg.msh().field(9).at(1, 1, 0).text().trim() == "QBP";

        if let Some(refusal) = self.wrong_sender(&msg, au, transport, &facility, clock) {
            if is_query {
                self.record_refused_query(au, &msg, None, &refusal, "sender", clock, source)
                    .await;
            }
            return Ok(refusal);
        }

        let control_id = msg.msh().field(10).first_leaf().text().trim().to_string();
        if control_id.is_empty() || is_query {
            // Without MSH-10 there is nothing to key a resend on (the guide's
            // header check rejects it anyway); a query reads and never writes,
            // so a repeated query is simply answered again.
            return self.answer(au, &msg, clock, is_query, source).await;
        }

        let key = keys::message(&au.id, &facility, &control_id);
        let hash = content_hash(body);
        if let Some(found) = self.replay(&msg, &key, &hash, clock).await? {
            return Ok(found);
        }

        let response = respond_parsed(&msg, &self.iis, clock);
        let mut answer = response
            .answer
            .clone()
            .unwrap_or_else(|| answer_refusal(&msg, AckCode::AE, &[], &self.iis, clock));
        let mut ack_code = response.ack_code.unwrap_or_else(|| msa1(&answer));
        let mut findings = response.findings().to_vec();
        let accepted_vxu = response.accepted && response.kind() == Some(RequestKind::Vxu);

        let mut writes = Vec::new();
        let mut message_id = None;
        if accepted_vxu {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let vxu = match response.intake.as_ref().and_then(|i| i.validation.as_ref()) {
                Some(v) => iz::vxu(&msg, v),
                None => {
                    return Err(IntakeError::Store(StoreError::Other(
                        "accepted VXU without validation".into(),
                    )))
                }
            };
            let warnings = crate::persons::source::identity_warnings(&vxu);
            if !warnings.is_empty() {
                findings.extend(warnings);
                ack_code = AckCode::AE;
                answer = build_ack(
                    &Received::from_message(&msg),
                    ack_code,
                    &findings,
                    &self.iis,
                    clock,
                    &new_control_id(clock),
                );
            }
            let accepted = AcceptedMessage {
                message_id: id.clone(),
                au: au.id.clone(),
                facility: facility.clone(),
                control_id: control_id.clone(),
                received_at: clock.unix_seconds,
                raw: RawMessage::from_bytes(body),
                findings: findings.iter().map(StoredFinding::from).collect(),
                vxu,
            };
            writes.extend(accepted_items(&accepted)?);
            message_id = Some(id);
        }
        let record = MessageRecord {
            au: au.id.clone(),
            facility,
            control_id,
            content_hash: hash.clone(),
            answer: answer.clone(),
            ack_code: ack_code.code().to_string(),
            accepted: accepted_vxu,
            message_id: message_id.clone(),
            received_at: clock.unix_seconds,
        };
        let data = crate::json::encode(&record)?;
        writes.insert(
            0,
            Write::Put {
                item: Item::new(key.clone(), data),
                cond: Condition::Absent,
            },
        );
        match self.store.transact(writes).await {
            Ok(()) => Ok(Delivery {
                answer,
                ack_code,
                accepted: accepted_vxu,
                duplicate: false,
                message_id,
            }),
            Err(StoreError::ConditionFailed { index: Some(0) | None }) => {
                // The same control id was stored meanwhile (a concurrent resend).
                match self.replay(&msg, &key, &hash, clock).await? {
                    Some(d) => Ok(d),
                    None => Err(IntakeError::Store(StoreError::Unavailable(
                        "message record vanished during a concurrent resend".into(),
                    ))),
                }
            }
            Err(StoreError::TooLarge { size, limit }) => Ok(self.refuse(
                &msg,
                AckCode::AR,
                finding(
                    Location::segment("MSH", 1),
                    Hl7Error::ApplicationInternalError,
                    None,
                    "storage-limit",
                    format!("The message is too large for the IIS to store ({size} bytes of content, the limit is {limit}); split it into several messages"),
                ),
                clock,
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// MSH-4 (and the SOAP facilityID) must be facilities of the
    /// authenticated user: otherwise a sender could write as another clinic.
    fn wrong_sender(
        &self,
        msg: &Message<'_>,
        au: &AuthorizedUser,
        transport: &Transport,
        facility: &str,
        clock: Clock,
    ) -> Option<Delivery> {
        if let Transport::Soap { facility_id } = transport {
            if !au.sends_for(facility_id.trim()) {
                return Some(self.refuse(
                    msg,
                    AckCode::AR,
                    finding(
                        Location::field("MSH", 1, 4),
                        Hl7Error::UnknownKeyIdentifier,
                        Some(AppError::InvalidValue),
                        "sender",
                        format!("The SOAP facilityID '{}' is not a facility of the authenticated Authorized User; the message was not processed", facility_id.trim()),
                    ),
                    clock,
                ));
            }
        }
        if !au.sends_for(facility) {
            let shown = if facility.is_empty() {
                "MSH-4 is empty".to_string()
            } else {
                format!("MSH-4 '{facility}' is not a facility of the authenticated Authorized User")
            };
            return Some(self.refuse(
                msg,
                AckCode::AR,
                finding(
                    Location::field("MSH", 1, 4),
                    Hl7Error::UnknownKeyIdentifier,
                    Some(AppError::InvalidValue),
                    "sender",
                    format!("{shown}; the message was not processed"),
                ),
                clock,
            ));
        }
        None
    }

    /// The stored answer when this control id was seen before.
    async fn replay(
        &self,
        msg: &Message<'_>,
        key: &store::Key,
        hash: &str,
        clock: Clock,
    ) -> Result<Option<Delivery>, IntakeError> {
        let Some(item) = self.store.get(key).await? else {
            return Ok(None);
        };
        let record: MessageRecord = serde_json::from_slice(&item.data)
            .map_err(|e| StoreError::Corrupt(format!("message record: {e}")))?;
        if record.content_hash == hash {
            let ack_code = AckCode::from_code(&record.ack_code).ok_or_else(|| {
                StoreError::Corrupt(format!("message record ack code '{}'", record.ack_code))
            })?;
            return Ok(Some(Delivery {
                ack_code,
                answer: record.answer,
                accepted: record.accepted,
                duplicate: true,
                message_id: record.message_id,
            }));
        }
        Ok(Some(self.refuse(
            msg,
            AckCode::AR,
            finding(
                Location::field("MSH", 1, 10),
                Hl7Error::DuplicateKeyIdentifier,
                Some(AppError::InvalidValue),
                "idempotency",
                format!(
                    "MSH-10 '{}' was already used by facility '{}' for a different message; each message needs its own control id. The new message was not processed",
                    record.control_id, record.facility
                ),
            ),
            clock,
        )))
    }

    /// Answer without storing anything (queries, messages without MSH-10).
    async fn answer(
        &self,
        au: &AuthorizedUser,
        msg: &Message<'_>,
        clock: Clock,
        is_query: bool,
        source: Option<&str>,
    ) -> Result<Delivery, IntakeError> {
        let response = respond_parsed(msg, &self.iis, clock);
        if let Some(answer) = response.answer.clone() {
            let delivery = Delivery {
                ack_code: response.ack_code.unwrap_or_else(|| msa1(&answer)),
                answer,
                accepted: false,
                duplicate: false,
                message_id: None,
            };
            if is_query {
                // Our own rule names, never the message's content.
                let rule = response
                    .findings()
                    .iter()
                    .find(|f| f.severity >= Severity::Error)
                    .map_or("rejected", |f| f.rule.as_str());
                let profile = match response.kind() {
                    Some(RequestKind::Qbp(p)) => Some(p),
                    _ => None,
                };
                self.record_refused_query(au, msg, profile, &delivery, rule, clock, source)
                    .await;
            }
            return Ok(delivery);
        }
        let validation = response.intake.as_ref().and_then(|i| i.validation.as_ref());
        if let (
            Some(queries),
            Some(validation),
            Some(RequestKind::Qbp(profile @ (ProfileId::Z34 | ProfileId::Z44))),
        ) = (&self.queries, validation, response.kind())
        {
            let answered = queries
                .answer(au, msg, validation, profile, &self.iis, clock, source)
                .await?;
            return Ok(Delivery {
                answer: answered.rsp,
                ack_code: answered.ack_code,
                accepted: false,
                duplicate: false,
                message_id: None,
            });
        }
        // A valid query but no query service in this build: say so
        // truthfully instead of answering "not found".
        let unavailable = finding(
            Location::field("QPD", 1, 1),
            Hl7Error::ApplicationInternalError,
            None,
            "query-unavailable",
            format!(
                "This IIS cannot answer {} immunization history queries yet; the query was not processed",
                response
                    .kind()
                    .and_then(|k| match k {
                        RequestKind::Qbp(p) => Some(p),
                        RequestKind::Vxu => None,
                    })
                    .unwrap_or(ProfileId::Z34)
                    .code()
            ),
        );
        let refusal = self.refuse(msg, AckCode::AE, unavailable, clock);
        if is_query {
            let profile = match response.kind() {
                Some(RequestKind::Qbp(p)) => Some(p),
                _ => None,
            };
            self.record_refused_query(
                au,
                msg,
                profile,
                &refusal,
                "query-unavailable",
                clock,
                source,
            )
            .await;
        }
        Ok(refusal)
    }

    /// A refused query's audit event (outcome failure): the Authorized
    /// User, the rule that refused it and MSH-10; no subject, since no one
    /// was looked up. Best effort: see [`Intake::receive_from`].
    #[allow(clippy::too_many_arguments)]
    async fn record_refused_query(
        &self,
        au: &AuthorizedUser,
        msg: &Message<'_>,
        profile: Option<ProfileId>,
        refusal: &Delivery,
        rule: &str,
        clock: Clock,
        source: Option<&str>,
    ) {
        let action = match profile.or_else(|| declared_query_profile(msg)) {
            Some(p) => crate::queries::audit_action(p),
            None => "hl7.query".to_owned(),
        };
        let control_id = msg.msh().field(10).first_leaf().text();
        let event = AuditEvent::new(
            Actor::authorized_user(&au.id),
            &action,
            Outcome::Failure,
            clock.unix_seconds.saturating_mul(1000),
        )
        .detail(format!(
            "refused, MSA {} ({rule}); MSH-10 {}",
            refusal.ack_code.code(),
            clean(control_id.trim(), MAX_CALLER_TEXT)
        ))
        .from_source(source);
        if let Err(e) = self.audit.record(&event).await {
            tracing::warn!(error = %e, action = %action, "audit event not recorded");
        }
    }

    fn refuse(&self, msg: &Message<'_>, code: AckCode, f: Finding, clock: Clock) -> Delivery {
        Delivery {
            answer: answer_refusal(msg, code, std::slice::from_ref(&f), &self.iis, clock),
            ack_code: code,
            accepted: false,
            duplicate: false,
            message_id: None,
        }
    }
}
