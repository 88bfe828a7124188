//! A person's page (reviewers and administrators): demographics, source
//! records and their links, the consolidated history with the reports
//! behind each event, Group memberships, potential duplicates; and the
//! unmerge of one source record.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::membership::Groups;
use registry::patients::decisions::{record_decision, ReviewDecision};
use registry::patients::RelinkError;
use registry::staff::StaffRole;
use serde::Deserialize;

use crate::audit_routes::{record, record_before_showing};
use crate::session::{authenticate, json_body, require_csrf, require_role};
use crate::{json, now_ms, ConsoleDeps, Problem};
use registry::audit::{Actor, AuditEvent, Outcome};

const READERS: &[StaffRole] = &[StaffRole::Reviewer, StaffRole::Administrator];

/// `GET /console/api/persons/{id}`.
pub(crate) async fn show(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(person_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let session = match authenticate(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_role(&session, READERS) {
        return p.into_response();
    }
    let event = AuditEvent::new(
        Actor::staff(&session.username),
        "console.person.read",
        Outcome::Success,
        now_ms(),
    )
    .subject(format!("Person/{person_id}"));
    if let Err(p) = record_before_showing(&deps, event).await {
        return p.into_response();
    }
    match read(&deps, &person_id).await {
        Ok(Some(page)) => json(StatusCode::OK, &page),
        Ok(None) => Problem::not_found(format!("no person {person_id}")).into_response(),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

/// A person's source records as the console shows them: which Authorized
/// User reported each, how it was linked, and its own demographics.
pub(crate) async fn source_views(
    persons: &registry::persons::Persons,
    person_id: &str,
) -> Result<Vec<serde_json::Value>, store::StoreError> {
    let mut sources = Vec::new();
    for id in persons.sources_of(person_id).await? {
        if let Some(s) = persons.source(&id).await? {
            sources.push(serde_json::json!({
                "id": s.id,
                "authorized_user": s.au,
                "link": s.link,
                "linked_from": s.link_from,
                "demographics": s.demographics,
                "first_message": s.first_message,
                "last_message": s.last_message,
                "updated_at": s.updated_at,
            }));
        }
    }
    Ok(sources)
}

async fn read(
    deps: &ConsoleDeps,
    person_id: &str,
) -> Result<Option<serde_json::Value>, store::StoreError> {
    let persons = deps.patients.persons();
    let Some(person) = persons.person(person_id).await? else {
        return Ok(None);
    };
    let sources = source_views(persons, person_id).await?;
    let history = persons.history(person_id).await?;
    let duplicates = persons.potential_duplicates(person_id).await?;
    let groups = Groups::new(persons.store_arc())
        .of_person(person_id)
        .await?;
    Ok(Some(serde_json::json!({
        "person": person,
        "sources": sources,
        "immunizations": history,
        "potential_duplicates": duplicates,
        "groups": groups,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Unmerge {
    /// The source record to give a person of its own.
    source: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/api/persons/{id}/unmerge` `{"source"}`: the source record
/// leaves this person for a new person of its own (a manual link the
/// matcher never re-decides); both histories are rebuilt.
pub(crate) async fn unmerge(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(person_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match authenticate(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_role(&session, READERS).and_then(|()| require_csrf(&session, &headers))
    {
        return p.into_response();
    }
    let request: Unmerge = match json_body(&headers, body) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let persons = deps.patients.persons();
    let source = match persons.source(&request.source).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Problem::not_found(format!("no source record {}", request.source))
                .into_response()
        }
        Err(e) => return Problem::unavailable(e).into_response(),
    };
    if source.person != person_id {
        return Problem::new(
            StatusCode::CONFLICT,
            "stale",
            "Already changed",
            format!(
                "source record {} is not linked to {person_id} (it is linked to {})",
                request.source, source.person
            ),
        )
        .into_response();
    }
    let sources = match persons.sources_of(&person_id).await {
        Ok(s) => s,
        Err(e) => return Problem::unavailable(e).into_response(),
    };
    if sources.len() < 2 {
        return Problem::new(
            StatusCode::CONFLICT,
            "only-source",
            "Nothing to unmerge",
            format!(
                "{} is the only source record of {person_id}",
                request.source
            ),
        )
        .into_response();
    }
    match deps.patients.relink(&request.source, None, now_ms()).await {
        Ok(new_person) => {
            // Kept like a queue decision: these two are different people.
            let decision = ReviewDecision {
                person: new_person.clone(),
                others: vec![person_id.clone()],
                same_person: false,
                reviewer: session.username.clone(),
                reason: request.reason.clone(),
                at_ms: now_ms(),
                sources: vec![request.source.clone()],
                other_sources: sources
                    .iter()
                    .filter(|s| **s != request.source)
                    .cloned()
                    .collect(),
            };
            if let Err(e) = record_decision(&persons.store_arc(), &decision).await {
                return Problem::unavailable(e).into_response();
            }
            record(
                &deps,
                AuditEvent::new(
                    Actor::staff(&session.username),
                    "console.person.unmerge",
                    Outcome::Success,
                    now_ms(),
                )
                .subject(format!("Person/{person_id}"))
                .subject(format!("Person/{new_person}")),
            )
            .await;
            tracing::info!(
                staff = %session.username,
                person = %person_id,
                new_person = %new_person,
                reason_given = !request.reason.is_empty(),
                "console: unmerge"
            );
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "source": request.source,
                    "from": person_id,
                    "person": new_person,
                    "link": "manual",
                }),
            )
        }
        Err(RelinkError::Store(e)) => Problem::unavailable(e).into_response(),
        Err(e) => Problem::new(
            StatusCode::CONFLICT,
            "stale",
            "Already changed",
            format!("source record {}: {e}", request.source),
        )
        .into_response(),
    }
}
