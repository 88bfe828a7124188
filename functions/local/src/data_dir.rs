//! The local data directory: one embedded store file, which one process
//! holds; while `iisbulk serve` holds it, the server lends it to the admin
//! commands over loopback (see `store_remote`), announced in
//! [`LENDER_FILE`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::embedded::EmbeddedStore;

pub const DEFAULT_DATA_DIR: &str = ".iisbulk";

/// Written by a running `iisbulk serve` in its data directory (readable by
/// its owner only, like the store file): where it listens and the admin
/// token that lets a second process use its store.
pub const LENDER_FILE: &str = "serve-admin.json";

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Lender {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

/// Announces the running server's lent store; the file is the owner's alone.
pub fn write_lender(dir: &Path, lender: &Lender) -> Result<PathBuf, String> {
    use std::io::Write as _;
    let path = dir.join(LENDER_FILE);
    let text = serde_json::to_vec(lender).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The store to administer: the data directory's own, or, while `iisbulk
/// serve` holds it, the server's, lent over loopback.
pub fn open_or_borrow(dir: &Path) -> Result<Arc<dyn store::ItemStore>, String> {
    match open(dir) {
        Ok(store) => Ok(store),
        Err(in_use) if in_use.contains("is in use by another iisbulk process") => {
            let path = dir.join(LENDER_FILE);
            let text = std::fs::read(&path).map_err(|_| {
                format!(
                    "{in_use}; and it announces no admin address ({} is missing)",
                    path.display()
                )
            })?;
            let lender: Lender =
                serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!(
                "iisbulk serve (pid {}) holds {}: working through it at {}",
                lender.pid,
                dir.display(),
                lender.url
            );
            Ok(Arc::new(store_remote::RemoteStore::new(
                &lender.url,
                lender.token,
            )))
        }
        Err(e) => Err(e),
    }
}

pub fn open(dir: &Path) -> Result<Arc<EmbeddedStore>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let file: PathBuf = dir.join("iis.redb");
    EmbeddedStore::open(&file).map(Arc::new).map_err(|e| {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("already open")
            || text.to_ascii_lowercase().contains("lock")
        {
            format!(
                "{} is in use by another iisbulk process (is `iisbulk serve` running on it?); stop it first ({text})",
                file.display()
            )
        } else {
            format!("cannot open {}: {text}", file.display())
        }
    })
}
