//! The membership function: reads a DynamoDB stream batch and hands every
//! record that concerns Group membership (a message matched, a query
//! answered, a record moved by a reviewer, a person confirmed) to the
//! membership use case, in stream order. Storage trouble stops the batch at
//! that record and reports it, so Lambda retries from there and never skips
//! one; the use case is idempotent, so the retry is harmless.

use registry::membership::{membership_event, Membership, MembershipEvent, Outcome};
use serde_json::Value;
pub use stream_batch::{BatchResponse, ItemFailure};

/// The membership events of a stream event, each with the record's
/// sequence number.
pub fn events(event: &Value) -> Result<Vec<(String, Option<MembershipEvent>)>, String> {
    Ok(stream_batch::records(event)?
        .into_iter()
        .map(|r| {
            let e = r
                .key
                .as_ref()
                .and_then(|k| membership_event(k, r.old.as_deref(), r.new.as_deref()));
            (r.sequence, e)
        })
        .collect())
}

pub async fn handle(membership: &Membership, event: &Value) -> Result<BatchResponse, String> {
    for (sequence, e) in events(event)? {
        let Some(e) = e else { continue };
        match membership.apply(&e).await {
            Ok(outcomes) => log(&outcomes),
            Err(err) => {
                tracing::warn!(error = %err, "membership not applied; batch will be retried from here");
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

/// Our ids only: no names, no birth dates, no identifiers from messages.
pub fn log(outcomes: &[Outcome]) {
    for o in outcomes {
        match o {
            Outcome::Added {
                group,
                person,
                left,
            } => {
                tracing::info!(group = %group, person = %person, left = left.len(), "member added")
            }
            Outcome::Removed { group, person } => {
                tracing::info!(group = %group, person = %person, "member removed")
            }
            Outcome::Stale { group, person } => {
                tracing::info!(group = %group, person = %person, "older evidence ignored")
            }
            Outcome::AlreadyMember { .. } => {}
            Outcome::Skipped(why) => tracing::debug!(why = why, "no membership change"),
        }
    }
}

/// The membership use case from the environment (read by [`settings`]), as
/// `main.rs` builds it once per container (and the cloud end-to-end test
/// builds it against moto): `IISBULK_TABLE` (required),
/// `IISBULK_DYNAMODB_ENDPOINT` (tests only), `IISBULK_JURISDICTION_POLICY`
/// (the jurisdiction policy as TOML text; the shipped default otherwise). A
/// bad policy is an error naming the option, which stops the function at
/// start-up.
#[cfg(feature = "lambda")]
pub async fn deps_from_env() -> Result<Membership, lambda_runtime::Error> {
    use registry::persons::Persons;
    use std::sync::Arc;
    let table = settings::dynamodb_table()?;
    let policy = settings::jurisdiction_policy()?;
    let store: Arc<dyn store::ItemStore> = Arc::new(store_dynamodb::DynamoStore::new(
        store_dynamodb::client_from_env().await,
        table,
    ));
    // Membership reads persons and sources; it never matches.
    let patients = Persons::new(store);
    Ok(Membership::new(patients, Arc::new(policy)))
}
