//! `POST [base]/Group/{id}/$member-add` and `$member-remove`: the caller
//! manages the members of its own Group (Da Vinci ATR's shape; the request
//! is read by `registry::fhir_members`, applied by
//! `registry::membership::Membership`). Needs a token with
//! `system/Group.u` (or `.write`), which only clients registered for it
//! get. Another Authorized User's Group is not found; a patient named by
//! reference with whom the caller has no relationship is not found either
//! (whether they exist is never said); one named by chart number or
//! demographics without one is refused. Audited as
//! `fhir.group.member-add` / `fhir.group.member-remove` with the Group and
//! the person as subjects.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use registry::fhir_members::{parse_member_request, MemberOperation, MemberRequest, NamedPatient};
use registry::membership::{ClientAdd, ClientRemove};
use registry::AuthorizedUser;

use crate::audited::{Audit, Peer};
use crate::caller::{caller, Need};
use crate::response::{body_of, done, failure, json_parameters, not_found, problem, unavailable};
use crate::BulkDeps;

pub async fn member_add(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.group.member-add", &peer);
    audit.subject("Group", &id);
    let r = match body_of(body) {
        Ok(body) => {
            apply(
                &deps,
                &id,
                MemberOperation::Add,
                &headers,
                &body,
                &mut audit,
            )
            .await
        }
        Err(r) => *r,
    };
    audit.finish(r).await
}

pub async fn member_remove(
    State(deps): State<Arc<BulkDeps>>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut audit = Audit::new(&deps, "fhir.group.member-remove", &peer);
    audit.subject("Group", &id);
    let r = match body_of(body) {
        Ok(body) => {
            apply(
                &deps,
                &id,
                MemberOperation::Remove,
                &headers,
                &body,
                &mut audit,
            )
            .await
        }
        Err(r) => *r,
    };
    audit.finish(r).await
}

/// Why a named patient cannot be acted on (the response to send).
enum Unresolved {
    /// By reference: not one of the caller's patients (or no such id).
    NotFound(String),
    /// By chart number or demographics: nothing certain the caller relates to.
    Refused(String),
    Failed(Response),
}

async fn apply(
    deps: &BulkDeps,
    group: &str,
    operation: MemberOperation,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit<'_>,
) -> Response {
    let au = match caller(deps, headers, Need::Update("Group"), audit).await {
        Ok(au) => au,
        Err(r) => return r,
    };
    // Another Authorized User's Group is, to this caller, no Group at all.
    if au.group.as_deref() != Some(group) {
        return not_found(&format!("Group/{group}"));
    }
    let expected = format!("a Parameters resource is expected by {}", operation.name());
    let json = match json_parameters(headers, body, &expected) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let request = match parse_member_request(&json, operation, &deps.policy.identifier_base) {
        Ok(r) => r,
        Err(p) => {
            audit.detail(format!("bad request: {}", p.expression));
            return problem(&p);
        }
    };
    let now = store::limits::now_epoch_millis();
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let (patient, attestation, reason, ignored) = match request {
        MemberRequest::Reset { reason } => {
            let why = because(&request_id, reason.as_deref(), "reset");
            audit.detail(format!("reset, request {request_id}"));
            return match deps.groups.reset(group, now, &why).await {
                Ok(n) => {
                    audit.detail(format!(
                        "reset: {n} member(s) removed; request {request_id}"
                    ));
                    done(format!("Group/{group} reset: {n} member(s) removed"))
                }
                Err((n, e)) => {
                    tracing::warn!(error = %e, removed = n, "Group reset stopped on storage");
                    failure(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "transient",
                        format!("{n} member(s) removed before storage failed; send the reset again to finish"),
                    )
                }
            };
        }
        MemberRequest::One {
            patient,
            attestation,
            reason,
            ignored,
        } => (patient, attestation, reason, ignored),
    };
    let person = match resolve(deps, &au, &patient).await {
        Ok(p) => p,
        Err(Unresolved::NotFound(why)) => {
            audit.detail(format!("{}: {why}", operation.name()));
            return failure(StatusCode::NOT_FOUND, "not-found", why);
        }
        Err(Unresolved::Refused(why)) => {
            audit.detail(format!("{}: no certain patient", operation.name()));
            return failure(StatusCode::UNPROCESSABLE_ENTITY, "business-rule", why);
        }
        Err(Unresolved::Failed(r)) => return r,
    };
    audit.subject("Person", &person);
    let ignored_note = if ignored.is_empty() {
        String::new()
    } else {
        format!(
            " (ignored: {}: this IIS attributes to the Authorized User itself, without a planned end)",
            ignored.join(", ")
        )
    };
    match operation {
        MemberOperation::Add => {
            match deps
                .membership
                .add_by_client(&au.id, &person, attestation.as_deref(), &request_id, now)
                .await
            {
                Ok(ClientAdd::Added { left }) => {
                    audit.detail(format!("added; request {request_id}"));
                    let left = if left.is_empty() {
                        String::new()
                    } else {
                        format!("; it left {} (single association)", left.join(", "))
                    };
                    done(format!(
                        "Patient/{person} added to Group/{group}{left}{ignored_note}"
                    ))
                }
                Ok(ClientAdd::AlreadyMember) => {
                    audit.detail(format!("already a member; request {request_id}"));
                    done(format!(
                        "Patient/{person} is already a member of Group/{group}{ignored_note}"
                    ))
                }
                Ok(ClientAdd::Stale) => {
                    audit.detail("not added: a newer relationship stands".to_owned());
                    failure(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!("Patient/{person} was not added: a newer membership decision stands (single association, or a removal made after this request)"),
                    )
                }
                Ok(ClientAdd::NoRelationship) | Ok(ClientAdd::UnknownPerson) => {
                    audit.detail("refused: no relationship".to_owned());
                    let why = if deps.policy.attestation {
                        "send a VXU for the patient first, or an attestation parameter stating the relationship"
                    } else {
                        "send a VXU for the patient first (this jurisdiction does not accept attestations)"
                    };
                    match patient {
                        NamedPatient::Reference(_) => not_found(&format!("Patient/{person}")),
                        _ => failure(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "business-rule",
                            format!("the registry holds no relationship between this Authorized User and the patient, as the jurisdiction counts them: {why}"),
                        ),
                    }
                }
                Ok(ClientAdd::NoGroup) => not_found(&format!("Group/{group}")),
                Err(e) => unavailable(e),
            }
        }
        MemberOperation::Remove => {
            let why = because(&request_id, reason.as_deref(), "removed");
            match deps
                .membership
                .remove_by_client(group, &person, now, &why)
                .await
            {
                Ok(ClientRemove::Removed) => {
                    audit.detail(format!("removed; request {request_id}"));
                    done(format!(
                        "Patient/{person} removed from Group/{group}{ignored_note}"
                    ))
                }
                Ok(ClientRemove::AlreadyRemoved) => {
                    audit.detail(format!("already removed; request {request_id}"));
                    done(format!(
                        "Patient/{person} had already left Group/{group}{ignored_note}"
                    ))
                }
                Ok(ClientRemove::NotAMember) | Ok(ClientRemove::NoGroup) => {
                    audit.detail("not a member".to_owned());
                    not_found(&format!("Patient/{person} in Group/{group}"))
                }
                Err(e) => unavailable(e),
            }
        }
    }
}

