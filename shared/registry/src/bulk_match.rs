//! `Patient/$bulk-match` jobs (Bulk Data IG, bulk-match draft): many
//! `$match` requests answered asynchronously, one searchset Bundle per input
//! patient in NDJSON files, fetched like an export's.
//!
//! The kick-off stores the checked input patients as one NDJSON blob and the
//! job item, takes one of the Authorized User's running-job slots and queues
//! the job, all in one conditional transaction. A worker
//! ([`BulkMatchJobs::run_pending`]) matches each input patient with
//! [`Queries::match_patient`] (the matcher, bands, chart rule, visibility
//! and disclosure policy of a `$match`) and writes its Bundle
//! ([`match_bundle`]) naming the client's input patient (the IG's
//! `match-resource` extension), counting progress on
//! the job as it goes; a cancel stops it within a second and deletes its
//! files; files and job expire after `retention`.
//!
//! A bulk match is a lookup: it records no query record, so unlike a
//! `$match` under the jurisdiction's `fhir_match` policy it never makes a
//! Group relationship (thousands of patients named in one request are not
//! evidence of care for any of them). Its audit events (kick-off, manifest,
//! downloads) are written by the FHIR side.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store::{
    BlobStore, BlobUpload, Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write,
};
use tokio::io::AsyncBufReadExt;

use crate::authorized_user::{AuError, AuthorizedUser, AuthorizedUsers};
use crate::fhir_match::{bulk_input_request, match_bundle, BulkMatchInput, BulkMatchRequest};
use crate::json::{decode, encode};
use crate::keys;
use crate::queries::Queries;

/// Where a job's blobs live: `bulkmatch/<id>/input.ndjson` and its output
/// files under `bulkmatch/<id>/out/`.
pub fn job_prefix(id: &str) -> String {
    format!("bulkmatch/{id}")
}

fn input_key(id: &str) -> String {
    format!("{}/input.ndjson", job_prefix(id))
}

/// The blob key of an output file of job `id`, by its name
/// (`Bundle.001.ndjson`).
pub fn output_key(id: &str, name: &str) -> String {
    format!("{}/out/{name}", job_prefix(id))
}

