//! Bulk Data export over HTTP (FHIR Bulk Data Access IG v2.0.0): kick-off,
//! status and manifest, cancel, and file downloads, all bound to the
//! caller's own Group.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use registry::export::{
    parameters_of, ExportJob, JobError, JobStatus, KickOff, PageAnswer, Poll, Problem, BY_PATIENT,
};
use serde_json::json;

use crate::audited::{Audit, Peer};
use crate::caller::{caller, Need};
use crate::response::{failure, not_found, resource, unavailable};
use crate::BulkDeps;
use registry::audit::clean;

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
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    audited_kick_off(&deps, &id, &uri.to_string(), query, false, &peer, &headers).await
}

pub async fn kick_off_post(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    uri: Uri,
    peer: Peer,
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
        Ok(params) => {
            audited_kick_off(&deps, &id, &uri.to_string(), params, true, &peer, &headers).await
        }
        Err(p) => problems(&[p]),
    }
}

/// A kick-off, audited as `fhir.export.kick-off` (subjects the Group and
/// the new job, `ExportJob/<id>`; the detail its parameters). A job whose
/// event cannot be stored is cancelled and the client told to retry: no
/// audit, no export.
async fn audited_kick_off(
    deps: &BulkDeps,
    group: &str,
    uri: &str,
    params: Vec<(String, String)>,
    post: bool,
    peer: &Peer,
    headers: &HeaderMap,
) -> Response {
    let mut audit = Audit::new(deps, "fhir.export.kick-off", peer);
    audit.subject("Group", group);
    let (r, job) = match kick_off_job(deps, group, uri, params, post, headers, &mut audit).await {
        Ok(job) => {
            audit.subject("ExportJob", &job);
            (accepted(deps, &job), Some(job))
        }
        Err(r) => (r, None),
    };
    match audit.finish_checked(r).await {
        Ok(r) => r,
        Err(unrecorded) => {
            if let (Some(job), Some(jobs)) = (job, &deps.exports) {
                if let Err(e) = jobs.cancel(&job).await {
                    tracing::warn!(error = %e, job = %job, "unaudited export not cancelled");
                }
            }
            unrecorded
        }
    }
}

