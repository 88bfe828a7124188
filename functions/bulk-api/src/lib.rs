//! # bulk-api — the FHIR side of the IIS
//!
//! An axum [`Router`] (the same routes run in Lambda and in the local
//! process): SMART Backend Services discovery and token endpoint, and reads
//! of an Authorized User's Group and of the Patients and Immunizations of
//! its members. Every FHIR route needs a bearer token; a token opens only its
//! own Authorized User's Group. `POST /fhir/$immds-forecast` (HL7 ImmDS)
//! evaluates and forecasts supplied data, or a member of that Group, with
//! CDC CDSi. Every FHIR request that names a caller goes into the audit
//! trail (`registry::audit`); a read whose event cannot be stored is not
//! answered.

mod audited;
mod bulk_match_routes;
mod caller;
mod export_routes;
mod forecast;
mod jwks;
mod match_routes;
mod member_routes;
pub mod rate_limit;
mod read;
mod response;
mod smart_routes;

pub use jwks::HttpJwks;
pub use rate_limit::{RateLimit, SourceLimiter};

use std::sync::Arc;

use axum::routing::get;
use axum::routing::post;
use axum::Router;
use registry::membership::{Groups, JurisdictionPolicy, Membership};
use registry::persons::Persons;
use registry::smart::{JwksSource, Tokens};
use registry::AuthorizedUsers;

/// Groups larger than this are read summarised (no member list; SUBSETTED).
pub const DEFAULT_MAX_INLINE_MEMBERS: u32 = 1000;

#[derive(Clone)]
pub struct BulkDeps {
    pub users: AuthorizedUsers,
    pub tokens: Tokens,
    pub groups: Groups,
    pub patients: Persons,
    /// Client-managed membership (`$member-add`, `$member-remove`).
    pub membership: Membership,
    /// The matcher's use cases for `Patient/$match` and for naming a
    /// member by chart number or demographics; `None` where this
    /// deployment does not match (those requests are answered 501).
    pub queries: Option<registry::queries::Queries>,
    pub policy: Arc<JurisdictionPolicy>,
    /// The server's public base URL (`https://iis.example`): the FHIR base
    /// is `<base>/fhir`, the token endpoint (and the only `aud` accepted in
    /// client assertions) `<base>/auth/token`.
    pub public_url: String,
    pub max_inline_members: u32,
    /// Bulk export (jobs and their files); `None` where no blob store is
    /// configured, and kick-offs are refused as not supported.
    pub exports: Option<registry::export::ExportJobs>,
    /// `Patient/$bulk-match` jobs; `None` where this deployment runs no
    /// bulk match worker (kick-offs are answered 501).
    pub bulk_match: Option<registry::bulk_match::BulkMatchJobs>,
    /// The CDSi supporting data `$immds-forecast` uses: a release the
    /// jurisdiction pinned, or `None` for the built-in one.
    pub cdsi_data: Option<Arc<cdsi::SupportingData>>,
    /// Token requests per source address ([`RateLimit::TOKEN_ENDPOINT`] by
    /// default). A request whose address the transport did not give (see
    /// [`router`]) is not limited here.
    pub token_limiter: Arc<SourceLimiter>,
    /// Where every FHIR read, search, `$immds-forecast`, export kick-off,
    /// manifest, cancellation and download is recorded (token requests are
    /// recorded by [`Tokens`]).
    pub audit: registry::audit::AuditTrail,
}

impl std::fmt::Debug for BulkDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkDeps")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl BulkDeps {
    pub fn new(
        patients: Persons,
        policy: Arc<JurisdictionPolicy>,
        public_url: &str,
        jwks: Arc<dyn JwksSource>,
    ) -> Self {
        let store = patients.store_arc();
        let public_url = public_url.trim_end_matches('/').to_owned();
        BulkDeps {
            users: AuthorizedUsers::new(store.clone()),
            tokens: Tokens::new(store.clone(), jwks, format!("{public_url}/auth/token")),
            groups: Groups::new(store.clone()),
            membership: Membership::new(patients.clone(), policy.clone()),
            queries: None,
            patients,
            policy,
            public_url,
            max_inline_members: DEFAULT_MAX_INLINE_MEMBERS,
            exports: None,
            bulk_match: None,
            cdsi_data: None,
            token_limiter: Arc::new(SourceLimiter::new(RateLimit::TOKEN_ENDPOINT)),
            audit: registry::audit::AuditTrail::new(store),
        }
    }

    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.public_url)
    }
}