/// The bulk match job a store change creates, if it creates one: what the
/// worker of a deployment without a polling loop (the export worker
/// Lambda, on the table's stream) runs.
pub fn job_created<'a>(
    key: &'a store::Key,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Option<&'a str> {
    if old.is_some() || new.is_none() || key.sk != keys::BULK_MATCH_JOB_SK {
        return None;
    }
    key.pk
        .strip_prefix(keys::BULK_MATCH_JOB_PK_PREFIX)
        .filter(|id| !id.is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkMatchStatus {
    Accepted,
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// One output file: its name (under the job's `out/`) and how many Bundles
/// it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkMatchFile {
    pub name: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkMatchJob {
    pub id: String,
    pub au: String,
    /// The kick-off URL (the manifest's `request`).
    pub request_url: String,
    pub status: BulkMatchStatus,
    pub only_certain: bool,
    pub count: u32,
    /// Input patients.
    pub patients: u64,
    /// Input patients matched so far (counted about every second).
    #[serde(default)]
    pub matched: u64,
    pub transaction_time_ms: i64,
    pub created_at_ms: i64,
    /// Epoch seconds after which the job and its files are gone.
    pub expires_at: i64,
    /// The Authorized User's running-job slot this job holds.
    pub slot: u32,
    #[serde(default)]
    pub files: Vec<BulkMatchFile>,
    /// Runs started (a run interrupted by a restart or storage trouble is
    /// started again from the first patient).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl BulkMatchJob {
    /// Still to be answered: queued or running.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            BulkMatchStatus::Accepted | BulkMatchStatus::Running
        )
    }

    /// What `X-Progress` says while the job runs.
    pub fn progress(&self) -> String {
        match self.status {
            BulkMatchStatus::Accepted => "queued".into(),
            BulkMatchStatus::Running => {
                format!("{} of {} patients matched", self.matched, self.patients)
            }
            _ => "done".into(),
        }
    }
}

#[derive(Debug)]
pub enum BulkMatchError {
    /// The Authorized User already has this many bulk matches running.
    TooMany(u32),
    Store(StoreError),
}

impl From<StoreError> for BulkMatchError {
    fn from(e: StoreError) -> Self {
        BulkMatchError::Store(e)
    }
}

impl std::fmt::Display for BulkMatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BulkMatchError::TooMany(n) => write!(f, "{n} bulk matches already running"),
            BulkMatchError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Runs that may start on one job before it is reported failed.
pub const MAX_ATTEMPTS: u32 = 3;
/// Patients matched at once by default: enough to keep two cores busy
/// while some matches wait on the store.
pub const DEFAULT_MATCHERS: usize = 16;
/// How often a running job counts its progress and looks for a cancel: each
/// count is a durable write, so not every patient.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long an expiry index item outlives its job (seconds).
const EXPIRY_INDEX_GRACE: i64 = 7 * 24 * 3600;

/// The bulk match use case: kick-off, status, cancel, the worker and the
/// sweeper, and the deployment's limits.
#[derive(Clone)]
pub struct BulkMatchJobs {
    store: Arc<dyn ItemStore>,
    blobs: Arc<dyn BlobStore>,
    queries: Queries,
    /// The FHIR base the result Bundles' `fullUrl`s are under.
    pub fhir_base: String,
    pub identifier_base: String,
    /// Most input patients one request may hold (413 above it).
    pub max_patients: usize,
    /// Largest kick-off body, bytes (413 above it).
    pub max_body_bytes: usize,
    /// Bulk matches one Authorized User may have queued or running at once
    /// (429 above it).
    pub max_active_per_au: u32,
    /// Most Bundles (input patients) per output file.
    pub max_per_file: u64,
    /// How long files and jobs are kept, seconds.
    pub retention: i64,
    /// Patients of a job matched at once.
    pub matchers: usize,
    /// Lifetime of presigned file URLs minted at each status poll (S3),
    /// where files are too large to pass through the API (Lambda's 6 MB
    /// response); `None`: the API serves them with the token.
    pub presign_for: Option<std::time::Duration>,
}

impl std::fmt::Debug for BulkMatchJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkMatchJobs")
            .field("max_patients", &self.max_patients)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_active_per_au", &self.max_active_per_au)
            .finish_non_exhaustive()
    }
}

/// Default byte limit of a kick-off body: room for the default 10,000
/// patients at over 1.5 KB each (a Patient with every field `$match` reads
/// is well under 1 KB), while the parsed body of one kick-off stays a few
/// times that in memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

