//! The matcher function's stream handling, over the embedded store: a
//! DynamoDB stream batch in, persons out, partial batch failures when
//! storage fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use iz::{Clock, IisIdentity};
use matcher::{handle, stream_records, ItemFailure};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::faulty::FailingWrites;
use store::ItemStore;

fn vxu(control_id: &str, mrn: &str, given: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||{mrn}^^^FACA^MR||Diallo^{given}^^^^^L|Ba^^^^^^M|20230704|F|||3 Pine Rd^^Flint^MI^48502^USA^P||^PRN^PH^^^810^5550199\r\
ORC|RE||{control_id}-1^FACA\rRXA|0|1|20230704||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

fn insert(seq: &str, pk: &str, sk: &str) -> Value {
    json!({"eventName": "INSERT", "dynamodb": {"SequenceNumber": seq, "Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}})
}

#[tokio::test]
async fn a_batch_of_new_messages_becomes_persons_and_failures_are_reported_from_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let embedded: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let flaky = Arc::new(FailingWrites::new(embedded.clone()));
    let users = AuthorizedUsers::new(embedded.clone());
    let au = users
        .add(
            NewAuthorizedUser {
                id: "clinic-a".into(),
                kind: AuKind::Clinic,
                name: "A".into(),
                facilities: vec!["FACA".into()],
                username: "a".into(),
                password: "a long enough password".into(),
            },
            0,
        )
        .await
        .unwrap();
    let intake = Intake::new(embedded.clone(), IisIdentity::default());
    let mut ids = Vec::new();
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
        ids.push(d.message_id.unwrap());
    }
    let event = json!({"Records": [
        insert("100", &format!("IN#{}", ids[0]), "PART#0000"),
        insert("101", &format!("IN#{}", ids[0]), "HEAD"),
        {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "102", "Keys": {"pk": {"S": "AU"}, "sk": {"S": "clinic-a"}}}},
        insert("103", &format!("IN#{}", ids[1]), "HEAD"),
    ]});
    let records = stream_records(&event).unwrap();
    assert_eq!(records.iter().filter(|r| r.message_id.is_some()).count(), 2);

    // Storage failing: the first message to apply is named, nothing skipped.
    flaky.fail_writes(true);
    let failing = PatientMatching::new(flaky.clone(), Arc::new(matching::Matcher::default()));
    let answer = handle(&failing, &event, 1).await.unwrap();
    assert_eq!(
        answer.batch_item_failures,
        [ItemFailure {
            item_identifier: "101".into()
        }]
    );
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "101"}]})
    );

    // Storage back: the retried batch applies both; a second delivery is a no-op.
    flaky.fail_writes(false);
    let answer = handle(&failing, &event, 1).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    let again = handle(&failing, &event, 2).await.unwrap();
    assert!(again.batch_item_failures.is_empty());
    let p0 = failing.process(&ids[0], 3).await.unwrap();
    let p1 = failing.process(&ids[1], 3).await.unwrap();
    assert!(p0.already && p1.already);
    assert_ne!(p0.person, p1.person);
    assert_eq!(failing.history(&p0.person).await.unwrap().len(), 1);
}

#[test]
fn malformed_events_are_named() {
    assert!(stream_records(&json!({"foo": 1}))
        .unwrap_err()
        .contains("Records"));
    let no_seq = json!({"Records": [{"eventName": "INSERT", "dynamodb": {}}]});
    assert!(stream_records(&no_seq)
        .unwrap_err()
        .contains("SequenceNumber"));
}
