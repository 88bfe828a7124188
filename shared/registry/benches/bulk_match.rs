//! `Patient/$bulk-match` throughput and memory over the embedded store.
//!
//! `cargo bench -p registry --bench bulk_match` files
//! `IISBULK_BENCH_PEOPLE` synthetic people (default 100,000; the
//! population of the matching benches, same seed) into an `EmbeddedStore`
//! as the registry holds them for matching (each person's match view and
//! blocking-key entries, as `matching_store` loads them) plus a person
//! profile (name and sex) per person, so a certain match comes back with a
//! Patient. The inputs are `IISBULK_BENCH_INPUTS` (default 100,000) fresh
//! noisy records drawn by the generator (known people with typos, slips and
//! missing fields, twins, new siblings and strangers: certain, possible and
//! no matches in the generator's proportions), each sent as a FHIR Patient
//! with its own id in one Parameters body. The body is parsed and checked
//! as the kick-off does (timed apart), the job created (inputs to a blob),
//! and then run as `iisbulk serve`'s worker runs it
//! (`BulkMatchJobs::run_pending`), result Bundles to files in a directory.
//!
//! The job then runs in a process of its own (this bench again, with
//! `--run-job`: the store, the worker and the job only, as in `iisbulk
//! serve`), which prints patients/s and its peak RSS (VmHWM); then how the
//! results grade. `IISBULK_BENCH_MATCHERS` sets the patients matched at
//! once (default `DEFAULT_MATCHERS`). `IISBULK_BENCH_DIR`
//! picks the disk. `IISBULK_BENCH_RESULTS=<file>` also writes every result
//! Bundle there, in input order (one NDJSON file), to compare two builds'
//! answers byte for byte. Under `cargo test` (no `--bench`) a smoke version runs
//! (2,000 people, 500 inputs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matching::blocking::index_keys;
use matching::{Grade, Matcher, PatientRecord};
use registry::bulk_match::BulkMatchJobs;
use registry::fhir_match::parse_bulk_match_request;
use registry::membership::JurisdictionPolicy;
use registry::patients::{MatchView, PatientMatching};
use registry::persons::{Demographics, Person, PersonStatus, Stamped};
use registry::queries::{Queries, QueryPolicy};
use registry::{AuKind, AuthorizedUsers, NewAuthorizedUser};
use serde_json::{json, Value};
use store::embedded::EmbeddedStore;
use store::{Condition, DirBlobStore, Item, ItemStore, Key, Write};
use synthetic_population::Population;
use tokio::task::JoinSet;

// As in the binaries that run it (iisbulk).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use synthetic_population::bench::{env_count, machine, peak_rss_mib, process_cpu};

/// The matching benches' seeds: the same people.
const POPULATION_SEED: u64 = 20_251_031;
/// Not the matching benches' query seed: other noisy records.
const INPUT_SEED: u64 = 26;
const WRITES_PER_TRANSACTION: usize = 100;
const IN_FLIGHT: usize = 32;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The job's own process (see `run`): only the store, the worker and
    // the job, so its peak RSS is the job's, not the load's.
    if let Some(at) = args.iter().position(|a| a == "--run-job") {
        let (Some(dir), Some(job)) = (args.get(at + 1), args.get(at + 2)) else {
            panic!("--run-job <dir> <job id>");
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(run_job(std::path::Path::new(dir), job));
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let (people, inputs) = if bench {
        (
            env_count("IISBULK_BENCH_PEOPLE", 100_000),
            env_count("IISBULK_BENCH_INPUTS", 100_000),
        )
    } else {
        (2_000, 500)
    };
    println!(
        "bulk match bench (embedded store){}: {people} people, {inputs} input patients",
        if bench { "" } else { " SMOKE" }
    );
    println!("machine: {}", machine());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(people, inputs));
    println!("machine at end: {}", machine());
}

