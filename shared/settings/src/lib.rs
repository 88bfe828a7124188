//! # settings — what a deployment tells its functions
//!
//! Every `IISBULK_*` environment variable a Lambda function reads is named
//! once, in [`SETTINGS`], with what it means; each is read and checked by
//! one function here (a value that does not read stops the cold start,
//! naming the variable). The functions' `deps_from_env` call these and
//! nothing else for their configuration, so two functions never read one
//! variable two ways. `scripts/check_infra_consistency.py` reads the same
//! table: a variable the code reads must be in it, and one the template
//! leaves unset must say why here.
//!
//! What two functions must build alike from those settings is built here
//! too ([`match_queries`], [`bulk_match_jobs`]: the API queues bulk
//! matches, the export worker runs them; `iisbulk serve` builds its
//! queries with [`match_queries`] as well).
//!
//! The AWS adapters read their own connection variables (the bucket, the
//! key prefix, the test endpoints: `blob_s3`, `store_dynamodb`), where the
//! clients are built; they are listed here too, so the table is complete.
//! `iisbulk serve` takes the same settings as command-line flags.

use std::path::Path;
use std::sync::Arc;

use registry::membership::JurisdictionPolicy;

/// One variable: its name, what it means, and, for one the stack's
/// template never sets, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub meaning: &'static str,
    /// `Some(reason)`: never set in the deployed stack.
    pub not_deployed: Option<&'static str>,
}

pub const TABLE: &str = "IISBULK_TABLE";
pub const PUBLIC_URL: &str = "IISBULK_PUBLIC_URL";
pub const JURISDICTION_POLICY: &str = "IISBULK_JURISDICTION_POLICY";
pub const MATCHING_CONFIG: &str = "IISBULK_MATCHING_CONFIG";
pub const CDSI_DATA: &str = "IISBULK_CDSI_DATA";
pub const EXPORT_RETENTION_HOURS: &str = "IISBULK_EXPORT_RETENTION_HOURS";
pub const MAX_MESSAGE_BYTES: &str = "IISBULK_MAX_MESSAGE_BYTES";
pub const MAX_QUERY_CANDIDATES: &str = "IISBULK_MAX_QUERY_CANDIDATES";
pub const IIS_APPLICATION: &str = "IISBULK_IIS_APPLICATION";
pub const IIS_FACILITY: &str = "IISBULK_IIS_FACILITY";
pub const TOKEN_BURST: &str = "IISBULK_TOKEN_BURST";
pub const TOKEN_RATE_PER_SECOND: &str = "IISBULK_TOKEN_RATE_PER_SECOND";
/// Read by `blob_s3` (its `BUCKET_ENV`).
pub const BUCKET: &str = "IISBULK_BUCKET";
/// Read by `blob_s3` (its `PREFIX_ENV`).
pub const EXPORT_PREFIX: &str = "IISBULK_EXPORT_PREFIX";
/// Read by `blob_s3` (its `ENDPOINT_ENV`).
pub const S3_ENDPOINT: &str = "IISBULK_S3_ENDPOINT";
/// Read by `store_dynamodb` (its `ENDPOINT_ENV`).
pub const DYNAMODB_ENDPOINT: &str = "IISBULK_DYNAMODB_ENDPOINT";

