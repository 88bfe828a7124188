//! `get_many` on `BatchGetItem`: up to 100 distinct keys a request, each
//! read consistently, with the keys DynamoDB leaves unprocessed (under
//! throttling) asked again after a pause.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;
use store::{Item, Key, StoreError};

use crate::attrs::{item_from_attrs, key_attrs, Attrs};
use crate::error;

/// `BatchGetItem`'s limit on keys per request.
pub const MAX_KEYS: usize = 100;
/// Rounds for keys left unprocessed before giving up as throttled.
const UNPROCESSED_ROUNDS: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(25);

/// Every distinct key of `keys` read; an item absent from the map is absent
/// from the table (expiry is the caller's to apply).
pub async fn read(
    client: &Client,
    table: &str,
    keys: &[Key],
) -> Result<HashMap<Key, Item>, StoreError> {
    let mut distinct: Vec<&Key> = keys.iter().collect();
    distinct.sort();
    distinct.dedup();
    let mut found = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(MAX_KEYS) {
        let mut pending: Vec<Attrs> = chunk.iter().map(|k| key_attrs(k)).collect();
        let mut pause = FIRST_PAUSE;
        let mut round = 0;
        while !pending.is_empty() {
            if round == UNPROCESSED_ROUNDS {
                return Err(StoreError::Throttled(format!(
                    "BatchGetItem left {} keys unprocessed after {round} rounds",
                    pending.len()
                )));
            }
            if round > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            round += 1;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Other(format!("request build: {e}")))?;
            let out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(error::from_sdk)?;
            for attrs in out
                .responses()
                .and_then(|r| r.get(table))
                .into_iter()
                .flatten()
            {
                let item = item_from_attrs(attrs)?;
                found.insert(item.key.clone(), item);
            }
            if let Some(left) = out.unprocessed_keys().and_then(|u| u.get(table)) {
                pending = left.keys().to_vec();
            }
        }
    }
    Ok(found)
}