async fn run(people: usize, inputs: usize) {
    let dir = match std::env::var_os("IISBULK_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("bench temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path().join("registry.redb")).expect("store"));
    let items: Arc<dyn ItemStore> = store.clone();
    let matcher = Arc::new(Matcher::default());

    let started = Instant::now();
    let population = Population::generate(people, POPULATION_SEED);
    load(&store, &matcher, &population).await;
    println!(
        "registry: {} people filed in {:.1} s",
        population.len(),
        started.elapsed().as_secs_f64()
    );

    let policy = Arc::new(JurisdictionPolicy::default());
    let au = registry::membership::onboard(
        &AuthorizedUsers::new(items.clone()),
        NewAuthorizedUser {
            id: "clinic-a".into(),
            kind: AuKind::Clinic,
            name: "Clinic A".into(),
            facilities: vec!["FACA".into()],
            username: "a".into(),
            password: "a long enough password".into(),
        },
        0,
        &policy,
    )
    .await
    .expect("onboard");

    // Fresh noisy records, each its own input patient.
    // A record a client could not send as a FHIR Patient (a birth date the
    // noise made impossible) is left out, as the client would have to.
    let mut unsendable = 0usize;
    let parameters: Vec<Value> = population
        .queries(INPUT_SEED)
        .enumerate()
        .map(|(n, q)| fhir_patient(&format!("in-{n}"), &q.record))
        .filter(|p| {
            let ok = p.as_object().is_some_and(|p| {
                registry::fhir_match::patient_request(p, &policy.identifier_base).is_ok()
            });
            unsendable += usize::from(!ok);
            ok
        })
        .take(inputs)
        .map(|p| json!({"name": "resource", "resource": p}))
        .collect();
    println!("inputs: {unsendable} generated records left out as not valid FHIR Patients");
    drop(population);
    let body = serde_json::to_vec(&json!({"resourceType": "Parameters", "parameter": parameters}))
        .expect("body");
    drop(parameters);
    println!(
        "request: {inputs} patients, {:.1} MiB of JSON",
        body.len() as f64 / f64::from(1u32 << 20)
    );

    let jobs = bulk_match_jobs(items.clone(), dir.path(), inputs);
    let t0 = Instant::now();
    let value: Value = serde_json::from_slice(&body).expect("JSON");
    let request =
        parse_bulk_match_request(&value, &policy.identifier_base, inputs).expect("a valid request");
    drop(value);
    drop(body);
    let parse = t0.elapsed();
    let job = jobs
        .create(
            &au.id,
            &request,
            "https://iis.example/fhir/Patient/$bulk-match",
            store::limits::now_epoch_millis(),
        )
        .await
        .expect("job");
    drop(request);
    println!(
        "kick-off: body parsed and every patient checked in {:.2} s, inputs stored in {:.2} s",
        parse.as_secs_f64(),
        t0.elapsed().as_secs_f64() - parse.as_secs_f64()
    );

    // The job runs in a process of its own, as it would in `iisbulk
    // serve`, so its peak RSS is not the population's and the load's. The
    // store is closed first (one process at a time holds it).
    drop(jobs);
    drop(items);
    drop(store);
    let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .arg("--run-job")
        .arg(dir.path())
        .arg(&job.id)
        .status()
        .expect("the job's process");
    assert!(status.success(), "the job's process failed");

    let items: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("registry.redb")).expect("store"));
    let jobs = bulk_match_jobs(items, dir.path(), inputs);
    let job = jobs.get(&job.id).await.expect("job").expect("job");
    assert_eq!(job.matched as usize, inputs, "every input answered");
    println!("  files: {}", job.files.len());
    grades(&jobs, &job).await;
}

/// The jobs as `iisbulk serve` configures them, over the bench's store and
/// blob directory.
fn bulk_match_jobs(
    items: Arc<dyn ItemStore>,
    dir: &std::path::Path,
    max_patients: usize,
) -> BulkMatchJobs {
    let policy = Arc::new(JurisdictionPolicy::default());
    let matching = PatientMatching::new(items.clone(), Arc::new(Matcher::default()));
    let queries = Queries::new(
        matching,
        QueryPolicy {
            jurisdiction: policy.clone(),
            ..Default::default()
        },
    );
    let blobs = DirBlobStore::open(dir.join("blobs")).expect("blobs");
    let mut jobs = BulkMatchJobs::new(
        items,
        Arc::new(blobs),
        queries,
        "https://iis.example/fhir",
        &policy.identifier_base,
    );
    jobs.max_patients = max_patients;
    jobs.max_body_bytes = usize::MAX;
    jobs.matchers = env_count("IISBULK_BENCH_MATCHERS", jobs.matchers);
    jobs
}

