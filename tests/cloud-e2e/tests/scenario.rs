//! The cloud composition end to end against moto: a fresh table (with its
//! stream) and bucket; every function built by its own `deps_from_env` (what
//! its `main.rs` runs); HTTP functions invoked with API Gateway HTTP API 2.0
//! events; the stream functions fed by the event source mappings of
//! `infra/template.yaml`, played over the DynamoDB Streams API.
//!
//! An Authorized User sends a VXU → AA; the matcher makes a patient, the
//! membership function puts it in the user's Group; a SMART client of the
//! user gets a token, kicks off a Group `$export`, the export worker plans,
//! writes and completes it, the status poll answers a manifest whose
//! presigned S3 URLs serve the NDJSON. Another user's patient never appears
//! in it, and every batch delivered again changes nothing.
//!
//! Needs `IISBULK_DYNAMODB_ENDPOINT` and `IISBULK_S3_ENDPOINT` (scripts/moto
//! start); skipped without them unless `IISBULK_REQUIRE_MOTO=1`.
//!
//! The functions read their configuration from the process environment, as
//! on Lambda; this binary has this one test, which sets the environment
//! before its runtime (or any other thread) starts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use cloud_e2e::aws::{endpoints_or_skip, unique_name, Cloud};
use cloud_e2e::esm::{mapping, template, Consumer, Pump, StreamReader};
use cloud_e2e::http::{apigw_v2_event, invoke, Answer};
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::{Clients, ASSERTION_TYPE};
use registry::{AuKind, AuthorizedUser, AuthorizedUsers, NewAuthorizedUser};
use serde_json::{json, Value};

const PUBLIC_URL: &str = "https://iis.e2e.example";

/// A made-up child reported by `fac` with two historical doses.
fn vxu(fac: &str, ctl: &str, given: &str, family: &str, dob: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{ctl}-MRN^^^{fac}^MR||{family}^{given}^^^^^L||{dob}|F|||12 Cedar St^^Lansing^MI^48910^USA^P\r\
ORC|RE||{ctl}-1^{fac}\rRXA|0|1|20240704||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||{ctl}-2^{fac}\rRXA|0|1|20240904||20^DTaP^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

fn msa1(answer: &str) -> String {
    answer
        .split(['\r', '\n'])
        .find(|s| s.starts_with("MSA|"))
        .and_then(|s| s.split('|').nth(1))
        .unwrap_or("")
        .to_owned()
}

fn now_s() -> i64 {
    iz::Clock::now().unix_seconds
}

/// The HTTP functions, invoked as API Gateway invokes them.
struct Api {
    ingest: lambda_edge::OnLambda,
    bulk: lambda_edge::OnLambda,
}

impl Api {
    async fn post_hl7(&self, user: &str, password: &str, message: &str) -> Answer {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let event = apigw_v2_event(
            "POST",
            "/hl7",
            &[
                ("content-type", "application/hl7-v2"),
                ("authorization", &basic),
            ],
            message.as_bytes(),
        );
        invoke(self.ingest.clone(), &event).await.unwrap()
    }

    async fn bulk(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let path = path.strip_prefix(PUBLIC_URL).unwrap_or(path);
        let event = apigw_v2_event(method, path, headers, body);
        invoke(self.bulk.clone(), &event).await.unwrap()
    }

    async fn fhir(&self, path: &str, token: &str) -> Answer {
        let bearer = format!("Bearer {token}");
        self.bulk(
            "GET",
            path,
            &[
                ("accept", "application/fhir+json"),
                ("authorization", &bearer),
            ],
            b"",
        )
        .await
    }

    /// A SMART Backend Services token: a client assertion signed with the
    /// client's key, sent to the token endpoint.
    async fn token(&self, key: &SigningKey, kid: &str, client: &str) -> String {
        let claims = json!({"iss": client, "sub": client, "aud": format!("{PUBLIC_URL}/auth/token"),
            "exp": now_s() + 240, "jti": uuid::Uuid::new_v4().to_string()});
        let assertion = key.sign(kid, &json!({}), &claims).unwrap();
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
            ("scope", "system/*.rs"),
        ])
        .unwrap();
        let a = self
            .bulk(
                "POST",
                "/auth/token",
                &[("content-type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            )
            .await;
        assert_eq!(a.status, 200, "token: {}", a.text());
        a.json()["access_token"].as_str().unwrap().to_owned()
    }
}

/// Onboards an Authorized User and a SMART client with a new key, as
/// `iisbulk au add` and `iisbulk client add` do (the same registry calls),
/// on the cloud table.
async fn onboard(
    store: Arc<dyn store::ItemStore>,
    id: &str,
    facility: &str,
    kid: &str,
) -> (AuthorizedUser, String, SigningKey) {
    let policy = settings::jurisdiction_policy().unwrap();
    let au = registry::membership::onboard(
        &AuthorizedUsers::new(store.clone()),
        NewAuthorizedUser {
            id: id.into(),
            kind: AuKind::Clinic,
            name: format!("Clinic {id}"),
            facilities: vec![facility.into()],
            username: id.into(),
            password: format!("{id} password, long enough"),
        },
        now_s(),
        &policy,
    )
    .await
    .unwrap();
    let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.public_jwk(kid)],
    })
    .unwrap();
    let client = Clients::new(store)
        .add(id, Some(&jwks), None, "system/*.rs", now_s() * 1000)
        .await
        .unwrap()
        .id;
    (au, client, key)
}