impl BulkMatchJobs {
    pub fn new(
        store: Arc<dyn ItemStore>,
        blobs: Arc<dyn BlobStore>,
        queries: Queries,
        fhir_base: &str,
        identifier_base: &str,
    ) -> Self {
        BulkMatchJobs {
            store,
            blobs,
            queries,
            fhir_base: fhir_base.trim_end_matches('/').to_owned(),
            identifier_base: identifier_base.to_owned(),
            max_patients: crate::fhir_match::DEFAULT_BULK_MAX_PATIENTS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_active_per_au: 1,
            max_per_file: 10_000,
            retention: 24 * 3600,
            matchers: DEFAULT_MATCHERS,
            presign_for: None,
        }
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// Records a new job for `au`: the inputs as a blob, then the job, one
    /// of the Authorized User's slots and its place in the queue in one
    /// transaction. Refused ([`BulkMatchError::TooMany`]) when every slot is
    /// held by a live job.
    pub async fn create(
        &self,
        au: &str,
        request: &BulkMatchRequest,
        request_url: &str,
        now_ms: i64,
    ) -> Result<BulkMatchJob, BulkMatchError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let expires_at = now_ms / 1000 + self.retention;
        let mut job = BulkMatchJob {
            id: id.clone(),
            au: au.to_owned(),
            request_url: request_url.to_owned(),
            status: BulkMatchStatus::Accepted,
            only_certain: request.only_certain,
            count: request.count,
            patients: request.patients.len() as u64,
            matched: 0,
            transaction_time_ms: now_ms,
            created_at_ms: now_ms,
            expires_at,
            slot: 0,
            files: Vec::new(),
            attempts: 0,
            failure: None,
        };
        // A free slot first, so a refused kick-off writes no blob.
        let Some(slot) = self.free_slot(au).await? else {
            return Err(BulkMatchError::TooMany(self.max_active_per_au));
        };
        self.write_input(&id, &request.patients).await?;
        let mut tried_slot = slot;
        for attempt in 0..crate::retry::MAX_ATTEMPTS {
            job.slot = tried_slot;
            let writes = vec![
                Write::Put {
                    item: Item::new(keys::bulk_match_job(&id), encode(&job)?)
                        .with_expiry(expires_at),
                    cond: Condition::Absent,
                },
                Write::Put {
                    item: Item::new(
                        keys::bulk_match_slot(au, tried_slot),
                        id.as_bytes().to_vec(),
                    )
                    .with_expiry(expires_at),
                    cond: Condition::Absent,
                },
                Write::Put {
                    item: Item::new(keys::bulk_match_queue(now_ms, &id), Vec::new())
                        .with_expiry(expires_at),
                    cond: Condition::None,
                },
                // Outlives the job so the sweeper finds it after the job
                // item has expired.
                Write::Put {
                    item: Item::new(keys::bulk_match_expiry(expires_at, &id), Vec::new())
                        .with_expiry(expires_at + EXPIRY_INDEX_GRACE),
                    cond: Condition::None,
                },
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(job),
                // Another kick-off took the slot meanwhile: look again.
                Err(e) if crate::retry::is_conflict(&e) => {
                    crate::retry::pause(attempt).await;
                    match self.free_slot(au).await {
                        Ok(Some(n)) => tried_slot = n,
                        Ok(None) => {
                            let _ = self
                                .blobs
                                .delete_prefix(&format!("{}/", job_prefix(&id)))
                                .await;
                            return Err(BulkMatchError::TooMany(self.max_active_per_au));
                        }
                        Err(e) => {
                            let _ = self
                                .blobs
                                .delete_prefix(&format!("{}/", job_prefix(&id)))
                                .await;
                            return Err(e.into());
                        }
                    }
                }
                Err(e) => {
                    let _ = self
                        .blobs
                        .delete_prefix(&format!("{}/", job_prefix(&id)))
                        .await;
                    return Err(e.into());
                }
            }
        }
        let _ = self
            .blobs
            .delete_prefix(&format!("{}/", job_prefix(&id)))
            .await;
        Err(BulkMatchError::TooMany(self.max_active_per_au))
    }

