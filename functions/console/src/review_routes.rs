//! The possible-duplicate queue (reviewers and administrators): each
//! provisional person beside its candidates with the matcher's evidence,
//! and the two decisions, recorded with who and why.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::patients::decisions::{record_decision, ReviewDecision};
use registry::patients::{PersonStatus, RelinkError};
use registry::staff::{StaffRole, StaffSession};
use serde::Deserialize;

use crate::audit_routes::{record, record_before_showing};
use crate::session::{authenticate, json_body, require_csrf, require_role};
use crate::{json, now_ms, ConsoleDeps, Problem};
use registry::audit::{Actor, AuditEvent, Outcome};

const REVIEWERS: &[StaffRole] = &[StaffRole::Reviewer, StaffRole::Administrator];
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// As registry::authorized_user allows.
const MAX_AU_ID: usize = 64;

async fn reviewer(deps: &ConsoleDeps, headers: &HeaderMap) -> Result<StaffSession, Problem> {
    let session = authenticate(deps, headers).await?;
    require_role(&session, REVIEWERS)?;
    Ok(session)
}

/// What a queue request asks for: how many persons, and whose.
struct QueueQuery {
    limit: u32,
    /// Only persons with a source record from this Authorized User.
    au: Option<String>,
}

fn queue_query(query: Option<&str>) -> Result<QueueQuery, Problem> {
    let mut asked = QueueQuery {
        limit: DEFAULT_LIMIT,
        au: None,
    };
    for (name, value) in query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        match name {
            "limit" => {
                asked.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "limit '{value}' must be a number from 1 to {MAX_LIMIT}"
                        ))
                    })?;
            }
            // Authorized User ids are letters, digits, '-', '_' and '.'
            // (registry::authorized_user), so nothing here needs decoding.
            "au" => {
                let valid = !value.is_empty()
                    && value.len() <= MAX_AU_ID
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !valid {
                    return Err(Problem::bad_request(format!(
                        "au '{}' is not an Authorized User id (1 to {MAX_AU_ID} letters, digits, '-', '_' or '.')",
                        registry::audit::clean(value, MAX_AU_ID)
                    )));
                }
                asked.au = Some(value.to_owned());
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown parameter '{}' (limit, au)",
                    registry::audit::clean(other, MAX_AU_ID)
                )))
            }
        }
    }
    Ok(asked)
}

