//! Writing Group exports over the embedded store and a blob directory:
//! one type per file with rotation, only the Group's own patients (an empty
//! Group exports no patients), `_type`, `_elements`, and `_since` chaining
//! that neither repeats nor misses a change, with deletions reported.
#![allow(clippy::unwrap_used, clippy::cloned_ref_to_slice_refs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use iz::{Clock, IisIdentity};
use matching::Matcher;
use registry::export::{
    write_export, ExportFiles, ExportJobs, ExportRequest, ExportSpec, JobStatus, ResourceType,
    BY_PATIENT,
};
use registry::membership::{change_event, JurisdictionPolicy, Membership};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUser, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use serde_json::Value;
use store::embedded::EmbeddedStore;
use store::faulty::FailingUploads;
use store::{BlobStore, ChangeFeed, DirBlobStore, ItemStore};
use tokio::io::AsyncReadExt;

struct Iis {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    blobs: DirBlobStore,
    intake: Intake,
    matching: PatientMatching,
    membership: Membership,
    users: AuthorizedUsers,
    after: std::sync::Mutex<Option<u64>>,
}

async fn iis(policy: JurisdictionPolicy) -> (Iis, AuthorizedUser, AuthorizedUser) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let items: Arc<dyn ItemStore> = store.clone();
    let users = AuthorizedUsers::new(items.clone());
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
    let matching = PatientMatching::new(items.clone(), Arc::new(Matcher::default()));
    let b = made.pop().unwrap();
    let a = made.pop().unwrap();
    let iis = Iis {
        blobs: DirBlobStore::open(dir.path().join("blobs")).unwrap(),
        _dir: dir,
        intake: Intake::new(items, IisIdentity::default()),
        membership: Membership::new(matching.persons().clone(), Arc::new(policy)),
        matching,
        users,
        store,
        after: std::sync::Mutex::new(None),
    };
    (iis, a, b)
}

fn vxu(fac: &str, ctl: &str, given: &str, family: &str, dob: &str, doses: usize) -> String {
    let mut m = format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{given}{family}^^^{fac}^MR||{family}^{given}^^^^^L|Eze^^^^^^M|{dob}|F|||{n} Birch Ln^^Lansing^MI^48910^USA^P\r",
        n = given.len() * 7 + family.len()
    );
    for d in 0..doses {
        m.push_str(&format!(
            "ORC|RE||{ctl}-{d}^{fac}\rRXA|0|1|2024{:02}01||{}^vaccine^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r",
            d + 3,
            ["08", "20", "10", "03"][d % 4]
        ));
    }
    m
}

static CLOCK_MS: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(1_790_000_000_000);

fn tick() -> i64 {
    CLOCK_MS.fetch_add(1000, std::sync::atomic::Ordering::SeqCst)
}

impl Iis {
    async fn send(&self, au: &AuthorizedUser, msg: &str) -> String {
        let d = self
            .intake
            .receive(
                au,
                &Transport::Rest,
                msg.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        let person = self
            .matching
            .process(&d.message_id.unwrap(), tick())
            .await
            .unwrap()
            .person;
        let mut after = *self.after.lock().unwrap();
        loop {
            let changes = self.store.read(after, 500).await.unwrap();
            if changes.is_empty() {
                break;
            }
            for c in &changes {
                if let Some(e) = change_event(c) {
                    self.membership.apply(&e).await.unwrap();
                }
                after = Some(c.seq);
            }
        }
        *self.after.lock().unwrap() = after;
        person
    }

    async fn export(
        &self,
        au: &AuthorizedUser,
        name: &str,
        request: ExportRequest,
        lines: u64,
    ) -> (ExportFiles, i64) {
        let au = self.users.get(&au.id).await.unwrap().unwrap();
        let group = self
            .membership
            .groups()
            .get(au.group.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        let t = tick();
        let spec = ExportSpec {
            prefix: format!("exports/{name}"),
            au,
            group,
            request,
            transaction_time_ms: t,
            identifier_base: "urn:iisbulk:id".into(),
            max_lines_per_file: lines,
            cdsi_data: None,
        };
        let files = write_export(&self.matching, self.membership.groups(), &self.blobs, &spec)
            .await
            .unwrap();
        (files, t)
    }

    /// Every line of every file of a type, parsed.
    async fn lines(&self, files: &[registry::export::OutputFile], t: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for f in files.iter().filter(|f| f.resource_type == t) {
            let stored = registry::export::read_file(&self.blobs, f).await.unwrap();
            let text = String::from_utf8(stored).unwrap();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len() as u64, f.count, "{}", f.key);
            out.extend(lines);
        }
        out
    }
}

fn keep(name: &str, v: &Value) {
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.json")),
            v.to_string(),
        )
        .unwrap();
    }
}

