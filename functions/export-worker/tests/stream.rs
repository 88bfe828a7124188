//! The export worker over DynamoDB stream events built from the embedded
//! store's change feed: a job record plans shards, shard records write
//! files, the last shard completes the job; a failing shard is named in
//! the batch answer and retried without a duplicated line; a redelivered
//! batch changes nothing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use export_worker::{handle, work, Work, Worker};
use iz::{Clock, IisIdentity};
use registry::export::{ExportJobs, ExportRequest, JobStatus};
use registry::membership::{change_event, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::faulty::FailingUploads;
use store::{ChangeFeed, DirBlobStore, ItemStore};

fn vxu(n: usize) -> String {
    let given = ["Awa", "Binta", "Coumba", "Dado", "Eni", "Fanta", "Gnima"][n];
    let family = ["Diallo", "Keita", "Sow", "Ba", "Camara", "Toure", "Sy"][n];
    format!(
        "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|C{n}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||R{n}^^^FACA^MR||{family}^{given}^^^^^L||20{:02}0{}0{}|F|||{n} Pine Rd^^Flint^MI^4850{n}^USA^P\r\
ORC|RE||C{n}-1^FACA\rRXA|0|1|20230704||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||C{n}-2^FACA\rRXA|0|1|20230904||20^DTaP^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r",
        15 + n,
        1 + n,
        1 + n
    )
}

/// The stream since `after`, as one event, and the new position.
async fn stream_since(store: &EmbeddedStore, after: Option<u64>) -> (Value, Option<u64>) {
    let changes = store.read(after, 10_000).await.unwrap();
    let last = changes.last().map(|c| c.seq).or(after);
    (stream_batch::stream_event(&changes), last)
}

#[tokio::test]
async fn job_and_shard_records_write_an_export_once_even_when_a_shard_fails_and_batches_repeat() {
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
    let matching = PatientMatching::new(items.clone(), Arc::new(matching::Matcher::default()));
    let membership = Membership::new(matching.persons().clone(), Arc::new(policy));
    let intake = Intake::new(items.clone(), IisIdentity::default());
    for n in 0..7 {
        let d = intake
            .receive(
                &au,
                &Transport::Rest,
                vxu(n).as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        matching
            .process(&d.message_id.unwrap(), 1_000 + n as i64)
            .await
            .unwrap();
    }
    for c in embedded.read(None, 10_000).await.unwrap() {
        if let Some(e) = change_event(&c) {
            membership.apply(&e).await.unwrap();
        }
    }
    let (_, mut after) = stream_since(&embedded, None).await;

    let flaky = Arc::new(FailingUploads::new(Arc::new(
        DirBlobStore::open(dir.path().join("blobs")).unwrap(),
    )));
    flaky.fail_keys_containing(Some("Immunization"));
    let mut jobs = ExportJobs::new(matching.persons().clone(), flaky.clone(), "urn:iisbulk:id");
    jobs.members_per_shard = 3;
    let job = jobs
        .create(
            &au.id,
            au.group.as_deref().unwrap(),
            ExportRequest::default(),
            "https://iis.example/fhir/Group/g/$export",
            store::limits::now_epoch_millis(),
        )
        .await
        .unwrap();
    let worker = Worker::exports_only(jobs.clone());

    // The job record plans three shards; nothing else in the batch is work.
    let (created, next) = stream_since(&embedded, after).await;
    after = next;
    let planned: Vec<Work> = work(&created)
        .unwrap()
        .into_iter()
        .filter_map(|(_, w)| w)
        .collect();
    assert_eq!(planned, [Work::Plan(job.id.clone())]);
    assert!(handle(&worker, &created)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
    let (shards, next) = stream_since(&embedded, after).await;
    after = next;
    let shard_work: Vec<(String, Work)> = work(&shards)
        .unwrap()
        .into_iter()
        .filter_map(|(seq, w)| w.map(|w| (seq, w)))
        .collect();
    assert_eq!(shard_work.len(), 3, "7 members at 3 per shard");
    assert!(shard_work
        .iter()
        .all(|(_, w)| matches!(w, Work::Shard(id, _) if *id == job.id)));

    // A shard fails: the batch answer names the first shard record.
    let answer = handle(&worker, &shards).await.unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": shard_work[0].0}]})
    );
    assert_eq!(
        jobs.get(&job.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );

    // Lambda retries the batch: all shards written, the last completes the job.
    flaky.fail_keys_containing(None);
    assert!(handle(&worker, &shards)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
    let done = jobs.get(&job.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let count = |t: &str| -> u64 {
        done.files
            .output
            .iter()
            .filter(|f| f.resource_type == t)
            .map(|f| f.count)
            .sum()
    };
    assert_eq!(
        (count("Patient"), count("Immunization"), count("Group")),
        (7, 14, 1)
    );
    let mut lines = 0;
    for f in done
        .files
        .output
        .iter()
        .filter(|f| f.resource_type == "Patient")
    {
        let stored = registry::export::read_file(flaky.as_ref(), f)
            .await
            .unwrap();
        let text = String::from_utf8(stored).unwrap();
        lines += text.lines().count() as u64;
    }
    assert_eq!(lines, 7, "no line written twice");

    // Redelivered batches (the job's and the shards') change nothing.
    assert!(handle(&worker, &created)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
    assert!(handle(&worker, &shards)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
    assert_eq!(jobs.get(&job.id).await.unwrap().unwrap().files, done.files);
    let (later, _) = stream_since(&embedded, after).await;
    assert!(
        work(&later).unwrap().iter().all(|(_, w)| w.is_none()),
        "no new job or shard from a redelivery"
    );
}

#[test]
fn a_malformed_event_is_an_error_naming_what_is_missing() {
    let err = work(&json!({"Records": [{"eventName": "INSERT"}]})).unwrap_err();
    assert!(err.contains("dynamodb"), "{err}");
}

/// A bulk match record goes to the bulk match use case, built by the first
/// such record and kept; a use case that cannot be built names the record
/// as failed (so the stream retries it), and an exports-only worker leaves
/// the record alone.
#[tokio::test]
async fn a_bulk_match_record_builds_the_use_case_once_and_a_failed_build_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let items: Arc<dyn ItemStore> = embedded.clone();
    let blobs: Arc<dyn store::BlobStore> =
        Arc::new(DirBlobStore::open(dir.path().join("blobs")).unwrap());
    let persons = registry::persons::Persons::new(items.clone());
    let exports = ExportJobs::new(persons, blobs.clone(), "urn:iisbulk:id");
    // A new bulk match job item, as the stream delivers it (the job is
    // gone by the time it runs: run answers without work).
    items
        .put(
            store::Item::new(registry::keys::bulk_match_job("b1"), b"{}".to_vec()),
            store::Condition::Absent,
        )
        .await
        .unwrap();
    let (event, _) = stream_since(&embedded, None).await;
    items
        .delete(
            &registry::keys::bulk_match_job("b1"),
            store::Condition::None,
        )
        .await
        .unwrap();
    assert_eq!(
        work(&event).unwrap()[0].1,
        Some(Work::BulkMatch("b1".into()))
    );

    let failing = Worker::with_bulk_match_on_first_use(exports.clone(), || {
        Err("IISBULK_MATCHING_CONFIG /nowhere: not found".into())
    });
    let answer = handle(&failing, &event).await.unwrap();
    assert_eq!(answer.batch_item_failures.len(), 1, "retried by the stream");

    let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = builds.clone();
    let (store_for, blobs_for) = (items.clone(), blobs.clone());
    let lazy = Worker::with_bulk_match_on_first_use(exports.clone(), move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let matching = PatientMatching::new(store_for.clone(), matching::Matcher::built_in());
        Ok(registry::bulk_match::BulkMatchJobs::new(
            store_for.clone(),
            blobs_for.clone(),
            registry::queries::Queries::new(matching, Default::default()),
            "https://iis.example/fhir",
            "urn:iisbulk:id",
        ))
    });
    assert_eq!(
        builds.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "not at start-up"
    );
    for _ in 0..2 {
        let answer = handle(&lazy, &event).await.unwrap();
        assert!(answer.batch_item_failures.is_empty());
    }
    assert_eq!(
        builds.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "built once"
    );

    let exports_only = Worker::exports_only(exports);
    assert!(exports_only.bulk_match().unwrap().is_none());
    assert!(handle(&exports_only, &event)
        .await
        .unwrap()
        .batch_item_failures
        .is_empty());
}
