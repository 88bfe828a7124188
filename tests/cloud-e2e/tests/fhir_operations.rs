//! `Patient/$match`, `Group/$member-remove` and `$member-add` as the stack
//! serves them, against moto: a fresh table and bucket; a clinic, its
//! managing SMART client and one reported child written with the same
//! registry calls the ingest, matcher and membership functions make; the
//! bulk-api Lambda's router built by its own `bulk_api::deps_from_env`
//! (with the shipped matcher, as its `main.rs` runs it) and invoked with API
//! Gateway HTTP API 2.0 events.
//!
//! The match answers the child certainly; its query record and audit event
//! land on DynamoDB in one transaction; the clinic removes the child from
//! its Group and adds her back by its chart number. Then a
//! `Patient/$bulk-match` of the child and a stranger: kicked off through
//! the bulk-api Lambda (its input stored in S3), run by the export worker
//! Lambda (`export_worker::deps_from_env`) from the table's stream through
//! the template's filter, its manifest listing presigned S3 URLs whose
//! Bundles answer each input in order.
//!
//! Needs `IISBULK_DYNAMODB_ENDPOINT` and `IISBULK_S3_ENDPOINT` (scripts/moto
//! start); skipped without them unless `IISBULK_REQUIRE_MOTO=1`. This binary
//! has this one test, which sets the environment before any thread starts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cloud_e2e::aws::{endpoints_or_skip, unique_name, Cloud};
use cloud_e2e::esm::{mapping, template, Consumer, Pump, StreamReader};
use cloud_e2e::http::{apigw_v2_event, invoke, Answer};
use registry::audit::{AuditSearch, AuditTrail};
use registry::membership::{Groups, Membership};
use registry::patients::PatientMatching;
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::{Clients, ASSERTION_TYPE};
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::ItemStore;

const PUBLIC_URL: &str = "https://iis.e2e.example";

fn now_s() -> i64 {
    iz::Clock::now().unix_seconds
}

#[test]
fn match_and_client_managed_membership_through_the_bulk_api_lambda() {
    if !endpoints_or_skip("the FHIR operations cloud test") {
        return;
    }
    let table = unique_name("iisbulk-ops");
    let bucket = unique_name("iisbulk-ops");
    std::env::set_var("IISBULK_TABLE", &table);
    std::env::set_var("IISBULK_BUCKET", &bucket);
    std::env::set_var("IISBULK_EXPORT_PREFIX", "bulk");
    std::env::set_var("IISBULK_PUBLIC_URL", PUBLIC_URL);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(scenario(table, bucket));
}

async fn call(bulk: &lambda_edge::OnLambda, path: &str, token: &str, body: &Value) -> Answer {
    let bearer = format!("Bearer {token}");
    let event = apigw_v2_event(
        "POST",
        path,
        &[
            ("content-type", "application/fhir+json"),
            ("authorization", &bearer),
        ],
        body.to_string().as_bytes(),
    );
    invoke(bulk.clone(), &event).await.unwrap()
}