fn ids(lines: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_group_exports_its_own_patients_one_type_per_file() {
    let (iis, a, b) = iis(JurisdictionPolicy::default()).await;
    let mut a_people = Vec::new();
    for (i, (given, family)) in [
        ("Ada", "Obi"),
        ("Bola", "Ade"),
        ("Chi", "Eze"),
        ("Dayo", "Ola"),
        ("Ekene", "Uzo"),
    ]
    .iter()
    .enumerate()
    {
        a_people.push(
            iis.send(
                &a,
                &vxu(
                    "FACA",
                    &format!("A{i}"),
                    given,
                    family,
                    &format!("20{:02}0101", 15 + i),
                    3,
                ),
            )
            .await,
        );
    }
    let only_b = iis
        .send(&b, &vxu("FACB", "B1", "Femi", "Kuti", "20190505", 2))
        .await;

    // Rotation at two lines per file.
    let (files, _) = iis.export(&a, "a1", ExportRequest::default(), 2).await;
    // Every file a client downloads is stored gzip-compressed (magic
    // 1f 8b), and says so.
    for f in files.output.iter().chain(&files.error) {
        assert!(f.gzip, "{}", f.key);
        let (mut r, _) = iis.blobs.get(&f.key).await.unwrap().unwrap();
        let mut head = [0u8; 2];
        r.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x1f, 0x8b], "{}", f.key);
    }
    let per_type: BTreeMap<&str, (usize, u64)> =
        files.output.iter().fold(BTreeMap::new(), |mut m, f| {
            let e = m.entry(f.resource_type.as_str()).or_insert((0, 0));
            e.0 += 1;
            e.1 += f.count;
            m
        });
    assert_eq!(per_type["Patient"], (3, 5), "{files:?}");
    assert_eq!(per_type["Immunization"], (8, 15));
    assert_eq!(per_type["Group"], (1, 1));
    assert_eq!(per_type["Organization"], (1, 1));
    assert!(files
        .output
        .iter()
        .all(|f| f.count > 0 && f.count <= 2 || f.resource_type == "Group"));
    let patients = iis.lines(&files.output, "Patient").await;
    let mut want = a_people.clone();
    want.sort();
    assert_eq!(ids(&patients), want);
    assert!(!ids(&patients).contains(&only_b));
    let imms = iis.lines(&files.output, "Immunization").await;
    assert!(imms.iter().all(|i| want
        .iter()
        .any(|p| i["patient"]["reference"] == format!("Patient/{p}"))));
    let group = &iis.lines(&files.output, "Group").await[0];
    assert_eq!(group["quantity"], 5);
    assert_eq!(group["member"].as_array().unwrap().len(), 5);
    keep("export-group", group);
    keep("export-patient", &patients[0]);
    keep("export-immunization", &imms[0]);
    keep(
        "export-organization",
        &iis.lines(&files.output, "Organization").await[0],
    );

    // _type and _elements, and a parameter ignored under lenient handling.
    let req = ExportRequest {
        types: vec![ResourceType::Patient],
        elements: vec![(None, "birthDate".into())],
        ignored: vec![registry::export::Problem {
            what: "_typeFilter".into(),
            message: "_typeFilter is not supported by this server".into(),
        }],
        ..ExportRequest::default()
    };
    let (files, _) = iis.export(&a, "a2", req, 1000).await;
    assert!(files.output.iter().all(|f| f.resource_type == "Patient"));
    let errors = iis.lines(&files.error, "OperationOutcome").await;
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("_typeFilter"));
    keep("export-error", &errors[0]);
    let p = &iis.lines(&files.output, "Patient").await[0];
    assert!(p.get("name").is_none() && p.get("birthDate").is_some());
    assert_eq!(p["meta"]["tag"][0]["code"], "SUBSETTED");
    keep("export-patient-subsetted", p);

    // organizeOutputBy=Patient: each patient's block (a header naming it,
    // the Patient, its Immunizations) in one file; a file is rotated only
    // between blocks, so each 5-line block here gets its own file.
    let req = ExportRequest {
        types: vec![ResourceType::Patient, ResourceType::Immunization],
        organize_by_patient: true,
        ..ExportRequest::default()
    };
    let (files, _) = iis.export(&a, "a3", req, 2).await;
    assert_eq!(files.output.len(), 5, "{files:?}");
    let mut seen = Vec::new();
    for f in &files.output {
        assert_eq!(f.resource_type, BY_PATIENT);
        let lines = iis.lines(std::slice::from_ref(f), BY_PATIENT).await;
        let header = &lines[0];
        assert_eq!(header["resourceType"], "Parameters");
        assert_eq!(header["parameter"][0]["name"], "header");
        let reference = header["parameter"][0]["valueReference"]["reference"]
            .as_str()
            .unwrap();
        assert_eq!(lines[1]["resourceType"], "Patient");
        let id = lines[1]["id"].as_str().unwrap();
        assert_eq!(format!("Patient/{id}"), reference);
        assert_eq!(lines.len(), 2 + 3, "{}", f.key);
        assert!(
            lines[2..]
                .iter()
                .all(|i| i["resourceType"] == "Immunization"
                    && i["patient"]["reference"] == reference)
        );
        seen.push(id.to_owned());
    }
    seen.sort();
    assert_eq!(seen, want);
    keep(
        "export-by-patient-header",
        &iis.lines(&files.output[..1], BY_PATIENT).await[0],
    );
}

