//! # store-dynamodb — the item-store port on Amazon DynamoDB
//!
//! Production backend of [`store::ItemStore`]: every repository item is one
//! DynamoDB item in ONE table (single-table design), so a use case that
//! touches a patient, its immunizations and its group membership can do it
//! in one `TransactWriteItems`, and the table's stream is the event bus.
//!
//! ## Table (details in `TABLE.md`)
//!
//! | attribute | type | role |
//! |-----------|------|------|
//! | `pk` | S | partition key |
//! | `sk` | S | sort key |
//! | `v` | N | version, set by the store (1 on create, +1 per put) |
//! | `d` | B | opaque payload (absent when empty) |
//! | `gsi1pk`, `gsi1sk` | S | key in GSI `gsi1` (projection ALL), optional |
//! | `gsi2pk`, `gsi2sk` | S | key in GSI `gsi2` (projection ALL), optional |
//! | `ttl` | N | expiry, epoch seconds (DynamoDB TTL attribute), optional |
//!
//! Stream: `NEW_AND_OLD_IMAGES`, consumed by the Lambda functions.
//!
//! ## Mapping of the port
//!
//! * `get` → `GetItem` with `ConsistentRead`; expired items are filtered here
//!   because DynamoDB deletes them late.
//! * `get_many` → `BatchGetItem` (consistent, 100 keys a request; keys left
//!   unprocessed are asked again after a pause, see `batch.rs`).
//! * `put` → `UpdateItem` so the version is incremented by the server in the
//!   same request (see [`expr`]); conditions become `ConditionExpression`s
//!   that also treat expired items as absent.
//! * `query` → `Query` (strongly consistent on the table, eventually
//!   consistent on GSIs) with a `FilterExpression` hiding expired items;
//!   cursors are `LastEvaluatedKey` as base64url JSON ([`cursor`]).
//! * `transact` → `TransactWriteItems`; a cancellation's reasons name the
//!   failing write ([`error`]).
//!
//! Limits (item size, key lengths, transaction size) are checked before a
//! request leaves, with the same code as the embedded backend
//! ([`store::limits`]).

mod attrs;
mod batch;
pub mod cursor;
pub mod error;
pub mod expr;
mod setup;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use store::limits::{check_item, check_key, check_query, check_transaction, now_epoch_seconds};
use store::{Condition, Item, ItemStore, Key, Page, QueryOpts, StoreError, Write};

pub use attrs::item_from_attrs;
pub use setup::{
    client_for, client_from_env, client_with, create_table_for_tests, endpoint_for, DEFAULT_REGION,
    ENDPOINT_ENV,
};

use attrs::{index_attrs, key_attrs, VERSION};
use expr::Expr;

/// Queries of one [`ItemStore::query_many`] call in flight at once: enough
/// that a patient's blocking-key reads take two round trips, few enough that
/// sixteen patients matched at once stay within the HTTP client's pool.
const QUERIES_AT_ONCE: usize = 12;

/// [`ItemStore`] on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Whether the table exists, for tools that want to say so before their
    /// first write. Only a missing table is an error: a caller allowed to
    /// read and write items but not to describe the table goes on.
    pub async fn check_table(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Err(StoreError::Invalid(format!(
                    "table '{}' does not exist (check --table and --region)",
                    self.table
                )))
            }
            Err(_) => Ok(()),
        }
    }

    fn build_error(e: impl std::fmt::Display) -> StoreError {
        StoreError::Other(format!("request build: {e}"))
    }

    fn transact_item(&self, write: Write, now: i64) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let item = match write {
            Write::Put { item, cond } => {
                let (update, _) = e.put(&item, cond);
                let condition = e.condition(cond, now);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&item.key)))
                    .update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(Self::build_error)?;
                TransactWriteItem::builder().update(update)
            }
            Write::Delete { key, cond } => {
                let condition = e.condition(cond, now);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&key)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(Self::build_error)?;
                TransactWriteItem::builder().delete(delete)
            }
            Write::Check { key, cond } => {
                let condition = e.condition(cond, now).unwrap_or_else(|| e.always());
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&key)))
                    .condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(Self::build_error)?;
                TransactWriteItem::builder().condition_check(check)
            }
        };
        Ok(item.build())
    }
}

#[async_trait]
impl ItemStore for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(error::from_sdk)?;
        let now = now_epoch_seconds();
        match out.item() {
            Some(attrs) => Ok(Some(item_from_attrs(attrs)?).filter(|i| !i.is_expired(now))),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        for key in keys {
            check_key(key)?;
        }
        let found = batch::read(&self.client, &self.table, keys).await?;
        let now = now_epoch_seconds();
        Ok(keys
            .iter()
            .map(|k| found.get(k).filter(|i| !i.is_expired(now)).cloned())
            .collect())
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<u64, StoreError> {
        check_item(&item)?;
        let mut e = Expr::default();
        let (update, known) = e.put(&item, cond);
        let condition = e.condition(cond, now_epoch_seconds());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&item.key)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(if known.is_some() {
                ReturnValue::None
            } else {
                ReturnValue::UpdatedNew
            })
            .send()
            .await
            .map_err(error::from_sdk)?;
        if let Some(v) = known {
            return Ok(v);
        }
        match out.attributes().and_then(|a| a.get(VERSION)) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("version {v:?} is not an integer"))),
            _ => Err(StoreError::Corrupt("UpdateItem returned no version".into())),
        }
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let mut e = Expr::default();
        let condition = e.condition(cond, now_epoch_seconds());
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(error::from_sdk)?;
        Ok(())
    }

    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Page, StoreError> {
        check_query(pk, &opts)?;
        let (pk_attr, sk_attr, index_name) = index_attrs(opts.index);
        let mut e = Expr::default();
        let key_condition = e.key_condition(pk_attr, sk_attr, pk, &opts.range);
        let filter = e.alive(now_epoch_seconds());
        let start = match &opts.cursor {
            Some(c) => Some(cursor::decode(c, opts.index, pk)?),
            None => None,
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index_name.map(str::to_owned))
            .key_condition_expression(key_condition)
            .filter_expression(filter)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .limit(i32::try_from(opts.limit).unwrap_or(i32::MAX))
            .scan_index_forward(opts.forward)
            .consistent_read(index_name.is_none())
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(error::from_sdk)?;
        let now = now_epoch_seconds();
        let mut items = Vec::with_capacity(out.items().len());
        for attrs in out.items() {
            let item = item_from_attrs(attrs)?;
            if !item.is_expired(now) {
                items.push(item);
            }
        }
        let next = match out.last_evaluated_key() {
            Some(last) if !last.is_empty() => Some(cursor::encode(last)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    /// The queries a few at a time, each a request of its own: a patient's
    /// ~20 blocking-key reads take the latency of two round trips rather
    /// than twenty (the matcher function, history queries, `$match` and
    /// bulk match all wait on them).
    async fn query_many(&self, queries: &[(String, QueryOpts)]) -> Result<Vec<Page>, StoreError> {
        let mut pages = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(QUERIES_AT_ONCE) {
            let read = futures_util::future::try_join_all(
                chunk.iter().map(|(pk, opts)| self.query(pk, opts.clone())),
            )
            .await?;
            pages.extend(read);
        }
        Ok(pages)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_transaction(&writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        let now = now_epoch_seconds();
        let items = writes
            .into_iter()
            .map(|w| self.transact_item(w, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(error::from_transact)?;
        Ok(())
    }
}
