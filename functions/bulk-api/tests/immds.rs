//! `POST /fhir/$immds-forecast` and the ImmunizationRecommendation export
//! type over HTTP, through the bulk-api router (the one `iisbulk serve`
//! merges with ingest): SMART tokens from the token endpoint, VXUs taken in
//! and matched as the IIS does, forecasts of supplied data and of Group
//! members, every refusal with its status, and an export whose manifest
//! lists the forecasts. Every resource read is kept for scripts/check_fhir.py
//! (`IISBULK_FHIR_SAMPLES`).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bulk_api::{router, BulkDeps};
use http_body_util::BodyExt;
use iz::{Clock, IisIdentity};
use registry::export::ExportJobs;
use registry::membership::{change_event, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::{Clients, JwksSource, ASSERTION_TYPE};
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
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
    app: axum::Router,
    jobs: ExportJobs,
    key: SigningKey,
    client: String,
    group: String,
    /// Reported by both clinics (its birth dose twice), and by B only.
    shared: String,
    only_b: String,
}

/// A VXU: one child, the doses given as (ORC-3, date, CVX).
fn vxu(fac: &str, ctl: &str, given: &str, dob: &str, doses: &[(&str, &str, &str)]) -> String {
    let mut m = format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{ctl}-MRN^^^{fac}^MR||Okafor^{given}^^^^^L|Eze^^^^^^M|{dob}|F|||7 Birch Ln^^Lansing^MI^48910^USA^P\r"
    );
    for (orc, date, cvx) in doses {
        m.push_str(&format!(
            "ORC|RE||{orc}^{fac}\rRXA|0|1|{date}||{cvx}^vaccine^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
        ));
    }
    m
}

