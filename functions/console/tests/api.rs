//! The console API over HTTP (the router `iisbulk serve` mounts): logins,
//! sessions, roles, CSRF, lockout, and staff administration, with the
//! problem documents a browser or a script reads.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use console::{router, ConsoleDeps, CSRF_HEADER, MAX_BODY_BYTES, PROBLEM_JSON};
use http_body_util::BodyExt;
use registry::staff::{totp, NewStaff, Staff, StaffRole};
use tower::ServiceExt;

struct Console {
    _dir: tempfile::TempDir,
    app: axum::Router,
    admin_totp: String,
}

const PW: &str = "a long console passphrase";

async fn console(public_url: &str) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let store = store::embedded::EmbeddedStore::open(dir.path().join("iis.redb")).unwrap();
    let staff = Staff::new(Arc::new(store));
    let now = iz::Clock::now().unix_seconds;
    for (username, role) in [("rita", StaffRole::Reviewer), ("olu", StaffRole::Auditor)] {
        staff
            .add(
                NewStaff {
                    username: username.into(),
                    role,
                    password: PW.into(),
                },
                now,
            )
            .await
            .unwrap();
    }
    let ada = staff
        .add(
            NewStaff {
                username: "ada".into(),
                role: StaffRole::Administrator,
                password: PW.into(),
            },
            now,
        )
        .await
        .unwrap();
    Console {
        _dir: dir,
        app: router(Arc::new(ConsoleDeps::new(staff, public_url))),
        admin_totp: ada.totp_uri.unwrap(),
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: serde_json::Value,
}

async fn call(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        json,
    }
}

fn post_json(uri: &str) -> axum::http::request::Builder {
    Request::post(uri).header(header::CONTENT_TYPE, "application/json")
}

async fn login(app: &axum::Router, username: &str, code: Option<String>) -> Answer {
    let body = serde_json::json!({ "username": username, "password": PW, "code": code });
    call(
        app,
        post_json("/console/api/session")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// The session cookie as a browser would send it back.
fn cookie_of(answer: &Answer) -> String {
    let set = answer.headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

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
            totp::step_at(iz::Clock::now().unix_seconds),
            totp::DIGITS
        )
    )
}