/// Every `IISBULK_*` variable any function reads.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: TABLE,
        meaning: "the DynamoDB table (required)",
        not_deployed: None,
    },
    Setting {
        name: PUBLIC_URL,
        meaning: "the API's public https:// base URL: the FHIR base is <it>/fhir, the token \
                  endpoint (the only audience of client assertions) <it>/auth/token",
        not_deployed: None,
    },
    Setting {
        name: JURISDICTION_POLICY,
        meaning: "the jurisdiction policy as TOML text (policy/jurisdiction.toml's options); \
                  the shipped policy when unset",
        not_deployed: None,
    },
    Setting {
        name: MATCHING_CONFIG,
        meaning: "a matching configuration TOML file path; the shipped configuration when unset",
        not_deployed: Some(
            "a file path; the deployment package holds only `bootstrap`, so the built-in \
             matching configuration (shared/matching/config) is what runs",
        ),
    },
    Setting {
        name: CDSI_DATA,
        meaning: "a CDC CDSi supporting-data release folder (a layer's); empty or unset: the \
                  built-in release",
        not_deployed: None,
    },
    Setting {
        name: EXPORT_RETENTION_HOURS,
        meaning: "how long export and bulk match files are kept, hours (1 to 720; default 24)",
        not_deployed: None,
    },
    Setting {
        name: MAX_MESSAGE_BYTES,
        meaning: "the largest HL7 message accepted, bytes",
        not_deployed: None,
    },
    Setting {
        name: MAX_QUERY_CANDIDATES,
        meaning: "the most candidates a history query (Z34/Z44) weighs",
        not_deployed: None,
    },
    Setting {
        name: IIS_APPLICATION,
        meaning: "the IIS's own MSH-3 (sending application of its answers)",
        not_deployed: None,
    },
    Setting {
        name: IIS_FACILITY,
        meaning: "the IIS's own MSH-4 (sending facility of its answers)",
        not_deployed: None,
    },
    Setting {
        name: TOKEN_BURST,
        meaning: "token requests one address may make at once (per container; default 20)",
        not_deployed: None,
    },
    Setting {
        name: TOKEN_RATE_PER_SECOND,
        meaning: "token requests a second one address may keep making (per container; default 1)",
        not_deployed: None,
    },
    Setting {
        name: BUCKET,
        meaning: "the S3 bucket of export and bulk match files (read by blob_s3)",
        not_deployed: None,
    },
    Setting {
        name: EXPORT_PREFIX,
        meaning: "the key prefix of those files in the bucket (read by blob_s3)",
        not_deployed: None,
    },
    Setting {
        name: S3_ENDPOINT,
        meaning: "an S3 endpoint other than AWS's (read by blob_s3)",
        not_deployed: Some("points the S3 client at moto in tests; never set in AWS"),
    },
    Setting {
        name: DYNAMODB_ENDPOINT,
        meaning: "a DynamoDB endpoint other than AWS's (read by store_dynamodb)",
        not_deployed: Some(
            "points the DynamoDB client at moto/DynamoDB Local in tests; never set in AWS",
        ),
    },
];

/// A variable's value; unset and empty are the same (a template parameter
/// left empty sets it empty).
fn nonempty(read: Result<String, std::env::VarError>) -> Option<String> {
    read.ok().filter(|v| !v.trim().is_empty())
}

/// `IISBULK_TABLE`: required.
pub fn dynamodb_table() -> Result<String, String> {
    nonempty(std::env::var(TABLE)).ok_or_else(|| format!("{TABLE} must name the DynamoDB table"))
}

