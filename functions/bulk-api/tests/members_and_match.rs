//! Beyond V2, over HTTP through the bulk-api router: `Patient/$match`
//! (certain and possible matches, what each discloses, the Group it may
//! join under the policy, bad requests) and client-managed membership
//! (`Group/$member-add` and `$member-remove` by reference, chart number and
//! demographics; relationship evidence required; attestation where the
//! policy allows it; replays; another Authorized User's Group; reset).
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
use registry::membership::{change_event, EvidenceKind, Groups, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::queries::{Queries, QueryPolicy};
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
    embedded: Arc<EmbeddedStore>,
    store: Arc<dyn ItemStore>,
    membership: Membership,
    app: axum::Router,
    key: SigningKey,
    /// Clinic A's client, registered to manage its Group.
    manager: String,
    /// Clinic A's client that may only read.
    reader: String,
    group_a: String,
    group_b: String,
    /// Reported by clinic A (chart A1-MRN).
    chioma: String,
    /// Reported by clinic B only.
    tunde: String,
    /// Reported by clinic B only.
    ada: String,
    feed_at: u64,
}

fn vxu(fac: &str, ctl: &str, family: &str, given: &str, dob: &str, sex: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{ctl}-MRN^^^{fac}^MR||{family}^{given}^^^^^L|Eze^^^^^^M|{dob}|{sex}|||7 Birch Ln^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550142\r\
ORC|RE||{ctl}-1^{fac}\rRXA|0|1|{dob}||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

async fn iis(policy: JurisdictionPolicy) -> Iis {
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
    let membership = Membership::new(matching.persons().clone(), policy.clone());
    let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.public_jwk("a-1")],
    })
    .unwrap();
    let clients = Clients::new(store.clone());
    let manager = clients
        .add(
            "clinic-a",
            Some(&jwks),
            None,
            "system/*.rs system/Group.u",
            0,
        )
        .await
        .unwrap()
        .id;
    let reader = clients
        .add("clinic-a", Some(&jwks), None, "system/*.rs", 0)
        .await
        .unwrap()
        .id;
    let mut deps = BulkDeps::new(
        matching.persons().clone(),
        policy.clone(),
        BASE,
        Arc::new(NoJwksUrls),
    );
    deps.queries = Some(Queries::new(
        matching.clone(),
        QueryPolicy {
            jurisdiction: policy,
            ..Default::default()
        },
    ));
    let mut iis = Iis {
        _dir: dir,
        embedded,
        store,
        membership,
        app: router(Arc::new(deps)),
        key,
        manager,
        reader,
        group_a: clinic_a.group.clone().unwrap(),
        group_b: clinic_b.group.clone().unwrap(),
        chioma: persons[0].clone(),
        tunde: persons[1].clone(),
        ada: persons[2].clone(),
        feed_at: 0,
    };
    iis.settle().await;
    iis
}

impl Iis {
    /// Runs the membership consumer over what the store has recorded since
    /// the last call, as the membership function would.
    async fn settle(&mut self) {
        let changes = self.embedded.read(None, 100_000).await.unwrap();
        for c in changes.iter().skip(self.feed_at as usize) {
            if let Some(e) = change_event(c) {
                self.membership.apply(&e).await.unwrap();
            }
        }
        self.feed_at = changes.len() as u64;
    }

