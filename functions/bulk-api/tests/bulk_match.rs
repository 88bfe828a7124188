//! `Patient/$bulk-match` over HTTP through the bulk-api router, jobs run by
//! `BulkMatchJobs::run_pending` as `iisbulk serve`'s worker runs them:
//! kick-off, progress, manifest, downloads with each result Bundle tied to
//! its input id (certain, possible and no match), another Authorized User's
//! job, the limits (413 patients and bytes, 429 a second job), malformed
//! requests naming the parameter, cancel, the audit trail, and 501 where
//! not configured.
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
use registry::audit::{AuditSearch, AuditTrail, Outcome};
use registry::bulk_match::BulkMatchJobs;
use registry::membership::{JurisdictionPolicy, PossibleMatches};
use registry::patients::PatientMatching;
use registry::queries::{Queries, QueryPolicy};
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::{Clients, JwksSource, ASSERTION_TYPE};
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::ItemStore;
use tower::ServiceExt;

const BASE: &str = "https://iis.example.org";
const TOKEN_URL: &str = "https://iis.example.org/auth/token";
const KICK_OFF: &str = "/fhir/Patient/$bulk-match";

struct NoJwksUrls;

#[async_trait]
impl JwksSource for NoJwksUrls {
    async fn fetch(&self, _url: &str) -> Result<String, String> {
        Err("no JWKS URLs in this test".into())
    }
}

struct Iis {
    _dir: tempfile::TempDir,
    store: Arc<dyn ItemStore>,
    app: axum::Router,
    jobs: BulkMatchJobs,
    key: SigningKey,
    /// Clinic A's client (system/*.rs).
    reader_a: String,
    /// Clinic B's client (system/*.rs).
    reader_b: String,
    /// Clinic A's client without Patient search.
    groups_only: String,
    /// Reported by clinic B.
    tunde: String,
}

fn vxu(fac: &str, ctl: &str, family: &str, given: &str, dob: &str, sex: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{ctl}-MRN^^^{fac}^MR||{family}^{given}^^^^^L|Eze^^^^^^M|{dob}|{sex}|||7 Birch Ln^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550142\r\
ORC|RE||{ctl}-1^{fac}\rRXA|0|1|{dob}||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

/// Two clinics; clinic B reported Tunde and Adaeze, clinic A Chioma.
/// `configure` adjusts the bulk match limits before the router is built.
async fn iis(policy: JurisdictionPolicy, configure: impl FnOnce(&mut BulkMatchJobs)) -> Iis {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let store: Arc<dyn ItemStore> = embedded.clone();
    let policy = Arc::new(policy);
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
        (
            &clinic_a,
            vxu("FACA", "A1", "Okafor", "Chioma", "20240305", "F"),
        ),
        (
            &clinic_b,
            vxu("FACB", "B2", "Okafor", "Tunde", "20211111", "M"),
        ),
        (
            &clinic_b,
            vxu("FACB", "B3", "Nwosu", "Adaeze", "20220117", "F"),
        ),
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
    let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.public_jwk("a-1")],
    })
    .unwrap();
    let clients = Clients::new(store.clone());
    let mut ids = Vec::new();
    for (au, scope) in [
        ("clinic-a", "system/*.rs"),
        ("clinic-b", "system/*.rs"),
        ("clinic-a", "system/Group.rs"),
    ] {
        ids.push(
            clients
                .add(au, Some(&jwks), None, scope, 0)
                .await
                .unwrap()
                .id,
        );
    }
    let (reader_a, reader_b, groups_only) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let mut deps = BulkDeps::new(
        matching.persons().clone(),
        policy.clone(),
        BASE,
        Arc::new(NoJwksUrls),
    );
    let queries = Queries::new(
        matching.clone(),
        QueryPolicy {
            jurisdiction: policy.clone(),
            ..Default::default()
        },
    );
    deps.queries = Some(queries.clone());
    let blobs = store::DirBlobStore::open(dir.path().join("blobs")).unwrap();
    let mut jobs = BulkMatchJobs::new(
        store.clone(),
        Arc::new(blobs),
        queries,
        &deps.fhir_base(),
        &policy.identifier_base,
    );
    configure(&mut jobs);
    deps.bulk_match = Some(jobs.clone());
    Iis {
        app: router(Arc::new(deps)),
        _dir: dir,
        store,
        jobs,
        key,
        reader_a,
        reader_b,
        groups_only,
        tunde: persons[1].clone(),
    }
}

