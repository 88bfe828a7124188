//! The jurisdiction policy of the local process: a file, or the shipped one.

use std::path::Path;

use registry::membership::JurisdictionPolicy;

/// Reads and checks the policy; the error names the file and the option.
pub fn load(path: Option<&Path>) -> Result<JurisdictionPolicy, String> {
    match path {
        None => Ok(JurisdictionPolicy::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--policy {}: {e}", path.display()))?;
            JurisdictionPolicy::from_toml(&text)
                .map_err(|e| format!("--policy {}: {e}", path.display()))
        }
    }
}
