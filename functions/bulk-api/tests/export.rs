//! Export features over HTTP, through the bulk-api router: `_typeFilter`
//! (GET and POST) compared line by line with a hand-computed expectation.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
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
    dir: tempfile::TempDir,
    app: axum::Router,
    jobs: ExportJobs,
    key: SigningKey,
    client: String,
    group: String,
}

/// The child's doses: (ORC-3, date, CVX, RXA-20 completion).
const DOSES: [(&str, &str, &str, &str); 5] = [
    ("D1", "20240305", "08", "CP"),
    ("D2", "20240506", "20", "CP"),
    ("D3", "20240506", "10", "CP"),
    ("D4", "20240708", "20", "NA"),
    ("D5", "20250110", "03", "CP"),
];

/// A VXU for one child of clinic A.
fn vxu(ctl: &str, given: &str, dob: &str, doses: &[(&str, &str, &str, &str)]) -> String {
    let mut m = format!("MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||{ctl}-MRN^^^FACA^MR||Okafor^{given}^^^^^L|Eze^^^^^^M|{dob}|F|||7 Birch Ln^^Lansing^MI^48910^USA^P\r");
    for (orc, date, cvx, completion) in doses {
        m.push_str(&format!(
            "ORC|RE||{orc}^FACA\rRXA|0|1|{date}||{cvx}^vaccine^CVX|999|||01^Historical^NIP001|||||||||||{completion}|A\r"
        ));
    }
    m
}

async fn iis() -> Iis {
    iis_with(false).await
}

