//! `POST /hl7`: one ER7 message in the body, its answer in the response.
//!
//! Any message with a readable MSH gets an HL7 answer with HTTP 200, AE and
//! AR included: the HL7 answer is the error report. HTTP errors are kept for
//! what HL7 cannot express: no credentials (401, checked before the body is
//! read), no MSH (400), too large (413), wrong media type (415), and a store
//! that cannot take the message right now (503: nothing was acknowledged,
//! send again).

use crate::auth::basic_credentials;
use crate::body::{read_limited, BodyError};
use crate::IngestDeps;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use registry::{AuthError, IntakeError, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The ER7 media types the guide's transports use, in order of preference.
const ER7_TYPES: [&str; 3] = [
    "application/hl7-v2",
    "x-application/hl7-v2+er7",
    "text/plain",
];

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    let mut r = (status, text.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn unauthorized(text: &str) -> Response {
    let mut r = plain(StatusCode::UNAUTHORIZED, text);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"iisbulk\", charset=\"UTF-8\""),
    );
    r
}

/// The request's ER7 media type (answered in kind), or `None` if unsupported.
fn er7_type(headers: &HeaderMap) -> Result<&'static str, String> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        // curl --data-binary without -H sends form type; a missing type is
        // taken as the standard one rather than refused.
        return Ok(ER7_TYPES[0]);
    };
    let ct = ct.to_str().unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ER7_TYPES
        .iter()
        .find(|t| **t == mime)
        .copied()
        .ok_or_else(|| {
            format!(
                "Content-Type '{ct}' is not accepted; send the HL7 v2 message as {}",
                ER7_TYPES.join(", ")
            )
        })
}

pub(crate) async fn post_hl7(
    State(deps): State<Arc<IngestDeps>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = crate::source(peer);
    let started = Instant::now();
    let (user, password) = match basic_credentials(&headers) {
        Ok(c) => c,
        Err(why) => return unauthorized(why),
    };
    let au = match deps.credentials.authenticate(&user, &password).await {
        Ok(au) => au,
        Err(AuthError::BadCredentials) => {
            tracing::info!(route = "/hl7", outcome = "bad-credentials", "refused");
            crate::audit_refused_login(&deps, "/hl7", &user, source.as_deref()).await;
            return unauthorized("invalid username or password");
        }
        Err(AuthError::Store(e)) => {
            tracing::error!(route = "/hl7", error = %e, "credential store unavailable");
            return unavailable();
        }
    };
    let media_type = match er7_type(&headers) {
        Ok(t) => t,
        Err(why) => return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, why),
    };
    let limit = deps.config.max_message_bytes;
    let bytes = match read_limited(body, limit).await {
        Ok(b) => b,
        Err(BodyError::TooLarge { seen }) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the message ({seen} bytes or more) is larger than this IIS accepts ({limit} bytes); split it into several messages"),
            )
        }
        Err(BodyError::Broken) => {
            return plain(StatusCode::BAD_REQUEST, "the request body could not be read")
        }
    };
    match deps
        .intake
        .receive_from(
            &au,
            &Transport::Rest,
            &bytes,
            crate::now(),
            source.as_deref(),
        )
        .await
    {
        Ok(d) => {
            tracing::info!(
                route = "/hl7",
                au = %au.id,
                ack = d.ack_code.code(),
                accepted = d.accepted,
                duplicate = d.duplicate,
                micros = started.elapsed().as_micros() as u64,
                "answered"
            );
            let mut r = (StatusCode::OK, d.answer).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
            r
        }
        Err(IntakeError::Unreadable(why)) => {
            tracing::info!(route = "/hl7", au = %au.id, outcome = "unreadable", "refused");
            plain(StatusCode::BAD_REQUEST, why)
        }
        Err(IntakeError::Store(e)) => {
            tracing::error!(route = "/hl7", au = %au.id, error = %e, "store failed; not acknowledged");
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    let mut r = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the IIS could not store the message right now; nothing was acknowledged, please send it again",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}
