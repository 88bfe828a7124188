//! DynamoDB's limits, enforced by every backend before a request goes out.
//!
//! The embedded backend could store anything; checking the same limits there
//! means code that works locally cannot fail in production for being too big
//! or too wide. Item size is counted the way DynamoDB counts it (attribute
//! names plus values), rounding numbers up to their worst case, so our check
//! always fires before DynamoDB's would.

use std::collections::HashSet;

use crate::error::{Result, StoreError};
use crate::model::{Item, Key, QueryOpts, SkRange, Write};

/// Largest item, in bytes (DynamoDB: 400 KB including attribute names).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Largest transaction, summed over its items (DynamoDB: 4 MB).
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// Most writes in one transaction (DynamoDB: 100).
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// Longest partition key, in UTF-8 bytes.
pub const MAX_PK_BYTES: usize = 2048;
/// Longest sort key, in UTF-8 bytes.
pub const MAX_SK_BYTES: usize = 1024;

/// Worst-case size DynamoDB charges for a number attribute.
const NUMBER_BYTES: usize = 21;

/// The size DynamoDB would charge for `item` in our table layout
/// (`pk`, `sk`, `v`, `d`, `gsi1pk`, `gsi1sk`, `gsi2pk`, `gsi2sk`, `ttl`).
pub fn item_size(item: &Item) -> usize {
    let key = |k: &Key, pk_name: &str, sk_name: &str| {
        pk_name.len() + k.pk.len() + sk_name.len() + k.sk.len()
    };
    key(&item.key, "pk", "sk")
        + "v".len()
        + NUMBER_BYTES
        + "d".len()
        + item.data.len()
        + item.gsi1.as_ref().map_or(0, |k| key(k, "gsi1pk", "gsi1sk"))
        + item.gsi2.as_ref().map_or(0, |k| key(k, "gsi2pk", "gsi2sk"))
        + item.expires_at.map_or(0, |_| "ttl".len() + NUMBER_BYTES)
}

fn check_part(what: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{what} is empty")));
    }
    if value.len() > max {
        return Err(StoreError::Invalid(format!(
            "{what} is {} bytes, limit {max}",
            value.len()
        )));
    }
    Ok(())
}

/// A primary or index key: both parts non-empty and within DynamoDB's lengths.
pub fn check_key(key: &Key) -> Result<()> {
    check_part("partition key", &key.pk, MAX_PK_BYTES)?;
    check_part("sort key", &key.sk, MAX_SK_BYTES)
}

/// An item about to be put: keys valid, size within 400 KB.
pub fn check_item(item: &Item) -> Result<()> {
    check_key(&item.key)?;
    if let Some(k) = &item.gsi1 {
        check_key(k)?;
    }
    if let Some(k) = &item.gsi2 {
        check_key(k)?;
    }
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            size,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(())
}

/// A transaction: at most 100 writes, no key twice, each write valid, 4 MB total.
pub fn check_transaction(writes: &[Write]) -> Result<()> {
    if writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::TooManyWrites {
            count: writes.len(),
            limit: MAX_TRANSACTION_WRITES,
        });
    }
    let mut seen: HashSet<&Key> = HashSet::with_capacity(writes.len());
    let mut total = 0usize;
    for (index, write) in writes.iter().enumerate() {
        match write {
            Write::Put { item, .. } => {
                check_item(item)?;
                total += item_size(item);
            }
            Write::Delete { key, .. } | Write::Check { key, .. } => {
                check_key(key)?;
                total += key.pk.len() + key.sk.len() + 4;
            }
        }
        if !seen.insert(write.key()) {
            return Err(StoreError::DuplicateKeyInTransaction { index });
        }
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(StoreError::TooLarge {
            size: total,
            limit: MAX_TRANSACTION_BYTES,
        });
    }
    Ok(())
}

/// A query: partition key valid, limit at least 1, range well-formed.
pub fn check_query(pk: &str, opts: &QueryOpts) -> Result<()> {
    check_part("partition key", pk, MAX_PK_BYTES)?;
    if opts.limit == 0 {
        return Err(StoreError::Invalid("query limit must be at least 1".into()));
    }
    let too_long = |s: &String| s.len() > MAX_SK_BYTES;
    match &opts.range {
        SkRange::All => Ok(()),
        SkRange::Prefix(p) if too_long(p) => Err(StoreError::Invalid("prefix too long".into())),
        SkRange::From(s) if s.is_empty() || too_long(s) => Err(StoreError::Invalid(
            "range start must be 1..=1024 bytes".into(),
        )),
        SkRange::Between(a, b) if a.is_empty() || b.is_empty() || too_long(a) || too_long(b) => {
            Err(StoreError::Invalid(
                "range bounds must be 1..=1024 bytes".into(),
            ))
        }
        SkRange::Between(a, b) if a > b => Err(StoreError::Invalid(
            "range low bound is above its high bound".into(),
        )),
        _ => Ok(()),
    }
}

/// Current time in epoch seconds, the clock TTL is compared with.
pub fn now_epoch_seconds() -> i64 {
    now_epoch_millis() / 1000
}

/// Current time in epoch milliseconds.
pub fn now_epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Condition;

    #[test]
    fn size_counts_names_and_values() {
        let item = Item::new(Key::new("p", "s"), vec![0u8; 10]);
        assert_eq!(item_size(&item), 2 + 1 + 2 + 1 + 1 + 21 + 1 + 10);
    }

    #[test]
    fn keys_must_be_non_empty_and_bounded() {
        assert!(check_key(&Key::new("", "s")).is_err());
        assert!(check_key(&Key::new("p", "")).is_err());
        assert!(check_key(&Key::new("p".repeat(2048), "s".repeat(1024))).is_ok());
        assert!(check_key(&Key::new("p".repeat(2049), "s")).is_err());
        assert!(check_key(&Key::new("p", "s".repeat(1025))).is_err());
    }

    #[test]
    fn duplicate_key_names_the_second_write() {
        let k = Key::new("p", "s");
        let writes = vec![
            Write::Check {
                key: Key::new("p", "other"),
                cond: Condition::None,
            },
            Write::Put {
                item: Item::new(k.clone(), b"x".to_vec()),
                cond: Condition::None,
            },
            Write::Delete {
                key: k,
                cond: Condition::None,
            },
        ];
        assert_eq!(
            check_transaction(&writes),
            Err(StoreError::DuplicateKeyInTransaction { index: 2 })
        );
    }

    #[test]
    fn between_must_be_ordered() {
        let opts = QueryOpts::new(
            crate::model::Index::Table,
            SkRange::Between("b".into(), "a".into()),
        );
        assert!(check_query("p", &opts).is_err());
    }
}
