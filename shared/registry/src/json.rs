//! Item data is JSON: one way in and out of the store for every family.

use serde::de::DeserializeOwned;
use serde::Serialize;
use store::{Item, StoreError};

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Other(e.to_string()))
}

/// `what` names the family in the error (with the item's partition key).
pub(crate) fn decode<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(&item.data)
        .map_err(|e| StoreError::Corrupt(format!("{what} {}: {e}", item.key.pk)))
}
