//! Export jobs: the kick-off writes a job item (its creation is the event
//! the export worker consumes), the worker writes the files and completes
//! the job, the status poll reads it, a cancel deletes its files.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::{BlobStore, Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

use super::request::ExportRequest;
use super::writer::{write_export, ExportFiles, ExportSpec};
use crate::authorized_user::AuthorizedUsers;
use crate::json::{decode, encode};
use crate::keys;
use crate::membership::Groups;
use crate::patients::PatientMatching;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Accepted,
    Running,
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
    /// Status polls answered so far (the first is always 202).
    pub polls: u32,
    #[serde(default)]
    pub files: ExportFiles,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl ExportJob {
    pub fn prefix(&self) -> String {
        format!("exports/{}", self.id)
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
    patients: PatientMatching,
    pub identifier_base: String,
    pub max_lines_per_file: u64,
    pub max_active_per_au: usize,
    /// How long files and jobs are kept, seconds.
    pub retention: i64,
}

impl std::fmt::Debug for ExportJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportJobs")
    }
}

impl ExportJobs {
    pub fn new(
        patients: PatientMatching,
        blobs: Arc<dyn BlobStore>,
        identifier_base: &str,
    ) -> Self {
        ExportJobs {
            store: patients.store_arc(),
            blobs,
            patients,
            identifier_base: identifier_base.to_owned(),
            max_lines_per_file: 50_000,
            max_active_per_au: 2,
            retention: 24 * 3600,
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
                if matches!(j.status, JobStatus::Accepted | JobStatus::Running) {
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
            polls: 0,
            files: ExportFiles::default(),
            failure: None,
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
        for _ in 0..crate::retry::MAX_ATTEMPTS {
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
                Err(e) if crate::retry::is_conflict(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Other(
            "export job kept changing under us".into(),
        ))
    }

    /// Counts a status poll; returns the job as it was before this poll.
    pub async fn polled(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let mut before = None;
        self.update(id, |j| {
            before = Some(j.clone());
            j.polls += 1;
            true
        })
        .await?;
        Ok(before)
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

    /// The worker: writes a job's files and completes it. Safe to repeat: a
    /// job already finished or cancelled is left alone; a rerun of an
    /// interrupted job rewrites every file under the same keys.
    pub async fn run(&self, id: &str) -> Result<(), StoreError> {
        let Some(job) = self
            .update(id, |j| {
                if j.status == JobStatus::Accepted {
                    j.status = JobStatus::Running;
                }
                true
            })
            .await?
        else {
            return Ok(());
        };
        if job.status != JobStatus::Running {
            return Ok(());
        }
        let users = AuthorizedUsers::new(self.store.clone());
        let groups = Groups::new(self.store.clone());
        let au = users
            .get(&job.au)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let group = groups.get(&job.group).await?;
        let (Some(au), Some(group)) = (au, group) else {
            self.update(id, |j| {
                j.status = JobStatus::Failed;
                j.failure = Some("the Group or its Authorized User no longer exists".into());
                true
            })
            .await?;
            return Ok(());
        };
        let spec = ExportSpec {
            prefix: job.prefix(),
            au,
            group,
            request: job.request.clone(),
            transaction_time_ms: job.transaction_time_ms,
            identifier_base: self.identifier_base.clone(),
            max_lines_per_file: self.max_lines_per_file,
        };
        let files = match write_export(&self.patients, &groups, self.blobs.as_ref(), &spec).await {
            Ok(f) => f,
            Err(e) => {
                let _ = self
                    .blobs
                    .delete_prefix(&format!("{}/", job.prefix()))
                    .await;
                return Err(e);
            }
        };
        let done = self
            .update(id, |j| {
                if j.status != JobStatus::Running {
                    return false;
                }
                j.status = JobStatus::Completed;
                j.files = files.clone();
                true
            })
            .await?;
        // Cancelled while running: what was written goes too.
        if done.is_some_and(|j| j.status == JobStatus::Cancelled) {
            self.blobs
                .delete_prefix(&format!("{}/", job.prefix()))
                .await?;
        }
        Ok(())
    }
}
