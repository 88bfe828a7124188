//! SMART Backend Services over HTTP, through the bulk-api router: every
//! token endpoint rule with the OAuth error it calls for, the per-source
//! rate limit (no per-client lockout), the audit trail of token requests,
//! bearer checks on the FHIR routes, and isolation between two Authorized
//! Users who share a patient. Logs are captured and searched for the secrets
//! used.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bulk_api::{router, BulkDeps, RateLimit, SourceLimiter};
use http_body_util::BodyExt;
use iz::{Clock, IisIdentity};
use registry::audit::{ActorKind, AuditEvent, AuditSearch, AuditTrail, Outcome};
use registry::membership::{change_event, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::{Clients, JwksSource, ASSERTION_TYPE};
use registry::{AuKind, AuthorizedUser, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::{ChangeFeed, ItemStore};
use tower::ServiceExt;

const BASE: &str = "https://iis.example.org";
const TOKEN_URL: &str = "https://iis.example.org/auth/token";
const JWKS_URL: &str = "https://ehr.example.org/.well-known/jwks.json";

/// JWKS URLs answered from memory.
#[derive(Default)]
struct Published(Mutex<HashMap<String, String>>);

#[async_trait]
impl JwksSource for Published {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        self.0.lock().unwrap().get(url).cloned().ok_or("404".into())
    }
}

/// A tracing writer that keeps every log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Iis {
    _dir: tempfile::TempDir,
    store: Arc<dyn ItemStore>,
    embedded: Arc<EmbeddedStore>,
    app: axum::Router,
    clinic_a: AuthorizedUser,
    clinic_b: AuthorizedUser,
    /// ES384 key and client of clinic A, RS384 of clinic B, JWKS URL client of A.
    key_a: SigningKey,
    client_a: String,
    key_b: SigningKey,
    client_b: String,
    client_url: String,
    key_url: SigningKey,
    /// The person both clinics reported, and one only B reported.
    shared: String,
    only_b: String,
}

fn vxu(fac: &str, ctl: &str, given: &str, family: &str, dob: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{ctl}-MRN^^^{fac}^MR||{family}^{given}^^^^^L|Eze^^^^^^M|{dob}|F|||7 Birch Ln^^Lansing^MI^48910^USA^P\r\
ORC|RE||{ctl}-1^{fac}\rRXA|0|1|{dob}||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

/// The IIS with the token endpoint limited to `limit` per source address.
async fn iis(limit: RateLimit) -> Iis {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let store: Arc<dyn ItemStore> = embedded.clone();
    let policy = Arc::new(JurisdictionPolicy::default());
    let users = AuthorizedUsers::new(store.clone());
    let mut made = Vec::new();
    for (id, fac) in [("clinic-a", "FACA"), ("clinic-b", "FACB")] {
        made.push(
            registry::membership::onboard(
                &users,
                NewAuthorizedUser {
                    id: id.into(),
                    kind: AuKind::Clinic,
                    name: id.into(),
                    facilities: vec![fac.into()],
                    username: id.into(),
                    password: "a long enough password".into(),
                },
                0,
                &policy,
            )
            .await
            .unwrap(),
        );
    }
    let clinic_b = made.pop().unwrap();
    let clinic_a = made.pop().unwrap();

    // Patients: one reported by both clinics, one by B only.
    let matching = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let intake = Intake::new(store.clone(), IisIdentity::default());
    let mut persons = Vec::new();
    for (au, msg) in [
        (&clinic_a, vxu("FACA", "A1", "Chioma", "Okafor", "20240305")),
        (&clinic_b, vxu("FACB", "B1", "Chioma", "Okafor", "20240305")),
        (&clinic_b, vxu("FACB", "B2", "Tunde", "Bello", "20211111")),
    ] {
        let d = intake
            .receive(
                au,
                &Transport::Rest,
                msg.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        persons.push(
            matching
                .process(&d.message_id.unwrap(), 1)
                .await
                .unwrap()
                .person,
        );
    }
    assert_eq!(persons[0], persons[1]);
    let membership = Membership::new(matching.persons().clone(), policy.clone());
    for c in embedded.read(None, 10_000).await.unwrap() {
        if let Some(e) = change_event(&c) {
            membership.apply(&e).await.unwrap();
        }
    }

    let clients = Clients::new(store.clone());
    let key_a = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let jwks_a = serde_json::to_string(&JwkSet {
        keys: vec![key_a.public_jwk("a-1")],
    })
    .unwrap();
    let client_a = clients
        .add("clinic-a", Some(&jwks_a), None, "system/*.rs", 0)
        .await
        .unwrap()
        .id;
    // Registration stays strict: a type not served is refused, not dropped.
    let typo = clients
        .add(
            "clinic-a",
            Some(&jwks_a),
            None,
            "system/Patient.rs system/Immunisaton.rs",
            0,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        typo.contains("system/Immunisaton.rs not served here"),
        "{typo}"
    );
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/rs384-test-only.pem"
    ))
    .unwrap();
    let key_b = SigningKey::from_pkcs8(&pem).unwrap();
    let jwks_b = serde_json::to_string(&JwkSet {
        keys: vec![key_b.public_jwk("b-1")],
    })
    .unwrap();
    let client_b = clients
        .add("clinic-b", Some(&jwks_b), None, "system/*.read", 0)
        .await
        .unwrap()
        .id;
    let key_url = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let published = Arc::new(Published::default());
    published.0.lock().unwrap().insert(
        JWKS_URL.into(),
        serde_json::to_string(&JwkSet {
            keys: vec![key_url.public_jwk("u-1")],
        })
        .unwrap(),
    );
    let client_url = clients
        .add("clinic-a", None, Some(JWKS_URL), "system/Patient.rs", 0)
        .await
        .unwrap()
        .id;
    let mut deps = BulkDeps::new(matching.persons().clone(), policy, BASE, published);
    deps.token_limiter = Arc::new(SourceLimiter::new(limit));
    Iis {
        _dir: dir,
        store,
        embedded,
        app: router(Arc::new(deps)),
        clinic_a,
        clinic_b,
        key_a,
        client_a,
        key_b,
        client_b,
        client_url,
        key_url,
        shared: persons[0].clone(),
        only_b: persons[2].clone(),
    }
}

