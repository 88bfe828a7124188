//! FHIR Bulk Data export of an Authorized User's Group (Bulk Data Access
//! IG v2.0.0): checking a kick-off request, export jobs planned into shards,
//! cutting resources to `_elements`, and writing a Group's files.

pub mod elements;
pub mod jobs;
pub mod request;
pub mod type_filter;
pub mod writer;

pub use jobs::{
    job_created, shard_created, ExportJob, ExportJobs, ExportShard, JobError, JobStatus,
    ManifestPage, PageAnswer, Poll,
};
pub use request::{parameters_of, ExportRequest, KickOff, Problem, ResourceType};
pub use writer::{
    read_file, write_export, ExportFiles, ExportSpec, OutputFile, ShardFiles, BY_PATIENT,
};
