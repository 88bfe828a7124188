//! The blob port on a local directory (`iisbulk serve`, tests). An upload is
//! written to a temporary file beside the blobs and renamed into place on
//! completion, which is atomic on one filesystem.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::blob::{check_blob_key, BlobReader, BlobStore, BlobUpload};
use crate::error::{Result, StoreError};

/// Uploads in progress live here, never under a blob key.
const UPLOADS: &str = ".uploads";

#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl DirBlobStore {
    /// Opens (creating if needed) a blob directory; stale uploads of an
    /// earlier process are removed.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let uploads = root.join(UPLOADS);
        let _ = std::fs::remove_dir_all(&uploads);
        std::fs::create_dir_all(&uploads).map_err(|e| io("create", &uploads, e))?;
        Ok(DirBlobStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_blob_key(key)?;
        Ok(self.root.join(key))
    }
}

struct DirUpload {
    temp: PathBuf,
    target: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    written: u64,
}

#[async_trait]
impl BlobUpload for DirUpload {
    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| io("write", &self.temp, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        self.file
            .flush()
            .await
            .map_err(|e| io("flush", &self.temp, e))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(|e| io("sync", &self.temp, e))?;
        if let Some(parent) = self.target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io("create", parent, e))?;
        }
        tokio::fs::rename(&self.temp, &self.target)
            .await
            .map_err(|e| io("rename", &self.target, e))?;
        Ok(self.written)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        drop(self.file);
        match tokio::fs::remove_file(&self.temp).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &self.temp, e)),
        }
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn begin(&self, key: &str, _content_type: &str) -> Result<Box<dyn BlobUpload>> {
        let target = self.path(key)?;
        let temp = self.root.join(UPLOADS).join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| io("create", &temp, e))?;
        Ok(Box::new(DirUpload {
            temp,
            target,
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            written: 0,
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<(BlobReader, u64)>> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => {
                let len = f.metadata().await.map_err(|e| io("stat", &path, e))?.len();
                Ok(Some((Box::new(f), len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("open", &path, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path, e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        // A prefix is a key's leading segments (and maybe part of the last).
        let (dir, stem) = match prefix.rsplit_once('/') {
            Some((d, s)) => (self.path(d)?, s.to_owned()),
            None => (self.root.clone(), prefix.to_owned()),
        };
        let mut removed = 0;
        let mut stack = Vec::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io("list", &dir, e)),
        };
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(|e| io("list", &dir, e))?
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == UPLOADS || !name.starts_with(&stem) {
                continue;
            }
            stack.push(e.path());
        }
        // Another deleter may get to an entry first: gone is what we want.
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        while let Some(path) = stack.pop() {
            let meta = match tokio::fs::metadata(&path).await {
                Ok(m) => m,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(io("stat", &path, e)),
            };
            if meta.is_dir() {
                let mut inner = match tokio::fs::read_dir(&path).await {
                    Ok(i) => i,
                    Err(e) if gone(&e) => continue,
                    Err(e) => return Err(io("list", &path, e)),
                };
                while let Some(e) = inner.next_entry().await.map_err(|e| io("list", &path, e))? {
                    stack.push(e.path());
                }
            } else {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => removed += 1,
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(io("remove", &path, e)),
                }
            }
        }
        Ok(removed)
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