/// A stream function's answer as the JSON its Lambda returns.
fn as_json(r: matcher::BatchResponse) -> Value {
    serde_json::to_value(r).unwrap()
}

/// The stream functions, each behind its template mapping.
async fn pump(cloud: &Cloud) -> Pump {
    let template = template().unwrap();
    let matching = matcher::deps_from_env().await.unwrap();
    let membership = membership::deps_from_env().await.unwrap();
    let jobs = export_worker::deps_from_env().await.unwrap();
    let failure_injected = AtomicBool::new(false);
    let consumers = vec![
        Consumer::new(
            mapping(&template, "MatcherFunction").unwrap(),
            Box::new(move |event| {
                let matching = matching.clone();
                let several = event["Records"].as_array().map_or(0, Vec::len) >= 2;
                let inject = several && !failure_injected.swap(true, Ordering::SeqCst);
                Box::pin(async move {
                    let records = event["Records"].as_array().cloned().unwrap_or_default();
                    if inject {
                        // The first batch stops at its second record (as the
                        // matcher does when the store throttles there): the
                        // first record is applied, the second named failed.
                        let head = json!({ "Records": [records[0]] });
                        let applied = matcher::handle(&matching, &head, now_s() * 1000).await?;
                        assert!(applied.batch_item_failures.is_empty());
                        let failed = &records[1]["dynamodb"]["SequenceNumber"];
                        return Ok(json!({"batchItemFailures": [{"itemIdentifier": failed}]}));
                    }
                    matcher::handle(&matching, &event, now_s() * 1000)
                        .await
                        .map(as_json)
                })
            }),
        ),
        Consumer::new(
            mapping(&template, "MembershipFunction").unwrap(),
            Box::new(move |event| {
                let membership = membership.clone();
                Box::pin(async move { membership::handle(&membership, &event).await.map(as_json) })
            }),
        ),
        Consumer::new(
            mapping(&template, "ExportWorkerFunction").unwrap(),
            Box::new(move |event| {
                let jobs = jobs.clone();
                Box::pin(async move { export_worker::handle(&jobs, &event).await.map(as_json) })
            }),
        ),
    ];
    Pump {
        reader: StreamReader {
            client: cloud.streams.clone(),
            arn: cloud.stream_arn.clone(),
        },
        consumers,
    }
}

/// The export's files by resource type: (manifest count, NDJSON lines).
async fn download(manifest: &Value) -> BTreeMap<String, (u64, Vec<Value>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let endpoint = std::env::var(blob_s3::ENDPOINT_ENV).unwrap();
    let mut out = BTreeMap::new();
    for file in manifest["output"].as_array().unwrap() {
        let url = file["url"].as_str().unwrap();
        assert!(
            url.starts_with(&endpoint) && url.contains("X-Amz-Signature="),
            "a presigned S3 URL: {url}"
        );
        // No token: the URL is the credential.
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        // The object was uploaded with Content-Encoding gzip, which S3
        // answers with the stored bytes; this client (no gzip feature)
        // inflates them as a browser or curl --compressed would.
        let gzip = r
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v == "gzip");
        assert!(gzip, "export files are stored gzip-encoded: {url}");
        let stored = r.bytes().await.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&stored[..]), &mut text)
            .unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let entry = out
            .entry(file["type"].as_str().unwrap().to_owned())
            .or_insert((0, Vec::new()));
        entry.0 += file["count"].as_u64().unwrap();
        entry.1.extend(lines);
    }
    out
}

