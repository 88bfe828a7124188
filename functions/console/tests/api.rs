//! The console API over HTTP (the router `iisbulk serve` mounts): logins,
//! sessions, roles, CSRF, lockout, and staff administration, with the
//! problem documents a browser or a script reads.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use console::{router, ConsoleDeps, CSRF_HEADER, MAX_BODY_BYTES, PROBLEM_JSON};
use http_body_util::BodyExt;
use registry::patients::{PatientMatching, PersonStatus};
use registry::staff::{totp, NewStaff, Staff, StaffRole};
use registry::{AuKind, AuthorizedUser, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use tower::ServiceExt;

struct Console {
    _dir: tempfile::TempDir,
    app: axum::Router,
    admin_totp: String,
    patients: PatientMatching,
    store: Arc<dyn store::ItemStore>,
}

const PW: &str = "a long console passphrase";

async fn console(public_url: &str) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn store::ItemStore> =
        Arc::new(store::embedded::EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    let staff = Staff::new(store.clone());
    let patients = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
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
        app: router(Arc::new(ConsoleDeps::new(
            patients.clone(),
            Arc::new(registry::membership::JurisdictionPolicy::default()),
            public_url,
        ))),
        admin_totp: ada.totp_uri.unwrap(),
        patients,
        store,
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

// --- the possible-duplicate queue -------------------------------------------

fn vxu(facility: &str, control_id: &str, mrn: &str, given: &str, dob: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{facility}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{facility}|IISFAC\r\
PID|1||{mrn}^^^{facility}^MR||Jones^{given}^^^^^L|Smith^^^^^^M|{dob}|F|||12 Elm Street^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550142\r\
NK1|1|Jones^Maria^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||{control_id}-1^{facility}\rRXA|0|1|20240505||20^vaccine^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

/// Two clinics; clinic A's Katherine, then clinic B's "Baby Girl" Jones of
/// the same birth date and family: a possible match waiting for review.
/// Returns (Katherine's person, the provisional person).
async fn a_possible_duplicate(c: &Console, suffix: &str) -> (String, String) {
    let users = AuthorizedUsers::new(c.store.clone());
    let clinic = |id: String, facility: String| {
        users.add(
            NewAuthorizedUser {
                id: id.clone(),
                kind: AuKind::Clinic,
                name: id.clone(),
                facilities: vec![facility],
                username: id,
                password: "a long enough password".into(),
            },
            0,
        )
    };
    let a = clinic(format!("clinic-a{suffix}"), format!("FACA{suffix}"))
        .await
        .unwrap();
    let b = clinic(format!("clinic-b{suffix}"), format!("FACB{suffix}"))
        .await
        .unwrap();
    let intake = Intake::new(c.store.clone(), iz::IisIdentity::default());
    let send = |au: AuthorizedUser, message: String| {
        let (intake, patients) = (intake.clone(), c.patients.clone());
        async move {
            let d = intake
                .receive(
                    &au,
                    &Transport::Rest,
                    message.as_bytes(),
                    iz::Clock::at(1_790_000_000),
                )
                .await
                .unwrap();
            let id = d
                .message_id
                .unwrap_or_else(|| panic!("refused: {}", d.answer));
            patients.process(&id, 1_790_000_000_000).await.unwrap()
        }
    };
    let known = send(
        a,
        vxu(
            &format!("FACA{suffix}"),
            &format!("A{suffix}"),
            "A100",
            "Katherine",
            "20240305",
        ),
    )
    .await;
    let newborn = send(
        b,
        vxu(
            &format!("FACB{suffix}"),
            &format!("B{suffix}"),
            "B200",
            "Baby Girl",
            "20240305",
        ),
    )
    .await;
    assert_eq!(
        newborn.grade,
        matching::Grade::Possible,
        "the fixture makes a possible match"
    );
    (known.person, newborn.person)
}

async fn logged_in(c: &Console, username: &str) -> (String, String) {
    let answer = login(&c.app, username, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    (
        cookie_of(&answer),
        answer.json["csrf_token"].as_str().unwrap().to_owned(),
    )
}

fn decide(person: &str, cookie: &str, csrf: &str, body: serde_json::Value) -> Request<Body> {
    post_json(&format!("/console/api/review/{person}"))
        .header(header::COOKIE, cookie)
        .header(CSRF_HEADER, csrf)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_reviewer_sees_the_pair_with_its_evidence_and_merges_it_and_a_second_decision_is_stale() {
    let c = console("https://iis.example.gov").await;
    let (known, provisional) = a_possible_duplicate(&c, "").await;
    let (cookie, csrf) = logged_in(&c, "rita").await;

    let queue = call(
        &c.app,
        Request::get("/console/api/review?limit=10")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.json);
    let items = queue.json["queue"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["person"]["id"], provisional.as_str());
    assert_eq!(items[0]["person"]["status"], "provisional");
    // The incoming record: which Authorized User sent it, and its own
    // demographics (what the page filters by and shows beside candidates).
    let incoming = &items[0]["sources"][0];
    assert_eq!(incoming["authorized_user"], "clinic-b");
    assert_eq!(
        incoming["demographics"]["name"]["value"]["given"],
        "Baby Girl"
    );
    let candidate = &items[0]["candidates"][0];
    assert_eq!(candidate["person"]["id"], known.as_str());
    assert!(candidate["score"].is_number());
    assert!(
        !candidate["evidence"].is_null(),
        "the matcher's evidence is shown"
    );

    // An auditor may not work the queue.
    let (auditor_cookie, auditor_csrf) = logged_in(&c, "olu").await;
    let refused = call(
        &c.app,
        decide(
            &provisional,
            &auditor_cookie,
            &auditor_csrf,
            serde_json::json!({"decision": "same-person", "into": known}),
        ),
    )
    .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    // Bad decisions say what is wrong.
    for (body, kind, status) in [
        (
            serde_json::json!({"decision": "same-person"}),
            "bad-request",
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::json!({"decision": "maybe"}),
            "bad-request",
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::json!({"decision": "same-person", "into": provisional}),
            "bad-request",
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::json!({"decision": "same-person", "into": "P-nobody"}),
            "not-found",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let answer = call(&c.app, decide(&provisional, &cookie, &csrf, body.clone())).await;
        assert_problem(&answer, status, kind);
    }
    let unknown = call(
        &c.app,
        decide(
            "P-nobody",
            &cookie,
            &csrf,
            serde_json::json!({"decision": "different-people"}),
        ),
    )
    .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");

    let merged = call(
        &c.app,
        decide(&provisional, &cookie, &csrf, serde_json::json!({"decision": "same-person", "into": known, "reason": "newborn named later"})),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.json);
    assert_eq!(merged.json["merged_into"], known.as_str());
    let gone = c
        .patients
        .persons()
        .person(&provisional)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.status, PersonStatus::Merged);
    assert!(c
        .patients
        .persons()
        .review_queue(10)
        .await
        .unwrap()
        .is_empty());

    // Someone else decided first: 409 saying what happened.
    let stale = call(
        &c.app,
        decide(
            &provisional,
            &cookie,
            &csrf,
            serde_json::json!({"decision": "different-people"}),
        ),
    )
    .await;
    assert_problem(&stale, StatusCode::CONFLICT, "stale");
    assert!(
        stale.json["detail"].as_str().unwrap().contains(&known),
        "{}",
        stale.json
    );

    let decisions = registry::patients::decisions::recent_decisions(&c.store, 10)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].reviewer, "rita");
    assert!(decisions[0].same_person);
    assert_eq!(decisions[0].others, vec![known]);
    assert_eq!(decisions[0].reason, "newborn named later");
    // The two sides' source records then: the labelled pair for training.
    assert_eq!(decisions[0].sources.len(), 1);
    assert_eq!(decisions[0].other_sources.len(), 1);
    assert_ne!(decisions[0].sources, decisions[0].other_sources);
}

#[tokio::test]
async fn keeping_a_pair_apart_makes_the_person_active_and_is_recorded_as_different_people() {
    let c = console("https://iis.example.gov").await;
    let (known, provisional) = a_possible_duplicate(&c, "").await;
    let (cookie, csrf) = logged_in(&c, "rita").await;
    let no_csrf = call(
        &c.app,
        post_json(&format!("/console/api/review/{provisional}"))
            .header(header::COOKIE, &cookie)
            .body(Body::from(
                serde_json::json!({"decision": "different-people"}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_problem(&no_csrf, StatusCode::FORBIDDEN, "csrf");
    let kept = call(
        &c.app,
        decide(
            &provisional,
            &cookie,
            &csrf,
            serde_json::json!({"decision": "different-people", "reason": "twin"}),
        ),
    )
    .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.json);
    let person = c
        .patients
        .persons()
        .person(&provisional)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(person.status, PersonStatus::Active);
    let again = call(
        &c.app,
        decide(
            &provisional,
            &cookie,
            &csrf,
            serde_json::json!({"decision": "same-person", "into": known}),
        ),
    )
    .await;
    assert_problem(&again, StatusCode::CONFLICT, "stale");
    let decisions = registry::patients::decisions::recent_decisions(&c.store, 10)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 1);
    assert!(!decisions[0].same_person);
    assert_eq!(decisions[0].others, vec![known]);
    assert_eq!(decisions[0].sources.len(), 1);
    assert_eq!(decisions[0].other_sources.len(), 1);
    let bad_limit = call(
        &c.app,
        Request::get("/console/api/review?limit=0")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(&bad_limit, StatusCode::BAD_REQUEST, "bad-request");
}

/// The request as `iisbulk serve` and the Lambda hand it to the router:
/// with the caller's address.
fn from_address(mut request: Request<Body>, addr: &str) -> Request<Body> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    request
}

#[tokio::test]
async fn console_actions_are_recorded_with_the_address_they_came_from() {
    let c = console("https://iis.example.gov").await;
    let (known, provisional) = a_possible_duplicate(&c, "").await;
    // A refused login, a login, a read and a decision, each from an address.
    let wrong = serde_json::json!({"username": "rita", "password": "not the passphrase"});
    let refused = call(
        &c.app,
        from_address(
            post_json("/console/api/session")
                .body(Body::from(wrong.to_string()))
                .unwrap(),
            "198.51.100.9:50000",
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.json);
    let body = serde_json::json!({ "username": "rita", "password": PW });
    let answer = call(
        &c.app,
        from_address(
            post_json("/console/api/session")
                .body(Body::from(body.to_string()))
                .unwrap(),
            "192.0.2.7:41000",
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let cookie = cookie_of(&answer);
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();
    let read = call(
        &c.app,
        from_address(
            Request::get("/console/api/review")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
            "[2001:db8::5]:443",
        ),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    let merged = call(
        &c.app,
        from_address(
            decide(
                &provisional,
                &cookie,
                &csrf,
                serde_json::json!({"decision": "same-person", "into": known}),
            ),
            "192.0.2.7:41001",
        ),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.json);

    let trail = registry::audit::AuditTrail::new(c.store.clone());
    let events = trail
        .search(&registry::audit::AuditSearch {
            actor: Some("staff/rita".into()),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap();
    let source_of = |action: &str| {
        events
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("{action} in {events:?}"))
            .source
            .clone()
    };
    assert_eq!(source_of("console.login").as_deref(), Some("192.0.2.7"));
    assert_eq!(
        source_of("console.review.read").as_deref(),
        Some("2001:db8::5")
    );
    assert_eq!(
        source_of("console.review.merge").as_deref(),
        Some("192.0.2.7")
    );
    let failed = trail
        .search(&registry::audit::AuditSearch {
            actor: Some("unauthenticated/rita".into()),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "console.login" && e.outcome == registry::audit::Outcome::Failure)
        .unwrap();
    assert_eq!(failed.source.as_deref(), Some("198.51.100.9"));
    // Without an address (a caller the transport could not name), none.
    let plain = call(
        &c.app,
        Request::get("/console/api/review")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(plain.status, StatusCode::OK);
    let newest = trail
        .search(&registry::audit::AuditSearch {
            actor: Some("staff/rita".into()),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].action, "console.review.read");
    assert_eq!(newest[0].source, None);
}

/// `n` more provisional persons after `template` (copies of its profile
/// and its one source record), the i-th with a source record from
/// `au_of(i)`: a queue longer than one page of the server's pass over it.
async fn more_waiting(c: &Console, template: &str, n: usize, au_of: impl Fn(usize) -> String) {
    use registry::keys;
    let person_item = c.store.get(&keys::person(template)).await.unwrap().unwrap();
    let mut person: serde_json::Value = serde_json::from_slice(&person_item.data).unwrap();
    let source_id = c.patients.persons().sources_of(template).await.unwrap()[0].clone();
    let link = c
        .store
        .get(&keys::person_source(template, &source_id))
        .await
        .unwrap()
        .unwrap();
    let source_item = c
        .store
        .get(&keys::source(&source_id))
        .await
        .unwrap()
        .unwrap();
    let mut source: serde_json::Value = serde_json::from_slice(&source_item.data).unwrap();
    let created = person["created_at"].as_i64().unwrap();
    for i in 0..n {
        let id = format!("P-waiting-{i:03}");
        let sid = format!("s-waiting-{i:03}");
        let at = created + 1 + i as i64;
        person["id"] = id.clone().into();
        person["created_at"] = at.into();
        source["id"] = sid.clone().into();
        source["au"] = au_of(i).into();
        source["person"] = id.clone().into();
        for item in [
            store::Item::new(keys::person(&id), person.to_string().into_bytes())
                .with_gsi1(keys::review_queue(at, &id)),
            store::Item::new(keys::person_source(&id, &sid), link.data.clone()),
            store::Item::new(keys::source(&sid), source.to_string().into_bytes()),
        ] {
            c.store.put(item, store::Condition::Absent).await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_queue_is_filtered_by_authorized_user_on_the_server_over_the_whole_queue() {
    let c = console("https://iis.example.gov").await;
    let (_, provisional) = a_possible_duplicate(&c, "").await;
    // 250 more (beyond one 200-person page of the server's pass), every
    // third from clinic-x: 84 of them, the oldest P-waiting-000.
    more_waiting(&c, &provisional, 250, |i| {
        if i % 3 == 0 { "clinic-x" } else { "clinic-y" }.to_owned()
    })
    .await;
    let (cookie, _) = logged_in(&c, "rita").await;
    let get = |query: &str| {
        Request::get(format!("/console/api/review?{query}"))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };

    let x = call(&c.app, get("au=clinic-x&limit=5")).await;
    assert_eq!(x.status, StatusCode::OK, "{}", x.json);
    assert_eq!(x.json["waiting"], 84, "counted over the whole queue");
    let items = x.json["queue"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["person"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "P-waiting-000",
            "P-waiting-003",
            "P-waiting-006",
            "P-waiting-009",
            "P-waiting-012"
        ],
        "the oldest first"
    );
    for item in items {
        assert_eq!(item["sources"][0]["authorized_user"], "clinic-x");
    }

    let b = call(&c.app, get("au=clinic-b")).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.json);
    assert_eq!(b.json["waiting"], 1);
    assert_eq!(b.json["queue"][0]["person"]["id"], provisional.as_str());
    // clinic-a's record made an active person: nothing of it waits.
    let a = call(&c.app, get("au=clinic-a")).await;
    assert_eq!(a.json["waiting"], 0);
    assert_eq!(a.json["queue"].as_array().unwrap().len(), 0);
    let unknown = call(&c.app, get("au=nobody")).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.json["waiting"], 0);

    // Unfiltered: the oldest, and everything counted.
    let all = call(&c.app, get("limit=3")).await;
    assert_eq!(all.json["waiting"], 251);
    assert_eq!(all.json["queue"].as_array().unwrap().len(), 3);
    assert_eq!(all.json["queue"][0]["person"]["id"], provisional.as_str());

    let long = format!("au={}", "a".repeat(65));
    for bad in [
        "au=",
        "au=a%2Fb",
        "au=a%20b",
        long.as_str(),
        "au=clinic-x&limit=501",
        "auth=x",
    ] {
        let answer = call(&c.app, get(bad)).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }

    // The filtered read is in the trail, naming the Authorized User.
    let trail = registry::audit::AuditTrail::new(c.store.clone());
    let events = trail
        .search(&registry::audit::AuditSearch {
            subject: Some("AuthorizedUser/clinic-x".into()),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.action == "console.review.read"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_person_page_shows_sources_history_and_groups_and_a_merge_can_be_undone() {
    let c = console("https://iis.example.gov").await;
    let (known, provisional) = a_possible_duplicate(&c, "").await;
    let (cookie, csrf) = logged_in(&c, "rita").await;
    let merged = call(
        &c.app,
        decide(
            &provisional,
            &cookie,
            &csrf,
            serde_json::json!({"decision": "same-person", "into": known}),
        ),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.json);

    let page = |id: String| {
        Request::get(format!("/console/api/persons/{id}"))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let shown = call(&c.app, page(known.clone())).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.json);
    assert_eq!(shown.json["person"]["status"], "active");
    assert_eq!(
        shown.json["person"]["demographics"]["name"]["value"]["given"], "Katherine",
        "the other clinic's later BABY GIRL record does not rename the child"
    );
    let sources = shown.json["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{}", shown.json);
    assert!(shown.json["immunizations"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));
    assert!(shown.json["groups"].is_array());
    let moved = sources
        .iter()
        .find(|s| s["link"]["how"] == "manual")
        .unwrap_or_else(|| panic!("the merged source is a manual link: {}", shown.json));
    let moved_id = moved["id"].as_str().unwrap().to_owned();
    assert_problem(
        &call(&c.app, page("P-nobody".into())).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );

    let unmerge = |person: &str, body: serde_json::Value| {
        post_json(&format!("/console/api/persons/{person}/unmerge"))
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, &csrf)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let wrong_person = call(
        &c.app,
        unmerge(&provisional, serde_json::json!({"source": moved_id})),
    )
    .await;
    assert_problem(&wrong_person, StatusCode::CONFLICT, "stale");
    let undone = call(
        &c.app,
        unmerge(
            &known,
            serde_json::json!({"source": moved_id, "reason": "a sibling"}),
        ),
    )
    .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.json);
    let new_person = undone.json["person"].as_str().unwrap().to_owned();
    assert_ne!(new_person, known);
    let after = call(&c.app, page(known.clone())).await;
    assert_eq!(after.json["sources"].as_array().unwrap().len(), 1);
    let only = after.json["sources"][0]["id"].as_str().unwrap().to_owned();
    let last = call(&c.app, unmerge(&known, serde_json::json!({"source": only}))).await;
    assert_problem(&last, StatusCode::CONFLICT, "only-source");

    let decisions = registry::patients::decisions::recent_decisions(&c.store, 10)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(!decisions[0].same_person, "newest first: the unmerge");
    assert_eq!(decisions[0].person, new_person);
    assert_eq!(decisions[0].others, vec![known]);
    assert_eq!(decisions[0].sources, vec![moved_id.clone()]);
    assert_eq!(decisions[0].other_sources, vec![only]);
}

/// The OpenAPI document and the router agree: every documented path and
/// method is routed (an unauthenticated call gets the API's own answer,
/// never a 404 or 405), and the document is served as JSON.
#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_that_answer() {
    let c = console("https://iis.example.gov").await;
    let served = call(
        &c.app,
        Request::get("/console/api/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.json["openapi"], "3.1.0");
    let paths = served.json["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, methods) in paths {
        let concrete = path
            .replace("{person}", "P-example")
            .replace("{au}", "AU-example")
            .replace("{client}", "C-example")
            .replace("{group}", "G-example");
        for method in methods.as_object().unwrap().keys() {
            operations += 1;
            let answer = c
                .app
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method.to_uppercase().as_str())
                        .uri(&concrete)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert!(
                answer.status() != StatusCode::NOT_FOUND
                    && answer.status() != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed ({})",
                answer.status()
            );
        }
    }
    assert_eq!(operations, 22, "documented operations");
    // And an undocumented path is not routed.
    let answer = c
        .app
        .clone()
        .oneshot(
            Request::get("/console/api/nothing")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_administrator_onboards_an_authorized_user_with_its_group() {
    let c = console("https://iis.example.gov").await;
    let answer = login(&c.app, "ada", Some(code_now(&c.admin_totp))).await;
    let cookie = cookie_of(&answer);
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();
    let onboard = |body: serde_json::Value, cookie: &str, csrf: &str| {
        post_json("/console/api/authorized-users")
            .header(header::COOKIE, cookie)
            .header(CSRF_HEADER, csrf)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let valley = serde_json::json!({
        "id": "valley-peds", "kind": "clinic", "name": "Valley Pediatrics",
        "facilities": ["VALLEYPEDS"], "username": "valley", "password": "a long enough password"
    });
    let added = call(&c.app, onboard(valley.clone(), &cookie, &csrf)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    assert!(
        added.json["group"].is_string(),
        "a clinic gets its Group: {}",
        added.json
    );
    assert!(!added.json.to_string().contains("argon2"));
    let again = call(&c.app, onboard(valley.clone(), &cookie, &csrf)).await;
    assert_problem(&again, StatusCode::CONFLICT, "conflict");
    for (field, value) in [
        ("kind", serde_json::json!("hospital")),
        ("facilities", serde_json::json!([])),
    ] {
        let mut bad = valley.clone();
        bad[field] = value;
        bad["id"] = "other".into();
        let answer = call(&c.app, onboard(bad, &cookie, &csrf)).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    let no_csrf = call(&c.app, onboard(valley.clone(), &cookie, "forged")).await;
    assert_problem(&no_csrf, StatusCode::FORBIDDEN, "csrf");
    let (reviewer_cookie, reviewer_csrf) = logged_in(&c, "rita").await;
    let refused = call(&c.app, onboard(valley, &reviewer_cookie, &reviewer_csrf)).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");

    let listed = call(
        &c.app,
        Request::get("/console/api/authorized-users")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let ids: Vec<&str> = listed.json["authorized_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["valley-peds"]);
}

#[tokio::test]
async fn an_auditor_finds_who_did_what_to_whom_and_failed_logins_and_nobody_else_may_look() {
    let c = console("https://iis.example.gov").await;
    let (known, provisional) = a_possible_duplicate(&c, "").await;
    let (cookie, csrf) = logged_in(&c, "rita").await;
    let queue = call(
        &c.app,
        Request::get("/console/api/review")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(queue.status, StatusCode::OK);
    let merged = call(
        &c.app,
        decide(
            &provisional,
            &cookie,
            &csrf,
            serde_json::json!({"decision": "same-person", "into": known}),
        ),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK);
    let bad =
        serde_json::json!({"username": "mallory", "password": "guessing passwords"}).to_string();
    let failed = call(
        &c.app,
        post_json("/console/api/session")
            .body(Body::from(bad))
            .unwrap(),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);

    let refused = call(
        &c.app,
        Request::get("/console/api/audit")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");

    let (auditor, _) = logged_in(&c, "olu").await;
    let audit = |query: String| {
        Request::get(format!("/console/api/audit{query}"))
            .header(header::COOKIE, &auditor)
            .body(Body::empty())
            .unwrap()
    };
    let by_rita = call(&c.app, audit("?actor=staff/rita".into())).await;
    assert_eq!(by_rita.status, StatusCode::OK, "{}", by_rita.json);
    let actions: Vec<&str> = by_rita.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "console.review.merge",
            "console.review.read",
            "console.login"
        ],
        "newest first"
    );
    let about = call(&c.app, audit(format!("?subject=Person/{provisional}"))).await;
    let events = about.json["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"]["id"], "rita");
    assert_eq!(events[0]["subjects"][1], format!("Person/{known}"));
    assert!(
        !about.json.to_string().contains("Katherine"),
        "no PHI in the trail"
    );

    let everything = call(&c.app, audit(String::new())).await;
    let failures: Vec<&serde_json::Value> = everything.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "failure")
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["actor"]["kind"], "unauthenticated");
    assert_eq!(failures[0]["actor"]["id"], "mallory");
    let bad_query = call(&c.app, audit("?from=last-week".into())).await;
    assert_problem(&bad_query, StatusCode::BAD_REQUEST, "bad-request");
}

/// A public JWKS with one fresh ES384 key named `kid`.
fn public_jwks(kid: &str) -> serde_json::Value {
    use registry::smart::jose::SigningKey;
    let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    serde_json::json!({ "keys": [key.public_jwk(kid)] })
}

#[tokio::test]
async fn an_administrator_registers_rotates_and_removes_a_smart_client_and_each_is_audited() {
    let c = console("https://iis.example.gov").await;
    let answer = login(&c.app, "ada", Some(code_now(&c.admin_totp))).await;
    let cookie = cookie_of(&answer);
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();
    let onboarded = call(
        &c.app,
        post_json("/console/api/authorized-users")
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, &csrf)
            .body(Body::from(
                serde_json::json!({
                    "id": "valley-peds", "kind": "clinic", "name": "Valley Pediatrics",
                    "facilities": ["VALLEYPEDS"], "username": "valley",
                    "password": "a long enough password"
                })
                .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(onboarded.status, StatusCode::CREATED, "{}", onboarded.json);
    let register = |au: &str, body: serde_json::Value, cookie: &str, csrf: &str| {
        post_json(&format!("/console/api/authorized-users/{au}/clients"))
            .header(header::COOKIE, cookie)
            .header(CSRF_HEADER, csrf)
            .body(Body::from(body.to_string()))
            .unwrap()
    };

    // Registered with its public keys: a client_id, the default read scope.
    let added = call(
        &c.app,
        register(
            "valley-peds",
            serde_json::json!({ "jwks": public_jwks("k1") }),
            &cookie,
            &csrf,
        ),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    let client_id = added.json["id"].as_str().unwrap().to_owned();
    assert_eq!(added.json["authorized_user"], "valley-peds");
    assert_eq!(added.json["scope"], "system/*.rs");
    assert_eq!(added.json["key_ids"], serde_json::json!(["k1"]));
    // A JWKS pasted as text is the same thing.
    let pasted = call(
        &c.app,
        register(
            "valley-peds",
            serde_json::json!({ "jwks": public_jwks("k9").to_string(), "scope": "system/Patient.rs" }),
            &cookie,
            &csrf,
        ),
    )
    .await;
    assert_eq!(pasted.status, StatusCode::CREATED, "{}", pasted.json);

    // Bad input: a private key is not a JWKS; both or neither of jwks and
    // jwks_url; a write scope; an unknown Authorized User; a forged CSRF
    // token; a reviewer.
    for (body, status, kind) in [
        (
            serde_json::json!({ "jwks": { "keys": [{ "kty": "EC", "crv": "P-384" }] } }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "jwks": public_jwks("k2"), "jwks_url": "https://ehr.example/jwks" }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "jwks": public_jwks("k2"), "scope": "system/Patient.write" }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "jwks": public_jwks("k2"), "unknown": 1 }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
    ] {
        let answer = call(
            &c.app,
            register("valley-peds", body.clone(), &cookie, &csrf),
        )
        .await;
        assert_problem(&answer, status, kind);
    }
    let unknown = call(
        &c.app,
        register(
            "nobody",
            serde_json::json!({ "jwks": public_jwks("k2") }),
            &cookie,
            &csrf,
        ),
    )
    .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");
    let forged = call(
        &c.app,
        register(
            "valley-peds",
            serde_json::json!({ "jwks": public_jwks("k2") }),
            &cookie,
            "forged",
        ),
    )
    .await;
    assert_problem(&forged, StatusCode::FORBIDDEN, "csrf");
    let (reviewer_cookie, reviewer_csrf) = logged_in(&c, "rita").await;
    let refused = call(
        &c.app,
        register(
            "valley-peds",
            serde_json::json!({ "jwks": public_jwks("k2") }),
            &reviewer_cookie,
            &reviewer_csrf,
        ),
    )
    .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");

    // Listed; rotated to a new key; removed; gone.
    let list = || {
        Request::get("/console/api/authorized-users/valley-peds/clients")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let listed = call(&c.app, list()).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json["clients"].as_array().unwrap().len(), 2);
    let rotated = call(
        &c.app,
        Request::put(format!("/console/api/clients/{client_id}/jwks"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, &csrf)
            .body(Body::from(
                serde_json::json!({ "jwks": public_jwks("k2") }).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    assert_eq!(rotated.json["key_ids"], serde_json::json!(["k2"]));
    let remove = || {
        Request::delete(format!("/console/api/clients/{client_id}"))
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, &csrf)
            .body(Body::empty())
            .unwrap()
    };
    let removed = call(&c.app, remove()).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let again = call(&c.app, remove()).await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not-found");
    let listed = call(&c.app, list()).await;
    assert_eq!(listed.json["clients"].as_array().unwrap().len(), 1);

    // Each change is in the audit trail with the client and its owner.
    let (auditor_cookie, _) = logged_in(&c, "olu").await;
    let trail = call(
        &c.app,
        Request::get(format!("/console/api/audit?subject=Client/{client_id}"))
            .header(header::COOKIE, &auditor_cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.json);
    let mut actions: Vec<&str> = trail.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "console.client.add",
            "console.client.remove",
            "console.client.rotate-keys"
        ]
    );
}

#[tokio::test]
async fn the_console_page_and_its_assets_are_served_from_the_binary_with_a_strict_policy() {
    let c = console("https://iis.example.gov").await;
    for (uri, content_type) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ] {
        let answer = c
            .app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            answer.headers()[header::CONTENT_TYPE],
            content_type,
            "{uri}"
        );
        let policy = answer.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(answer.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert!(!body.is_empty(), "{uri}");
    }
    let bare = c
        .app
        .clone()
        .oneshot(Request::get("/console").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[header::LOCATION], "console/");
}

/// Behind an API Gateway stage the browser asks for `/prod/console`, and
/// the router (the stage taken off by lambda-edge) sees `/console`: the
/// redirect is relative, so the browser goes to `/prod/console/`, and the
/// session cookie names `/prod/console`, so the browser sends it back to
/// `/prod/console/api/…`.
#[tokio::test]
async fn behind_a_stage_the_redirect_stays_in_the_stage_and_the_cookie_names_its_path() {
    let c = console("https://abc123.execute-api.us-east-1.amazonaws.com/prod").await;
    let bare = c
        .app
        .clone()
        .oneshot(Request::get("/console").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    let location = bare.headers()[header::LOCATION].to_str().unwrap();
    assert!(!location.starts_with('/'), "relative: {location}");
    // RFC 3986 §5.2: a relative path replaces the last segment of the base.
    let asked = "/prod/console";
    let resolved = format!("{}{location}", &asked[..=asked.rfind('/').unwrap()]);
    assert_eq!(resolved, "/prod/console/");

    let answer = login(&c.app, "rita", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let set = answer.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.contains("; Path=/prod/console;"), "{set}");
    let logged_out = call(
        &c.app,
        Request::delete("/console/api/session")
            .header(header::COOKIE, cookie_of(&answer))
            .header(CSRF_HEADER, answer.json["csrf_token"].as_str().unwrap())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let cleared = logged_out.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.contains("; Path=/prod/console;"),
        "the same path clears it: {cleared}"
    );
}

#[tokio::test]
async fn an_administrator_reads_a_group_removes_a_member_and_resets_it_and_each_is_audited() {
    use registry::membership::{Association, Certainty, Evidence, EvidenceKind, Groups};
    let c = console("https://iis.example.gov").await;
    let users = AuthorizedUsers::new(c.store.clone());
    let au = registry::membership::onboard(
        &users,
        NewAuthorizedUser {
            id: "valley-peds".into(),
            kind: AuKind::Clinic,
            name: "Valley Pediatrics".into(),
            facilities: vec!["VALLEYPEDS".into()],
            username: "valley".into(),
            password: "a long enough password".into(),
        },
        0,
        &registry::membership::JurisdictionPolicy::default(),
    )
    .await
    .unwrap();
    let group = au.group.clone().unwrap();
    let groups = Groups::new(c.store.clone());
    for (i, person) in ["P-ada", "P-bo", "P-cy"].iter().enumerate() {
        let evidence = Evidence {
            kind: EvidenceKind::Vxu,
            message: format!("M{i}"),
            certainty: Certainty::New,
            at: 1_790_000_000_000 + i as i64,
            policy: "test".into(),
            from_person: None,
            basis: None,
        };
        groups
            .add(&group, person, &evidence, Association::Multiple)
            .await
            .unwrap();
    }
    let answer = login(&c.app, "ada", Some(code_now(&c.admin_totp))).await;
    let cookie = cookie_of(&answer);
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();
    let read = |query: &str| {
        Request::get(format!("/console/api/groups/{group}{query}"))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let shown = call(&c.app, read("")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.json);
    assert_eq!(shown.json["group"]["au"], "valley-peds");
    assert_eq!(shown.json["quantity"], 3);
    assert_eq!(shown.json["members"].as_array().unwrap().len(), 3);
    assert_eq!(shown.json["members"][0]["member"]["first"]["kind"], "vxu");
    // Paged: two, then the rest.
    let first = call(&c.app, read("?limit=2")).await;
    assert_eq!(first.json["members"].as_array().unwrap().len(), 2);
    let next = first.json["next"].as_str().unwrap().to_owned();
    let rest = call(&c.app, read(&format!("?limit=2&after={next}"))).await;
    assert_eq!(rest.json["members"].as_array().unwrap().len(), 1);
    for bad in ["?limit=0", "?removed=maybe", "?colour=red"] {
        assert_problem(
            &call(&c.app, read(bad)).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
        );
    }

    let post = |uri: String, body: serde_json::Value, csrf: &str| {
        post_json(&uri)
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, csrf)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let remove = |person: &str| format!("/console/api/groups/{group}/members/{person}/remove");
    let removed = call(
        &c.app,
        post(
            remove("P-bo"),
            serde_json::json!({"reason": "moved out of state"}),
            &csrf,
        ),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.json);
    let again = call(&c.app, post(remove("P-bo"), serde_json::json!({}), &csrf)).await;
    assert_problem(&again, StatusCode::CONFLICT, "stale");
    assert!(again.json["detail"]
        .as_str()
        .unwrap()
        .contains("moved out of state"));
    let stranger = call(&c.app, post(remove("P-zed"), serde_json::json!({}), &csrf)).await;
    assert_problem(&stranger, StatusCode::NOT_FOUND, "not-found");
    let forged = call(
        &c.app,
        post(remove("P-ada"), serde_json::json!({}), "forged"),
    )
    .await;
    assert_problem(&forged, StatusCode::FORBIDDEN, "csrf");
    let member = groups.member(&group, "P-bo").await.unwrap().unwrap();
    assert!(!member.active);
    assert!(member
        .removed_because
        .unwrap()
        .contains("removed by ada at the console: moved out of state"));
    // The removed member shows only when asked for.
    assert_eq!(call(&c.app, read("")).await.json["quantity"], 2);
    assert_eq!(
        call(&c.app, read("?removed=true")).await.json["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Reset: every active member leaves; a reviewer may not.
    let (reviewer_cookie, reviewer_csrf) = logged_in(&c, "rita").await;
    let refused = call(
        &c.app,
        post_json(&format!("/console/api/groups/{group}/reset"))
            .header(header::COOKIE, &reviewer_cookie)
            .header(CSRF_HEADER, &reviewer_csrf)
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let reset = call(
        &c.app,
        post(
            format!("/console/api/groups/{group}/reset"),
            serde_json::json!({"reason": "annual re-attestation"}),
            &csrf,
        ),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.json);
    assert_eq!(reset.json["removed"], 2);
    assert_eq!(groups.quantity(&group).await.unwrap(), 0);
    let unknown = call(
        &c.app,
        post(
            "/console/api/groups/nope/reset".into(),
            serde_json::json!({}),
            &csrf,
        ),
    )
    .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");

    let (auditor_cookie, _) = logged_in(&c, "olu").await;
    let trail = call(
        &c.app,
        Request::get(format!("/console/api/audit?subject=Group/{group}"))
            .header(header::COOKIE, &auditor_cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let actions: Vec<&str> = trail.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "console.group.read",
        "console.group.remove-member",
        "console.group.reset",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn an_auditor_exports_the_trail_as_fhir_audit_events_and_the_export_is_itself_recorded() {
    let c = console("https://iis.example.gov").await;
    let (known, provisional) = a_possible_duplicate(&c, "").await;
    let (cookie, csrf) = logged_in(&c, "rita").await;
    let merged = call(
        &c.app,
        decide(
            &provisional,
            &cookie,
            &csrf,
            serde_json::json!({"decision": "same-person", "into": known, "reason": "one newborn"}),
        ),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.json);
    let failed = call(
        &c.app,
        post_json("/console/api/session")
            .body(Body::from(
                serde_json::json!({"username": "rita", "password": "not the passphrase"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);

    let export = |cookie: &str, query: &str| {
        Request::get(format!("/console/api/audit/export{query}"))
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap()
    };
    let refused = call(&c.app, export(&cookie, "")).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");

    let (auditor, _) = logged_in(&c, "olu").await;
    let answer = c.app.clone().oneshot(export(&auditor, "")).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()[header::CONTENT_TYPE],
        "application/fhir+ndjson"
    );
    assert!(answer.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"audit-"));
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["subtype"][0]["code"].as_str().unwrap())
        .collect();
    for action in ["console.login", "console.review.merge"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let merge = events
        .iter()
        .find(|e| e["subtype"][0]["code"] == "console.review.merge")
        .unwrap();
    assert_eq!(merge["resourceType"], "AuditEvent");
    assert_eq!(merge["action"], "U");
    assert_eq!(merge["outcome"], "0");
    assert_eq!(
        merge["entity"][0]["what"]["reference"],
        format!("Patient/{provisional}")
    );
    assert_eq!(merge["agent"][0]["who"]["identifier"]["value"], "rita");
    // A failed login is an authentication event that failed.
    assert!(events
        .iter()
        .any(|e| e["type"]["code"] == "110114" && e["outcome"] == "4"));
    // No PHI: the fixture's names and birth date appear nowhere.
    for phi in ["Katherine", "Baby", "Jones", "20240305", "2024-03-05"] {
        assert!(!text.contains(phi), "{phi} in the export");
    }
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join("console-audit-event.json"),
            serde_json::to_vec_pretty(merge).unwrap(),
        )
        .unwrap();
    }
    for bad in ["?limit=10001", "?from=yesterday"] {
        assert_problem(
            &call(&c.app, export(&auditor, bad)).await,
            StatusCode::BAD_REQUEST,
            "bad-request",
        );
    }

    // The export, and the auditor's searches, are in the trail themselves.
    let own = call(
        &c.app,
        Request::get("/console/api/audit?actor=staff/olu")
            .header(header::COOKIE, &auditor)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let own_actions: Vec<&str> = own.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        own_actions.contains(&"console.audit.export"),
        "{own_actions:?}"
    );
    assert!(
        own_actions.contains(&"console.audit.search"),
        "{own_actions:?}"
    );
}

#[tokio::test]
async fn an_administrator_edits_an_authorized_user_all_at_once_or_not_at_all() {
    let c = console("https://iis.example.gov").await;
    let users = AuthorizedUsers::new(c.store.clone());
    for (id, facility) in [("valley-peds", "VALLEYPEDS"), ("hilltop", "HILLTOP")] {
        users
            .add(
                NewAuthorizedUser {
                    id: id.into(),
                    kind: AuKind::Clinic,
                    name: id.into(),
                    facilities: vec![facility.into()],
                    username: id.into(),
                    password: "a long enough password".into(),
                },
                0,
            )
            .await
            .unwrap();
    }
    let before = users.get("valley-peds").await.unwrap().unwrap();
    let answer = login(&c.app, "ada", Some(code_now(&c.admin_totp))).await;
    let cookie = cookie_of(&answer);
    let csrf = answer.json["csrf_token"].as_str().unwrap().to_owned();
    let edit = |au: &str, body: serde_json::Value, csrf: &str| {
        Request::patch(format!("/console/api/authorized-users/{au}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, csrf)
            .body(Body::from(body.to_string()))
            .unwrap()
    };

    let edited = call(
        &c.app,
        edit(
            "valley-peds",
            serde_json::json!({
                "name": "Valley Pediatrics & Family",
                "add_facilities": ["VALLEYPEDS-2"],
                "password": "a brand new password"
            }),
            &csrf,
        ),
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.json);
    assert_eq!(edited.json["name"], "Valley Pediatrics & Family");
    assert_eq!(
        edited.json["facilities"],
        serde_json::json!(["VALLEYPEDS", "VALLEYPEDS-2"])
    );
    let after = users.get("valley-peds").await.unwrap().unwrap();
    assert_ne!(
        after.password_hash, before.password_hash,
        "the login was reset"
    );

    // A facility another Authorized User sends for: 409, and nothing of the
    // edit is applied (the name stays, the facility it would drop stays).
    let taken = call(
        &c.app,
        edit(
            "valley-peds",
            serde_json::json!({
                "name": "Renamed",
                "add_facilities": ["HILLTOP"],
                "remove_facilities": ["VALLEYPEDS"]
            }),
            &csrf,
        ),
    )
    .await;
    assert_problem(&taken, StatusCode::CONFLICT, "conflict");
    let unchanged = users.get("valley-peds").await.unwrap().unwrap();
    assert_eq!(unchanged.name, "Valley Pediatrics & Family");
    assert!(unchanged.sends_for("VALLEYPEDS"));

    // Moving a facility: dropped here, it can be given to another.
    let moved = call(
        &c.app,
        edit(
            "valley-peds",
            serde_json::json!({ "remove_facilities": ["VALLEYPEDS-2"] }),
            &csrf,
        ),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.json);
    let given = call(
        &c.app,
        edit(
            "hilltop",
            serde_json::json!({ "add_facilities": ["VALLEYPEDS-2"] }),
            &csrf,
        ),
    )
    .await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.json);

    for (body, status, kind) in [
        (
            serde_json::json!({}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "remove_facilities": ["VALLEYPEDS"] }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "remove_facilities": ["NOT-OURS"] }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "password": "short" }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "add_facilities": ["BAD|ID"] }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            serde_json::json!({ "colour": "red" }),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
    ] {
        let answer = call(&c.app, edit("valley-peds", body.clone(), &csrf)).await;
        assert_problem(&answer, status, kind);
    }
    let unknown = call(
        &c.app,
        edit("nobody", serde_json::json!({ "name": "X" }), &csrf),
    )
    .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");
    let forged = call(
        &c.app,
        edit("valley-peds", serde_json::json!({ "name": "X" }), "forged"),
    )
    .await;
    assert_problem(&forged, StatusCode::FORBIDDEN, "csrf");

    // Recorded, without the password.
    let (auditor, _) = logged_in(&c, "olu").await;
    let trail = call(
        &c.app,
        Request::get("/console/api/audit?subject=AuthorizedUser/valley-peds")
            .header(header::COOKIE, &auditor)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let text = trail.json.to_string();
    assert!(text.contains("console.authorized-user.edit"), "{text}");
    assert!(text.contains("HL7 password reset"), "{text}");
    assert!(!text.contains("a brand new password"));
}
