//! # blob-s3 — the blob port on Amazon S3
//!
//! Production backend of [`store::BlobStore`] (export NDJSON files): every
//! blob key is one object `s3://<bucket>/<prefix>/<key>`.
//!
//! * `begin` → nothing is sent yet. Writes fill a part buffer
//!   ([`DEFAULT_PART_SIZE`], 8 MiB; [`S3BlobStore::with_part_size`] down to
//!   S3's minimum [`MIN_PART_SIZE`]). The first full part starts a multipart
//!   upload (`CreateMultipartUpload`, CRC32 checksums) and every full part is
//!   sent at once (`UploadPart`), so at most one part is held in memory per
//!   open upload. `complete` sends the last part and
//!   `CompleteMultipartUpload`; a blob smaller than one part never starts a
//!   multipart upload and is one `PutObject` on `complete`. An object becomes
//!   visible only on completion.
//! * Any failure while writing or completing aborts the multipart upload
//!   (`AbortMultipartUpload`) before the error is returned, and the upload
//!   refuses further writes; an upload dropped without `complete`/`abort`
//!   aborts in a spawned task. So no incomplete upload is left behind (the
//!   bucket should still carry an `AbortIncompleteMultipartUpload` lifecycle
//!   rule for a process killed mid-upload).
//! * `get` → `GetObject`, the body streamed as an `AsyncRead`; `NoSuchKey` is
//!   `None`.
//! * `delete` → `DeleteObject`; `delete_prefix` → `ListObjectsV2` page by
//!   page (≤ 1000 keys) and one `DeleteObjects` per page.
//! * [`S3BlobStore::presign_get`] mints a presigned GET URL. Store keys, not
//!   URLs, and presign at each status poll: a URL signed with Lambda's
//!   temporary credentials dies with them, whatever its `expires_in`.
//!
//! Keys are checked with [`store::blob::check_blob_key`], so no key can leave
//! the configured prefix.

mod error;
mod setup;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use store::blob::check_blob_key;
use store::{BlobReader, BlobStore, BlobUpload, StoreError};

pub use error::from_sdk;
pub use setup::{
    client_from_env, client_from_sdk_config, BUCKET_ENV, DEFAULT_PREFIX, DEFAULT_REGION,
    ENDPOINT_ENV, PREFIX_ENV,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Part size of multipart uploads unless configured otherwise.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// S3's smallest part (every part but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 << 30;
/// S3's most parts in one upload.
pub const MAX_PARTS: usize = 10_000;
/// S3's longest presigned URL lifetime (SigV4).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// [`BlobStore`] on one S3 bucket, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    /// Empty, or `segments/` ending with a slash.
    prefix: String,
    part_size: usize,
}

