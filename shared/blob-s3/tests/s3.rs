//! The blob contract and S3-specific behaviour against an S3 endpoint (moto
//! in CI): `IISBULK_S3_ENDPOINT=http://127.0.0.1:PORT`. Every test makes its
//! own bucket.
//!
//! Without the variable the tests print a skip line and pass, unless
//! `IISBULK_REQUIRE_MOTO=1`, which turns a missing endpoint into a failure.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadInput;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadInput;
use aws_sdk_s3::operation::put_object::PutObjectInput;
use aws_sdk_s3::operation::upload_part::UploadPartInput;
use aws_sdk_s3::Client;
use blob_s3::{client_from_env, S3BlobStore, ENDPOINT_ENV, MIN_PART_SIZE};
use store::contract::unique_prefix;
use store::BlobStore;
use tokio::io::AsyncReadExt;

static SKIP_REPORTED: AtomicBool = AtomicBool::new(false);

const NDJSON: &str = "application/fhir+ndjson";

/// A client on the test endpoint and a fresh bucket, or `None` to skip.
async fn setup(test: &str) -> Option<(Client, String)> {
    if std::env::var(ENDPOINT_ENV).map_or(true, |e| e.is_empty()) {
        assert!(
            std::env::var("IISBULK_REQUIRE_MOTO").as_deref() != Ok("1"),
            "IISBULK_REQUIRE_MOTO=1 but {ENDPOINT_ENV} is not set (run scripts/moto start)"
        );
        // Straight to stderr: the test harness captures print macros of passing tests.
        if !SKIP_REPORTED.swap(true, Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: set {ENDPOINT_ENV} (e.g. eval \"$(scripts/moto start)\") to run the S3 blob tests"
            );
        }
        return None;
    }
    let client = client_from_env().await;
    let mut bucket: String = format!("iisbulk-{}", unique_prefix(test))
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    while bucket.ends_with('-') {
        bucket.pop();
    }
    let mut create = client.create_bucket().bucket(&bucket);
    let region = client.config().region().map(|r| r.to_string());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(region.as_str().into())
                .build(),
        );
    }
    create.send().await.expect("create test bucket");
    Some((client, bucket))
}

async fn read_all(store: &dyn BlobStore, key: &str) -> Option<Vec<u8>> {
    let (mut r, len) = store.get(key).await.unwrap()?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len() as u64, len);
    Some(out)
}

/// Object keys in the bucket.
async fn objects(client: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys
}

/// Multipart uploads started and neither completed nor aborted.
async fn open_uploads(client: &Client, bucket: &str) -> usize {
    client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

/// Deterministic bytes that no part boundary can line up by accident.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn s3_keeps_the_blob_contract_at_the_bucket_root() {
    let Some((client, bucket)) = setup("contract-root").await else {
        return;
    };
    let store = S3BlobStore::new(client.clone(), &bucket, "").unwrap();
    store::blob_contract::run(&store, "exports").await;
    assert_eq!(
        objects(&client, &bucket).await,
        ["exports/job-10/Patient.000.ndjson"]
    );
    assert_eq!(open_uploads(&client, &bucket).await, 0);
}

#[tokio::test]
async fn s3_keeps_the_blob_contract_under_a_prefix() {
    let Some((client, bucket)) = setup("contract-prefix").await else {
        return;
    };
    // Something outside the prefix that delete_prefix must never touch.
    client
        .put_object()
        .bucket(&bucket)
        .key("exports/job-1/Patient.000.ndjson")
        .body(b"outside".to_vec().into())
        .send()
        .await
        .unwrap();
    let store = S3BlobStore::new(client.clone(), &bucket, "stage-1/iis/").unwrap();
    assert_eq!(store.prefix(), "stage-1/iis/");
    store::blob_contract::run(&store, "exports").await;
    let mut keys = objects(&client, &bucket).await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "exports/job-1/Patient.000.ndjson",
            "stage-1/iis/exports/job-10/Patient.000.ndjson"
        ]
    );
    for bad in ["../x", "/x", "a//b"] {
        assert!(store.delete_prefix(bad).await.is_err(), "{bad}");
        assert!(store
            .presign_get(bad, Duration::from_secs(60))
            .await
            .is_err());
    }
}

