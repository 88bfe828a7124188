//! SMART Backend Services over HTTP: discovery and the token endpoint.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use registry::smart::{scopes::RESOURCE_TYPES, OAuthError, TokenRequest};
use serde_json::json;

use crate::rate_limit::Decision;
use crate::BulkDeps;

/// A JSON body (OAuth and SMART documents are plain JSON, not FHIR).
fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": e.code(), "error_description": e.description()});
    let r = json_response(status, &body);
    if let OAuthError::Unavailable(detail) = e {
        tracing::warn!(error = %detail, "token endpoint: storage unavailable");
    }
    no_store(r)
}

/// 429 with `Retry-After`. The body is an OAuth error (SMART Backend
/// Services answers token errors with RFC 6749 §5.2 codes, which have none
/// for rate limits: `invalid_request`, the status says why).
fn rate_limited(retry_after_seconds: u64) -> Response {
    let body = json!({
        "error": "invalid_request",
        "error_description": format!(
            "too many token requests from this address; retry after {retry_after_seconds} seconds"
        ),
    });
    let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    no_store(r)
}

/// Said once per process: the token endpoint runs without a per-source
/// limit when the transport gives no address.
static NO_ADDRESS_WARNED: AtomicBool = AtomicBool::new(false);

/// `POST /auth/token` (form-encoded, RFC 6749 §4.4 with RFC 7523 client
/// authentication), rate limited per caller address before anything is
/// read. The assertion and the issued token are never logged.
pub async fn token(
    State(deps): State<Arc<BulkDeps>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    match source {
        Some(ip) => {
            if let Decision::Limited {
                retry_after_seconds,
            } = deps.token_limiter.check(ip, Instant::now())
            {
                tracing::debug!(source = %ip, retry_after_seconds, "token request rate limited");
                return rate_limited(retry_after_seconds);
            }
        }
        None => {
            if !NO_ADDRESS_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "token endpoint: the transport gives no caller address, so requests are not rate limited per source"
                );
            }
        }
    }
    let source = source.map(|ip| ip.to_string());
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_encoded {
        return oauth_error(&OAuthError::InvalidRequest(
            "the token request must be application/x-www-form-urlencoded".into(),
        ));
    }
    let req: TokenRequest = match serde_urlencoded::from_bytes(&body) {
        Ok(r) => r,
        Err(e) => return oauth_error(&OAuthError::InvalidRequest(format!("unreadable form: {e}"))),
    };
    let now = iz::Clock::now().unix_seconds;
    match deps.tokens.issue(&req, now, source.as_deref()).await {
        Ok(issued) => {
            tracing::info!(scope = %issued.scope, "access token issued");
            no_store(json_response(StatusCode::OK, &issued))
        }
        Err(e) => {
            tracing::info!(error = e.code(), "token request refused");
            oauth_error(&e)
        }
    }
}

