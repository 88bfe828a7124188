//! The audit trail: who did what, to what, when, from where, and how it
//! ended. Append-only: events are written once (never updated; no API
//! deletes them) and expire after the jurisdiction's retention period
//! (default six years). No PHI: subjects are ids ("Person/…",
//! "AuthorizedUser/…"), details are words about the action.
//!
//! One item per event in a day's partition (time searches), indexed by
//! actor (GSI 1) and by its first subject (GSI 2).

use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, Key, QueryOpts, SkRange, StoreError, Write};

use crate::keys;

/// Six years, in seconds: the default retention.
pub const DEFAULT_RETENTION_SECONDS: i64 = 6 * 366 * 24 * 3600;
/// Most days a time search may span (one partition read per day).
pub const MAX_SEARCH_DAYS: i64 = 92;
/// The longest text taken from a caller (an id it asked for, a control id,
/// a name it gave) that goes into an event, after [`clean`]: subjects and
/// actors are index keys, so what a caller sends must not make them long.
pub const MAX_CALLER_TEXT: usize = 64;

/// `text` cut to at most `max` bytes at a character boundary (then an
/// ellipsis), control characters replaced by spaces: what a caller sent
/// stays one short line in the trail and a short key in its indexes.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorKind {
    /// An IIS staff member at the console.
    Staff,
    /// A sender or querier, by its Authorized User id.
    AuthorizedUser,
    /// A SMART Backend Services client, by client_id.
    Client,
    /// Someone not (yet) authenticated, by the name they gave.
    Unauthenticated,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Staff => "staff",
            ActorKind::AuthorizedUser => "authorized-user",
            ActorKind::Client => "client",
            ActorKind::Unauthenticated => "unauthenticated",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn staff(username: &str) -> Actor {
        Actor {
            kind: ActorKind::Staff,
            id: username.to_owned(),
        }
    }

    /// A SMART Backend Services client, by its client_id.
    pub fn client(client_id: &str) -> Actor {
        Actor {
            kind: ActorKind::Client,
            id: client_id.to_owned(),
        }
    }

    /// An Authorized User (a sender or querier), by its id.
    pub fn authorized_user(id: &str) -> Actor {
        Actor {
            kind: ActorKind::AuthorizedUser,
            id: id.to_owned(),
        }
    }

    /// Someone not authenticated, by what they gave (cut with [`clean`]).
    pub fn unauthenticated(given: &str) -> Actor {
        Actor {
            kind: ActorKind::Unauthenticated,
            id: clean(given, MAX_CALLER_TEXT),
        }
    }

    /// `kind/id`, the form searches use.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    /// Refused: bad credentials, a missing role, a stale decision, ...
    Failure,
}

/// One audited action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub at_ms: i64,
    pub actor: Actor,
    /// What was done, e.g. `console.login`, `console.review.merge`.
    pub action: String,
    pub outcome: Outcome,
    /// What it was done to, as `Type/id` references (no PHI).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Words about the action (no PHI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Where the request came from (an address), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: &str, outcome: Outcome, at_ms: i64) -> AuditEvent {
        // A process-wide sequence first, so events of one process within
        // one millisecond keep their order; random bytes keep ids unique
        // across processes.
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut random = [0u8; 6];
        OsRng.fill_bytes(&mut random);
        AuditEvent {
            id: format!("{n:012x}{}", keys::hex(&random)),
            at_ms,
            actor,
            action: action.to_owned(),
            outcome,
            subjects: Vec::new(),
            detail: String::new(),
            source: None,
        }
    }

    pub fn subject(mut self, reference: impl Into<String>) -> Self {
        self.subjects.push(reference.into());
        self
    }

    pub fn detail(mut self, text: impl Into<String>) -> Self {
        self.detail = text.into();
        self
    }

    /// Where the request came from (an address), when the transport knows.
    pub fn from_source(mut self, source: Option<&str>) -> Self {
        self.source = source.map(str::to_owned);
        self
    }
}

/// A search of the trail: by actor, by subject, or by time alone, always
/// within `[from_ms, to_ms]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditSearch {
    /// `kind/id`, e.g. `staff/rita`.
    pub actor: Option<String>,
    /// A subject reference, e.g. `Person/0123`.
    pub subject: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub limit: u32,
}