/// The FHIR side: discovery, the token endpoint, and the reads of the
/// caller's Group and its members.
///
/// The token endpoint is rate limited per caller address, which it reads
/// from the request's `ConnectInfo<SocketAddr>` extension: `iisbulk serve`
/// serves the router with `into_make_service_with_connect_info`, and on
/// Lambda `lambda_edge` sets it from API Gateway's `sourceIp`. Every FHIR
/// route records that address in its audit events (see `audited.rs`). Without an
/// address the request is not limited in process (one shared bucket would
/// let any caller exhaust it for every client, the denial of service the
/// limit is there to prevent); the stack's API Gateway throttling still
/// caps the route.
pub fn router(deps: Arc<BulkDeps>) -> Router {
    // A bulk match body is as large as the deployment allows (the route
    // answers 413 itself above it); every other route keeps axum's default.
    let bulk_match_body = deps
        .bulk_match
        .as_ref()
        .map_or(0, |b| b.max_body_bytes)
        .saturating_add(1);
    Router::new()
        .route("/auth/token", post(smart_routes::token))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_routes::smart_configuration),
        )
        .route("/fhir/metadata", get(smart_routes::metadata))
        .route("/fhir/Group", get(read::search_groups))
        .route("/fhir/Group/{id}", get(read::group))
        .route("/fhir/Patient/{id}", get(read::patient))
        .route("/fhir/Patient/$match", post(match_routes::patient_match))
        .route(
            "/fhir/Patient/$bulk-match",
            post(bulk_match_routes::kick_off)
                .layer(axum::extract::DefaultBodyLimit::max(bulk_match_body)),
        )
        .route(
            "/fhir/bulkmatch-status/{job}",
            get(bulk_match_routes::status).delete(bulk_match_routes::cancel),
        )
        .route(
            "/fhir/bulkmatch-files/{job}/{file}",
            get(bulk_match_routes::file),
        )
        .route(
            "/fhir/Group/{id}/$member-add",
            post(member_routes::member_add),
        )
        .route(
            "/fhir/Group/{id}/$member-remove",
            post(member_routes::member_remove),
        )
        .route("/fhir/Immunization", get(read::search_immunizations))
        .route("/fhir/$immds-forecast", post(forecast::immds_forecast))
        .route(
            "/fhir/Group/{id}/$export",
            get(export_routes::kick_off_get).post(export_routes::kick_off_post),
        )
        .route(
            "/fhir/bulkstatus/{job}",
            get(export_routes::status).delete(export_routes::cancel),
        )
        .route("/fhir/bulkfiles/{job}/{*file}", get(export_routes::file))
        .with_state(deps)
}

/// How long a presigned file URL in a manifest works.
#[cfg(feature = "lambda")]
pub const PRESIGNED_URL_LIFETIME: std::time::Duration = settings::PRESIGNED_URL_LIFETIME;