/// Runs the queued job as the local worker does, in this process alone,
/// and reports its speed and this process's peak RSS.
async fn run_job(dir: &std::path::Path, id: &str) {
    let items: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.join("registry.redb")).expect("store"));
    let jobs = bulk_match_jobs(items, dir, usize::MAX);
    let patients = jobs.get(id).await.expect("job").expect("job").patients;
    let cpu_before = process_cpu();
    let t = Instant::now();
    jobs.run_pending(10).await.expect("run");
    let wall = t.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a - b)
        .unwrap_or(Duration::ZERO);
    println!();
    println!(
        "== Patient/$bulk-match job (BulkMatchJobs::run_pending, its own process, {} matchers) ==",
        jobs.matchers
    );
    println!(
        "  {patients} patients in {:.1} s: {:.0} patients/s; {:.1} s of CPU ({:.0}% of one core)",
        wall.as_secs_f64(),
        patients as f64 / wall.as_secs_f64().max(1e-9),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    );
    println!(
        "  peak RSS of the job's process {}",
        peak_rss_mib().map_or("n/a".into(), |m| format!("{m:.0} MiB"))
    );
}

/// How the result Bundles grade: a certain match, possible matches
/// (withheld by the default policy: an outcome entry), or none.
async fn grades(jobs: &BulkMatchJobs, job: &registry::bulk_match::BulkMatchJob) {
    use tokio::io::AsyncBufReadExt;
    let (mut certain, mut possible, mut none) = (0u64, 0u64, 0u64);
    let mut keep = std::env::var_os("IISBULK_BENCH_RESULTS")
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("results file")));
    for f in &job.files {
        let key = registry::bulk_match::output_key(&job.id, &f.name);
        let (reader, _) = jobs.blobs().get(&key).await.expect("file").expect("file");
        let mut lines = tokio::io::BufReader::new(reader).lines();
        while let Some(line) = lines.next_line().await.expect("line") {
            if let Some(keep) = keep.as_mut() {
                use std::io::Write as _;
                writeln!(keep, "{line}").expect("results file");
            }
            let b: Value = serde_json::from_str(&line).expect("Bundle");
            let first = &b["entry"][0];
            match (
                first["search"]["mode"].as_str(),
                first["search"]["extension"][0]["valueCode"].as_str(),
            ) {
                (Some("match"), Some("certain")) => certain += 1,
                (Some("match"), _) | (Some("outcome"), _) => possible += 1,
                _ => none += 1,
            }
        }
    }
    if let Some(mut keep) = keep {
        use std::io::Write as _;
        keep.flush().expect("results file");
    }
    let n = (certain + possible + none).max(1) as f64;
    println!(
        "  results: {certain} certain ({:.1}%), {possible} possible ({:.1}%), {none} none ({:.1}%)",
        100.0 * certain as f64 / n,
        100.0 * possible as f64 / n,
        100.0 * none as f64 / n
    );
}

