//! The ingest routes, HTTP in and HTTP out (no socket: the router is called
//! as a tower service, exactly as Lambda and the local server call it).
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use ingest::{router, IngestConfig, IngestDeps};
use registry::{AuKind, AuthorizedUsers, Credentials, Intake, NewAuthorizedUser};
use std::path::PathBuf;
use std::sync::Arc;
use store::embedded::EmbeddedStore;
use tower::ServiceExt;

fn corpus(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7");
    std::fs::read(p.join(name)).unwrap()
}

async fn app(dir: &tempfile::TempDir) -> axum::Router {
    let store: Arc<dyn store::ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    let users = AuthorizedUsers::new(store.clone());
    users
        .add(
            NewAuthorizedUser {
                id: "nist-clinic".into(),
                kind: AuKind::Clinic,
                name: "NIST".into(),
                facilities: vec!["NISTEHRFAC".into()],
                username: "nist".into(),
                password: "correct horse battery".into(),
            },
            0,
        )
        .await
        .unwrap();
    router(Arc::new(IngestDeps {
        credentials: Credentials::new(users),
        audit: registry::audit::AuditTrail::new(store.clone()),
        intake: Intake::new(store, iz::IisIdentity::default()),
        config: IngestConfig {
            max_message_bytes: 64 * 1024,
            public_url: None,
            ..IngestConfig::default()
        },
    }))
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

fn post_hl7(auth: Option<&str>, ct: &str, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post("/hl7").header("content-type", ct);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn rest_answers_in_the_requests_media_type() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let auth = basic("nist", "correct horse battery");
    let (s, ct, body) = call(
        &app,
        post_hl7(
            Some(&auth),
            "x-application/hl7-v2+er7",
            corpus("vxu-001.hl7"),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "x-application/hl7-v2+er7");
    assert!(
        body.contains("MSA|AA|NIST-IZ-AD-1.1_Send_V04_Z22"),
        "{body}"
    );

    let (s, _, again) = call(
        &app,
        post_hl7(
            Some(&auth),
            "application/hl7-v2; charset=utf-8",
            corpus("vxu-001.hl7"),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, body, "a resend returns the same bytes");
}

#[tokio::test]
async fn rest_http_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let good = basic("nist", "correct horse battery");

    let (s, _, body) = call(
        &app,
        post_hl7(None, "application/hl7-v2", corpus("vxu-001.hl7")),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Basic"));
    let (s, _, _) = call(
        &app,
        post_hl7(
            Some(&basic("nist", "wrong password!!")),
            "application/hl7-v2",
            b"garbage".to_vec(),
        ),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "credentials are checked before the body"
    );

    let (s, _, body) = call(
        &app,
        post_hl7(Some(&good), "application/hl7-v2", b"hello".to_vec()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("not an HL7 v2 message"), "{body}");

    let (s, _, body) = call(
        &app,
        post_hl7(Some(&good), "application/json", corpus("vxu-001.hl7")),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body.contains("application/hl7-v2"));

    let big = vec![b'A'; 200 * 1024];
    let (s, _, body) = call(&app, post_hl7(Some(&good), "application/hl7-v2", big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains("65536"), "{body}");

    // A rejected message is still an HL7 answer with 200.
    let (s, _, body) = call(
        &app,
        post_hl7(Some(&good), "application/hl7-v2", corpus("vxu-018.hl7")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("MSA|AR"), "{body}");
}

fn envelope(user: &str, pass: &str, facility: &str, hl7: &str) -> String {
    let hl7 = hl7
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\r', "&#13;");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:urn="urn:cdc:iisb:2011">
  <soap:Header/>
  <soap:Body>
    <urn:submitSingleMessage>
      <urn:username>{user}</urn:username>
      <urn:password>{pass}</urn:password>
      <urn:facilityID>{facility}</urn:facilityID>
      <urn:hl7Message>{hl7}</urn:hl7Message>
    </urn:submitSingleMessage>
  </soap:Body>
</soap:Envelope>"#
    )
}

fn post_soap(body: String) -> Request<Body> {
    Request::post("/soap")
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn soap_submit_connectivity_and_faults() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let vxu = String::from_utf8(corpus("vxu-002.hl7")).unwrap();

    let (s, ct, body) = call(
        &app,
        post_soap(envelope(
            "nist",
            "correct horse battery",
            "NISTEHRFAC",
            &vxu,
        )),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(ct.starts_with("application/soap+xml"));
    assert!(body.contains("submitSingleMessageResponse"), "{body}");
    assert!(body.contains("MSA|AA"), "{body}");
    assert!(
        body.contains("&#13;"),
        "CR survives as a character reference"
    );

    let (s, _, body) = call(
        &app,
        post_soap(envelope("nist", "bad password!!", "NISTEHRFAC", &vxu)),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("SecurityFault"), "{body}");
    assert!(!body.contains("MSA|"), "never an ACK for bad credentials");

    let (s, _, body) = call(
        &app,
        post_soap(envelope("nist", "correct horse battery", "ELSEWHERE", &vxu)),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("MSA|AR"), "{body}");
    assert!(body.contains("facilityID"), "{body}");

    let big = "A".repeat(70 * 1024);
    let (_, _, body) = call(
        &app,
        post_soap(envelope(
            "nist",
            "correct horse battery",
            "NISTEHRFAC",
            &big,
        )),
    )
    .await;
    assert!(body.contains("MessageTooLargeFault"), "{body}");

    let (s, _, body) = call(&app, post_soap("<soap:Envelope".into())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("Fault"));

    let ping = r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:urn="urn:cdc:iisb:2011"><soap:Body><urn:connectivityTest><urn:echoBack>hello IIS</urn:echoBack></urn:connectivityTest></soap:Body></soap:Envelope>"#;
    let (s, _, body) = call(&app, post_soap(ping.into())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("hello IIS"), "{body}");

    let unknown = r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:urn="urn:cdc:iisb:2011"><soap:Body><urn:submitBatch/></soap:Body></soap:Envelope>"#;
    let (_, _, body) = call(&app, post_soap(unknown.into())).await;
    assert!(body.contains("UnsupportedOperationFault"), "{body}");
}

#[tokio::test]
async fn wsdl_names_our_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let req = Request::get("/soap?wsdl")
        .header("host", "iis.example.org:8443")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .unwrap();
    let (s, _, body) = call(&app, req).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("https://iis.example.org:8443/soap"), "{body}");
    assert!(body.contains("urn:cdc:iisb:2011"));
}
