//! Export jobs. The kick-off writes a job item; its creation is the event
//! the export worker consumes to *plan* the job: it pages the Group's member
//! keys (never the members' records) and cuts them into shards, each a
//! range of member sort keys written as its own item. Each shard item's
//! creation is in turn an event: a worker writes that shard's files (in the
//! cloud, shards run in parallel Lambda invocations; locally, in parallel
//! tasks). A shard reports itself done on the job item with a conditional
//! write, so exactly one shard sees the last one finish; it writes the
//! job-wide files (Organization, the Group line spliced from the shards'
//! member parts, lenient-handling errors) and completes the job. The status
//! poll reads the job; a cancel deletes its files and stops the shards.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::{BlobStore, Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

use super::request::ExportRequest;
use super::writer::{owed, Owed, ShardFiles};
use super::writer::{
    shard_prefix, write_ignored, write_summary, ExportFiles, ExportSpec, OutputFile, ShardWriter,
};
use crate::authorized_user::{AuthorizedUser, AuthorizedUsers};
use crate::json::{decode, encode};
use crate::keys;
use crate::membership::{GroupRecord, Groups, Member};
use crate::persons::Persons;

/// The export job a store change creates, if it creates one (what the
/// export worker consumes).
pub fn job_created<'a>(
    key: &'a store::Key,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Option<&'a str> {
    if old.is_some() || new.is_none() || key.sk != "JOB" {
        return None;
    }
    key.pk.strip_prefix("JOB#").filter(|id| !id.is_empty())
}

/// The export shard a store change creates, if it creates one.
pub fn shard_created(
    key: &store::Key,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Option<(String, u32)> {
    if old.is_some() || new.is_none() || key.sk != keys::EXPORT_SHARD_SK {
        return None;
    }
    keys::parse_export_shard(&key.pk)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Accepted,
    /// Planned: its shards are being written.
    Running,
    /// Every shard is written; the job-wide files are being written.
    Finishing,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: String,
    pub au: String,
    pub group: String,
    pub request: ExportRequest,
    /// The kick-off URL as the client sent it (the manifest's `request`).
    pub request_url: String,
    pub status: JobStatus,
    pub transaction_time_ms: i64,
    pub created_at_ms: i64,
    /// Epoch seconds after which the job and its files are gone.
    pub expires_at: i64,
    #[serde(default)]
    pub files: ExportFiles,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Shards planned (0 until planned).
    #[serde(default)]
    pub shards: u32,
    /// Shards written, in the order they finished.
    #[serde(default)]
    pub shards_done: Vec<u32>,
    /// The shards' slices of the Group member list, by shard.
    #[serde(default)]
    pub member_parts: Vec<OutputFile>,
    /// Shard attempts that failed; the job fails at [`MAX_SHARD_FAILURES`].
    #[serde(default)]
    pub shard_failures: u32,
}

/// One shard of a job: the members whose sort keys are in `first..=last`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportShard {
    pub job: String,
    pub n: u32,
    pub first: String,
    pub last: String,
}

/// How long an expiry index item outlives its job (seconds).
const EXPIRY_INDEX_GRACE: i64 = 7 * 24 * 3600;

/// Failed shard attempts after which the job is reported failed.
pub const MAX_SHARD_FAILURES: u32 = 5;
/// Most shards of one job (a shard item each, written in one transaction
/// with the job's update).
pub const MAX_SHARDS: u64 = 64;

impl ExportJob {
    pub fn prefix(&self) -> String {
        format!("exports/{}", self.id)
    }

    /// Still being written.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            JobStatus::Accepted | JobStatus::Running | JobStatus::Finishing
        )
    }

    /// What `X-Progress` says while the job runs.
    pub fn progress(&self) -> String {
        match self.status {
            JobStatus::Accepted => "queued".into(),
            JobStatus::Running => format!(
                "{} of {} parts written",
                self.shards_done.len(),
                self.shards
            ),
            JobStatus::Finishing => "writing the manifest".into(),
            _ => "done".into(),
        }
    }
}