/// The audit trail over the store.
#[derive(Clone)]
pub struct AuditTrail {
    store: Arc<dyn ItemStore>,
    pub retention_seconds: i64,
}

impl std::fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTrail")
            .field("retention_seconds", &self.retention_seconds)
            .finish_non_exhaustive()
    }
}

fn sort_key(event: &AuditEvent) -> String {
    format!("{:020}#{}", event.at_ms.max(0), event.id)
}

fn time_range(from_ms: i64, to_ms: i64) -> SkRange {
    SkRange::Between(
        format!("{:020}", from_ms.max(0)),
        format!("{:020}~", to_ms.max(0)),
    )
}

impl AuditTrail {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        AuditTrail {
            store,
            retention_seconds: DEFAULT_RETENTION_SECONDS,
        }
    }

    /// Appends one event; an event id is never written twice.
    pub async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.store.put(self.item(event)?, Condition::Absent).await?;
        Ok(())
    }

    /// The store the trail is kept in (for a transaction with [`Self::write`]).
    pub fn store(&self) -> &dyn ItemStore {
        self.store.as_ref()
    }

    /// The write that appends `event` (created only if absent), for a
    /// use case that records it in the same transaction as what it audits:
    /// then the action happens only if its event is stored.
    pub fn write(&self, event: &AuditEvent) -> Result<Write, StoreError> {
        Ok(Write::Put {
            item: self.item(event)?,
            cond: Condition::Absent,
        })
    }

    fn item(&self, event: &AuditEvent) -> Result<Item, StoreError> {
        let sk = sort_key(event);
        let data = serde_json::to_vec(event).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut item = Item::new(Key::new(keys::audit_day_pk(event.at_ms), sk.clone()), data)
            .with_gsi1(Key::new(
                keys::audit_actor_pk(&event.actor.reference()),
                sk.clone(),
            ))
            .with_expiry(event.at_ms / 1000 + self.retention_seconds);
        if let Some(first) = event.subjects.first() {
            item = item.with_gsi2(Key::new(keys::audit_subject_pk(first), sk));
        }
        Ok(item)
    }

    /// Events matching the search, newest first, at most `limit`.
    pub async fn search(&self, search: &AuditSearch) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = search.limit.max(1);
        let mut out = Vec::new();
        let indexed = match (&search.actor, &search.subject) {
            (Some(actor), _) => Some((Index::Gsi1, keys::audit_actor_pk(actor))),
            (None, Some(subject)) => Some((Index::Gsi2, keys::audit_subject_pk(subject))),
            (None, None) => None,
        };
        let partitions: Vec<(Index, String)> = match indexed {
            Some(p) => vec![p],
            None => {
                // Day partitions, newest first.
                let mut days = Vec::new();
                let mut day = search.to_ms.div_euclid(86_400_000);
                let first = search.from_ms.div_euclid(86_400_000);
                while day >= first && days.len() as i64 <= MAX_SEARCH_DAYS {
                    days.push((Index::Table, keys::audit_day_pk(day * 86_400_000)));
                    day -= 1;
                }
                days
            }
        };
        for (index, pk) in partitions {
            let mut cursor = None;
            loop {
                let page = self
                    .store
                    .query(
                        &pk,
                        QueryOpts::new(index, time_range(search.from_ms, search.to_ms))
                            .backward()
                            .limit(limit)
                            .after(cursor),
                    )
                    .await?;
                for item in &page.items {
                    let event: AuditEvent = serde_json::from_slice(&item.data)
                        .map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))?;
                    // An actor search may also name a subject.
                    if search
                        .subject
                        .as_ref()
                        .is_some_and(|s| !event.subjects.contains(s))
                    {
                        continue;
                    }
                    out.push(event);
                    if out.len() >= limit as usize {
                        return Ok(out);
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(out)
    }
}

/// DICOM's audit event types (DCM), the FHIR AuditEvent.type codes for
/// logins, queries, record reads and security changes.
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";

