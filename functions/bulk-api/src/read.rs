//! Reads of the caller's own Group and of its members. Anything else,
//! whether it exists or not, is "not found": the answer never tells one
//! Authorized User about another's Group or patients.

use std::collections::HashMap;
use std::sync::Arc;

use crate::audited::{Audit, Peer};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use fhir::Bundle;
use registry::membership::Member;
use registry::patients::{Person, PersonStatus};
use registry::resources;
use registry::AuthorizedUser;

use crate::caller::{caller, Need};
use crate::response::{failure, not_found, resource, unavailable};
use crate::BulkDeps;

/// Members read per store page while rendering a Group.
const PAGE: u32 = 500;

fn base(deps: &BulkDeps) -> String {
    deps.fhir_base()
}

fn summarised(params: &HashMap<String, String>) -> bool {
    matches!(
        params.get("_summary").map(String::as_str),
        Some("true") | Some("count")
    )
}

/// The caller's Group, if `id` names it.
fn own_group<'a>(au: &'a AuthorizedUser, id: &str) -> Option<&'a str> {
    au.group.as_deref().filter(|g| *g == id)
}

async fn render_group(
    deps: &BulkDeps,
    au: &AuthorizedUser,
    id: &str,
    summary: bool,
) -> Result<Option<fhir::Group>, Response> {
    let Some(record) = deps.groups.get(id).await.map_err(unavailable)? else {
        return Ok(None);
    };
    let quantity = deps.groups.quantity(id).await.map_err(unavailable)?;
    let mut members: Vec<Member> = Vec::new();
    let mut subsetted = summary;
    if !summary {
        let mut cursor = None;
        loop {
            let (page, next) = deps
                .groups
                .members(id, cursor, PAGE)
                .await
                .map_err(unavailable)?;
            members.extend(page);
            if members.len() > deps.max_inline_members as usize {
                // Too many to list in one resource: Bulk export is the way.
                members.clear();
                subsetted = true;
                break;
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(Some(resources::group(
        &record,
        au,
        quantity,
        &members,
        subsetted,
        &deps.policy.identifier_base,
    )))
}

/// What a Group answer showed, for its audit event.
fn group_detail(g: &fhir::Group) -> String {
    format!(
        "Group read, quantity: {}, members listed: {}",
        g.quantity,
        g.member.len()
    )
}

pub async fn group(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.read", &peer);
    audit.subject("Group", &id);
    let r = read_group(&deps, &id, &params, &headers, &mut audit).await;
    audit.finish(r).await
}

async fn read_group(
    deps: &BulkDeps,
    id: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let au = match caller(deps, headers, Need::Read("Group"), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    let Some(id) = own_group(&au, id) else {
        return not_found(&format!("Group/{id}"));
    };
    match render_group(deps, &au, id, summarised(params)).await {
        Ok(Some(g)) => {
            audit.detail(group_detail(&g));
            resource(StatusCode::OK, &g)
        }
        Ok(None) => not_found(&format!("Group/{id}")),
        Err(r) => r,
    }
}

pub async fn search_groups(
    State(deps): State<Arc<BulkDeps>>,
    Query(params): Query<HashMap<String, String>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.search", &peer);
    let r = find_groups(&deps, &params, &headers, &mut audit).await;
    audit.finish(r).await
}

async fn find_groups(
    deps: &BulkDeps,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let au = match caller(deps, headers, Need::Search("Group"), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    let base = base(deps);
    let system = resources::group_identifier_system(&deps.policy.identifier_base);
    // identifier=[system|]value: the value is the Authorized User's id.
    let wanted = match params.get("identifier") {
        None => true,
        Some(token) => match token.split_once('|') {
            Some((s, v)) => (s.is_empty() || s == system) && v == au.id,
            None => token == &au.id,
        },
    };
    let mut self_url = format!("{base}/Group");
    if let Some(token) = params.get("identifier") {
        self_url.push_str(&format!("?identifier={}", encode(token)));
    }
    let group = match (&au.group, wanted) {
        (Some(g), true) => match render_group(deps, &au, g, summarised(params)).await {
            Ok(g) => g,
            Err(r) => return r,
        },
        _ => None,
    };
    match &group {
        Some(g) => {
            audit.subject("Group", &g.id);
            audit.detail(format!("Group search, matches: 1; {}", group_detail(g)));
        }
        None => audit.detail("Group search, matches: 0"),
    }
    let mut bundle = Bundle::searchset(u64::from(group.is_some()), &self_url);
    if let Some(g) = group {
        if let Err(e) = bundle.push(format!("{base}/Group/{}", g.id), &g) {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                e.to_string(),
            );
        }
    }
    resource(StatusCode::OK, &bundle)
}

/// Percent-encodes a query value for a link.
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The person, if it is an active member of the caller's Group and the
/// caller may see it (a do-not-share patient only by those who reported it).
pub(crate) async fn member_person(
    deps: &BulkDeps,
    au: &AuthorizedUser,
    id: &str,
) -> Result<Option<Person>, Response> {
    let Some(group) = &au.group else {
        return Ok(None);
    };
    let active = deps
        .groups
        .member(group, id)
        .await
        .map_err(unavailable)?
        .is_some_and(|m| m.active);
    if !active {
        return Ok(None);
    }
    let Some(person) = deps.patients.person(id).await.map_err(unavailable)? else {
        return Ok(None);
    };
    if person.status == PersonStatus::Merged {
        return Ok(None);
    }
    if person.demographics.protected.value == Some(true)
        && !deps
            .patients
            .reported_by(&person.id, &au.id)
            .await
            .map_err(unavailable)?
    {
        return Ok(None);
    }
    Ok(Some(person))
}

/// `GET /fhir/Patient/{id}`: audited with the subject `Person/<id>` (a
/// Patient's id is the registry person's, so one subject search finds its
/// console, HL7 and FHIR reads alike).
pub async fn patient(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.read", &peer);
    audit.subject("Person", &id);
    audit.detail("Patient read");
    let r = read_patient(&deps, &id, &headers, &mut audit).await;
    audit.finish(r).await
}

async fn read_patient(
    deps: &BulkDeps,
    id: &str,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let au = match caller(deps, headers, Need::Read("Patient"), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    let person = match member_person(deps, &au, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(&format!("Patient/{id}")),
        Err(r) => return r,
    };
    let theirs = match deps.patients.identifiers_from(&person.id, &au.id).await {
        Ok(ids) => ids,
        Err(e) => return unavailable(e),
    };
    resource(
        StatusCode::OK,
        &resources::patient(&person, &theirs, &deps.policy.identifier_base),
    )
}

/// `GET /fhir/Immunization?patient=…`: audited with the subjects
/// `Person/<id>` and the first Immunizations returned, the count in the
/// detail.
pub async fn search_immunizations(
    State(deps): State<Arc<BulkDeps>>,
    Query(params): Query<HashMap<String, String>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.search", &peer);
    audit.detail("Immunization search");
    let r = find_immunizations(&deps, &params, &headers, &mut audit).await;
    audit.finish(r).await
}

async fn find_immunizations(
    deps: &BulkDeps,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    audit: &mut Audit<'_>,
) -> Response {
    let au = match caller(deps, headers, Need::Search("Immunization"), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    let Some(reference) = params.get("patient") else {
        return failure(
            StatusCode::BAD_REQUEST,
            "required",
            "the patient search parameter is required (patient=Patient/<id>)",
        );
    };
    // patient=<id>, Patient/<id> or an absolute URL ending in Patient/<id>.
    let id = reference
        .rsplit_once("Patient/")
        .map_or(reference.as_str(), |(_, id)| id);
    if id.is_empty() || id.contains('/') {
        return failure(
            StatusCode::BAD_REQUEST,
            "value",
            format!("patient={reference:?} is not a Patient reference"),
        );
    }
    audit.subject("Person", id);
    let base = base(deps);
    let self_url = format!("{base}/Immunization?patient={}", encode(reference));
    let person = match member_person(deps, &au, id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut history = match &person {
        Some(p) => match deps.patients.history(&p.id).await {
            Ok(h) => h,
            Err(e) => return unavailable(e),
        },
        None => Vec::new(),
    };
    history.sort_by_key(|i| (i.order.administered, i.id.clone()));
    audit.detail(format!("Immunization search, results: {}", history.len()));
    let mut bundle = Bundle::searchset(history.len() as u64, &self_url);
    for imm in &history {
        let r = resources::immunization(id, imm, &deps.policy.identifier_base);
        audit.subject("Immunization", &r.id);
        if let Err(e) = bundle.push(format!("{base}/Immunization/{}", r.id), &r) {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                e.to_string(),
            );
        }
    }
    resource(StatusCode::OK, &bundle)
}
