//! Bulk Data export over HTTP (FHIR Bulk Data Access IG v2.0.0): kick-off,
//! status and manifest, cancel, and file downloads, all bound to the
//! caller's own Group.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use registry::export::{parameters_of, ExportJob, JobError, JobStatus, KickOff, Poll, Problem};
use serde_json::json;

use crate::caller::{caller, Need};
use crate::response::{failure, not_found, resource, unavailable};
use crate::BulkDeps;

fn problems(list: &[Problem]) -> Response {
    let outcome = fhir::OperationOutcome {
        resource_type: fhir::OperationOutcomeType,
        id: None,
        issue: list
            .iter()
            .map(|p| fhir::Issue {
                severity: "error".into(),
                code: "invalid".into(),
                diagnostics: Some(p.message.clone()),
                expression: vec![p.what.clone()],
            })
            .collect(),
    };
    resource(StatusCode::BAD_REQUEST, &outcome)
}

fn header_values(headers: &HeaderMap, name: header::HeaderName) -> Vec<&str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

pub async fn kick_off_get(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    uri: Uri,
    axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    kick_off(&deps, &id, &uri.to_string(), query, false, &headers).await
}

pub async fn kick_off_post(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return problems(&[Problem {
                what: "body".into(),
                message: "a POST kick-off body must be a FHIR Parameters resource in JSON".into(),
            }])
        }
    };
    match parameters_of(&parsed) {
        Ok(params) => kick_off(&deps, &id, &uri.to_string(), params, true, &headers).await,
        Err(p) => problems(&[p]),
    }
}

async fn kick_off(
    deps: &BulkDeps,
    group: &str,
    uri: &str,
    params: Vec<(String, String)>,
    post: bool,
    headers: &HeaderMap,
) -> Response {
    let au = match caller(deps, headers, Need::Read("Group")).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    if au.group.as_deref() != Some(group) {
        return not_found(&format!("Group/{group}"));
    }
    let Some(jobs) = &deps.exports else {
        return failure(
            StatusCode::NOT_IMPLEMENTED,
            "not-supported",
            "Bulk export is not configured on this deployment",
        );
    };
    let now_ms = iz::Clock::now().unix_seconds * 1000;
    let kick = KickOff {
        accept: headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        prefer: header_values(headers, header::HeaderName::from_static("prefer")),
        params,
        post,
    };
    let request = match kick.check(now_ms) {
        Ok(r) => r,
        Err(list) => return problems(&list),
    };
    for p in &request.patients {
        match deps.groups.member(group, p).await {
            Ok(Some(m)) if m.active => {}
            Ok(_) => {
                return problems(&[Problem {
                    what: "patient".into(),
                    message: format!("Patient/{p} is not a member of Group/{group}"),
                }])
            }
            Err(e) => return unavailable(e),
        }
    }
    let request_url = format!("{}{}", deps.public_url, uri);
    match jobs
        .create(&au.id, group, request, &request_url, now_ms)
        .await
    {
        Ok(job) => {
            let location = format!("{}/bulkstatus/{}", deps.fhir_base(), job.id);
            let mut r = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::CONTENT_LOCATION, v);
            }
            r
        }
        Err(JobError::TooMany(n)) => {
            let mut r = failure(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("{n} exports are already running for this Authorized User; retry when one finishes"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        Err(JobError::Store(e)) => unavailable(e),
    }
}

/// The caller's job, or the response to send instead.
async fn own_job(
    deps: &BulkDeps,
    headers: &HeaderMap,
    id: &str,
    need: Need,
) -> Result<ExportJob, Response> {
    let au = caller(deps, headers, need).await?;
    let Some(jobs) = &deps.exports else {
        return Err(not_found(&format!("export {id}")));
    };
    match jobs.get(id).await {
        Ok(Some(job)) if job.au == au.id && job.status != JobStatus::Cancelled => Ok(job),
        Ok(_) => Err(not_found(&format!("export {id}"))),
        Err(e) => Err(unavailable(e)),
    }
}

fn http_date(epoch_seconds: i64) -> String {
    httpdate::fmt_http_date(
        UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch_seconds).unwrap_or(0)),
    )
}