/// With `second`, a second child (one dose) joins the Group, and exports
/// are cut into shards of one member.
async fn iis_with(second: bool) -> Iis {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let store: Arc<dyn ItemStore> = embedded.clone();
    let policy = Arc::new(JurisdictionPolicy::default());
    let users = AuthorizedUsers::new(store.clone());
    let clinic = registry::membership::onboard(
        &users,
        NewAuthorizedUser {
            id: "clinic-a".into(),
            kind: AuKind::Clinic,
            name: "clinic-a".into(),
            facilities: vec!["FACA".into()],
            username: "clinic-a".into(),
            password: "a long enough password".into(),
        },
        0,
        &policy,
    )
    .await
    .unwrap();
    let matching = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let intake = Intake::new(store.clone(), IisIdentity::default());
    let mut messages = vec![vxu("A1", "Chioma", "20240305", &DOSES)];
    if second {
        messages.push(vxu(
            "A2",
            "Tunde",
            "20211111",
            &[("E1", "20211111", "08", "CP")],
        ));
    }
    for m in messages {
        let d = intake
            .receive(
                &clinic,
                &Transport::Rest,
                m.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        matching.process(&d.message_id.unwrap(), 1).await.unwrap();
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
    if second {
        jobs.members_per_shard = 1;
    }
    let mut deps = BulkDeps::new(
        matching.persons().clone(),
        policy,
        BASE,
        Arc::new(NoJwksUrls),
    );
    deps.exports = Some(jobs.clone());
    Iis {
        dir,
        app: router(Arc::new(deps)),
        jobs,
        key,
        client,
        group: clinic.group.clone().unwrap(),
    }
}

/// A response's status, headers and raw body.
type Answer = (StatusCode, axum::http::HeaderMap, Vec<u8>);

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// NDJSON lines as values.
fn lines(body: &[u8]) -> Vec<Value> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

impl Iis {
    async fn call(&self, req: Request<Body>) -> Answer {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    async fn token(&self) -> String {
        self.token_for("system/*.rs").await
    }

    async fn token_for(&self, scope: &str) -> String {
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
        assert_eq!(s, StatusCode::OK);
        json_of(&v)["access_token"].as_str().unwrap().to_owned()
    }

    fn request(&self, method: &str, path: &str, token: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/fhir+json")
    }

    async fn get(&self, path: &str, token: &str, prefer: &str) -> Answer {
        self.call(
            self.request("GET", path, token)
                .header("prefer", prefer)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// GET kick-off with these parameters (encoded here).
    async fn kick_off(&self, token: &str, params: &[(&str, &str)], prefer: &str) -> Answer {
        let query = serde_urlencoded::to_string(params).unwrap();
        self.get(
            &format!("/fhir/Group/{}/$export?{query}", self.group),
            token,
            prefer,
        )
        .await
    }

    /// Runs an accepted export here and polls until its manifest comes.
    async fn manifest(&self, token: &str, accepted: Answer) -> Value {
        let (s, h, body) = accepted;
        assert_eq!(
            s,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let status_url = h["content-location"].to_str().unwrap().to_owned();
        let job = status_url.rsplit('/').next().unwrap().to_owned();
        self.jobs.run_here(&job).await.unwrap();
        let path = status_url.strip_prefix(BASE).unwrap();
        for _ in 0..10 {
            let (s, _, manifest) = self.get(path, token, "respond-async").await;
            if s == StatusCode::OK {
                return json_of(&manifest);
            }
            assert_eq!(s, StatusCode::ACCEPTED);
        }
        panic!("no manifest");
    }

    /// Every line of the manifest's files of `type`.
    async fn exported(&self, token: &str, manifest: &Value, resource_type: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for f in manifest["output"].as_array().unwrap() {
            if f["type"] != resource_type {
                continue;
            }
            let url = f["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
            let (s, _, body) = self.get(url, token, "respond-async").await;
            assert_eq!(s, StatusCode::OK);
            out.extend(lines(&body));
        }
        out
    }
}

/// The exported Immunizations as (date, CVX, status), in a set.
fn events(lines: &[Value]) -> BTreeSet<(String, String, String)> {
    lines
        .iter()
        .map(|i| {
            let cvx = i["vaccineCode"]["coding"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["system"] == "http://hl7.org/fhir/sid/cvx")
                .unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned();
            (
                i["occurrenceDateTime"].as_str().unwrap().to_owned(),
                cvx,
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expect(doses: &[&str]) -> BTreeSet<(String, String, String)> {
    DOSES
        .iter()
        .filter(|(orc, ..)| doses.contains(orc))
        .map(|(_, date, cvx, completion)| {
            (
                format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]),
                (*cvx).to_owned(),
                if *completion == "CP" {
                    "completed"
                } else {
                    "not-done"
                }
                .to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn type_filters_select_immunizations_by_date_code_and_status() {
    let iis = iis().await;
    let token = iis.token().await;
    let cvx = "http://hl7.org/fhir/sid/cvx";
    // (what, the _typeFilter parameters, the doses expected)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("no filter", vec![], vec!["D1", "D2", "D3", "D4", "D5"]),
        (
            "a date window, completed only",
            vec![(
                "_typeFilter",
                "Immunization?date=ge2024-05-01&date=lt2024-08-01&status=completed".into(),
            )],
            vec!["D2", "D3"],
        ),
        (
            "CVX with its system",
            vec![("_typeFilter", format!("Immunization?vaccine-code={cvx}|08"))],
            vec!["D1"],
        ),
        (
            "a code alone, several values ORed",
            vec![("_typeFilter", "Immunization?vaccine-code=20,03".into())],
            vec!["D2", "D4", "D5"],
        ),
        (
            "status",
            vec![("_typeFilter", "Immunization?status=not-done".into())],
            vec!["D4"],
        ),
        (
            "a year",
            vec![("_typeFilter", "Immunization?date=2025".into())],
            vec!["D5"],
        ),
        (
            "the union of two filters (two parameters)",
            vec![
                (
                    "_typeFilter",
                    "Immunization?date=ge2024-05-01&date=lt2024-08-01&status=completed".into(),
                ),
                ("_typeFilter", format!("Immunization?vaccine-code={cvx}|08")),
            ],
            vec!["D1", "D2", "D3"],
        ),
        (
            "the union of two filters (one comma-separated value)",
            vec![(
                "_typeFilter",
                "Immunization?date=gt2024-12-31,Immunization?status=not-done".into(),
            )],
            vec!["D4", "D5"],
        ),
    ];
    for (what, filters, want) in cases {
        let mut params: Vec<(&str, &str)> = vec![("_type", "Patient,Immunization")];
        params.extend(filters.iter().map(|(k, v)| (*k, v.as_str())));
        let accepted = iis.kick_off(&token, &params, "respond-async").await;
        let manifest = iis.manifest(&token, accepted).await;
        let got = events(&iis.exported(&token, &manifest, "Immunization").await);
        assert_eq!(got, expect(&want), "{what}");
        // The Patient has no filter: exported whole.
        assert_eq!(
            iis.exported(&token, &manifest, "Patient").await.len(),
            1,
            "{what}"
        );
    }

    // POST Parameters carry the same filters.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Immunization"},
        {"name": "_typeFilter", "valueString": "Immunization?status=not-done"},
        {"name": "_typeFilter", "valueString": format!("Immunization?vaccine-code={cvx}|10")},
    ]});
    let accepted = iis
        .call(
            iis.request(
                "POST",
                &format!("/fhir/Group/{}/$export", iis.group),
                &token,
            )
            .header("prefer", "respond-async")
            .header("content-type", "application/fhir+json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        )
        .await;
    let manifest = iis.manifest(&token, accepted).await;
    let got = events(&iis.exported(&token, &manifest, "Immunization").await);
    assert_eq!(got, expect(&["D3", "D4"]));

    // A Patient filter the child fails leaves the Patient out, not its
    // doses (the matcher ran at epoch ms 1 here: the record is from 1970).
    for (filter, patients) in [("gt2000-01-01", 0), ("lt2000-01-01", 1)] {
        let accepted = iis
            .kick_off(
                &token,
                &[
                    ("_type", "Patient,Immunization"),
                    ("_typeFilter", &format!("Patient?_lastUpdated={filter}")),
                ],
                "respond-async",
            )
            .await;
        let manifest = iis.manifest(&token, accepted).await;
        assert_eq!(
            iis.exported(&token, &manifest, "Patient").await.len(),
            patients,
            "{filter}"
        );
        assert_eq!(
            iis.exported(&token, &manifest, "Immunization").await.len(),
            5
        );
    }
}

#[tokio::test]
async fn bad_or_unsupported_type_filters_are_named_in_an_operation_outcome() {
    let iis = iis().await;
    let token = iis.token().await;
    for (params, says) in [
        (
            vec![("_typeFilter", "Immunization?lot-number=X1")],
            "lot-number",
        ),
        (vec![("_typeFilter", "Immunization?date=soon")], "date"),
        (
            vec![
                ("_type", "Patient"),
                ("_typeFilter", "Immunization?status=completed"),
            ],
            "_type does not name it",
        ),
        (vec![("_typeFilter", "status=completed")], "search query"),
    ] {
        let (s, h, body) = iis.kick_off(&token, &params, "respond-async").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{params:?}");
        assert_eq!(h["content-type"], "application/fhir+json");
        let outcome = json_of(&body);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["expression"][0], "_typeFilter");
        let said = outcome["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(said.contains(says), "{said}");
    }

    // Lenient: the unsupported parameter is dropped (its query keeps the
    // rest) and reported in the manifest's error file.
    let accepted = iis
        .kick_off(
            &token,
            &[("_typeFilter", "Immunization?lot-number=X1&status=not-done")],
            "respond-async, handling=lenient",
        )
        .await;
    let manifest = iis.manifest(&token, accepted).await;
    let got = events(&iis.exported(&token, &manifest, "Immunization").await);
    assert_eq!(got, expect(&["D4"]));
    let error = &manifest["error"][0];
    assert_eq!(error["type"], "OperationOutcome", "{manifest}");
    let url = error["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
    let (s, _, body) = iis.get(url, &token, "respond-async").await;
    assert_eq!(s, StatusCode::OK);
    let outcome = &lines(&body)[0];
    assert!(outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("lot-number"));
}

#[tokio::test]
async fn files_are_stored_gzip_and_served_gzip_or_plain_as_the_client_accepts() {
    let iis = iis().await;
    let token = iis.token().await;
    let accepted = iis.kick_off(&token, &[], "respond-async").await;
    let manifest = iis.manifest(&token, accepted).await;
    let outputs = manifest["output"].as_array().unwrap();
    assert_eq!(outputs.len(), 4, "{manifest}");
    for f in outputs {
        let url = f["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
        // The blob on disk is gzip.
        let name = url.split("/bulkfiles/").nth(1).unwrap();
        let stored = std::fs::read(iis.dir.path().join("blobs/exports").join(name)).unwrap();
        assert_eq!(stored[..2], [0x1f, 0x8b], "{name}");

        let download = |accept_encoding: Option<&'static str>| {
            let mut req = iis.request("GET", url, &token);
            if let Some(v) = accept_encoding {
                req = req.header("accept-encoding", v);
            }
            iis.call(req.body(Body::empty()).unwrap())
        };
        // No Accept-Encoding, or one without gzip: plain NDJSON.
        let (s, h, plain) = download(None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h.get("content-encoding").is_none(), "{name}");
        assert_eq!(h["vary"], "accept-encoding");
        let n = lines(&plain).len() as u64;
        assert_eq!(n, f["count"].as_u64().unwrap(), "{name}");
        for refused in ["identity", "br, gzip;q=0", "*;q=0"] {
            let (_, h, body) = download(Some(refused)).await;
            assert!(h.get("content-encoding").is_none(), "{refused}");
            assert_eq!(body, plain, "{refused}");
        }
        // gzip accepted: the stored bytes, which inflate to the same NDJSON.
        for accepting in ["gzip", "br;q=1.0, gzip;q=0.5", "*"] {
            let (s, h, body) = download(Some(accepting)).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(h["content-encoding"], "gzip", "{accepting}");
            assert_eq!(h["content-length"], body.len().to_string().as_str());
            assert_eq!(body, stored, "{accepting}");
            let mut inflated = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut inflated)
                .unwrap();
            assert_eq!(inflated, plain, "{name}");
        }
    }
}

#[tokio::test]
async fn partial_manifests_list_finished_parts_and_link_the_rest() {
    let iis = iis_with(true).await;
    let token = iis.token().await;
    let (s, h, _) = iis
        .kick_off(
            &token,
            &[
                ("_type", "Patient,Immunization"),
                ("allowPartialManifests", "true"),
            ],
            "respond-async",
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status_url = h["content-location"].to_str().unwrap().to_owned();
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    let path = status_url.strip_prefix(BASE).unwrap();
    let poll = || iis.get(path, &token, "respond-async");
    iis.jobs.plan(&job).await.unwrap();
    assert_eq!(iis.jobs.get(&job).await.unwrap().unwrap().shards, 2);

    // Nothing finished yet: "in progress", no manifest.
    for _ in 0..2 {
        let (s, h, body) = poll().await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert!(h.get("content-type").is_none() && body.is_empty());
    }

    // One part written: a 202 whose manifest lists its files only.
    iis.jobs.run_shard(&job, 1).await.unwrap();
    let (s, h, body) = poll().await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(h["content-type"], "application/json");
    assert!(h.get("x-progress").is_some());
    let first = json_of(&body);
    assert!(first.get("link").is_none(), "{first}");
    let types: Vec<&str> = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient", "Immunization"], "{first}");
    // Its files download while the export still runs.
    let patients_1 = iis.exported(&token, &first, "Patient").await;
    assert_eq!(patients_1.len(), 1);
    // Asked again with nothing new: the very same manifest.
    let (s, _, again) = poll().await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(json_of(&again), first);

    // The export completes: 200, the first manifest unchanged but for a
    // `next` link to one listing the rest.
    iis.jobs.run_shard(&job, 2).await.unwrap();
    let (s, _, body) = poll().await;
    assert_eq!(s, StatusCode::OK);
    let done = json_of(&body);
    assert_eq!(done["output"], first["output"]);
    let link = &done["link"][0];
    assert_eq!(link["relation"], "next", "{done}");
    let next = link["url"].as_str().unwrap();
    assert!(next.ends_with("?page=2"), "{next}");
    let (s, _, body) = iis
        .get(next.strip_prefix(BASE).unwrap(), &token, "respond-async")
        .await;
    assert_eq!(s, StatusCode::OK);
    let second = json_of(&body);
    assert!(second.get("link").is_none(), "the last manifest: {second}");
    for same in ["transactionTime", "request", "requiresAccessToken", "error"] {
        assert_eq!(second[same], first[same], "{same}");
    }
    // Every file exactly once across the two manifests.
    let patients_2 = iis.exported(&token, &second, "Patient").await;
    assert_eq!(patients_2.len(), 1);
    assert_ne!(patients_1[0]["id"], patients_2[0]["id"]);
    let immunizations = iis.exported(&token, &first, "Immunization").await.len()
        + iis.exported(&token, &second, "Immunization").await.len();
    assert_eq!(immunizations, DOSES.len() + 1);
    // No third manifest; the first still links the second.
    let (s, _, _) = iis
        .get(&format!("{path}?page=3"), &token, "respond-async")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&poll().await.2), done);

    // Strict handling: what is not supported is named.
    for (params, named) in [
        (
            vec![("allowPartialManifests", "maybe")],
            "allowPartialManifests",
        ),
        (vec![("organizeOutputBy", "Encounter")], "organizeOutputBy"),
    ] {
        let (s, _, body) = iis.kick_off(&token, &params, "respond-async").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(json_of(&body)["issue"][0]["expression"][0], named);
    }
}

#[tokio::test]
async fn without_partial_manifests_a_running_export_lists_nothing() {
    let iis = iis_with(true).await;
    let token = iis.token().await;
    let (_, h, _) = iis
        .kick_off(&token, &[("_type", "Patient")], "respond-async")
        .await;
    let status_url = h["content-location"].to_str().unwrap().to_owned();
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    let path = status_url.strip_prefix(BASE).unwrap();
    iis.jobs.plan(&job).await.unwrap();
    iis.jobs.run_shard(&job, 1).await.unwrap();
    for _ in 0..2 {
        let (s, h, body) = iis.get(path, &token, "respond-async").await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert!(h.get("content-type").is_none() && body.is_empty());
    }
    // Nor is a finished part's file served before the export completes.
    let part = &iis.jobs.get(&job).await.unwrap().unwrap().files.output[0];
    let name = part.key.split_once('/').unwrap().1;
    let (s, _, _) = iis
        .get(&format!("/fhir/bulkfiles/{name}"), &token, "respond-async")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // And a page number means nothing here.
    let (s, _, _) = iis
        .get(&format!("{path}?page=2"), &token, "respond-async")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn output_organized_by_patient_keeps_each_patients_resources_together() {
    let iis = iis_with(true).await;
    let token = iis.token().await;
    let accepted = iis
        .kick_off(
            &token,
            &[
                ("organizeOutputBy", "Patient"),
                ("_typeFilter", "Immunization?status=completed"),
            ],
            "respond-async",
        )
        .await;
    let manifest = iis.manifest(&token, accepted).await;
    assert_eq!(manifest["outputOrganizedBy"], "Patient", "{manifest}");
    let outputs = manifest["output"].as_array().unwrap();
    // Two shards, a block file each, and nothing else: an organized
    // manifest's items have no `type` (Bulk Data 3.0's manifest), so the
    // Group and the Organization, in no patient's block, are left out.
    let untyped: Vec<&Value> = outputs.iter().filter(|f| f.get("type").is_none()).collect();
    assert_eq!(untyped.len(), 2, "{manifest}");
    assert_eq!(outputs.len(), 2, "{manifest}");
    let mut patients = 0;
    let mut immunizations = 0;
    for f in &untyped {
        let url = f["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
        let (s, _, body) = iis.get(url, &token, "respond-async").await;
        assert_eq!(s, StatusCode::OK);
        let lines = lines(&body);
        assert_eq!(lines.len() as u64, f["count"].as_u64().unwrap());
        // Each block: the header, the Patient it names, then its doses.
        let mut current = String::new();
        for (n, l) in lines.iter().enumerate() {
            match l["resourceType"].as_str().unwrap() {
                "Parameters" => {
                    assert_eq!(l["parameter"][0]["name"], "header");
                    current = l["parameter"][0]["valueReference"]["reference"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    assert_eq!(lines[n + 1]["resourceType"], "Patient");
                }
                "Patient" => {
                    assert_eq!(format!("Patient/{}", l["id"].as_str().unwrap()), current);
                    patients += 1;
                }
                "Immunization" => {
                    assert_eq!(l["patient"]["reference"], current.as_str());
                    assert_eq!(l["status"], "completed", "the filter applies");
                    immunizations += 1;
                }
                other => panic!("{other} in a block"),
            }
        }
        // A block file needs the scopes of every type in it.
        let narrow = iis.token_for("system/Patient.rs system/Group.rs").await;
        let (s, _, _) = iis.get(url, &narrow, "respond-async").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    assert_eq!((patients, immunizations), (2, DOSES.len() - 1 + 1));

    // Only the types the export puts in the blocks need a scope.
    let narrow = iis.token_for("system/Patient.rs system/Group.rs").await;
    let accepted = iis
        .kick_off(
            &narrow,
            &[("_type", "Patient"), ("organizeOutputBy", "Patient")],
            "respond-async",
        )
        .await;
    let manifest = iis.manifest(&narrow, accepted).await;
    let outputs = manifest["output"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{manifest}");
    for f in outputs {
        let url = f["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
        let (s, _, body) = iis.get(url, &narrow, "respond-async").await;
        assert_eq!(s, StatusCode::OK);
        let kinds: Vec<Value> = lines(&body)
            .iter()
            .map(|l| l["resourceType"].clone())
            .collect();
        assert_eq!(kinds, [json!("Parameters"), json!("Patient")]);
    }
}

#[tokio::test]
async fn latest_provenance_says_which_authorized_users_messages_each_record_came_from() {
    let iis = iis().await;
    let token = iis.token().await;
    let accepted = iis
        .kick_off(
            &token,
            &[("includeAssociatedData", "LatestProvenanceResources")],
            "respond-async",
        )
        .await;
    let manifest = iis.manifest(&token, accepted).await;
    let patients = iis.exported(&token, &manifest, "Patient").await;
    let immunizations = iis.exported(&token, &manifest, "Immunization").await;
    let provenance = iis.exported(&token, &manifest, "Provenance").await;
    assert_eq!(patients.len(), 1);
    assert_eq!(immunizations.len(), DOSES.len());
    // One Provenance per exported Patient and Immunization, each naming it.
    let mut targets: Vec<String> = provenance
        .iter()
        .map(|p| p["target"][0]["reference"].as_str().unwrap().to_owned())
        .collect();
    targets.sort();
    let mut exported: Vec<String> = patients
        .iter()
        .chain(&immunizations)
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    exported.sort();
    assert_eq!(targets, exported);
    for p in &provenance {
        assert_eq!(p["resourceType"], "Provenance");
        // Clinic A's message, by our message id (a UUIDv7) and clinic A.
        assert_eq!(p["agent"].as_array().unwrap().len(), 1, "{p}");
        assert_eq!(p["agent"][0]["type"]["coding"][0]["code"], "author");
        assert_eq!(p["agent"][0]["who"]["identifier"]["value"], "clinic-a");
        let message = p["entity"][0]["what"]["identifier"]["value"]
            .as_str()
            .unwrap();
        assert_eq!(message.len(), 32, "{p}");
        assert_eq!(p["entity"][0]["role"], "source");
        assert!(p["recorded"].as_str().unwrap().ends_with('Z'), "{p}");
    }
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        for (n, p) in provenance.iter().take(2).enumerate() {
            std::fs::write(
                std::path::Path::new(&dir).join(format!("export-provenance-{n}.json")),
                serde_json::to_vec_pretty(p).unwrap(),
            )
            .unwrap();
        }
    }

    // With _type, only the records exported get one.
    let accepted = iis
        .kick_off(
            &token,
            &[
                ("_type", "Immunization"),
                ("includeAssociatedData", "LatestProvenanceResources"),
            ],
            "respond-async",
        )
        .await;
    let manifest = iis.manifest(&token, accepted).await;
    let provenance = iis.exported(&token, &manifest, "Provenance").await;
    assert_eq!(provenance.len(), DOSES.len());
    assert!(provenance.iter().all(|p| p["target"][0]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Immunization/")));
    // A token that may not read Provenance may not download it.
    let narrow = iis
        .token_for("system/Patient.rs system/Immunization.rs system/Group.rs")
        .await;
    let f = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "Provenance")
        .unwrap();
    let url = f["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
    let (s, _, _) = iis.get(url, &narrow, "respond-async").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Other associated data is refused, naming the parameter.
    let (s, _, body) = iis
        .kick_off(
            &token,
            &[("includeAssociatedData", "_careTeams")],
            "respond-async",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("includeAssociatedData"));
}
