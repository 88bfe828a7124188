//! The HTTP functions behind each front door Lambda gives them: committed
//! fixture events (`tests/cloud-e2e/events/`) of an API Gateway HTTP API
//! (payload 2.0), an API Gateway REST API (payload 1.0, stage `prod`) and a
//! Function URL, read by lambda_http and answered by the routers exactly as
//! `main.rs` serves them (`lambda_edge::on_lambda`). Over the embedded
//! store: the front door, not the storage, is under test here.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use cloud_e2e::http::{event_kind, invoke_request, Answer};
use lambda_http::request::LambdaRequest;
use registry::membership::JurisdictionPolicy;
use registry::persons::Persons;
use registry::{AuKind, AuthorizedUsers, NewAuthorizedUser};
use store::embedded::EmbeddedStore;
use store::ItemStore;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The fixture as lambda_http reads it, and the front door it was read as.
fn fixture(name: &str) -> (LambdaRequest, &'static str) {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    let request: LambdaRequest =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("lambda_http refused {name}: {e}"));
    let kind = event_kind(&request);
    (request, kind)
}

struct Functions {
    _dir: tempfile::TempDir,
    ingest: lambda_edge::OnLambda,
    bulk: lambda_edge::OnLambda,
}

async fn functions() -> Functions {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let policy = JurisdictionPolicy::default();
    registry::membership::onboard(
        &AuthorizedUsers::new(store.clone()),
        NewAuthorizedUser {
            id: "fixture-clinic".into(),
            kind: AuKind::Clinic,
            name: "Fixture Clinic".into(),
            facilities: vec!["FIXFAC".into()],
            username: "fixture-user".into(),
            password: "fixture password 1".into(),
        },
        0,
        &policy,
    )
    .await
    .unwrap();
    let ingest = ingest::router(Arc::new(ingest::IngestDeps::new(
        store.clone(),
        iz::IisIdentity::default(),
        ingest::IngestConfig::default(),
    )));
    let patients = Persons::new(store);
    let bulk = bulk_api::router(Arc::new(bulk_api::BulkDeps::new(
        patients,
        Arc::new(policy),
        "https://fixture.execute-api.us-east-1.amazonaws.com/prod",
        Arc::new(bulk_api::HttpJwks::new().unwrap()),
    )));
    Functions {
        _dir: dir,
        ingest: lambda_edge::on_lambda(ingest),
        bulk: lambda_edge::on_lambda(bulk),
    }
}

async fn answer(router: &lambda_edge::OnLambda, name: &str) -> (Answer, &'static str) {
    let (request, kind) = fixture(name);
    let answer = invoke_request(router.clone(), request)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (answer, kind)
}

#[tokio::test]
async fn a_vxu_is_acknowledged_through_every_front_door() {
    let f = functions().await;
    for (name, door) in [
        ("ingest.http-api.post-hl7.json", "HTTP API"),
        ("ingest.rest-api.post-hl7.json", "REST API"),
        ("ingest.function-url.post-hl7.json", "Function URL"),
    ] {
        let (a, kind) = answer(&f.ingest, name).await;
        assert!(
            kind.contains(if door == "REST API" { "REST" } else { "2.0" }),
            "{name}: {kind}"
        );
        assert_eq!(a.status, 200, "{name}: {}", a.text());
        let ack = a.text();
        assert!(ack.starts_with("MSH|"), "{name}: {ack}");
        assert!(
            ack.contains("\rMSA|AA|FIX-"),
            "{name} ({door}) not accepted: {ack}"
        );
        assert!(
            a.header("content-type").unwrap_or_default().contains("hl7"),
            "{name}: {:?}",
            a.headers
        );
    }
}

#[tokio::test]
async fn the_soap_connectivity_test_echoes_through_every_front_door() {
    let f = functions().await;
    for name in [
        "ingest.http-api.soap-connectivity.json",
        "ingest.rest-api.soap-connectivity.json",
        "ingest.function-url.soap-connectivity.json",
    ] {
        let (a, _) = answer(&f.ingest, name).await;
        assert_eq!(a.status, 200, "{name}: {}", a.text());
        assert!(a.text().contains("fixture ping"), "{name}: {}", a.text());
    }
}

#[tokio::test]
async fn discovery_and_refusals_are_the_same_through_every_front_door() {
    let f = functions().await;
    for name in [
        "bulk-api.http-api.smart-configuration.json",
        "bulk-api.rest-api.smart-configuration.json",
    ] {
        let (a, _) = answer(&f.bulk, name).await;
        assert_eq!(a.status, 200, "{name}: {}", a.text());
        // Links name the configured public URL, stage included.
        assert_eq!(
            a.json()["token_endpoint"],
            "https://fixture.execute-api.us-east-1.amazonaws.com/prod/auth/token",
            "{name}"
        );
    }
    let (a, _) = answer(&f.bulk, "bulk-api.function-url.metadata.json").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["resourceType"], "CapabilityStatement");
    let (a, _) = answer(&f.bulk, "bulk-api.rest-api.group-without-token.json").await;
    assert_eq!(a.status, 401, "{}", a.text());
    assert_eq!(a.json()["resourceType"], "OperationOutcome", "{}", a.text());
}
