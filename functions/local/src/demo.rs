//! `iisbulk demo`: the whole IIS on a fresh data directory, exercised the
//! way its users would: a demo Authorized User and SMART client are
//! onboarded, the sample VXUs of the corpus (built into the binary from
//! `testdata/corpus/hl7`) and a few hundred made-up ones are sent over HTTP, and the demo clinic's Group is exported through the
//! real Bulk Data API. Prints the manifest and where the files are, then
//! keeps serving (or stops, with `--exit`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::Clients;
use registry::AuthorizedUsers;
use serde_json::Value;

use crate::serve::{
    self, ServeArgs, DEMO_PASSWORD, DEMO_REVIEWER, DEMO_REVIEWER_PASSWORD, DEMO_USER,
};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data directory; must not exist yet (default: a new
    /// `iisbulk-demo-<time>` in the current directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: String,
    /// Folder of sample messages whose `vxu-*.hl7` files are sent instead
    /// of the built-in samples (the 18 VXUs of testdata/corpus/hl7).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Made-up children reported besides the samples.
    #[arg(long, default_value_t = 300)]
    generated: usize,
    /// Stop once the export is done instead of serving on.
    #[arg(long)]
    exit: bool,
}

/// `serve`'s own argument parser, so the demo runs with its defaults.
#[derive(Debug, Parser)]
struct ServeCli {
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Debug, Parser)]
struct ExportCli {
    #[command(flatten)]
    args: crate::client::export_cli::ExportArgs,
}

pub async fn run(args: DemoArgs) -> ExitCode {
    serve::init_tracing("warn");
    match demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iisbulk demo: {e}");
            ExitCode::from(1)
        }
    }
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    let data = match &args.data_dir {
        Some(d) => d.clone(),
        None => PathBuf::from(format!("iisbulk-demo-{}", iz::Clock::now().unix_seconds)),
    };
    if data.exists() {
        return Err(format!(
            "{} already exists: the demo starts on a fresh data directory",
            data.display()
        ));
    }
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let path = |p: &Path| p.to_string_lossy().into_owned();
    println!("1. data directory {}", data.display());

    // Onboarding, before the server holds the store.
    let (client_id, key_file) = onboard(&data).await?;
    println!(
        "2. Authorized User 'demo-clinic' (HL7 login {DEMO_USER} / {DEMO_PASSWORD}) and SMART client {client_id} (key {})",
        key_file.display()
    );

    let serve_args =
        ServeCli::try_parse_from(["serve", "--data-dir", &path(&data), "--bind", &args.bind])
            .map_err(|e| e.to_string())?
            .args;
    let started = serve::start(serve_args).await?;
    let url = format!("http://{}", started.local);
    let server = tokio::spawn(started.run());
    println!("3. IIS listening on {url} (POST /hl7, POST /soap, FHIR at {url}/fhir)");

    let http = reqwest::Client::new();
    let (accepted, rejected, samples) = send_samples(&http, &url, args.corpus.as_deref()).await?;
    let made_up = send_generated(&http, &url, args.generated).await?;
    send_possible_duplicates(&http, &url).await?;
    println!(
        "4. sent {samples} sample VXUs ({accepted} accepted, {rejected} rejected as the guide requires) and {made_up} made-up ones over HTTP"
    );

    let group = settled_group(&http, &url, &client_id, &key_file).await?;
    println!(
        "5. Group {} has {} members",
        group["id"].as_str().unwrap_or("?"),
        group["quantity"]
    );

    let out = data.join("export");
    let export = ExportCli::try_parse_from([
        "export",
        "--url",
        &url,
        "--client-id",
        &client_id,
        "--key",
        &path(&key_file),
        "--group",
        group["id"].as_str().unwrap_or_default(),
        "--out",
        &path(&out),
        "--timeout",
        "600",
    ])
    .map_err(|e| e.to_string())?
    .args;
    let started_export = Instant::now();
    let summary = crate::client::export_cli::export(export).await?;
    println!(
        "6. Bulk Data export (GET {url}/fhir/Group/{}/$export) done in {:.1} s; files in {}:",
        group["id"].as_str().unwrap_or("?"),
        started_export.elapsed().as_secs_f64(),
        out.display()
    );
    println!("{summary}");
    println!("   manifest: {}", out.join("manifest.json").display());
    let waiting = review_queue_length(&http, &url).await?;
    println!(
        "7. console at {url}/console/ (reviewer login {DEMO_REVIEWER} / {DEMO_REVIEWER_PASSWORD}): {waiting} possible duplicate(s) wait for review"
    );

    if args.exit {
        server.abort();
        return Ok(());
    }
    println!(
        "\nStill serving on {url}: try\n  iisbulk export --url {url} --client-id {client_id} --key {} --group {} --out my-export\n(Ctrl-C to stop)",
        key_file.display(),
        group["id"].as_str().unwrap_or("?")
    );
    server.await.map_err(|e| format!("server task: {e}"))?
}

