//! FHIR responses: resources as `application/fhir+json`, and every error as
//! an OperationOutcome with the status that fits.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fhir::OperationOutcome;
use serde::Serialize;

pub const FHIR_JSON: &str = "application/fhir+json";

pub fn resource<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
            bytes,
        )
            .into_response(),
        Err(e) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            format!("the response could not be written: {e}"),
        ),
    }
}

/// A completed asynchronous request's manifest (export, bulk match): 200,
/// `application/json` (the Bulk Data IG's media type for it), and
/// `Expires` when its files go (`expires_at`, epoch seconds).
pub fn manifest(body: &serde_json::Value, expires_at: i64) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&http_date(expires_at)) {
        r.headers_mut().insert(header::EXPIRES, v);
    }
    r
}

/// An HTTP date (`Expires`) from epoch seconds.
fn http_date(epoch_seconds: i64) -> String {
    httpdate::fmt_http_date(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(epoch_seconds).unwrap_or(0)),
    )
}

/// An OperationOutcome (`code` from the FHIR IssueType value set).
pub fn failure(status: StatusCode, code: &str, diagnostics: impl Into<String>) -> Response {
    let outcome = OperationOutcome::error(code, diagnostics);
    let body = serde_json::to_vec(&outcome).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body,
    )
        .into_response()
}

/// Storage trouble: the client may retry; details go to the log only.
pub fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "FHIR read failed on storage");
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "transient",
        "storage is temporarily unavailable; retry shortly",
    )
}

pub fn not_found(what: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("{what} not found"),
    )
}

/// A request the registry could not take ([`registry::problem::Problem`]),
/// as an OperationOutcome naming the parameter at fault.
pub fn problem(p: &registry::problem::Problem) -> Response {
    let outcome = fhir::OperationOutcome {
        resource_type: fhir::OperationOutcomeType,
        id: None,
        issue: vec![fhir::Issue {
            severity: "error".into(),
            code: p.code.into(),
            diagnostics: Some(p.message.clone()),
            expression: vec![p.expression.clone()],
        }],
    };
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    resource(status, &outcome)
}

/// Whether the request body is declared FHIR JSON (or plain JSON).
pub fn json_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|t| {
            t.eq_ignore_ascii_case("application/fhir+json")
                || t.eq_ignore_ascii_case("application/json")
        })
}

/// An informational OperationOutcome: what an operation did.
pub fn done(diagnostics: impl Into<String>) -> Response {
    resource(
        StatusCode::OK,
        &OperationOutcome::single("information", "informational", diagnostics),
    )
}

/// The request body, or the OperationOutcome to answer when it could not
/// be read: over the size limit (413, `too-long`) or broken in transit.
pub fn body_of(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, Box<Response>> {
    body.map_err(|rejection| {
        let status = rejection.status();
        Box::new(if status == StatusCode::PAYLOAD_TOO_LARGE {
            failure(
                status,
                "too-long",
                "the request body is larger than this server accepts (2 MB); send fewer or smaller resources",
            )
        } else {
            failure(
                status,
                "invalid",
                format!("the request body could not be read: {}", rejection.body_text()),
            )
        })
    })
}

/// A FHIR operation's body as JSON: 415 unless it is declared FHIR JSON,
/// 400 when it does not parse (`expected` says what should have come).
pub fn json_parameters(
    headers: &HeaderMap,
    body: &[u8],
    expected: &str,
) -> Result<serde_json::Value, Box<Response>> {
    if !json_body(headers) {
        return Err(Box::new(failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "the body must be a Parameters resource as application/fhir+json",
        )));
    }
    serde_json::from_slice(body).map_err(|_| {
        Box::new(failure(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("the body is not JSON: {expected}"),
        ))
    })
}