/// `IISBULK_PUBLIC_URL`, required and `https://` (tokens and cookies are
/// only ever sent over TLS).
pub fn https_public_url() -> Result<String, String> {
    let url = nonempty(std::env::var(PUBLIC_URL))
        .ok_or_else(|| format!("{PUBLIC_URL} must be the API's public base URL (https://…)"))?;
    if !url.starts_with("https://") {
        return Err(format!("{PUBLIC_URL} {url:?} must be an https:// URL"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// `IISBULK_PUBLIC_URL` where a function only names itself with it when
/// set (ingest's SOAP WSDL address), any scheme.
pub fn optional_public_url() -> Option<String> {
    nonempty(std::env::var(PUBLIC_URL))
}

/// `IISBULK_JURISDICTION_POLICY`: the policy TOML text, or the shipped
/// policy when unset.
pub fn jurisdiction_policy() -> Result<JurisdictionPolicy, String> {
    match nonempty(std::env::var(JURISDICTION_POLICY)) {
        Some(text) => {
            JurisdictionPolicy::from_toml(&text).map_err(|e| format!("{JURISDICTION_POLICY}: {e}"))
        }
        None => Ok(JurisdictionPolicy::default()),
    }
}

/// A matching configuration file, as the functions and `iisbulk serve
/// --matching-config` read it; errors name `source` (the variable or flag
/// that named the file) and the file.
pub fn matching_config_file(path: &Path, source: &str) -> Result<matching::Config, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{source} {}: {e}", path.display()))?;
    matching::Config::parse(&text).map_err(|e| format!("{source} {}: {e}", path.display()))
}

/// The matcher of `IISBULK_MATCHING_CONFIG` (a matching configuration
/// file), or the shipped one when unset (built once per process:
/// [`matching::Matcher::built_in`]). Every function that matches (the
/// matcher, history queries, `$match`, bulk match, reviewers' merges)
/// takes it from here, so they all weigh evidence alike.
pub fn configured_matcher() -> Result<Arc<matching::Matcher>, String> {
    match nonempty(std::env::var(MATCHING_CONFIG)) {
        Some(path) => Ok(Arc::new(matching::Matcher::new(matching_config_file(
            Path::new(&path),
            MATCHING_CONFIG,
        )?))),
        None => Ok(matching::Matcher::built_in()),
    }
}

/// `IISBULK_CDSI_DATA`: the CDSi release the jurisdiction pinned (a folder
/// named like CDC's: "4.65", ".../Version 4.65 - 508/XML"), or `None` for
/// the built-in one. A folder that does not load stops the cold start.
pub fn pinned_cdsi_release() -> Result<Option<Arc<cdsi::SupportingData>>, String> {
    match nonempty(std::env::var(CDSI_DATA)) {
        Some(dir) => cdsi::data::load_release_dir(Path::new(dir.trim()))
            .map(|d| Some(Arc::new(d)))
            .map_err(|e| format!("{CDSI_DATA} {dir}: {e}")),
        None => Ok(None),
    }
}

/// `IISBULK_EXPORT_RETENTION_HOURS` (1 to 720; 24 when unset), in seconds.
pub fn export_retention_seconds() -> Result<i64, String> {
    match nonempty(std::env::var(EXPORT_RETENTION_HOURS)) {
        None => Ok(24 * 3600),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(h) if (1..=720).contains(&h) => Ok(h * 3600),
            _ => Err(format!(
                "{EXPORT_RETENTION_HOURS} {v:?} must be a whole number of hours from 1 to 720"
            )),
        },
    }
}

/// `IISBULK_MAX_MESSAGE_BYTES`, when set.
pub fn message_size_limit() -> Result<Option<usize>, String> {
    parse_setting(
        MAX_MESSAGE_BYTES,
        std::env::var(MAX_MESSAGE_BYTES),
        "a number of bytes",
    )
}

/// `IISBULK_MAX_QUERY_CANDIDATES`, when set.
pub fn query_candidate_limit() -> Result<Option<u32>, String> {
    parse_setting(
        MAX_QUERY_CANDIDATES,
        std::env::var(MAX_QUERY_CANDIDATES),
        "a number",
    )
}

/// `IISBULK_IIS_APPLICATION`, when set.
pub fn iis_sending_application() -> Option<String> {
    nonempty(std::env::var(IIS_APPLICATION))
}

/// `IISBULK_IIS_FACILITY`, when set.
pub fn iis_sending_facility() -> Option<String> {
    nonempty(std::env::var(IIS_FACILITY))
}

/// `IISBULK_TOKEN_BURST`, when set.
pub fn token_burst_limit() -> Result<Option<u32>, String> {
    parse_setting(TOKEN_BURST, std::env::var(TOKEN_BURST), "a whole number")
}

/// `IISBULK_TOKEN_RATE_PER_SECOND`, when set.
pub fn token_rate_limit_per_second() -> Result<Option<f64>, String> {
    parse_setting(
        TOKEN_RATE_PER_SECOND,
        std::env::var(TOKEN_RATE_PER_SECOND),
        "a number",
    )
}

/// How long a presigned file URL (export and bulk match files on S3) works
/// from the status poll that minted it.
pub const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The matcher's use cases (`Patient/$match`, bulk match, members named
/// by demographics) as every deployment builds them: over `matching`, with
/// the jurisdiction's policy and the query candidate limit (`None`: the
/// default), so the API, the worker and `iisbulk serve` answer the same
/// patient alike.
pub fn match_queries(
    matching: registry::patients::PatientMatching,
    policy: Arc<JurisdictionPolicy>,
    max_candidates: Option<u32>,
) -> registry::queries::Queries {
    let mut query_policy = registry::queries::QueryPolicy {
        jurisdiction: policy,
        ..Default::default()
    };
    if let Some(n) = max_candidates {
        query_policy.max_candidates = n;
    }
    registry::queries::Queries::new(matching, query_policy)
}

/// [`match_queries`] over `store` with the [`configured_matcher`], as the
/// functions build them.
pub fn configured_match_queries(
    store: Arc<dyn store::ItemStore>,
    policy: Arc<JurisdictionPolicy>,
) -> Result<registry::queries::Queries, String> {
    let matching = registry::patients::PatientMatching::new(store, configured_matcher()?);
    Ok(match_queries(matching, policy, None))
}

/// `Patient/$bulk-match` jobs as the cloud runs them: their files in
/// `blobs` (S3), presigned for [`PRESIGNED_URL_LIFETIME`] at each status
/// poll (Lambda's 6 MB response could not carry them), kept `retention`
/// seconds (the deployment's [`export_retention_seconds`]), result Bundles'
/// entries under `<public_url>/fhir`. The API queues and answers jobs with
/// it; the export worker runs them.
pub fn bulk_match_jobs(
    store: Arc<dyn store::ItemStore>,
    blobs: Arc<dyn store::BlobStore>,
    queries: registry::queries::Queries,
    public_url: &str,
    policy: &JurisdictionPolicy,
    retention: i64,
) -> registry::bulk_match::BulkMatchJobs {
    let mut jobs = registry::bulk_match::BulkMatchJobs::new(
        store,
        blobs,
        queries,
        &format!("{}/fhir", public_url.trim_end_matches('/')),
        &policy.identifier_base,
    );
    jobs.presign_for = Some(PRESIGNED_URL_LIFETIME);
    jobs.retention = retention;
    jobs
}

fn parse_setting<T: std::str::FromStr>(
    name: &str,
    read: Result<String, std::env::VarError>,
    what: &str,
) -> Result<Option<T>, String> {
    match nonempty(read) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| format!("{name} {v:?} is not {what}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once_and_is_an_iisbulk_variable() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a variable listed twice");
        assert!(names.iter().all(|n| n.starts_with("IISBULK_")));
        assert!(SETTINGS.iter().all(|s| !s.meaning.is_empty()));
    }

    #[test]
    fn values_that_do_not_read_name_their_variable() {
        let bad: Result<Option<usize>, String> =
            parse_setting(MAX_MESSAGE_BYTES, Ok("ten".into()), "a number of bytes");
        assert_eq!(
            bad.unwrap_err(),
            "IISBULK_MAX_MESSAGE_BYTES \"ten\" is not a number of bytes"
        );
        let empty: Result<Option<usize>, String> =
            parse_setting(MAX_MESSAGE_BYTES, Ok(" ".into()), "a number of bytes");
        assert_eq!(empty, Ok(None));
        let set: Result<Option<f64>, String> =
            parse_setting(TOKEN_RATE_PER_SECOND, Ok("2.5".into()), "a number");
        assert_eq!(set, Ok(Some(2.5)));
    }
}
