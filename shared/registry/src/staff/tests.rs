//! Unit tests of staff accounts, sessions and second factors: compiled
//! only under `cargo test`.
#![cfg(test)]

use super::*;

fn staff() -> (tempfile::TempDir, Staff) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::embedded::EmbeddedStore::open(dir.path().join("iis.redb")).expect("store");
    (dir, Staff::new(Arc::new(store)))
}

const NOW: i64 = 1_800_000_000;

fn new(username: &str, role: StaffRole) -> NewStaff {
    NewStaff {
        username: username.into(),
        role,
        password: "correct horse battery".into(),
    }
}

/// The code an enrolled authenticator app shows at `now`.
fn app_code(uri: &str, now: i64) -> String {
    let secret = uri
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap();
    let bytes = totp::from_base32(secret).unwrap();
    format!(
        "{:06}",
        totp::code(&bytes, totp::step_at(now), totp::DIGITS)
    )
}

#[tokio::test]
async fn a_reviewer_logs_in_with_a_password_and_the_session_holds_until_logout() {
    let (_d, staff) = staff();
    let enrolled = staff
        .add(new("rita", StaffRole::Reviewer), NOW)
        .await
        .unwrap();
    assert_eq!(enrolled.totp_uri, None, "reviewers need no second factor");
    assert!(enrolled.account.password_hash.starts_with("$argon2id$"));

    let (token, session) = staff
        .login("rita", "correct horse battery", None, NOW)
        .await
        .unwrap();
    assert_eq!(session.role, StaffRole::Reviewer);
    assert!(session.csrf_matches(&session.csrf_token));
    assert!(!session.csrf_matches("forged"));
    assert_ne!(token, session.csrf_token);

    let again = staff.session(&token, NOW + 120).await.unwrap().unwrap();
    assert_eq!(again.username, "rita");
    assert_eq!(again.last_seen, NOW + 120, "use keeps the session alive");
    staff.logout(&token).await.unwrap();
    assert!(staff.session(&token, NOW + 130).await.unwrap().is_none());
    assert!(staff.session("not-a-token", NOW).await.unwrap().is_none());
    assert!(staff.session("", NOW).await.unwrap().is_none());
}

