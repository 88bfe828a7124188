//! `iisbulk hl7 check` on queries: without a registry it says honestly who
//! answers a valid query, and answers an invalid one itself.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/corpus/hl7")
        .join(name)
}

fn check(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["hl7", "check"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_valid_z44_is_left_to_the_query_service_and_an_invalid_one_gets_z33() {
    let dir = tempfile::tempdir().unwrap();
    let q = corpus("qbp-001.hl7");
    let (code, stdout) = check(&[q.as_os_str(), "--out".as_ref(), dir.path().as_os_str()]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("query valid (Z44)") && stdout.contains("Z42"),
        "{stdout}"
    );
    assert!(!stdout.contains("not supported"), "{stdout}");
    // No answer is invented without the registry.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Without its query tag (QPD-2) it is refused at once, Z33 AE.
    let text = std::fs::read_to_string(&q)
        .unwrap()
        .replace("|IZ-1.1-2015|", "||");
    let bad = dir.path().join("bad-z44.hl7");
    std::fs::write(&bad, text).unwrap();
    let (code, stdout) = check(&[bad.as_os_str()]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("AE - rejected"), "{stdout}");
    assert!(
        stdout.contains("MSA|AE|") && stdout.contains("Z33^CDCPHINVS"),
        "{stdout}"
    );
    assert!(stdout.contains("ERR||QPD^1^2|101^"), "{stdout}");
}