impl Iis {
    async fn call(&self, mut req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let addr: SocketAddr = "203.0.113.9:40001".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
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

    async fn token(&self, client: &str, scope: &str) -> String {
        let claims = json!({"iss": client, "sub": client, "aud": TOKEN_URL,
            "exp": Clock::now().unix_seconds + 240, "jti": uuid::Uuid::new_v4().to_string()});
        let assertion = self.key.sign("a-1", &json!({}), &claims).unwrap();
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
            ("scope", scope),
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

    /// A kick-off: the status and, for a 202, the status path.
    async fn kick_off(&self, token: &str, body: &Value) -> (StatusCode, Value, Option<String>) {
        let (s, h, text) = self
            .call(
                Request::post(KICK_OFF)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/fhir+json")
                    .header("accept", "application/fhir+json")
                    .header("prefer", "respond-async")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        let location = h
            .get("content-location")
            .map(|v| v.to_str().unwrap().strip_prefix(BASE).unwrap().to_owned());
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            location,
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        self.call(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn delete(&self, path: &str, token: &str) -> StatusCode {
        self.call(
            Request::delete(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .0
    }

    async fn events(&self, client: &str) -> Vec<registry::audit::AuditEvent> {
        AuditTrail::new(self.store.clone())
            .search(&AuditSearch {
                actor: Some(format!("client/{client}")),
                from_ms: 0,
                to_ms: (Clock::now().unix_seconds + 60) * 1000,
                limit: 1000,
                ..AuditSearch::default()
            })
            .await
            .unwrap()
    }
}

/// Keeps a resource for the independent FHIR validation (scripts/test).
fn keep_sample(name: &str, resource: &Value) {
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("bulk-match-{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

fn resource(id: &str, patient: Value) -> Value {
    let mut p = patient;
    p["id"] = json!(id);
    json!({"name": "resource", "resource": p})
}

fn parameters(list: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": list})
}

/// Tunde as clinic B reported him: a certain match.
fn tunde() -> Value {
    json!({"resourceType": "Patient",
        "name": [{"family": "Okafor", "given": ["Tunde"]}],
        "birthDate": "2021-11-11", "gender": "male",
        "address": [{"line": ["7 Birch Ln"], "city": "Lansing", "state": "MI", "postalCode": "48910"}],
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Eze"}]})
}

/// Tunde's name and sex a day off: a possible match only.
fn tunde_a_day_off() -> Value {
    json!({"resourceType": "Patient",
        "name": [{"family": "Okafor", "given": ["Tunde"]}], "birthDate": "2021-11-12", "gender": "male"})
}

/// Nobody the registry holds.
fn stranger() -> Value {
    json!({"resourceType": "Patient",
        "name": [{"family": "Lindqvist", "given": ["Sven"]}], "birthDate": "2019-03-08", "gender": "male"})
}

fn diagnostics(v: &Value) -> String {
    v["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_bulk_match_answers_each_input_by_its_id_in_ndjson_bundles() {
    let iis = iis(
        JurisdictionPolicy {
            possible_matches: PossibleMatches::Listed,
            fhir_match: true,
            ..Default::default()
        },
        // Two files, so the split is exercised.
        |j| j.max_per_file = 2,
    )
    .await;
    let token = iis.token(&iis.reader_a, "system/*.rs").await;
    let body = parameters(vec![
        resource("in-certain", tunde()),
        resource("in-possible", tunde_a_day_off()),
        resource("in-none", stranger()),
    ]);
    let (s, v, location) = iis.kick_off(&token, &body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let status = location.unwrap();
    assert!(status.starts_with("/fhir/bulkmatch-status/"), "{status}");

    // Queued: in progress.
    let (s, h, _) = iis.get(&status, &token).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(h["x-progress"], "queued");
    assert!(h.contains_key("retry-after"));

    assert_eq!(iis.jobs.run_pending(10).await.unwrap(), 1);
    let (s, h, text) = iis.get(&status, &token).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(h.contains_key("expires"));
    let manifest: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["request"], format!("{BASE}{KICK_OFF}"));
    assert_eq!(manifest["error"], json!([]));
    assert!(manifest["transactionTime"].is_string());
    let output = manifest["output"].as_array().unwrap();
    assert_eq!(output.len(), 2, "{manifest}");
    assert_eq!(
        output
            .iter()
            .map(|o| o["count"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    let mut bundles = Vec::new();
    for o in output {
        assert_eq!(o["type"], "Bundle");
        let url = o["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
        let (s, h, text) = iis.get(url, &token).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        assert_eq!(h["content-type"], "application/fhir+ndjson");
        for line in text.lines() {
            bundles.push(serde_json::from_str::<Value>(line).unwrap());
        }
    }
    // In input order, each named by its input id.
    let ids: Vec<_> = bundles
        .iter()
        .map(|b| {
            assert_eq!(
                b["meta"]["extension"][0]["url"],
                "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/match-resource",
                "{b}"
            );
            assert!(
                b["link"][0]["url"]
                    .as_str()
                    .unwrap()
                    .ends_with("/Patient/$bulk-match"),
                "{b}"
            );
            b["meta"]["extension"][0]["valueReference"]["reference"]
                .as_str()
                .unwrap()
                .strip_prefix("Patient/")
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["in-certain", "in-possible", "in-none"]);
    let (certain, possible, none) = (&bundles[0], &bundles[1], &bundles[2]);
    keep_sample("certain", certain);
    keep_sample("possible", possible);
    keep_sample("none", none);
    for b in &bundles {
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "searchset");
    }
    assert_eq!(certain["total"], 1);
    assert_eq!(certain["entry"][0]["resource"]["id"], iis.tunde.as_str());
    assert_eq!(
        certain["entry"][0]["search"]["extension"][0]["valueCode"],
        "certain"
    );
    // With demographics, as $match gives a certain match.
    assert_eq!(
        certain["entry"][0]["resource"]["name"][0]["family"],
        "Okafor"
    );
    assert_eq!(possible["total"], 1, "{possible}");
    assert_eq!(
        possible["entry"][0]["search"]["extension"][0]["valueCode"],
        "possible"
    );
    assert!(possible["entry"][0]["resource"].get("telecom").is_none());
    assert_eq!(none["total"], 0, "{none}");

    // A lookup: no relationship, even under fhir_match.
    let groups = registry::membership::Groups::new(iis.store.clone());
    let clinic_a = AuthorizedUsers::new(iis.store.clone())
        .get("clinic-a")
        .await
        .unwrap()
        .unwrap();
    assert!(groups
        .member(clinic_a.group.as_deref().unwrap(), &iis.tunde)
        .await
        .unwrap()
        .is_none());

    // Audited: the kick-off (a count, no PHI), the manifest, each download.
    let events = iis.events(&iis.reader_a).await;
    let kick = events
        .iter()
        .find(|e| e.action == "fhir.patient-bulk-match")
        .expect("kick-off audited");
    assert_eq!(kick.outcome, Outcome::Success);
    assert!(kick.detail.contains("patients: 3"), "{}", kick.detail);
    assert!(!format!("{kick:?}").contains("Okafor"));
    assert!(events
        .iter()
        .any(|e| e.action == "fhir.patient-bulk-match.manifest"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "fhir.patient-bulk-match.download")
            .count(),
        2
    );

    // Done: the slot is free for the next one.
    let (s, v, _) = iis
        .kick_off(&token, &parameters(vec![resource("again", stranger())]))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
}

#[tokio::test]
async fn possible_matches_follow_the_policy_and_only_certain_matches() {
    let iis = iis(JurisdictionPolicy::default(), |_| {}).await;
    let token = iis.token(&iis.reader_a, "system/*.rs").await;
    let mut list = vec![resource("p", tunde_a_day_off())];
    let (s, _, status) = iis.kick_off(&token, &parameters(list.clone())).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    iis.jobs.run_pending(10).await.unwrap();
    let (_, _, text) = iis.get(&status.unwrap(), &token).await;
    let manifest: Value = serde_json::from_str(&text).unwrap();
    let url = manifest["output"][0]["url"].as_str().unwrap();
    let (_, _, ndjson) = iis.get(url.strip_prefix(BASE).unwrap(), &token).await;
    let b: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    // Withheld by default: counted in an OperationOutcome entry.
    assert_eq!(b["total"], 0, "{b}");
    assert_eq!(b["entry"][0]["search"]["mode"], "outcome");
    assert!(!b.to_string().contains("Tunde"));
    keep_sample("possible-withheld", &b);

    list.push(json!({"name": "onlyCertainMatches", "valueBoolean": true}));
    list.push(json!({"name": "count", "valueInteger": 1}));
    let (s, _, status) = iis.kick_off(&token, &parameters(list)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    iis.jobs.run_pending(10).await.unwrap();
    let (_, _, text) = iis.get(&status.unwrap(), &token).await;
    let manifest: Value = serde_json::from_str(&text).unwrap();
    let url = manifest["output"][0]["url"].as_str().unwrap();
    let (_, _, ndjson) = iis.get(url.strip_prefix(BASE).unwrap(), &token).await;
    let b: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    assert_eq!(b["total"], 0, "{b}");
}

#[tokio::test]
async fn a_job_is_its_authorized_users_own() {
    let iis = iis(JurisdictionPolicy::default(), |_| {}).await;
    let a = iis.token(&iis.reader_a, "system/*.rs").await;
    let b = iis.token(&iis.reader_b, "system/*.rs").await;
    let (s, _, status) = iis
        .kick_off(&a, &parameters(vec![resource("x", tunde())]))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status = status.unwrap();
    let job = status.rsplit('/').next().unwrap().to_owned();
    iis.jobs.run_pending(10).await.unwrap();
    let (s, _, _) = iis.get(&status, &b).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let file = format!("/fhir/bulkmatch-files/{job}/Bundle.001.ndjson");
    assert_eq!(iis.get(&file, &b).await.0, StatusCode::NOT_FOUND);
    assert_eq!(iis.delete(&status, &b).await, StatusCode::NOT_FOUND);
    // Still there for its owner; a file it does not list is not found.
    assert_eq!(iis.get(&file, &a).await.0, StatusCode::OK);
    let other = format!("/fhir/bulkmatch-files/{job}/input.ndjson");
    assert_eq!(iis.get(&other, &a).await.0, StatusCode::NOT_FOUND);
    // Without Patient search, no bulk match.
    let groups_only = iis.token(&iis.groups_only, "system/Group.rs").await;
    let (s, _, _) = iis
        .kick_off(&groups_only, &parameters(vec![resource("x", tunde())]))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn limits_refuse_too_many_patients_too_many_bytes_and_a_second_job() {
    let iis = iis(JurisdictionPolicy::default(), |j| {
        j.max_patients = 2;
        j.max_body_bytes = 4_000;
    })
    .await;
    let token = iis.token(&iis.reader_a, "system/*.rs").await;
    let three = parameters(
        ["a", "b", "c"]
            .iter()
            .map(|id| resource(id, stranger()))
            .collect(),
    );
    let (s, v, _) = iis.kick_off(&token, &three).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["issue"][0]["expression"][0], "resource");
    keep_sample("too-many", &v);
    // Over the byte limit: refused as too large, with an OperationOutcome.
    let mut big = stranger();
    big["text"] = json!({"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "x".repeat(5_000))});
    let (s, v, _) = iis
        .kick_off(&token, &parameters(vec![resource("big", big)]))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["resourceType"], "OperationOutcome");

    // A slot left by a job that is gone (a release lost to a crash) does
    // not hold the Authorized User up.
    iis.store
        .put(
            store::Item::new(
                registry::keys::bulk_match_slot("clinic-a", 0),
                b"a-job-long-gone".to_vec(),
            ),
            store::Condition::None,
        )
        .await
        .unwrap();
    // One running per Authorized User: the second waits.
    let one = parameters(vec![resource("a", stranger())]);
    let (s, _, first) = iis.kick_off(&token, &one).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, h, text) = iis
        .call(
            Request::post(KICK_OFF)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .header("prefer", "respond-async")
                .body(Body::from(one.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(h.contains_key("retry-after"));
    // Another Authorized User is not held up.
    let b = iis.token(&iis.reader_b, "system/*.rs").await;
    assert_eq!(iis.kick_off(&b, &one).await.0, StatusCode::ACCEPTED);
    // Once the first is cancelled, the slot is free again.
    assert_eq!(
        iis.delete(&first.unwrap(), &token).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(iis.kick_off(&token, &one).await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn malformed_requests_name_the_parameter_at_fault() {
    let iis = iis(JurisdictionPolicy::default(), |_| {}).await;
    let token = iis.token(&iis.reader_a, "system/*.rs").await;
    let mut no_id = tunde();
    no_id.as_object_mut().unwrap().remove("id");
    let cases = [
        (json!({"resourceType": "Patient"}), 400, "body"),
        (parameters(vec![]), 400, "resource"),
        (
            parameters(vec![
                json!({"name": "resource", "resource": {"resourceType": "Observation", "id": "o"}}),
            ]),
            400,
            "resource[0]",
        ),
        (
            parameters(vec![
                resource("ok", tunde()),
                json!({"name": "resource", "resource": no_id}),
            ]),
            400,
            "resource[1].id",
        ),
        (
            parameters(vec![
                resource("ok", tunde()),
                resource(
                    "no-birth",
                    json!({"resourceType": "Patient", "name": [{"family": "Doe"}]}),
                ),
            ]),
            422,
            "resource[1].Patient.birthDate",
        ),
        (
            parameters(vec![
                resource("ok", tunde()),
                json!({"name": "onlyCertainMatches", "valueString": "yes"}),
            ]),
            400,
            "onlyCertainMatches",
        ),
        (
            parameters(vec![
                resource("ok", tunde()),
                json!({"name": "count", "valueInteger": -1}),
            ]),
            400,
            "count",
        ),
    ];
    for (body, status, expression) in cases {
        let (s, v, _) = iis.kick_off(&token, &body).await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        assert_eq!(v["issue"][0]["expression"][0], expression, "{v}");
        assert!(!diagnostics(&v).is_empty());
    }
    let (_, v, _) = iis
        .kick_off(
            &token,
            &parameters(vec![
                resource("ok", tunde()),
                resource(
                    "no-birth",
                    json!({"resourceType": "Patient", "name": [{"family": "Doe"}]}),
                ),
            ]),
        )
        .await;
    keep_sample("refused", &v);
    // Not JSON; not asynchronous.
    let (s, _, text) = iis
        .call(
            Request::post(KICK_OFF)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .header("prefer", "respond-async")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{text}");
    let (s, _, text) = iis
        .call(
            Request::post(KICK_OFF)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .body(Body::from(
                    parameters(vec![resource("a", tunde())]).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("Prefer"), "{text}");
    // Refusals are audited, naming the parameter, never a value.
    let events = iis.events(&iis.reader_a).await;
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.action == "fhir.patient-bulk-match" && e.outcome == Outcome::Failure)
        .collect();
    assert!(refused.len() >= 7, "{refused:?}");
    assert!(!format!("{refused:?}").contains("Doe"));
}

#[tokio::test]
async fn a_cancelled_job_stops_and_is_gone() {
    let iis = iis(JurisdictionPolicy::default(), |_| {}).await;
    let token = iis.token(&iis.reader_a, "system/*.rs").await;
    let (s, _, status) = iis
        .kick_off(&token, &parameters(vec![resource("x", tunde())]))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status = status.unwrap();
    assert_eq!(iis.delete(&status, &token).await, StatusCode::ACCEPTED);
    // The worker finds nothing left to do; the job answers 404.
    iis.jobs.run_pending(10).await.unwrap();
    assert_eq!(iis.get(&status, &token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(iis.delete(&status, &token).await, StatusCode::NOT_FOUND);
    let job = status.rsplit('/').next().unwrap();
    let j = iis.jobs.get(job).await.unwrap().unwrap();
    assert!(j.files.is_empty());
    assert!(iis
        .events(&iis.reader_a)
        .await
        .iter()
        .any(|e| e.action == "fhir.patient-bulk-match.cancel" && e.outcome == Outcome::Success));

    // A finished job is deleted too: its files are gone.
    let (_, _, status) = iis
        .kick_off(&token, &parameters(vec![resource("y", tunde())]))
        .await;
    let status = status.unwrap();
    iis.jobs.run_pending(10).await.unwrap();
    let job = status.rsplit('/').next().unwrap().to_owned();
    let file = format!("/fhir/bulkmatch-files/{job}/Bundle.001.ndjson");
    assert_eq!(iis.get(&file, &token).await.0, StatusCode::OK);
    assert_eq!(iis.delete(&status, &token).await, StatusCode::ACCEPTED);
    assert_eq!(iis.get(&file, &token).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn not_configured_is_501_and_not_in_the_capability_statement() {
    let iis = iis(JurisdictionPolicy::default(), |_| {}).await;
    let (s, _, text) = iis
        .call(Request::get("/fhir/metadata").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    let cs: Value = serde_json::from_str(&text).unwrap();
    let ops = cs["rest"][0]["resource"][1]["operation"]
        .as_array()
        .unwrap();
    assert!(ops.iter().any(|o| o["name"] == "bulk-match"), "{ops:?}");
    keep_sample("capability-statement", &cs);

    // The same registry without bulk match configured.
    let store = iis.store.clone();
    let deps = BulkDeps::new(
        registry::persons::Persons::new(store),
        Arc::new(JurisdictionPolicy::default()),
        BASE,
        Arc::new(NoJwksUrls),
    );
    let bare = Iis {
        app: router(Arc::new(deps)),
        ..iis
    };
    let token = bare.token(&bare.reader_a, "system/*.rs").await;
    let (s, v, _) = bare
        .kick_off(&token, &parameters(vec![resource("x", tunde())]))
        .await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{v}");
    let (_, _, text) = bare
        .call(Request::get("/fhir/metadata").body(Body::empty()).unwrap())
        .await;
    assert!(!text.contains("bulk-match"));
}