/// The event as a FHIR R4 AuditEvent, for auditors' NDJSON export: the type
/// from the action's family (login, query, record, security change, FHIR
/// REST), the action itself as a subtype in the IIS's own system, the
/// actor as an identifier (no names), persons as Patient references (the
/// person id is the FHIR Patient id), Groups as Group references and other
/// subjects as identifiers.
pub fn to_fhir(event: &AuditEvent, identifier_base: &str) -> fhir::AuditEvent {
    let base = identifier_base.trim_end_matches('/');
    let action = event.action.as_str();
    let last = action.rsplit('.').next().unwrap_or(action);
    let (system, code, display) = if action.ends_with("login")
        || action.ends_with("logout")
        || action.starts_with("smart.token")
    {
        (DCM, "110114", "User Authentication")
    } else if action.starts_with("hl7.query") {
        (DCM, "110112", "Query")
    } else if action.starts_with("console.audit") {
        (DCM, "110101", "Audit Log Used")
    } else if action.starts_with("console.staff")
        || action.starts_with("console.client")
        || action.starts_with("console.authorized-user")
    {
        (DCM, "110137", "User Security Attributes Changed")
    } else if action.starts_with("fhir.") {
        (AUDIT_EVENT_TYPE, "rest", "RESTful Operation")
    } else {
        (DCM, "110110", "Patient Record")
    };
    let crud = match last {
        "read" | "search" => "R",
        "add" => "C",
        "remove" if action.starts_with("console.client") || action.starts_with("console.staff") => {
            "D"
        }
        "login" | "logout" | "token" | "export" | "kick-off" | "download" | "forecast" | "z34"
        | "z44" | "immds-forecast" => "E",
        _ => "U",
    };
    let entity = event
        .subjects
        .iter()
        .map(|subject| {
            let what = match subject.split_once('/') {
                Some(("Person", id)) => fhir::Reference::to("Patient", id),
                Some(("Group", id)) => fhir::Reference::to("Group", id),
                _ => fhir::Reference {
                    identifier: Some(fhir::Identifier {
                        system: Some(format!("{base}/audit-subject")),
                        value: Some(subject.clone()),
                        ..fhir::Identifier::default()
                    }),
                    ..fhir::Reference::default()
                },
            };
            fhir::AuditEventEntity {
                what: Some(what),
                r#type: None,
            }
        })
        .collect();
    fhir::AuditEvent {
        resource_type: fhir::AuditEventType,
        id: event.id.clone(),
        r#type: fhir::Coding::new(system, code, Some(display)),
        subtype: vec![fhir::Coding::new(
            &format!("{base}/audit-action"),
            action,
            None,
        )],
        action: Some(crud.into()),
        recorded: iz::Clock::at(event.at_ms.div_euclid(1000)).instant(),
        outcome: Some(match event.outcome {
            Outcome::Success => "0".into(),
            Outcome::Failure => "4".into(),
        }),
        outcome_desc: Some(event.detail.clone()).filter(|d| !d.is_empty()),
        agent: vec![fhir::AuditEventAgent {
            r#type: None,
            who: Some(fhir::Reference {
                identifier: Some(fhir::Identifier {
                    system: Some(format!("{base}/audit-actor/{}", event.actor.kind.as_str())),
                    value: Some(event.actor.id.clone()).filter(|id| !id.is_empty()),
                    ..fhir::Identifier::default()
                }),
                ..fhir::Reference::default()
            }),
            requestor: true,
            network: event
                .source
                .as_ref()
                .map(|address| fhir::AuditEventNetwork {
                    address: Some(address.clone()),
                    r#type: Some("2".into()),
                }),
        }],
        source: fhir::AuditEventSource {
            site: None,
            observer: fhir::Reference {
                display: Some("iisbulk".into()),
                ..fhir::Reference::default()
            },
        },
        entity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail() -> (tempfile::TempDir, AuditTrail) {
        let dir = tempfile::tempdir().unwrap();
        let store = store::embedded::EmbeddedStore::open(dir.path().join("iis.redb")).unwrap();
        (dir, AuditTrail::new(Arc::new(store)))
    }

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_800_000_000_000;

    #[tokio::test]
    async fn events_are_found_by_actor_subject_and_time_newest_first() {
        let (_d, trail) = trail();
        let rita = Actor::staff("rita");
        let ada = Actor::staff("ada");
        let events = [
            AuditEvent::new(rita.clone(), "console.login", Outcome::Success, T0),
            AuditEvent::new(
                rita.clone(),
                "console.review.merge",
                Outcome::Success,
                T0 + 10,
            )
            .subject("Person/p1")
            .subject("Person/p2"),
            AuditEvent::new(
                ada.clone(),
                "console.person.read",
                Outcome::Success,
                T0 + DAY,
            )
            .subject("Person/p1"),
            AuditEvent::new(ada.clone(), "console.login", Outcome::Failure, T0 + 2 * DAY),
        ];
        for e in &events {
            trail.record(e).await.unwrap();
        }
        // The same event twice is refused: the trail is append-only.
        assert!(trail.record(&events[0]).await.is_err());

        let all = AuditSearch {
            from_ms: T0,
            to_ms: T0 + 3 * DAY,
            limit: 10,
            ..AuditSearch::default()
        };
        let found = trail.search(&all).await.unwrap();
        let actions: Vec<&str> = found.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "console.login",
                "console.person.read",
                "console.review.merge",
                "console.login"
            ]
        );
        assert_eq!(found[0].outcome, Outcome::Failure);

        let by_rita = trail
            .search(&AuditSearch {
                actor: Some("staff/rita".into()),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(by_rita.len(), 2);
        assert!(by_rita.iter().all(|e| e.actor == rita));

        let about_p1 = trail
            .search(&AuditSearch {
                subject: Some("Person/p1".into()),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(about_p1.len(), 2, "the merge (first subject) and the read");

        let rita_about_p1 = trail
            .search(&AuditSearch {
                actor: Some("staff/rita".into()),
                subject: Some("Person/p2".into()),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            rita_about_p1.len(),
            1,
            "a later subject is found within an actor's events"
        );

        let first_day = trail
            .search(&AuditSearch {
                from_ms: T0,
                to_ms: T0 + 20,
                limit: 10,
                ..AuditSearch::default()
            })
            .await
            .unwrap();
        assert_eq!(first_day.len(), 2);
        let limited = trail
            .search(&AuditSearch { limit: 1, ..all })
            .await
            .unwrap();
        assert_eq!(limited.len(), 1);
    }

    #[test]
    fn an_event_becomes_a_fhir_audit_event_with_ids_only() {
        let mut event = AuditEvent::new(
            Actor::staff("rita"),
            "console.review.merge",
            Outcome::Success,
            T0 + 1234,
        )
        .subject("Person/p1")
        .subject("Person/p2")
        .detail("same birth hospital record");
        event.source = Some("127.0.0.1".into());
        let fhir = to_fhir(&event, "https://iis.example.gov/id/");
        let json = serde_json::to_value(&fhir).unwrap();
        assert_eq!(json["resourceType"], "AuditEvent");
        assert_eq!(json["id"], event.id.as_str());
        assert_eq!(json["type"]["code"], "110110");
        assert_eq!(json["subtype"][0]["code"], "console.review.merge");
        assert_eq!(
            json["subtype"][0]["system"],
            "https://iis.example.gov/id/audit-action"
        );
        assert_eq!(json["action"], "U");
        assert_eq!(json["outcome"], "0");
        assert_eq!(json["recorded"], "2027-01-15T08:00:01Z");
        assert_eq!(json["agent"][0]["who"]["identifier"]["value"], "rita");
        assert_eq!(
            json["agent"][0]["who"]["identifier"]["system"],
            "https://iis.example.gov/id/audit-actor/staff"
        );
        assert_eq!(json["agent"][0]["network"]["address"], "127.0.0.1");
        assert_eq!(json["entity"][1]["what"]["reference"], "Patient/p2");
        assert_eq!(json["outcomeDesc"], "same birth hospital record");

        let login = AuditEvent::new(
            Actor {
                kind: ActorKind::Unauthenticated,
                id: "mallory".into(),
            },
            "console.login",
            Outcome::Failure,
            T0,
        )
        .subject("AuthorizedUser/valley");
        let json = serde_json::to_value(to_fhir(&login, "urn:iisbulk:id")).unwrap();
        assert_eq!(json["type"]["code"], "110114");
        assert_eq!(json["action"], "E");
        assert_eq!(json["outcome"], "4");
        assert_eq!(
            json["entity"][0]["what"]["identifier"]["value"],
            "AuthorizedUser/valley"
        );
        assert!(json.get("outcomeDesc").is_none());
    }
}
