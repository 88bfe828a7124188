//! `POST [base]/Patient/$bulk-match` (Bulk Data IG, bulk match):
//! kick-off (`Prefer: respond-async`, a Parameters of Patients each with the
//! client's id), status and manifest, cancel and file downloads, bound to
//! the caller's own Authorized User. The jobs are
//! `registry::bulk_match::BulkMatchJobs`; each output line is the searchset
//! Bundle a `Patient/$match` of that patient would answer, naming the
//! input patient by the client's id in the IG's `match-resource` extension
//! on `Bundle.meta`.
//!
//! Audited: every kick-off (`fhir.patient-bulk-match`, the job as subject,
//! the number of patients in the detail, never who they are), manifest,
//! cancel and download, and every refusal. Polls still in progress (202)
//! are not: they disclose nothing and a client makes many.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use registry::audit::clean;
use registry::bulk_match::{output_key, BulkMatchError, BulkMatchJob, BulkMatchStatus};
use registry::fhir_match::parse_bulk_match_request;
use serde_json::{json, Value};

use crate::audited::{Audit, Peer};
use crate::caller::{caller, Need};
use crate::response::{failure, json_body, not_found, problem, unavailable};
use crate::BulkDeps;

/// Matching is a search over the registry's patients, as `$match` is.
const NEED: Need = Need::Search("Patient");

fn not_served() -> Response {
    failure(
        StatusCode::NOT_IMPLEMENTED,
        "not-supported",
        "Patient/$bulk-match is not served by this deployment",
    )
}

fn too_large(why: String) -> Response {
    failure(StatusCode::PAYLOAD_TOO_LARGE, "too-costly", why)
}

fn invalid(expression: &str, why: &str) -> Response {
    problem(&registry::problem::bad(expression, why))
}

pub async fn kick_off(
    State(deps): State<Arc<BulkDeps>>,
    uri: Uri,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.patient-bulk-match", &peer);
    let (r, job) = match start(&deps, &uri, &headers, body, &mut audit).await {
        Ok(job) => {
            audit.subject("BulkMatchJob", &job);
            (accepted(&deps, &job), Some(job))
        }
        Err(r) => (r, None),
    };
    match audit.finish_checked(r).await {
        Ok(r) => r,
        Err(unrecorded) => {
            // No audit, no job.
            if let (Some(job), Some(jobs)) = (job, &deps.bulk_match) {
                if let Err(e) = jobs.cancel(&job).await {
                    tracing::warn!(error = %e, job = %job, "unaudited bulk match not cancelled");
                }
            }
            unrecorded
        }
    }
}

fn status_url(deps: &BulkDeps, job: &str) -> String {
    format!("{}/bulkmatch-status/{job}", deps.fhir_base())
}

fn accepted(deps: &BulkDeps, job: &str) -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url(deps, job)) {
        r.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    r
}

/// Whether a header list holds `respond-async` (Prefer may carry several
/// preferences, comma-separated, over several headers).
fn respond_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// `Accept` absent, or naming FHIR JSON (what the status and errors are).
fn accepts_fhir_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(v) = v.to_str() else {
        return false;
    };
    v.split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .any(|t| {
            t.eq_ignore_ascii_case("application/fhir+json")
                || t.eq_ignore_ascii_case("application/json")
                || t == "*/*"
        })
}

