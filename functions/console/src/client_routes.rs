//! An Authorized User's SMART Backend Services clients (administrators):
//! list, register (an inline JWKS or a JWKS URL), rotate keys, remove. The
//! private keys never come here: the client publishes public keys only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::audit::{Actor, AuditEvent, Outcome};
use registry::smart::{Client, ClientError, Clients};
use registry::staff::StaffSession;
use registry::AuthorizedUsers;
use serde::Deserialize;

use crate::audit_routes::record;
use crate::session::{json_body, staff_in, Access, ADMINISTRATORS};
use crate::{json, now_ms, ConsoleDeps, Problem};

/// The scope a new client may be granted when none is named (read-only, as
/// `iisbulk client add`).
const DEFAULT_SCOPE: &str = "system/*.rs";

fn view(client: &Client) -> serde_json::Value {
    serde_json::json!({
        "id": client.id,
        "authorized_user": client.au,
        "scope": client.scope,
        "jwks_url": client.jwks_url,
        "key_ids": client.jwks.as_ref().map(|set| set
            .keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_default())
            .collect::<Vec<_>>()),
        "created_at": client.created_at,
    })
}

fn client_problem(e: ClientError) -> Problem {
    match e {
        ClientError::Invalid(m) => Problem::bad_request(m),
        ClientError::NotFound(id) => Problem::not_found(format!("no client '{id}'")),
        ClientError::Store(e) => Problem::unavailable(e),
    }
}

async fn known_au(deps: &ConsoleDeps, au: &str) -> Result<(), Problem> {
    let users = AuthorizedUsers::new(deps.patients.persons().store_arc());
    match users.get(au).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Problem::not_found(format!("no Authorized User '{au}'"))),
        Err(e) => Err(Problem::unavailable(e)),
    }
}

async fn audit(deps: &ConsoleDeps, session: &StaffSession, action: &str, client: &Client) {
    record(
        deps,
        AuditEvent::new(
            Actor::staff(&session.username),
            action,
            Outcome::Success,
            now_ms(),
        )
        .subject(format!("Client/{}", client.id))
        .subject(format!("AuthorizedUser/{}", client.au)),
    )
    .await;
}

/// `GET /console/api/authorized-users/{au}/clients`.
pub(crate) async fn list(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(au): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = staff_in(&deps, &headers, ADMINISTRATORS, Access::Read).await {
        return p.into_response();
    }
    if let Err(p) = known_au(&deps, &au).await {
        return p.into_response();
    }
    match Clients::new(deps.patients.persons().store_arc())
        .of_au(&au)
        .await
    {
        Ok(clients) => json(
            StatusCode::OK,
            &serde_json::json!({ "clients": clients.iter().map(view).collect::<Vec<_>>() }),
        ),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

/// A JWKS as a JSON object, or as the text of one (a pasted file).
#[derive(Deserialize)]
#[serde(untagged)]
enum JwksBody {
    Object(serde_json::Map<String, serde_json::Value>),
    Text(String),
}

impl JwksBody {
    fn text(&self) -> String {
        match self {
            JwksBody::Object(map) => serde_json::Value::Object(map.clone()).to_string(),
            JwksBody::Text(text) => text.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewClient {
    #[serde(default)]
    jwks: Option<JwksBody>,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /console/api/authorized-users/{au}/clients`: registers a client
/// (201, with its new `client_id` as `id`).
pub(crate) async fn add(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(au): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let new: NewClient = match json_body(&headers, body) {
        Ok(n) => n,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = known_au(&deps, &au).await {
        return p.into_response();
    }
    let jwks = new.jwks.as_ref().map(JwksBody::text);
    let added = Clients::new(deps.patients.persons().store_arc())
        .add(
            &au,
            jwks.as_deref(),
            new.jwks_url.as_deref().filter(|u| !u.is_empty()),
            new.scope.as_deref().unwrap_or(DEFAULT_SCOPE),
            now_ms(),
        )
        .await;
    match added {
        Ok(client) => {
            audit(&deps, &session, "console.client.add", &client).await;
            json(StatusCode::CREATED, &view(&client))
        }
        Err(e) => client_problem(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKeys {
    jwks: JwksBody,
}

/// `PUT /console/api/clients/{client}/jwks`: the client's new public keys
/// (rotation: tokens are signed with the new keys from now on).
pub(crate) async fn rotate(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let keys: NewKeys = match json_body(&headers, body) {
        Ok(k) => k,
        Err(p) => return p.into_response(),
    };
    let clients = Clients::new(deps.patients.persons().store_arc());
    match clients.get(&client_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return Problem::not_found(format!("no client '{client_id}'")).into_response(),
        Err(e) => return Problem::unavailable(e).into_response(),
    }
    match clients.set_jwks(&client_id, &keys.jwks.text()).await {
        Ok(client) => {
            audit(&deps, &session, "console.client.rotate-keys", &client).await;
            json(StatusCode::OK, &view(&client))
        }
        Err(e) => client_problem(e).into_response(),
    }
}

/// `DELETE /console/api/clients/{client}`: the client can no longer get
/// tokens (204).
pub(crate) async fn remove(
    State(deps): State<Arc<ConsoleDeps>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let session = match staff_in(&deps, &headers, ADMINISTRATORS, Access::Change).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let clients = Clients::new(deps.patients.persons().store_arc());
    let client = match clients.get(&client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Problem::not_found(format!("no client '{client_id}'")).into_response(),
        Err(e) => return Problem::unavailable(e).into_response(),
    };
    match clients.remove(&client_id).await {
        Ok(()) => {
            audit(&deps, &session, "console.client.remove", &client).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => client_problem(e).into_response(),
    }
}