#[tokio::test]
async fn an_empty_group_exports_no_patients_and_since_chains_never_repeat_or_miss() {
    let policy = {
        let text = registry::membership::DEFAULT_POLICY
            .replace("association = \"multiple\"", "association = \"single\"");
        JurisdictionPolicy::from_toml(&text).unwrap()
    };
    let (iis, a, b) = iis(policy).await;
    iis.send(&b, &vxu("FACB", "B1", "Femi", "Kuti", "20190505", 2))
        .await;
    let (files, t0) = iis.export(&a, "e0", ExportRequest::default(), 1000).await;
    assert!(
        files
            .output
            .iter()
            .all(|f| f.resource_type != "Patient" && f.resource_type != "Immunization"),
        "{files:?}"
    );
    let empty = &iis.lines(&files.output, "Group").await[0];
    assert_eq!(empty["quantity"], 0);
    assert!(
        empty.get("member").is_none(),
        "FHIR JSON has no empty arrays"
    );
    keep("export-empty-group", empty);

    // Changes after t0: one new child for A, one child moving from B to A
    // (single association: B's export reports it deleted).
    let new_a = iis
        .send(&a, &vxu("FACA", "A1", "Ada", "Obi", "20150101", 1))
        .await;
    let moved = iis
        .send(&a, &vxu("FACA", "A2", "Femi", "Kuti", "20190505", 1))
        .await;
    let since = |t: i64| ExportRequest {
        since_ms: Some(t),
        ..ExportRequest::default()
    };
    let (f1, t1) = iis.export(&a, "e1", since(t0), 1000).await;
    let mut both = vec![new_a.clone(), moved.clone()];
    both.sort();
    assert_eq!(ids(&iis.lines(&f1.output, "Patient").await), both);
    let (fb, _) = iis.export(&b, "b1", since(t0), 1000).await;
    let deleted = iis.lines(&fb.deleted, "Bundle").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0]["entry"][0]["request"]["url"],
        format!("Patient/{moved}")
    );
    keep("export-deleted", &deleted[0]);

    // Nothing changed since t1: nothing repeats.
    let (f2, t2) = iis.export(&a, "e2", since(t1), 1000).await;
    assert!(iis.lines(&f2.output, "Patient").await.is_empty());
    // One child reported again: only it, with all of its doses.
    iis.send(&a, &vxu("FACA", "A3", "Ada", "Obi", "20150101", 2))
        .await;
    let (f3, _) = iis.export(&a, "e3", since(t2), 1000).await;
    assert_eq!(
        ids(&iis.lines(&f3.output, "Patient").await),
        [new_a.clone()]
    );
    let history = iis.matching.history(&new_a).await.unwrap();
    assert!(history.len() >= 2);
    assert_eq!(
        iis.lines(&f3.output, "Immunization").await.len(),
        history.len()
    );
}

