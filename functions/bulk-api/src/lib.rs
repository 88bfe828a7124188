//! # bulk-api — the FHIR side of the IIS
//!
//! An axum [`Router`] (the same routes run in Lambda and in the local
//! process). So far: reading an Authorized User's Group and the Patients
//! and Immunizations of its members. Until SMART Backend Services
//! authorization exists, these routes authenticate the caller with its HL7
//! credentials (HTTP Basic) and are mounted only by `iisbulk serve
//! --insecure-dev-api`: never by default, never in a Lambda.

mod caller;
mod read;
mod response;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use registry::membership::{Groups, JurisdictionPolicy};
use registry::patients::PatientMatching;
use registry::{AuthorizedUsers, Credentials};

/// Groups larger than this are read summarised (no member list; SUBSETTED).
pub const DEFAULT_MAX_INLINE_MEMBERS: u32 = 1000;

#[derive(Clone)]
pub struct BulkDeps {
    pub users: AuthorizedUsers,
    pub credentials: Credentials,
    pub groups: Groups,
    pub patients: PatientMatching,
    pub policy: Arc<JurisdictionPolicy>,
    /// The public base of the FHIR endpoint (`https://iis.example/fhir`);
    /// `None`: from the request's Host header.
    pub public_url: Option<String>,
    pub max_inline_members: u32,
}

impl std::fmt::Debug for BulkDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkDeps")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl BulkDeps {
    pub fn new(patients: PatientMatching, policy: Arc<JurisdictionPolicy>) -> Self {
        let store = patients.store_arc();
        let users = AuthorizedUsers::new(store.clone());
        BulkDeps {
            credentials: Credentials::new(users.clone()),
            users,
            groups: Groups::new(store),
            patients,
            policy,
            public_url: None,
            max_inline_members: DEFAULT_MAX_INLINE_MEMBERS,
        }
    }
}

/// The development read API: Group, Patient and Immunization reads for the
/// caller's own Group, authenticated with HTTP Basic.
pub fn dev_read_api(deps: Arc<BulkDeps>) -> Router {
    Router::new()
        .route("/fhir/Group", get(read::search_groups))
        .route("/fhir/Group/{id}", get(read::group))
        .route("/fhir/Patient/{id}", get(read::patient))
        .route("/fhir/Immunization", get(read::search_immunizations))
        .with_state(deps)
}