/// The largest `Patient/$bulk-match` body on Lambda: a synchronous
/// invocation carries at most 6 MB, and API Gateway passes an
/// `application/fhir+json` body base64-encoded (4/3 of its size), so about
/// 4.5 MB of body fits; a larger one never reaches the function.
#[cfg(feature = "lambda")]
pub const LAMBDA_BULK_MATCH_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The Lambda's dependencies from its environment (every variable read by
/// [`settings`]), as `main.rs` builds them once per container (and the
/// cloud end-to-end test builds them against moto): `IISBULK_TABLE`
/// (required), `IISBULK_PUBLIC_URL` (required: the public base URL; the
/// token endpoint, and the only `aud` accepted in client assertions, is
/// `<it>/auth/token`), `IISBULK_BUCKET` (required) and
/// `IISBULK_EXPORT_PREFIX` (the bucket and key prefix of export and bulk
/// match files), `IISBULK_EXPORT_RETENTION_HOURS` (default 24; bulk match
/// files too), `IISBULK_JURISDICTION_POLICY` (membership policy TOML text),
/// `IISBULK_MATCHING_CONFIG` (matching TOML for `Patient/$match` and bulk
/// match; the shipped one otherwise), `IISBULK_CDSI_DATA` (a CDSi
/// supporting-data release folder for `$immds-forecast`; empty or unset:
/// the built-in release), `IISBULK_TOKEN_BURST` and
/// `IISBULK_TOKEN_RATE_PER_SECOND` ([`token_rate_limit_from_env`]), and for
/// tests `IISBULK_DYNAMODB_ENDPOINT` / `IISBULK_S3_ENDPOINT`.
///
/// `Patient/$bulk-match` kick-offs are queued here and run by the export
/// worker function (a new job item on the table's stream), which builds the
/// same [`registry::bulk_match::BulkMatchJobs`] with
/// [`settings::bulk_match_jobs`].
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<BulkDeps, lambda_http::Error> {
    let table = settings::dynamodb_table()?;
    let public_url = settings::https_public_url()?;
    let policy = Arc::new(settings::jurisdiction_policy()?);
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    // Reads persons and histories; never matches.
    let patients = Persons::new(store.clone());
    let s3: Arc<dyn store::BlobStore> = Arc::new(blob_s3::S3BlobStore::from_env().await?);
    // The API reads, deletes and presigns export files; only the export
    // worker writes them.
    let export_blobs: Arc<dyn store::BlobStore> = Arc::new(store::NoUploads(s3.clone()));
    let cdsi_data = settings::pinned_cdsi_release()?;
    let retention = settings::export_retention_seconds()?;
    let mut jobs =
        registry::export::ExportJobs::new(patients.clone(), export_blobs, &policy.identifier_base);
    jobs.cdsi_data = cdsi_data.clone();
    jobs.retention = retention;
    // Files are fetched from S3 with URLs minted at each status poll.
    jobs.presign_for = Some(PRESIGNED_URL_LIFETIME);
    let queries = settings::configured_match_queries(store.clone(), policy.clone())?;
    // A kick-off writes its input patients (the role may write only under
    // the bulk match prefix); results are presigned like export files.
    let mut bulk_match =
        settings::bulk_match_jobs(store, s3, queries.clone(), &public_url, &policy, retention);
    bulk_match.max_body_bytes = LAMBDA_BULK_MATCH_MAX_BODY_BYTES;
    let mut deps = BulkDeps::new(patients, policy, &public_url, Arc::new(HttpJwks::new()?));
    deps.queries = Some(queries);
    deps.bulk_match = Some(bulk_match);
    deps.exports = Some(jobs);
    deps.cdsi_data = cdsi_data;
    deps.token_limiter = Arc::new(SourceLimiter::new(token_rate_limit_from_env()?));
    Ok(deps)
}

/// The token endpoint's per-source limit in one Lambda container:
/// `IISBULK_TOKEN_BURST` (requests at once, default 20) and
/// `IISBULK_TOKEN_RATE_PER_SECOND` (default 1); unset or empty keeps the
/// default. Each container counts alone; the API's route throttling caps
/// the whole route.
#[cfg(feature = "lambda")]
pub fn token_rate_limit_from_env() -> Result<RateLimit, String> {
    let default = RateLimit::TOKEN_ENDPOINT;
    let burst = settings::token_burst_limit()?.unwrap_or(default.burst);
    let per_second = settings::token_rate_limit_per_second()?.unwrap_or(default.per_second);
    RateLimit::new(burst, per_second).map_err(|e| format!("the token endpoint's rate limit: {e}"))
}
