//! An Authorized User's Group (administrators): its members with the
//! evidence that added each (and, for those removed, when and why), the
//! removal of one member and the reset of the whole Group, the "online
//! portal" of the Bulk Retrieval of Public Health Data guide. A removal is
//! kept as the member's history; a later VXU or query from the Authorized
//! User is new evidence and adds the patient again, as the policy says.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::audit::{Actor, AuditEvent, Outcome};
use registry::membership::{GroupRecord, Groups, Member};
use registry::staff::StaffSession;
use serde::Deserialize;
use store::Cursor;

use crate::audit_routes::{record, record_before_showing};
use crate::session::{json_body, staff_in, Access, ADMINISTRATORS};
use crate::{json, now_ms, ConsoleDeps, Problem};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;
async fn group(deps: &ConsoleDeps, id: &str) -> Result<(Groups, GroupRecord), Problem> {
    let groups = Groups::new(deps.patients.persons().store_arc());
    match groups.get(id).await {
        Ok(Some(g)) => Ok((groups, g)),
        Ok(None) => Err(Problem::not_found(format!("no Group '{id}'"))),
        Err(e) => Err(Problem::unavailable(e)),
    }
}

struct Listing {
    limit: u32,
    after: Option<Cursor>,
    removed_too: bool,
}

fn listing(query: Option<&str>) -> Result<Listing, Problem> {
    let mut l = Listing {
        limit: DEFAULT_LIMIT,
        after: None,
        removed_too: false,
    };
    for (name, value) in query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        match name {
            "limit" => {
                l.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "limit '{value}' must be a number from 1 to {MAX_LIMIT}"
                        ))
                    })?
            }
            "after" if !value.is_empty() => l.after = Some(Cursor::new(value)),
            "removed" => {
                l.removed_too = match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(Problem::bad_request(format!(
                            "removed '{value}' must be true or false"
                        )))
                    }
                }
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown parameter '{other}' (limit, after, removed)"
                )))
            }
        }
    }
    Ok(l)
}

/// A member as the console shows it: the evidence, and the person's name
/// and birth date so the administrator knows whom a removal concerns.
async fn member_view(deps: &ConsoleDeps, m: &Member) -> Result<serde_json::Value, Problem> {
    let person = deps
        .patients
        .persons()
        .person(&m.person)
        .await
        .map_err(Problem::unavailable)?;
    Ok(serde_json::json!({
        "member": m,
        "name": person.as_ref().map(|p| &p.demographics.name.value),
        "birth_date": person.as_ref().map(|p| &p.demographics.birth_date.value),
    }))
}

/// `GET /console/api/groups/{group}?limit=N&after=CURSOR&removed=true`: the
/// Group, its size, and one page of members (active only unless
/// `removed=true`), with `next` for the following page.
pub(crate) async fn show(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Read).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let listing = match listing(query.as_deref()) {
        Ok(l) => l,
        Err(p) => return p.into_response(),
    };
    let (groups, record) = match group(&deps, &id).await {
        Ok(g) => g,
        Err(p) => return p.into_response(),
    };
    let event = AuditEvent::new(
        Actor::staff(&session.username),
        "console.group.read",
        Outcome::Success,
        now_ms(),
    )
    .subject(format!("Group/{id}"));
    if let Err(p) = record_before_showing(&deps, event).await {
        return p.into_response();
    }
    let quantity = match groups.quantity(&id).await {
        Ok(q) => q,
        Err(e) => return Problem::unavailable(e).into_response(),
    };
    let (page, next) = match groups.members(&id, listing.after, listing.limit).await {
        Ok(p) => p,
        Err(e) => return Problem::unavailable(e).into_response(),
    };
    let mut members = Vec::new();
    for m in page.iter().filter(|m| listing.removed_too || m.active) {
        match member_view(&deps, m).await {
            Ok(v) => members.push(v),
            Err(p) => return p.into_response(),
        }
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "group": record,
            "quantity": quantity,
            "members": members,
            "next": next.map(Cursor::into_string),
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Removal {
    #[serde(default)]
    reason: String,
}

fn because(session: &StaffSession, reason: &str) -> String {
    if reason.trim().is_empty() {
        format!("removed by {} at the console", session.username)
    } else {
        format!(
            "removed by {} at the console: {}",
            session.username,
            reason.trim()
        )
    }
}

fn removal(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Removal, Problem> {
    let r: Removal = json_body(headers, body)?;
    if r.reason.chars().count() > 500 {
        return Err(Problem::bad_request(
            "reason must be at most 500 characters",
        ));
    }
    Ok(r)
}

/// `POST /console/api/groups/{group}/members/{person}/remove` `{"reason"?}`:
/// ends one membership (200); 404 if the person never was a member, 409 if
/// already removed.
pub(crate) async fn remove(
    State(deps): State<Arc<ConsoleDeps>>,
    Path((id, person)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let r = match removal(&headers, body) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let (groups, _) = match group(&deps, &id).await {
        Ok(g) => g,
        Err(p) => return p.into_response(),
    };
    match groups.member(&id, &person).await {
        Ok(Some(m)) if m.active => {}
        Ok(Some(m)) => {
            return Problem::new(
                StatusCode::CONFLICT,
                "stale",
                "Already removed",
                format!(
                    "person {person} already left Group {id}: {}",
                    m.removed_because.unwrap_or_default()
                ),
            )
            .into_response()
        }
        Ok(None) => {
            return Problem::not_found(format!("person {person} is not a member of Group {id}"))
                .into_response()
        }
        Err(e) => return Problem::unavailable(e).into_response(),
    }
    let why = because(&session, &r.reason);
    match groups.remove(&id, &person, now_ms(), &why).await {
        Ok(removed) => {
            record(
                &deps,
                AuditEvent::new(
                    Actor::staff(&session.username),
                    "console.group.remove-member",
                    Outcome::Success,
                    now_ms(),
                )
                .subject(format!("Group/{id}"))
                .subject(format!("Person/{person}"))
                .detail(r.reason.clone()),
            )
            .await;
            json(
                StatusCode::OK,
                &serde_json::json!({ "group": id, "person": person, "removed": removed }),
            )
        }
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

/// `POST /console/api/groups/{group}/reset` `{"reason"?}`: removes every
/// active member (the guide's reset, for clients that re-establish their
/// panel each cycle); answers how many left.
pub(crate) async fn reset(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let r = match removal(&headers, body) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let (groups, _) = match group(&deps, &id).await {
        Ok(g) => g,
        Err(p) => return p.into_response(),
    };
    let why = because(&session, &r.reason);
    let (removed, outcome) = match groups.reset(&id, now_ms(), &why).await {
        Ok(n) => (n, Ok(())),
        Err((n, e)) => (n, Err(e)),
    };
    // Recorded whether or not it finished: some members may have left.
    let mut event = AuditEvent::new(
        Actor::staff(&session.username),
        "console.group.reset",
        if outcome.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        now_ms(),
    )
    .subject(format!("Group/{id}"))
    .detail(format!("{removed} member(s) removed; {}", r.reason));
    if let Err(e) = &outcome {
        event = event.detail(format!("{removed} member(s) removed, then: {e}"));
    }
    record(&deps, event).await;
    match outcome {
        Ok(()) => json(
            StatusCode::OK,
            &serde_json::json!({ "group": id, "removed": removed }),
        ),
        Err(e) => Problem::unavailable(format!(
            "{removed} member(s) removed before the store failed ({e}); reset again to finish"
        ))
        .into_response(),
    }
}
