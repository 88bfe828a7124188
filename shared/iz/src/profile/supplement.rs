//! Codes published after the NIST profiles were frozen (CVX, MVX), merged into
//! the profiles' value sets when they load.
//!
//! The profiles are a 2016 snapshot; vaccines keep arriving. A built-in list
//! (`data/code-supplement.tsv`) covers what was known when this was written,
//! and a jurisdiction can install its own, newer list at start-up.

use super::model::{Map, ValueSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

const BUILT_IN: &str = include_str!("../../data/code-supplement.tsv");

static INSTALLED: OnceLock<Vec<Entry>> = OnceLock::new();
static PROFILES_LOADED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value_set: String,
    code: String,
}

/// Why a supplement could not be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupplementError {
    /// Line `line` (1-based) is not `VALUESET<TAB>CODE<TAB>DESCRIPTION`.
    Malformed { line: usize, reason: String },
    /// Profiles were already loaded: the codes would apply to some messages only.
    TooLate,
    /// A supplement was installed before.
    AlreadyInstalled,
}

impl std::fmt::Display for SupplementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SupplementError::Malformed { line, reason } => {
                write!(f, "code supplement line {line}: {reason}")
            }
            SupplementError::TooLate => write!(
                f,
                "the code supplement must be installed before the first message is validated"
            ),
            SupplementError::AlreadyInstalled => {
                write!(f, "a code supplement is already installed")
            }
        }
    }
}

impl std::error::Error for SupplementError {}

/// Adds a jurisdiction's codes (same format as the built-in list) to every
/// profile. Call once at start-up, before any message is validated.
/// Returns how many codes were read.
pub fn install_code_supplement(text: &str) -> Result<usize, SupplementError> {
    let entries = parse(text)?;
    if PROFILES_LOADED.load(Ordering::SeqCst) {
        return Err(SupplementError::TooLate);
    }
    let n = entries.len();
    INSTALLED
        .set(entries)
        .map_err(|_| SupplementError::AlreadyInstalled)?;
    Ok(n)
}

pub(super) fn mark_profiles_loaded() {
    PROFILES_LOADED.store(true, Ordering::SeqCst);
}

fn parse(text: &str) -> Result<Vec<Entry>, SupplementError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(vs), Some(code)) = (cols.next(), cols.next()) else {
            return Err(SupplementError::Malformed {
                line: i + 1,
                reason: "expected value set, code and description separated by tabs".into(),
            });
        };
        let (vs, code) = (vs.trim(), code.trim());
        if vs.is_empty() || code.is_empty() || code.len() > 50 {
            return Err(SupplementError::Malformed {
                line: i + 1,
                reason: "value set and code must be non-empty (code at most 50 characters)".into(),
            });
        }
        out.push(Entry {
            value_set: vs.to_string(),
            code: code.to_string(),
        });
    }
    Ok(out)
}

pub(super) fn apply(value_sets: &mut Map<String, ValueSet>) {
    // The built-in list is part of the build and checked by tests.
    let built_in = parse(BUILT_IN).unwrap_or_default();
    let extra = INSTALLED.get().map(Vec::as_slice).unwrap_or(&[]);
    for e in built_in.iter().chain(extra) {
        if let Some(vs) = value_sets.get_mut(&e.value_set) {
            // CVX and MVX are both value set ids and code system names.
            vs.systems.insert(e.code.clone(), e.value_set.clone());
            vs.codes.insert(e.code.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn built_in_list_is_well_formed() {
        let entries = parse(BUILT_IN).unwrap();
        assert!(entries
            .iter()
            .any(|e| e.value_set == "CVX" && e.code == "208"));
        assert!(entries
            .iter()
            .any(|e| e.value_set == "MVX" && e.code == "MOD"));
    }

    #[test]
    fn malformed_lines_are_named() {
        let err = parse("# ok\nCVX\t999\tx\nCVX-only-no-tab\n").unwrap_err();
        assert_eq!(
            err,
            SupplementError::Malformed {
                line: 3,
                reason: "expected value set, code and description separated by tabs".into()
            }
        );
    }

    #[test]
    fn late_installation_is_refused() {
        let _ = crate::profile::profile(crate::profile::ProfileId::Z22);
        assert_eq!(
            install_code_supplement("CVX\t400\tfuture vaccine\n"),
            Err(SupplementError::TooLate)
        );
    }
}