#[tokio::test]
async fn a_multipart_upload_round_trips_byte_exact() {
    let Some((client, bucket)) = setup("multipart").await else {
        return;
    };
    let store = S3BlobStore::new(client.clone(), &bucket, "iis")
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    let body = noise(2 * MIN_PART_SIZE + MIN_PART_SIZE / 2 + 12_345, 7);
    let key = "exports/job-1/Immunization.000.ndjson";
    let mut up = store.begin(key, NDJSON).await.unwrap();
    // Odd-sized writes, one of them larger than a part.
    let (head, tail) = body.split_at(MIN_PART_SIZE + 777);
    up.write(head).await.unwrap();
    for chunk in tail.chunks(65_537) {
        up.write(chunk).await.unwrap();
    }
    assert_eq!(open_uploads(&client, &bucket).await, 1);
    assert!(
        store.get(key).await.unwrap().is_none(),
        "visible before complete"
    );
    assert_eq!(up.complete().await.unwrap(), body.len() as u64);

    assert_eq!(open_uploads(&client, &bucket).await, 0);
    let got = read_all(&store, key).await.unwrap();
    assert!(
        got == body,
        "the blob read back differs from what was written"
    );
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(format!("iis/{key}"))
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .ends_with("-3"),
        "expected a 3-part object, ETag {:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some(NDJSON));

    // A blob of exactly one part, and a small blob after a large one.
    let exact = noise(MIN_PART_SIZE, 9);
    let mut up = store
        .begin("exports/job-1/Group.000.ndjson", NDJSON)
        .await
        .unwrap();
    up.write(&exact).await.unwrap();
    assert_eq!(up.complete().await.unwrap(), exact.len() as u64);
    assert!(
        read_all(&store, "exports/job-1/Group.000.ndjson")
            .await
            .unwrap()
            == exact
    );
    assert_eq!(open_uploads(&client, &bucket).await, 0);
}

/// Which request the injected failure hits.
#[derive(Debug, Clone, Copy)]
enum Op {
    UploadPart,
    Complete,
    Put,
}

/// Fails the `nth` (1-based) request of one kind before it is sent; every
/// other request (the abort among them) goes through. Counts the aborts
/// started.
#[derive(Debug)]
struct FailOn {
    op: Op,
    nth: usize,
    seen: AtomicUsize,
    aborts: Arc<AtomicUsize>,
}

impl Intercept for FailOn {
    fn name(&self) -> &'static str {
        "FailOn"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        if input.downcast_ref::<AbortMultipartUploadInput>().is_some() {
            self.aborts.fetch_add(1, Ordering::SeqCst);
        }
        let hit = match self.op {
            Op::UploadPart => input.downcast_ref::<UploadPartInput>().is_some(),
            Op::Complete => input
                .downcast_ref::<CompleteMultipartUploadInput>()
                .is_some(),
            Op::Put => input.downcast_ref::<PutObjectInput>().is_some(),
        };
        if hit && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            return Err(format!("injected failure of {:?} #{}", self.op, self.nth).into());
        }
        Ok(())
    }
}

/// A client whose `nth` request of kind `op` fails, and the count of the
/// aborts it started. A test reads the count right after the failed call,
/// before yielding, so an abort spawned by `Drop` is not counted: the abort
/// must happen before the error is returned.
fn failing(client: &Client, op: Op, nth: usize) -> (Client, Arc<AtomicUsize>) {
    let aborts = Arc::new(AtomicUsize::new(0));
    let config = client
        .config()
        .to_builder()
        .interceptor(FailOn {
            op,
            nth,
            seen: AtomicUsize::new(0),
            aborts: aborts.clone(),
        })
        .build();
    (Client::from_conf(config), aborts)
}