pub async fn status(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = own_job(&deps, &headers, &id, Need::Read("Group")).await {
        return r;
    }
    let Some(jobs) = &deps.exports else {
        return not_found(&format!("export {id}"));
    };
    let now_ms = store::limits::now_epoch_millis();
    let (job, first) = match jobs.polled(&id, now_ms, jobs.min_poll_interval_ms).await {
        Ok(Some(Poll::Answered { job, first })) => (*job, first),
        Ok(Some(Poll::TooSoon { wait_ms })) => {
            let mut r = failure(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "the export status was polled too soon after the previous poll; wait for Retry-After",
            );
            let secs = (wait_ms.max(0) as u64).div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Ok(None) => return not_found(&format!("export {id}")),
        Err(e) => return unavailable(e),
    };
    // The first poll is always "in progress", even for a tiny Group.
    if first || job.is_active() {
        let mut r = StatusCode::ACCEPTED.into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&job.progress()) {
            h.insert("x-progress", v);
        }
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return r;
    }
    if job.status == JobStatus::Failed {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            job.failure.unwrap_or_else(|| "the export failed".into()),
        );
    }
    let base = deps.fhir_base();
    // Where the blob store can mint short-lived URLs (S3), each poll mints
    // fresh ones and the files need no token; otherwise the API serves them.
    let presigned = match jobs.presign_for {
        Some(ttl) => match presign_all(jobs, &job, ttl).await {
            Ok(urls) => urls,
            Err(e) => return unavailable(e),
        },
        None => None,
    };
    let file = |f: &registry::export::OutputFile| {
        let url = match presigned.as_ref().and_then(|p| p.get(&f.key)) {
            Some(u) => u.clone(),
            None => {
                let name = f
                    .key
                    .strip_prefix(&format!("{}/", job.prefix()))
                    .unwrap_or(&f.key);
                format!("{base}/bulkfiles/{}/{name}", job.id)
            }
        };
        json!({"type": f.resource_type, "url": url, "count": f.count})
    };
    let mut manifest = json!({
        "transactionTime": registry::resources::instant(job.transaction_time_ms),
        "request": job.request_url,
        "requiresAccessToken": presigned.is_none(),
        "output": job.files.output.iter().map(file).collect::<Vec<_>>(),
        "error": job.files.error.iter().map(file).collect::<Vec<_>>(),
    });
    if job.request.since_ms.is_some() {
        manifest["deleted"] = json!(job.files.deleted.iter().map(file).collect::<Vec<_>>());
    }
    let body = serde_json::to_vec(&manifest).unwrap_or_default();
    let mut r = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&http_date(job.expires_at)) {
        r.headers_mut().insert(header::EXPIRES, v);
    }
    r
}

/// Presigned URLs of every file of a job, by blob key; `None` if the blob
/// store cannot mint them.
async fn presign_all(
    jobs: &registry::export::ExportJobs,
    job: &ExportJob,
    ttl: Duration,
) -> Result<Option<std::collections::HashMap<String, String>>, store::StoreError> {
    let mut urls = std::collections::HashMap::new();
    for f in job
        .files
        .output
        .iter()
        .chain(&job.files.deleted)
        .chain(&job.files.error)
    {
        match jobs.blobs().presigned_get(&f.key, ttl).await? {
            Some(url) => {
                urls.insert(f.key.clone(), url);
            }
            None => return Ok(None),
        }
    }
    Ok(Some(urls))
}

pub async fn cancel(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = own_job(&deps, &headers, &id, Need::Read("Group")).await {
        return r;
    }
    let Some(jobs) = &deps.exports else {
        return not_found(&format!("export {id}"));
    };
    match jobs.cancel(&id).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => unavailable(e),
    }
}

pub async fn file(
    State(deps): State<Arc<BulkDeps>>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    // `Patient.001.ndjson` or `deleted/Bundle.001.ndjson`: its type's scope.
    let base_name = name.rsplit('/').next().unwrap_or("");
    let resource_type = base_name.split('.').next().unwrap_or("");
    let need = match resource_type {
        "Patient" => Need::Read("Patient"),
        "Immunization" => Need::Read("Immunization"),
        "ImmunizationRecommendation" => Need::Read("ImmunizationRecommendation"),
        "Organization" => Need::Read("Organization"),
        "Group" => Need::Read("Group"),
        "Bundle" => Need::Read("Patient"),
        // Errors about the caller's own request.
        "OperationOutcome" => Need::Read("Group"),
        _ => return not_found(&format!("file {name}")),
    };
    let job = match own_job(&deps, &headers, &id, need).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let key = format!("{}/{name}", job.prefix());
    let listed = job
        .files
        .output
        .iter()
        .chain(&job.files.deleted)
        .chain(&job.files.error)
        .any(|f| f.key == key);
    let Some(jobs) = &deps.exports else {
        return not_found(&format!("file {name}"));
    };
    if job.status != JobStatus::Completed || !listed {
        return not_found(&format!("file {name}"));
    }
    match jobs.blobs().get(&key).await {
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