    /// A slot of `au`'s not held by a live job. A slot whose job is over
    /// (a release lost to a crash) is freed on the way.
    async fn free_slot(&self, au: &str) -> Result<Option<u32>, StoreError> {
        for n in 0..self.max_active_per_au.max(1) {
            let key = keys::bulk_match_slot(au, n);
            let Some(item) = self.store.get(&key).await? else {
                return Ok(Some(n));
            };
            let holder = String::from_utf8_lossy(&item.data).into_owned();
            let live = self.get(&holder).await?.is_some_and(|j| j.is_active());
            if !live {
                match self
                    .store
                    .delete(&key, Condition::Version(item.version))
                    .await
                {
                    Ok(()) => return Ok(Some(n)),
                    Err(e) if crate::retry::is_conflict(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }

    /// The inputs as NDJSON, one Patient (with the client's id) a line.
    async fn write_input(&self, id: &str, patients: &[BulkMatchInput]) -> Result<(), StoreError> {
        let mut up = self
            .blobs
            .begin(&input_key(id), "application/fhir+ndjson")
            .await?;
        let mut buf = Vec::with_capacity(64 * 1024);
        for p in patients {
            serde_json::to_writer(&mut buf, &p.patient)
                .map_err(|e| StoreError::Other(format!("bulk match input: {e}")))?;
            buf.push(b'\n');
            if buf.len() >= 64 * 1024 {
                if let Err(e) = up.write(&buf).await {
                    let _ = up.abort().await;
                    return Err(e);
                }
                buf.clear();
            }
        }
        if let Err(e) = up.write(&buf).await {
            let _ = up.abort().await;
            return Err(e);
        }
        up.complete().await.map(|_| ())
    }

    pub async fn get(&self, id: &str) -> Result<Option<BulkMatchJob>, StoreError> {
        match self.store.get(&keys::bulk_match_job(id)).await? {
            Some(item) => decode(&item, "bulk match job").map(Some),
            None => Ok(None),
        }
    }

    /// Applies `change` to the stored job when it returns true.
    async fn update<F>(&self, id: &str, mut change: F) -> Result<Option<BulkMatchJob>, StoreError>
    where
        F: FnMut(&mut BulkMatchJob) -> bool,
    {
        for attempt in 0..crate::retry::MAX_ATTEMPTS {
            let Some(item) = self.store.get(&keys::bulk_match_job(id)).await? else {
                return Ok(None);
            };
            let mut job: BulkMatchJob = decode(&item, "bulk match job")?;
            if !change(&mut job) {
                return Ok(Some(job));
            }
            match self
                .store
                .put(
                    Item::new(keys::bulk_match_job(id), encode(&job)?).with_expiry(job.expires_at),
                    Condition::Version(item.version),
                )
                .await
            {
                Ok(_) => return Ok(Some(job)),
                Err(e) if crate::retry::is_conflict(&e) => crate::retry::pause(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Other(
            "bulk match job kept changing under us".into(),
        ))
    }

    /// Cancels (or deletes a finished) job: its files go at once and its
    /// slot is freed; the job stays, marked cancelled, so its URLs answer
    /// 404 until it expires.
    pub async fn cancel(&self, id: &str) -> Result<Option<BulkMatchJob>, StoreError> {
        let job = self
            .update(id, |j| {
                let live = j.status != BulkMatchStatus::Cancelled;
                j.status = BulkMatchStatus::Cancelled;
                live
            })
            .await?;
        if let Some(j) = &job {
            self.blobs
                .delete_prefix(&format!("{}/", job_prefix(&j.id)))
                .await?;
            self.release(j).await?;
        }
        Ok(job)
    }

    /// Frees the job's slot (if it still holds it) and its queue place.
    async fn release(&self, job: &BulkMatchJob) -> Result<(), StoreError> {
        let slot = keys::bulk_match_slot(&job.au, job.slot);
        if let Some(item) = self.store.get(&slot).await? {
            if item.data == job.id.as_bytes() {
                match self
                    .store
                    .delete(&slot, Condition::Version(item.version))
                    .await
                {
                    Ok(()) => {}
                    Err(e) if crate::retry::is_conflict(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.store
            .delete(
                &keys::bulk_match_queue(job.created_at_ms, &job.id),
                Condition::None,
            )
            .await
    }

    /// Runs up to `limit` queued jobs, oldest first, one after the other;
    /// returns how many were looked at. A job whose run fails on storage
    /// stays queued for the next call (up to [`MAX_ATTEMPTS`] runs).
    pub async fn run_pending(&self, limit: u32) -> Result<usize, StoreError> {
        let page = self
            .store
            .query(
                keys::BULK_MATCH_QUEUE_PK,
                QueryOpts::new(Index::Table, SkRange::All).limit(limit.max(1)),
            )
            .await?;
        let mut first_error = None;
        for item in &page.items {
            let Some((_, id)) = item.key.sk.split_once('#') else {
                continue;
            };
            match self.run(id).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "bulk match run failed; will retry");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(page.items.len()),
        }
    }

    /// Runs one job from its first patient (a rerun replaces what an
    /// interrupted run wrote).
    pub async fn run(&self, id: &str) -> Result<(), StoreError> {
        let Some(job) = self.get(id).await? else {
            // Expired: nothing left to answer.
            self.drop_queue_entry(id).await?;
            return Ok(());
        };
        if !job.is_active() {
            return self.release(&job).await;
        }
        if job.attempts >= MAX_ATTEMPTS {
            return self
                .fail(id, "the bulk match could not be completed; send it again")
                .await;
        }
        let Some(job) = self
            .update(id, |j| {
                if !j.is_active() {
                    return false;
                }
                j.status = BulkMatchStatus::Running;
                j.matched = 0;
                j.attempts += 1;
                true
            })
            .await?
        else {
            return Ok(());
        };
        if job.status != BulkMatchStatus::Running {
            return self.release(&job).await;
        }
        let au = match AuthorizedUsers::new(self.store.clone()).get(&job.au).await {
            Ok(Some(au)) => au,
            Ok(None) => {
                return self
                    .fail(id, "the Authorized User that asked no longer exists")
                    .await
            }
            Err(AuError::Store(e)) => return Err(e),
            Err(e) => return Err(StoreError::Other(e.to_string())),
        };
        let out = format!("{}/out/", job_prefix(id));
        self.blobs.delete_prefix(&out).await?;
        match self.write_outputs(&job, &au).await {
            Ok(Some(files)) => {
                let done = self
                    .update(id, |j| {
                        if j.status != BulkMatchStatus::Running {
                            return false;
                        }
                        j.status = BulkMatchStatus::Completed;
                        j.matched = j.patients;
                        j.files = files.clone();
                        true
                    })
                    .await?;
                match done {
                    Some(j) if j.status == BulkMatchStatus::Completed => {
                        // The inputs are PHI the results no longer need.
                        self.blobs.delete(&input_key(id)).await?;
                        tracing::info!(job = %id, patients = j.patients, files = j.files.len(), "bulk match written");
                        self.release(&j).await
                    }
                    Some(j) => {
                        self.blobs
                            .delete_prefix(&format!("{}/", job_prefix(id)))
                            .await?;
                        self.release(&j).await
                    }
                    None => Ok(()),
                }
            }
            // Cancelled while it ran.
            Ok(None) => {
                self.blobs
                    .delete_prefix(&format!("{}/", job_prefix(id)))
                    .await?;
                self.release(&job).await
            }
            Err(e) => {
                let _ = self.blobs.delete_prefix(&out).await;
                Err(e)
            }
        }
    }

    async fn drop_queue_entry(&self, id: &str) -> Result<(), StoreError> {
        let page = self
            .store
            .query(
                keys::BULK_MATCH_QUEUE_PK,
                QueryOpts::new(Index::Table, SkRange::All).limit(1000),
            )
            .await?;
        for item in page
            .items
            .iter()
            .filter(|i| i.key.sk.ends_with(&format!("#{id}")))
        {
            self.store.delete(&item.key, Condition::None).await?;
        }
        Ok(())
    }

    async fn fail(&self, id: &str, why: &str) -> Result<(), StoreError> {
        let job = self
            .update(id, |j| {
                if !j.is_active() {
                    return false;
                }
                j.status = BulkMatchStatus::Failed;
                j.failure = Some(why.to_owned());
                true
            })
            .await?;
        self.blobs
            .delete_prefix(&format!("{}/", job_prefix(id)))
            .await?;
        match job {
            Some(j) => self.release(&j).await,
            None => Ok(()),
        }
    }

    /// Matches every input patient and writes the result Bundles, in input
    /// order; `None` if the job was cancelled meanwhile.
    async fn write_outputs(
        &self,
        job: &BulkMatchJob,
        au: &AuthorizedUser,
    ) -> Result<Option<Vec<BulkMatchFile>>, StoreError> {
        let Some((reader, _)) = self.blobs.get(&input_key(&job.id)).await? else {
            return Err(StoreError::Other(format!(
                "bulk match {}: its input is gone",
                job.id
            )));
        };
        let mut lines = tokio::io::BufReader::new(reader).lines();
        let mut out = OutputWriter::new(self.blobs.clone(), &job.id, self.max_per_file);
        let ctx = Arc::new(MatchContext {
            queries: self.queries.clone(),
            au: au.clone(),
            job: job.id.clone(),
            only_certain: job.only_certain,
            count: job.count,
            fhir_base: self.fhir_base.clone(),
            identifier_base: self.identifier_base.clone(),
            matchers: self.matchers.max(1),
        });
        match self.match_all(job, &ctx, &mut lines, &mut out).await {
            Ok(true) => out.finish().await.map(Some),
            Ok(false) => {
                out.abort().await;
                Ok(None)
            }
            Err(e) => {
                out.abort().await;
                Err(e)
            }
        }
    }

    /// Matches the input lines, up to `matchers` at once with no pause
    /// between batches (the slowest match never holds the others up), and
    /// writes each result in input order as soon as those before it are
    /// written. About every [`PROGRESS_EVERY`] it counts progress on the
    /// job and looks for a cancel (`Ok(false)`).
    async fn match_all<R>(
        &self,
        job: &BulkMatchJob,
        ctx: &Arc<MatchContext>,
        lines: &mut tokio::io::Lines<R>,
        out: &mut OutputWriter,
    ) -> Result<bool, StoreError>
    where
        R: tokio::io::AsyncBufRead + Unpin,
    {
        let mut running = tokio::task::JoinSet::new();
        // Results that finished before an earlier one, by input position.
        let mut ready: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
        let (mut read, mut written) = (0u64, 0u64);
        let mut input_done = false;
        let mut last_progress = std::time::Instant::now();
        loop {
            // Keep `matchers` matching; never hold more than a few windows
            // of results waiting for a slow one.
            while !input_done
                && running.len() < ctx.matchers
                && running.len() + ready.len() < ctx.matchers * 4
            {
                match lines.next_line().await {
                    Ok(Some(line)) if line.trim().is_empty() => {}
                    Ok(Some(line)) => {
                        let ctx = ctx.clone();
                        let at = read;
                        read += 1;
                        running.spawn(async move { (at, match_line(&ctx, &line).await) });
                    }
                    Ok(None) => input_done = true,
                    Err(e) => return Err(StoreError::Other(format!("bulk match input: {e}"))),
                }
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (at, line) =
                done.map_err(|e| StoreError::Other(format!("bulk match task: {e}")))?;
            ready.insert(at, line?);
            while let Some(line) = ready.remove(&written) {
                out.write(&line).await?;
                written += 1;
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = std::time::Instant::now();
                let counted = self
                    .update(&job.id, |j| {
                        if j.status != BulkMatchStatus::Running {
                            return false;
                        }
                        j.matched = written;
                        true
                    })
                    .await?;
                if !counted.is_some_and(|j| j.status == BulkMatchStatus::Running) {
                    running.abort_all();
                    return Ok(false);
                }
            }
        }
        // A last look: a job cancelled since the last count is not completed.
        Ok(self
            .get(&job.id)
            .await?
            .is_some_and(|j| j.status == BulkMatchStatus::Running))
    }

    /// Deletes the files of jobs expired by `now` (epoch seconds), at most
    /// `limit`; returns how many. The job items expire by themselves.
    pub async fn sweep(&self, now: i64, limit: u32) -> Result<usize, StoreError> {
        let page = self
            .store
            .query(
                keys::BULK_MATCH_EXPIRY_PK,
                QueryOpts::new(
                    Index::Table,
                    SkRange::Between("0".into(), format!("{:012}#~", now.max(0))),
                )
                .limit(limit.max(1)),
            )
            .await?;
        let mut swept = 0;
        for item in &page.items {
            let Some((_, id)) = item.key.sk.split_once('#') else {
                continue;
            };
            self.blobs
                .delete_prefix(&format!("{}/", job_prefix(id)))
                .await?;
            self.store.delete(&item.key, Condition::None).await?;
            swept += 1;
        }
        Ok(swept)
    }
}

/// What every patient of one job is matched with.
struct MatchContext {
    queries: Queries,
    au: AuthorizedUser,
    job: String,
    only_certain: bool,
    count: u32,
    fhir_base: String,
    identifier_base: String,
    matchers: usize,
}

/// One input line's result Bundle as an NDJSON line (with its newline).
async fn match_line(ctx: &MatchContext, line: &str) -> Result<Vec<u8>, StoreError> {
    // The kick-off checked every patient; a line that no longer reads is
    // storage damage, not the client's fault.
    let patient: Map<String, Value> = serde_json::from_str(line)
        .map_err(|e| StoreError::Corrupt(format!("bulk match {} input: {e}", ctx.job)))?;
    let id = patient
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let input = BulkMatchInput { id, patient };
    let request = bulk_input_request(&input, ctx.only_certain, ctx.count, &ctx.identifier_base)
        .map_err(|p| {
            StoreError::Corrupt(format!("bulk match {} input: {}", ctx.job, p.expression))
        })?;
    let now = store::limits::now_epoch_millis();
    // The query record and its writes are dropped: a bulk match is a
    // lookup and makes no relationship (see the module's comment).
    let (answer, _record, _writes) = ctx
        .queries
        .match_patient(&ctx.au, &request, now, &ctx.job)
        .await?;
    let mut bundle = match_bundle(&answer, &ctx.fhir_base, &ctx.identifier_base);
    // Which input patient this Bundle answers, by the client's own id
    // (Bulk Data IG: the match-resource extension on the Bundle's meta).
    bundle.meta = Some(fhir::Meta {
        extension: vec![fhir::Extension {
            url: crate::fhir_match::MATCH_RESOURCE.into(),
            value_reference: Some(fhir::Reference {
                reference: Some(format!("Patient/{}", input.id)),
                ..fhir::Reference::default()
            }),
            ..fhir::Extension::default()
        }],
        ..fhir::Meta::default()
    });
    // The answer of this operation, not of a single $match.
    for link in &mut bundle.link {
        if link.relation == "self" {
            link.url = format!("{}/Patient/$bulk-match", ctx.fhir_base);
        }
    }
    let mut bytes = serde_json::to_vec(&bundle)
        .map_err(|e| StoreError::Other(format!("bulk match result: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The job's output files, `Bundle.001.ndjson` onwards, each of at most
/// `max_per_file` Bundles.
struct OutputWriter {
    blobs: Arc<dyn BlobStore>,
    job: String,
    max_per_file: u64,
    current: Option<(Box<dyn BlobUpload>, String, u64)>,
    done: Vec<BulkMatchFile>,
}

impl OutputWriter {
    fn new(blobs: Arc<dyn BlobStore>, job: &str, max_per_file: u64) -> Self {
        OutputWriter {
            blobs,
            job: job.to_owned(),
            max_per_file: max_per_file.max(1),
            current: None,
            done: Vec::new(),
        }
    }

    async fn write(&mut self, line: &[u8]) -> Result<(), StoreError> {
        if self
            .current
            .as_ref()
            .is_some_and(|(_, _, n)| *n >= self.max_per_file)
        {
            self.close().await?;
        }
        if self.current.is_none() {
            let name = format!("Bundle.{:03}.ndjson", self.done.len() + 1);
            let up = self
                .blobs
                .begin(&output_key(&self.job, &name), "application/fhir+ndjson")
                .await?;
            self.current = Some((up, name, 0));
        }
        if let Some((up, _, n)) = self.current.as_mut() {
            up.write(line).await?;
            *n += 1;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), StoreError> {
        if let Some((up, name, count)) = self.current.take() {
            up.complete().await?;
            self.done.push(BulkMatchFile { name, count });
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Vec<BulkMatchFile>, StoreError> {
        self.close().await?;
        Ok(self.done)
    }

    async fn abort(&mut self) {
        if let Some((up, _, _)) = self.current.take() {
            let _ = up.abort().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records that start a bulk match run; the export worker's crate
    /// and scripts/check_infra_consistency.py hold the same cases for the
    /// template's stream filter.
    #[test]
    fn a_new_bulk_match_job_and_nothing_else_starts_a_run() {
        let cases = [
            ("INSERT", "BMJOB#b1", "BMJOB", true),
            ("MODIFY", "BMJOB#b1", "BMJOB", false),
            ("REMOVE", "BMJOB#b1", "BMJOB", false),
            ("INSERT", "BMJOB#", "BMJOB", false),
            ("INSERT", "BMSLOT#au", "0", false),
            ("INSERT", "BMQUEUE", "0000000000001#b1", false),
            ("INSERT", "BMEXP", "000000000001#b1", false),
            ("INSERT", "JOB#b1", "JOB", false),
        ];
        for (event, pk, sk, acted) in cases {
            let key = store::Key::new(pk, sk);
            let data: &[u8] = b"{}";
            let (old, new) = match event {
                "INSERT" => (None, Some(data)),
                "MODIFY" => (Some(data), Some(data)),
                _ => (Some(data), None),
            };
            assert_eq!(
                job_created(&key, old, new).is_some(),
                acted,
                "{event} {pk} {sk}"
            );
        }
        assert_eq!(
            job_created(&keys::bulk_match_job("b7"), None, Some(b"{}")),
            Some("b7")
        );
    }
}
