//! Authorized Users (administrators): list them, and onboard one while the
//! IIS keeps running (its facilities, its login, and its Group when the
//! jurisdiction's policy gives its kind one).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::{AuError, AuKind, AuthorizedUser, AuthorizedUsers, NewAuthorizedUser};
use serde::Deserialize;

use crate::audit_routes::record;
use crate::session::{json_body, staff_in, Access, ADMINISTRATORS};
use crate::{json, now, now_ms, ConsoleDeps, Problem};
use registry::audit::{Actor, AuditEvent, Outcome};

/// What an administrator sees of an Authorized User (never the password
/// hash).
fn view(au: &AuthorizedUser) -> serde_json::Value {
    serde_json::json!({
        "id": au.id,
        "kind": au.kind,
        "name": au.name,
        "facilities": au.facilities,
        "username": au.username,
        "group": au.group,
        "created_at": au.created_at,
    })
}

/// `GET /console/api/authorized-users`.
pub(crate) async fn list(State(deps): State<Arc<ConsoleDeps>>, headers: HeaderMap) -> Response {
    if let Err(p) = staff_in(&deps, &headers, ADMINISTRATORS, Access::Read).await {
        return p.into_response();
    }
    let users = AuthorizedUsers::new(deps.patients.persons().store_arc());
    match users.list().await {
        Ok(list) => json(
            StatusCode::OK,
            &serde_json::json!({ "authorized_users": list.iter().map(view).collect::<Vec<_>>() }),
        ),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Onboard {
    id: String,
    kind: String,
    name: String,
    facilities: Vec<String>,
    username: String,
    password: String,
}

/// `POST /console/api/authorized-users`: onboard one (201); its Group id is
/// in the answer when the policy gives it one.
pub(crate) async fn add(
    State(deps): State<Arc<ConsoleDeps>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let new: Onboard = match json_body(&headers, body) {
        Ok(n) => n,
        Err(p) => return p.into_response(),
    };
    let Some(kind) = AuKind::parse(&new.kind) else {
        return Problem::bad_request(format!(
            "kind '{}' is not one of {}",
            new.kind,
            AuKind::ALL.map(|k| k.as_str()).join(", ")
        ))
        .into_response();
    };
    if new.facilities.is_empty() {
        return Problem::bad_request("an Authorized User sends for at least one facility")
            .into_response();
    }
    let users = AuthorizedUsers::new(deps.patients.persons().store_arc());
    let onboarded = registry::membership::onboard(
        &users,
        NewAuthorizedUser {
            id: new.id,
            kind,
            name: new.name,
            facilities: new.facilities,
            username: new.username,
            password: new.password,
        },
        now(),
        &deps.policy,
    )
    .await;
    match onboarded {
        Ok(au) => {
            tracing::info!(staff = %session.username, authorized_user = %au.id, "console: Authorized User onboarded");
            record(
                &deps,
                AuditEvent::new(
                    Actor::staff(&session.username),
                    "console.authorized-user.add",
                    Outcome::Success,
                    now_ms(),
                )
                .subject(format!("AuthorizedUser/{}", au.id)),
            )
            .await;
            json(StatusCode::CREATED, &view(&au))
        }
        Err(AuError::Invalid(m)) => Problem::bad_request(m).into_response(),
        Err(
            e @ (AuError::AlreadyExists(_) | AuError::UsernameTaken(_) | AuError::FacilityTaken(_)),
        ) => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Already exists",
            e.to_string(),
        )
        .into_response(),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Edit {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    add_facilities: Vec<String>,
    #[serde(default)]
    remove_facilities: Vec<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `PATCH /console/api/authorized-users/{au}`: rename, add or remove
/// facilities, reset the HL7 password; all of it or nothing (200 with the
/// Authorized User as it now is).
pub(crate) async fn edit(
    State(deps): State<Arc<ConsoleDeps>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let edit: Edit = match json_body(&headers, body) {
        Ok(e) => e,
        Err(p) => return p.into_response(),
    };
    let change = registry::AuEdit {
        name: edit.name,
        add_facilities: edit.add_facilities,
        remove_facilities: edit.remove_facilities,
        password: edit.password,
    };
    if change == registry::AuEdit::default() {
        return Problem::bad_request(
            "nothing to change: give name, add_facilities, remove_facilities or password",
        )
        .into_response();
    }
    // What changed, in words (never the password).
    let mut what = Vec::new();
    if change.name.is_some() {
        what.push("name".to_owned());
    }
    if !change.add_facilities.is_empty() {
        what.push(format!(
            "facilities added: {}",
            change.add_facilities.join(", ")
        ));
    }
    if !change.remove_facilities.is_empty() {
        what.push(format!(
            "facilities removed: {}",
            change.remove_facilities.join(", ")
        ));
    }
    if change.password.is_some() {
        what.push("HL7 password reset".to_owned());
    }
    let users = AuthorizedUsers::new(deps.patients.persons().store_arc());
    match users.edit(&id, &change).await {
        Ok(au) => {
            record(
                &deps,
                AuditEvent::new(
                    Actor::staff(&session.username),
                    "console.authorized-user.edit",
                    Outcome::Success,
                    now_ms(),
                )
                .subject(format!("AuthorizedUser/{id}"))
                .detail(what.join("; ")),
            )
            .await;
            json(StatusCode::OK, &view(&au))
        }
        Err(AuError::Invalid(m)) => Problem::bad_request(m).into_response(),
        Err(AuError::NotFound(_)) => {
            Problem::not_found(format!("no Authorized User '{id}'")).into_response()
        }
        Err(e @ AuError::FacilityTaken(_)) => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Already exists",
            e.to_string(),
        )
        .into_response(),
        Err(AuError::Store(e)) if e.is_condition_failed() => Problem::new(
            StatusCode::CONFLICT,
            "stale",
            "Changed meanwhile",
            format!("Authorized User '{id}' changed while this edit was made; read it again"),
        )
        .into_response(),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}
