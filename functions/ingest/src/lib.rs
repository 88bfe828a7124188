//! The ingest function: how EHRs hand HL7 v2 messages to the IIS.
//!
//! - `POST /hl7`: the ER7 message as the body, HTTP Basic credentials.
//! - `POST /soap`: the CDC IIS SOAP service (`submitSingleMessage`,
//!   `connectivityTest`); `GET /soap?wsdl` serves its WSDL.
//!
//! The routes are an axum [`Router`], so the very same code runs inside
//! Lambda (`main.rs`, through lambda_http) and in the local `iisbulk serve`.
//!
//! Every QBP (Z34/Z44) answer goes into the audit trail with the caller's
//! address (`registry::Intake::receive_from`); VXUs are kept as accepted
//! messages and not audited one by one.

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
            matcher: matching::Matcher::built_in(),
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
    /// Refused logins (bad HL7 credentials) are recorded here.
    pub audit: registry::audit::AuditTrail,
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
            audit: registry::audit::AuditTrail::new(store.clone()),
            credentials: Credentials::new(users),
            intake: Intake::new(store, iis).with_queries(queries),
            config,
        }
    }
}

/// The Lambda's dependencies from its environment, as `main.rs` builds them
/// once per container (and the cloud end-to-end test builds them against
/// moto): `IISBULK_TABLE` (required), `IISBULK_DYNAMODB_ENDPOINT` (tests
/// only), `IISBULK_IIS_APPLICATION` / `IISBULK_IIS_FACILITY` (MSH-3/4 of our
/// answers), `IISBULK_MAX_MESSAGE_BYTES`, `IISBULK_PUBLIC_URL`,
/// `IISBULK_MATCHING_CONFIG` (matching TOML for history queries; the shipped
/// one otherwise), `IISBULK_MAX_QUERY_CANDIDATES` (Z31 cap, default 10),
/// `IISBULK_JURISDICTION_POLICY` (membership policy TOML text),
/// `IISBULK_CDSI_DATA` (below).
///
/// Z44 queries are evaluated and forecast with CDC CDSi supporting data
/// (stated in every Z42): the release folder `IISBULK_CDSI_DATA` names (in
/// the package or a mounted layer, named like CDC's: "4.65", or ".../Version
/// 4.65 - 508/XML"; the same loader as `iisbulk serve --cdsi-data`), or the
/// built-in 4.64 when it is unset or empty. A folder that does not load
/// stops the cold start, naming it.
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<IngestDeps, lambda_http::Error> {
    let table = settings::dynamodb_table()?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    let mut iis = iz::IisIdentity::default();
    if let Some(a) = settings::iis_sending_application() {
        iis.application = a;
    }
    if let Some(f) = settings::iis_sending_facility() {
        iis.facility = f;
    }
    let mut config = IngestConfig::default();
    if let Some(m) = settings::message_size_limit()? {
        config.max_message_bytes = m;
    }
    config.public_url = settings::optional_public_url();
    config.matcher = settings::configured_matcher()?;
    if let Some(n) = settings::query_candidate_limit()? {
        config.query_policy.max_candidates = n;
    }
    config.query_policy.cdsi_data = settings::pinned_cdsi_release()?;
    // The Z32/Z42 Group identifier follows the jurisdiction's membership policy.
    config.query_policy.jurisdiction = Arc::new(settings::jurisdiction_policy()?);
    Ok(IngestDeps::new(store, iis, config))
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

/// The caller's address, for the audit trail of queries: `iisbulk serve`
/// serves the router with its peer as `ConnectInfo<SocketAddr>`, and on
/// Lambda `lambda_edge` sets it from API Gateway's `sourceIp`; `None` where
/// the transport gives none.
pub(crate) fn source(
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Option<String> {
    peer.map(|axum::Extension(axum::extract::ConnectInfo(addr))| addr.ip().to_string())
}

/// The clock messages are judged by: wall time in production.
pub(crate) fn now() -> iz::Clock {
    iz::Clock::now()
}

/// Records a refused HL7 login (`hl7.login`, failure) under the username
/// given, cut short, with the route and the caller's address: what an
/// auditor needs to see a password being guessed. Accepted logins are not
/// recorded one per message (the accepted messages are kept already). A
/// failure to record is logged; the refusal stands either way.
pub(crate) async fn audit_refused_login(
    deps: &IngestDeps,
    route: &str,
    username: &str,
    source: Option<&str>,
) {
    use registry::audit::{Actor, ActorKind, AuditEvent, Outcome};
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut event = AuditEvent::new(
        Actor {
            kind: ActorKind::Unauthenticated,
            id: registry::audit::clean(username, 64),
        },
        "hl7.login",
        Outcome::Failure,
        at_ms,
    )
    .detail(format!("invalid username or password at {route}"));
    event.source = source.map(str::to_owned);
    if let Err(e) = deps.audit.record(&event).await {
        tracing::warn!(error = %e, route, "refused login not recorded in the audit trail");
    }
}
