//! Z34 history queries end to end over HTTP against a registry in the
//! embedded backend.
//!
//! `cargo bench -p iisbulk-local --bench query` generates
//! `IISBULK_BENCH_PEOPLE` synthetic children (default 20,000), sends each as
//! a VXU through intake and the matcher (in process, as `iisbulk serve`
//! does), then starts the ingest router on a loopback port and asks
//! `IISBULK_BENCH_QUERIES` Z34 queries (default 5,000; noisy copies of
//! registered children and children never seen) with
//! `IISBULK_BENCH_CONCURRENCY` clients (default 8): queries/s, p50/p99
//! latency and the answer profiles. `IISBULK_BENCH_PROFILES=Z34,Z44` asks
//! the same queries as Z34 and then as Z44 (evaluated history and CDSi
//! forecast, answered Z42) on the same registry.
//!
//! Loading goes through the real find-or-create, on a store opened for a
//! bulk load (synced about once a second rather than per batch); queries
//! then run on the store reopened as `iisbulk serve` opens it, every write
//! durable before its answer. `IISBULK_BENCH_STORE=/path/iis.redb` keeps
//! the loaded registry there and, when the file already holds a load of the same size
//! (a `.people` file beside it says so), queries it without loading again.
//! The change feed is trimmed while loading, as `iisbulk serve` trims it
//! behind its consumers (here the matcher runs inline, so nothing reads
//! it). Under `cargo test` (no `--bench`) a small smoke version runs.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::{IngestConfig, IngestDeps};
use iz::{Clock, IisIdentity};
use matching::{Matcher, PatientRecord};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use store::embedded::EmbeddedStore;
use store::{ChangeFeed, ItemStore, Trim};
use synthetic_population::Population;

// As in `iisbulk serve` (functions/local/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FACILITY: &str = "BENCHFAC";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password-1";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Text safe inside an HL7 component.
fn clean(s: &Option<String>) -> String {
    s.as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !"|^~\\&\r\n".contains(*c))
        .collect()
}

fn dob(r: &PatientRecord) -> String {
    clean(&r.birth_date).replace('-', "")
}

fn phone(r: &PatientRecord) -> String {
    let d: String = clean(&r.phone)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if d.len() == 10 {
        format!("^PRN^PH^^^{}^{}", &d[..3], &d[3..])
    } else {
        String::new()
    }
}

fn address(r: &PatientRecord) -> String {
    format!(
        "{}^^{}^{}^{}^USA^P",
        clean(&r.street),
        clean(&r.city),
        clean(&r.state),
        clean(&r.zip)
    )
}

fn ids(r: &PatientRecord) -> String {
    let mut out: Vec<String> = r
        .identifiers
        .iter()
        .map(|i| {
            format!(
                "{}^^^{}^{}",
                i.value.replace(['|', '^', '~', '&', '\\'], ""),
                i.system.replace(['|', '^', '~', '&', '\\'], ""),
                i.kind
            )
        })
        .collect();
    if let Some(ssn) = &r.ssn {
        out.push(format!("{ssn}^^^SSA^SS"));
    }
    out.join("~")
}

fn sex(r: &PatientRecord) -> String {
    clean(&r.sex)
}

fn births(r: &PatientRecord) -> (String, String) {
    match (r.multiple_birth, r.birth_order) {
        (Some(true), Some(o)) => ("Y".into(), o.to_string()),
        (Some(true), None) => ("Y".into(), String::new()),
        _ => (String::new(), String::new()),
    }
}

