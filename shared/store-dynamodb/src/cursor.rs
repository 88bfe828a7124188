//! Paging cursors: DynamoDB's `LastEvaluatedKey` (string attributes only in
//! our layout) as a JSON object, base64url-encoded so it fits in a URL.
//!
//! Decoding checks the attribute names against the queried index and the
//! partition value against the queried partition, so a cursor from another
//! query is rejected instead of silently starting somewhere else.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use store::{Cursor, Index, StoreError};

use crate::attrs::{index_attrs, s, Attrs, PK, SK};

fn invalid() -> StoreError {
    StoreError::Invalid("cursor does not belong to this query".into())
}

fn expected_names(index: Index) -> Vec<&'static str> {
    let (ipk, isk, _) = index_attrs(index);
    let mut names = vec![PK, SK];
    if index != Index::Table {
        names.extend([ipk, isk]);
    }
    names.sort_unstable();
    names
}

/// Encode a `LastEvaluatedKey`.
pub fn encode(last: &Attrs) -> Result<Cursor, StoreError> {
    let mut plain = BTreeMap::new();
    for (name, value) in last {
        match value {
            AttributeValue::S(v) => plain.insert(name.as_str(), v.as_str()),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "key attribute {name} is not a string"
                )))
            }
        };
    }
    let json = serde_json::to_vec(&plain).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(Cursor::new(URL_SAFE_NO_PAD.encode(json)))
}

/// Decode a cursor for a query on `index` and partition `pk`.
pub fn decode(cursor: &Cursor, index: Index, pk: &str) -> Result<Attrs, StoreError> {
    let json = URL_SAFE_NO_PAD
        .decode(cursor.as_str())
        .map_err(|_| invalid())?;
    let plain: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| invalid())?;
    let names: Vec<&str> = plain.keys().map(String::as_str).collect();
    let (partition_attr, _, _) = index_attrs(index);
    if names != expected_names(index) || plain.get(partition_attr).map(String::as_str) != Some(pk) {
        return Err(invalid());
    }
    Ok(plain
        .iter()
        .map(|(k, v)| (k.clone(), s(v)))
        .collect::<HashMap<_, _>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let last: Attrs = HashMap::from([
            ("pk".to_owned(), s("P#1")),
            ("sk".to_owned(), s("é")),
            ("gsi1pk".to_owned(), s("G")),
            ("gsi1sk".to_owned(), s("x")),
        ]);
        let c = encode(&last).expect("encode");
        assert!(c
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode(&c, Index::Gsi1, "G").expect("decode"), last);
        assert!(decode(&c, Index::Gsi1, "other").is_err(), "other partition");
        assert!(decode(&c, Index::Gsi2, "G").is_err(), "other index");
        assert!(decode(&c, Index::Table, "P#1").is_err(), "other index");
        assert!(decode(&Cursor::new("!!"), Index::Table, "P#1").is_err());
    }
}
