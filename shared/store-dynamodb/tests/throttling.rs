//! DynamoDB throttling, injected under the SDK's retry loop with
//! aws-smithy-mocks: a throttled request is retried with backoff and, when
//! throttling persists, surfaces as `StoreError::Throttled` (retryable: the
//! stream functions report the record as a batch item failure), never as
//! an empty answer.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use store::{Condition, Item, ItemStore, Key, StoreError, Write};
use store_dynamodb::DynamoStore;

/// What DynamoDB answers when a partition's throughput is exceeded.
fn throttled() -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(400).unwrap(),
        SdkBody::from(
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
        ),
    )
}

/// The production retry mode (standard, 3 attempts) with a short backoff so
/// the test does not sleep for seconds.
fn store(rules: &[&Rule]) -> DynamoStore {
    let client: Client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules, |c| c
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5))
        )
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new())));
    DynamoStore::new(client, "iisbulk-test")
}

#[tokio::test]
async fn a_throttled_read_is_retried_with_backoff_and_then_answers() {
    let rule = mock!(Client::get_item)
        .sequence()
        .http_response(throttled)
        .times(2)
        .output(|| GetItemOutput::builder().build())
        .build();
    let store = store(&[&rule]);
    let got = store.get(&Key::new("PAT#1", "PROFILE")).await.unwrap();
    assert_eq!(got, None);
    assert_eq!(
        rule.num_calls(),
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn persistent_throttling_surfaces_as_throttled_never_as_absent() {
    let rule = mock!(Client::get_item)
        .sequence()
        .http_response(throttled)
        .repeatedly()
        .build();
    let store = store(&[&rule]);
    let err = store
        .get(&Key::new("PAT#1", "PROFILE"))
        .await
        .expect_err("throttling must not read as a missing item");
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        rule.num_calls(),
        3,
        "every attempt of the retry mode was made"
    );
}

#[tokio::test]
async fn a_throttled_transaction_surfaces_as_throttled() {
    let rule = mock!(Client::transact_write_items)
        .sequence()
        .http_response(throttled)
        .repeatedly()
        .build();
    let store = store(&[&rule]);
    let err = store
        .transact(vec![
            Write::Put {
                item: Item::new(Key::new("A", "1"), b"x".to_vec()),
                cond: Condition::None,
            },
            Write::Put {
                item: Item::new(Key::new("B", "1"), b"y".to_vec()),
                cond: Condition::None,
            },
        ])
        .await
        .expect_err("throttled");
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    assert_eq!(rule.num_calls(), 3);
}

fn key_attrs(pk: &str, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("pk", pk), ("sk", sk)]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), AttributeValue::S(v.to_owned())))
        .collect()
}

fn item_attrs(pk: &str, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    let mut attrs = key_attrs(pk, sk);
    attrs.insert("v".into(), AttributeValue::N("1".into()));
    attrs
}

/// Under throttling `BatchGetItem` answers part of the keys and hands the
/// rest back as unprocessed: they are asked again, not read as missing.
#[tokio::test]
async fn keys_a_batch_read_leaves_unprocessed_are_asked_again() {
    let rule = mock!(Client::batch_get_item)
        .sequence()
        .output(|| {
            BatchGetItemOutput::builder()
                .responses("iisbulk-test", vec![item_attrs("SRC#1", "SRC")])
                .unprocessed_keys(
                    "iisbulk-test",
                    KeysAndAttributes::builder()
                        .keys(key_attrs("SRC#2", "SRC"))
                        .consistent_read(true)
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .output(|| {
            BatchGetItemOutput::builder()
                .responses("iisbulk-test", vec![item_attrs("SRC#2", "SRC")])
                .build()
        })
        .build();
    let store = store(&[&rule]);
    let keys = [
        Key::new("SRC#2", "SRC"),
        Key::new("SRC#9", "SRC"),
        Key::new("SRC#1", "SRC"),
    ];
    let got = store.get_many(&keys).await.unwrap();
    let found: Vec<Option<&Key>> = got.iter().map(|i| i.as_ref().map(|i| &i.key)).collect();
    assert_eq!(found, vec![Some(&keys[0]), None, Some(&keys[2])]);
    assert_eq!(rule.num_calls(), 2, "the unprocessed key asked once more");
}

#[tokio::test]
async fn keys_left_unprocessed_round_after_round_surface_as_throttled() {
    let rule = mock!(Client::batch_get_item)
        .sequence()
        .output(|| {
            BatchGetItemOutput::builder()
                .unprocessed_keys(
                    "iisbulk-test",
                    KeysAndAttributes::builder()
                        .keys(key_attrs("SRC#1", "SRC"))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let store = store(&[&rule]);
    let err = store
        .get_many(&[Key::new("SRC#1", "SRC")])
        .await
        .expect_err("never answered");
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    assert_eq!(rule.num_calls(), 8);
}
