//! The item layout in the one table (DynamoDB-style pk/sk), in one place so
//! every family is documented together.
//!
//! | family               | pk                          | sk          |
//! |----------------------|-----------------------------|-------------|
//! | Authorized User      | `AU`                        | `<au id>`   |
//! | login name → AU      | `LOGIN#<username>`          | `LOGIN`     |
//! | facility → AU        | `FAC#<facility id>`         | `FAC`       |
//! | idempotency record   | `MSG#<au>#<h(MSH-4,MSH-10)>`| `MSG`       |
//! | accepted message     | `IN#<message id>`           | `HEAD`, `PART#0000`… |
//! | message matched      | `IN#<message id>`           | `MATCHED`   |
//! | source record        | `SRC#<source id>`           | `SRC`       |
//! | a source's dose      | `SRC#<source id>`           | `DOSE#<dose key>` |
//! | source's match view  | `SRC#<source id>`           | `MATCH`     |
//! | dose → source        | `DOSEREF#<h(au, dose key)>` | `DOSEREF`   |
//! | person               | `PAT#<person id>`           | `PROFILE`   |
//! | person's source      | `PAT#<person id>`           | `SRC#<source id>` |
//! | person's immunization| `PAT#<person id>`           | `IMM#<id>`  |
//! | potential duplicate  | `PAT#<person id>`           | `DUP#<other person id>` |
//! | review queue (GSI1)  | `REVIEW`                    | `<created ms>#<person id>` |
//! | query audit          | `QRY#<au>`                  | `<ms>#<uuid>` |
//! | queried by an AU     | `PAT#<person id>`           | `QUERIED#<au>` |
//! | Group                | `GRP#<group id>`            | `GROUP`     |
//! | Group member         | `GRP#<group id>`            | `MEM#<person id>` |
//! | Group size counter   | `GRP#<group id>`            | `COUNT#<n>` (n < 128) |
//! | person's Group       | `PAT#<person id>`           | `GROUP#<group id>` |
//! | SMART client         | `CLIENT#<client id>`        | `CLIENT`    |
//! | AU's clients         | `AUCLIENTS#<au>`            | `<client id>` |
//! | assertion jti (TTL)  | `JTI#<h(client, jti)>`      | `JTI`       |
//! | access token (TTL)   | `TOK#<sha256(token)>`       | `TOK`       |
//! | export job           | `JOB#<job id>`              | `JOB`       |
//! | export job's polls   | `JOB#<job id>`              | `POLL`      |
//! | AU's active jobs     | `AUJOBS#<au>`               | `<job id>`  |
//! | export job shard (TTL) | `JOBSHARD#<job id>#<n>`   | `SHARD`     |
//! | export expiry index  | `JOBEXP`                    | `<expires s>#<job id>` |
//! | bulk match job       | `BMJOB#<job id>`            | `BMJOB`     |
//! | AU's bulk match slot | `BMSLOT#<au>`               | `<n>` (n < the AU's limit) |
//! | bulk matches to run  | `BMQUEUE`                   | `<created ms>#<job id>` |
//! | bulk match expiry index | `BMEXP`                  | `<expires s>#<job id>` |
//! | blocking key head    | `BLK#<h(key)>`              | `#`         |
//! | blocking key entry   | `BLK#<h(key)>`              | `S#<source id>` (empty: the match view holds the record) |
//! | chart count shard    | `META#CHARTS`               | `SHARD#<n>` (n < 64) |
//! | charts counted from the start | `META#CHARTS`      | `SINCE`     |
//!
//! Keys built from what senders write are hashed so no sender can make a key
//! longer than DynamoDB allows or collide with another family.

use sha2::{Digest, Sha256};
use store::Key;

pub const AU_PK: &str = "AU";

pub fn au(id: &str) -> Key {
    Key::new(AU_PK, id)
}

pub fn login(username: &str) -> Key {
    Key::new(
        format!("LOGIN#{}", short_hash(username.as_bytes())),
        "LOGIN",
    )
}

pub fn facility(facility: &str) -> Key {
    Key::new(format!("FAC#{}", short_hash(facility.as_bytes())), "FAC")
}

pub fn message(au: &str, facility: &str, control_id: &str) -> Key {
    let mut h = Sha256::new();
    h.update(facility.as_bytes());
    h.update([0]);
    h.update(control_id.as_bytes());
    Key::new(format!("MSG#{au}#{}", hex(&h.finalize()[..16])), "MSG")
}

pub fn accepted_head(message_id: &str) -> Key {
    Key::new(format!("IN#{message_id}"), "HEAD")
}

pub fn accepted_part(message_id: &str, n: usize) -> Key {
    Key::new(format!("IN#{message_id}"), format!("PART#{n:04}"))
}

pub fn matched(message_id: &str) -> Key {
    Key::new(format!("IN#{message_id}"), "MATCHED")
}

pub fn source(source_id: &str) -> Key {
    Key::new(format!("SRC#{source_id}"), "SRC")
}