    async fn call(&self, mut req: Request<Body>) -> (StatusCode, String) {
        let addr: SocketAddr = "203.0.113.9:40001".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
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
        let (s, v) = self
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

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let (s, text) = self
            .call(
                Request::post(path)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/fhir+json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn member(&self, group: &str, person: &str) -> Option<registry::membership::Member> {
        Groups::new(self.store.clone())
            .member(group, person)
            .await
            .unwrap()
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
            std::path::Path::new(&dir).join(format!("members-and-match-{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

fn match_request(patient: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient}]})
}

fn tunde() -> Value {
    json!({"resourceType": "Patient",
        "name": [{"family": "Okafor", "given": ["Tunde"]}],
        "birthDate": "2021-11-11", "gender": "male",
        "address": [{"line": ["7 Birch Ln"], "city": "Lansing", "state": "MI", "postalCode": "48910"}],
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Eze"}]})
}

fn params(list: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": list})
}

fn reference(id: &str) -> Value {
    json!({"name": "patientReference", "valueReference": {"reference": format!("Patient/{id}")}})
}

fn diagnostics(v: &Value) -> String {
    v["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_certain_match_gives_the_patient_and_joins_the_group_only_when_the_policy_says_so() {
    for fhir_match in [false, true] {
        let policy = JurisdictionPolicy {
            fhir_match,
            ..Default::default()
        };
        let mut iis = iis(policy).await;
        let token = iis.token(&iis.reader, "system/*.rs").await;
        let (s, bundle) = iis
            .post("/fhir/Patient/$match", &token, &match_request(tunde()))
            .await;
        assert_eq!(s, StatusCode::OK, "{bundle}");
        keep_sample("certain-match", &bundle);
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 1);
        let entry = &bundle["entry"][0];
        assert_eq!(entry["resource"]["id"], iis.tunde.as_str());
        assert_eq!(
            entry["fullUrl"],
            format!("{BASE}/fhir/Patient/{}", iis.tunde)
        );
        assert_eq!(entry["search"]["mode"], "match");
        assert!(entry["search"]["score"].as_f64().unwrap() >= 0.9);
        assert_eq!(
            entry["search"]["extension"][0],
            json!({"url": "http://hl7.org/fhir/StructureDefinition/match-grade", "valueCode": "certain"})
        );
        assert_eq!(entry["resource"]["birthDate"], "2021-11-11");
        // Clinic B's chart number is clinic B's: never given to clinic A.
        assert!(!bundle.to_string().contains("B2-MRN"), "{bundle}");

        // Audited under the client, with the person; the query record was
        // stored with it, and membership follows the policy.
        let events = iis.events(&iis.reader).await;
        let e = events
            .iter()
            .find(|e| e.action == "fhir.patient-match")
            .unwrap();
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.subjects, vec![format!("Person/{}", iis.tunde)]);
        assert!(
            !serde_json::to_string(e).unwrap().contains("Tunde"),
            "no PHI in the trail"
        );
        iis.settle().await;
        let member = iis.member(&iis.group_a, &iis.tunde).await;
        if fhir_match {
            let m = member.expect("a certain $match joins the Group under fhir_match");
            assert!(m.active);
            assert_eq!(m.first.kind, EvidenceKind::FhirMatch);
        } else {
            assert!(member.is_none(), "fhir_match is off by default");
        }
    }
}

#[tokio::test]
async fn the_askers_own_chart_number_finds_its_chart() {
    let iis = iis(JurisdictionPolicy::default()).await;
    let token = iis.token(&iis.reader, "system/*.rs").await;
    // A thinner description, but clinic A's own MRN (as its export gives
    // the identifier system) names its chart.
    let (s, bundle) = iis
        .post(
            "/fhir/Patient/$match",
            &token,
            &match_request(json!({"resourceType": "Patient",
                "identifier": [{"system": "urn:iisbulk:id/authority/FACA", "value": "A1-MRN",
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
                "name": [{"family": "Okafor", "given": ["Chioma"]}], "birthDate": "2024-03-05"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{bundle}");
    assert_eq!(bundle["entry"][0]["resource"]["id"], iis.chioma.as_str());
    assert!(bundle.to_string().contains("A1-MRN"), "the asker's own MRN");
}

#[tokio::test]
async fn possible_matches_are_withheld_or_listed_as_the_policy_says() {
    // Tunde's name and sex with a birth date one day off, and nothing
    // else: the matcher will not say certain.
    let probe = json!({"resourceType": "Patient",
        "name": [{"family": "Okafor", "given": ["Tunde"]}], "birthDate": "2021-11-12", "gender": "male"});
    for possible in [
        registry::membership::PossibleMatches::Withheld,
        registry::membership::PossibleMatches::Listed,
    ] {
        let policy = JurisdictionPolicy {
            possible_matches: possible,
            fhir_match: true,
            ..Default::default()
        };
        let mut iis = iis(policy).await;
        let token = iis.token(&iis.reader, "system/*.rs").await;
        let (s, bundle) = iis
            .post(
                "/fhir/Patient/$match",
                &token,
                &match_request(probe.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{bundle}");
        let entries = bundle["entry"].as_array().unwrap();
        keep_sample(&format!("possible-{possible:?}"), &bundle);
        match possible {
            registry::membership::PossibleMatches::Withheld => {
                assert_eq!(bundle["total"], 0, "{bundle}");
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0]["search"]["mode"], "outcome");
                assert!(
                    entries[0]["resource"]["issue"][0]["diagnostics"]
                        .as_str()
                        .unwrap()
                        .starts_with("1 possible match"),
                    "{bundle}"
                );
                assert!(!bundle.to_string().contains("Tunde"));
            }
            registry::membership::PossibleMatches::Listed => {
                assert_eq!(bundle["total"], 1, "{bundle}");
                let e = &entries[0];
                assert_eq!(e["resource"]["id"], iis.tunde.as_str());
                assert_eq!(e["search"]["extension"][0]["valueCode"], "possible");
                let score = e["search"]["score"].as_f64().unwrap();
                assert!((0.5..0.9).contains(&score), "{score}");
                // Z31 demographics only: no phone, no mother's maiden name.
                assert!(e["resource"].get("telecom").is_none(), "{e}");
                assert!(e["resource"].get("extension").is_none(), "{e}");
            }
        }
        // onlyCertainMatches leaves them out whatever the policy.
        let mut only = match_request(probe.clone());
        only["parameter"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "onlyCertainMatches", "valueBoolean": true}));
        let (s, bundle) = iis.post("/fhir/Patient/$match", &token, &only).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(bundle["total"], 0, "{bundle}");
        // A possible match is nobody's relationship, whatever fhir_match says.
        iis.settle().await;
        assert!(iis.member(&iis.group_a, &iis.tunde).await.is_none());
    }
}

#[tokio::test]
async fn bad_match_requests_get_a_clear_outcome() {
    let iis = iis(JurisdictionPolicy::default()).await;
    let token = iis.token(&iis.reader, "system/*.rs").await;
    let (s, text) = iis
        .call(
            Request::post("/fhir/Patient/$match")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{text}");
    let (s, _) = iis
        .call(
            Request::post("/fhir/Patient/$match")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "text/plain")
                .body(Body::from(match_request(tunde()).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, v) = iis
        .post(
            "/fhir/Patient/$match",
            &token,
            &match_request(json!({"resourceType": "Patient", "name": [{"family": "Okafor"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["issue"][0]["expression"][0], "Patient.birthDate");
    keep_sample("match-refused", &v);
    let (s, v) = iis
        .post(
            "/fhir/Patient/$match",
            &token,
            &params(json!([{"name": "resource", "resource": tunde()}, {"name": "resource", "resource": tunde()}])),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Over the body limit: 413 with an OperationOutcome, not a bare text.
    let mut huge = match_request(tunde());
    huge["padding"] = json!("x".repeat(3 * 1024 * 1024));
    let (s, v) = iis.post("/fhir/Patient/$match", &token, &huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["resourceType"], "OperationOutcome");
    assert_eq!(v["issue"][0]["code"], "too-long");
    // No token; a token that may not search Patients.
    let (s, _) = iis
        .call(
            Request::post("/fhir/Patient/$match")
                .header("content-type", "application/fhir+json")
                .body(Body::from(match_request(tunde()).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let groups_only = iis.token(&iis.reader, "system/Group.rs").await;
    let (s, _) = iis
        .post(
            "/fhir/Patient/$match",
            &groups_only,
            &match_request(tunde()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_client_adds_and_removes_its_own_patients_and_replays_change_nothing() {
    let mut iis = iis(JurisdictionPolicy::default()).await;
    let token = iis.token(&iis.manager, "system/*.rs system/Group.u").await;
    let add = format!("/fhir/Group/{}/$member-add", iis.group_a);
    let remove = format!("/fhir/Group/{}/$member-remove", iis.group_a);
    // Chioma joined by clinic A's VXU.
    assert!(iis.member(&iis.group_a, &iis.chioma).await.unwrap().active);

    // Removed by reference, with a reason; a replay is no change.
    let body =
        params(json!([reference(&iis.chioma), {"name": "reason", "valueString": "moved away"}]));
    let (s, v) = iis.post(&remove, &token, &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(diagnostics(&v).contains("removed from"), "{v}");
    let m = iis.member(&iis.group_a, &iis.chioma).await.unwrap();
    assert!(!m.active);
    assert!(m.removed_because.unwrap().ends_with("moved away"));
    let (s, v) = iis.post(&remove, &token, &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(diagnostics(&v).contains("already left"), "{v}");

    // Added back by clinic A's own chart number: the VXU is the relationship.
    let by_chart = params(json!([
        {"name": "memberId", "valueIdentifier": {"system": "urn:iisbulk:id/authority/FACA", "value": "A1-MRN"}},
        {"name": "providerNpi", "valueIdentifier": {"value": "1234567893"}}
    ]));
    let (s, v) = iis.post(&add, &token, &by_chart).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    keep_sample("member-added", &v);
    assert!(diagnostics(&v).contains("added to"), "{v}");
    assert!(diagnostics(&v).contains("ignored: providerNpi"), "{v}");
    let m = iis.member(&iis.group_a, &iis.chioma).await.unwrap();
    assert!(m.active);
    assert_eq!(m.latest.kind, EvidenceKind::MemberAdd);
    assert_eq!(
        m.latest.basis.as_deref(),
        Some("a VXU from this Authorized User")
    );
    let (s, v) = iis.post(&add, &token, &by_chart).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(diagnostics(&v).contains("already a member"), "{v}");

    // By demographics: a certain match clinic A relates to.
    let (s, v) = iis
        .post(
            &add,
            &token,
            &params(json!([{"name": "patient", "resource": {"resourceType": "Patient",
                "name": [{"family": "Okafor", "given": ["Chioma"]}], "birthDate": "2024-03-05", "gender": "female",
                "address": [{"line": ["7 Birch Ln"], "postalCode": "48910"}]}}])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Every add and remove is audited with the Group and the person.
    let events = iis.events(&iis.manager).await;
    let adds = events
        .iter()
        .filter(|e| e.action == "fhir.group.member-add" && e.outcome == Outcome::Success)
        .count();
    let removes = events
        .iter()
        .filter(|e| e.action == "fhir.group.member-remove" && e.outcome == Outcome::Success)
        .count();
    assert_eq!((adds, removes), (3, 2));
    assert!(events
        .iter()
        .filter(|e| e.action.starts_with("fhir.group.member-"))
        .all(
            |e| e.subjects.first() == Some(&format!("Group/{}", iis.group_a))
                && e.subjects.get(1) == Some(&format!("Person/{}", iis.chioma))
        ));
    iis.settle().await;
}

#[tokio::test]
async fn no_relationship_no_add_unless_the_policy_takes_an_attestation() {
    for attestation in [false, true] {
        let policy = JurisdictionPolicy {
            attestation,
            ..Default::default()
        };
        let iis = iis(policy).await;
        let token = iis.token(&iis.manager, "system/*.rs system/Group.u").await;
        let add = format!("/fhir/Group/{}/$member-add", iis.group_a);
        // Tunde is clinic B's patient: by reference, not found to clinic A.
        let (s, v) = iis
            .post(&add, &token, &params(json!([reference(&iis.tunde)])))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        // So is an id that does not exist, with the same words.
        let (s2, v2) = iis
            .post(&add, &token, &params(json!([reference("0badc0de")])))
            .await;
        assert_eq!(s2, StatusCode::NOT_FOUND, "{v2}");
        // By demographics: refused, saying what would count.
        let (s, v) = iis
            .post(
                &add,
                &token,
                &params(json!([{"name": "patient", "resource": tunde()}])),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["issue"][0]["code"], "business-rule");
        assert!(iis.member(&iis.group_a, &iis.tunde).await.is_none());

        // With an attestation.
        let attested = params(json!([reference(&iis.tunde),
            {"name": "attestation", "valueString": "enrolled in our school-based clinic"}]));
        let (s, v) = iis.post(&add, &token, &attested).await;
        if attestation {
            assert_eq!(s, StatusCode::OK, "{v}");
            let m = iis.member(&iis.group_a, &iis.tunde).await.unwrap();
            assert_eq!(
                m.first.basis.as_deref(),
                Some("attested by the Authorized User: enrolled in our school-based clinic")
            );
        } else {
            assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
            assert!(iis.member(&iis.group_a, &iis.tunde).await.is_none());
        }
    }
}

#[tokio::test]
async fn only_the_callers_own_group_and_only_with_the_scope_for_it() {
    let iis = iis(JurisdictionPolicy::default()).await;
    let token = iis.token(&iis.manager, "system/*.rs system/Group.u").await;
    // Clinic B's Group is not found to clinic A, whatever the request.
    for op in ["$member-add", "$member-remove"] {
        let (s, v) = iis
            .post(
                &format!("/fhir/Group/{}/{op}", iis.group_b),
                &token,
                &params(json!([reference(&iis.ada)])),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{op}: {v}");
    }
    assert!(iis.member(&iis.group_b, &iis.ada).await.unwrap().active);
    // A read-only client, or a managing client's read-only token: 403.
    let read_only = iis.token(&iis.reader, "system/*.rs").await;
    let (s, _) = iis
        .post(
            &format!("/fhir/Group/{}/$member-remove", iis.group_a),
            &read_only,
            &params(json!([reference(&iis.chioma)])),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let narrow = iis.token(&iis.manager, "system/*.rs").await;
    let (s, _) = iis
        .post(
            &format!("/fhir/Group/{}/$member-remove", iis.group_a),
            &narrow,
            &params(json!([reference(&iis.chioma)])),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(iis.member(&iis.group_a, &iis.chioma).await.unwrap().active);
    // Malformed: two patients, an unknown parameter, not a Parameters.
    let add = format!("/fhir/Group/{}/$member-add", iis.group_a);
    for (body, expression) in [
        (
            params(
                json!([reference(&iis.chioma), {"name": "memberId", "valueIdentifier": {"value": "A1-MRN"}}]),
            ),
            "memberId",
        ),
        (
            params(json!([{"name": "everyone", "valueBoolean": true}])),
            "everyone",
        ),
        (json!({"resourceType": "Patient"}), "body"),
    ] {
        let (s, v) = iis.post(&add, &token, &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["issue"][0]["expression"][0], expression, "{v}");
    }
    // A remove of someone who was never a member: not found.
    let (s, _) = iis
        .post(
            &format!("/fhir/Group/{}/$member-remove", iis.group_a),
            &token,
            &params(json!([reference(&iis.ada)])),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_reset_removes_every_member_and_keeps_the_removals() {
    let policy = JurisdictionPolicy {
        attestation: true,
        ..Default::default()
    };
    let iis = iis(policy).await;
    let token = iis.token(&iis.manager, "system/*.rs system/Group.u").await;
    let add = format!("/fhir/Group/{}/$member-add", iis.group_a);
    for p in [&iis.tunde, &iis.ada] {
        let (s, v) = iis
            .post(
                &add,
                &token,
                &params(json!([reference(p), {"name": "attestation", "valueString": "panel"}])),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let reset = params(json!([{"name": "reset", "valueBoolean": true},
        {"name": "reason", "valueString": "new cycle"}]));
    let remove = format!("/fhir/Group/{}/$member-remove", iis.group_a);
    let (s, v) = iis.post(&remove, &token, &reset).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(diagnostics(&v).contains("3 member(s) removed"), "{v}");
    for p in [&iis.chioma, &iis.tunde, &iis.ada] {
        let m = iis.member(&iis.group_a, p).await.unwrap();
        assert!(!m.active);
        assert!(m.removed_because.unwrap().contains("new cycle"));
    }
    assert_eq!(
        Groups::new(iis.store.clone())
            .quantity(&iis.group_a)
            .await
            .unwrap(),
        0
    );
    let (s, v) = iis.post(&remove, &token, &reset).await;
    assert_eq!(s, StatusCode::OK);
    assert!(diagnostics(&v).contains("0 member(s) removed"), "{v}");
}
