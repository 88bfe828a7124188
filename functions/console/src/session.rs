//! Logging in and out, and what every other route asks of a request: a
//! live session, the right role, and for changes its CSRF token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::staff::{StaffError, StaffRole, StaffSession};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::audit_routes::record;
use registry::audit::{Actor, ActorKind, AuditEvent, Outcome};

use crate::{json, now, now_ms, ConsoleDeps, Problem, CSRF_HEADER, MAX_BODY_BYTES, SESSION_COOKIE};

/// The session cookie's value in a `Cookie` header, if any.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// The live session of this request, or 401.
pub(crate) async fn authenticate(
    deps: &ConsoleDeps,
    headers: &HeaderMap,
) -> Result<StaffSession, Problem> {
    let token = session_token(headers).ok_or_else(Problem::unauthenticated)?;
    match deps.staff.session(&token, now()).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Problem::unauthenticated()),
        Err(e) => Err(Problem::unavailable(e)),
    }
}

/// 403 unless the session's role is one of `roles`.
pub(crate) fn require_role(session: &StaffSession, roles: &[StaffRole]) -> Result<(), Problem> {
    if roles.contains(&session.role) {
        return Ok(());
    }
    let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(Problem::forbidden(format!(
        "this needs the {} role; you are logged in as a {}",
        allowed.join(" or "),
        session.role
    )))
}

/// Who administers Authorized Users, clients, Groups and staff.
pub(crate) const ADMINISTRATORS: &[StaffRole] = &[StaffRole::Administrator];
/// Who reads the audit trail.
pub(crate) const AUDITORS: &[StaffRole] = &[StaffRole::Auditor];

/// Whether a request reads or changes: a change must carry the CSRF token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Change,
}

/// The session of a staff member in one of `roles`; for a change, with its
/// CSRF token. 401, 403 or 403 `csrf` otherwise.
pub(crate) async fn staff_in(
    deps: &ConsoleDeps,
    headers: &HeaderMap,
    roles: &[StaffRole],
    access: Access,
) -> Result<StaffSession, Problem> {
    let session = authenticate(deps, headers).await?;
    require_role(&session, roles)?;
    if access == Access::Change {
        require_csrf(&session, headers)?;
    }
    Ok(session)
}

/// 403 unless the request carries the session's CSRF token: a page of
/// another site can make the browser send the cookie, not read the token.
pub(crate) fn require_csrf(session: &StaffSession, headers: &HeaderMap) -> Result<(), Problem> {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !presented.is_empty() && session.csrf_matches(presented) {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "Missing or wrong CSRF token",
        format!("send the session's csrf_token in the {CSRF_HEADER} header with every change"),
    ))
}

/// A JSON request body, or a problem saying what is wrong with it.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Problem> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
                format!("the console accepts bodies of at most {MAX_BODY_BYTES} bytes"),
            )
        } else {
            Problem::bad_request(format!("the request body could not be read: {rejection}"))
        }
    })?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("the JSON body is not valid here: {e}")))
}

fn cookie(deps: &ConsoleDeps, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if deps.secure_cookies { "; Secure" } else { "" };
    let path = &deps.cookie_path;
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

fn session_json(session: &StaffSession) -> serde_json::Value {
    serde_json::json!({
        "username": session.username,
        "role": session.role,
        "csrf_token": session.csrf_token,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    username: String,
    password: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /console/api/session`: log in.
pub(crate) async fn login(
    State(deps): State<Arc<ConsoleDeps>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let login: Login = match json_body(&headers, body) {
        Ok(l) => l,
        Err(p) => return p.into_response(),
    };
    let outcome = deps
        .staff
        .login(
            &login.username,
            &login.password,
            login.code.as_deref(),
            now(),
        )
        .await;
    let (token, session) = match outcome {
        Ok(ok) => ok,
        Err(e) => {
            tracing::info!(staff = %login.username, outcome = %e, "console login refused");
            if !matches!(e, StaffError::SecondFactorRequired) {
                // The name typed, cut short: it may be nobody's.
                let typed: String = login.username.chars().take(64).collect();
                let actor = Actor {
                    kind: ActorKind::Unauthenticated,
                    id: typed,
                };
                let event = AuditEvent::new(actor, "console.login", Outcome::Failure, now_ms())
                    .detail(e.to_string());
                record(&deps, event).await;
            }
            return login_problem(e).into_response();
        }
    };
    record(
        &deps,
        AuditEvent::new(
            Actor::staff(&session.username),
            "console.login",
            Outcome::Success,
            now_ms(),
        )
        .detail(format!("role {}", session.role)),
    )
    .await;
    tracing::info!(staff = %session.username, role = %session.role, "console login");
    let mut response = json(StatusCode::OK, &session_json(&session));
    if let Some(c) = cookie(&deps, &token, deps.staff.absolute_seconds) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

fn login_problem(e: StaffError) -> Problem {
    match e {
        StaffError::BadLogin => Problem::new(
            StatusCode::UNAUTHORIZED,
            "login-failed",
            "Login failed",
            e.to_string(),
        ),
        StaffError::SecondFactorRequired => Problem::new(
            StatusCode::UNAUTHORIZED,
            "second-factor-required",
            "Code needed",
            e.to_string(),
        ),
        StaffError::Locked { retry_after } => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "locked",
                "Too many failed logins",
                e.to_string(),
            );
            p.retry_after = Some(retry_after);
            p
        }
        StaffError::Invalid(m) => Problem::bad_request(m),
        other => Problem::unavailable(other),
    }
}

/// `GET /console/api/session`: who is logged in (and the CSRF token, for a
/// page loaded after login).
pub(crate) async fn current(State(deps): State<Arc<ConsoleDeps>>, headers: HeaderMap) -> Response {
    match authenticate(&deps, &headers).await {
        Ok(session) => json(StatusCode::OK, &session_json(&session)),
        Err(p) => p.into_response(),
    }
}

/// `DELETE /console/api/session`: log out (the session ends on the server,
/// and the cookie is cleared).
pub(crate) async fn logout(State(deps): State<Arc<ConsoleDeps>>, headers: HeaderMap) -> Response {
    let session = match authenticate(&deps, &headers).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if let Err(p) = require_csrf(&session, &headers) {
        return p.into_response();
    }
    let token = session_token(&headers).unwrap_or_default();
    if let Err(e) = deps.staff.logout(&token).await {
        return Problem::unavailable(e).into_response();
    }
    tracing::info!(staff = %session.username, "console logout");
    record(
        &deps,
        AuditEvent::new(
            Actor::staff(&session.username),
            "console.logout",
            Outcome::Success,
            now_ms(),
        ),
    )
    .await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = cookie(&deps, "", 0) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; iisbulk_console=abc123 ; other=x"),
        );
        assert_eq!(session_token(&headers).as_deref(), Some("abc123"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("iisbulk_consoleX=1"),
        );
        assert_eq!(session_token(&headers), None);
    }
}