/// `GET /console/api/review?limit=N&au=ID`: provisional persons, oldest
/// first (with `au`, only those with a source record from that Authorized
/// User), each with its source records and every candidate (their
/// demographics, score and the matcher's explanation); `waiting` counts
/// all that pass the filter, not only the `limit` shown.
pub(crate) async fn queue(
    State(deps): State<Arc<ConsoleDeps>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match reviewer(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let asked = match queue_query(query.as_deref()) {
        Ok(q) => q,
        Err(p) => return p.into_response(),
    };
    let mut event = AuditEvent::new(
        Actor::staff(&session.username),
        "console.review.read",
        Outcome::Success,
        now_ms(),
    );
    if let Some(au) = &asked.au {
        event = event.subject(format!("AuthorizedUser/{au}"));
    }
    if let Err(p) = record_before_showing(&deps, event).await {
        return p.into_response();
    }
    match read_queue(&deps, &asked).await {
        Ok((items, waiting)) => json(
            StatusCode::OK,
            &serde_json::json!({ "queue": items, "waiting": waiting }),
        ),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

async fn read_queue(
    deps: &ConsoleDeps,
    asked: &QueueQuery,
) -> Result<(Vec<serde_json::Value>, u64), store::StoreError> {
    let persons = deps.patients.persons();
    let slice = persons
        .review_queue_slice(asked.au.as_deref(), asked.limit)
        .await?;
    let mut items = Vec::new();
    for person in slice.persons {
        let sources = crate::person_routes::source_views(persons, &person.id).await?;
        let mut candidates = Vec::new();
        for dup in persons.potential_duplicates(&person.id).await? {
            let other = persons.person(&dup.other).await?;
            candidates.push(serde_json::json!({
                "person": other,
                "score": dup.score,
                "evidence": dup.explanation,
                "flagged_at": dup.at,
            }));
        }
        items.push(serde_json::json!({
            "person": person,
            "sources": sources,
            "candidates": candidates,
        }));
    }
    Ok((items, slice.waiting))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    SamePerson,
    DifferentPeople,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    decision: Verdict,
    /// For "same-person": the person the provisional one is merged into.
    #[serde(default)]
    into: Option<String>,
    #[serde(default)]
    reason: String,
}

fn conflict(detail: String) -> Problem {
    Problem::new(StatusCode::CONFLICT, "stale", "Already decided", detail)
}

/// `POST /console/api/review/{person}`: a reviewer's decision. 409 when the
/// person is no longer waiting (someone decided first), with what happened.
pub(crate) async fn decide(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(person_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match reviewer(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_csrf(&session, &headers) {
        return p.into_response();
    }
    let decision: Decision = match json_body(&headers, body) {
        Ok(d) => d,
        Err(p) => return p.into_response(),
    };
    if decision.reason.chars().count() > 1000 {
        return Problem::bad_request("reason must be at most 1000 characters").into_response();
    }
    let action = match decision.decision {
        Verdict::SamePerson => "console.review.merge",
        Verdict::DifferentPeople => "console.review.keep-apart",
    };
    let into = decision.into.clone();
    let outcome = apply(&deps, &session, &person_id, decision).await;
    let mut event = AuditEvent::new(
        Actor::staff(&session.username),
        action,
        if outcome.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        now_ms(),
    )
    .subject(format!("Person/{person_id}"));
    if let Some(into) = into {
        event = event.subject(format!("Person/{into}"));
    }
    if let Err(p) = &outcome {
        event = event.detail(p.detail.clone());
    }
    record(&deps, event).await;
    match outcome {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(p) => p.into_response(),
    }
}

async fn apply(
    deps: &ConsoleDeps,
    session: &StaffSession,
    person_id: &str,
    decision: Decision,
) -> Result<serde_json::Value, Problem> {
    let persons = deps.patients.persons();
    let person = persons
        .person(person_id)
        .await
        .map_err(Problem::unavailable)?
        .ok_or_else(|| Problem::not_found(format!("no person {person_id}")))?;
    match person.status {
        PersonStatus::Provisional => {}
        PersonStatus::Active => {
            return Err(conflict(format!(
                "person {person_id} is no longer waiting: it was kept as a person of its own"
            )))
        }
        PersonStatus::Merged => {
            return Err(conflict(format!(
                "person {person_id} is no longer waiting: it was merged into {}",
                person.merged_into.as_deref().unwrap_or("another person")
            )))
        }
    }
    let now_ms = now_ms();
    let candidates: Vec<String> = persons
        .potential_duplicates(person_id)
        .await
        .map_err(Problem::unavailable)?
        .into_iter()
        .map(|d| d.other)
        .collect();
    // Both sides' source records as they are now, before the decision
    // moves any: the labelled pairs for matching training.
    let sources = persons
        .sources_of(person_id)
        .await
        .map_err(Problem::unavailable)?;
    let (same_person, others, other_sources, answer) = match decision.decision {
        Verdict::SamePerson => {
            let into = decision.into.clone().ok_or_else(|| {
                Problem::bad_request("a same-person decision names the person to merge into: into")
            })?;
            if into == person_id {
                return Err(Problem::bad_request(
                    "a person cannot be merged into itself",
                ));
            }
            let other_sources = persons
                .sources_of(&into)
                .await
                .map_err(Problem::unavailable)?;
            for source in &sources {
                deps.patients
                    .relink(source, Some(&into), now_ms)
                    .await
                    .map_err(|e| match e {
                        RelinkError::UnknownPerson => {
                            Problem::not_found(format!("no person {into} to merge into"))
                        }
                        RelinkError::MergedPerson(target) => conflict(format!(
                            "{into} was itself merged into {target}; merge into that person"
                        )),
                        RelinkError::UnknownSource => {
                            conflict(format!("person {person_id} changed meanwhile; reload"))
                        }
                        RelinkError::Store(e) => Problem::unavailable(e),
                    })?;
            }
            (
                true,
                vec![into.clone()],
                other_sources,
                serde_json::json!({"person": person_id, "decision": "same-person", "merged_into": into}),
            )
        }
        Verdict::DifferentPeople => {
            if decision.into.is_some() {
                return Err(Problem::bad_request(
                    "into is only for a same-person decision",
                ));
            }
            let mut other_sources = Vec::new();
            for candidate in &candidates {
                other_sources.extend(
                    persons
                        .sources_of(candidate)
                        .await
                        .map_err(Problem::unavailable)?,
                );
            }
            deps.patients
                .confirm(person_id, now_ms)
                .await
                .map_err(|e| match e {
                    RelinkError::Store(e) => Problem::unavailable(e),
                    other => conflict(format!("person {person_id}: {other}")),
                })?;
            (
                false,
                candidates,
                other_sources,
                serde_json::json!({"person": person_id, "decision": "different-people", "status": "active"}),
            )
        }
    };
    let record = ReviewDecision {
        person: person_id.to_owned(),
        others,
        same_person,
        reviewer: session.username.clone(),
        reason: decision.reason,
        at_ms: now_ms,
        sources,
        other_sources,
    };
    record_decision(&deps.patients.persons().store_arc(), &record)
        .await
        .map_err(Problem::unavailable)?;
    tracing::info!(staff = %session.username, person = %person_id, same_person, "console: review decision");
    Ok(answer)
}
