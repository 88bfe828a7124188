//! The FHIR side's audit trail over HTTP, through the bulk-api router: reads
//! and searches, `$immds-forecast`, an export's kick-off, manifest, download
//! and cancellation are each found under `client/<client_id>` with the ids
//! they were about and the caller's address; refusals as failures; no name,
//! birth date or identifier anywhere in the trail; and a read whose event
//! cannot be stored is not answered.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use bulk_api::{router, BulkDeps};
use http_body_util::BodyExt;
use iz::{Clock, IisIdentity};
use registry::audit::{ActorKind, AuditEvent, AuditSearch, AuditTrail, Outcome};
use registry::export::ExportJobs;
use registry::membership::{change_event, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::{Clients, JwksSource, ASSERTION_TYPE};
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::faulty::FailingWrites;
use store::{ChangeFeed, ItemStore};
use tower::ServiceExt;

const BASE: &str = "https://iis.example.org";
const TOKEN_URL: &str = "https://iis.example.org/auth/token";

struct NoJwksUrls;

#[async_trait]
impl JwksSource for NoJwksUrls {
    async fn fetch(&self, _url: &str) -> Result<String, String> {
        Err("no JWKS URLs in this test".into())
    }
}

struct Iis {
    _dir: tempfile::TempDir,
    store: Arc<FailingWrites>,
    app: axum::Router,
    jobs: ExportJobs,
    key: SigningKey,
    client: String,
    group: String,
    /// In clinic A's Group; only clinic B reported the other.
    shared: String,
    only_b: String,
}

/// Patient details the trail must never hold.
const PHI: [&str; 7] = [
    "Chioma", "Okafor", "Eze", "20240305", "Birch", "A1-MRN", "Tunde",
];

fn vxu(fac: &str, ctl: &str, given: &str, dob: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{ctl}-MRN^^^{fac}^MR||Okafor^{given}^^^^^L|Eze^^^^^^M|{dob}|F|||7 Birch Ln^^Lansing^MI^48910^USA^P\r\
ORC|RE||{ctl}-1^{fac}\rRXA|0|1|{dob}||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

async fn iis() -> Iis {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let failing = Arc::new(FailingWrites::new(embedded.clone()));
    let store: Arc<dyn ItemStore> = failing.clone();
    let policy = Arc::new(JurisdictionPolicy::default());
    let users = AuthorizedUsers::new(store.clone());
    let mut made = Vec::new();
    for (id, fac) in [("clinic-a", "FACA"), ("clinic-b", "FACB")] {
        made.push(
            registry::membership::onboard(
                &users,
                NewAuthorizedUser {
                    id: id.into(),
                    kind: AuKind::Clinic,
                    name: id.into(),
                    facilities: vec![fac.into()],
                    username: id.into(),
                    password: "a long enough password".into(),
                },
                0,
                &policy,
            )
            .await
            .unwrap(),
        );
    }
    let clinic_b = made.pop().unwrap();
    let clinic_a = made.pop().unwrap();
    let matching = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let intake = Intake::new(store.clone(), IisIdentity::default());
    let mut persons = Vec::new();
    for (au, msg) in [
        (&clinic_a, vxu("FACA", "A1", "Chioma", "20240305")),
        (&clinic_b, vxu("FACB", "B2", "Tunde", "20211111")),
    ] {
        let d = intake
            .receive(
                au,
                &Transport::Rest,
                msg.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        persons.push(
            matching
                .process(&d.message_id.unwrap(), 1)
                .await
                .unwrap()
                .person,
        );
    }
    let membership = Membership::new(matching.persons().clone(), policy.clone());
    for c in embedded.read(None, 10_000).await.unwrap() {
        if let Some(e) = change_event(&c) {
            membership.apply(&e).await.unwrap();
        }
    }
    let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.public_jwk("a-1")],
    })
    .unwrap();
    let client = Clients::new(store.clone())
        .add("clinic-a", Some(&jwks), None, "system/*.rs", 0)
        .await
        .unwrap()
        .id;
    let blobs = store::DirBlobStore::open(dir.path().join("blobs")).unwrap();
    let mut jobs = ExportJobs::new(
        matching.persons().clone(),
        Arc::new(blobs),
        &policy.identifier_base,
    );
    jobs.min_poll_interval_ms = 0;
    let mut deps = BulkDeps::new(
        matching.persons().clone(),
        policy,
        BASE,
        Arc::new(NoJwksUrls),
    );
    deps.exports = Some(jobs.clone());
    Iis {
        _dir: dir,
        store: failing,
        app: router(Arc::new(deps)),
        jobs,
        key,
        client,
        group: clinic_a.group.clone().unwrap(),
        shared: persons[0].clone(),
        only_b: persons[1].clone(),
    }
}

