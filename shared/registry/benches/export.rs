//! Group export throughput and memory over the embedded store.
//!
//! `cargo bench -p registry --bench export` builds one real child through the
//! whole pipeline (intake, matching, membership: a VXU with
//! `IISBULK_BENCH_DOSES` doses, default 10), then clones that child's items
//! (profile, source link and source record, consolidated immunizations,
//! Group member) under new ids straight into the store until the Authorized
//! User's Group has `IISBULK_BENCH_PATIENTS` members (default 100,000), and
//! exports the Group as `iisbulk serve` does (`ExportJobs::run_here`: planned
//! into shards of 20,000 members, two written at a time, files in a
//! directory). It prints resources/s, total time, the export's own peak RSS
//! (the load's peak is reset first) and the file count.
//!
//! The default is 100,000 patients with 1,000,000 immunizations, not the
//! issue's 1,000,000 / 10,000,000: each patient is ~14 store items and
//! ~15 KB of JSON, so the full size needs ~15 GB of disk and a long load on
//! this machine; set `IISBULK_BENCH_PATIENTS=1000000` to run it anyway.
//! `IISBULK_BENCH_DIR` picks the disk. `IISBULK_BENCH_COLD=1` empties the
//! OS page cache before the export (as root), which is what a store larger
//! than memory looks like: at 1,000,000 patients the store is ~40 GiB. Under `cargo test` (no `--bench`) a
//! smoke version (300 patients) runs instead.

use std::sync::Arc;
use std::time::Instant;

use iz::{Clock, IisIdentity};
use matching::Matcher;
use registry::export::{ExportJobs, ExportRequest, JobStatus};
use registry::membership::{change_event, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use store::embedded::EmbeddedStore;
use store::{
    ChangeFeed, Condition, DirBlobStore, Index, Item, ItemStore, QueryOpts, SkRange, Write,
};
use tokio::task::JoinSet;

// As in the binaries that export (iisbulk, export-worker).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use synthetic_population::bench::{env_count, machine, peak_rss_mib, process_cpu, reset_peak_rss};

const WRITES_PER_TRANSACTION: usize = 100;
const IN_FLIGHT: usize = 16;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (patients, doses) = if bench {
        (
            env_count("IISBULK_BENCH_PATIENTS", 100_000),
            env_count("IISBULK_BENCH_DOSES", 10),
        )
    } else {
        (300, 10)
    };
    println!(
        "export bench (embedded store){}: {patients} patients x {doses} immunizations",
        if bench { "" } else { " SMOKE" }
    );
    println!("machine: {}", machine());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(patients, doses));
    println!("machine at end: {}", machine());
}

fn vxu(doses: usize) -> String {
    let mut m = String::from(
        "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|T1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||TEMPLATE1^^^FACA^MR||Okafor^Adaeze^Chioma^^^^L|Eze^Ngozi^^^^^M|20200115|F||2106-3^White^CDCREC|12 Birch Ln^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550123\r",
    );
    let vaccines = ["08", "20", "10", "03", "21", "83", "133", "116", "48", "94"];
    for d in 0..doses {
        m.push_str(&format!(
            "ORC|RE||T1-{d}^FACA\rRXA|0|1|{}{:02}15||{}^vaccine^CVX|999|||01^Historical^NIP001||||||LOT{d}||MSD^Merck^MVX|||CP|A\r",
            2020 + d / 12,
            1 + d % 12,
            vaccines[d % vaccines.len()]
        ));
    }
    m
}