fn vxu(n: usize, r: &PatientRecord) -> String {
    let (mb, bo) = births(r);
    format!(
        "MSH|^~\\&|BENCH|{FACILITY}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|V{n}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{FACILITY}|IISFAC\r\
PID|1||{ids}||{fam}^{giv}^{mid}^^^^L|{mmn}^^^^^^M|{dob}|{sex}|||{addr}||{phone}|||||||||||{mb}|{bo}\r\
NK1|1|{gfam}^{ggiv}^^^^^L|GRD^Guardian^HL70063\r\
ORC|RE||V{n}-1^{FACILITY}\rRXA|0|1|{dob}||08^Hep B^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r",
        ids = ids(r),
        fam = clean(&r.family),
        giv = clean(&r.given),
        mid = clean(&r.middle),
        mmn = clean(&r.mothers_maiden_family),
        dob = dob(r),
        sex = sex(r),
        addr = address(r),
        phone = phone(r),
        gfam = clean(&r.guardian_family),
        ggiv = clean(&r.guardian_given),
    )
}

/// A query profile the bench asks.
#[derive(Clone, Copy, Debug)]
enum Profile {
    /// Request immunization history (answered Z32 / Z31 / Z33).
    Z34,
    /// Request evaluated history and forecast (answered Z42 / Z31 / Z33).
    Z44,
}

impl Profile {
    fn code(self) -> &'static str {
        match self {
            Profile::Z34 => "Z34",
            Profile::Z44 => "Z44",
        }
    }

    fn qpd1(self) -> &'static str {
        match self {
            Profile::Z34 => "Z34^Request Immunization History^CDCPHINVS",
            Profile::Z44 => "Z44^Request Evaluated History and Forecast^CDCPHINVS",
        }
    }
}

fn query(profile: Profile, n: usize, r: &PatientRecord) -> String {
    let (mb, bo) = births(r);
    format!(
        "MSH|^~\\&|BENCH|{FACILITY}|IIS|IISFAC|20250601120000-0500||QBP^Q11^QBP_Q11|Q{n}|P|2.5.1|||ER|AL|||||{p}^CDCPHINVS|{FACILITY}|IISFAC\r\
QPD|{qpd1}|T{n}|{ids}|{fam}^{giv}^{mid}^^^^L|{mmn}^^^^^^M|{dob}|{sex}|{addr}|{phone}|{mb}|{bo}\r\
RCP|I|10^RD&records&HL70126\r",
        p = profile.code(),
        qpd1 = profile.qpd1(),
        ids = ids(r),
        fam = clean(&r.family),
        giv = clean(&r.given),
        mid = clean(&r.middle),
        mmn = clean(&r.mothers_maiden_family),
        dob = dob(r),
        sex = sex(r),
        addr = address(r),
        phone = phone(r),
    )
}