/// What an export asks for, in words for the audit trail (parameter names
/// and our own type names; `_since` as a checked instant).
fn kick_off_detail(request: &registry::export::ExportRequest, post: bool) -> String {
    let types = if request.types.is_empty() {
        "default".to_owned()
    } else {
        request
            .types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut detail = format!(
        "{} _type={types}; _since={}",
        if post { "POST" } else { "GET" },
        request
            .since
            .as_deref()
            .map_or_else(|| "none".to_owned(), |s| clean(s, 40))
    );
    if !request.elements.is_empty() {
        detail.push_str(&format!("; _elements: {}", request.elements.len()));
    }
    if !request.patients.is_empty() {
        detail.push_str(&format!("; patient: {}", request.patients.len()));
    }
    // How many queries, never their values (a filter may hold a date or a
    // code that narrows the export to a person).
    if !request.type_filters.is_empty() {
        detail.push_str(&format!("; _typeFilter: {}", request.type_filters.len()));
    }
    if request.allow_partial_manifests {
        detail.push_str("; allowPartialManifests");
    }
    if request.organize_by_patient {
        detail.push_str("; organizeOutputBy=Patient");
    }
    detail
}

/// 202 with the new job's status URL.
fn accepted(deps: &BulkDeps, job: &str) -> Response {
    let location = format!("{}/bulkstatus/{job}", deps.fhir_base());
    let mut r = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    r
}

/// The new job's id, or the response to send instead.
async fn kick_off_job(
    deps: &BulkDeps,
    group: &str,
    uri: &str,
    params: Vec<(String, String)>,
    post: bool,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Result<String, Response> {
    let au = caller(deps, headers, Need::Read("Group"), audit).await?;
    if au.group.as_deref() != Some(group) {
        return Err(not_found(&format!("Group/{group}")));
    }
    let Some(jobs) = &deps.exports else {
        return Err(failure(
            StatusCode::NOT_IMPLEMENTED,
            "not-supported",
            "Bulk export is not configured on this deployment",
        ));
    };
    let now_ms = iz::Clock::now().unix_seconds * 1000;
    let kick = KickOff {
        accept: headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        prefer: header_values(headers, header::HeaderName::from_static("prefer")),
        params,
        post,
    };
    let request = kick.check(now_ms).map_err(|list| problems(&list))?;
    audit.detail(kick_off_detail(&request, post));
    for p in &request.patients {
        match deps.groups.member(group, p).await {
            Ok(Some(m)) if m.active => {}
            Ok(_) => {
                return Err(problems(&[Problem {
                    what: "patient".into(),
                    message: format!("Patient/{p} is not a member of Group/{group}"),
                }]))
            }
            Err(e) => return Err(unavailable(e)),
        }
    }
    let request_url = format!("{}{}", deps.public_url, uri);
    match jobs
        .create(&au.id, group, request, &request_url, now_ms)
        .await
    {
        Ok(job) => Ok(job.id),
        Err(JobError::TooMany(n)) => {
            let mut r = failure(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("{n} exports are already running for this Authorized User; retry when one finishes"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            Err(r)
        }
        Err(JobError::Store(e)) => Err(unavailable(e)),
    }
}

/// The caller's job, or the response to send instead.
async fn own_job(
    deps: &BulkDeps,
    headers: &HeaderMap,
    id: &str,
    need: Need,
    audit: &mut Audit<'_>,
) -> Result<ExportJob, Response> {
    let au = caller(deps, headers, need, audit).await?;
    let Some(jobs) = &deps.exports else {
        return Err(not_found(&format!("export {id}")));
    };
    match jobs.get(id).await {
        Ok(Some(job)) if job.au == au.id && job.status != JobStatus::Cancelled => Ok(job),
        Ok(_) => Err(not_found(&format!("export {id}"))),
        Err(e) => Err(unavailable(e)),
    }
}

/// A status poll. Polls still in progress (202, and 429 for polling too
/// soon) are not audited: they disclose nothing and a client makes many.
/// The manifest is (`fhir.export.manifest`, subjects the job and its Group):
/// it hands over the files, and where they are presigned S3 URLs their
/// downloads never reach this API, so the manifest is the last thing it
/// can record. A partial manifest (`allowPartialManifests`, a 202 with a
/// body) hands over files too and is audited the same. Refusals are
/// audited too.
pub async fn status(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.export.manifest", &peer);
    audit.subject("ExportJob", &id);
    // `?page=N`: a later manifest of an export answered in several.
    let page = query
        .iter()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.parse::<u32>().unwrap_or(0));
    let r = poll(&deps, &id, page, &headers, &mut audit).await;
    let in_progress = matches!(
        r.status(),
        StatusCode::ACCEPTED | StatusCode::TOO_MANY_REQUESTS
    ) && !r.headers().contains_key(header::CONTENT_TYPE);
    if in_progress {
        return r;
    }
    audit.finish(r).await
}

/// 202 "in progress", with `X-Progress`.
fn in_progress(job: &ExportJob) -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&job.progress()) {
        h.insert("x-progress", v);
    }
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

async fn poll(
    deps: &BulkDeps,
    id: &str,
    page: Option<u32>,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let own = match own_job(deps, headers, id, Need::Read("Group"), audit).await {
        Ok(job) => job,
        Err(r) => return r,
    };
    let Some(jobs) = &deps.exports else {
        return not_found(&format!("export {id}"));
    };
    // A linked manifest page: fixed once cut, so reading it is not a poll
    // (a client walks the links at once, unthrottled).
    if let Some(n) = page.filter(|n| *n != 1) {
        if !own.request.allow_partial_manifests || own.status == JobStatus::Failed {
            return not_found(&format!("export {id} manifest {n}"));
        }
        return partial_manifest(deps, jobs, &own, n, audit).await;
    }
    let now_ms = store::limits::now_epoch_millis();
    let (job, first) = match jobs.polled(id, now_ms, jobs.min_poll_interval_ms).await {
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
    if first || (job.is_active() && !job.request.allow_partial_manifests) {
        return in_progress(&job);
    }
    if job.status == JobStatus::Failed {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            job.failure.unwrap_or_else(|| "the export failed".into()),
        );
    }
    if job.request.allow_partial_manifests {
        return partial_manifest(deps, jobs, &job, 1, audit).await;
    }
    let files = registry::export::ManifestPage {
        output: job.files.output.clone(),
        deleted: job.files.deleted.clone(),
    };
    manifest(deps, jobs, &job, (&files, 1), None, audit).await
}

/// Manifest `n` of an export asked with `allowPartialManifests`: 202 while
/// the export runs (the files finished so far), 200 once it is complete;
/// a `link` of relation `next` when a later manifest lists more files.
async fn partial_manifest(
    deps: &BulkDeps,
    jobs: &registry::export::ExportJobs,
    job: &ExportJob,
    n: u32,
    audit: &mut Audit<'_>,
) -> Response {
    match jobs.manifest_page(job, n).await {
        Ok(Some(PageAnswer::NothingYet)) => in_progress(job),
        Ok(Some(PageAnswer::Page { page, next })) => {
            let mut r = manifest(deps, jobs, job, (&page, n), next, audit).await;
            if job.is_active() && r.status() == StatusCode::OK {
                *r.status_mut() = StatusCode::ACCEPTED;
                let h = r.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&job.progress()) {
                    h.insert("x-progress", v);
                }
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            r
        }
        Ok(None) => not_found(&format!("export {} manifest {n}", job.id)),
        Err(e) => unavailable(e),
    }
}

/// Manifest `n` listing `files` (with the job's `error` files), linking to
/// manifest `next` of the same export if given.
async fn manifest(
    deps: &BulkDeps,
    jobs: &registry::export::ExportJobs,
    job: &ExportJob,
    (files, n): (&registry::export::ManifestPage, u32),
    next: Option<u32>,
    audit: &mut Audit<'_>,
) -> Response {
    let base = deps.fhir_base();
    // Where the blob store can mint short-lived URLs (S3), each poll mints
    // fresh ones and the files need no token; otherwise the API serves them.
    let presigned = match jobs.presign_for {
        Some(ttl) => match presign_all(jobs, files, &job.files.error, ttl).await {
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
        // A file organized by patient holds several types: no `type`.
        if f.resource_type == BY_PATIENT {
            json!({"url": url, "count": f.count})
        } else {
            json!({"type": f.resource_type, "url": url, "count": f.count})
        }
    };
    let mut manifest = json!({
        "transactionTime": registry::resources::instant(job.transaction_time_ms),
        "request": job.request_url,
        "requiresAccessToken": presigned.is_none(),
        "output": files.output.iter().map(file).collect::<Vec<_>>(),
        "error": job.files.error.iter().map(file).collect::<Vec<_>>(),
    });
    if job.request.since_ms.is_some() {
        manifest["deleted"] = json!(files.deleted.iter().map(file).collect::<Vec<_>>());
    }
    if job.request.organize_by_patient {
        manifest["outputOrganizedBy"] = json!("Patient");
    }
    if let Some(n) = next {
        manifest["link"] = json!([{
            "relation": "next",
            "url": format!("{base}/bulkstatus/{}?page={n}", job.id),
        }]);
    }
    audit.subject("Group", &job.group);
    audit.detail(format!(
        "manifest{}: {} output, {} deleted, {} error files; {}",
        if job.request.allow_partial_manifests {
            format!(" {n} (partial manifests)")
        } else {
            String::new()
        },
        files.output.len(),
        files.deleted.len(),
        job.files.error.len(),
        if presigned.is_some() {
            "presigned URLs"
        } else {
            "served with the token"
        }
    ));
    crate::response::manifest(&manifest, job.expires_at)
}

/// Presigned URLs of every file of a job, by blob key; `None` if the blob
/// store cannot mint them.
async fn presign_all(
    jobs: &registry::export::ExportJobs,
    files: &registry::export::ManifestPage,
    error: &[registry::export::OutputFile],
    ttl: Duration,
) -> Result<Option<std::collections::HashMap<String, String>>, store::StoreError> {
    let all: Vec<&registry::export::OutputFile> = files
        .output
        .iter()
        .chain(&files.deleted)
        .chain(error)
        .collect();
    let keys: Vec<&str> = all.iter().map(|f| f.key.as_str()).collect();
    let urls = store::presigned_urls(jobs.blobs(), &keys, ttl).await?;
    Ok(urls.map(|urls| all.iter().map(|f| f.key.clone()).zip(urls).collect()))
}

/// `DELETE` of a job, audited as `fhir.export.cancel`.
pub async fn cancel(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.export.cancel", &peer);
    audit.subject("ExportJob", &id);
    let r = cancel_job(&deps, &id, &headers, &mut audit).await;
    audit.finish(r).await
}

async fn cancel_job(
    deps: &BulkDeps,
    id: &str,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let job = match own_job(deps, headers, id, Need::Read("Group"), audit).await {
        Ok(job) => job,
        Err(r) => return r,
    };
    let Some(jobs) = &deps.exports else {
        return not_found(&format!("export {id}"));
    };
    audit.subject("Group", &job.group);
    match jobs.cancel(id).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => unavailable(e),
    }
}

/// A file download, audited as `fhir.export.download` (subjects the job
/// and its Group, the file's name in the detail) before its first byte is
/// sent: no audit, no file.
pub async fn file(
    State(deps): State<Arc<BulkDeps>>,
    Path((id, name)): Path<(String, String)>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.export.download", &peer);
    audit.subject("ExportJob", &id);
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
    // `Patient.001.ndjson` or `deleted/Bundle.001.ndjson`: its type's scope.
    let base_name = name.rsplit('/').next().unwrap_or("");
    let resource_type = base_name.split('.').next().unwrap_or("");
    let need = match resource_type {
        "Patient" => Need::Read("Patient"),
        "Immunization" => Need::Read("Immunization"),
        "ImmunizationRecommendation" => Need::Read("ImmunizationRecommendation"),
        "Provenance" => Need::Read("Provenance"),
        "Organization" => Need::Read("Organization"),
        "Group" => Need::Read("Group"),
        "Bundle" => Need::Read("Patient"),
        // A patient's resources together: the scopes of every type the
        // export puts in it, checked below once the job is known.
        BY_PATIENT => Need::Read("Group"),
        // Errors about the caller's own request.
        "OperationOutcome" => Need::Read("Group"),
        _ => return not_found(&format!("file {name}")),
    };
    let job = match own_job(deps, headers, id, need, audit).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    if resource_type == BY_PATIENT {
        use registry::export::ResourceType;
        let types = &job.request.types;
        for t in [
            ResourceType::Patient,
            ResourceType::Immunization,
            ResourceType::ImmunizationRecommendation,
            ResourceType::Provenance,
        ] {
            let exported = if types.is_empty() {
                ResourceType::DEFAULT.contains(&t)
            } else {
                types.contains(&t)
            };
            if exported {
                if let Err(r) = caller(deps, headers, Need::Read(t.as_str()), audit).await {
                    return r;
                }
            }
        }
    }
    audit.subject("Group", &job.group);
    let key = format!("{}/{name}", job.prefix());
    let listed = job
        .files
        .output
        .iter()
        .chain(&job.files.deleted)
        .chain(&job.files.error)
        .find(|f| f.key == key);
    let Some(jobs) = &deps.exports else {
        return not_found(&format!("file {name}"));
    };
    // With allowPartialManifests a listed file is downloadable as soon as
    // its part finished (it is never rewritten after); otherwise once the
    // export is complete.
    let available = job.status == JobStatus::Completed
        || (job.request.allow_partial_manifests && job.is_active());
    let Some(file) = listed.filter(|_| available) else {
        return not_found(&format!("file {name}"));
    };
    match jobs.blobs().get(&key).await {
        Ok(Some((reader, len))) => {
            let gzip_ok = accepts_gzip(headers);
            let (body, len, encoded) = match (file.gzip, gzip_ok) {
                // Stored as sent: gzip to a client that takes it, or a file
                // written before files were compressed.
                (true, true) => (
                    Body::from_stream(tokio_util::io::ReaderStream::new(reader)),
                    Some(len),
                    true,
                ),
                (false, _) => (
                    Body::from_stream(tokio_util::io::ReaderStream::new(reader)),
                    Some(len),
                    false,
                ),
                // A client without gzip still gets plain NDJSON.
                (true, false) => (
                    Body::from_stream(tokio_util::io::ReaderStream::new(inflated(reader))),
                    None,
                    false,
                ),
            };
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+ndjson"),
            );
            if encoded {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            if file.gzip {
                h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            }
            if let Some(v) = len.and_then(|n| HeaderValue::from_str(&n.to_string()).ok()) {
                h.insert(header::CONTENT_LENGTH, v);
            }
            r
        }
        Ok(None) => not_found(&format!("file {name}")),
        Err(e) => unavailable(e),
    }
}

/// Whether `Accept-Encoding` takes gzip (`gzip`, `x-gzip` or `*`, with a
/// non-zero weight; an explicit `gzip;q=0` refuses it even beside `*`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = false;
    for v in header_values(headers, header::ACCEPT_ENCODING) {
        for item in v.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim() == "q").then(|| v.trim().parse::<f32>().unwrap_or(0.0))
                })
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => return weight > 0.0,
                "*" => star = weight > 0.0,
                _ => {}
            }
        }
    }
    star
}

/// The stored gzip stream, inflated as it is read: a task decodes chunk by
/// chunk into a pipe the response streams from, so no file is held whole.
/// A corrupt stream ends the body early (the client's line count then falls
/// short of the manifest's `count`) and is logged without content.
fn inflated(mut stored: store::BlobReader) -> tokio::io::DuplexStream {
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut gz = flate2::write::GzDecoder::new(Vec::new());
        let mut buf = vec![0u8; 64 * 1024];
        let result: Result<(), std::io::Error> = async {
            loop {
                let n = stored.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                gz.write_all(&buf[..n])?;
                let plain = std::mem::take(gz.get_mut());
                tx.write_all(&plain).await?;
            }
            gz.try_finish()?;
            let plain = std::mem::take(gz.get_mut());
            tx.write_all(&plain).await?;
            tx.shutdown().await
        }
        .await;
        if let Err(e) = result {
            // A client hanging up is a broken pipe here: not worth a warning.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!(error = %e, "inflating an export file failed");
            }
        }
    });
    rx
}