impl S3BlobStore {
    /// A store on `bucket` with object keys `<prefix>/<key>` (an empty
    /// `prefix` puts keys at the bucket's root). The prefix follows the blob
    /// key rules (a trailing `/` is allowed).
    pub fn new(
        client: Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let bucket = bucket.into();
        if bucket.is_empty() || bucket.contains('/') {
            return Err(StoreError::Invalid(format!(
                "S3 bucket name {bucket:?} is empty or contains '/'"
            )));
        }
        let prefix = prefix.into();
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            check_blob_key(prefix)
                .map_err(|e| StoreError::Invalid(format!("S3 key prefix: {e}")))?;
            format!("{prefix}/")
        };
        Ok(S3BlobStore {
            client,
            bucket,
            prefix,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Sets the multipart part size (bytes), between [`MIN_PART_SIZE`] and
    /// [`MAX_PART_SIZE`].
    pub fn with_part_size(mut self, bytes: usize) -> Result<Self> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&bytes) {
            return Err(StoreError::Invalid(format!(
                "S3 part size {bytes} is outside {MIN_PART_SIZE}..={MAX_PART_SIZE} bytes"
            )));
        }
        self.part_size = bytes;
        Ok(self)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, empty or ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// The S3 object key of a blob key (checked).
    pub fn object_key(&self, key: &str) -> Result<String> {
        check_blob_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn target(&self, object_key: &str) -> String {
        format!("s3://{}/{object_key}", self.bucket)
    }

    /// A presigned GET URL for the blob `key`, valid for `expires_in` (at
    /// most [`MAX_PRESIGN`], and never longer than the credentials that sign
    /// it). Signing is local: the blob is not looked up. The URL needs no
    /// headers, so any HTTP client can fetch it.
    pub async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String> {
        let object_key = self.object_key(key)?;
        let config = PresigningConfig::expires_in(expires_in).map_err(|e| {
            StoreError::Invalid(format!("presigned URL lifetime {expires_in:?}: {e}"))
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .presigned(config)
            .await
            .map_err(|e| from_sdk("presign GetObject", &self.target(&object_key), e))?;
        // A header the signature covers would have to be sent by whoever
        // fetches the URL; a Bulk Data client only has the URL.
        if let Some((name, _)) = request
            .headers()
            .find(|(n, _)| !n.eq_ignore_ascii_case("host"))
        {
            return Err(StoreError::Other(format!(
                "presigned GET of {} needs header {name:?}, which a URL cannot carry",
                self.target(&object_key)
            )));
        }
        Ok(request.uri().to_owned())
    }

    /// Checks a `delete_prefix` argument: a key's leading segments, maybe
    /// with part of the next one (`exports/job-1/`, `exports/job-1`). An
    /// empty prefix is refused: in production it would name every export of
    /// every user (the directory backend, a local tool, allows it).
    fn object_prefix(&self, prefix: &str) -> Result<String> {
        if prefix.is_empty() {
            return Err(StoreError::Invalid(
                "refusing to delete every blob (empty prefix)".into(),
            ));
        }
        let stem = match prefix.rsplit_once('/') {
            Some((dir, stem)) => {
                check_blob_key(dir)?;
                stem
            }
            None => prefix,
        };
        if !stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(StoreError::Invalid(format!(
                "blob prefix {prefix:?} must be /-separated segments of letters, digits, '.', '_' or '-'"
            )));
        }
        Ok(format!("{}{prefix}", self.prefix))
    }
}

impl S3BlobStore {
    fn upload(
        &self,
        key: &str,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<Box<dyn BlobUpload>> {
        let object_key = self.object_key(key)?;
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            target: self.target(&object_key),
            key: object_key,
            content_type: content_type.to_owned(),
            content_encoding: content_encoding.map(str::to_owned),
            part_size: self.part_size,
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            written: 0,
            failed: false,
        }))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn presigned_get(&self, key: &str, expires_in: Duration) -> Result<Option<String>> {
        self.presign_get(key, expires_in).await.map(Some)
    }

    async fn begin(&self, key: &str, content_type: &str) -> Result<Box<dyn BlobUpload>> {
        self.upload(key, content_type, None)
    }

    /// The object is stored with `Content-Encoding` metadata. A presigned
    /// GET of it returns the stored (compressed) bytes with that header, so
    /// an HTTP client inflates them transparently; S3 never decodes them.
    async fn begin_encoded(
        &self,
        key: &str,
        content_type: &str,
        content_encoding: &str,
    ) -> Result<Box<dyn BlobUpload>> {
        self.upload(key, content_type, Some(content_encoding))
    }

    async fn get(&self, key: &str) -> Result<Option<(BlobReader, u64)>> {
        let object_key = self.object_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(from_sdk("GetObject", &self.target(&object_key), e)),
        };
        let len = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                StoreError::Other(format!(
                    "S3 GetObject {}: no Content-Length in the answer",
                    self.target(&object_key)
                ))
            })?;
        Ok(Some((Box::new(out.body.into_async_read()), len)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let object_key = self.object_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
            .map_err(|e| from_sdk("DeleteObject", &self.target(&object_key), e))?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let object_prefix = self.object_prefix(prefix)?;
        let target = format!("{}*", self.target(&object_prefix));
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&object_prefix)
            .into_paginator()
            .send();
        let mut removed = 0u64;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("ListObjectsV2", &target, e))?;
            let objects = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| error::build_error("DeleteObjects", e))?;
            if objects.is_empty() {
                continue;
            }
            let count = objects.len() as u64;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| error::build_error("DeleteObjects", e))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| from_sdk("DeleteObjects", &target, e))?;
            if let Some(first) = out.errors().first() {
                return Err(error::from_code(
                    "DeleteObjects",
                    &self.target(first.key().unwrap_or("?")),
                    first.code().unwrap_or("unknown error"),
                    &format!(
                        "{} ({} of {count} keys not deleted)",
                        first.message().unwrap_or_default(),
                        out.errors().len()
                    ),
                ));
            }
            removed += count;
        }
        Ok(removed)
    }
}

