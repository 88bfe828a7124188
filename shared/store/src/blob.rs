//! The blob port: export files and other large objects, written as a stream
//! of parts and made visible only when complete (S3 multipart semantics), so
//! a reader never sees half a file and an aborted upload leaves nothing.

use async_trait::async_trait;

use crate::error::{Result, StoreError};

/// Reads a blob piece by piece.
pub type BlobReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts writing `key`. Nothing is visible under `key` until
    /// [`BlobUpload::complete`]; an existing blob is replaced then.
    async fn begin(&self, key: &str, content_type: &str) -> Result<Box<dyn BlobUpload>>;

    /// As [`BlobStore::begin`] for bytes already encoded (`gzip`): a backend
    /// that keeps object metadata records it as the blob's
    /// `Content-Encoding` (S3, whose GETs then carry that header); one that
    /// keeps none (a directory) stores the bytes alone, and the caller
    /// remembers how they are encoded.
    async fn begin_encoded(
        &self,
        key: &str,
        content_type: &str,
        _content_encoding: &str,
    ) -> Result<Box<dyn BlobUpload>> {
        self.begin(key, content_type).await
    }

    /// The blob and its size, if it exists.
    async fn get(&self, key: &str) -> Result<Option<(BlobReader, u64)>>;

    /// Deletes the blob; deleting a missing blob is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Deletes every blob whose key starts with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    /// A URL anyone holding it may GET the blob from until `expires_in`
    /// has passed, where the backend can mint one (S3); `None` where it
    /// cannot (a local directory), and files are then served by the API.
    async fn presigned_get(
        &self,
        _key: &str,
        _expires_in: std::time::Duration,
    ) -> Result<Option<String>> {
        Ok(None)
    }
}

#[async_trait]
pub trait BlobUpload: Send {
    /// Appends bytes (buffered; backends send parts as they fill).
    async fn write(&mut self, bytes: &[u8]) -> Result<()>;

    /// Makes the blob visible; returns its size in bytes.
    async fn complete(self: Box<Self>) -> Result<u64>;

    /// Discards everything written.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// Blob keys are paths of `[A-Za-z0-9._-]` segments separated by `/`: no
/// empty, `.` or `..` segment, so a key can never leave its bucket prefix or
/// directory.
pub fn check_blob_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "blob key {key:?} must be /-separated segments of letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Presigned URLs of `keys`' blobs, in the order given, each good for
/// `expires_in` ([`BlobStore::presigned_get`]); `None` where the backend
/// cannot mint them (the files are then served by the API). What every
/// Bulk Data manifest (export, bulk match) lists on S3.
pub async fn presigned_urls(
    blobs: &dyn BlobStore,
    keys: &[&str],
    expires_in: std::time::Duration,
) -> Result<Option<Vec<String>>> {
    let mut urls = Vec::with_capacity(keys.len());
    for key in keys {
        match blobs.presigned_get(key, expires_in).await? {
            Some(url) => urls.push(url),
            None => return Ok(None),
        }
    }
    Ok(Some(urls))
}

/// A blob store that reads, deletes and presigns but refuses uploads: for
/// functions that must never write files (the API serving exports), so a
/// bug cannot write where only the export worker should.
pub struct NoUploads(pub std::sync::Arc<dyn BlobStore>);

impl std::fmt::Debug for NoUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoUploads")
    }
}

#[async_trait]
impl BlobStore for NoUploads {
    async fn begin(&self, key: &str, _content_type: &str) -> Result<Box<dyn BlobUpload>> {
        Err(StoreError::Invalid(format!(
            "this function does not write files (refused upload of {key})"
        )))
    }

    async fn get(&self, key: &str) -> Result<Option<(BlobReader, u64)>> {
        self.0.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.0.delete_prefix(prefix).await
    }

    async fn presigned_get(
        &self,
        key: &str,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>> {
        self.0.presigned_get(key, expires_in).await
    }
}