fn now() -> i64 {
    Clock::now().unix_seconds
}

fn claims(client: &str) -> Value {
    json!({"iss": client, "sub": client, "aud": TOKEN_URL, "exp": now() + 240,
           "jti": uuid::Uuid::new_v4().to_string()})
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

impl Iis {
    async fn call(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn token_form(
        &self,
        form: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.call(
            Request::post("/auth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// A token request from `from` (the peer address a server gives).
    async fn token_from(
        &self,
        from: SocketAddr,
        form: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let body = serde_urlencoded::to_string(form).unwrap();
        let mut req = Request::post("/auth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(from));
        self.call(req).await
    }

    /// The audit trail's token requests by `actor` (`client/<id>`), oldest
    /// first.
    async fn audited(&self, actor: &str) -> Vec<AuditEvent> {
        let mut events = AuditTrail::new(self.store.clone())
            .search(&AuditSearch {
                actor: Some(actor.to_owned()),
                from_ms: 0,
                to_ms: (now() + 60) * 1000,
                limit: 1000,
                ..AuditSearch::default()
            })
            .await
            .unwrap();
        events.reverse();
        events
    }

    async fn token(&self, assertion: &str, scope: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .token_form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
                ("scope", scope),
            ])
            .await;
        (s, v)
    }

    async fn fhir(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        self.call(req.body(Body::empty()).unwrap()).await
    }

    async fn access(&self, key: &SigningKey, kid: &str, client: &str, scope: &str) -> String {
        let a = key.sign(kid, &json!({}), &claims(client)).unwrap();
        let (s, v) = self.token(&a, scope).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }
}

fn refused(what: &str, (status, body): (StatusCode, Value), code: &str) {
    assert_eq!(body["error"], code, "{what}: {body}");
    let expected = if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    assert_eq!(status, expected, "{what}: {body}");
    assert!(body.get("access_token").is_none(), "{what}");
    assert!(
        !body["error_description"].as_str().unwrap_or("").is_empty(),
        "{what}"
    );
}

#[tokio::test]
async fn the_token_endpoint_grants_only_to_a_valid_fresh_assertion() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // Global, not scoped: the other tests of this binary run on other
    // threads, and a scoped subscriber can miss callsites they register first.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let iis = iis(RateLimit::TOKEN_ENDPOINT).await;
    let mut secrets = Vec::new();

    // Discovery.
    let (s, _, conf) = iis
        .fhir("/fhir/.well-known/smart-configuration", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(conf["token_endpoint"], TOKEN_URL);
    assert_eq!(
        conf["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS384", "ES384"])
    );
    assert!(conf["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("client-confidential-asymmetric")));

    // ES384 (inline JWKS), RS384 (inline JWKS), ES384 (JWKS URL): granted.
    let a = iis
        .key_a
        .sign("a-1", &json!({}), &claims(&iis.client_a))
        .unwrap();
    let (s, ok) = iis.token(&a, "system/*.rs").await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    assert_eq!(
        (ok["token_type"].as_str(), ok["scope"].as_str()),
        (Some("bearer"), Some("system/*.rs"))
    );
    assert!(ok["expires_in"].as_i64().unwrap() <= 300);
    secrets.push(a.clone());
    secrets.push(ok["access_token"].as_str().unwrap().to_owned());
    let b = iis
        .key_b
        .sign("b-1", &json!({}), &claims(&iis.client_b))
        .unwrap();
    let (s, ok_b) = iis.token(&b, "system/*.read").await;
    assert_eq!(s, StatusCode::OK, "{ok_b}");
    secrets.push(ok_b["access_token"].as_str().unwrap().to_owned());
    let u = iis
        .key_url
        .sign("u-1", &json!({"jku": JWKS_URL}), &claims(&iis.client_url))
        .unwrap();
    let (s, ok_u) = iis.token(&u, "system/*.rs").await;
    assert_eq!(s, StatusCode::OK, "{ok_u}");
    // The intersection with what the client may have: Patient only.
    assert_eq!(ok_u["scope"], "system/Patient.rs");

    // Replayed jti.
    refused(
        "replayed jti",
        iis.token(&a, "system/*.rs").await,
        "invalid_client",
    );

    let sign_a = |c: Value| iis.key_a.sign("a-1", &json!({}), &c).unwrap();
    let ca = || claims(&iis.client_a);
    // A scope for a resource type not served here is left out of the grant.
    let (s, ok_mixed) = iis
        .token(&sign_a(ca()), "system/Patient.read system/Observation.rs")
        .await;
    assert_eq!(s, StatusCode::OK, "{ok_mixed}");
    assert_eq!(ok_mixed["scope"], "system/Patient.read");
    refused(
        "expired",
        iis.token(&sign_a(with(ca(), "exp", json!(now() - 10))), "system/*.rs")
            .await,
        "invalid_client",
    );
    refused(
        "10 minutes ahead",
        iis.token(
            &sign_a(with(ca(), "exp", json!(now() + 600))),
            "system/*.rs",
        )
        .await,
        "invalid_client",
    );
    refused(
        "no exp",
        iis.token(&sign_a(with(ca(), "exp", Value::Null)), "system/*.rs")
            .await,
        "invalid_client",
    );
    refused(
        "wrong aud",
        iis.token(
            &sign_a(with(ca(), "aud", json!("https://other.example/token"))),
            "system/*.rs",
        )
        .await,
        "invalid_client",
    );
    refused(
        "sub differs",
        iis.token(&sign_a(with(ca(), "sub", json!("someone"))), "system/*.rs")
            .await,
        "invalid_client",
    );
    refused(
        "unknown client",
        iis.token(
            &sign_a(with(
                with(ca(), "iss", json!("nobody")),
                "sub",
                json!("nobody"),
            )),
            "system/*.rs",
        )
        .await,
        "invalid_client",
    );
    refused(
        "no jti",
        iis.token(&sign_a(with(ca(), "jti", Value::Null)), "system/*.rs")
            .await,
        "invalid_client",
    );
    let unknown_kid = iis.key_a.sign("a-2", &json!({}), &ca()).unwrap();
    refused(
        "unknown kid",
        iis.token(&unknown_kid, "system/*.rs").await,
        "invalid_client",
    );
    let jku = iis
        .key_a
        .sign("a-1", &json!({"jku": "https://evil.example/jwks"}), &ca())
        .unwrap();
    refused(
        "jku mismatch",
        iis.token(&jku, "system/*.rs").await,
        "invalid_client",
    );
    // A key of the wrong client under the right kid: the signature fails.
    let other_key = iis.key_url.sign("a-1", &json!({}), &ca()).unwrap();
    refused(
        "other key",
        iis.token(&other_key, "system/*.rs").await,
        "invalid_client",
    );
    // Tampered payload.
    let good = sign_a(ca());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(with(ca(), "sub", json!(iis.client_a)).to_string());
    refused(
        "tampered",
        iis.token(&parts.join("."), "system/*.rs").await,
        "invalid_client",
    );
    // alg none, and HS256 keyed with the public key.
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        enc(json!({"alg": "none", "kid": "a-1"})),
        enc(ca())
    );
    refused(
        "alg none",
        iis.token(&none, "system/*.rs").await,
        "invalid_client",
    );
    let public = serde_json::to_vec(&iis.key_a.public_jwk("a-1")).unwrap();
    let signed = format!(
        "{}.{}",
        enc(json!({"alg": "HS256", "kid": "a-1", "typ": "JWT"})),
        enc(ca())
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
        signed.as_bytes(),
    );
    let hs = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    refused(
        "HS256 with the public key",
        iis.token(&hs, "system/*.rs").await,
        "invalid_client",
    );
    // RS384 header on an EC key.
    let mixed = {
        let s = sign_a(ca());
        let p: Vec<&str> = s.split('.').collect();
        format!(
            "{}.{}.{}",
            enc(json!({"alg": "RS384", "kid": "a-1"})),
            p[1],
            p[2]
        )
    };
    refused(
        "alg does not fit kty",
        iis.token(&mixed, "system/*.rs").await,
        "invalid_client",
    );
    refused(
        "not a JWT",
        iis.token("x.y.z", "system/*.rs").await,
        "invalid_client",
    );

    // Scopes.
    refused(
        "write",
        iis.token(&sign_a(ca()), "system/Patient.write").await,
        "invalid_scope",
    );
    refused(
        "patient scope",
        iis.token(&sign_a(ca()), "patient/*.read").await,
        "invalid_scope",
    );
    refused(
        "user scope",
        iis.token(&sign_a(ca()), "user/*.read").await,
        "invalid_scope",
    );
    refused(
        "launch",
        iis.token(&sign_a(ca()), "launch system/*.read").await,
        "invalid_scope",
    );
    refused(
        "only a resource type not served",
        iis.token(&sign_a(ca()), "system/Observation.read").await,
        "invalid_scope",
    );
    refused(
        "no scope",
        iis.token(&sign_a(ca()), "").await,
        "invalid_scope",
    );

    // The form itself.
    let (s, _, v) = iis
        .call(
            Request::post("/auth/token")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let a2 = sign_a(ca());
    let (s, _, v) = iis
        .token_form(&[
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a2),
            ("scope", "system/*.rs"),
        ])
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (s, _, v) = iis
        .token_form(&[
            ("grant_type", "password"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a2),
        ])
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (s, h, v) = iis
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "basic"),
            ("client_assertion", &a2),
        ])
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(h.get("cache-control").unwrap(), "no-store");

    // Secrets are never stored: every item ever written, searched.
    let mut after = None;
    loop {
        let changes = iis.embedded.read(after, 1000).await.unwrap();
        if changes.is_empty() {
            break;
        }
        for c in &changes {
            if let Some(item) = &c.new {
                let data = String::from_utf8_lossy(&item.data);
                for secret in &secrets {
                    assert!(
                        !data.contains(secret.as_str()) && !item.key.pk.contains(secret.as_str())
                    );
                }
            }
            after = Some(c.seq);
        }
    }

    // Secrets never reach the log.
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("token request refused"),
        "the capture saw no log lines: {text}"
    );
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret was logged");
    }
}

