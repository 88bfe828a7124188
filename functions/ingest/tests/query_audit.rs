//! Every QBP answer is in the audit trail, whichever transport it came by:
//! a Z34 over REST and over SOAP, from the caller's address, with the
//! person answered about as an id and nothing that identifies a patient.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use ingest::{router, IngestConfig, IngestDeps};
use registry::audit::{AuditEvent, AuditSearch, AuditTrail, Outcome};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use store::embedded::EmbeddedStore;
use store::ItemStore;
use tower::ServiceExt;

const VXU: &str = "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|V1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||MRN-4471^^^FACA^MR||Mendoza^Sofia^^^^^L|Ruiz^^^^^^M|20240305|F|||7 Birch Ln^^Lansing^MI^48910^USA^P\r\
ORC|RE||A-1^FACA\rRXA|0|1|20240305||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";

fn z34(ctl: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||QBP^Q11^QBP_Q11|{ctl}|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|FACA|IISFAC\r\
QPD|Z34^Request Immunization History^CDCPHINVS|Q-{ctl}|MRN-4471^^^FACA^MR|Mendoza^Sofia^^^^^L|Ruiz^^^^^^M|20240305|F|7 Birch Ln^^Lansing^MI^48910^USA^P\r\
RCP|I|5^RD&records&HL70126\r"
    )
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("clinic-a:a long enough password")
    )
}

fn envelope(hl7: &str) -> String {
    let hl7 = hl7
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\r', "&#13;");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:urn="urn:cdc:iisb:2011">
  <soap:Body>
    <urn:submitSingleMessage>
      <urn:username>clinic-a</urn:username>
      <urn:password>a long enough password</urn:password>
      <urn:facilityID>FACA</urn:facilityID>
      <urn:hl7Message>{hl7}</urn:hl7Message>
    </urn:submitSingleMessage>
  </soap:Body>
</soap:Envelope>"#
    )
}

async fn call(
    app: &axum::Router,
    mut req: Request<Body>,
    from: SocketAddr,
) -> (StatusCode, String) {
    req.extensions_mut().insert(ConnectInfo(from));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_z34_over_rest_or_soap_is_audited_with_the_person_id_and_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    let users = AuthorizedUsers::new(store.clone());
    let au = users
        .add(
            NewAuthorizedUser {
                id: "clinic-a".into(),
                kind: AuKind::Clinic,
                name: "Clinic A".into(),
                facilities: vec!["FACA".into()],
                username: "clinic-a".into(),
                password: "a long enough password".into(),
            },
            0,
        )
        .await
        .unwrap();
    // The child is in the registry: reported and matched.
    let d = Intake::new(store.clone(), iz::IisIdentity::default())
        .receive(
            &au,
            &Transport::Rest,
            VXU.as_bytes(),
            iz::Clock::at(1_790_000_000),
        )
        .await
        .unwrap();
    let matching = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let person = matching
        .process(&d.message_id.unwrap(), 1)
        .await
        .unwrap()
        .person;
    let app = router(Arc::new(IngestDeps::new(
        store.clone(),
        iz::IisIdentity::default(),
        IngestConfig::default(),
    )));

    let rest: SocketAddr = "198.51.100.20:50123".parse().unwrap();
    let (s, rsp) = call(
        &app,
        Request::post("/hl7")
            .header("authorization", basic())
            .header("content-type", "application/hl7-v2")
            .body(Body::from(z34("Q-REST-1")))
            .unwrap(),
        rest,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rsp}");
    assert!(rsp.contains("Z32^CDCPHINVS"), "{rsp}");
    let soap: SocketAddr = "[2001:db8::7]:443".parse().unwrap();
    let (s, answer) = call(
        &app,
        Request::post("/soap")
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(Body::from(envelope(&z34("Q-SOAP-1"))))
            .unwrap(),
        soap,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert!(answer.contains("Z32^CDCPHINVS"), "{answer}");

    let mut events: Vec<AuditEvent> = AuditTrail::new(store.clone())
        .search(&AuditSearch {
            actor: Some("authorized-user/clinic-a".into()),
            from_ms: 0,
            to_ms: i64::MAX / 2,
            limit: 100,
            ..AuditSearch::default()
        })
        .await
        .unwrap();
    events.reverse();
    assert_eq!(events.len(), 2, "one event per query: {events:#?}");
    for (e, ctl, from) in [
        (&events[0], "Q-REST-1", "198.51.100.20"),
        (&events[1], "Q-SOAP-1", "2001:db8::7"),
    ] {
        assert_eq!(e.action, "hl7.query.z34");
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.subjects, [format!("Person/{person}")]);
        assert_eq!(e.detail, format!("Z32, doses: 1; MSH-10 {ctl}"));
        assert_eq!(e.source.as_deref(), Some(from));
    }
    // Ids only: no name, birth date, chart number or address.
    let text = serde_json::to_string(&events).unwrap();
    for phi in ["Sofia", "Mendoza", "Ruiz", "20240305", "MRN-4471", "Birch"] {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
}

/// A refused HL7 login, over REST or SOAP, is in the audit trail under the
/// name typed, with the route and the address, never the password.
#[tokio::test]
async fn a_refused_login_over_rest_or_soap_is_audited_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    AuthorizedUsers::new(store.clone())
        .add(
            NewAuthorizedUser {
                id: "clinic-a".into(),
                kind: AuKind::Clinic,
                name: "Clinic A".into(),
                facilities: vec!["FACA".into()],
                username: "clinic-a".into(),
                password: "a long enough password".into(),
            },
            0,
        )
        .await
        .unwrap();
    let app = router(Arc::new(IngestDeps::new(
        store.clone(),
        iz::IisIdentity::default(),
        IngestConfig::default(),
    )));
    let guess = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("clinic-a:a guessed password")
    );
    let (s, _) = call(
        &app,
        Request::post("/hl7")
            .header("authorization", guess)
            .header("content-type", "application/hl7-v2")
            .body(Body::from(z34("Q-BAD-1")))
            .unwrap(),
        "198.51.100.20:50123".parse().unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, fault) = call(
        &app,
        Request::post("/soap")
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(Body::from(
                envelope(&z34("Q-BAD-2")).replace("a long enough password", "another guess"),
            ))
            .unwrap(),
        "203.0.113.9:443".parse().unwrap(),
    )
    .await;
    assert!(fault.contains("SecurityFault"), "{s} {fault}");
    let mut events: Vec<AuditEvent> = AuditTrail::new(store.clone())
        .search(&AuditSearch {
            actor: Some("unauthenticated/clinic-a".into()),
            from_ms: 0,
            to_ms: i64::MAX / 2,
            limit: 100,
            ..AuditSearch::default()
        })
        .await
        .unwrap();
    events.reverse();
    assert_eq!(events.len(), 2, "{events:#?}");
    for (e, route, from) in [
        (&events[0], "/hl7", "198.51.100.20"),
        (&events[1], "/soap", "203.0.113.9"),
    ] {
        assert_eq!(e.action, "hl7.login");
        assert_eq!(e.outcome, Outcome::Failure);
        assert!(e.detail.ends_with(route), "{}", e.detail);
        assert_eq!(e.source.as_deref(), Some(from));
    }
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("guess"), "{text}");
}