/// The address every request in these tests comes from.
fn from() -> SocketAddr {
    "203.0.113.9:40001".parse().unwrap()
}

impl Iis {
    async fn call(&self, mut req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        req.extensions_mut().insert(ConnectInfo(from()));
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn token(&self) -> String {
        let claims = json!({"iss": self.client, "sub": self.client, "aud": TOKEN_URL,
            "exp": Clock::now().unix_seconds + 240, "jti": uuid::Uuid::new_v4().to_string()});
        let assertion = self.key.sign("a-1", &json!({}), &claims).unwrap();
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
            ("scope", "system/*.rs"),
        ])
        .unwrap();
        let (s, _, v) = self
            .call(
                Request::post("/auth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let v: Value = serde_json::from_str(&v).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::get(path)
            .header("accept", "application/fhir+json")
            .header("prefer", "respond-async");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        self.call(req.body(Body::empty()).unwrap()).await
    }

    /// Events by `actor`, oldest first.
    async fn audited(&self, actor: &str) -> Vec<AuditEvent> {
        let mut events = AuditTrail::new(self.store.clone())
            .search(&AuditSearch {
                actor: Some(actor.to_owned()),
                from_ms: 0,
                to_ms: (Clock::now().unix_seconds + 60) * 1000,
                limit: 1000,
                ..AuditSearch::default()
            })
            .await
            .unwrap();
        events.reverse();
        events
    }
}

/// The event of `action` that names `subject` first.
fn find<'a>(events: &'a [AuditEvent], action: &str, subject: &str) -> &'a AuditEvent {
    events
        .iter()
        .find(|e| e.action == action && e.subjects.first().map(String::as_str) == Some(subject))
        .unwrap_or_else(|| panic!("no {action} about {subject} in {events:#?}"))
}