fn form<'a>(assertion: &'a str, scope: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn bad_assertions_never_lock_a_client_out_and_are_audited() {
    // Room for every request below: this is about the client, not the rate.
    let iis = iis(RateLimit::new(1000, 1.0).unwrap()).await;
    let attacker: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let clinic: SocketAddr = "198.51.100.20:51000".parse().unwrap();
    let expired = with(claims(&iis.client_b), "exp", json!(now() - 10));
    let mut sent = Vec::new();
    // Far more failures than the old lockout allowed (10 in 5 minutes),
    // under the client's public id, from one address.
    for _ in 0..25 {
        let a = iis
            .key_b
            .sign(
                "b-1",
                &json!({}),
                &with(
                    expired.clone(),
                    "jti",
                    json!(uuid::Uuid::new_v4().to_string()),
                ),
            )
            .unwrap();
        let (s, h, v) = iis.token_from(attacker, &form(&a, "system/*.read")).await;
        refused("expired", (s, v), "invalid_client");
        assert!(h.get("retry-after").is_none());
        sent.push(a);
    }
    // The client's own valid assertion is still granted, at once.
    let a = iis
        .key_b
        .sign("b-1", &json!({}), &claims(&iis.client_b))
        .unwrap();
    let (s, _, v) = iis.token_from(clinic, &form(&a, "system/*.read")).await;
    assert_eq!(s, StatusCode::OK, "a valid assertion after failures: {v}");
    assert!(v["access_token"].is_string());
    let token = v["access_token"].as_str().unwrap().to_owned();
    sent.push(a);

    // Every failure is in the audit trail, with the client, the address,
    // the outcome and why; then the grant. Never the assertion or token.
    let events = iis.audited(&format!("client/{}", iis.client_b)).await;
    assert_eq!(events.len(), 26, "{events:?}");
    let subject = format!("AuthorizedUser/{}", iis.clinic_b.id);
    for e in &events[..25] {
        assert_eq!(e.action, registry::smart::AUDIT_ACTION);
        assert_eq!(e.actor.kind, ActorKind::Client);
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.source.as_deref(), Some("203.0.113.9"));
        assert_eq!(e.detail, "invalid_client: the assertion has expired");
        assert_eq!(e.subjects, std::slice::from_ref(&subject));
    }
    let granted = &events[25];
    assert_eq!(granted.outcome, Outcome::Success);
    assert_eq!(granted.source.as_deref(), Some("198.51.100.20"));
    assert_eq!(granted.detail, "granted system/*.read");
    let all = serde_json::to_string(&events).unwrap();
    for secret in sent.iter().chain([&token]) {
        assert!(!all.contains(secret.as_str()), "a secret was audited");
    }

    // An assertion naming no registered client is audited under the iss it
    // gave, as unauthenticated.
    let stranger = iis
        .key_b
        .sign("b-1", &json!({}), &claims("no-such-client"))
        .unwrap();
    let (s, _, v) = iis
        .token_from(attacker, &form(&stranger, "system/*.read"))
        .await;
    refused("unknown client", (s, v), "invalid_client");
    let events = iis.audited("unauthenticated/no-such-client").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].outcome, Outcome::Failure);
    assert_eq!(events[0].detail, "invalid_client: unknown client");
    assert!(events[0].subjects.is_empty());
}