#[tokio::test]
async fn an_administrator_needs_a_fresh_totp_code_and_a_code_works_once() {
    let (_d, staff) = staff();
    let enrolled = staff
        .add(new("ada", StaffRole::Administrator), NOW)
        .await
        .unwrap();
    let uri = enrolled
        .totp_uri
        .expect("administrators enrol a second factor");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");

    let pw = "correct horse battery";
    assert_eq!(
        staff.login("ada", pw, None, NOW).await.unwrap_err(),
        StaffError::SecondFactorRequired
    );
    assert_eq!(
        staff
            .login("ada", pw, Some("000000"), NOW)
            .await
            .unwrap_err(),
        StaffError::BadLogin,
        "a wrong code"
    );
    let code = app_code(&uri, NOW);
    staff.login("ada", pw, Some(&code), NOW).await.unwrap();
    assert_eq!(
        staff
            .login("ada", pw, Some(&code), NOW + 5)
            .await
            .unwrap_err(),
        StaffError::BadLogin,
        "the same code twice is a replay"
    );
    staff
        .login("ada", pw, Some(&app_code(&uri, NOW + 30)), NOW + 30)
        .await
        .unwrap();
    // A wrong password with a right code is still a bad login.
    assert_eq!(
        staff
            .login(
                "ada",
                "wrong password!!",
                Some(&app_code(&uri, NOW + 60)),
                NOW + 60
            )
            .await
            .unwrap_err(),
        StaffError::BadLogin
    );

    // A reset second factor: the old app's codes stop working.
    let new_uri = staff.reset_second_factor("ada").await.unwrap();
    assert_ne!(new_uri, uri);
    let t = NOW + 300;
    if app_code(&uri, t) != app_code(&new_uri, t) {
        assert_eq!(
            staff
                .login("ada", pw, Some(&app_code(&uri, t)), t)
                .await
                .unwrap_err(),
            StaffError::BadLogin
        );
    }
    staff
        .login("ada", pw, Some(&app_code(&new_uri, t)), t)
        .await
        .unwrap();
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_the_window_whatever_the_password() {
    let (_d, mut staff) = staff();
    staff.max_failures = 3;
    staff
        .add(new("rita", StaffRole::Reviewer), NOW)
        .await
        .unwrap();
    for i in 0..3 {
        assert_eq!(
            staff
                .login("rita", "not the password", None, NOW + i)
                .await
                .unwrap_err(),
            StaffError::BadLogin
        );
    }
    match staff
        .login("rita", "correct horse battery", None, NOW + 10)
        .await
        .unwrap_err()
    {
        StaffError::Locked { retry_after } => {
            assert!(
                retry_after > 0 && retry_after <= staff.failure_window,
                "{retry_after}"
            )
        }
        other => panic!("expected a lockout, got {other:?}"),
    }
    // Once the window has passed, the right password works again.
    staff
        .login(
            "rita",
            "correct horse battery",
            None,
            NOW + staff.failure_window + 5,
        )
        .await
        .unwrap();
    // Unknown usernames fail the same way, and are counted too.
    assert_eq!(
        staff
            .login("nobody", "correct horse battery", None, NOW)
            .await
            .unwrap_err(),
        StaffError::BadLogin
    );
}

#[tokio::test]
async fn sessions_end_with_a_password_change_a_removal_or_their_lifetimes() {
    let (_d, staff) = staff();
    staff
        .add(new("rita", StaffRole::Reviewer), NOW)
        .await
        .unwrap();
    staff
        .add(new("aud", StaffRole::Auditor), NOW)
        .await
        .unwrap();
    let pw = "correct horse battery";

    let (token, _) = staff.login("rita", pw, None, NOW).await.unwrap();
    staff
        .change_password("rita", "another long passphrase")
        .await
        .unwrap();
    assert!(staff.session(&token, NOW + 1).await.unwrap().is_none());
    assert_eq!(
        staff.login("rita", pw, None, NOW + 2).await.unwrap_err(),
        StaffError::BadLogin
    );
    let (token, _) = staff
        .login("rita", "another long passphrase", None, NOW + 3)
        .await
        .unwrap();
    staff.remove("rita").await.unwrap();
    assert!(staff.session(&token, NOW + 4).await.unwrap().is_none());
    assert_eq!(
        staff.remove("rita").await.unwrap_err(),
        StaffError::NotFound("rita".into())
    );

    // Idle: unused for longer than the idle lifetime.
    let (token, _) = staff.login("aud", pw, None, NOW).await.unwrap();
    assert!(staff
        .session(&token, NOW + staff.idle_seconds + 1)
        .await
        .unwrap()
        .is_none());
    // Absolute: used all along, still over after the absolute lifetime.
    let (token, _) = staff.login("aud", pw, None, NOW).await.unwrap();
    let mut t = NOW;
    while t + staff.idle_seconds / 2 < NOW + staff.absolute_seconds {
        t += staff.idle_seconds / 2;
        assert!(staff.session(&token, t).await.unwrap().is_some(), "at {t}");
    }
    assert!(staff
        .session(&token, NOW + staff.absolute_seconds + 1)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn bad_input_is_refused_with_words_for_the_person_who_typed_it() {
    let (_d, staff) = staff();
    let mut short = new("rita", StaffRole::Reviewer);
    short.password = "short".into();
    assert!(
        matches!(staff.add(short, NOW).await, Err(StaffError::Invalid(m)) if m.contains("at least 12"))
    );
    let mut same = new("rita.reviewer", StaffRole::Reviewer);
    same.password = "RITA.REVIEWER".into();
    assert!(
        matches!(staff.add(same, NOW).await, Err(StaffError::Invalid(m)) if m.contains("username"))
    );
    for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
        assert!(
            matches!(
                staff.add(new(bad, StaffRole::Reviewer), NOW).await,
                Err(StaffError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    staff
        .add(new("rita", StaffRole::Reviewer), NOW)
        .await
        .unwrap();
    assert_eq!(
        staff
            .add(new("rita", StaffRole::Auditor), NOW)
            .await
            .unwrap_err(),
        StaffError::UsernameTaken("rita".into())
    );
    assert_eq!(
        StaffRole::parse(" Administrator ").unwrap(),
        StaffRole::Administrator
    );
    assert!(
        matches!(StaffRole::parse("root"), Err(StaffError::Invalid(m)) if m.contains("reviewer, administrator, auditor"))
    );
    assert_eq!(
        staff
            .login("rita", &"x".repeat(MAX_PASSWORD_BYTES + 1), None, NOW)
            .await
            .unwrap_err(),
        StaffError::BadLogin
    );
    assert_eq!(
        staff
            .change_password("nobody", "long enough password")
            .await
            .unwrap_err(),
        StaffError::NotFound("nobody".into())
    );
}

#[tokio::test]
async fn accounts_are_listed_by_username_and_never_print_their_secrets() {
    let (_d, staff) = staff();
    staff
        .add(new("zed", StaffRole::Auditor), NOW)
        .await
        .unwrap();
    let ada = staff
        .add(new("ada", StaffRole::Administrator), NOW)
        .await
        .unwrap();
    let names: Vec<String> = staff
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["ada", "zed"]);
    let printed = format!("{:?}", ada.account);
    assert!(!printed.contains("argon2"), "{printed}");
    assert!(!printed.contains(ada.account.totp_secret.as_deref().unwrap()));
}
