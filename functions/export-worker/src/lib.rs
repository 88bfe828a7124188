//! The export worker: reads a DynamoDB stream batch and does the
//! asynchronous Bulk Data work its records start. A new export job item is
//! planned (its Group's members cut into shards, one shard item each); a
//! new shard item has its files written, and the shard that finishes last
//! completes the job. A new `Patient/$bulk-match` job item is run: every
//! input patient matched and its result Bundles written. Every other record
//! is ignored. Work stops at the first record that fails and reports it, so
//! Lambda retries from there; each step is idempotent (a rerun bulk match
//! starts again from its first patient and replaces its files; its runs are
//! capped, then it is reported failed), so a redelivered batch writes no
//! line twice.

use std::sync::{Arc, OnceLock};

use registry::bulk_match::BulkMatchJobs;
use registry::export::{job_created, shard_created, ExportJobs};
use serde_json::Value;
pub use stream_batch::{BatchResponse, ItemFailure};

/// What a stream record asks of the export worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Plan(String),
    Shard(String, u32),
    BulkMatch(String),
}

/// The jobs the worker runs: exports, and bulk matches where the
/// deployment serves them.
#[derive(Clone)]
pub struct Worker {
    pub exports: ExportJobs,
    bulk_match: Arc<BulkMatchSource>,
}

/// How the worker comes by its bulk match use case.
enum BulkMatchSource {
    /// None: a bulk match record is logged and left alone.
    Off,
    Ready(BulkMatchJobs),
    /// Built by the first bulk match record, then kept: building it parses
    /// the matching configuration, which would otherwise double the cold
    /// start of a container that may only ever run exports.
    OnFirstUse {
        build: BuildBulkMatch,
        built: OnceLock<BulkMatchJobs>,
    },
}

type BuildBulkMatch = Box<dyn Fn() -> Result<BulkMatchJobs, String> + Send + Sync>;

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("exports", &self.exports)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker of exports only (a bulk match record is then logged and
    /// left alone).
    pub fn exports_only(exports: ExportJobs) -> Worker {
        Worker {
            exports,
            bulk_match: Arc::new(BulkMatchSource::Off),
        }
    }

    /// A worker of exports and of bulk matches with `jobs`.
    pub fn with_bulk_match(exports: ExportJobs, jobs: BulkMatchJobs) -> Worker {
        Worker {
            exports,
            bulk_match: Arc::new(BulkMatchSource::Ready(jobs)),
        }
    }

    /// A worker of exports and of bulk matches whose use case `build`
    /// makes when the first bulk match arrives.
    pub fn with_bulk_match_on_first_use(
        exports: ExportJobs,
        build: impl Fn() -> Result<BulkMatchJobs, String> + Send + Sync + 'static,
    ) -> Worker {
        Worker {
            exports,
            bulk_match: Arc::new(BulkMatchSource::OnFirstUse {
                build: Box::new(build),
                built: OnceLock::new(),
            }),
        }
    }

    /// The bulk match use case, `None` where this worker runs none; an
    /// error if it could not be built (the record is then retried).
    pub fn bulk_match(&self) -> Result<Option<&BulkMatchJobs>, String> {
        match self.bulk_match.as_ref() {
            BulkMatchSource::Off => Ok(None),
            BulkMatchSource::Ready(jobs) => Ok(Some(jobs)),
            BulkMatchSource::OnFirstUse { build, built } => {
                if let Some(jobs) = built.get() {
                    return Ok(Some(jobs));
                }
                let jobs = build()?;
                // Two records at once may both build; either copy serves.
                Ok(Some(built.get_or_init(|| jobs)))
            }
        }
    }
}

/// The work of a stream event, each with the record's sequence number.
pub fn work(event: &Value) -> Result<Vec<(String, Option<Work>)>, String> {
    Ok(stream_batch::records(event)?
        .into_iter()
        .map(|r| {
            let (old, new) = (r.old.as_deref(), r.new.as_deref());
            let w = r.key.as_ref().and_then(|k| {
                job_created(k, old, new)
                    .map(|id| Work::Plan(id.to_owned()))
                    .or_else(|| shard_created(k, old, new).map(|(id, n)| Work::Shard(id, n)))
                    .or_else(|| {
                        registry::bulk_match::job_created(k, old, new)
                            .map(|id| Work::BulkMatch(id.to_owned()))
                    })
            });
            (r.sequence, w)
        })
        .collect())
}

pub async fn handle(worker: &Worker, event: &Value) -> Result<BatchResponse, String> {
    for (sequence, w) in work(event)? {
        let done = match &w {
            None => continue,
            Some(Work::Plan(id)) => worker.exports.plan(id).await,
            Some(Work::Shard(id, n)) => worker.exports.run_shard(id, *n).await,
            Some(Work::BulkMatch(id)) => match worker.bulk_match() {
                Ok(Some(jobs)) => jobs.run(id).await,
                Ok(None) => {
                    tracing::warn!(work = ?w, "a bulk match job, but this worker runs none; left alone");
                    continue;
                }
                Err(e) => Err(store::StoreError::Other(format!(
                    "the bulk match use case could not be built: {e}"
                ))),
            },
        };
        match done {
            Ok(()) => tracing::info!(work = ?w, "work done"),
            Err(e) => {
                tracing::warn!(work = ?w, error = %e, "work failed; batch will be retried from here");
                return Ok(BatchResponse {
                    batch_item_failures: vec![ItemFailure {
                        item_identifier: sequence,
                    }],
                });
            }
        }
    }
    Ok(BatchResponse::default())
}