/// `IISBULK_BENCH_PROFILES`: the query profiles to ask, in order (the
/// smoke version under `cargo test` asks both).
fn profiles(bench: bool) -> Vec<Profile> {
    let default = if bench { "Z34" } else { "Z34,Z44" };
    let text = std::env::var("IISBULK_BENCH_PROFILES").unwrap_or_else(|_| default.into());
    text.split(',')
        .map(|p| match p.trim() {
            "Z34" => Profile::Z34,
            "Z44" => Profile::Z44,
            other => panic!("IISBULK_BENCH_PROFILES: {other:?} is not Z34 or Z44"),
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (people, queries, concurrency) = if bench {
        (
            env_or("IISBULK_BENCH_PEOPLE", 20_000),
            env_or("IISBULK_BENCH_QUERIES", 5_000),
            env_or("IISBULK_BENCH_CONCURRENCY", 8),
        )
    } else {
        (100, 20, 4)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(people, queries, concurrency.max(1), &profiles(bench)));
}

/// Where the registry lives, and whether it already holds `people`.
fn store_path(people: usize) -> (Option<tempfile::TempDir>, std::path::PathBuf, bool) {
    match std::env::var_os("IISBULK_BENCH_STORE") {
        Some(p) => {
            let path = std::path::PathBuf::from(p);
            let loaded = std::fs::read_to_string(path.with_extension("people"))
                .ok()
                .and_then(|n| n.trim().parse::<usize>().ok())
                == Some(people);
            if !loaded {
                // The marker first: an interrupted load is never reused.
                let _ = std::fs::remove_file(path.with_extension("people"));
                let _ = std::fs::remove_file(&path);
            }
            (None, path, loaded)
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("iis.redb");
            (Some(dir), path, false)
        }
    }
}

fn gib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / f64::from(1u32 << 30)
}

async fn run(people: usize, queries: usize, concurrency: usize, profiles: &[Profile]) {
    let (_dir, path, loaded) = store_path(people);
    let population = Population::generate(people, 20_251_122);
    let matcher = Arc::new(Matcher::default());
    if loaded {
        println!(
            "registry: reusing {people} children in {} ({:.2} GiB)",
            path.display(),
            gib(&path)
        );
    } else {
        // Loading is set-up, not what is measured: the store syncs about
        // once a second instead of per batch, and is closed (which makes
        // everything durable) before the queries run on an ordinary store.
        let embedded = Arc::new(EmbeddedStore::open_for_bulk_load(&path).unwrap());
        let store: Arc<dyn ItemStore> = embedded.clone();
        load(&store, &embedded, &path, &population, &matcher).await;
        drop(store);
        drop(Arc::into_inner(embedded).expect("the loaders are done"));
        if std::env::var_os("IISBULK_BENCH_STORE").is_some() {
            std::fs::write(path.with_extension("people"), people.to_string()).unwrap();
        }
    }
    let store: Arc<dyn ItemStore> = Arc::new(EmbeddedStore::open(&path).unwrap());
    for &profile in profiles {
        ask(
            store.clone(),
            matcher.clone(),
            &population,
            profile,
            queries,
            concurrency,
        )
        .await;
    }
}

async fn load(
    store: &Arc<dyn ItemStore>,
    embedded: &Arc<EmbeddedStore>,
    path: &std::path::Path,
    population: &Population,
    matcher: &Arc<Matcher>,
) {
    let people = population.len();
    let users = AuthorizedUsers::new(store.clone());
    let au = users
        .add(
            NewAuthorizedUser {
                id: "bench".into(),
                kind: AuKind::HealthSystem,
                name: "Bench".into(),
                facilities: vec![FACILITY.into()],
                username: USER.into(),
                password: PASSWORD.into(),
            },
            0,
        )
        .await
        .unwrap();
    let intake = Intake::new(store.clone(), IisIdentity::default());
    let matching = PatientMatching::new(store.clone(), matcher.clone());
    let clock = Clock::at(1_790_000_000);
    // Loaded by 32 concurrent senders, as a busy IIS would be: the embedded
    // store's group commit shares fsyncs between them, and concurrent
    // find-or-create is safe.
    let started = Instant::now();
    let messages: Arc<Vec<String>> = Arc::new(
        population
            .people
            .iter()
            .enumerate()
            .map(|(n, p)| vxu(n, p))
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let intake = Arc::new(intake);
    let trimmer = {
        let feed = embedded.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = feed.trim(Trim::OlderThan(Duration::from_secs(5))).await;
            }
        })
    };
    let progress = {
        let (next, path) = (next.clone(), path.to_owned());
        tokio::spawn(async move {
            let mut last = (0usize, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let done = next.load(std::sync::atomic::Ordering::Relaxed).min(people);
                println!(
                    "  loading: {done} of {people} after {:.0} s ({:.0}/s in the last minute), store {:.2} GiB",
                    started.elapsed().as_secs_f64(),
                    (done - last.0) as f64 / last.1.elapsed().as_secs_f64(),
                    gib(&path)
                );
                last = (done, Instant::now());
            }
        })
    };
    let mut loaders = Vec::new();
    for _ in 0..32 {
        let (intake, matching, au, messages, next) = (
            intake.clone(),
            matching.clone(),
            au.clone(),
            messages.clone(),
            next.clone(),
        );
        loaders.push(tokio::spawn(async move {
            let mut loaded = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(message) = messages.get(i) else {
                    break;
                };
                let d = intake
                    .receive(&au, &Transport::Rest, message.as_bytes(), clock)
                    .await
                    .unwrap();
                if let Some(id) = d.message_id {
                    matching.process(&id, 1).await.unwrap();
                    loaded += 1;
                }
            }
            loaded
        }));
    }
    let mut loaded = 0;
    for l in loaders {
        loaded += l.await.unwrap();
    }
    let load = started.elapsed();
    progress.abort();
    trimmer.abort();
    // Awaited so their handles on the store are gone before it is closed.
    let _ = progress.await;
    let _ = trimmer.await;
    println!(
        "registry: {loaded} of {people} synthetic children loaded through intake + matcher in {:.1} s ({:.0}/s); store {:.2} GiB",
        load.as_secs_f64(),
        loaded as f64 / load.as_secs_f64(),
        gib(path)
    );
}