async fn iis() -> Iis {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let store: Arc<dyn ItemStore> = embedded.clone();
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

    // One child both clinics report (each its own copy of the birth dose,
    // A also the 2- and 4-month doses), and one only B reports.
    let matching = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let intake = Intake::new(store.clone(), IisIdentity::default());
    let a_doses = [
        ("A1-1", "20240305", "08"),
        ("A1-2", "20240506", "20"),
        ("A1-3", "20240506", "10"),
        ("A1-4", "20240708", "20"),
    ];
    let mut persons = Vec::new();
    for (au, msg) in [
        (&clinic_a, vxu("FACA", "A1", "Chioma", "20240305", &a_doses)),
        (
            &clinic_b,
            vxu(
                "FACB",
                "B1",
                "Chioma",
                "20240305",
                &[("B1-1", "20240305", "08")],
            ),
        ),
        (
            &clinic_b,
            vxu(
                "FACB",
                "B2",
                "Tunde",
                "20211111",
                &[("B2-1", "20211111", "08")],
            ),
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
    assert_eq!(persons[0], persons[1]);
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
        app: router(Arc::new(deps)),
        jobs,
        key,
        client,
        group: clinic_a.group.clone().unwrap(),
        shared: persons[0].clone(),
        only_b: persons[2].clone(),
    }
}

fn keep_sample(name: &str, resource: &Value) {
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("immds-{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

impl Iis {
    async fn call(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            // NDJSON files: one value per line.
            Value::Array(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
            )
        });
        (status, headers, body)
    }

    async fn token(&self, scope: &str) -> String {
        let claims = json!({"iss": self.client, "sub": self.client, "aud": TOKEN_URL,
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
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn forecast(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = Request::post("/fhir/$immds-forecast").header("content-type", content_type);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (s, h, v) = self
            .call(req.body(Body::from(body.to_owned())).unwrap())
            .await;
        assert_eq!(h["content-type"], "application/fhir+json", "{v}");
        (s, v)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        self.call(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .header("accept", "application/fhir+json")
                .header("prefer", "respond-async")
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

/// The out-parameters by name.
fn out(answer: &Value) -> (Vec<Value>, Value) {
    let mut evaluations = Vec::new();
    let mut recommendation = Value::Null;
    for p in answer["parameter"].as_array().unwrap() {
        match p["name"].as_str().unwrap() {
            "evaluation" => evaluations.push(p["resource"].clone()),
            "recommendation" => recommendation = p["resource"].clone(),
            other => panic!("unexpected out-parameter {other}"),
        }
    }
    (evaluations, recommendation)
}

fn vaccine_group_of(evaluation: &Value) -> String {
    let d = evaluation["description"].as_str().unwrap();
    d.split(" dose evaluated").next().unwrap().to_owned()
}

#[tokio::test]
async fn supplied_data_is_forecast_for_any_client_with_the_scope() {
    let iis = iis().await;
    let token = iis.token("system/ImmunizationRecommendation.rs").await;
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "assessmentDate", "valueDate": "2025-11-10"},
        {"name": "patient", "resource": {"resourceType": "Patient", "id": "ehr-42",
            "birthDate": "2025-09-06", "gender": "female"}},
        {"name": "immunization", "resource": {"resourceType": "Immunization", "id": "e1",
            "status": "completed", "patient": {"reference": "Patient/ehr-42"},
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "107"}]},
            "occurrenceDateTime": "2025-10-15"}},
        {"name": "immunization", "resource": {"resourceType": "Immunization", "id": "e2",
            "status": "completed", "patient": {"reference": "Patient/ehr-42"},
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "107"}]},
            "occurrenceDateTime": "2025-11-10"}}
    ]});
    let (s, answer) = iis
        .forecast(Some(&token), "application/fhir+json", &body.to_string())
        .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert_eq!(answer["resourceType"], "Parameters");
    keep_sample("parameters-supplied", &answer);
    let (evaluations, recommendation) = out(&answer);
    assert_eq!(evaluations.len(), 2, "{answer}");
    for (n, e) in evaluations.iter().enumerate() {
        keep_sample(&format!("evaluation-supplied-{n}"), e);
        assert_eq!(e["patient"]["reference"], "Patient/ehr-42");
        assert!(e["description"]
            .as_str()
            .unwrap()
            .contains("supporting data 4.64"));
    }
    assert_eq!(
        evaluations[1]["immunizationEvent"]["reference"],
        "Immunization/e2"
    );
    assert_eq!(
        evaluations[1]["doseStatus"]["coding"][0]["code"],
        "notvalid"
    );
    keep_sample("recommendation-supplied", &recommendation);
    let dtap = recommendation["recommendation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["vaccineCode"][0]["coding"][0]["code"] == "107")
        .unwrap();
    assert_eq!(
        dtap["dateCriterion"][0]["code"]["coding"][0]["code"],
        "30981-5"
    );
    assert_eq!(dtap["dateCriterion"][0]["value"], "2025-12-08");
    assert!(dtap["description"]
        .as_str()
        .unwrap()
        .contains("supporting data 4.64"));

    // `system/*.rs` covers the operation too; JSON as plain application/json.
    let all = iis.token("system/*.rs").await;
    let (s, _) = iis
        .forecast(
            Some(&all),
            "application/json; charset=utf-8",
            &body.to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn every_refusal_is_an_operation_outcome_with_its_status() {
    let iis = iis().await;
    let token = iis.token("system/ImmunizationRecommendation.read").await;
    let patient_only = iis.token("system/Patient.rs").await;
    let good = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": {"resourceType": "Patient", "birthDate": "2024-01-01"}}]})
    .to_string();
    let no_birth = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": {"resourceType": "Patient", "gender": "male"}}]})
    .to_string();
    let ndc = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": {"resourceType": "Patient", "birthDate": "2024-01-01"}},
        {"name": "immunization", "resource": {"resourceType": "Immunization", "status": "completed",
            "patient": {"reference": "Patient/x"}, "occurrenceDateTime": "2024-03-01",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "49281-0545-05"}]}}}]})
    .to_string();
    let fhir_json = "application/fhir+json";
    for (what, token, ctype, body, status, says) in [
        (
            "no token",
            None,
            fhir_json,
            good.as_str(),
            401,
            "access token",
        ),
        (
            "no scope for it",
            Some(patient_only.as_str()),
            fhir_json,
            good.as_str(),
            403,
            "ImmunizationRecommendation",
        ),
        (
            "not JSON",
            Some(token.as_str()),
            "text/plain",
            good.as_str(),
            415,
            "application/fhir+json",
        ),
        (
            "bad JSON",
            Some(token.as_str()),
            fhir_json,
            "{",
            400,
            "not JSON",
        ),
        (
            "not Parameters",
            Some(token.as_str()),
            fhir_json,
            r#"{"resourceType":"Patient"}"#,
            400,
            "Parameters",
        ),
        (
            "no birth date",
            Some(token.as_str()),
            fhir_json,
            no_birth.as_str(),
            400,
            "birthDate",
        ),
        (
            "NDC only",
            Some(token.as_str()),
            fhir_json,
            ndc.as_str(),
            422,
            "CVX",
        ),
    ] {
        let (s, v) = iis.forecast(token, ctype, body).await;
        assert_eq!(s.as_u16(), status, "{what}: {v}");
        assert_eq!(v["resourceType"], "OperationOutcome", "{what}");
        let said = v["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(said.contains(says), "{what}: {said}");
        keep_sample(&format!("outcome-{status}"), &v);
    }
    // The good request itself is answered.
    let (s, _) = iis.forecast(Some(&token), fhir_json, &good).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_group_member_is_forecast_from_its_consolidated_history_and_no_one_else() {
    let iis = iis().await;
    let token = iis.token("system/*.rs").await;
    let by_reference = |id: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "assessmentDate", "valueDate": "2024-09-01"},
            {"name": "patient", "valueReference": {"reference": format!("Patient/{id}")}}]})
        .to_string()
    };
    let (s, answer) = iis
        .forecast(
            Some(&token),
            "application/fhir+json",
            &by_reference(&iis.shared),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    keep_sample("parameters-registry", &answer);
    let (evaluations, recommendation) = out(&answer);
    assert_eq!(
        recommendation["patient"]["reference"],
        format!("Patient/{}", iis.shared)
    );
    assert_eq!(recommendation["date"], "2024-09-01");
    keep_sample("recommendation-registry", &recommendation);

    // The events the registry lists for the child, as the FHIR read gives them.
    let (_, _, bundle) = iis
        .get(
            &format!("/fhir/Immunization?patient=Patient/{}", iis.shared),
            &token,
        )
        .await;
    let events: BTreeSet<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("Immunization/{}", e["resource"]["id"].as_str().unwrap()))
        .collect();
    // Five reports, four events: the birth dose both clinics reported is one.
    assert_eq!(events.len(), 4, "{bundle}");

    // Each event is evaluated once per vaccine group it counts for, and
    // every event is evaluated.
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (n, e) in evaluations.iter().enumerate() {
        keep_sample(&format!("evaluation-registry-{n}"), e);
        let event = e["immunizationEvent"]["reference"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(events.contains(&event), "{event} is not one of {events:?}");
        *seen.entry((event, vaccine_group_of(e))).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let evaluated: BTreeSet<String> = seen.keys().map(|(e, _)| e.clone()).collect();
    assert_eq!(evaluated, events);
    let hep_b: Vec<&(String, String)> = seen.keys().filter(|(_, g)| g == "HepB").collect();
    assert_eq!(hep_b.len(), 1, "{seen:?}");

    // A Patient holding only its id names the registry patient as well.
    let bare = json!({"resourceType": "Parameters", "parameter": [
        {"name": "assessmentDate", "valueDate": "2024-09-01"},
        {"name": "patient", "resource": {"resourceType": "Patient", "id": iis.shared}}]})
    .to_string();
    let (s, again) = iis
        .forecast(Some(&token), "application/fhir+json", &bare)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, answer);

    // Outside the caller's Group, existing or not: 403, and nothing said.
    for id in [iis.only_b.as_str(), "no-such-person"] {
        let (s, v) = iis
            .forecast(Some(&token), "application/fhir+json", &by_reference(id))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("not a member"));
    }
    // Supplied data goes with a supplied Patient only.
    let mixed = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": format!("Patient/{}", iis.shared)}},
        {"name": "immunization", "resource": {"resourceType": "Immunization", "status": "completed"}}]})
    .to_string();
    let (s, _) = iis
        .forecast(Some(&token), "application/fhir+json", &mixed)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Kicks off an export, runs it here, polls until the manifest comes.
