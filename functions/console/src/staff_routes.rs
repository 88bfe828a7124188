//! Staff administration (administrators only): list and add staff members.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::staff::{NewStaff, StaffError, StaffRole};
use serde::Deserialize;

use crate::audit_routes::record;
use crate::session::{authenticate, json_body, require_csrf, require_role};
use crate::{json, now, now_ms, ConsoleDeps, Problem};
use registry::audit::{Actor, AuditEvent, Outcome};

/// `GET /console/api/staff`: every staff member and role (never a hash or
/// a secret).
pub(crate) async fn list(State(deps): State<Arc<ConsoleDeps>>, headers: HeaderMap) -> Response {
    let session = match authenticate(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_role(&session, &[StaffRole::Administrator]) {
        return p.into_response();
    }
    match deps.staff.list().await {
        Ok(accounts) => {
            let rows: Vec<serde_json::Value> = accounts
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "username": a.username,
                        "role": a.role,
                        "second_factor": a.totp_secret.is_some(),
                        "created_at": a.created_at,
                    })
                })
                .collect();
            json(StatusCode::OK, &serde_json::json!({ "staff": rows }))
        }
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddStaff {
    username: String,
    role: String,
    password: String,
}

/// `POST /console/api/staff`: add a staff member (201); an administrator's
/// enrolment URI is in the answer, once.
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
    let add: AddStaff = match json_body(&headers, body) {
        Ok(a) => a,
        Err(p) => return p.into_response(),
    };
    let role = match StaffRole::parse(&add.role) {
        Ok(r) => r,
        Err(e) => return Problem::bad_request(e.to_string()).into_response(),
    };
    let added = deps
        .staff
        .add(
            NewStaff {
                username: add.username,
                role,
                password: add.password,
            },
            now(),
        )
        .await;
    match added {
        Ok(enrolled) => {
            record(
                &deps,
                AuditEvent::new(
                    Actor::staff(&session.username),
                    "console.staff.add",
                    Outcome::Success,
                    now_ms(),
                )
                .subject(format!("Staff/{}", enrolled.account.username))
                .detail(format!("role {}", enrolled.account.role)),
            )
            .await;
            tracing::info!(
                staff = %session.username,
                added = %enrolled.account.username,
                role = %enrolled.account.role,
                "console: staff member added"
            );
            json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "username": enrolled.account.username,
                    "role": enrolled.account.role,
                    "totp_uri": enrolled.totp_uri,
                }),
            )
        }
        Err(StaffError::Invalid(m)) => Problem::bad_request(m).into_response(),
        Err(e @ StaffError::UsernameTaken(_)) => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Already exists",
            e.to_string(),
        )
        .into_response(),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}