/// One blob being written; see the crate documentation.
struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    /// `s3://bucket/key`, for messages.
    target: String,
    content_type: String,
    /// `Content-Encoding` metadata of the object (`gzip` for export files).
    content_encoding: Option<String>,
    part_size: usize,
    /// Bytes not yet sent (less than one part).
    buf: Vec<u8>,
    /// Set once the first part is sent.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    written: u64,
    /// A request failed and the upload was aborted: nothing more to do.
    failed: bool,
}

/// Never shows the buffered bytes (export data).
impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Upload")
            .field("target", &self.target)
            .field("part_size", &self.part_size)
            .field("buffered", &self.buf.len())
            .field("upload_id", &self.upload_id)
            .field("parts", &self.parts.len())
            .field("written", &self.written)
            .field("failed", &self.failed)
            .finish()
    }
}

impl S3Upload {
    fn check_usable(&self) -> Result<()> {
        if self.failed {
            Err(StoreError::Other(format!(
                "upload of {} already failed and was aborted",
                self.target
            )))
        } else {
            Ok(())
        }
    }

    /// Runs `step`; on failure aborts the multipart upload (if any) so that
    /// nothing is left behind, and returns the step's error.
    async fn or_abort(&mut self, step: Result<()>) -> Result<()> {
        let Err(e) = step else { return Ok(()) };
        self.failed = true;
        self.buf = Vec::new();
        match self.abort_multipart().await {
            Ok(()) => Err(e),
            Err(abort) => Err(with_abort_failure(e, &abort)),
        }
    }

    async fn abort_multipart(&mut self) -> Result<()> {
        let Some(upload_id) = self.upload_id.take() else {
            return Ok(());
        };
        abort_multipart(
            &self.client,
            &self.bucket,
            &self.key,
            &upload_id,
            &self.target,
        )
        .await
    }

    /// Sends the buffer as the next part, starting the multipart upload if
    /// needed.
    async fn send_part(&mut self) -> Result<()> {
        if self.parts.len() >= MAX_PARTS {
            return Err(StoreError::TooLarge {
                size: usize::try_from(self.written).unwrap_or(usize::MAX),
                limit: MAX_PARTS.saturating_mul(self.part_size),
            });
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type(&self.content_type)
                    .set_content_encoding(self.content_encoding.clone())
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .send()
                    .await
                    .map_err(|e| from_sdk("CreateMultipartUpload", &self.target, e))?;
                let id = out.upload_id().map(str::to_owned).ok_or_else(|| {
                    StoreError::Other(format!(
                        "S3 CreateMultipartUpload {}: no upload id in the answer",
                        self.target
                    ))
                })?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("UploadPart #{number}"), &self.target, e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        let Some(upload_id) = self.upload_id.clone() else {
            // Smaller than one part: one PutObject.
            let body = std::mem::take(&mut self.buf);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .set_content_encoding(self.content_encoding.clone())
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| from_sdk("PutObject", &self.target, e))?;
            return Ok(());
        };
        if !self.buf.is_empty() {
            self.send_part().await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk("CompleteMultipartUpload", &self.target, e))?;
        self.upload_id = None;
        Ok(())
    }
}

async fn abort_multipart(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    target: &str,
) -> Result<()> {
    match client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Already gone (aborted or completed by an earlier attempt).
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
        Err(e) => Err(from_sdk("AbortMultipartUpload", target, e)),
    }
}

