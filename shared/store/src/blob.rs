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

    /// The blob and its size, if it exists.
    async fn get(&self, key: &str) -> Result<Option<(BlobReader, u64)>>;

    /// Deletes the blob; deleting a missing blob is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Deletes every blob whose key starts with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;
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
