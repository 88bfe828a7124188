//! The registry's modules layer one way (ARCHITECTURE.md, the code map):
//! keys → messages → users, SMART and staff → persons → matching and
//! membership → queries and resources → immds → intake, export and
//! bulk match. A module
//! may name (`crate::…`) only modules of a lower layer, but for the few
//! same-layer uses listed in `WITHIN_A_LAYER`. This test reads `src/` and says which line
//! breaks the order.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Every top-level module of `src/` and its layer, lowest first.
const LAYERS: &[(&str, u8)] = &[
    ("keys", 0),
    ("json", 0),
    ("retry", 0),
    ("attempts", 0),
    ("message", 1),
    ("problem", 1),
    ("audit", 1),
    ("authorized_user", 2),
    ("credentials", 2),
    ("smart", 2),
    ("staff", 2),
    ("persons", 3),
    ("patients", 4),
    ("membership", 4),
    ("queries", 5),
    ("resources", 5),
    ("fhir_match", 5),
    ("fhir_members", 5),
    ("provenance", 5),
    ("immds", 6),
    ("intake", 7),
    ("export", 7),
    // Runs many `$match`es (queries, fhir_match) as a job over blobs, as
    // export runs a Group: the same top layer, using neither intake nor
    // export.
    ("bulk_match", 7),
];

/// Same-layer uses allowed (from, to): the users modules share one record,
/// console staff hash their passwords as Authorized Users do, and
/// a history query and a FHIR `$match` share the matcher's use case while
/// the `$match` answer is written with the export's Patient.
const WITHIN_A_LAYER: &[(&str, &str)] = &[
    ("authorized_user", "credentials"),
    ("credentials", "authorized_user"),
    ("staff", "credentials"),
    ("queries", "fhir_match"),
    ("fhir_match", "resources"),
    ("fhir_members", "fhir_match"),
    ("provenance", "resources"),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(stem) => Some(stem.to_owned()),
        None => Some(first),
    }
}

/// The modules a line names through `crate::`.
fn crate_paths(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .map(|(at, _)| {
            line[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '{')
                .collect()
        })
        .collect()
}

#[test]
fn registry_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut broken = Vec::new();
    for file in &files {
        let Some(from) = module_of(&src, file) else {
            continue;
        };
        let Some(from_layer) = layer(&from) else {
            broken.push(format!(
                "{}: module `{from}` has no layer in LAYERS",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for to in crate_paths(line) {
                let at = format!("{}:{}: {}", file.display(), n + 1, line.trim());
                if to.is_empty() || to.contains('{') {
                    broken.push(format!("{at}: name the module (no `crate::{{…}}`)"));
                    continue;
                }
                if to == from {
                    continue;
                }
                match layer(&to) {
                    None => broken.push(format!("{at}: `{to}` has no layer in LAYERS")),
                    Some(l) if l < from_layer => {}
                    Some(l)
                        if l == from_layer
                            && WITHIN_A_LAYER.contains(&(from.as_str(), to.as_str())) => {}
                    Some(_) => broken.push(format!("{at}: `{from}` may not use `{to}`")),
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the registry's modules must layer one way:\n{}",
        broken.join("\n")
    );
}
