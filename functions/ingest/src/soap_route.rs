//! `POST /soap` and `GET /soap?wsdl`: the CDC IIS SOAP web service.
//!
//! Bad credentials always get a SecurityFault, never an HL7 answer; a message
//! over the size limit gets a MessageTooLargeFault; anything that is not a
//! well-formed request gets the specific fault the `soap` crate chooses.

use crate::body::{read_limited, BodyError};
use crate::IngestDeps;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use registry::{AuthError, IntakeError, Transport};
use soap::{FaultKind, Request, SoapVersion};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

fn xml(status: u16, content_type: &'static str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn fault(kind: FaultKind, message: &str, version: SoapVersion) -> Response {
    xml(
        kind.http_status(version),
        version.content_type(),
        soap::fault(kind, message, version),
    )
}

/// XML escaping can make the envelope several times larger than the HL7
/// message inside it (`&` → `&amp;`, CR → `&#13;`).
fn envelope_limit(max_message: usize) -> usize {
    max_message.saturating_mul(6).saturating_add(64 * 1024)
}

pub(crate) async fn post_soap(
    State(deps): State<Arc<IngestDeps>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = crate::source(peer);
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(SoapVersion::from_content_type)
        .unwrap_or_default();
    let limit = deps.config.max_message_bytes;
    let envelope_max = envelope_limit(limit);
    let bytes = match read_limited(body, envelope_max).await {
        Ok(b) => b,
        Err(BodyError::Broken) => {
            return fault(
                FaultKind::Sender,
                "The request body could not be read",
                declared,
            )
        }
        Err(BodyError::TooLarge { seen }) => {
            let size = seen as u64;
            tracing::info!(route = "/soap", outcome = "too-large", "refused");
            return fault(
                FaultKind::MessageTooLarge {
                    size,
                    limit: limit as u64,
                },
                &format!("The request is larger than this IIS accepts (HL7 messages up to {limit} bytes)"),
                declared,
            );
        }
    };
    let request = match soap::parse_request(&bytes) {
        Ok(r) => r,
        Err(e) => {
            let version = e.version().unwrap_or(declared);
            tracing::info!(route = "/soap", outcome = "bad-request", "refused");
            return fault(e.fault_kind(), e.message(), version);
        }
    };
    match request {
        Request::ConnectivityTest { version, echo_back } => xml(
            200,
            version.content_type(),
            soap::connectivity_test_response(&echo_back, version),
        ),
        Request::SubmitSingleMessage {
            version,
            username,
            password,
            facility_id,
            hl7_message,
        } => {
            submit(
                &deps,
                version,
                &username,
                &password,
                facility_id,
                hl7_message,
                source.as_deref(),
            )
            .await
        }
    }
}

async fn submit(
    deps: &IngestDeps,
    version: SoapVersion,
    username: &str,
    password: &str,
    facility_id: Option<String>,
    hl7_message: String,
    source: Option<&str>,
) -> Response {
    let au = match deps.credentials.authenticate(username, password).await {
        Ok(au) => au,
        Err(AuthError::BadCredentials) => {
            tracing::info!(route = "/soap", outcome = "bad-credentials", "refused");
            crate::audit_refused_login(deps, "/soap", username, source).await;
            return fault(FaultKind::Security, "Invalid username or password", version);
        }
        Err(AuthError::Store(e)) => {
            tracing::error!(route = "/soap", error = %e, "credential store unavailable");
            return fault(
                FaultKind::Unknown,
                "The IIS could not check credentials right now; please send the message again",
                version,
            );
        }
    };
    let limit = deps.config.max_message_bytes;
    if hl7_message.len() > limit {
        return fault(
            FaultKind::MessageTooLarge {
                size: hl7_message.len() as u64,
                limit: limit as u64,
            },
            &format!(
                "The HL7 message is {} bytes; this IIS accepts up to {limit}",
                hl7_message.len()
            ),
            version,
        );
    }
    let transport = match facility_id.filter(|f| !f.is_empty()) {
        Some(facility_id) => Transport::Soap { facility_id },
        None => Transport::Rest,
    };
    match deps
        .intake
        .receive_from(
            &au,
            &transport,
            hl7_message.as_bytes(),
            crate::now(),
            source,
        )
        .await
    {
        Ok(d) => {
            tracing::info!(
                route = "/soap",
                au = %au.id,
                ack = d.ack_code.code(),
                accepted = d.accepted,
                duplicate = d.duplicate,
                "answered"
            );
            xml(
                200,
                version.content_type(),
                soap::submit_single_message_response(&d.answer, version),
            )
        }
        Err(IntakeError::Unreadable(why)) => fault(FaultKind::Sender, &why, version),
        Err(IntakeError::Store(e)) => {
            tracing::error!(route = "/soap", au = %au.id, error = %e, "store failed; not acknowledged");
            fault(
                FaultKind::Unknown,
                "The IIS could not store the message right now; nothing was acknowledged, please send it again",
                version,
            )
        }
    }
}

/// `GET /soap?wsdl` (and plain `GET /soap`): the WSDL, addressed to us.
pub(crate) async fn get_wsdl(
    State(deps): State<Arc<IngestDeps>>,
    Query(_query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = match &deps.config.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let proto = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            format!("{proto}://{host}")
        }
    };
    let mut r = soap::wsdl(&format!("{base}/soap")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(soap::WSDL_CONTENT_TYPE),
    );
    r
}
