//! The console as the stack serves it, against moto: a fresh table; staff
//! added to it as `iisbulk staff add --backend dynamodb` adds them (the same
//! registry call); the console Lambda's router built by its own
//! `console::deps_from_env` (what its `main.rs` runs) and invoked with API
//! Gateway HTTP API 2.0 events, cookies in the event's `cookies` list and
//! `Set-Cookie` in the answer's, as API Gateway passes them.
//!
//! The page and its assets load; a reviewer logs in (a `Secure` session
//! cookie: the public URL is https), reads the review queue and is refused
//! the staff list; an administrator logs in with a TOTP code and adds a staff
//! member from the API; logins, failed ones included, are in the audit
//! trail on the table; a logout ends the session.
//!
//! Needs `IISBULK_DYNAMODB_ENDPOINT` and `IISBULK_S3_ENDPOINT` (scripts/moto
//! start); skipped without them unless `IISBULK_REQUIRE_MOTO=1`. This binary
//! has this one test, which sets the environment before any thread starts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cloud_e2e::aws::{endpoints_or_skip, unique_name};
use cloud_e2e::http::{apigw_v2_event, invoke, Answer};
use registry::audit::{AuditSearch, AuditTrail, Outcome};
use registry::staff::{totp, NewStaff, Staff, StaffRole};
use serde_json::{json, Value};

const PUBLIC_URL: &str = "https://iis.e2e.example";
const RITA_PASSWORD: &str = "rita's long password";
const ADA_PASSWORD: &str = "ada's long password!";

fn now_s() -> i64 {
    iz::Clock::now().unix_seconds
}

/// The current TOTP code of an `otpauth://` enrolment URI.
fn code_now(uri: &str) -> String {
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    format!(
        "{:06}",
        totp::code(
            &totp::from_base32(secret).unwrap(),
            totp::step_at(now_s()),
            totp::DIGITS
        )
    )
}

struct Console(lambda_edge::OnLambda);

impl Console {
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Answer {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let mut all = headers.to_vec();
        if !body.is_empty() {
            all.push(("content-type", "application/json"));
        }
        let event = apigw_v2_event(method, path, &all, &body);
        invoke(self.0.clone(), &event).await.unwrap()
    }

    /// Logs in: the session cookie (as a browser sends it back) and the
    /// CSRF token.
    async fn login(
        &self,
        username: &str,
        password: &str,
        code: Option<String>,
    ) -> (String, String) {
        let a = self
            .call(
                "POST",
                "/console/api/session",
                &[],
                &json!({"username": username, "password": password, "code": code}),
            )
            .await;
        assert_eq!(a.status, 200, "login {username}: {}", a.text());
        assert_eq!(a.json()["username"], username);
        let set = a
            .cookies
            .iter()
            .find(|c| c.starts_with(&format!("{}=", console::SESSION_COOKIE)))
            .unwrap_or_else(|| panic!("no session cookie in {:?} ({:?})", a.cookies, a.raw));
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(set.contains(attribute), "{attribute} missing from {set}");
        }
        let cookie = set.split(';').next().unwrap().to_owned();
        let csrf = a.json()["csrf_token"].as_str().unwrap().to_owned();
        (cookie, csrf)
    }
}

#[test]
fn staff_in_the_table_use_the_console_through_its_lambda() {
    if !endpoints_or_skip("the console cloud test") {
        return;
    }
    let table = unique_name("iisbulk-console");
    // The function's configuration, as the template sets it (the endpoint
    // override comes from scripts/moto). Set before any thread starts.
    std::env::set_var("IISBULK_TABLE", &table);
    std::env::set_var("IISBULK_PUBLIC_URL", PUBLIC_URL);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(scenario(table));
}