/// A synthetic record as the FHIR Patient a client would send.
fn fhir_patient(id: &str, r: &PatientRecord) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": id});
    let mut given = Vec::new();
    given.extend(r.given.clone());
    given.extend(r.middle.clone());
    p["name"] =
        json!([{"family": r.family.clone().unwrap_or_else(|| "Unknown".into()), "given": given}]);
    let birth = r.birth_date.clone().unwrap_or_default();
    let birth = if birth.len() == 8 && birth.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..])
    } else {
        birth
    };
    p["birthDate"] = json!(birth);
    if let Some(s) = &r.sex {
        p["gender"] = json!(match s.as_str() {
            "F" => "female",
            "M" => "male",
            _ => "unknown",
        });
    }
    let mut ids: Vec<Value> = r
        .identifiers
        .iter()
        .filter(|i| !i.value.is_empty())
        .map(|i| {
            json!({"system": if i.system.is_empty() { "urn:bench" } else { i.system.as_str() }, "value": i.value,
                "type": {"coding": [{"code": if i.kind.is_empty() { "MR" } else { i.kind.as_str() }}]}})
        })
        .collect();
    if let Some(ssn) = &r.ssn {
        ids.push(json!({"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}));
    }
    if !ids.is_empty() {
        p["identifier"] = json!(ids);
    }
    if let Some(phone) = &r.phone {
        p["telecom"] = json!([{"system": "phone", "value": phone}]);
    }
    if r.street.is_some() || r.city.is_some() || r.zip.is_some() {
        p["address"] = json!([{"line": r.street.iter().collect::<Vec<_>>(), "city": r.city, "state": r.state, "postalCode": r.zip}]);
    }
    if let Some(m) = &r.mothers_maiden_family {
        p["extension"] = json!([{"url": fhir::MOTHERS_MAIDEN_NAME, "valueString": m}]);
    }
    if let Some(order) = r.birth_order.filter(|o| (1..=9).contains(o)) {
        p["multipleBirthInteger"] = json!(order);
    } else if let Some(b) = r.multiple_birth {
        p["multipleBirthBoolean"] = json!(b);
    }
    p
}

fn person_id(index: usize) -> String {
    format!("P{index}")
}

fn put(key: Key, data: Vec<u8>) -> Write {
    Write::Put {
        item: Item::new(key, data),
        cond: Condition::None,
    }
}

/// Files each person as `matching_store` does (match view, blocking-key
/// heads and entries) plus a person profile with name and sex.
async fn load(store: &Arc<EmbeddedStore>, matcher: &Matcher, population: &Population) {
    let mut blocks: HashMap<String, ()> = HashMap::new();
    let mut batch: Vec<Write> = Vec::with_capacity(WRITES_PER_TRANSACTION);
    let mut in_flight: JoinSet<store::Result<()>> = JoinSet::new();
    for (i, source) in population.people.iter().enumerate() {
        let record = matcher.normalize(source);
        let keys = index_keys(&record);
        let view = serde_json::to_vec(&MatchView {
            person: person_id(i),
            record,
        })
        .expect("match view JSON");
        let mut writes = vec![
            put(registry::keys::match_view(&source.id), view),
            put(
                registry::keys::person(&person_id(i)),
                serde_json::to_vec(&person(i, source)).expect("person JSON"),
            ),
        ];
        for key in keys {
            if !key.starts_with("J:") && !blocks.contains_key(&key) {
                writes.push(put(registry::keys::block_head(&key), Vec::new()));
            }
            writes.push(put(
                registry::keys::block_entry(&key, &source.id),
                Vec::new(),
            ));
            blocks.insert(key, ());
        }
        for w in writes {
            batch.push(w);
            if batch.len() == WRITES_PER_TRANSACTION {
                submit(store, &mut in_flight, std::mem::take(&mut batch)).await;
            }
        }
    }
    if !batch.is_empty() {
        submit(store, &mut in_flight, batch).await;
    }
    while let Some(done) = in_flight.join_next().await {
        done.expect("load task").expect("load transaction");
    }
}

fn person(i: usize, r: &PatientRecord) -> Person {
    let stamped = |v| Stamped {
        value: Some(v),
        at: 0,
        source: r.id.clone(),
    };
    let demographics = Demographics {
        name: stamped(iz::view::PersonName {
            family: r.family.clone(),
            given: r.given.clone(),
            middle: r.middle.clone(),
            ..Default::default()
        }),
        sex: Stamped {
            value: r.sex.clone(),
            at: 0,
            source: r.id.clone(),
        },
        ..Default::default()
    };
    Person {
        id: person_id(i),
        status: PersonStatus::Active,
        certainty: Grade::Certain,
        demographics,
        notes: Vec::new(),
        created_at: 0,
        updated_at: 0,
        facts: 0,
        merged_into: None,
    }
}

async fn submit(
    store: &Arc<EmbeddedStore>,
    in_flight: &mut JoinSet<store::Result<()>>,
    writes: Vec<Write>,
) {
    while in_flight.len() >= IN_FLIGHT {
        if let Some(done) = in_flight.join_next().await {
            done.expect("load task").expect("load transaction");
        }
    }
    let store = store.clone();
    in_flight.spawn(async move { store.transact(writes).await });
}