#[test]
fn a_vxu_becomes_a_group_member_exported_to_s3_through_the_stream_functions() {
    if !endpoints_or_skip("the cloud end-to-end test") {
        return;
    }
    let table = unique_name("iisbulk-e2e");
    let bucket = unique_name("iisbulk-e2e");
    // The functions' configuration, as the template sets it (the endpoint
    // overrides come from scripts/moto). Set before any thread starts.
    std::env::set_var("IISBULK_TABLE", &table);
    std::env::set_var("IISBULK_BUCKET", &bucket);
    std::env::set_var("IISBULK_EXPORT_PREFIX", "bulk");
    std::env::set_var("IISBULK_PUBLIC_URL", PUBLIC_URL);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(scenario(table, bucket));
}

async fn scenario(table: String, bucket: String) {
    let started = Instant::now();
    let cloud = Cloud::create(&table, &bucket).await.unwrap();
    let admin: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table.clone(),
    ));
    let (clinic_a, client_a, key_a) = onboard(admin.clone(), "clinic-a", "FACA", "a-1").await;
    let (clinic_b, client_b, key_b) = onboard(admin.clone(), "clinic-b", "FACB", "b-1").await;
    let group_a = clinic_a.group.clone().unwrap();
    let group_b = clinic_b.group.clone().unwrap();

    let api = Api {
        ingest: lambda_edge::on_lambda(ingest::router(Arc::new(
            ingest::deps_from_env().await.unwrap(),
        ))),
        bulk: lambda_edge::on_lambda(bulk_api::router(Arc::new(
            bulk_api::deps_from_env().await.unwrap(),
        ))),
    };
    let mut pump = pump(&cloud).await;
    // Onboarding wrote items; none of them is work for a stream function.
    pump.until_quiet().await.unwrap();
    assert!(
        pump.consumers.iter().all(|c| c.delivered.is_empty()),
        "{pump:?}"
    );

    // Each clinic reports its own child over the ingest function.
    let a_msg = vxu("FACA", "E2E-A1", "Adaeze", "Nwankwo", "20240305");
    let answer = api
        .post_hl7("clinic-a", "clinic-a password, long enough", &a_msg)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(msa1(&answer.text()), "AA", "{}", answer.text());
    let b_msg = vxu("FACB", "E2E-B1", "Kwabena", "Mensah", "20230612");
    let answer = api
        .post_hl7("clinic-b", "clinic-b password, long enough", &b_msg)
        .await;
    assert_eq!(msa1(&answer.text()), "AA", "{}", answer.text());

    // The matcher and membership functions, from the stream.
    pump.until_quiet().await.unwrap();
    // Both messages came in one batch; its second record, reported failed,
    // was delivered again on its own, and the first was not.
    let matcher = pump.consumer("MatcherFunction").unwrap();
    let sequences = |event: &Value| -> Vec<String> {
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(matcher.failures, 1, "{pump:?}");
    assert_eq!(matcher.delivered.len(), 2, "{pump:?}");
    let (first, retry) = (
        sequences(&matcher.delivered[0]),
        sequences(&matcher.delivered[1]),
    );
    assert_eq!((first.len(), retry.as_slice()), (2, &first[1..]));

    let token_a = api.token(&key_a, "a-1", &client_a).await;
    let token_b = api.token(&key_b, "b-1", &client_b).await;
    let group = api.fhir(&format!("/fhir/Group/{group_a}"), &token_a).await;
    assert_eq!(group.status, 200, "{}", group.text());
    let group = group.json();
    assert_eq!(group["quantity"], 1, "{group}");
    let patient_a = group["member"][0]["entity"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = api
        .fhir(&format!("/fhir/Group/{group_b}"), &token_b)
        .await
        .json();
    assert_eq!(theirs["quantity"], 1, "{theirs}");
    let patient_b = theirs["member"][0]["entity"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(patient_a, patient_b);

    // Bulk export of A's Group.
    let bearer = format!("Bearer {token_a}");
    let kick = api
        .bulk(
            "GET",
            &format!("/fhir/Group/{group_a}/$export"),
            &[
                ("accept", "application/fhir+json"),
                ("prefer", "respond-async"),
                ("authorization", &bearer),
            ],
            b"",
        )
        .await;
    assert_eq!(kick.status, 202, "{}", kick.text());
    let status_url = kick.header("content-location").unwrap().to_owned();
    assert!(
        status_url.starts_with(&format!("{PUBLIC_URL}/fhir/bulkstatus/")),
        "{status_url}"
    );
    let first = api.fhir(&status_url, &token_a).await;
    assert_eq!(first.status, 202, "the first poll is always in progress");

    // The export worker: plan, shards, completion.
    pump.until_quiet().await.unwrap();
    let export_batches = pump
        .consumer("ExportWorkerFunction")
        .unwrap()
        .delivered
        .len();
    assert!(
        export_batches >= 2,
        "a plan and at least one shard: {pump:?}"
    );

    let mut manifest = Value::Null;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = api.fhir(&status_url, &token_a).await;
        if r.status == 200 {
            manifest = r.json();
            break;
        }
        assert_eq!(r.status, 202, "{}", r.text());
    }
    assert_eq!(manifest["requiresAccessToken"], false, "{manifest}");
    assert_eq!(manifest["error"], json!([]), "{manifest}");
    let files = download(&manifest).await;
    for (kind, (count, lines)) in &files {
        assert_eq!(
            *count,
            lines.len() as u64,
            "{kind}: manifest count and lines"
        );
    }
    let patients = &files["Patient"].1;
    assert_eq!(patients.len(), 1, "{manifest}");
    assert_eq!(
        format!("Patient/{}", patients[0]["id"].as_str().unwrap()),
        patient_a
    );
    assert_eq!(patients[0]["name"][0]["family"], "Nwankwo");
    let immunizations = &files["Immunization"].1;
    assert_eq!(immunizations.len(), 2, "both doses");
    let mut vaccines: Vec<&str> = immunizations
        .iter()
        .map(|i| i["vaccineCode"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    vaccines.sort_unstable();
    assert_eq!(vaccines, ["08", "20"]);
    for i in immunizations {
        assert_eq!(i["patient"]["reference"], patient_a.as_str());
    }
    assert_eq!(files["Group"].1.len(), 1);
    // Nothing of clinic B's child in A's export.
    let everything = serde_json::to_string(&files).unwrap();
    assert!(!everything.contains("Mensah") && !everything.contains("Kwabena"));
    assert!(!everything.contains(patient_b.trim_start_matches("Patient/")));

    // Every batch delivered once more (Lambda redelivers after a timeout or
    // a crash between the work and the checkpoint): nothing changes.
    let items = cloud.items().await.unwrap();
    let objects = cloud.objects().await.unwrap();
    for c in &pump.consumers {
        for event in &c.delivered {
            let answer = c.invoke(event.clone()).await.unwrap();
            assert_eq!(
                answer["batchItemFailures"],
                json!([]),
                "{} redelivered",
                c.mapping.function
            );
        }
    }
    pump.until_quiet().await.unwrap();
    assert_eq!(
        cloud.objects().await.unwrap(),
        objects,
        "S3 after redelivery"
    );
    let after = cloud.items().await.unwrap();
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| items.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(items.keys().filter(|k| !after.contains_key(*k)))
        .collect();
    assert!(
        changed.is_empty(),
        "items changed by redelivery: {changed:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = api.fhir(&status_url, &token_a).await;
    assert_eq!(again.status, 200);
    let files_again = download(&again.json()).await;
    assert_eq!(files_again, files);

    let took = started.elapsed();
    eprintln!(
        "cloud e2e: {} matcher, {} membership, {} export-worker batches; {took:.1?}",
        pump.consumer("MatcherFunction").unwrap().delivered.len(),
        pump.consumer("MembershipFunction").unwrap().delivered.len(),
        pump.consumer("ExportWorkerFunction")
            .unwrap()
            .delivered
            .len(),
    );
}
