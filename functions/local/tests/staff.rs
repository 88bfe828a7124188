//! `iisbulk staff …`: console staff accounts made, listed, changed and
//! removed with the built binary, then logged in with as the console will
//! (the registry's `Staff` on the same data directory).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use registry::staff::{totp, Staff, StaffError};

fn staff_cmd(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .arg("staff")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected a refusal");
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn staff_on(data: &Path) -> Staff {
    let store = store::embedded::EmbeddedStore::open(data.join("iis.redb")).unwrap();
    Staff::new(Arc::new(store))
}

fn now() -> i64 {
    iz::Clock::now().unix_seconds
}

#[tokio::test]
async fn staff_accounts_are_made_and_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let pw = "a long reviewer passphrase\n";

    let said = ok(&staff_cmd(
        data,
        &[
            "add",
            "--username",
            "rita",
            "--role",
            "reviewer",
            "--password-stdin",
        ],
        Some(pw),
    ));
    assert!(
        said.contains("added staff member 'rita' (reviewer)"),
        "{said}"
    );
    assert!(
        !said.contains("otpauth"),
        "reviewers enrol no second factor"
    );

    let said = ok(&staff_cmd(
        data,
        &[
            "add",
            "--username",
            "ada",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        Some("a long administrator passphrase\n"),
    ));
    let uri = said
        .split_whitespace()
        .find(|w| w.starts_with("otpauth://totp/"))
        .unwrap_or_else(|| panic!("an administrator is shown the enrolment URI: {said}"))
        .to_owned();

    // Refusals say why, and change nothing.
    let e = refused(&staff_cmd(
        data,
        &[
            "add",
            "--username",
            "root",
            "--role",
            "superuser",
            "--password-stdin",
        ],
        Some(pw),
    ));
    assert!(e.contains("unknown role 'superuser'"), "{e}");
    let e = refused(&staff_cmd(
        data,
        &[
            "add",
            "--username",
            "rita",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        Some(pw),
    ));
    assert!(e.contains("already in use"), "{e}");
    let e = refused(&staff_cmd(
        data,
        &[
            "add",
            "--username",
            "short",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        Some("short\n"),
    ));
    assert!(e.contains("at least 12"), "{e}");
    let e = refused(&staff_cmd(data, &["remove", "--username", "nobody"], None));
    assert!(e.contains("no staff member 'nobody'"), "{e}");

    let listed = ok(&staff_cmd(data, &["list", "--json"], None));
    let rows: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["username"], "ada");
    assert_eq!(rows[0]["role"], "administrator");
    assert_eq!(rows[0]["second_factor"], true);
    assert_eq!(rows[1]["username"], "rita");
    assert!(!listed.contains("argon2"));

    // The accounts log in as the console will.
    {
        let staff = staff_on(data);
        let (_, session) = staff
            .login("rita", pw.trim_end(), None, now())
            .await
            .unwrap();
        assert_eq!(session.role.as_str(), "reviewer");
        let secret = uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let code = format!(
            "{:06}",
            totp::code(
                &totp::from_base32(secret).unwrap(),
                totp::step_at(now()),
                totp::DIGITS
            )
        );
        staff
            .login("ada", "a long administrator passphrase", Some(&code), now())
            .await
            .unwrap();
    }

    ok(&staff_cmd(
        data,
        &["set-password", "--username", "rita", "--password-stdin"],
        Some("a brand new passphrase\n"),
    ));
    let said = ok(&staff_cmd(
        data,
        &["reset-second-factor", "--username", "ada"],
        None,
    ));
    assert!(
        said.contains("otpauth://totp/") && !said.contains(&uri),
        "{said}"
    );
    ok(&staff_cmd(data, &["remove", "--username", "ada"], None));
    {
        let staff = staff_on(data);
        assert_eq!(
            staff
                .login("rita", pw.trim_end(), None, now())
                .await
                .unwrap_err(),
            StaffError::BadLogin,
            "the old password no longer works"
        );
        staff
            .login("rita", "a brand new passphrase", None, now())
            .await
            .unwrap();
        assert!(staff.get("ada").await.unwrap().is_none());
    }
}
