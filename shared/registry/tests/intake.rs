//! The intake use case over the embedded store: sender checks, idempotency,
//! durable accepted messages.
#![allow(clippy::unwrap_used)]

use iz::{AckCode, Clock, IisIdentity};
use registry::intake::load_accepted;
use registry::{
    AuError, AuKind, AuthError, AuthorizedUsers, Credentials, Intake, NewAuthorizedUser, Transport,
};
use std::path::PathBuf;
use std::sync::Arc;
use store::embedded::EmbeddedStore;
use store::ItemStore;

fn corpus(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7");
    std::fs::read(p.join(name)).unwrap()
}

fn clock() -> Clock {
    Clock::at(1_790_000_000)
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn ItemStore>,
    users: AuthorizedUsers,
    intake: Intake,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    let users = AuthorizedUsers::new(store.clone());
    users
        .add(
            NewAuthorizedUser {
                id: "nist-clinic".into(),
                kind: AuKind::Clinic,
                name: "NIST EHR Clinic".into(),
                facilities: vec!["NISTEHRFAC".into()],
                username: "nist".into(),
                password: "correct horse battery".into(),
            },
            0,
        )
        .await
        .unwrap();
    users
        .add(
            NewAuthorizedUser {
                id: "other".into(),
                kind: AuKind::Pharmacy,
                name: "Other Pharmacy".into(),
                facilities: vec!["OTHERFAC".into()],
                username: "other".into(),
                password: "another long password".into(),
            },
            0,
        )
        .await
        .unwrap();
    let intake = Intake::new(store.clone(), IisIdentity::default());
    Fixture {
        _dir: dir,
        store,
        users,
        intake,
    }
}

