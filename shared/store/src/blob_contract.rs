//! What every blob backend must do (run against the directory backend here
//! and against S3 on moto by its adapter).
#![allow(clippy::unwrap_used)]

use tokio::io::AsyncReadExt;

use crate::blob::BlobStore;

async fn read_all(store: &dyn BlobStore, key: &str) -> Option<Vec<u8>> {
    let (mut r, len) = store.get(key).await.unwrap()?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len() as u64, len);
    Some(out)
}

/// Runs the whole suite under `prefix` (a fresh prefix per run).
pub async fn run(store: &dyn BlobStore, prefix: &str) {
    let key = format!("{prefix}/job-1/Patient.000.ndjson");
    // Parts become one blob, invisible until complete.
    let mut up = store.begin(&key, "application/fhir+ndjson").await.unwrap();
    let line = b"{\"resourceType\":\"Patient\"}\n";
    for _ in 0..1000 {
        up.write(line).await.unwrap();
    }
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "visible before complete"
    );
    assert_eq!(up.complete().await.unwrap(), 1000 * line.len() as u64);
    assert_eq!(
        read_all(store, &key).await.unwrap().len(),
        1000 * line.len()
    );

    // Abort leaves nothing; an aborted replacement keeps the old blob.
    let other = format!("{prefix}/job-1/Immunization.000.ndjson");
    let mut up = store
        .begin(&other, "application/fhir+ndjson")
        .await
        .unwrap();
    up.write(b"x").await.unwrap();
    up.abort().await.unwrap();
    assert!(store.get(&other).await.unwrap().is_none());
    let mut up = store.begin(&key, "application/fhir+ndjson").await.unwrap();
    up.write(b"half").await.unwrap();
    up.abort().await.unwrap();
    assert_eq!(
        read_all(store, &key).await.unwrap().len(),
        1000 * line.len()
    );

    // Empty blobs exist; delete is idempotent; prefixes delete what they name.
    let empty = format!("{prefix}/job-2/Group.000.ndjson");
    store
        .begin(&empty, "application/fhir+ndjson")
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert_eq!(read_all(store, &empty).await.unwrap(), b"");
    store.delete(&empty).await.unwrap();
    store.delete(&empty).await.unwrap();
    assert!(store.get(&empty).await.unwrap().is_none());
    let kept = format!("{prefix}/job-10/Patient.000.ndjson");
    store
        .begin(&kept, "application/fhir+ndjson")
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_prefix(&format!("{prefix}/job-1/"))
            .await
            .unwrap(),
        1
    );
    assert!(store.get(&key).await.unwrap().is_none());
    assert!(
        store.get(&kept).await.unwrap().is_some(),
        "job-10 is not under job-1/"
    );

    // Keys cannot escape.
    for bad in ["../x", "a//b", "/a", "a/./b", "a b", ""] {
        assert!(store.begin(bad, "x").await.is_err(), "{bad}");
        assert!(store.get(bad).await.is_err(), "{bad}");
    }
}