async fn scenario(table: String) {
    let dynamodb = store_dynamodb::client_from_env().await;
    store_dynamodb::create_table_for_tests(&dynamodb, &table)
        .await
        .unwrap();
    let admin: Arc<dyn store::ItemStore> =
        Arc::new(store_dynamodb::DynamoStore::new(dynamodb, table.clone()));

    // `iisbulk staff add --backend dynamodb --table ...`
    let staff = Staff::new(admin.clone());
    let add = |username: &str, role, password: &str| NewStaff {
        username: username.into(),
        role,
        password: password.into(),
    };
    staff
        .add(add("rita", StaffRole::Reviewer, RITA_PASSWORD), now_s())
        .await
        .unwrap();
    let ada = staff
        .add(add("ada", StaffRole::Administrator, ADA_PASSWORD), now_s())
        .await
        .unwrap();
    let ada_totp = ada.totp_uri.unwrap();

    let deps = console::deps_from_env().await.unwrap();
    assert!(
        deps.secure_cookies,
        "an https public URL makes the cookie Secure"
    );
    let console = Console(lambda_edge::on_lambda(console::router(Arc::new(deps))));

    // The page and its assets.
    let page = console.call("GET", "/console/", &[], &Value::Null).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.header("content-security-policy").is_some());
    // Relative, so that behind a stage the browser stays in it.
    assert!(page.text().contains(r#"src="console.js""#));
    let redirect = console.call("GET", "/console", &[], &Value::Null).await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("console/"));
    for asset in ["/console/console.js", "/console/console.css"] {
        let a = console.call("GET", asset, &[], &Value::Null).await;
        assert_eq!(a.status, 200, "{asset}");
    }

    // A wrong password is refused, and recorded.
    let wrong = console
        .call(
            "POST",
            "/console/api/session",
            &[],
            &json!({"username": "rita", "password": "not rita's password"}),
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(wrong.cookies.is_empty());

    // The reviewer: the queue (empty) yes, the staff list no.
    let (rita, rita_csrf) = console.login("rita", RITA_PASSWORD, None).await;
    let session = console
        .call(
            "GET",
            "/console/api/session",
            &[("cookie", &rita)],
            &Value::Null,
        )
        .await;
    assert_eq!(session.status, 200, "{}", session.text());
    assert_eq!(session.json()["role"], "reviewer");
    let queue = console
        .call(
            "GET",
            "/console/api/review",
            &[("cookie", &rita)],
            &Value::Null,
        )
        .await;
    assert_eq!(queue.status, 200, "{}", queue.text());
    let forbidden = console
        .call(
            "GET",
            "/console/api/staff",
            &[("cookie", &rita)],
            &Value::Null,
        )
        .await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text());

    // The administrator (password and TOTP code) adds an auditor.
    let needs_code = console
        .call(
            "POST",
            "/console/api/session",
            &[],
            &json!({"username": "ada", "password": ADA_PASSWORD}),
        )
        .await;
    assert_eq!(needs_code.status, 401, "{}", needs_code.text());
    let (ada_cookie, ada_csrf) = console
        .login("ada", ADA_PASSWORD, Some(code_now(&ada_totp)))
        .await;
    let added = console
        .call(
            "POST",
            "/console/api/staff",
            &[("cookie", &ada_cookie), ("x-csrf-token", &ada_csrf)],
            &json!({"username": "olu", "role": "auditor", "password": "olu's long password"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text());
    let listed = console
        .call(
            "GET",
            "/console/api/staff",
            &[("cookie", &ada_cookie)],
            &Value::Null,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let mut names: Vec<String> = staff
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ada", "olu", "rita"],
        "the table holds the new member"
    );
    for name in &names {
        assert!(
            listed.text().contains(&format!("\"{name}\"")),
            "{name} listed"
        );
    }

    // Logins are in the trail on the table: rita's under her name, the
    // failed one under the name typed (it may be nobody's).
    let trail = AuditTrail::new(admin.clone());
    let logins = |actor: &str| {
        let trail = trail.clone();
        let search = AuditSearch {
            actor: Some(actor.into()),
            from_ms: (now_s() - 3600) * 1000,
            to_ms: (now_s() + 60) * 1000,
            limit: 100,
            ..AuditSearch::default()
        };
        async move {
            let events = trail.search(&search).await.unwrap();
            events
                .into_iter()
                .filter(|e| e.action == "console.login")
                .map(|e| e.outcome)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(logins("staff/rita").await, [Outcome::Success]);
    assert_eq!(logins("unauthenticated/rita").await, [Outcome::Failure]);

    // Logging out ends the session (CSRF token required).
    let no_csrf = console
        .call(
            "DELETE",
            "/console/api/session",
            &[("cookie", &rita)],
            &Value::Null,
        )
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text());
    let out = console
        .call(
            "DELETE",
            "/console/api/session",
            &[("cookie", &rita), ("x-csrf-token", &rita_csrf)],
            &Value::Null,
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.text());
    let gone = console
        .call(
            "GET",
            "/console/api/session",
            &[("cookie", &rita)],
            &Value::Null,
        )
        .await;
    assert_eq!(gone.status, 401, "{}", gone.text());
}