/// The provenance text of a client's removal (its words clipped; no PHI
/// is asked for, and the audit event names only the request).
fn because(request: &str, reason: Option<&str>, what: &str) -> String {
    let reason: String = reason
        .unwrap_or("")
        .chars()
        .take(registry::membership::MAX_ATTESTATION)
        .collect();
    if reason.is_empty() {
        format!("{what} by the Authorized User (request {request})")
    } else {
        format!("{what} by the Authorized User (request {request}): {reason}")
    }
}

/// The registry person a request names, followed through merges.
async fn resolve(
    deps: &BulkDeps,
    au: &AuthorizedUser,
    patient: &NamedPatient,
) -> Result<String, Unresolved> {
    let refused = || {
        Unresolved::Refused(
            "no patient this Authorized User has a relationship with is certainly the one described: name it by patientReference (the id a Z32, $match or export gave), by your chart number as your VXUs carry it (memberId), or send more of its details".to_owned(),
        )
    };
    let id = match patient {
        NamedPatient::Reference(id) => id.clone(),
        NamedPatient::MemberId(identifier) => {
            let Some(queries) = &deps.queries else {
                return Err(Unresolved::Failed(failure(
                    StatusCode::NOT_IMPLEMENTED,
                    "not-supported",
                    "naming a patient by memberId is not served by this deployment",
                )));
            };
            match queries.chart_person(&au.id, identifier).await {
                Ok(Some(p)) => p,
                Ok(None) => return Err(refused()),
                Err(e) => return Err(Unresolved::Failed(unavailable(e))),
            }
        }
        NamedPatient::Described(request) => {
            let Some(queries) = &deps.queries else {
                return Err(Unresolved::Failed(failure(
                    StatusCode::NOT_IMPLEMENTED,
                    "not-supported",
                    "naming a patient by demographics is not served by this deployment",
                )));
            };
            match queries.identify(au, request).await {
                Ok(Some(p)) => p.id,
                Ok(None) => return Err(refused()),
                Err(e) => return Err(Unresolved::Failed(unavailable(e))),
            }
        }
    };
    match deps.membership.current_person(&id).await {
        Ok(Some(p)) => Ok(p.id),
        Ok(None) => Err(match patient {
            NamedPatient::Reference(id) => Unresolved::NotFound(format!("Patient/{id} not found")),
            _ => refused(),
        }),
        Err(e) => Err(Unresolved::Failed(unavailable(e))),
    }
}