/// Creates the demo Authorized User (with its Group) and a SMART client
/// holding a fresh ES384 key; returns the client id and the key file.
async fn onboard(data: &Path) -> Result<(String, PathBuf), String> {
    let store = crate::data_dir::open(data)?;
    let policy = crate::policy::load(None)?;
    serve::seed_demo(&AuthorizedUsers::new(store.clone()), &policy).await?;
    serve::seed_demo_reviewer(store.clone()).await?;
    let der = SigningKey::generate_es384()?;
    let key = SigningKey::from_pkcs8(&der)?;
    let key_file = data.join("demo-client-key.pem");
    std::fs::write(&key_file, pem(&der)).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.public_jwk(&key.thumbprint())],
    })
    .map_err(|e| e.to_string())?;
    let client = Clients::new(store)
        .add(
            "demo-clinic",
            Some(&jwks),
            None,
            "system/*.rs",
            iz::Clock::now().unix_seconds * 1000,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((client.id, key_file))
}

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

async fn post_hl7(http: &reqwest::Client, url: &str, msg: &str) -> Result<String, String> {
    let r = http
        .post(format!("{url}/hl7"))
        .basic_auth(DEMO_USER, Some(DEMO_PASSWORD))
        .header("content-type", "application/hl7-v2")
        .body(msg.to_owned())
        .send()
        .await
        .map_err(|e| format!("POST {url}/hl7: {e}"))?;
    r.text().await.map_err(|e| format!("POST {url}/hl7: {e}"))
}

/// MSA-1 of an answer.
fn ack_code(answer: &str) -> &str {
    answer
        .split(['\r', '\n'])
        .find(|s| s.starts_with("MSA|"))
        .and_then(|s| s.split('|').nth(1))
        .unwrap_or("")
}

/// The sample VXUs of `testdata/corpus/hl7` (their sources are in its
/// `SOURCES.md`), built into the binary so that the demo sends them from any
/// directory.
macro_rules! samples {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_bytes!(concat!("../../../testdata/corpus/hl7/", $name)) as &[u8])),*]
    };
}
const SAMPLES: [(&str, &[u8]); 18] = samples![
    "vxu-001.hl7",
    "vxu-002.hl7",
    "vxu-003.hl7",
    "vxu-004.hl7",
    "vxu-005.hl7",
    "vxu-006.hl7",
    "vxu-007.hl7",
    "vxu-008.hl7",
    "vxu-009.hl7",
    "vxu-010.hl7",
    "vxu-011.hl7",
    "vxu-012.hl7",
    "vxu-013.hl7",
    "vxu-014.hl7",
    "vxu-015.hl7",
    "vxu-016.hl7",
    "vxu-017.hl7",
    "vxu-018.hl7",
];

/// The `vxu-*.hl7` files of a folder, by name; `None` when it cannot be read.
fn samples_in(corpus: &Path) -> Result<Option<Vec<Vec<u8>>>, String> {
    let Ok(entries) = std::fs::read_dir(corpus) else {
        return Ok(None);
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vxu-") && n.ends_with(".hl7"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{}: {e}", f.display())))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Sends the built-in samples, or those of `corpus` when one is given.
async fn send_samples(
    http: &reqwest::Client,
    url: &str,
    corpus: Option<&Path>,
) -> Result<(usize, usize, usize), String> {
    let messages: Vec<Vec<u8>> = match corpus {
        None => SAMPLES.iter().map(|(_, bytes)| bytes.to_vec()).collect(),
        Some(corpus) => match samples_in(corpus)? {
            Some(messages) => messages,
            None => {
                println!(
                    "   (no sample folder at {}: only made-up children are sent)",
                    corpus.display()
                );
                return Ok((0, 0, 0));
            }
        },
    };
    let (mut accepted, mut rejected) = (0, 0);
    for bytes in &messages {
        let answer = post_hl7(http, url, &String::from_utf8_lossy(bytes)).await?;
        match ack_code(&answer) {
            "AA" | "CA" => accepted += 1,
            _ => rejected += 1,
        }
    }
    Ok((accepted, rejected, messages.len()))
}

