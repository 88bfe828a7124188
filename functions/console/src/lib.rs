//! # console — the IIS console's JSON API (issue 25)
//!
//! An axum [`Router`] under `/console/api/`, served by `iisbulk serve` beside
//! the ingest and FHIR routes, and in the stack by a Lambda of its own (the
//! `lambda` feature: `src/main.rs` and `deps_from_env`) over the table.
//! Staff log in with a password (and a TOTP code for administrators),
//! receive a session cookie (HttpOnly, SameSite=Strict, Secure except on a
//! loopback `http://` URL) and a CSRF token, which every state-changing
//! request sends back in `X-CSRF-Token`. Each route names the roles that
//! may use it. Errors are RFC 9457 problem documents.
//!
//! It covers sessions, staff administration, the possible-duplicate queue,
//! persons, onboarding Authorized Users and the audit trail of all of it;
//! the web page at `/console/` ([`web`]) is a thin client of the same API.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod au_routes;
mod audit_routes;
mod client_routes;
mod group_routes;
mod peer;
mod person_routes;
mod problem;
mod review_routes;
mod session;
mod staff_routes;
mod web;

pub use problem::{Problem, PROBLEM_JSON};

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use registry::audit::AuditTrail;
use registry::membership::JurisdictionPolicy;
use registry::patients::PatientMatching;
use registry::staff::Staff;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "iisbulk_console";
/// The header that carries a session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Request bodies larger than this are refused (413): console forms are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct ConsoleDeps {
    pub staff: Staff,
    /// The registry's persons, and the matcher for reviewers' link edits
    /// (merges rebuild histories and re-file blocking keys as it does).
    pub patients: PatientMatching,
    /// The jurisdiction's policy: which kinds of Authorized User get a Group.
    pub policy: Arc<JurisdictionPolicy>,
    /// Every staff action, login and read is recorded here.
    pub audit: AuditTrail,
    /// Whether the session cookie carries `Secure` (browsers send it only
    /// over HTTPS); off only for a loopback `http://` URL, where browsers
    /// would otherwise drop it.
    pub secure_cookies: bool,
    /// The session cookie's `Path`: `/console` under the public URL's own
    /// path (`/prod/console` behind an API Gateway stage `prod`), so the
    /// browser sends the cookie to the console's API wherever it is served.
    pub cookie_path: String,
}

impl ConsoleDeps {
    /// Cookies are `Secure` unless the public URL is plain HTTP on the
    /// loopback interface.
    pub fn new(
        patients: PatientMatching,
        policy: Arc<JurisdictionPolicy>,
        public_url: &str,
    ) -> Self {
        ConsoleDeps {
            staff: Staff::new(patients.persons().store_arc()),
            audit: AuditTrail::new(patients.persons().store_arc()),
            patients,
            policy,
            secure_cookies: !is_loopback_http(public_url),
            cookie_path: cookie_path(public_url),
        }
    }
}

/// `/console` under the path of the public URL (without its trailing
/// slash). A path with anything a cookie attribute or a header cannot hold
/// plainly is not used: the cookie then names `/console`, as at the root.
fn cookie_path(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    let path = path.trim_end_matches('/');
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~' | b'%'));
    if plain {
        format!("{path}/console")
    } else {
        tracing::warn!(
            "the public URL's path cannot be a cookie path; the console cookie names /console"
        );
        "/console".to_owned()
    }
}