/// The new job's id, or the response to send instead.
async fn start(
    deps: &BulkDeps,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    audit: &mut Audit<'_>,
) -> Result<String, Response> {
    let au = caller(deps, headers, NEED, audit).await?;
    let Some(jobs) = &deps.bulk_match else {
        return Err(not_served());
    };
    if !respond_async(headers) {
        audit.detail("bad request: Prefer");
        return Err(invalid(
            "Prefer",
            "Patient/$bulk-match is asynchronous: send Prefer: respond-async",
        ));
    }
    if !accepts_fhir_json(headers) {
        audit.detail("bad request: Accept");
        return Err(invalid(
            "Accept",
            "Accept must be application/fhir+json (or absent)",
        ));
    }
    if !json_body(headers) {
        return Err(failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "the body must be a Parameters resource as application/fhir+json",
        ));
    }
    let body = match body {
        Ok(b) if b.len() <= jobs.max_body_bytes => b,
        Ok(b) => {
            audit.detail(format!("body of {} bytes", b.len()));
            return Err(too_large(format!(
                "the body is over this server's {} bytes for one $bulk-match: split the request",
                jobs.max_body_bytes
            )));
        }
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            audit.detail("body over the byte limit");
            return Err(too_large(format!(
                "the body is over this server's {} bytes for one $bulk-match: split the request",
                jobs.max_body_bytes
            )));
        }
        Err(_) => return Err(invalid("body", "the body could not be read")),
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        audit.detail("bad request: body");
        return Err(invalid(
            "body",
            "the body is not JSON: a Parameters resource with the Patients to match is expected",
        ));
    };
    drop(body);
    let request =
        match parse_bulk_match_request(&json, &deps.policy.identifier_base, jobs.max_patients) {
            Ok(r) => r,
            Err(p) => {
                // The parameter at fault only (never a value: it may be PHI).
                audit.detail(format!("bad request: {}", clean(&p.expression, 64)));
                return Err(problem(&p));
            }
        };
    drop(json);
    audit.detail(format!(
        "patients: {}; onlyCertainMatches: {}; count: {}",
        request.patients.len(),
        request.only_certain,
        request.count
    ));
    let now_ms = store::limits::now_epoch_millis();
    let request_url = format!("{}{}", deps.public_url, uri);
    match jobs.create(&au.id, &request, &request_url, now_ms).await {
        Ok(job) => {
            tracing::info!(job = %job.id, patients = job.patients, "bulk match accepted");
            Ok(job.id)
        }
        Err(BulkMatchError::TooMany(n)) => {
            let mut r = failure(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("{n} bulk match(es) already running for this Authorized User (the most at once); retry when one finishes"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            Err(r)
        }
        Err(BulkMatchError::Store(e)) => Err(unavailable(e)),
    }
}

/// The caller's own job, or the response to send instead (another
/// Authorized User's job, or a cancelled one, is not found).
async fn own_job(
    deps: &BulkDeps,
    headers: &HeaderMap,
    id: &str,
    audit: &mut Audit<'_>,
) -> Result<BulkMatchJob, Response> {
    let au = caller(deps, headers, NEED, audit).await?;
    let Some(jobs) = &deps.bulk_match else {
        return Err(not_found(&format!("bulk match {id}")));
    };
    match jobs.get(id).await {
        Ok(Some(job)) if job.au == au.id && job.status != BulkMatchStatus::Cancelled => Ok(job),
        Ok(_) => Err(not_found(&format!("bulk match {id}"))),
        Err(e) => Err(unavailable(e)),
    }
}

/// A status poll: 202 with `X-Progress` while running, the manifest when
/// done (audited as `fhir.patient-bulk-match.manifest`).
pub async fn status(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.patient-bulk-match.manifest", &peer);
    audit.subject("BulkMatchJob", &id);
    let r = poll(&deps, &id, &headers, &mut audit).await;
    if r.status() == StatusCode::ACCEPTED {
        return r;
    }
    audit.finish(r).await
}

async fn poll(deps: &BulkDeps, id: &str, headers: &HeaderMap, audit: &mut Audit<'_>) -> Response {
    let job = match own_job(deps, headers, id, audit).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    if job.is_active() {
        let mut r = StatusCode::ACCEPTED.into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&job.progress()) {
            h.insert("x-progress", v);
        }
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return r;
    }
    if job.status == BulkMatchStatus::Failed {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            job.failure
                .unwrap_or_else(|| "the bulk match failed".into()),
        );
    }
    let base = deps.fhir_base();
    // Where the blob store mints short-lived URLs (S3, whose files Lambda's
    // 6 MB response could not carry), each poll mints fresh ones and the
    // files need no token; otherwise the API serves them.
    let presigned = match deps.bulk_match.as_ref() {
        Some(jobs) => match jobs.presign_for {
            Some(ttl) => {
                let keys: Vec<String> = job
                    .files
                    .iter()
                    .map(|f| output_key(&job.id, &f.name))
                    .collect();
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                match store::presigned_urls(jobs.blobs(), &keys, ttl).await {
                    Ok(urls) => urls,
                    Err(e) => return unavailable(e),
                }
            }
            None => None,
        },
        None => None,
    };
    let output: Vec<Value> = job
        .files
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let url = match presigned.as_ref().and_then(|urls| urls.get(n)) {
                Some(u) => u.clone(),
                None => format!("{base}/bulkmatch-files/{}/{}", job.id, f.name),
            };
            json!({"type": "Bundle", "url": url, "count": f.count})
        })
        .collect();
    let manifest = json!({
        "transactionTime": registry::resources::instant(job.transaction_time_ms),
        "request": job.request_url,
        "requiresAccessToken": presigned.is_none(),
        "output": output,
        "error": [],
    });
    audit.detail(format!(
        "manifest: {} output files, {} patients; {}",
        job.files.len(),
        job.patients,
        if presigned.is_some() {
            "presigned URLs"
        } else {
            "served with the token"
        }
    ));
    crate::response::manifest(&manifest, job.expires_at)
}

/// `DELETE` of a job (running or done), audited as
/// `fhir.patient-bulk-match.cancel`.
pub async fn cancel(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.patient-bulk-match.cancel", &peer);
    audit.subject("BulkMatchJob", &id);
    let r = match own_job(&deps, &headers, &id, &mut audit).await {
        Err(r) => r,
        Ok(_) => match &deps.bulk_match {
            Some(jobs) => match jobs.cancel(&id).await {
                Ok(_) => StatusCode::ACCEPTED.into_response(),
                Err(e) => unavailable(e),
            },
            None => not_found(&format!("bulk match {id}")),
        },
    };
    audit.finish(r).await
}

/// A file download, audited as `fhir.patient-bulk-match.download` before
/// its first byte is sent: no audit, no file.
pub async fn file(
    State(deps): State<Arc<BulkDeps>>,
    Path((id, name)): Path<(String, String)>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.patient-bulk-match.download", &peer);
    audit.subject("BulkMatchJob", &id);
    audit.detail(format!("file {}", clean(&name, 128)));
    let r = download(&deps, &id, &name, &headers, &mut audit).await;
    audit.finish(r).await
}

async fn download(
    deps: &BulkDeps,
    id: &str,
    name: &str,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let job = match own_job(deps, headers, id, audit).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let Some(jobs) = &deps.bulk_match else {
        return not_found(&format!("file {name}"));
    };
    // Only a file the manifest lists: never a key the caller made up.
    if job.status != BulkMatchStatus::Completed || !job.files.iter().any(|f| f.name == name) {
        return not_found(&format!("file {name}"));
    }
    match jobs.blobs().get(&output_key(id, name)).await {
        Ok(Some((reader, len))) => {
            let stream = tokio_util::io::ReaderStream::new(reader);
            let mut r = Response::new(Body::from_stream(stream));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+ndjson"),
            );
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                h.insert(header::CONTENT_LENGTH, v);
            }
            r
        }
        Ok(None) => not_found(&format!("file {name}")),
        Err(e) => unavailable(e),
    }
}
