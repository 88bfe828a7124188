//! The local data directory: one embedded store file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::embedded::EmbeddedStore;

pub const DEFAULT_DATA_DIR: &str = ".iisbulk";

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