#[tokio::test]
async fn a_part_that_fails_aborts_the_upload() {
    let Some((client, bucket)) = setup("fail-part").await else {
        return;
    };
    let (failing_client, aborts) = failing(&client, Op::UploadPart, 2);
    let store = S3BlobStore::new(failing_client, &bucket, "")
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    let key = "exports/job-1/Patient.000.ndjson";
    let mut up = store.begin(key, NDJSON).await.unwrap();
    let chunk = noise(MIN_PART_SIZE / 4, 3);
    let mut failed = None;
    for i in 0..12 {
        if let Err(e) = up.write(&chunk).await {
            failed = Some((i, e));
            break;
        }
        if i == 4 {
            assert_eq!(open_uploads(&client, &bucket).await, 1, "first part sent");
        }
    }
    let (i, e) = failed.expect("the second part fails");
    assert_eq!(aborts.load(Ordering::SeqCst), 1, "aborted before the error");
    assert_eq!(i, 7, "the write that filled the second part failed");
    assert!(e.to_string().contains("UploadPart #2"), "{e}");
    assert_eq!(open_uploads(&client, &bucket).await, 0, "aborted");
    // The upload is dead: no more writes, no completion; abort is harmless.
    assert!(up.write(b"more").await.is_err());
    up.abort().await.unwrap();
    assert!(store.get(key).await.unwrap().is_none());
    assert!(objects(&client, &bucket).await.is_empty());

    // Failing on the first part: a multipart upload was created all the same.
    let (failing_client, aborts) = failing(&client, Op::UploadPart, 1);
    let store = S3BlobStore::new(failing_client, &bucket, "")
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    let mut up = store.begin(key, NDJSON).await.unwrap();
    up.write(&chunk).await.unwrap();
    let _ = up.write(&noise(2 * MIN_PART_SIZE, 4)).await.unwrap_err();
    assert_eq!(aborts.load(Ordering::SeqCst), 1, "aborted before the error");
    assert!(up.complete().await.is_err());
    assert_eq!(open_uploads(&client, &bucket).await, 0);
    assert!(objects(&client, &bucket).await.is_empty());
}

#[tokio::test]
async fn a_completion_that_fails_aborts_the_upload() {
    let Some((client, bucket)) = setup("fail-complete").await else {
        return;
    };
    let (failing_client, aborts) = failing(&client, Op::Complete, 1);
    let store = S3BlobStore::new(failing_client, &bucket, "")
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    let key = "exports/job-1/Patient.000.ndjson";
    let mut up = store.begin(key, NDJSON).await.unwrap();
    up.write(&noise(MIN_PART_SIZE + MIN_PART_SIZE / 2, 5))
        .await
        .unwrap();
    assert_eq!(open_uploads(&client, &bucket).await, 1);
    let e = up.complete().await.unwrap_err();
    assert_eq!(aborts.load(Ordering::SeqCst), 1, "aborted before the error");
    assert!(e.to_string().contains("CompleteMultipartUpload"), "{e}");
    assert_eq!(open_uploads(&client, &bucket).await, 0, "aborted");
    assert!(store.get(key).await.unwrap().is_none());
    assert!(objects(&client, &bucket).await.is_empty());
}

#[tokio::test]
async fn a_small_blob_that_fails_leaves_nothing() {
    let Some((client, bucket)) = setup("fail-put").await else {
        return;
    };
    let (failing_client, aborts) = failing(&client, Op::Put, 1);
    let store = S3BlobStore::new(failing_client, &bucket, "").unwrap();
    let key = "exports/job-1/Patient.000.ndjson";
    let mut up = store.begin(key, NDJSON).await.unwrap();
    up.write(b"{\"resourceType\":\"Patient\"}\n").await.unwrap();
    let e = up.complete().await.unwrap_err();
    assert!(e.to_string().contains("PutObject"), "{e}");
    assert_eq!(
        aborts.load(Ordering::SeqCst),
        0,
        "no multipart upload to abort"
    );
    assert!(store.get(key).await.unwrap().is_none());
    assert!(objects(&client, &bucket).await.is_empty());
    assert_eq!(open_uploads(&client, &bucket).await, 0);
}