#[tokio::test]
async fn authorized_users_are_unique_and_authenticate() {
    let f = fixture().await;
    let dup_facility = f
        .users
        .add(
            NewAuthorizedUser {
                id: "third".into(),
                kind: AuKind::School,
                name: "School".into(),
                facilities: vec!["SCHOOLFAC".into(), "NISTEHRFAC".into()],
                username: "school".into(),
                password: "a long enough password".into(),
            },
            0,
        )
        .await;
    assert_eq!(
        dup_facility,
        Err(AuError::FacilityTaken("NISTEHRFAC".into()))
    );
    // Nothing of the failed user was written.
    assert!(f.users.get("third").await.unwrap().is_none());
    assert!(f.users.by_username("school").await.unwrap().is_none());

    let short = f
        .users
        .add(
            NewAuthorizedUser {
                id: "fourth".into(),
                kind: AuKind::School,
                name: "School".into(),
                facilities: vec!["F4".into()],
                username: "fourth".into(),
                password: "short".into(),
            },
            0,
        )
        .await;
    assert!(matches!(short, Err(AuError::Invalid(m)) if m.contains("at least 12")));

    let creds = Credentials::new(f.users.clone());
    let au = creds
        .authenticate("nist", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(au.id, "nist-clinic");
    assert_eq!(
        creds.authenticate("nist", "wrong password!!").await,
        Err(AuthError::BadCredentials)
    );
    assert_eq!(
        creds.authenticate("nobody", "correct horse battery").await,
        Err(AuthError::BadCredentials)
    );
    let stored = f.users.get("nist-clinic").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains("correct horse"));

    f.users
        .set_password("nist-clinic", "a brand new password")
        .await
        .unwrap();
    let fresh = Credentials::new(f.users.clone());
    assert!(fresh
        .authenticate("nist", "a brand new password")
        .await
        .is_ok());
    assert!(fresh
        .authenticate("nist", "correct horse battery")
        .await
        .is_err());

    let au = f.users.add_facility("nist-clinic", "NIST-2").await.unwrap();
    assert!(au.sends_for("NIST-2"));
    assert_eq!(
        f.users.add_facility("other", "NIST-2").await,
        Err(AuError::FacilityTaken("NIST-2".into()))
    );
    assert_eq!(f.users.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn accepted_vxu_is_stored_and_a_resend_gets_the_same_bytes() {
    let f = fixture().await;
    let au = f.users.get("nist-clinic").await.unwrap().unwrap();
    let body = corpus("vxu-001.hl7");
    let first = f
        .intake
        .receive(&au, &Transport::Rest, &body, clock())
        .await
        .unwrap();
    assert_eq!(first.ack_code, AckCode::AA);
    assert!(first.accepted && !first.duplicate);
    let id = first.message_id.clone().unwrap();
    let stored = load_accepted(f.store.as_ref(), &id).await.unwrap().unwrap();
    assert_eq!(stored.control_id, "NIST-IZ-AD-1.1_Send_V04_Z22");
    assert_eq!(stored.vxu.orders.len(), 5);
    assert_eq!(stored.raw.to_bytes().unwrap(), body);

    // Later, over SOAP (LF line ends): the same message, the same answer.
    let lf: Vec<u8> = body
        .iter()
        .map(|&b| if b == b'\r' { b'\n' } else { b })
        .collect();
    let again = f
        .intake
        .receive(
            &au,
            &Transport::Soap {
                facility_id: "NISTEHRFAC".into(),
            },
            &lf,
            Clock::at(1_790_000_500),
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.answer, first.answer);
    assert_eq!(again.message_id, first.message_id);

    // Same control id, different content: refused, nothing stored.
    let changed = String::from_utf8(body.clone())
        .unwrap()
        .replace("Richardson", "Richards");
    let clash = f
        .intake
        .receive(&au, &Transport::Rest, changed.as_bytes(), clock())
        .await
        .unwrap();
    assert_eq!(clash.ack_code, AckCode::AR);
    assert!(
        clash.answer.contains("ERR||MSH^1^10|205^"),
        "{}",
        clash.answer
    );
    assert!(!clash.accepted && clash.message_id.is_none());
}

#[tokio::test]
async fn another_users_facility_is_refused_and_nothing_is_stored() {
    let f = fixture().await;
    let other = f.users.get("other").await.unwrap().unwrap();
    let body = corpus("vxu-001.hl7");
    let d = f
        .intake
        .receive(&other, &Transport::Rest, &body, clock())
        .await
        .unwrap();
    assert_eq!(d.ack_code, AckCode::AR);
    assert!(d.answer.contains("ERR||MSH^1^4|204^"), "{}", d.answer);
    assert!(d.answer.contains("NISTEHRFAC"));
    assert!(!d.accepted);

    // The rightful sender is not blocked by the refused attempt.
    let nist = f.users.get("nist-clinic").await.unwrap().unwrap();
    let ok = f
        .intake
        .receive(&nist, &Transport::Rest, &body, clock())
        .await
        .unwrap();
    assert!(ok.accepted && !ok.duplicate);

    // SOAP facilityID must be the user's too.
    let soap = f
        .intake
        .receive(
            &nist,
            &Transport::Soap {
                facility_id: "OTHERFAC".into(),
            },
            &corpus("vxu-002.hl7"),
            clock(),
        )
        .await
        .unwrap();
    assert_eq!(soap.ack_code, AckCode::AR);
    assert!(soap.answer.contains("facilityID"), "{}", soap.answer);
}

#[tokio::test]
async fn queries_are_answered_truthfully_and_never_stored() {
    let f = fixture().await;
    let au = f.users.get("nist-clinic").await.unwrap().unwrap();
    let q = String::from_utf8(corpus("qbp-001.hl7"))
        .unwrap()
        .replace(
            "Z44^Request Evaluated History and Forecast",
            "Z34^Request Immunization History",
        )
        .replace("|Z44^CDCPHINVS|", "|Z34^CDCPHINVS|");
    let d = f
        .intake
        .receive(&au, &Transport::Rest, q.as_bytes(), clock())
        .await
        .unwrap();
    assert_eq!(d.ack_code, AckCode::AE);
    assert!(d.answer.contains("RSP^K11^RSP_K11"), "{}", d.answer);
    assert!(d.answer.contains("QAK|IZ-1.1-2015|AE"), "{}", d.answer);
    assert!(d.answer.contains("cannot answer Z34"), "{}", d.answer);
    assert!(!d.accepted && !d.duplicate);
}

#[tokio::test]
async fn rejected_messages_get_their_answer_back_on_resend() {
    let f = fixture().await;
    let au = f.users.get("nist-clinic").await.unwrap().unwrap();
    // v2.3.1: AR 203; not accepted, but the resend still gets the same bytes.
    let body = corpus("vxu-018.hl7");
    let text = String::from_utf8_lossy(&body);
    let facility = text
        .split('|')
        .nth(3)
        .unwrap()
        .split('^')
        .next()
        .unwrap()
        .to_string();
    let au = if au.sends_for(&facility) {
        au
    } else {
        f.users
            .add_facility("nist-clinic", &facility)
            .await
            .unwrap()
    };
    let a = f
        .intake
        .receive(&au, &Transport::Rest, &body, clock())
        .await
        .unwrap();
    assert_eq!(a.ack_code, AckCode::AR);
    assert!(!a.accepted);
    let b = f
        .intake
        .receive(&au, &Transport::Rest, &body, Clock::at(1_790_000_100))
        .await
        .unwrap();
    assert!(b.duplicate);
    assert_eq!(a.answer, b.answer);
}

#[tokio::test]
async fn body_without_msh_is_unreadable() {
    let f = fixture().await;
    let au = f.users.get("nist-clinic").await.unwrap().unwrap();
    let e = f
        .intake
        .receive(&au, &Transport::Rest, b"hello", clock())
        .await
        .unwrap_err();
    assert!(matches!(e, registry::IntakeError::Unreadable(_)));
}