#[derive(Debug)]
pub enum JobError {
    /// The Authorized User already has this many jobs running.
    TooMany(usize),
    Store(StoreError),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Store(e)
    }
}

#[derive(Clone)]
pub struct ExportJobs {
    store: Arc<dyn ItemStore>,
    blobs: Arc<dyn BlobStore>,
    patients: Persons,
    pub identifier_base: String,
    pub max_lines_per_file: u64,
    pub max_active_per_au: usize,
    /// Members per shard before a Group is split further (up to [`MAX_SHARDS`]).
    pub members_per_shard: u64,
    /// Shards one process writes at once (locally; Lambda scales by itself).
    pub parallel_shards: usize,
    /// How long files and jobs are kept, seconds.
    pub retention: i64,
    /// Status polls of a running job closer together than this get 429.
    pub min_poll_interval_ms: i64,
    /// Lifetime of presigned file URLs minted at each status poll (cloud);
    /// `None`: files are downloaded through the API with a token.
    pub presign_for: Option<std::time::Duration>,
    /// The CDSi supporting data ImmunizationRecommendation lines are
    /// forecast with: a release the jurisdiction pinned, or `None` for the
    /// built-in one ([`cdsi::builtin`]).
    pub cdsi_data: Option<Arc<cdsi::SupportingData>>,
}

impl std::fmt::Debug for ExportJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportJobs")
    }
}

