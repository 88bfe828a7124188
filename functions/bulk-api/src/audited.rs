//! The FHIR side's audit trail: every read and search, `$immds-forecast`,
//! export kick-off, manifest, cancellation and file download goes into
//! `registry::audit` with who asked (`client/<client_id>`), what it was
//! about (ids only: `Group/…`, `Person/…` for a Patient, whose FHIR id is the
//! registry person's, `Immunization/…`, `ExportJob/…`), from which address
//! and how it ended. Never a name, birth date or identifier value.
//!
//! What is recorded is decided once, from the answer's status
//! ([`Audit::finish`]):
//!
//! - a success (2xx) is recorded *before* the answer leaves, and a store
//!   that cannot take the event turns the answer into 503: no audit, no
//!   data, as the console's person page;
//! - a refusal (4xx: no or wrong token, a scope missing, not found, a bad
//!   request) is recorded as a failure; if its event cannot be written the
//!   refusal is sent anyway (it discloses nothing) and a warning logged;
//! - 5xx answers (storage down, not configured) are not recorded: nothing
//!   was decided, and the store is likely what failed;
//! - a request that presents no `Authorization` header names no one and is
//!   not recorded (as the token endpoint records only requests naming a
//!   client); one presenting a token that is not valid is recorded under
//!   `unauthenticated/invalid-token`.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use registry::audit::{clean, Actor, AuditEvent, Outcome, MAX_CALLER_TEXT};

use crate::response::failure;
use crate::BulkDeps;

/// The caller's address as the transport gives it: `iisbulk serve`'s peer,
/// or API Gateway's `sourceIp` on Lambda (see [`crate::router`]).
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Most resources named as subjects of one event; the detail gives the
/// full count.
pub const MAX_SUBJECTS: usize = 20;

/// The actor of a request whose bearer token is not valid.
pub const INVALID_TOKEN: &str = "invalid-token";

/// One request's audit event, gathered while it is answered.
pub struct Audit<'a> {
    deps: &'a BulkDeps,
    action: &'static str,
    source: Option<String>,
    actor: Option<Actor>,
    subjects: Vec<String>,
    detail: String,
    /// What the request changes, stored with its success event in one
    /// transaction (a `$match`'s query record).
    with_event: Vec<store::Write>,
}

impl<'a> Audit<'a> {
    pub fn new(deps: &'a BulkDeps, action: &'static str, peer: &Peer) -> Self {
        Audit {
            deps,
            action,
            source: peer
                .as_ref()
                .map(|Extension(ConnectInfo(addr))| addr.ip().to_string()),
            actor: None,
            subjects: Vec::new(),
            detail: String::new(),
            with_event: Vec::new(),
        }
    }

    /// Who asks (set by [`crate::caller::caller`] once a token was
    /// presented).
    pub fn actor(&mut self, actor: Actor) {
        self.actor = Some(actor);
    }

    /// A subject, `Type/id`; an id the caller sent is cut short
    /// ([`clean`]) since subjects are index keys. At most [`MAX_SUBJECTS`].
    pub fn subject(&mut self, kind: &str, id: &str) {
        if self.subjects.len() < MAX_SUBJECTS {
            self.subjects
                .push(format!("{kind}/{}", clean(id, MAX_CALLER_TEXT)));
        }
    }

    /// Writes to commit with the event of a success, in one transaction:
    /// they happen only if the event is stored, and the answer is given
    /// only if both are. A refusal never commits them.
    pub fn with_event(&mut self, writes: Vec<store::Write>) {
        self.with_event = writes;
    }

    /// Words about the action (no PHI).
    pub fn detail(&mut self, text: impl Into<String>) {
        self.detail = text.into();
    }

    /// Records the event `response` calls for (see the module's rules) and
    /// returns the response to send.
    pub async fn finish(self, response: Response) -> Response {
        self.finish_checked(response).await.unwrap_or_else(|r| r)
    }

    /// As [`Audit::finish`], but says when a success was withheld because
    /// its event could not be stored (`Err`, the 503 to send instead), so
    /// the caller can undo what it did.
    pub async fn finish_checked(self, response: Response) -> Result<Response, Response> {
        let status = response.status();
        if status.is_server_error() || status.is_informational() {
            return Ok(response);
        }
        let Some(actor) = self.actor else {
            return Ok(response);
        };
        let (outcome, detail) = if status.is_success() {
            (Outcome::Success, self.detail)
        } else if self.detail.is_empty() {
            (Outcome::Failure, format!("refused {}", status.as_u16()))
        } else {
            (
                Outcome::Failure,
                format!("refused {}: {}", status.as_u16(), self.detail),
            )
        };
        let mut event = AuditEvent::new(
            actor,
            self.action,
            outcome,
            store::limits::now_epoch_millis(),
        )
        .detail(detail)
        .from_source(self.source.as_deref());
        event.subjects = self.subjects;
        let stored = if outcome == Outcome::Success && !self.with_event.is_empty() {
            let mut writes = self.with_event;
            match self.deps.audit.write(&event) {
                Ok(w) => {
                    writes.push(w);
                    self.deps.audit.store().transact(writes).await
                }
                Err(e) => Err(e),
            }
        } else {
            self.deps.audit.record(&event).await
        };
        match stored {
            Ok(()) => Ok(response),
            Err(e) if outcome == Outcome::Success => {
                tracing::error!(error = %e, action = self.action, "audit event not recorded; answer withheld");
                Err(failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "transient",
                    "the request could not be recorded in the audit trail, so it was not answered; retry shortly",
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, action = self.action, "audit event of a refusal not recorded");
                Ok(response)
            }
        }
    }
}