#[tokio::test]
async fn reads_exports_and_downloads_are_audited_under_the_client_with_ids_and_address() {
    let iis = iis().await;
    let token = iis.token().await;
    let t = Some(token.as_str());
    let group = format!("Group/{}", iis.group);
    let person = format!("Person/{}", iis.shared);

    let (s, _, body) = iis.get(&format!("/fhir/Group/{}", iis.group), t).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = iis.get(&format!("/fhir/Patient/{}", iis.shared), t).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(
        body.contains("Chioma"),
        "the read itself returns the Patient"
    );
    let (s, _, body) = iis
        .get(&format!("/fhir/Immunization?patient={}", iis.shared), t)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let bundle: Value = serde_json::from_str(&body).unwrap();
    let immunization = bundle["entry"][0]["resource"]["id"].as_str().unwrap();
    // Not in the caller's Group: not found, and recorded as refused.
    let (s, _, _) = iis.get(&format!("/fhir/Patient/{}", iis.only_b), t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let forecast = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": format!("Patient/{}", iis.shared)}}]});
    let (s, _, body) = iis
        .call(
            Request::post("/fhir/$immds-forecast")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .body(Body::from(forecast.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // An export: kick-off, polls, manifest, a download, then its cancellation.
    let (s, h, body) = iis
        .get(
            &format!(
                "/fhir/Group/{}/$export?_type=Patient,Immunization",
                iis.group
            ),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let status_url = h["content-location"].to_str().unwrap().to_owned();
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    let export_job = format!("ExportJob/{job}");
    let (s, _, _) = iis.get(status_url.strip_prefix(BASE).unwrap(), t).await;
    assert_eq!(s, StatusCode::ACCEPTED, "the first poll is in progress");
    iis.jobs.run_here(&job).await.unwrap();
    let (s, _, manifest) = iis.get(status_url.strip_prefix(BASE).unwrap(), t).await;
    assert_eq!(s, StatusCode::OK, "{manifest}");
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let url = manifest["output"][0]["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with("/Patient.001.ndjson"), "{url}");
    let (s, _, ndjson) = iis.get(url.strip_prefix(BASE).unwrap(), t).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ndjson.contains("Chioma"), "the file holds the Patient");
    let (s, _, _) = iis
        .call(
            Request::delete(status_url.strip_prefix(BASE).unwrap())
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // A token that is not one; and no token at all, which names no one.
    let (s, _, _) = iis
        .get(&format!("/fhir/Patient/{}", iis.shared), Some("forged"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = iis
        .get(&format!("/fhir/Patient/{}", iis.shared), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let events = iis.audited(&format!("client/{}", iis.client)).await;
    for e in &events {
        assert_eq!(e.actor.kind, ActorKind::Client);
        assert_eq!(e.source.as_deref(), Some("203.0.113.9"), "{e:#?}");
    }
    let read = find(&events, "fhir.read", &group);
    assert_eq!(read.outcome, Outcome::Success);
    assert_eq!(read.subjects, std::slice::from_ref(&group));
    assert_eq!(read.detail, "Group read, quantity: 1, members listed: 1");
    let patient = find(&events, "fhir.read", &person);
    assert_eq!(
        (patient.outcome, patient.detail.as_str()),
        (Outcome::Success, "Patient read")
    );
    let search = find(&events, "fhir.search", &person);
    assert_eq!(
        search.subjects,
        [person.clone(), format!("Immunization/{immunization}")]
    );
    assert_eq!(search.detail, "Immunization search, results: 1");
    let refused = find(&events, "fhir.read", &format!("Person/{}", iis.only_b));
    assert_eq!(refused.outcome, Outcome::Failure);
    assert_eq!(refused.detail, "refused 404: Patient read");
    let forecast = find(&events, "fhir.immds-forecast", &person);
    assert_eq!(
        (forecast.outcome, forecast.detail.as_str()),
        (Outcome::Success, "registry patient, doses: 1")
    );
    let kick_off = find(&events, "fhir.export.kick-off", &group);
    assert_eq!(kick_off.subjects, [group.clone(), export_job.clone()]);
    assert_eq!(
        kick_off.detail,
        "GET _type=Patient,Immunization; _since=none"
    );
    // Polls in progress are not recorded; the manifest is, once.
    let manifests: Vec<_> = events
        .iter()
        .filter(|e| e.action == "fhir.export.manifest")
        .collect();
    assert_eq!(manifests.len(), 1, "{events:#?}");
    assert_eq!(manifests[0].subjects, [export_job.clone(), group.clone()]);
    assert_eq!(
        manifests[0].detail,
        "manifest: 2 output, 0 deleted, 0 error files; served with the token"
    );
    let download = find(&events, "fhir.export.download", &export_job);
    assert_eq!(download.outcome, Outcome::Success);
    assert_eq!(download.subjects, [export_job.clone(), group.clone()]);
    let name = url.split(&format!("/bulkfiles/{job}/")).nth(1).unwrap();
    assert!(name.ends_with("Patient.001.ndjson"), "{name}");
    assert_eq!(download.detail, format!("file {name}"));
    let cancel = find(&events, "fhir.export.cancel", &export_job);
    assert_eq!(cancel.outcome, Outcome::Success);
    // Each request once (the token request is the token endpoint's event).
    assert_eq!(
        events.iter().filter(|e| e.action != "smart.token").count(),
        9,
        "{events:#?}"
    );

    // The forged token is recorded as such; the request without one is not.
    let forged = iis.audited("unauthenticated/invalid-token").await;
    assert_eq!(forged.len(), 1, "{forged:#?}");
    assert_eq!(forged[0].outcome, Outcome::Failure);
    assert_eq!(forged[0].subjects, std::slice::from_ref(&person));
    assert_eq!(forged[0].detail, "refused 401: Patient read");

    // A subject search finds every read of the child, whoever made it.
    let about = AuditTrail::new(iis.store.clone())
        .search(&AuditSearch {
            subject: Some(person.clone()),
            from_ms: 0,
            to_ms: (Clock::now().unix_seconds + 60) * 1000,
            limit: 100,
            ..AuditSearch::default()
        })
        .await
        .unwrap();
    assert_eq!(about.len(), 4, "{about:#?}");

    // Ids only, never what the reads returned.
    let text = serde_json::to_string(&(events, forged)).unwrap();
    for phi in PHI {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
}

#[tokio::test]
async fn a_read_or_download_whose_event_cannot_be_stored_is_not_answered() {
    let iis = iis().await;
    let token = iis.token().await;
    let t = Some(token.as_str());
    let (s, h, _) = iis
        .get(&format!("/fhir/Group/{}/$export", iis.group), t)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status_url = h["content-location"].to_str().unwrap().to_owned();
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    iis.jobs.run_here(&job).await.unwrap();
    let (s, _, _) = iis.get(status_url.strip_prefix(BASE).unwrap(), t).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, manifest) = iis.get(status_url.strip_prefix(BASE).unwrap(), t).await;
    assert_eq!(s, StatusCode::OK, "{manifest}");
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let file = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "Patient")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_owned();

    // The store takes no writes: no event, so no data.
    iis.store.fail_writes(true);
    for path in [format!("/fhir/Patient/{}", iis.shared), file.clone()] {
        let (s, _, body) = iis.get(&path, t).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        for phi in PHI {
            assert!(!body.contains(phi), "{phi} in {body}");
        }
    }
    // A refusal discloses nothing and is still answered.
    let (s, _, _) = iis.get(&format!("/fhir/Patient/{}", iis.only_b), t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Once the store is back, so are the answers.
    iis.store.fail_writes(false);
    let (s, _, body) = iis.get(&file, t).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("Chioma"));
}