impl ExportJobs {
    pub fn new(patients: Persons, blobs: Arc<dyn BlobStore>, identifier_base: &str) -> Self {
        ExportJobs {
            store: patients.store_arc(),
            blobs,
            patients,
            identifier_base: identifier_base.to_owned(),
            max_lines_per_file: 50_000,
            max_active_per_au: 2,
            members_per_shard: 20_000,
            parallel_shards: std::thread::available_parallelism().map_or(2, |n| n.get()),
            retention: 24 * 3600,
            min_poll_interval_ms: 1000,
            presign_for: None,
            cdsi_data: None,
        }
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// Records a new job, refusing when the user has too many running.
    pub async fn create(
        &self,
        au: &str,
        group: &str,
        request: ExportRequest,
        request_url: &str,
        now_ms: i64,
    ) -> Result<ExportJob, JobError> {
        let page = self
            .store
            .query(
                &keys::au_jobs_pk(au),
                QueryOpts::new(Index::Table, SkRange::All).limit(100),
            )
            .await?;
        let mut active = 0;
        for item in &page.items {
            if let Some(j) = self.get(&item.key.sk).await? {
                if j.is_active() {
                    active += 1;
                }
            }
        }
        if active >= self.max_active_per_au {
            return Err(JobError::TooMany(active));
        }
        let job = ExportJob {
            id: uuid::Uuid::new_v4().simple().to_string(),
            au: au.to_owned(),
            group: group.to_owned(),
            request,
            request_url: request_url.to_owned(),
            status: JobStatus::Accepted,
            transaction_time_ms: now_ms,
            created_at_ms: now_ms,
            expires_at: now_ms / 1000 + self.retention,
            files: ExportFiles::default(),
            failure: None,
            shards: 0,
            shards_done: Vec::new(),
            member_parts: Vec::new(),
            shard_failures: 0,
        };
        self.store
            .transact(vec![
                Write::Put {
                    item: Item::new(keys::export_job(&job.id), encode(&job)?)
                        .with_expiry(job.expires_at),
                    cond: Condition::Absent,
                },
                Write::Put {
                    item: Item::new(keys::au_job(au, &job.id), Vec::new())
                        .with_expiry(job.expires_at),
                    cond: Condition::None,
                },
                // Outlives the job so the sweeper finds it after the job
                // item has expired; the store's own expiry removes it later.
                Write::Put {
                    item: Item::new(keys::export_expiry(job.expires_at, &job.id), Vec::new())
                        .with_expiry(job.expires_at + EXPIRY_INDEX_GRACE),
                    cond: Condition::None,
                },
            ])
            .await?;
        Ok(job)
    }

    pub async fn get(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        match self.store.get(&keys::export_job(id)).await? {
            Some(item) => decode(&item, "export job").map(Some),
            None => Ok(None),
        }
    }

    /// Applies `change` to the stored job if `allowed` holds for it.
    async fn update<F>(&self, id: &str, mut change: F) -> Result<Option<ExportJob>, StoreError>
    where
        F: FnMut(&mut ExportJob) -> bool,
    {
        for attempt in 0..crate::retry::MAX_ATTEMPTS {
            let Some(item) = self.store.get(&keys::export_job(id)).await? else {
                return Ok(None);
            };
            let mut job: ExportJob = decode(&item, "export job")?;
            if !change(&mut job) {
                return Ok(Some(job));
            }
            match self
                .store
                .put(
                    Item::new(keys::export_job(id), encode(&job)?).with_expiry(job.expires_at),
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
            "export job kept changing under us".into(),
        ))
    }

    /// Counts a status poll at `now_ms`: the job, or [`Poll::TooSoon`]
    /// when the last poll was less than `min_interval_ms` ago (that poll is
    /// not counted). Polls are kept in their own item so a client polling
    /// never contends with the workers updating the job.
    pub async fn polled(
        &self,
        id: &str,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<Option<Poll>, StoreError> {
        let Some(job) = self.get(id).await? else {
            return Ok(None);
        };
        let key = keys::export_job_polls(id);
        for attempt in 0..crate::retry::MAX_ATTEMPTS {
            let current = self.store.get(&key).await?;
            let mut state: PollState = match &current {
                Some(item) => decode(item, "export job polls")?,
                None => PollState::default(),
            };
            let since_last = now_ms - state.last_poll_ms;
            if state.polls > 0 && since_last < min_interval_ms {
                return Ok(Some(Poll::TooSoon {
                    wait_ms: min_interval_ms - since_last,
                }));
            }
            let first = state.polls == 0;
            state.polls += 1;
            state.last_poll_ms = now_ms;
            let cond = match &current {
                Some(item) => Condition::Version(item.version),
                None => Condition::Absent,
            };
            let item = Item::new(key.clone(), encode(&state)?).with_expiry(job.expires_at);
            match self.store.put(item, cond).await {
                Ok(_) => {
                    return Ok(Some(Poll::Answered {
                        job: Box::new(job),
                        first,
                    }))
                }
                Err(e) if crate::retry::is_conflict(&e) => crate::retry::pause(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Other("export job polls kept changing".into()))
    }

    /// Manifest page `n` (from 1) of a job exported with
    /// `allowPartialManifests`, or `None` if there is no such page. Pages
    /// are cut as they are asked for: the first lists the files finished by
    /// then; asking for the last page when more files have finished since
    /// cuts a new page with them, which the asked one now links to. A page
    /// never changes once cut, so a client can walk the links while the
    /// export runs and, once it completes, get every file exactly once.
    pub async fn manifest_page(
        &self,
        job: &ExportJob,
        n: u32,
    ) -> Result<Option<PageAnswer>, StoreError> {
        let key = keys::export_job_polls(&job.id);
        for attempt in 0..crate::retry::MAX_ATTEMPTS {
            let current = self.store.get(&key).await?;
            let mut state: PollState = match &current {
                Some(item) => decode(item, "export job polls")?,
                None => PollState::default(),
            };
            let cut = state.pages.len() as u32;
            if n == 0 || n > cut + 1 || (n == cut + 1 && n != 1) {
                return Ok(None);
            }
            let listed: std::collections::HashSet<&str> = state
                .pages
                .iter()
                .flat_map(|p| p.output.iter().chain(&p.deleted))
                .map(|f| f.key.as_str())
                .collect();
            let fresh = ManifestPage {
                output: (job.files.output.iter())
                    .filter(|f| !listed.contains(f.key.as_str()))
                    .cloned()
                    .collect(),
                deleted: (job.files.deleted.iter())
                    .filter(|f| !listed.contains(f.key.as_str()))
                    .cloned()
                    .collect(),
            };
            let has_fresh = !fresh.output.is_empty() || !fresh.deleted.is_empty();
            let cut_one = if n == cut + 1 {
                // The first page: what is finished, or (for a completed
                // export with no file at all) an empty final manifest.
                if !has_fresh && job.is_active() {
                    return Ok(Some(PageAnswer::NothingYet));
                }
                true
            } else {
                n == cut && has_fresh
            };
            if cut_one {
                state.pages.push(fresh);
            }
            let next = (state.pages.len() as u32 > n).then_some(n + 1);
            let Some(page) = state.pages.get(n as usize - 1).cloned() else {
                return Ok(None);
            };
            if !cut_one {
                return Ok(Some(PageAnswer::Page { page, next }));
            }
            let cond = match &current {
                Some(item) => Condition::Version(item.version),
                None => Condition::Absent,
            };
            let item = Item::new(key.clone(), encode(&state)?).with_expiry(job.expires_at);
            match self.store.put(item, cond).await {
                Ok(_) => return Ok(Some(PageAnswer::Page { page, next })),
                Err(e) if crate::retry::is_conflict(&e) => crate::retry::pause(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Other("export job polls kept changing".into()))
    }

    /// Cancels (or deletes a finished) job: its files go at once; the job
    /// stays, marked cancelled, so its URLs answer 404 until it expires.
    pub async fn cancel(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let job = self
            .update(id, |j| {
                let live = j.status != JobStatus::Cancelled;
                j.status = JobStatus::Cancelled;
                live
            })
            .await?;
        if let Some(j) = &job {
            self.blobs
                .delete_prefix(&format!("{}/", j.prefix()))
                .await?;
        }
        Ok(job)
    }

    /// Deletes the files of jobs expired by `now` (epoch seconds), oldest
    /// first, at most `limit`; returns how many. The job's items expire by
    /// themselves (store expiry, DynamoDB TTL); in the cloud the bucket's
    /// lifecycle rule expires files too, and this only tidies sooner.
    pub async fn sweep(&self, now: i64, limit: u32) -> Result<usize, StoreError> {
        let page = self
            .store
            .query(
                keys::EXPORT_EXPIRY_PK,
                QueryOpts::new(
                    Index::Table,
                    SkRange::Between("0".into(), keys::export_expiry_upto(now)),
                )
                .limit(limit.max(1)),
            )
            .await?;
        let mut swept = 0;
        for item in &page.items {
            let Some(id) = item.key.sk.split_once('#').map(|(_, id)| id) else {
                continue;
            };
            // The job's items expire with it (the store purges them).
            self.blobs.delete_prefix(&format!("exports/{id}/")).await?;
            self.store.delete(&item.key, Condition::None).await?;
            swept += 1;
        }
        Ok(swept)
    }

    fn spec(&self, job: &ExportJob, au: AuthorizedUser, group: GroupRecord) -> ExportSpec {
        ExportSpec {
            prefix: job.prefix(),
            au,
            group,
            request: job.request.clone(),
            transaction_time_ms: job.transaction_time_ms,
            identifier_base: self.identifier_base.clone(),
            max_lines_per_file: self.max_lines_per_file,
            cdsi_data: self.cdsi_data.clone(),
        }
    }

    /// The job's Authorized User and Group, or `None` after marking the job
    /// failed because one of them is gone.
    async fn parties(
        &self,
        job: &ExportJob,
    ) -> Result<Option<(AuthorizedUser, GroupRecord)>, StoreError> {
        let users = AuthorizedUsers::new(self.store.clone());
        let au = users
            .get(&job.au)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let group = Groups::new(self.store.clone()).get(&job.group).await?;
        match (au, group) {
            (Some(au), Some(group)) => Ok(Some((au, group))),
            _ => {
                self.fail(&job.id, "the Group or its Authorized User no longer exists")
                    .await?;
                Ok(None)
            }
        }
    }

    async fn fail(&self, id: &str, why: &str) -> Result<(), StoreError> {
        let failed = self
            .update(id, |j| {
                if !j.is_active() {
                    return false;
                }
                j.status = JobStatus::Failed;
                j.failure = Some(why.to_owned());
                true
            })
            .await?;
        if let Some(j) = failed {
            self.blobs
                .delete_prefix(&format!("{}/", j.prefix()))
                .await?;
        }
        Ok(())
    }

    /// Plans a new job: cuts the Group's members into shards and writes a
    /// shard item for each (their creation starts the shard workers). Safe
    /// to repeat: a job already planned is left alone. An empty Group has
    /// no shards and is finished at once.
    pub async fn plan(&self, id: &str) -> Result<(), StoreError> {
        let Some(job) = self.get(id).await? else {
            return Ok(());
        };
        if job.status != JobStatus::Accepted {
            return Ok(());
        }
        let Some((au, group)) = self.parties(&job).await? else {
            return Ok(());
        };
        let size = Groups::new(self.store.clone()).quantity(&group.id).await?;
        // Rewritten by a repeated plan under the same key: harmless.
        let errors =
            write_ignored(self.blobs.as_ref(), &self.spec(&job, au, group.clone())).await?;
        let per_shard = self.members_per_shard.max(1).max(size.div_ceil(MAX_SHARDS));
        let mut ranges: Vec<(String, String)> = Vec::new();
        let mut in_shard = 0u64;
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(
                    &keys::group_pk(&group.id),
                    QueryOpts::new(Index::Table, SkRange::Prefix(keys::MEMBER_PREFIX.into()))
                        .limit(1000)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                let sk = &item.key.sk;
                let full = ranges.len() as u64 >= MAX_SHARDS;
                match ranges.last_mut() {
                    Some((_, last)) if in_shard < per_shard || full => {
                        *last = sk.clone();
                        in_shard += 1;
                    }
                    _ => {
                        ranges.push((sk.clone(), sk.clone()));
                        in_shard = 1;
                    }
                }
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let shards = ranges.len() as u32;
        let writes: Vec<Write> = ranges
            .into_iter()
            .zip(1u32..)
            .map(|((first, last), n)| {
                let shard = ExportShard {
                    job: job.id.clone(),
                    n,
                    first,
                    last,
                };
                Ok(Write::Put {
                    item: Item::new(keys::export_shard(&job.id, n), encode(&shard)?)
                        .with_expiry(job.expires_at),
                    cond: Condition::Absent,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // Retry until the job is planned, by us or by another worker.
        for attempt in 0.. {
            let Some(current) = self.store.get(&keys::export_job(id)).await? else {
                return Ok(());
            };
            let mut planned: ExportJob = decode(&current, "export job")?;
            if planned.status != JobStatus::Accepted {
                return Ok(());
            }
            planned.status = if shards == 0 {
                JobStatus::Finishing
            } else {
                JobStatus::Running
            };
            planned.shards = shards;
            planned.files.error = errors.clone();
            let mut all = writes.clone();
            all.push(Write::Put {
                item: Item::new(keys::export_job(id), encode(&planned)?)
                    .with_expiry(job.expires_at),
                cond: Condition::Version(current.version),
            });
            match self.store.transact(all).await {
                Ok(()) => break,
                Err(e) if crate::retry::is_conflict(&e) && attempt < crate::retry::MAX_ATTEMPTS => {
                    crate::retry::pause(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
        if shards == 0 {
            self.complete_job(id).await?;
        }
        Ok(())
    }

    pub async fn shard(&self, job: &str, n: u32) -> Result<Option<ExportShard>, StoreError> {
        match self.store.get(&keys::export_shard(job, n)).await? {
            Some(item) => decode(&item, "export shard").map(Some),
            None => Ok(None),
        }
    }

    /// Writes one shard's files and reports it done; the shard that
    /// finishes last finishes the job. Safe to repeat: a shard already done
    /// is not rewritten, and a rerun of an interrupted shard first deletes
    /// what the interrupted attempt wrote. A failed attempt is counted on
    /// the job and returned as an error (to be retried) until the job has
    /// failed [`MAX_SHARD_FAILURES`] times, then the job fails.
    pub async fn run_shard(&self, id: &str, n: u32) -> Result<(), StoreError> {
        let Some(job) = self.get(id).await? else {
            return Ok(());
        };
        match job.status {
            JobStatus::Running if !job.shards_done.contains(&n) => {}
            JobStatus::Finishing => return self.complete_job(id).await,
            _ => return Ok(()),
        }
        let Some(shard) = self.shard(id, n).await? else {
            return Ok(());
        };
        let Some((au, group)) = self.parties(&job).await? else {
            return Ok(());
        };
        let spec = self.spec(&job, au, group);
        let prefix = format!("{}/", shard_prefix(&spec.prefix, n));
        let written = match self.write_shard(&spec, &shard, &prefix).await {
            Ok(Some(w)) => w,
            // Cancelled while it ran.
            Ok(None) => {
                self.blobs.delete_prefix(&prefix).await?;
                return Ok(());
            }
            Err(e) => {
                let _ = self.blobs.delete_prefix(&prefix).await;
                let counted = self
                    .update(id, |j| {
                        j.shard_failures += 1;
                        j.is_active()
                    })
                    .await;
                if let Ok(Some(j)) = counted {
                    if j.shard_failures >= MAX_SHARD_FAILURES {
                        self.fail(
                            id,
                            &format!("part {n} of the export could not be written: {e}"),
                        )
                        .await?;
                        return Ok(());
                    }
                }
                return Err(e);
            }
        };
        let done = self
            .update(id, |j| {
                if j.status != JobStatus::Running || j.shards_done.contains(&n) {
                    return false;
                }
                j.shards_done.push(n);
                j.files.output.extend(written.output.iter().cloned());
                j.files.deleted.extend(written.deleted.iter().cloned());
                j.member_parts.extend(written.members.iter().cloned());
                if j.shards_done.len() as u32 >= j.shards {
                    j.status = JobStatus::Finishing;
                }
                true
            })
            .await?;
        match done {
            Some(j) if j.status == JobStatus::Finishing => self.complete_job(id).await,
            Some(j) if j.status == JobStatus::Cancelled || j.status == JobStatus::Failed => {
                self.blobs.delete_prefix(&prefix).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Writes a shard's members; `None` if the job was cancelled meanwhile.
    async fn write_shard(
        &self,
        spec: &ExportSpec,
        shard: &ExportShard,
        prefix: &str,
    ) -> Result<Option<ShardFiles>, StoreError> {
        // A rerun replaces whatever an interrupted attempt left.
        self.blobs.delete_prefix(prefix).await?;
        let mut w = ShardWriter::new(spec, shard.n);
        let mut cursor = None;
        let result = loop {
            let page = match self
                .store
                .query(
                    &keys::group_pk(&spec.group.id),
                    QueryOpts::new(
                        Index::Table,
                        SkRange::Between(shard.first.clone(), shard.last.clone()),
                    )
                    .limit(PAGE)
                    .after(cursor.take()),
                )
                .await
            {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            // A page's members are read concurrently (each is a few store
            // round trips, milliseconds apiece on DynamoDB), then written in
            // member order.
            let owed = match self.read_page(spec, &page.items).await {
                Ok(o) => o,
                Err(e) => break Err(e),
            };
            let mut failed = None;
            for o in owed {
                if let Err(e) = w.write(self.blobs.as_ref(), spec, o).await {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            // Between pages: a cancelled job stops its shards early.
            match self.get(&shard.job).await {
                Ok(Some(j)) if j.status == JobStatus::Running => {}
                Ok(_) => {
                    w.abort().await;
                    return Ok(None);
                }
                Err(e) => break Err(e),
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break Ok(()),
            }
        };
        match result {
            Ok(()) => w.finish().await.map(Some),
            Err(e) => {
                w.abort().await;
                Err(e)
            }
        }
    }

    /// What the export owes for each member item of a page, in page order,
    /// read by up to [`READERS`] tasks at once.
    async fn read_page(&self, spec: &ExportSpec, page: &[Item]) -> Result<Vec<Owed>, StoreError> {
        let members = page
            .iter()
            .map(|i| decode::<Member>(i, "group member"))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = Arc::new(spec.clone());
        let mut out: Vec<Option<Owed>> = std::iter::repeat_with(|| None)
            .take(members.len())
            .collect();
        let mut running = tokio::task::JoinSet::new();
        let mut next = members.into_iter().enumerate();
        loop {
            while running.len() < READERS {
                let Some((at, m)) = next.next() else { break };
                let patients = self.patients.clone();
                let spec = spec.clone();
                running.spawn(async move { (at, owed(&patients, &spec, &m).await) });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (at, owed) =
                done.map_err(|e| StoreError::Other(format!("export reader task: {e}")))?;
            if let Some(slot) = out.get_mut(at) {
                *slot = Some(owed?);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Writes the job-wide files and completes the job (rerunnable).
    async fn complete_job(&self, id: &str) -> Result<(), StoreError> {
        let Some(mut job) = self.get(id).await? else {
            return Ok(());
        };
        if job.status != JobStatus::Finishing {
            return Ok(());
        }
        let Some((au, group)) = self.parties(&job).await? else {
            return Ok(());
        };
        let spec = self.spec(&job, au, group);
        job.member_parts.sort_by(|a, b| a.key.cmp(&b.key));
        let summary = write_summary(self.blobs.as_ref(), &spec, &job.member_parts).await?;
        // Written when the job was planned (by a version that did not, now).
        let errors = if job.files.error.is_empty() {
            write_ignored(self.blobs.as_ref(), &spec).await?
        } else {
            job.files.error.clone()
        };
        let done = self
            .update(id, |j| {
                if j.status != JobStatus::Finishing {
                    return false;
                }
                let mut output = std::mem::take(&mut j.files.output);
                output.extend(summary.output.iter().cloned());
                // Types in a fixed order, each type's files in shard order.
                output.sort_by(|a, b| {
                    (type_rank(&a.resource_type), &a.key)
                        .cmp(&(type_rank(&b.resource_type), &b.key))
                });
                j.files.output = output;
                j.files.deleted.sort_by(|a, b| a.key.cmp(&b.key));
                j.files.error = errors.clone();
                j.status = JobStatus::Completed;
                true
            })
            .await?;
        if done.is_some_and(|j| j.status == JobStatus::Cancelled) {
            self.blobs
                .delete_prefix(&format!("{}/", job.prefix()))
                .await?;
        }
        for part in &job.member_parts {
            let _ = self.blobs.delete(&part.key).await;
        }
        Ok(())
    }

    /// Plans a job and writes all its shards in this process, up to
    /// `parallel_shards` at once (the local composition; tests). Resumes a
    /// job a previous run left half done.
    pub async fn run_here(&self, id: &str) -> Result<(), StoreError> {
        self.plan(id).await?;
        let Some(job) = self.get(id).await? else {
            return Ok(());
        };
        if job.status == JobStatus::Finishing {
            return self.complete_job(id).await;
        }
        if job.status != JobStatus::Running {
            return Ok(());
        }
        let todo: Vec<u32> = (1..=job.shards)
            .filter(|n| !job.shards_done.contains(n))
            .collect();
        let mut running = tokio::task::JoinSet::new();
        let mut first_error = None;
        for n in todo {
            if running.len() >= self.parallel_shards.max(1) {
                if let Some(Ok(Err(e))) = running.join_next().await {
                    first_error.get_or_insert(e);
                }
            }
            let jobs = self.clone();
            let id = id.to_owned();
            running.spawn(async move { jobs.run_shard(&id, n).await });
        }
        while let Some(r) = running.join_next().await {
            match r {
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(StoreError::Other(format!("export shard task: {e}")));
                }
                Ok(Ok(())) => {}
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Members read per page by a shard.
const PAGE: u32 = 500;
/// Members of a page read at once.
const READERS: usize = 16;

fn type_rank(t: &str) -> u8 {
    match t {
        super::writer::BY_PATIENT | "Patient" => 0,
        "Immunization" => 1,
        "ImmunizationRecommendation" => 2,
        "Group" => 3,
        "Organization" => 4,
        _ => 5,
    }
}

/// Status polls of a job so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PollState {
    polls: u32,
    /// Epoch ms of the last poll answered.
    last_poll_ms: i64,
    /// The partial manifests handed out (`allowPartialManifests`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pages: Vec<ManifestPage>,
}

/// One manifest of an export answered in several (`allowPartialManifests`):
/// the files it lists, fixed once a client has been given it (the IG allows
/// only a `next` link to be added later).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPage {
    pub output: Vec<OutputFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<OutputFile>,
}

/// What a partial manifest request finds.
#[derive(Debug, PartialEq, Eq)]
pub enum PageAnswer {
    /// No file is finished yet (only for the first manifest).
    NothingYet,
    /// The page, and the number of the page after it if there is one.
    Page {
        page: ManifestPage,
        next: Option<u32>,
    },
}

/// A status poll's answer.
#[derive(Debug)]
pub enum Poll {
    /// The job; `first` for the first poll (always answered "in progress").
    Answered { job: Box<ExportJob>, first: bool },
    /// Polled again too soon; come back after this long.
    TooSoon { wait_ms: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records the export worker acts on; scripts/check_infra_consistency.py
    /// holds the same cases for the stream filter of the template.
    #[test]
    fn the_export_worker_acts_on_new_jobs_and_new_shards_only() {
        let cases = [
            ("INSERT", "JOB#j1", "JOB", true),
            ("MODIFY", "JOB#j1", "JOB", false),
            ("INSERT", "JOBSHARD#j1#1", "SHARD", true),
            ("MODIFY", "JOBSHARD#j1#1", "SHARD", false),
            ("INSERT", "JOB#j1", "POLL", false),
            ("INSERT", "JOBEXP", "000000000001#j1", false),
            ("INSERT", "AUJOBS#au", "j1", false),
            ("REMOVE", "JOB#j1", "JOB", false),
            ("INSERT", "IN#m1", "HEAD", false),
        ];
        for (event, pk, sk, acted) in cases {
            let key = store::Key::new(pk, sk);
            let data: &[u8] = b"{}";
            let (old, new) = match event {
                "INSERT" => (None, Some(data)),
                "MODIFY" => (Some(data), Some(data)),
                _ => (Some(data), None),
            };
            let acts =
                job_created(&key, old, new).is_some() || shard_created(&key, old, new).is_some();
            assert_eq!(acts, acted, "{event} {pk} {sk}");
        }
        assert_eq!(
            shard_created(&keys::export_shard("j1", 7), None, Some(b"{}")),
            Some(("j1".to_owned(), 7))
        );
    }
}