async fn ask(
    store: Arc<dyn ItemStore>,
    matcher: Arc<Matcher>,
    population: &Population,
    profile: Profile,
    queries: usize,
    concurrency: usize,
) {
    let deps = Arc::new(IngestDeps::new(
        store.clone(),
        IisIdentity::default(),
        IngestConfig {
            matcher,
            ..IngestConfig::default()
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hl7", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, ingest::router(deps)).await });

    let asks: Vec<String> = population
        .queries(7)
        .take(queries)
        .enumerate()
        .map(|(n, q)| query(profile, n, &q.record))
        .collect();
    let asks = Arc::new(asks);
    let client = reqwest::Client::new();
    // Warm the credential cache (one Argon2 check) before timing.
    let _ = client
        .post(&url)
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/hl7-v2")
        .body(asks[0].clone())
        .send()
        .await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = synthetic_population::bench::process_cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, asks, next) = (client.clone(), url.clone(), asks.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = asks.get(i) else { break };
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .basic_auth(USER, Some(PASSWORD))
                    .header("content-type", "application/hl7-v2")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                out.push((t.elapsed(), status, answer_profile(&text)));
            }
            out
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    let cpu = synthetic_population::bench::process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    let mut latencies: Vec<Duration> = results.iter().map(|r| r.0).collect();
    latencies.sort();
    let mut profiles = std::collections::BTreeMap::new();
    for (_, status, p) in &results {
        *profiles.entry(format!("{status} {p}")).or_insert(0usize) += 1;
    }
    println!(
        "{profile:?} over HTTP: {} queries, {concurrency} clients: {:.0} queries/s   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        results.len(),
        results.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    // CPU per query (server and clients together) does not depend on
    // the disk; the latency tail does: every answer waits for its durable
    // query record (an fsync), so a slow fsync holds every client at once.
    println!(
        "CPU (server + clients) {} per query; {} queries over 100 ms",
        cpu.map_or("unknown".into(), |c| format!(
            "{:.2} ms",
            c.as_secs_f64() * 1e3 / results.len().max(1) as f64
        )),
        latencies
            .iter()
            .filter(|l| **l > Duration::from_millis(100))
            .count()
    );
    println!("answers: {profiles:?}");
    assert!(
        results.iter().all(|r| r.1 == 200),
        "every query must be answered with HTTP 200"
    );
    let found = match profile {
        Profile::Z34 => "Z32",
        Profile::Z44 => "Z42",
    };
    assert!(
        profiles.keys().any(|k| k.contains(found)),
        "no query found its child: {profiles:?}"
    );
}

/// MSH-21 profile and QAK-2 of an answer, e.g. `Z32 OK`, `Z33 NF`.
fn answer_profile(answer: &str) -> String {
    let field = |seg: &str, n: usize| -> String {
        answer
            .split(['\r', '\n'])
            .find(|l| l.starts_with(seg))
            .and_then(|l| l.split('|').nth(n))
            .unwrap_or("")
            .to_owned()
    };
    let msh21 = field("MSH|", 20);
    let qak2 = field("QAK|", 2);
    format!("{} {qak2}", msh21.split('^').next().unwrap_or(""))
}
