//! `POST [base]/Patient/$match` (FHIR R4): the request's Patient matched
//! with the registry's matcher, bands and visibility rules, as a Z34 is
//! (`registry::queries::Queries::match_patient`); the answer a searchset
//! Bundle with `search.score` and the match-grade extension
//! (`registry::fhir_match`). Audited as `fhir.patient-match`, with the
//! persons answered about as subjects; the query record that lets a
//! certain match join the caller's Group (policy `fhir_match`) is stored in
//! the same transaction as that event.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use registry::fhir_match::{match_bundle, parse_match_request};

use crate::audited::{Audit, Peer};
use crate::caller::{caller, Need};
use crate::response::{body_of, failure, json_parameters, problem, resource, unavailable};
use crate::BulkDeps;

pub async fn patient_match(
    State(deps): State<Arc<BulkDeps>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.patient-match", &peer);
    let r = match body_of(body) {
        Ok(body) => answer(&deps, &headers, &body, &mut audit).await,
        Err(r) => *r,
    };
    audit.finish(r).await
}

async fn answer(
    deps: &BulkDeps,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit<'_>,
) -> Response {
    // Matching is a search over the registry's patients.
    let au = match caller(deps, headers, Need::Search("Patient"), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    let Some(queries) = &deps.queries else {
        return failure(
            StatusCode::NOT_IMPLEMENTED,
            "not-supported",
            "Patient/$match is not served by this deployment",
        );
    };
    let json = match json_parameters(
        headers,
        body,
        "a Parameters resource with the Patient to match is expected",
    ) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let request = match parse_match_request(&json, &deps.policy.identifier_base) {
        Ok(r) => r,
        Err(p) => {
            audit.detail(format!("bad request: {}", p.expression));
            return problem(&p);
        }
    };
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let now = store::limits::now_epoch_millis();
    let (answer, _record, writes) =
        match queries.match_patient(&au, &request, now, &request_id).await {
            Ok(a) => a,
            Err(e) => return unavailable(e),
        };
    for m in &answer.matches {
        audit.subject("Person", &m.person.id);
    }
    let certain = answer
        .matches
        .iter()
        .filter(|m| m.grade == matching::Grade::Certain)
        .count();
    audit.detail(format!(
        "request {request_id}; certain: {certain}, possible listed: {}, possible withheld: {}",
        answer.matches.len() - certain,
        answer.withheld
    ));
    audit.with_event(writes);
    tracing::info!(
        certain,
        listed = answer.matches.len() - certain,
        withheld = answer.withheld,
        "Patient/$match answered"
    );
    resource(
        StatusCode::OK,
        &match_bundle(&answer, &deps.fhir_base(), &deps.policy.identifier_base),
    )
}