/// The original error, saying that cleaning up failed as well (the bucket's
/// lifecycle rule has to remove the parts then).
fn with_abort_failure(e: StoreError, abort: &StoreError) -> StoreError {
    let note = format!(" (and aborting the multipart upload failed: {abort})");
    match e {
        StoreError::Throttled(m) => StoreError::Throttled(m + &note),
        StoreError::Unavailable(m) => StoreError::Unavailable(m + &note),
        StoreError::Invalid(m) => StoreError::Invalid(m + &note),
        StoreError::Other(m) => StoreError::Other(m + &note),
        other => StoreError::Other(format!("{other}{note}")),
    }
}

#[async_trait]
impl BlobUpload for S3Upload {
    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_usable()?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (self.part_size - self.buf.len()).min(rest.len());
            let (now, later) = rest.split_at(take);
            self.buf.extend_from_slice(now);
            self.written += now.len() as u64;
            rest = later;
            if self.buf.len() >= self.part_size {
                let sent = self.send_part().await;
                self.or_abort(sent).await?;
            }
        }
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        self.check_usable()?;
        let finished = self.finish().await;
        self.or_abort(finished).await?;
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.failed = true;
        self.abort_multipart().await
    }
}

impl Drop for S3Upload {
    /// Neither completed nor aborted (a panic, a cancelled future): abort in
    /// the background if a runtime is there to run it.
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, bucket, key, target) = (
            self.client.clone(),
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.target),
        );
        runtime.spawn(async move {
            let _ = abort_multipart(&client, &bucket, &key, &upload_id, &target).await;
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn offline_client() -> Client {
        Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "AKID", "secret", None, None, "test",
                ))
                .build(),
        )
    }

    #[test]
    fn keys_go_under_the_prefix() {
        let s = S3BlobStore::new(offline_client(), "b", "").unwrap();
        assert_eq!(
            s.object_key("exports/j/a.ndjson").unwrap(),
            "exports/j/a.ndjson"
        );
        let s = S3BlobStore::new(offline_client(), "b", "iis/stage/").unwrap();
        assert_eq!(s.prefix(), "iis/stage/");
        assert_eq!(s.object_key("exports/a").unwrap(), "iis/stage/exports/a");
        assert_eq!(
            s.object_prefix("exports/job-1/").unwrap(),
            "iis/stage/exports/job-1/"
        );
        assert_eq!(
            s.object_prefix("exports/job-").unwrap(),
            "iis/stage/exports/job-"
        );
        for bad in ["../a", "a//b", "/a", "a b", ""] {
            assert!(s.object_key(bad).is_err(), "{bad}");
        }
        for bad in ["", "../a/", "a//", "/", "a/b c", "a/../"] {
            assert!(s.object_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configuration_is_checked() {
        assert!(S3BlobStore::new(offline_client(), "", "").is_err());
        assert!(S3BlobStore::new(offline_client(), "a/b", "").is_err());
        assert!(S3BlobStore::new(offline_client(), "b", "../x").is_err());
        assert!(S3BlobStore::new(offline_client(), "b", "a//b").is_err());
        let s = S3BlobStore::new(offline_client(), "b", "x").unwrap();
        assert_eq!(s.part_size(), DEFAULT_PART_SIZE);
        assert!(s.clone().with_part_size(MIN_PART_SIZE - 1).is_err());
        assert_eq!(
            s.with_part_size(MIN_PART_SIZE).unwrap().part_size(),
            MIN_PART_SIZE
        );
    }

    #[tokio::test]
    async fn presigned_urls_need_no_headers_and_at_most_a_week() {
        let s = S3BlobStore::new(offline_client(), "bucket-1", "iis").unwrap();
        let url = s
            .presign_get("exports/job-1/Patient.000.ndjson", Duration::from_secs(900))
            .await
            .unwrap();
        assert!(
            url.starts_with(
                "https://bucket-1.s3.us-east-1.amazonaws.com/iis/exports/job-1/Patient.000.ndjson?"
            ),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=900"), "{url}");
        assert!(s
            .presign_get("exports/x", MAX_PRESIGN + Duration::from_secs(1))
            .await
            .is_err());
        assert!(s.presign_get("../x", Duration::from_secs(1)).await.is_err());
    }
}