/// `GET /fhir/.well-known/smart-configuration`.
pub async fn smart_configuration(State(deps): State<Arc<BulkDeps>>) -> Response {
    let mut scopes = vec!["system/*.read".to_owned(), "system/*.rs".to_owned()];
    for t in RESOURCE_TYPES {
        scopes.push(format!("system/{t}.read"));
        scopes.push(format!("system/{t}.rs"));
    }
    // Changing the client's own Group's members, for clients registered
    // for it.
    scopes.push("system/Group.u".to_owned());
    scopes.push("system/Group.write".to_owned());
    let body = json!({
        "issuer": deps.public_url,
        "token_endpoint": deps.tokens.token_url(),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": scopes,
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /fhir/metadata`: what this server does, and where its token
/// endpoint is (the SMART `oauth-uris` extension). Public, as FHIR expects.
pub async fn metadata(State(deps): State<Arc<BulkDeps>>) -> Response {
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": iz::Clock::now().instant(),
        "kind": "instance",
        "software": {"name": "iisbulk", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {
            "description": "Immunization Information System: Authorized User Groups from HL7 v2 traffic",
            "url": deps.fhir_base(),
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": deps.tokens.token_url()}],
                }],
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                }]}],
                "description": "SMART Backend Services (client_credentials with a private_key_jwt assertion, RS384 or ES384); system read scopes (ImmunizationRecommendation for $immds-forecast; Patient search for Patient/$match), and system/Group.u (or .write) to change the caller's own Group's members, for clients registered for it",
            },
            "resource": [
                {"type": "Group", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [{"name": "identifier", "type": "token"}]},
                {"type": "Patient", "interaction": [{"code": "read"}]},
                {"type": "Immunization", "interaction": [{"code": "search-type"}],
                 "searchParam": [{"name": "patient", "type": "reference"}]},
            ],
            "operation": [{
                "name": "immds-forecast",
                "definition": fhir::IMMDS_FORECAST_OPERATION,
                "documentation": "CDC CDSi evaluation and forecast (POST a Parameters resource): supplied data (a Patient with birthDate and its Immunizations, CVX-coded) needs no registry access; a patient parameter that is a valueReference Patient/<id> (or a Patient holding only its id) forecasts a member of the caller's Group from its consolidated history. assessmentDate defaults to today. Needs system/ImmunizationRecommendation.read (or .r/.rs). Every evaluation and recommendation names the CDSi supporting data it used in its description."
            }],
        }],
    });
    let mut body = body;
    if deps.exports.is_some() {
        body["instantiates"] =
            json!(["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]);
        body["rest"][0]["resource"][0]["operation"] = json!([{
            "name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
            "documentation": "Exports the caller's own Group (Patient, Immunization, Group, Organization; ImmunizationRecommendation, each patient's CDC CDSi forecast as of the transaction date, when _type names it) as NDJSON. transactionTime is when the export started; a record changed later is left for the next export. With _since: records changed after it, every resource of patients who joined the Group after it, and patients who left it (single association) in `deleted`. Parameters: _outputFormat (ndjson), _since, _type, _elements (top-level), patient (POST), _typeFilter, allowPartialManifests, organizeOutputBy (Patient: each patient's resources in one file after a Parameters header referencing it), includeAssociatedData=LatestProvenanceResources or RelevantProvenanceResources (one Provenance per exported Patient and Immunization, listing every message behind it: the Authorized Users whose messages it came from, and those messages). _typeFilter search parameters (queries of one type ORed, parameters of one query ANDed; only for export, not REST search): Immunization date (occurrence date; prefixes eq ne gt lt ge le sa eb), vaccine-code (token; CVX http://hl7.org/fhir/sid/cvx), status; Patient _lastUpdated (the record's last change; same prefixes). allowPartialManifests=true: a poll of a running export answers 202 with a manifest of the files finished so far, later files in manifests linked by next. Not supported: other includeAssociatedData values, _until, organizeOutputBy other than Patient; Prefer: handling=lenient ignores unsupported parameters and reports them in `error`. Files are stored gzip: a download with Accept-Encoding gzip gets Content-Encoding: gzip, any other plain NDJSON."
        }]);
    }
    // Client-managed membership and patient matching.
    let group_operations = [
        json!({
            "name": "member-add",
            "definition": "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/member-add",
            "documentation": "Adds a patient to the caller's own Group (POST Parameters): patientReference (Patient/<id>), memberId (the caller's chart number as its VXUs carry it) or patient (a Patient resource matched as Patient/$match; a certain match only). Refused unless the registry holds a relationship between the caller and the patient as the jurisdiction counts them (a VXU, a query or $match), or, where the jurisdiction allows it, an attestation parameter states one; kept in the membership's provenance. providerNpi, providerReference and attributionPeriod are accepted and ignored. Needs system/Group.u (or .write)."
        }),
        json!({
            "name": "member-remove",
            "definition": "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/member-remove",
            "documentation": "Removes a patient from the caller's own Group (named as for member-add; reason optional), or every member with reset = true (the Bulk Retrieval of Public Health Data guide's reset). The removal is kept with its time and reason. Needs system/Group.u (or .write)."
        }),
    ];
    match body["rest"][0]["resource"][0]["operation"].as_array_mut() {
        Some(ops) => ops.extend(group_operations),
        None => body["rest"][0]["resource"][0]["operation"] = json!(group_operations),
    }
    if deps.queries.is_some() {
        body["rest"][0]["resource"][1]["operation"] = json!([{
            "name": "match",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match",
            "documentation": "Matches a Patient (POST Parameters: resource, onlyCertainMatches, count) with the registry's matcher and rules, as a Z34 is matched; a family name and birth date are required. A certain match comes with its demographics and the caller's own identifiers; possible matches are withheld (counted in an OperationOutcome entry) or listed with Z31 demographics, as the jurisdiction decides. Entries carry search.score (certain from 0.9, possible from 0.5) and the match-grade extension. Needs system/Patient.rs (or .read)."
        }]);
    }
    if let Some(jobs) = &deps.bulk_match {
        let op = json!({
            "name": "bulk-match",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/bulk-match",
            "documentation": format!("Matches many Patients asynchronously (Bulk Data IG bulk match): POST Parameters with Prefer: respond-async, 1 to {} resource parameters (each a Patient with your own id), onlyCertainMatches, onlySingleMatch and count for all, _outputFormat NDJSON; 202 with a status URL whose manifest lists NDJSON files of one searchset Bundle per input patient, as Patient/$match answers it, its meta's match-resource extension referencing the input patient by your id. A lookup only: it makes no Group relationship. At most {} running per Authorized User (429 otherwise); bodies over {} bytes are refused (413). Needs system/Patient.rs (or .read).", jobs.max_patients, jobs.max_active_per_au, jobs.max_body_bytes)
        });
        match body["rest"][0]["resource"][1]["operation"].as_array_mut() {
            Some(ops) => ops.push(op),
            None => body["rest"][0]["resource"][1]["operation"] = json!([op]),
        }
    }
    crate::response::resource(StatusCode::OK, &body)
}