/// What candidates are scored on: the source's person and matching record,
/// kept once per source rather than copied into each of its ~20 block
/// entries (which halved the embedded store at 20,000 children).
pub fn match_view(source_id: &str) -> Key {
    Key::new(format!("SRC#{source_id}"), "MATCH")
}

pub fn source_dose(source_id: &str, dose_key: &str) -> Key {
    Key::new(format!("SRC#{source_id}"), format!("DOSE#{dose_key}"))
}

pub const DOSE_PREFIX: &str = "DOSE#";

pub fn dose_ref(au: &str, dose_key: &str) -> Key {
    let mut h = Sha256::new();
    h.update(au.as_bytes());
    h.update([0]);
    h.update(dose_key.as_bytes());
    Key::new(format!("DOSEREF#{}", hex(&h.finalize()[..16])), "DOSEREF")
}

pub fn person_pk(person_id: &str) -> String {
    format!("PAT#{person_id}")
}

pub fn person(person_id: &str) -> Key {
    Key::new(person_pk(person_id), "PROFILE")
}

pub const PERSON_SOURCE_PREFIX: &str = "SRC#";

pub fn person_source(person_id: &str, source_id: &str) -> Key {
    Key::new(person_pk(person_id), format!("SRC#{source_id}"))
}

pub const IMMUNIZATION_PREFIX: &str = "IMM#";

pub fn person_immunization(person_id: &str, id: &str) -> Key {
    Key::new(person_pk(person_id), format!("IMM#{id}"))
}

pub fn query_audit(au: &str, at_ms: i64, id: &str) -> Key {
    Key::new(format!("QRY#{au}"), format!("{:020}#{id}", at_ms.max(0)))
}

pub fn queried_by(person_id: &str, au: &str) -> Key {
    Key::new(person_pk(person_id), format!("QUERIED#{au}"))
}

pub fn group_pk(group_id: &str) -> String {
    format!("GRP#{group_id}")
}

pub fn group(group_id: &str) -> Key {
    Key::new(group_pk(group_id), "GROUP")
}

pub const MEMBER_PREFIX: &str = "MEM#";

pub fn group_member(group_id: &str, person_id: &str) -> Key {
    Key::new(group_pk(group_id), format!("MEM#{person_id}"))
}

pub const COUNTER_PREFIX: &str = "COUNT#";

pub fn group_counter(group_id: &str, shard: u8) -> Key {
    Key::new(group_pk(group_id), format!("COUNT#{shard}"))
}

pub const PERSON_GROUP_PREFIX: &str = "GROUP#";

pub fn person_group(person_id: &str, group_id: &str) -> Key {
    Key::new(person_pk(person_id), format!("GROUP#{group_id}"))
}

pub fn client(client_id: &str) -> Key {
    Key::new(format!("CLIENT#{client_id}"), "CLIENT")
}

pub fn au_clients_pk(au: &str) -> String {
    format!("AUCLIENTS#{au}")
}

pub fn au_client(au: &str, client_id: &str) -> Key {
    Key::new(au_clients_pk(au), client_id)
}

/// A client assertion's `jti`, remembered until the assertion expires.
pub fn assertion_id(client_id: &str, jti: &str) -> Key {
    Key::new(
        format!(
            "JTI#{}",
            short_hash(format!("{client_id}\u{0}{jti}").as_bytes())
        ),
        "JTI",
    )
}

/// An access token, by the hash of its value (the value is never stored).
pub fn access_token(token_hash: &str) -> Key {
    Key::new(format!("TOK#{token_hash}"), "TOK")
}

pub fn export_job(job_id: &str) -> Key {
    Key::new(format!("JOB#{job_id}"), "JOB")
}

/// A job's status polls (apart from the job, so polls never contend with
/// the workers).
pub fn export_job_polls(job_id: &str) -> Key {
    Key::new(format!("JOB#{job_id}"), "POLL")
}

/// The sort key of every export shard item.
pub const EXPORT_SHARD_SK: &str = "SHARD";

/// One shard of an export job, each under its own partition key so the
/// cloud's stream delivers shards to parallel workers.
pub fn export_shard(job_id: &str, n: u32) -> Key {
    Key::new(format!("JOBSHARD#{job_id}#{n}"), EXPORT_SHARD_SK)
}

/// The job id and shard number of an export shard partition key.
pub fn parse_export_shard(pk: &str) -> Option<(String, u32)> {
    let (job, n) = pk.strip_prefix("JOBSHARD#")?.rsplit_once('#')?;
    let n = n.parse().ok()?;
    (!job.is_empty()).then(|| (job.to_owned(), n))
}

pub const EXPORT_EXPIRY_PK: &str = "JOBEXP";

/// Export jobs by expiry time, for the sweeper.
pub fn export_expiry(expires_at: i64, job_id: &str) -> Key {
    Key::new(
        EXPORT_EXPIRY_PK,
        format!("{:012}#{job_id}", expires_at.max(0)),
    )
}