#[tokio::test]
async fn the_token_endpoint_is_rate_limited_per_source_address() {
    // The default: 20 at once, then one a second, per address.
    let iis = iis(RateLimit::TOKEN_ENDPOINT).await;
    let noisy: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let same_host_other_port: SocketAddr = "203.0.113.9:40001".parse().unwrap();
    let clinic: SocketAddr = "[2001:db8:5::1]:443".parse().unwrap();
    // Whatever they carry, requests count: here, empty forms.
    for i in 0..20 {
        let (s, _, v) = iis.token_from(noisy, &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "request {i}: {v}");
        assert_eq!(v["error"], "invalid_request");
    }
    for from in [noisy, same_host_other_port] {
        let (s, h, v) = iis.token_from(from, &[]).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
        let retry: u64 = h
            .get("retry-after")
            .expect("Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        assert_eq!(h.get("cache-control").unwrap(), "no-store");
        assert_eq!(h.get("content-type").unwrap(), "application/json");
        assert_eq!(v["error"], "invalid_request");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("too many token requests"));
    }
    // A valid assertion from the limited address waits too...
    let a = iis
        .key_a
        .sign("a-1", &json!({}), &claims(&iis.client_a))
        .unwrap();
    let (s, _, _) = iis.token_from(noisy, &form(&a, "system/*.rs")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // ...and is neither used nor audited: the same assertion is granted
    // from another address.
    let (s, _, v) = iis.token_from(clinic, &form(&a, "system/*.rs")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        iis.audited(&format!("client/{}", iis.client_a)).await.len(),
        1
    );
    // Without an address (no server gave one) there is no per-source limit.
    for _ in 0..25 {
        let (s, _, _) = iis.token_form(&[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn each_authorized_user_reaches_its_own_group_and_nothing_else() {
    let iis = iis(RateLimit::TOKEN_ENDPOINT).await;
    let ta = iis
        .access(&iis.key_a, "a-1", &iis.client_a, "system/*.rs")
        .await;
    let tb = iis
        .access(&iis.key_b, "b-1", &iis.client_b, "system/*.read")
        .await;
    let ga = iis.clinic_a.group.clone().unwrap();
    let gb = iis.clinic_b.group.clone().unwrap();

    // No token, a bad token: 401 with a challenge and an OperationOutcome.
    let (s, h, v) = iis.fhir(&format!("/fhir/Group/{ga}"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(v["resourceType"], "OperationOutcome");
    let (s, h, _) = iis
        .fhir(&format!("/fhir/Group/{ga}"), Some("not-a-token"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // Each sees its own Group with exactly its members.
    let (s, _, a) = iis.fhir(&format!("/fhir/Group/{ga}"), Some(&ta)).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let members = |g: &Value| -> Vec<String> {
        let mut v: Vec<String> = g["member"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["entity"]["reference"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(members(&a), [format!("Patient/{}", iis.shared)]);
    let (_, _, b) = iis.fhir(&format!("/fhir/Group/{gb}"), Some(&tb)).await;
    let mut want = vec![
        format!("Patient/{}", iis.shared),
        format!("Patient/{}", iis.only_b),
    ];
    want.sort();
    assert_eq!(members(&b), want);

    // Every cross access: 404 with an OperationOutcome, never 403.
    for (path, token) in [
        (format!("/fhir/Group/{gb}"), &ta),
        (format!("/fhir/Group/{ga}"), &tb),
        (format!("/fhir/Patient/{}", iis.only_b), &ta),
        (format!("/fhir/Group/{}", "no-such-group"), &ta),
    ] {
        let (s, _, v) = iis.fhir(&path, Some(token)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(v["resourceType"], "OperationOutcome", "{path}");
    }
    let (_, _, none) = iis
        .fhir(
            &format!("/fhir/Immunization?patient=Patient/{}", iis.only_b),
            Some(&ta),
        )
        .await;
    assert_eq!(none["total"], 0);
    let (_, _, search) = iis.fhir("/fhir/Group?identifier=clinic-b", Some(&ta)).await;
    assert_eq!(search["total"], 0);

    // The shared patient, as each sees it: its own MRN only.
    let (_, _, pa) = iis
        .fhir(&format!("/fhir/Patient/{}", iis.shared), Some(&ta))
        .await;
    let (_, _, pb) = iis
        .fhir(&format!("/fhir/Patient/{}", iis.shared), Some(&tb))
        .await;
    let ids = |p: &Value| p["identifier"].to_string();
    assert!(ids(&pa).contains("A1-MRN") && !ids(&pa).contains("B1-MRN"));
    assert!(ids(&pb).contains("B1-MRN") && !ids(&pb).contains("A1-MRN"));

    // Scope per resource type: a Patient-only token cannot read the Group.
    let tp = iis
        .access(&iis.key_a, "a-1", &iis.client_a, "system/Patient.rs")
        .await;
    let (s, h, v) = iis.fhir(&format!("/fhir/Group/{ga}"), Some(&tp)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(h
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    let (s, _, _) = iis
        .fhir(&format!("/fhir/Patient/{}", iis.shared), Some(&tp))
        .await;
    assert_eq!(s, StatusCode::OK);

    // A removed client's tokens stop working at once.
    Clients::new(iis.store.clone())
        .remove(&iis.client_a)
        .await
        .unwrap();
    let (s, _, _) = iis.fhir(&format!("/fhir/Group/{ga}"), Some(&ta)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
