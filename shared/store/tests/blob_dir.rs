//! The blob contract on the local directory backend.

#[tokio::test]
async fn the_directory_backend_keeps_the_blob_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store::DirBlobStore::open(dir.path().join("blobs")).expect("open");
    store::blob_contract::run(&store, "exports").await;
}