impl Iis {
    fn jobs(&self, blobs: Arc<dyn BlobStore>, per_shard: u64) -> ExportJobs {
        let mut jobs = ExportJobs::new(self.matching.persons().clone(), blobs, "urn:iisbulk:id");
        jobs.members_per_shard = per_shard;
        jobs.max_lines_per_file = 4;
        jobs
    }

    async fn job(&self, jobs: &ExportJobs, au: &AuthorizedUser) -> String {
        let au = self.users.get(&au.id).await.unwrap().unwrap();
        jobs.create(
            &au.id,
            au.group.as_deref().unwrap(),
            ExportRequest::default(),
            "http://x/fhir/Group/g/$export",
            // Real time: the job expires a day after it (the test clock is
            // in the past, and everything it stamped is before now).
            store::limits::now_epoch_millis(),
        )
        .await
        .unwrap()
        .id
    }

    /// Every blob key under a job's prefix.
    fn files_of(&self, job: &str) -> Vec<String> {
        let root = self._dir.path().join("blobs").join("exports").join(job);
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out
    }
}

async fn twelve_children(iis: &Iis, a: &AuthorizedUser) -> Vec<String> {
    let names = [
        "Ada", "Bola", "Chi", "Dayo", "Ekene", "Folake", "Gozie", "Halima", "Ife", "Jide", "Kemi",
        "Lola",
    ];
    let families = [
        "Okafor", "Bello", "Cole", "Danjuma", "Eko", "Fashola", "Garba", "Hassan", "Idowu", "Jaja",
        "Kalu", "Lawal",
    ];
    let mut people = Vec::new();
    for (i, (given, family)) in names.iter().zip(families).enumerate() {
        people.push(
            iis.send(
                a,
                &vxu(
                    "FACA",
                    &format!("S{i}"),
                    given,
                    family,
                    &format!("20{:02}0{}1{}", 10 + i, 1 + i % 9, i % 9),
                    2,
                ),
            )
            .await,
        );
    }
    people.sort();
    people
}