async fn scenario(table: String, bucket: String) {
    let cloud = Cloud::create(&table, &bucket).await.unwrap();
    let store: Arc<dyn ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table.clone(),
    ));
    let policy = Arc::new(settings::jurisdiction_policy().unwrap());
    let clinic = registry::membership::onboard(
        &AuthorizedUsers::new(store.clone()),
        NewAuthorizedUser {
            id: "clinic-m".into(),
            kind: AuKind::Clinic,
            name: "Clinic M".into(),
            facilities: vec!["FACM".into()],
            username: "clinic-m".into(),
            password: "clinic-m password, long enough".into(),
        },
        now_s(),
        &policy,
    )
    .await
    .unwrap();
    let group = clinic.group.clone().unwrap();
    let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.public_jwk("m-1")],
    })
    .unwrap();
    let client = Clients::new(store.clone())
        .add(
            "clinic-m",
            Some(&jwks),
            None,
            "system/*.rs system/Group.u",
            now_s() * 1000,
        )
        .await
        .unwrap()
        .id;

    // One child, reported, matched and made a member as the ingest,
    // matcher and membership functions do.
    let vxu = "MSH|^~\\&|EHR|FACM|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|OPS-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACM|IISFAC\r\
PID|1||OPS-MRN^^^FACM^MR||Solberg^Maren^^^^^L|Dahl^^^^^^M|20240601|F|||9 Fjord St^^Duluth^MN^55802^USA^P\r\
ORC|RE||OPS-1-1^FACM\rRXA|0|1|20240801||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let received = Intake::new(store.clone(), iz::IisIdentity::default())
        .receive(
            &clinic,
            &Transport::Rest,
            vxu.as_bytes(),
            iz::Clock::at(now_s()),
        )
        .await
        .unwrap();
    let message_id = received.message_id.unwrap();
    let matching = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let matched = matching.process(&message_id, now_s() * 1000).await.unwrap();
    Membership::new(matching.persons().clone(), policy.clone())
        .apply(&registry::membership::MembershipEvent::Matched { message_id })
        .await
        .unwrap();
    let groups = Groups::new(store.clone());
    assert!(
        groups
            .member(&group, &matched.person)
            .await
            .unwrap()
            .is_some_and(|m| m.active),
        "the VXU made her a member"
    );

    let bulk = lambda_edge::on_lambda(bulk_api::router(Arc::new(
        bulk_api::deps_from_env().await.unwrap(),
    )));
    // A token for reading and managing the Group.
    let claims = json!({"iss": client, "sub": client, "aud": format!("{PUBLIC_URL}/auth/token"),
        "exp": now_s() + 240, "jti": uuid::Uuid::new_v4().to_string()});
    let assertion = key.sign("m-1", &json!({}), &claims).unwrap();
    let form = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
        ("scope", "system/*.rs system/Group.u"),
    ])
    .unwrap();
    let event = apigw_v2_event(
        "POST",
        "/auth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    let a = invoke(bulk.clone(), &event).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["scope"], "system/*.rs system/Group.u");
    let token = a.json()["access_token"].as_str().unwrap().to_owned();

    let m = call(
        &bulk,
        "/fhir/Patient/$match",
        &token,
        &json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
            "resourceType": "Patient", "name": [{"family": "Solberg", "given": ["Maren"]}],
            "birthDate": "2024-06-01", "gender": "female",
            "address": [{"line": ["9 Fjord St"], "city": "Duluth", "state": "MN", "postalCode": "55802"}]}}]}),
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text());
    let bundle = m.json();
    assert_eq!(bundle["total"], 1, "{bundle}");
    assert_eq!(
        bundle["entry"][0]["resource"]["id"],
        matched.person.as_str()
    );
    assert_eq!(
        bundle["entry"][0]["search"]["extension"][0]["valueCode"],
        "certain"
    );
    // Its audit event is on the table, with the person.
    let events = AuditTrail::new(store.clone())
        .search(&AuditSearch {
            actor: Some(format!("client/{client}")),
            from_ms: 0,
            to_ms: (now_s() + 60) * 1000,
            limit: 100,
            ..AuditSearch::default()
        })
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.action == "fhir.patient-match"
        && e.subjects == vec![format!("Person/{}", matched.person)]));

    let remove = call(
        &bulk,
        &format!("/fhir/Group/{group}/$member-remove"),
        &token,
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "patientReference", "valueReference": {"reference": format!("Patient/{}", matched.person)}}]}),
    )
    .await;
    assert_eq!(remove.status, 200, "{}", remove.text());
    assert!(
        !groups
            .member(&group, &matched.person)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    let add = call(
        &bulk,
        &format!("/fhir/Group/{group}/$member-add"),
        &token,
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "memberId", "valueIdentifier": {"system": "urn:iisbulk:id/authority/FACM", "value": "OPS-MRN"}}]}),
    )
    .await;
    assert_eq!(add.status, 200, "{}", add.text());
    assert!(
        groups
            .member(&group, &matched.person)
            .await
            .unwrap()
            .unwrap()
            .active
    );

    // Patient/$bulk-match on the stack: the kick-off is queued by bulk-api...
    let bearer = format!("Bearer {token}");
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "id": "in-1",
            "name": [{"family": "Solberg", "given": ["Maren"]}], "birthDate": "2024-06-01",
            "gender": "female",
            "address": [{"line": ["9 Fjord St"], "city": "Duluth", "state": "MN", "postalCode": "55802"}]}},
        {"name": "resource", "resource": {"resourceType": "Patient", "id": "in-2",
            "name": [{"family": "Quennell", "given": ["Tobias"]}], "birthDate": "2019-02-11",
            "gender": "male"}}]});
    let event = apigw_v2_event(
        "POST",
        "/fhir/Patient/$bulk-match",
        &[
            ("content-type", "application/fhir+json"),
            ("accept", "application/fhir+json"),
            ("prefer", "respond-async"),
            ("authorization", &bearer),
        ],
        body.to_string().as_bytes(),
    );
    let kicked = invoke(bulk.clone(), &event).await.unwrap();
    assert_eq!(kicked.status, 202, "{}", kicked.text());
    let status_url = kicked.header("content-location").unwrap().to_owned();
    let status_path = status_url.strip_prefix(PUBLIC_URL).unwrap().to_owned();
    let poll = |bulk: lambda_edge::OnLambda, bearer: String, path: String| async move {
        let event = apigw_v2_event("GET", &path, &[("authorization", &bearer)], b"");
        invoke(bulk, &event).await.unwrap()
    };
    assert_eq!(
        poll(bulk.clone(), bearer.clone(), status_path.clone())
            .await
            .status,
        202,
        "queued until the worker runs it"
    );
    // ...and run by the export worker from the stream, through the
    // template's filter.
    let worker = export_worker::deps_from_env().await.unwrap();
    let mut pump = Pump {
        reader: StreamReader {
            client: cloud.streams.clone(),
            arn: cloud.stream_arn.clone(),
        },
        consumers: vec![Consumer::new(
            mapping(&template().unwrap(), "ExportWorkerFunction").unwrap(),
            Box::new(move |event| {
                let worker = worker.clone();
                Box::pin(async move {
                    export_worker::handle(&worker, &event)
                        .await
                        .map(|r| serde_json::to_value(r).unwrap())
                })
            }),
        )],
    };
    assert!(pump.until_quiet().await.unwrap() >= 1);
    let done = poll(bulk.clone(), bearer.clone(), status_path).await;
    assert_eq!(done.status, 200, "{}", done.text());
    let manifest = done.json();
    assert_eq!(manifest["requiresAccessToken"], false, "{manifest}");
    let files = manifest["output"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{manifest}");
    let url = files[0]["url"].as_str().unwrap();
    assert!(
        url.contains("X-Amz-Signature="),
        "a presigned S3 URL: {url}"
    );
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let bundles: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bundles.len(), 2, "{text}");
    assert_eq!(
        bundles[0]["meta"]["extension"][0]["valueReference"]["reference"],
        "Patient/in-1"
    );
    assert_eq!(
        bundles[0]["entry"][0]["resource"]["id"],
        matched.person.as_str()
    );
    assert_eq!(
        bundles[0]["entry"][0]["search"]["extension"][0]["valueCode"],
        "certain"
    );
    assert_eq!(
        bundles[1]["meta"]["extension"][0]["valueReference"]["reference"],
        "Patient/in-2"
    );
    assert_eq!(bundles[1]["total"], 0, "the stranger matches no one");
    // The input patients are gone from S3 once answered.
    let objects = cloud.objects().await.unwrap();
    assert!(
        !objects.keys().any(|k| k.ends_with("input.ndjson")),
        "{objects:?}"
    );
    assert!(objects.keys().any(|k| k.starts_with("bulk/bulkmatch/")));
}