fn assert_problem(answer: &Answer, status: StatusCode, kind: &str) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.headers[header::CONTENT_TYPE], PROBLEM_JSON);
    assert!(
        answer.json["type"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{kind}")),
        "{}",
        answer.json
    );
    assert_eq!(answer.json["status"], status.as_u16());
    assert!(!answer.json["detail"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_reviewer_logs_in_reads_the_session_is_kept_out_of_staff_and_logs_out_with_csrf() {
    let c = console("https://iis.example.gov").await;
    let answer = login(&c.app, "rita", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let set = answer.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(answer.json["role"], "reviewer");
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();
    let cookie = cookie_of(&answer);
    assert!(!cookie.contains(&csrf), "the CSRF token is not the cookie");

    let me = call(
        &c.app,
        Request::get("/console/api/session")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["username"], "rita");
    assert_eq!(me.json["csrf_token"], csrf.as_str());

    let staff = call(
        &c.app,
        Request::get("/console/api/staff")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(&staff, StatusCode::FORBIDDEN, "forbidden");
    assert!(staff.json["detail"]
        .as_str()
        .unwrap()
        .contains("administrator"));

    for csrf_sent in [None, Some("forged-token")] {
        let mut request = Request::delete("/console/api/session").header(header::COOKIE, &cookie);
        if let Some(t) = csrf_sent {
            request = request.header(CSRF_HEADER, t);
        }
        let refused = call(&c.app, request.body(Body::empty()).unwrap()).await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "csrf");
    }
    let out = call(
        &c.app,
        Request::delete("/console/api/session")
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = call(
        &c.app,
        Request::get("/console/api/session")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(&after, StatusCode::UNAUTHORIZED, "not-logged-in");
    let no_cookie = call(
        &c.app,
        Request::get("/console/api/session")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(&no_cookie, StatusCode::UNAUTHORIZED, "not-logged-in");
}

#[tokio::test]
async fn an_administrator_logs_in_with_a_code_and_adds_staff_with_csrf() {
    let c = console("https://iis.example.gov").await;
    let asked = login(&c.app, "ada", None).await;
    assert_problem(&asked, StatusCode::UNAUTHORIZED, "second-factor-required");
    let wrong = login(&c.app, "ada", Some("000000".into())).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "login-failed");
    let answer = login(&c.app, "ada", Some(code_now(&c.admin_totp))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let cookie = cookie_of(&answer);
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();

    let add = |body: String, csrf: Option<&str>, content_type: &str| {
        let mut r = Request::post("/console/api/staff")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(t) = csrf {
            r = r.header(CSRF_HEADER, t);
        }
        r.body(Body::from(body)).unwrap()
    };
    let new_reviewer =
        serde_json::json!({"username": "sam", "role": "reviewer", "password": PW}).to_string();

    let refused = call(&c.app, add(new_reviewer.clone(), None, "application/json")).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "csrf");
    let added = call(
        &c.app,
        add(new_reviewer.clone(), Some(&csrf), "application/json"),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    assert_eq!(added.json["username"], "sam");
    assert!(added.json["totp_uri"].is_null());
    let again = call(
        &c.app,
        add(new_reviewer.clone(), Some(&csrf), "application/json"),
    )
    .await;
    assert_problem(&again, StatusCode::CONFLICT, "conflict");

    let admin = serde_json::json!({"username": "max", "role": "administrator", "password": PW});
    let added = call(
        &c.app,
        add(admin.to_string(), Some(&csrf), "application/json"),
    )
    .await;
    assert!(added.json["totp_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));

    // Bad input: each refusal says what is wrong, and nothing is added.
    let bad_role = serde_json::json!({"username": "x1", "role": "root", "password": PW});
    let answer = call(
        &c.app,
        add(bad_role.to_string(), Some(&csrf), "application/json"),
    )
    .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    assert!(answer.json["detail"].as_str().unwrap().contains("root"));
    let answer = call(
        &c.app,
        add("{not json".into(), Some(&csrf), "application/json"),
    )
    .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    let extra =
        serde_json::json!({"username": "x2", "role": "reviewer", "password": PW, "admin": true});
    let answer = call(
        &c.app,
        add(extra.to_string(), Some(&csrf), "application/json"),
    )
    .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    let answer = call(&c.app, add(new_reviewer.clone(), Some(&csrf), "text/plain")).await;
    assert_problem(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let huge = serde_json::json!({"username": "x3", "role": "reviewer", "password": "p".repeat(MAX_BODY_BYTES)});
    let answer = call(
        &c.app,
        add(huge.to_string(), Some(&csrf), "application/json"),
    )
    .await;
    assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, "too-large");

    let listed = call(
        &c.app,
        Request::get("/console/api/staff")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let names: Vec<&str> = listed.json["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "max", "olu", "rita", "sam"]);
    assert!(!listed.json.to_string().contains("argon2"));
}

#[tokio::test]
async fn failed_logins_lock_the_account_and_say_when_to_try_again() {
    let c = console("https://iis.example.gov").await;
    let bad = serde_json::json!({"username": "olu", "password": "not the passphrase"}).to_string();
    for _ in 0..Staff::DEFAULT_MAX_FAILURES {
        let answer = call(
            &c.app,
            post_json("/console/api/session")
                .body(Body::from(bad.clone()))
                .unwrap(),
        )
        .await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "login-failed");
    }
    let locked = login(&c.app, "olu", None).await;
    assert_problem(&locked, StatusCode::TOO_MANY_REQUESTS, "locked");
    let retry: i64 = locked.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry > 0 && retry <= Staff::DEFAULT_FAILURE_WINDOW,
        "{retry}"
    );
    // Another account is not affected.
    assert_eq!(login(&c.app, "rita", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn on_a_loopback_http_url_the_cookie_is_not_marked_secure() {
    let c = console("http://127.0.0.1:8080").await;
    let answer = login(&c.app, "rita", None).await;
    let set = answer.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.contains("HttpOnly") && !set.contains("Secure"), "{set}");
}