#[tokio::test]
async fn a_sharded_job_writes_every_member_once_and_completes_exactly_once() {
    let (iis, a, b) = iis(JurisdictionPolicy::default()).await;
    let people = twelve_children(&iis, &a).await;
    iis.send(&b, &vxu("FACB", "B1", "Femi", "Kuti", "20190505", 2))
        .await;
    let blobs: Arc<dyn BlobStore> =
        Arc::new(DirBlobStore::open(iis._dir.path().join("blobs")).unwrap());
    let jobs = iis.jobs(blobs, 5);
    let id = iis.job(&jobs, &a).await;
    jobs.run_here(&id).await.unwrap();
    let job = jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.shards, 3, "12 members at 5 per shard");
    assert_eq!(job.shards_done.len(), 3);
    let patients = iis.lines(&job.files.output, "Patient").await;
    assert_eq!(ids(&patients), people, "every member once, nobody else");
    assert_eq!(iis.lines(&job.files.output, "Immunization").await.len(), 24);
    let groups = iis.lines(&job.files.output, "Group").await;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["quantity"], 12);
    let mut members: Vec<String> = groups[0]["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["entity"]["reference"]
                .as_str()
                .unwrap()
                .trim_start_matches("Patient/")
                .to_owned()
        })
        .collect();
    members.sort();
    assert_eq!(members, people);
    keep("export-sharded-group", &groups[0]);
    // The Group's member parts are spliced in and gone.
    assert!(iis
        .files_of(&id)
        .iter()
        .all(|f| !f.contains("GroupMembers")));

    // A redelivered shard event and a second run change nothing.
    let before = jobs.get(&id).await.unwrap().unwrap();
    jobs.run_shard(&id, 2).await.unwrap();
    jobs.run_here(&id).await.unwrap();
    assert_eq!(jobs.get(&id).await.unwrap().unwrap().files, before.files);
}

#[tokio::test]
async fn a_failed_shard_is_retried_without_duplicating_a_line() {
    let (iis, a, _) = iis(JurisdictionPolicy::default()).await;
    let people = twelve_children(&iis, &a).await;
    let flaky = Arc::new(FailingUploads::new(Arc::new(
        DirBlobStore::open(iis._dir.path().join("blobs")).unwrap(),
    )));
    flaky.fail_keys_containing(Some("Immunization"));
    let jobs = iis.jobs(flaky.clone(), 5);
    let id = iis.job(&jobs, &a).await;
    assert!(
        jobs.run_here(&id).await.is_err(),
        "the injected failure surfaces"
    );
    let job = jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert!(job.shard_failures >= 1);
    assert!(job.shards_done.is_empty());
    // Half-written shards left nothing behind but the plan.
    assert!(iis.files_of(&id).is_empty(), "{:?}", iis.files_of(&id));

    flaky.fail_keys_containing(None);
    jobs.run_here(&id).await.unwrap();
    let job = jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(ids(&iis.lines(&job.files.output, "Patient").await), people);
    assert_eq!(iis.lines(&job.files.output, "Immunization").await.len(), 24);
}

#[tokio::test]
async fn a_shard_failing_again_and_again_fails_the_job_and_leaves_no_files() {
    let (iis, a, _) = iis(JurisdictionPolicy::default()).await;
    twelve_children(&iis, &a).await;
    let flaky = Arc::new(FailingUploads::new(Arc::new(
        DirBlobStore::open(iis._dir.path().join("blobs")).unwrap(),
    )));
    flaky.fail_keys_containing(Some("Immunization"));
    let jobs = iis.jobs(flaky, 5);
    let id = iis.job(&jobs, &a).await;
    for _ in 0..registry::export::jobs::MAX_SHARD_FAILURES {
        let _ = jobs.run_here(&id).await;
    }
    let job = jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.failure.unwrap().contains("could not be written"));
    assert!(iis.files_of(&id).is_empty());
    // A failed job stays failed.
    jobs.run_here(&id).await.unwrap();
    assert_eq!(
        jobs.get(&id).await.unwrap().unwrap().status,
        JobStatus::Failed
    );
}