/// The highest expiry sort key of jobs expired at `now` (epoch seconds).
pub fn export_expiry_upto(now: i64) -> String {
    format!("{:012}#~", now.max(0))
}

pub fn au_jobs_pk(au: &str) -> String {
    format!("AUJOBS#{au}")
}

pub fn au_job(au: &str, job_id: &str) -> Key {
    Key::new(au_jobs_pk(au), job_id)
}

/// A `Patient/$bulk-match` job: its own family, never an export's (the
/// export worker's stream filter tells a new one from a new export job by
/// its key alone).
pub fn bulk_match_job(job_id: &str) -> Key {
    Key::new(
        format!("{BULK_MATCH_JOB_PK_PREFIX}{job_id}"),
        BULK_MATCH_JOB_SK,
    )
}

pub const BULK_MATCH_JOB_PK_PREFIX: &str = "BMJOB#";
pub const BULK_MATCH_JOB_SK: &str = "BMJOB";

/// One of an Authorized User's running bulk match slots: taken with the
/// job's creation in one conditional transaction, so two kick-offs at once
/// can never both pass the limit.
pub fn bulk_match_slot(au: &str, n: u32) -> Key {
    Key::new(format!("BMSLOT#{au}"), n.to_string())
}

pub const BULK_MATCH_QUEUE_PK: &str = "BMQUEUE";

/// A bulk match waiting to run or running, oldest first.
pub fn bulk_match_queue(created_ms: i64, job_id: &str) -> Key {
    Key::new(
        BULK_MATCH_QUEUE_PK,
        format!("{:013}#{job_id}", created_ms.max(0)),
    )
}

pub const BULK_MATCH_EXPIRY_PK: &str = "BMEXP";

/// Bulk match jobs by expiry time, for the sweeper.
pub fn bulk_match_expiry(expires_at: i64, job_id: &str) -> Key {
    Key::new(
        BULK_MATCH_EXPIRY_PK,
        format!("{:012}#{job_id}", expires_at.max(0)),
    )
}

pub const REVIEW_QUEUE: &str = "REVIEW";

pub fn review_queue(created_ms: i64, person_id: &str) -> Key {
    Key::new(
        REVIEW_QUEUE,
        format!("{:020}#{person_id}", created_ms.max(0)),
    )
}

pub fn potential_duplicate(person_id: &str, other: &str) -> Key {
    Key::new(person_pk(person_id), format!("DUP#{other}"))
}

/// The partition of the registry's chart count (`patients::count`).
pub const CHART_COUNT_PK: &str = "META#CHARTS";

pub fn chart_count_shard(n: u32) -> Key {
    Key::new(CHART_COUNT_PK, format!("SHARD#{n:02}"))
}

pub fn chart_count_since() -> Key {
    Key::new(CHART_COUNT_PK, "SINCE")
}

/// Blocking keys hold names and birth dates: hashed, so no PHI sits in a key.
pub fn block_pk(blocking_key: &str) -> String {
    format!("BLK#{}", short_hash(blocking_key.as_bytes()))
}

pub fn block_head(blocking_key: &str) -> Key {
    Key::new(block_pk(blocking_key), "#")
}

pub const BLOCK_ENTRY_PREFIX: &str = "S#";

pub fn block_entry(blocking_key: &str, source_id: &str) -> Key {
    Key::new(block_pk(blocking_key), format!("S#{source_id}"))
}

/// The audit trail's partition for the UTC day of `at_ms`.
pub fn audit_day_pk(at_ms: i64) -> String {
    format!("AUDIT#{}", at_ms.div_euclid(86_400_000))
}

/// The audit trail by actor (`kind/id`), on GSI 1.
pub fn audit_actor_pk(actor: &str) -> String {
    format!("AUDITACTOR#{actor}")
}

/// The audit trail by first subject (`Type/id`), on GSI 2.
pub fn audit_subject_pk(subject: &str) -> String {
    format!("AUDITSUBJECT#{subject}")
}

/// Reviewers' decisions on the duplicate queue, oldest first (one
/// partition: a few thousand a year).
pub const REVIEW_DECISIONS_PK: &str = "REVIEWDECISIONS";

pub fn review_decision(at_ms: i64, person_id: &str) -> Key {
    Key::new(REVIEW_DECISIONS_PK, format!("{at_ms:020}#{person_id}"))
}

/// Console staff accounts, one partition (a few dozen people).
pub const STAFF_PK: &str = "STAFF";

pub fn staff(username: &str) -> Key {
    Key::new(STAFF_PK, username)
}

/// A console session, by the hash of its cookie's token.
pub fn staff_session(token_hash: &str) -> Key {
    Key::new(format!("STAFFSESSION#{token_hash}"), "S")
}

/// Failed console logins of one username (each expiring with the window).
pub fn staff_login_failures_pk(username: &str) -> String {
    format!("STAFFFAIL#{username}")
}

/// 128 bits of SHA-256, hex: plenty to make collisions a non-event.
pub fn short_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..16])
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