async fn export(iis: &Iis, token: &str, query: &str) -> Value {
    let (s, h, v) = iis
        .get(&format!("/fhir/Group/{}/$export{query}", iis.group), token)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let status_url = h["content-location"].to_str().unwrap().to_owned();
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    iis.jobs.run_here(&job).await.unwrap();
    let path = status_url.strip_prefix(BASE).unwrap();
    for _ in 0..10 {
        let (s, _, manifest) = iis.get(path, token).await;
        if s == StatusCode::OK {
            return manifest;
        }
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    panic!("no manifest");
}

#[tokio::test]
async fn an_export_asked_for_forecasts_lists_them_in_their_own_file() {
    let iis = iis().await;
    let token = iis.token("system/*.rs").await;
    let manifest = export(
        &iis,
        &token,
        "?_type=Patient,Immunization,ImmunizationRecommendation",
    )
    .await;
    let types: Vec<&str> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Patient", "Immunization", "ImmunizationRecommendation"],
        "{manifest}"
    );
    let file = &manifest["output"][2];
    assert_eq!(file["count"], 1, "one member, one forecast");
    let url = file["url"].as_str().unwrap();
    assert!(
        url.ends_with("ImmunizationRecommendation.001.ndjson"),
        "{url}"
    );
    let (s, _, lines) = iis.get(url.strip_prefix(BASE).unwrap(), &token).await;
    assert_eq!(s, StatusCode::OK);
    // One NDJSON line reads as a JSON value of its own.
    let lines = match lines {
        Value::Array(a) => a,
        one => vec![one],
    };
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    keep_sample("recommendation-export", r);
    assert_eq!(r["resourceType"], "ImmunizationRecommendation");
    assert_eq!(r["patient"]["reference"], format!("Patient/{}", iis.shared));
    assert!(r["id"].as_str().unwrap().len() <= 64);
    // As of the export's transaction date.
    let day = &manifest["transactionTime"].as_str().unwrap()[..10];
    assert_eq!(r["date"], day);
    // A token without the type's scope cannot download it.
    let narrow = iis.token("system/Patient.rs system/Group.rs").await;
    let (s, _, _) = iis.get(url.strip_prefix(BASE).unwrap(), &narrow).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Without _type: the four types of every export, no forecasts.
    let plain = export(&iis, &token, "").await;
    let types: BTreeSet<&str> = plain["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["Group", "Immunization", "Organization", "Patient"]),
        "{plain}"
    );
}

#[tokio::test]
async fn discovery_names_the_operation_and_its_scope() {
    let iis = iis().await;
    let (s, _, conf) = iis
        .call(
            Request::get("/fhir/.well-known/smart-configuration")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let scopes = conf["scopes_supported"].to_string();
    assert!(
        scopes.contains("system/ImmunizationRecommendation.read"),
        "{scopes}"
    );
    assert!(
        scopes.contains("system/ImmunizationRecommendation.rs"),
        "{scopes}"
    );
    let (_, _, capability) = iis
        .call(Request::get("/fhir/metadata").body(Body::empty()).unwrap())
        .await;
    keep_sample("capability-statement", &capability);
    let op = &capability["rest"][0]["operation"][0];
    assert_eq!(op["name"], "immds-forecast");
    assert_eq!(
        op["definition"],
        "http://hl7.org/fhir/us/immds/OperationDefinition/ImmDSForecastOperation"
    );
}