/// The worker from the environment (every variable read by [`settings`]),
/// as `main.rs` builds it once per container (and the cloud end-to-end test
/// builds it against moto): `IISBULK_TABLE` (required), `IISBULK_BUCKET`
/// (required), `IISBULK_EXPORT_PREFIX` (key prefix in the bucket),
/// `IISBULK_PUBLIC_URL` (required: bulk match result Bundles name entries
/// under `<it>/fhir`), `IISBULK_EXPORT_RETENTION_HOURS` (how long bulk
/// match files are kept, as the API says in its manifests),
/// `IISBULK_JURISDICTION_POLICY` (its `fhir.identifier_base` names
/// identifier systems; its disclosure rules shape match answers),
/// `IISBULK_MATCHING_CONFIG` (as for bulk-api's `$match`),
/// `IISBULK_CDSI_DATA` (the CDSi release folder exported
/// ImmunizationRecommendations are forecast with, as for bulk-api; unset or
/// empty: the built-in one), and for tests `IISBULK_DYNAMODB_ENDPOINT` /
/// `IISBULK_S3_ENDPOINT`. (An export's retention is fixed by its kick-off,
/// in bulk-api.)
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<Worker, lambda_runtime::Error> {
    use registry::persons::Persons;
    let table = settings::dynamodb_table()?;
    let public_url = settings::https_public_url()?;
    let policy = Arc::new(settings::jurisdiction_policy()?);
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    let blobs: Arc<dyn store::BlobStore> = Arc::new(blob_s3::S3BlobStore::from_env().await?);
    let patients = Persons::new(store.clone());
    let mut exports = ExportJobs::new(patients, blobs.clone(), &policy.identifier_base);
    // A folder that does not load stops the cold start, naming it.
    exports.cdsi_data = settings::pinned_cdsi_release()?;
    // The retention is read now, so a bad value stops the cold start; the
    // matcher is built by the first bulk match (most containers only
    // export).
    let retention = settings::export_retention_seconds()?;
    Ok(Worker::with_bulk_match_on_first_use(exports, move || {
        let queries = settings::configured_match_queries(store.clone(), policy.clone())?;
        Ok(settings::bulk_match_jobs(
            store.clone(),
            blobs.clone(),
            queries,
            &public_url,
            &policy,
            retention,
        ))
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The records the worker acts on, as the table's stream delivers them;
    /// scripts/check_infra_consistency.py holds the same cases for the
    /// template's stream filter.
    #[test]
    fn the_worker_acts_on_new_export_jobs_shards_and_bulk_matches_only() {
        let cases = [
            ("INSERT", "JOB#j1", "JOB", Some(Work::Plan("j1".into()))),
            ("MODIFY", "JOB#j1", "JOB", None),
            (
                "INSERT",
                "JOBSHARD#j1#1",
                "SHARD",
                Some(Work::Shard("j1".into(), 1)),
            ),
            ("MODIFY", "JOBSHARD#j1#1", "SHARD", None),
            ("INSERT", "JOB#j1", "POLL", None),
            ("INSERT", "JOBEXP", "000000000001#j1", None),
            ("INSERT", "AUJOBS#au", "j1", None),
            ("REMOVE", "JOB#j1", "JOB", None),
            ("INSERT", "IN#m1", "HEAD", None),
            (
                "INSERT",
                "BMJOB#b1",
                "BMJOB",
                Some(Work::BulkMatch("b1".into())),
            ),
            ("MODIFY", "BMJOB#b1", "BMJOB", None),
            ("REMOVE", "BMJOB#b1", "BMJOB", None),
            ("INSERT", "BMSLOT#au", "0", None),
            ("INSERT", "BMQUEUE", "0000000000001#b1", None),
            ("INSERT", "BMEXP", "000000000001#b1", None),
        ];
        for (seq, (event, pk, sk, expected)) in cases.into_iter().enumerate() {
            let key = store::Key::new(pk, sk);
            let item = || Some(store::Item::new(key.clone(), b"{}".to_vec()));
            let (old, new) = match event {
                "INSERT" => (None, item()),
                "MODIFY" => (item(), item()),
                _ => (item(), None),
            };
            let change = store::Change {
                seq: seq as u64 + 1,
                at_ms: 0,
                key: key.clone(),
                old,
                new,
            };
            let event_json =
                serde_json::json!({ "Records": [stream_batch::stream_record(&change)] });
            let found = work(&event_json).unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].1, expected, "{event} {pk} {sk}");
        }
    }
}