#[tokio::test]
async fn a_job_cancelled_mid_run_leaves_no_files() {
    let (iis, a, _) = iis(JurisdictionPolicy::default()).await;
    twelve_children(&iis, &a).await;
    let blobs: Arc<dyn BlobStore> =
        Arc::new(DirBlobStore::open(iis._dir.path().join("blobs")).unwrap());
    let mut jobs = iis.jobs(blobs, 1);
    jobs.parallel_shards = 1;
    // Between shards: some parts written, then cancelled.
    let id = iis.job(&jobs, &a).await;
    jobs.plan(&id).await.unwrap();
    jobs.run_shard(&id, 1).await.unwrap();
    jobs.run_shard(&id, 2).await.unwrap();
    assert!(!iis.files_of(&id).is_empty());
    jobs.cancel(&id).await.unwrap();
    jobs.run_here(&id).await.unwrap();
    assert_eq!(
        jobs.get(&id).await.unwrap().unwrap().status,
        JobStatus::Cancelled
    );
    assert!(iis.files_of(&id).is_empty(), "{:?}", iis.files_of(&id));

    // Racing the worker: whenever the cancel lands, nothing stays.
    for delay_ms in [0u64, 1, 3, 10] {
        let id = iis.job(&jobs, &a).await;
        let worker = {
            let jobs = jobs.clone();
            let id = id.clone();
            tokio::spawn(async move { jobs.run_here(&id).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        jobs.cancel(&id).await.unwrap();
        worker.await.unwrap().unwrap();
        assert_eq!(
            jobs.get(&id).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );
        assert!(
            iis.files_of(&id).is_empty(),
            "after {delay_ms} ms: {:?}",
            iis.files_of(&id)
        );
    }
}

#[tokio::test]
async fn expired_jobs_are_swept_with_their_files() {
    let (iis, a, _) = iis(JurisdictionPolicy::default()).await;
    twelve_children(&iis, &a).await;
    let blobs: Arc<dyn BlobStore> =
        Arc::new(DirBlobStore::open(iis._dir.path().join("blobs")).unwrap());
    let jobs = iis.jobs(blobs, 5);
    let id = iis.job(&jobs, &a).await;
    jobs.run_here(&id).await.unwrap();
    let job = jobs.get(&id).await.unwrap().unwrap();
    assert!(!iis.files_of(&id).is_empty());
    // Not yet expired: kept.
    assert_eq!(jobs.sweep(job.expires_at - 1, 100).await.unwrap(), 0);
    assert!(!iis.files_of(&id).is_empty());
    assert_eq!(jobs.sweep(job.expires_at, 100).await.unwrap(), 1);
    assert!(iis.files_of(&id).is_empty());
    assert_eq!(
        jobs.sweep(job.expires_at + 10, 100).await.unwrap(),
        0,
        "swept once"
    );
}

#[tokio::test]
async fn a_job_polled_while_it_is_planned_still_runs_to_completion() {
    let (iis, a, _) = iis(JurisdictionPolicy::default()).await;
    twelve_children(&iis, &a).await;
    let blobs: Arc<dyn BlobStore> =
        Arc::new(DirBlobStore::open(iis._dir.path().join("blobs")).unwrap());
    let jobs = iis.jobs(blobs, 2);
    for _ in 0..5 {
        let id = iis.job(&jobs, &a).await;
        let poller = {
            let jobs = jobs.clone();
            let id = id.clone();
            tokio::spawn(async move {
                // A client polling as fast as it can (no interval enforced here).
                for n in 0..200 {
                    jobs.polled(&id, n, 0).await.unwrap();
                    tokio::task::yield_now().await;
                }
                // And one polling too soon after the last.
                assert!(matches!(
                    jobs.polled(&id, 200, 1000).await.unwrap(),
                    Some(registry::export::Poll::TooSoon { wait_ms: 999 })
                ));
            })
        };
        jobs.run_here(&id).await.unwrap();
        poller.await.unwrap();
        assert_eq!(
            jobs.get(&id).await.unwrap().unwrap().status,
            JobStatus::Completed
        );
    }
}
