//! The membership function over DynamoDB stream events built from the
//! embedded store's change feed (keys plus base64 old and new images, as
//! the table's NEW_AND_OLD_IMAGES stream delivers them).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use iz::{Clock, IisIdentity};
use membership::handle;
use registry::membership::{JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::faulty::FailingWrites;
use store::{ChangeFeed, ItemStore};

/// Two unrelated children (different family, birth date and home).
fn vxu(control_id: &str, mrn: &str, given: &str) -> String {
    let (family, dob, street) = if given == "Awa" {
        ("Diallo", "20230704", "3 Pine Rd")
    } else {
        ("Keita", "20210212", "88 Lake Ave")
    };
    format!(
        "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||{mrn}^^^FACA^MR||{family}^{given}^^^^^L|Ba^^^^^^M|{dob}|F|||{street}^^Flint^MI^48502^USA^P||^PRN^PH^^^810^5550199\r\
ORC|RE||{control_id}-1^FACA\rRXA|0|1|20230704||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

async fn batch(store: &EmbeddedStore) -> Value {
    let changes = store.read(None, 10_000).await.unwrap();
    stream_batch::stream_event(&changes)
}

#[tokio::test]
async fn a_batch_adds_members_reports_failures_from_the_first_and_replays_harmlessly() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let items: Arc<dyn ItemStore> = embedded.clone();
    let policy = JurisdictionPolicy::default();
    let au = registry::membership::onboard(
        &AuthorizedUsers::new(items.clone()),
        NewAuthorizedUser {
            id: "clinic-a".into(),
            kind: AuKind::Clinic,
            name: "A".into(),
            facilities: vec!["FACA".into()],
            username: "a".into(),
            password: "a long enough password".into(),
        },
        0,
        &policy,
    )
    .await
    .unwrap();
    let group = au.group.clone().unwrap();
    let matching = PatientMatching::new(items.clone(), Arc::new(matching::Matcher::default()));
    let intake = Intake::new(items.clone(), IisIdentity::default());
    let mut persons = Vec::new();
    for (n, given) in ["Awa", "Fatou"].iter().enumerate() {
        let d = intake
            .receive(
                &au,
                &Transport::Rest,
                vxu(&format!("M{n}"), &format!("R{n}"), given).as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        let m = matching
            .process(&d.message_id.unwrap(), 1_000 + n as i64)
            .await
            .unwrap();
        persons.push(m.person);
    }
    let event = batch(&embedded).await;

    // Storage failing: the first membership record is named, nothing skipped.
    let flaky = Arc::new(FailingWrites::new(items.clone()));
    let on_flaky = Membership::new(
        registry::persons::Persons::new(flaky.clone()),
        Arc::new(policy.clone()),
    );
    flaky.fail_writes(true);
    let answer = handle(&on_flaky, &event).await.unwrap();
    let first_matched = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["sk"]["S"] == "MATCHED")
        .unwrap()["dynamodb"]["SequenceNumber"]
        .clone();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": first_matched}]})
    );
    let groups = on_flaky.groups();
    assert!(groups.members(&group, None, 10).await.unwrap().0.is_empty());

    // Storage back: both children join; the same batch again changes nothing.
    flaky.fail_writes(false);
    assert!(handle(&on_flaky, &event)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
    let (members, _) = groups.members(&group, None, 10).await.unwrap();
    let mut got: Vec<_> = members.iter().map(|m| m.person.clone()).collect();
    got.sort();
    persons.sort();
    assert_eq!(got, persons);
    let before = batch(&embedded).await["Records"].as_array().unwrap().len();
    assert!(handle(&on_flaky, &event)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
    let after = batch(&embedded).await["Records"].as_array().unwrap().len();
    assert_eq!(before, after, "a replayed batch wrote something");
    assert_eq!(groups.quantity(&group).await.unwrap(), 2);
}

#[test]
fn a_malformed_event_is_an_error_naming_what_is_missing() {
    let err = membership::events(&json!({"Records": [{"eventName": "INSERT"}]})).unwrap_err();
    assert!(err.contains("dynamodb"), "{err}");
}
