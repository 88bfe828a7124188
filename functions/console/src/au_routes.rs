//! Authorized Users (administrators): list them, and onboard one while the
//! IIS keeps running (its facilities, its login, and its Group when the
//! jurisdiction's policy gives its kind one).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::staff::StaffRole;
use registry::{AuError, AuKind, AuthorizedUser, AuthorizedUsers, NewAuthorizedUser};
use serde::Deserialize;

use crate::audit_routes::record;
use crate::session::{authenticate, json_body, require_csrf, require_role};
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
    let session = match authenticate(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_role(&session, &[StaffRole::Administrator]) {
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
    let session = match authenticate(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_role(&session, &[StaffRole::Administrator])
        .and_then(|()| require_csrf(&session, &headers))
    {
        return p.into_response();
    }
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
