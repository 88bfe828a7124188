//! `POST [base]/$immds-forecast`, the HL7 ImmDS operation: CDC CDSi
//! evaluation and forecast of supplied data (a Patient and its
//! Immunizations) or of a registry Patient in the caller's Group. The
//! mapping both ways is `registry::immds`; this handler checks who asks,
//! reads the body and, for a registry Patient, its consolidated history.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use registry::immds::{self, ForecastRequest, Problem, Supplied};

use crate::audited::{Audit, Peer};
use crate::caller::{caller, Need};
use crate::read::member_person;
use crate::response::{body_of, failure, json_parameters, problem, resource, unavailable};
use crate::BulkDeps;

/// What the operation needs of the token: reading its answer's type.
pub const SCOPE_TYPE: &str = "ImmunizationRecommendation";

fn today() -> Option<cdsi::Date> {
    let d = iz::Clock::now().today();
    cdsi::Date::new(i32::from(d.year), d.month, d.day)
}

/// `POST /fhir/$immds-forecast`, audited as `fhir.immds-forecast`: a
/// registry patient as the subject `Person/<id>`; supplied data (which the
/// registry does not keep) by its dose count only.
pub async fn immds_forecast(
    State(deps): State<Arc<BulkDeps>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.immds-forecast", &peer);
    let r = match body_of(body) {
        Ok(body) => forecast(&deps, &headers, &body, &mut audit).await,
        Err(r) => *r,
    };
    audit.finish(r).await
}

async fn forecast(
    deps: &BulkDeps,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit<'_>,
) -> Response {
    let au = match caller(deps, headers, Need::Read(SCOPE_TYPE), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    let json = match json_parameters(headers, body, "a Parameters resource is expected") {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let Some(today) = today() else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the server clock gives no date",
        );
    };
    let data = match &deps.cdsi_data {
        Some(d) => d.as_ref(),
        None => match cdsi::builtin() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "CDSi supporting data cannot be loaded");
                return failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "the server cannot load its CDSi supporting data",
                );
            }
        },
    };
    let supplied: Supplied = match immds::parse_request(&json, today) {
        Err(p) => return problem(&p),
        Ok(ForecastRequest::Supplied(s)) => {
            audit.detail(format!("supplied data, doses: {}", s.request.doses.len()));
            *s
        }
        Ok(ForecastRequest::Registry {
            patient,
            assessment_date,
        }) => {
            audit.subject("Person", &patient);
            audit.detail("registry patient");
            // Only a member of the caller's own Group is forecast from the
            // registry; whether anyone else exists is never said.
            let person = match member_person(deps, &au, &patient).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    return failure(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        format!("Patient/{patient} is not a member of this Authorized User's Group: only members are forecast from registry data"),
                    )
                }
                Err(r) => return r,
            };
            let history = match deps.patients.history(&person.id).await {
                Ok(h) => h,
                Err(e) => return unavailable(e),
            };
            match immds::registry_request(&person, &history, assessment_date.unwrap_or(today)) {
                Some(s) => {
                    audit.detail(format!(
                        "registry patient, doses: {}",
                        s.request.doses.len()
                    ));
                    s
                }
                None => {
                    return problem(&Problem {
                        status: 422,
                        code: "processing",
                        message: format!("the registry holds no birth date for Patient/{patient}, without which no dose can be evaluated nor forecast made"),
                        expression: "patient".into(),
                    })
                }
            }
        }
    };
    let assessment = cdsi::assess(data, &supplied.request);
    let evaluations = immds::evaluations(&assessment, &supplied.patient, &supplied.events);
    let recommendation =
        immds::recommendation(&assessment, &supplied.patient, &supplied.events, None);
    if recommendation.recommendation.is_empty() {
        // FHIR asks for one recommendation at least: say so, never an
        // invalid resource.
        return problem(&Problem {
            status: 422,
            code: "processing",
            message: format!(
                "CDC CDSi (supporting data {}) gives no vaccine group forecast for this patient",
                assessment.supporting_data_version
            ),
            expression: "patient".into(),
        });
    }
    tracing::info!(
        doses = supplied.request.doses.len(),
        evaluations = evaluations.len(),
        supporting_data = %assessment.supporting_data_version,
        "$immds-forecast answered"
    );
    match immds::parameters(&evaluations, &recommendation) {
        Ok(p) => resource(StatusCode::OK, &p),
        Err(e) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            format!("the answer could not be written: {e}"),
        ),
    }
}