/// Made-up children: deterministic, varied names, birth dates and doses.
async fn send_generated(http: &reqwest::Client, url: &str, n: usize) -> Result<usize, String> {
    const GIVEN: [&str; 16] = [
        "Ava", "Liam", "Mia", "Noah", "Zoe", "Ethan", "Ivy", "Lucas", "Nora", "Owen", "Ruby",
        "Eli", "Maya", "Leo", "Aria", "Jack",
    ];
    const FAMILY: [&str; 16] = [
        "Garcia", "Nguyen", "Smith", "Okafor", "Kowalski", "Haddad", "Silva", "Chen", "Dubois",
        "Ivanova", "Mensah", "Rossi", "Tanaka", "Novak", "Murphy", "Khan",
    ];
    const VACCINES: [(&str, &str); 8] = [
        ("08", "HepB"),
        ("20", "DTaP"),
        ("10", "IPV"),
        ("03", "MMR"),
        ("21", "Varicella"),
        ("83", "HepA"),
        ("133", "PCV13"),
        ("116", "Rotavirus"),
    ];
    let mut seed: u64 = 0x1155_b01d;
    let mut next = move |m: usize| {
        // xorshift64: reproducible without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    let mut sent = 0;
    for i in 0..n {
        let given = GIVEN[next(GIVEN.len())];
        let family = FAMILY[next(FAMILY.len())];
        let (y, m, d) = (2015 + next(10), 1 + next(12), 1 + next(28));
        let sex = if next(2) == 0 { "F" } else { "M" };
        let mut msg = format!(
            "MSH|^~\\&|DEMOEHR|DEMOGEN|IISBULK|IIS|20251001120000-0500||VXU^V04^VXU_V04|DEMO{i:05}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMOGEN|IIS\r\
PID|1||DG{i:05}^^^DEMOGEN^MR||{family}^{given}^^^^^L||{y}{m:02}{d:02}|{sex}|||{} Main St^^Springfield^IL^627{:02}^USA^P\r",
            100 + i,
            next(100)
        );
        for dose in 0..1 + next(4) {
            let (cvx, name) = VACCINES[next(VACCINES.len())];
            // Doses two months apart from birth, never after 2025.
            let months = (y * 12 + m - 1 + 2 * (dose + 1)).min(2025 * 12 + 11);
            msg.push_str(&format!(
                "ORC|RE||DEMO{i:05}-{dose}^DEMOGEN\rRXA|0|1|{}{:02}{d:02}||{cvx}^{name}^CVX|999|||01^Historical information^NIP001|||||||||||CP|A\r",
                months / 12,
                months % 12 + 1
            ));
        }
        let answer = post_hl7(http, url, &msg).await?;
        match ack_code(&answer) {
            "AA" => sent += 1,
            code => tracing::warn!(code, message = i, "a made-up VXU was not accepted"),
        }
    }
    Ok(sent)
}

/// Newborns a birth hospital reported as "Baby Girl" / "Baby Boy" and the
/// clinic later reported by name, with their own record numbers: the same
/// family, birth date, mother and address, but no given name to compare, so
/// the matcher leaves each pair for a person to decide (the console's
/// review queue has something to show).
async fn send_possible_duplicates(http: &reqwest::Client, url: &str) -> Result<(), String> {
    const NEWBORNS: [(&str, &str, &str, &str, &str); 3] = [
        ("Whitfield", "Katherine", "Baby Girl", "F", "20250305"),
        ("Alvarado", "Mateo", "Baby Boy", "M", "20250411"),
        ("Lindqvist", "Sofia", "Baby Girl", "F", "20250602"),
    ];
    for (i, (family, given, placeholder, sex, dob)) in NEWBORNS.iter().enumerate() {
        for (facility, mrn, name) in [
            ("DEMOGEN", format!("DN{i:03}"), *given),
            ("DEMOHOSP", format!("H{i:03}"), *placeholder),
        ] {
            let msg = format!(
                "MSH|^~\\&|DEMOEHR|{facility}|IISBULK|IIS|20251001120000-0500||VXU^V04^VXU_V04|DUP{i:03}{facility}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{facility}|IIS\r\
PID|1||{mrn}^^^{facility}^MR||{family}^{name}^^^^^L|Moreau^^^^^^M|{dob}|{sex}|||{} Elm Street^^Springfield^IL^62704^USA^P||^PRN^PH^^^217^555{:04}\r\
NK1|1|{family}^Claire^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||DUP{i:03}{facility}-1^{facility}\rRXA|0|1|{dob}||08^HepB^CVX|999|||01^Historical information^NIP001|||||||||||CP|A\r",
                12 + i,
                140 + i
            );
            let answer = post_hl7(http, url, &msg).await?;
            // The placeholder name is accepted with a warning (AE).
            if !matches!(ack_code(&answer), "AA" | "AE") {
                return Err(format!("a demo newborn's VXU was refused: {answer}"));
            }
        }
    }
    Ok(())
}

/// How many provisional persons wait in the console's review queue, as the
/// demo reviewer sees it through the console API.
async fn review_queue_length(http: &reqwest::Client, url: &str) -> Result<usize, String> {
    let login = http
        .post(format!("{url}/console/api/session"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(
            serde_json::json!({
                "username": DEMO_REVIEWER,
                "password": DEMO_REVIEWER_PASSWORD,
            })
            .to_string(),
        )
        .send()
        .await
        .map_err(|e| format!("POST {url}/console/api/session: {e}"))?;
    if !login.status().is_success() {
        return Err(format!(
            "the demo reviewer could not log in: HTTP {}",
            login.status()
        ));
    }
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("the console answered a login without a session cookie")?
        .to_owned();
    let text = http
        .get(format!("{url}/console/api/review?limit=500"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .map_err(|e| format!("GET {url}/console/api/review: {e}"))?
        .text()
        .await
        .map_err(|e| format!("GET {url}/console/api/review: {e}"))?;
    let queue: Value =
        serde_json::from_str(&text).map_err(|e| format!("GET {url}/console/api/review: {e}"))?;
    Ok(queue["queue"].as_array().map_or(0, Vec::len))
}

/// The demo clinic's Group once matching and membership have caught up
/// (its size unchanged for two seconds).
async fn settled_group(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    key_file: &Path,
) -> Result<Value, String> {
    let token = crate::client::token::token_with(url, client_id, key_file).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: Option<Value> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let text = http
            .get(format!("{url}/fhir/Group?_summary=true"))
            .bearer_auth(&token)
            .header("accept", "application/fhir+json")
            .send()
            .await
            .map_err(|e| format!("GET {url}/fhir/Group: {e}"))?
            .text()
            .await
            .map_err(|e| format!("GET {url}/fhir/Group: {e}"))?;
        let bundle: Value =
            serde_json::from_str(&text).map_err(|e| format!("GET {url}/fhir/Group: {e}"))?;
        let group = bundle["entry"][0]["resource"].clone();
        if group.is_null() {
            return Err(format!("the demo clinic has no Group: {bundle}"));
        }
        if last
            .as_ref()
            .is_some_and(|l| l["quantity"] == group["quantity"])
            || Instant::now() > deadline
        {
            return Ok(group);
        }
        last = Some(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_samples_are_the_corpus_vxus_byte_for_byte() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7");
        let on_disk = samples_in(&corpus)
            .expect("readable samples")
            .expect("testdata/corpus/hl7 is part of the repository");
        let built_in: Vec<Vec<u8>> = SAMPLES.iter().map(|(_, b)| b.to_vec()).collect();
        assert!(
            on_disk == built_in,
            "the demo's built-in samples differ from testdata/corpus/hl7/vxu-*.hl7"
        );
    }
}