async fn run(patients: usize, doses: usize) {
    let dir = match std::env::var_os("IISBULK_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("bench temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path().join("r.redb")).expect("store"));
    let items: Arc<dyn ItemStore> = store.clone();
    let policy = JurisdictionPolicy::default();
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
    let group = au.group.clone().expect("a Group");
    let matching = PatientMatching::new(items.clone(), Arc::new(Matcher::default()));
    let d = Intake::new(items.clone(), IisIdentity::default())
        .receive(
            &au,
            &Transport::Rest,
            vxu(doses).as_bytes(),
            Clock::at(1_790_000_000),
        )
        .await
        .expect("intake");
    assert!(
        !d.answer.contains("ERR|"),
        "the template VXU must be accepted cleanly: {}",
        d.answer
    );
    let person = matching
        .process(&d.message_id.expect("accepted"), 1_000)
        .await
        .expect("matched")
        .person;
    let membership = Membership::new(matching.persons().clone(), Arc::new(policy.clone()));
    for c in store.read(None, 10_000).await.expect("feed") {
        if let Some(e) = change_event(&c) {
            membership.apply(&e).await.expect("membership");
        }
    }
    let source = matching.sources_of(&person).await.expect("sources")[0].clone();
    let template = template_items(&items, &person, &source, &group).await;
    println!(
        "template child: {} items, {} bytes of JSON",
        template.len(),
        template.iter().map(|i| i.data.len()).sum::<usize>()
    );

    // Clone the child under new ids, many transactions in flight.
    let started = Instant::now();
    let mut in_flight: JoinSet<Result<(), store::StoreError>> = JoinSet::new();
    let mut batch = Vec::with_capacity(WRITES_PER_TRANSACTION);
    let mut written = 0usize;
    for n in 1..patients {
        let pid = format!(
            "{:032x}",
            0x00bb_0000_0000_0000_0000_0000_0000_0000u128 + n as u128
        );
        let sid = format!(
            "{:032x}",
            0x00cc_0000_0000_0000_0000_0000_0000_0000u128 + n as u128
        );
        if batch.len() + template.len() > WRITES_PER_TRANSACTION {
            if in_flight.len() >= IN_FLIGHT {
                in_flight
                    .join_next()
                    .await
                    .expect("a task")
                    .expect("join")
                    .expect("load");
            }
            let writes = std::mem::take(&mut batch);
            written += writes.len();
            let s = items.clone();
            in_flight.spawn(async move { s.transact(writes).await });
        }
        for t in &template {
            let re = |s: &str| s.replace(&person, &pid).replace(&source, &sid);
            batch.push(Write::Put {
                item: Item::new(
                    store::Key::new(re(&t.key.pk), re(&t.key.sk)),
                    re(&String::from_utf8_lossy(&t.data)).into_bytes(),
                ),
                cond: Condition::None,
            });
        }
    }
    written += batch.len();
    if !batch.is_empty() {
        items.transact(batch).await.expect("load");
    }
    while let Some(r) = in_flight.join_next().await {
        r.expect("join").expect("load");
    }
    let load = started.elapsed();
    println!(
        "load: {written} items in {:.1} s ({:.0} items/s); store file {:.2} GiB ({:.2} GiB on disk); peak RSS so far {:.0} MiB",
        load.as_secs_f64(),
        written as f64 / load.as_secs_f64(),
        std::fs::metadata(dir.path().join("r.redb")).map_or(0, |m| m.len()) as f64 / f64::from(1u32 << 30),
        // redb grows the file in large steps: the blocks written are the size.
        std::fs::metadata(dir.path().join("r.redb"))
            .map_or(0, |m| std::os::unix::fs::MetadataExt::blocks(&m) * 512) as f64
            / f64::from(1u32 << 30),
        peak_rss_mib().unwrap_or(0.0)
    );

    if std::env::var_os("IISBULK_BENCH_COLD").is_some() {
        // A store bigger than memory, at any size: the OS page cache is
        // emptied (root only), so the export reads from disk.
        let dropped = std::process::Command::new("sync").status().is_ok()
            && std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok();
        println!(
            "cold start: {}",
            if dropped {
                "page cache dropped"
            } else {
                "could not drop the page cache (needs root): warm"
            }
        );
    }
    let blobs = Arc::new(DirBlobStore::open(dir.path().join("blobs")).expect("blobs"));
    let mut jobs = ExportJobs::new(matching.persons().clone(), blobs, &policy.identifier_base);
    jobs.parallel_shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let job = jobs
        .create(
            &au.id,
            &group,
            ExportRequest::default(),
            "http://bench/fhir/Group/g/$export",
            store::limits::now_epoch_millis(),
        )
        .await
        .expect("job");
    let reset = reset_peak_rss();
    let cpu0 = process_cpu();
    let started = Instant::now();
    jobs.run_here(&job.id).await.expect("export");
    let took = started.elapsed();
    let cpu = process_cpu().zip(cpu0).map(|(a, b)| a - b);
    let done = jobs.get(&job.id).await.expect("job").expect("job");
    assert_eq!(done.status, JobStatus::Completed);
    let count = |t: &str| -> u64 {
        done.files
            .output
            .iter()
            .filter(|f| f.resource_type == t)
            .map(|f| f.count)
            .sum()
    };
    let resources: u64 = done.files.output.iter().map(|f| f.count).sum();
    assert_eq!(
        count("Patient"),
        patients as u64,
        "every member exported once"
    );
    assert_eq!(count("Immunization"), (patients * doses) as u64);
    let bytes: u64 = walk(&dir.path().join("blobs"));
    println!(
        "export: {resources} resources ({} Patient, {} Immunization, {} Group, {} Organization) in {:.2} s: {:.0} resources/s (CPU {:.1} s); {} shards; {} files, {:.2} GiB stored (gzip NDJSON); export peak RSS {} MiB",
        count("Patient"),
        count("Immunization"),
        count("Group"),
        count("Organization"),
        took.as_secs_f64(),
        resources as f64 / took.as_secs_f64(),
        cpu.map_or(0.0, |c| c.as_secs_f64()),
        done.shards,
        done.files.output.len(),
        bytes as f64 / f64::from(1u32 << 30),
        match (reset, peak_rss_mib()) {
            (true, Some(m)) => format!("{m:.0}"),
            (false, Some(m)) => format!("{m:.0} (includes the load: peak not resettable here)"),
            _ => "unknown".into(),
        }
    );
}

/// Every item of the template child: its partition, its source record and
/// its Group member item.
async fn template_items(
    items: &Arc<dyn ItemStore>,
    person: &str,
    source: &str,
    group: &str,
) -> Vec<Item> {
    let mut out = Vec::new();
    for pk in [format!("PAT#{person}"), format!("SRC#{source}")] {
        let page = items
            .query(&pk, QueryOpts::new(Index::Table, SkRange::All).limit(1000))
            .await
            .expect("template");
        // The sender's reported doses are not read by an export: left out.
        out.extend(
            page.items
                .into_iter()
                .filter(|i| !i.key.sk.starts_with("DOSE#")),
        );
    }
    out.push(
        items
            .get(&store::Key::new(
                format!("GRP#{group}"),
                format!("MEM#{person}"),
            ))
            .await
            .expect("member")
            .expect("the child is a member"),
    );
    out
}

fn walk(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() {
            walk(&p)
        } else {
            e.metadata().map_or(0, |m| m.len())
        };
    }
    total
}
