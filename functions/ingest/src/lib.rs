//! The ingest function: how EHRs hand HL7 v2 messages to the IIS.
//!
//! - `POST /hl7`: the ER7 message as the body, HTTP Basic credentials.
//! - `POST /soap`: the CDC IIS SOAP service (`submitSingleMessage`,
//!   `connectivityTest`); `GET /soap?wsdl` serves its WSDL.
//!
//! The routes are an axum [`Router`], so the very same code runs inside
//! Lambda (`main.rs`, through lambda_http) and in the local `iisbulk serve`.

mod auth;
mod body;
mod rest;
mod soap_route;

use axum::routing::{get, post};
use axum::Router;
use registry::{Credentials, Intake};
use std::sync::Arc;

/// Settings a jurisdiction may change.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Largest HL7 message accepted, in bytes. Larger ones get 413 or a
    /// MessageTooLargeFault. Accepted messages are stored whole, so this also
    /// bounds what one message can make the store hold.
    pub max_message_bytes: usize,
    /// The public base URL (`https://iis.example.org`) used in the WSDL's
    /// address; when `None` it is taken from the request's Host header.
    pub public_url: Option<String>,
    /// Patient matching used to answer history queries (the same
    /// configuration the matcher function links with).
    pub matcher: Arc<matching::Matcher>,
    pub query_policy: registry::queries::QueryPolicy,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_message_bytes: 1024 * 1024,
            public_url: None,
            matcher: Arc::new(matching::Matcher::default()),
            query_policy: registry::queries::QueryPolicy::default(),
        }
    }
}

/// What the handlers need: built once per process (or Lambda container).
#[derive(Debug, Clone)]
pub struct IngestDeps {
    pub credentials: Credentials,
    pub intake: Intake,
    pub config: IngestConfig,
}

impl IngestDeps {
    /// Wires the use cases over one store, as every host (Lambda, local) does.
    pub fn new(
        store: std::sync::Arc<dyn store::ItemStore>,
        iis: iz::IisIdentity,
        config: IngestConfig,
    ) -> Self {
        let users = registry::AuthorizedUsers::new(store.clone());
        let matching =
            registry::patients::PatientMatching::new(store.clone(), config.matcher.clone());
        let queries = registry::queries::Queries::new(matching, config.query_policy.clone());
        IngestDeps {
            credentials: Credentials::new(users),
            intake: Intake::new(store, iis).with_queries(queries),
            config,
        }
    }
}

/// The ingest routes over `deps`.
pub fn router(deps: Arc<IngestDeps>) -> Router {
    Router::new()
        .route("/hl7", post(rest::post_hl7))
        .route(
            "/soap",
            post(soap_route::post_soap).get(soap_route::get_wsdl),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(deps)
}

/// The clock messages are judged by: wall time in production.
pub(crate) fn now() -> iz::Clock {
    iz::Clock::now()
}