#[tokio::test]
async fn a_dropped_upload_is_aborted() {
    let Some((client, bucket)) = setup("dropped").await else {
        return;
    };
    let store = S3BlobStore::new(client.clone(), &bucket, "")
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    let mut up = store
        .begin("exports/job-1/Patient.000.ndjson", NDJSON)
        .await
        .unwrap();
    up.write(&noise(MIN_PART_SIZE + 1, 6)).await.unwrap();
    assert_eq!(open_uploads(&client, &bucket).await, 1);
    drop(up);
    for _ in 0..100 {
        if open_uploads(&client, &bucket).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the dropped upload was not aborted");
}

#[tokio::test]
async fn delete_prefix_pages_through_more_than_a_thousand_objects() {
    let Some((client, bucket)) = setup("delete-many").await else {
        return;
    };
    let store = Arc::new(S3BlobStore::new(client.clone(), &bucket, "iis").unwrap());
    // 1,234 objects under the prefix (two list pages), two beside it.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (worker..1234).step_by(4) {
                let mut up = store
                    .begin(&format!("exports/job-1/Patient.{i:04}.ndjson"), NDJSON)
                    .await
                    .unwrap();
                up.write(b"{}\n").await.unwrap();
                up.complete().await.unwrap();
            }
        });
    }
    for key in [
        "exports/job-10/Patient.0000.ndjson",
        "exports/job-2/Patient.0000.ndjson",
    ] {
        store
            .begin(key, NDJSON)
            .await
            .unwrap()
            .complete()
            .await
            .unwrap();
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(store.delete_prefix("exports/job-1/").await.unwrap(), 1234);
    let mut left = objects(&client, &bucket).await;
    left.sort();
    assert_eq!(
        left,
        [
            "iis/exports/job-10/Patient.0000.ndjson",
            "iis/exports/job-2/Patient.0000.ndjson"
        ]
    );
    assert_eq!(store.delete_prefix("exports/job-1/").await.unwrap(), 0);
    // A partial last segment is a prefix too, as in the directory backend.
    assert_eq!(store.delete_prefix("exports/job-").await.unwrap(), 2);
    assert!(objects(&client, &bucket).await.is_empty());
}

#[tokio::test]
async fn a_presigned_url_fetches_the_blob() {
    let Some((client, bucket)) = setup("presign").await else {
        return;
    };
    let store = S3BlobStore::new(client, &bucket, "iis").unwrap();
    let key = "exports/job-1/Patient.000.ndjson";
    let body = b"{\"resourceType\":\"Patient\",\"id\":\"1\"}\n".repeat(100);
    let mut up = store.begin(key, NDJSON).await.unwrap();
    up.write(&body).await.unwrap();
    up.complete().await.unwrap();

    let url = store
        .presign_get(key, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(url.contains(&format!("/{bucket}/iis/{key}?")), "{url}");
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(NDJSON)
    );
    assert_eq!(answer.bytes().await.unwrap().as_ref(), &body[..]);

    // Signing is local: a missing blob still gets a URL, which answers 404.
    let url = store
        .presign_get("exports/job-1/missing.ndjson", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    assert!(store
        .presign_get(key, Duration::from_secs(8 * 24 * 3600))
        .await
        .is_err());
}

/// An encoded blob (export files are gzip) is stored with its
/// Content-Encoding, whether one PutObject or a multipart upload, and a
/// presigned GET answers the stored bytes with that header.
#[tokio::test]
async fn an_encoded_blob_keeps_its_content_encoding_for_presigned_gets() {
    let Some((client, bucket)) = setup("encoded").await else {
        return;
    };
    let store = S3BlobStore::new(client.clone(), &bucket, "iis")
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    for (key, len) in [
        ("exports/j/Patient.001.ndjson", 1000),
        ("exports/j/Immunization.001.ndjson", MIN_PART_SIZE + 10),
    ] {
        let body = noise(len, 3);
        let mut up = store.begin_encoded(key, NDJSON, "gzip").await.unwrap();
        up.write(&body).await.unwrap();
        up.complete().await.unwrap();
        let head = client
            .head_object()
            .bucket(&bucket)
            .key(format!("iis/{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_encoding(), Some("gzip"), "{key}");
        assert_eq!(head.content_type(), Some(NDJSON));
        let url = store
            .presign_get(key, Duration::from_secs(60))
            .await
            .unwrap();
        let r = reqwest::get(&url).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-encoding"], "gzip", "{key}");
        assert!(
            r.bytes().await.unwrap() == body,
            "{key}: stored bytes as sent"
        );
    }
    // A plain upload has none.
    let mut up = store.begin("plain.ndjson", NDJSON).await.unwrap();
    up.write(b"{}\n").await.unwrap();
    up.complete().await.unwrap();
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("iis/plain.ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_encoding(), None);
}
