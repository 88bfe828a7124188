//! Item ⇄ DynamoDB attribute map, in the table layout of `TABLE.md`.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use store::{Index, Item, Key, StoreError};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const VERSION: &str = "v";
pub const DATA: &str = "d";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const GSI2PK: &str = "gsi2pk";
pub const GSI2SK: &str = "gsi2sk";
pub const TTL: &str = "ttl";

pub type Attrs = HashMap<String, AttributeValue>;

/// Key attribute names of `index`: (partition, sort, index name).
pub fn index_attrs(index: Index) -> (&'static str, &'static str, Option<&'static str>) {
    match index {
        Index::Table => (PK, SK, None),
        Index::Gsi1 => (GSI1PK, GSI1SK, Some("gsi1")),
        Index::Gsi2 => (GSI2PK, GSI2SK, Some("gsi2")),
    }
}

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(v))
}

/// The primary key attributes of `key`.
pub fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("DynamoDB item: {what}"))
}

fn string(attrs: &Attrs, name: &str) -> Result<Option<String>, StoreError> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(corrupt(&format!("{name} is not a string"))),
    }
}

fn number<T: std::str::FromStr>(attrs: &Attrs, name: &str) -> Result<Option<T>, StoreError> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| corrupt(&format!("{name} is not an integer"))),
        Some(_) => Err(corrupt(&format!("{name} is not a number"))),
    }
}

fn pair(attrs: &Attrs, pk: &str, sk: &str) -> Result<Option<Key>, StoreError> {
    Ok(match (string(attrs, pk)?, string(attrs, sk)?) {
        (Some(pk), Some(sk)) => Some(Key { pk, sk }),
        _ => None,
    })
}

/// Decode a stored item (from GetItem, Query or a stream image).
pub fn item_from_attrs(attrs: &Attrs) -> Result<Item, StoreError> {
    let key = pair(attrs, PK, SK)?.ok_or_else(|| corrupt("missing pk or sk"))?;
    let version = number(attrs, VERSION)?.ok_or_else(|| corrupt("missing v"))?;
    let data = match attrs.get(DATA) {
        None => Vec::new(),
        Some(AttributeValue::B(blob)) => blob.as_ref().to_vec(),
        Some(_) => return Err(corrupt("d is not binary")),
    };
    Ok(Item {
        key,
        version,
        data,
        gsi1: pair(attrs, GSI1PK, GSI1SK)?,
        gsi2: pair(attrs, GSI2PK, GSI2SK)?,
        expires_at: number(attrs, TTL)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_full_item() {
        let attrs = HashMap::from([
            (PK.to_owned(), s("p")),
            (SK.to_owned(), s("s")),
            (VERSION.to_owned(), n(3)),
            (DATA.to_owned(), b(&[0, 255])),
            (GSI2PK.to_owned(), s("g")),
            (GSI2SK.to_owned(), s("h")),
            (TTL.to_owned(), n(-1)),
        ]);
        let item = item_from_attrs(&attrs).expect("decodes");
        assert_eq!(item.key, Key::new("p", "s"));
        assert_eq!((item.version, item.data), (3, vec![0, 255]));
        assert_eq!((item.gsi1, item.gsi2), (None, Some(Key::new("g", "h"))));
        assert_eq!(item.expires_at, Some(-1));
    }

    #[test]
    fn missing_version_is_corrupt() {
        let attrs = key_attrs(&Key::new("p", "s"));
        assert!(matches!(
            item_from_attrs(&attrs),
            Err(StoreError::Corrupt(_))
        ));
    }
}