/// The Lambda's dependencies from its environment, as `main.rs` builds them
/// once per container (and the cloud end-to-end test builds them against
/// moto), read as bulk-api and the matcher read theirs: `IISBULK_TABLE`
/// (required), `IISBULK_PUBLIC_URL` (required, `https://…`: the session
/// cookie is then `Secure`), `IISBULK_JURISDICTION_POLICY` (the policy TOML
/// text; the shipped policy otherwise), `IISBULK_MATCHING_CONFIG` (a
/// matching configuration TOML file path; the shipped one otherwise: the
/// package holds only `bootstrap`), and for tests
/// `IISBULK_DYNAMODB_ENDPOINT`.
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<ConsoleDeps, lambda_http::Error> {
    let table = settings::dynamodb_table()?;
    let public_url = settings::https_public_url()?;
    let policy = Arc::new(settings::jurisdiction_policy()?);
    let matcher = settings::configured_matcher()?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    // Reviewers' merges and unmerges re-file persons as the matcher
    // function does: the same configuration and vaccination rules.
    let patients = PatientMatching::new(store, matcher)
        .with_vaccination_rules(policy.vaccination_events.clone());
    Ok(ConsoleDeps::new(patients, policy, &public_url))
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The API's OpenAPI 3.1 description, served at `/console/api/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// The console API routes and the web page that uses them.
pub fn router(deps: Arc<ConsoleDeps>) -> Router {
    Router::new()
        .route(
            "/console/api/session",
            get(session::current)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/console/api/persons/{person}", get(person_routes::show))
        .route(
            "/console/api/persons/{person}/unmerge",
            axum::routing::post(person_routes::unmerge),
        )
        .route("/console/api/openapi.json", get(openapi))
        .route(
            "/console/api/authorized-users",
            get(au_routes::list).post(au_routes::add),
        )
        .route(
            "/console/api/authorized-users/{au}",
            axum::routing::patch(au_routes::edit),
        )
        .route(
            "/console/api/authorized-users/{au}/clients",
            get(client_routes::list).post(client_routes::add),
        )
        .route(
            "/console/api/clients/{client}/jwks",
            axum::routing::put(client_routes::rotate),
        )
        .route(
            "/console/api/clients/{client}",
            axum::routing::delete(client_routes::remove),
        )
        .route("/console/api/groups/{group}", get(group_routes::show))
        .route(
            "/console/api/groups/{group}/members/{person}/remove",
            axum::routing::post(group_routes::remove),
        )
        .route(
            "/console/api/groups/{group}/reset",
            axum::routing::post(group_routes::reset),
        )
        .route("/console/api/audit", get(audit_routes::search))
        .route("/console/api/audit/export", get(audit_routes::export))
        .route("/console/api/review", get(review_routes::queue))
        .route(
            "/console/api/review/{person}",
            axum::routing::post(review_routes::decide),
        )
        .route(
            "/console/api/staff",
            get(staff_routes::list).post(staff_routes::add),
        )
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(peer::keep_source))
        .with_state(deps)
}

/// A JSON answer (`application/json`), never cached: it can hold a CSRF
/// token or an enrolment secret.
pub(crate) fn json(
    status: axum::http::StatusCode,
    value: &serde_json::Value,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        value.to_string(),
    )
        .into_response()
}

/// Wall-clock milliseconds, for audit events and decisions.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Wall-clock seconds, as sessions and lockouts are judged.
fn now() -> i64 {
    iz::Clock::now().unix_seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_path_is_the_console_under_the_public_urls_path() {
        for (url, path) in [
            ("https://iis.example.gov", "/console"),
            ("https://iis.example.gov/", "/console"),
            ("http://127.0.0.1:8080", "/console"),
            (
                "https://abc.execute-api.us-east-1.amazonaws.com/prod",
                "/prod/console",
            ),
            (
                "https://abc.execute-api.us-east-1.amazonaws.com/prod/",
                "/prod/console",
            ),
            ("https://iis.example.gov/a/b?x=1", "/a/b/console"),
            ("https://iis.example.gov?x=/y", "/console"),
            ("https://iis.example.gov/bad;path", "/console"),
        ] {
            assert_eq!(cookie_path(url), path, "{url}");
        }
    }

    #[test]
    fn only_plain_http_on_loopback_drops_the_secure_flag() {
        for (url, loopback) in [
            ("http://127.0.0.1:8080", true),
            ("http://localhost:8080/", true),
            ("http://[::1]:8080", true),
            ("http://127.0.0.1", true),
            ("https://127.0.0.1:8080", false),
            ("http://iis.example.gov", false),
            ("http://10.0.0.5:8080", false),
            ("https://iis.example.gov", false),
        ] {
            assert_eq!(is_loopback_http(url), loopback, "{url}");
        }
    }
}
