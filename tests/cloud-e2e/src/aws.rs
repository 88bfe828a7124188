//! The moto endpoints, a fresh table (with its stream) and bucket, and
//! snapshots of what they hold.

use std::collections::BTreeMap;
use std::io::Write as _;

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};

/// Set to `1` (as `scripts/test` does) to fail instead of skipping when the
/// endpoints are missing.
pub const REQUIRE_ENV: &str = "IISBULK_REQUIRE_MOTO";

/// Whether both moto endpoints are set. Without them: a failure when
/// `IISBULK_REQUIRE_MOTO=1`, else a notice on stderr and `false` (skip).
pub fn endpoints_or_skip(what: &str) -> bool {
    let missing: Vec<&str> = [store_dynamodb::ENDPOINT_ENV, blob_s3::ENDPOINT_ENV]
        .into_iter()
        .filter(|v| std::env::var(v).map_or(true, |e| e.is_empty()))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
        "{REQUIRE_ENV}=1 but {} missing (run scripts/moto start)",
        missing.join(" and ")
    );
    // Straight to stderr: the test harness captures print macros of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {what}: set {} (e.g. eval \"$(scripts/moto start)\")",
        missing.join(" and ")
    );
    false
}

/// A name no other test run uses: lower case, digits and `-` (valid for a
/// table and a bucket), at most 63 characters.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut name: String = format!("{prefix}-{}-{nanos:x}", std::process::id())
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// The table, its stream and the bucket of one test, with clients on moto.
#[derive(Debug, Clone)]
pub struct Cloud {
    pub table: String,
    pub bucket: String,
    pub stream_arn: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Cloud {
    /// Creates `table` (the layout `DynamoStore` expects, with its
    /// `NEW_AND_OLD_IMAGES` stream: `store_dynamodb::create_table_for_tests`)
    /// and `bucket`, on the endpoints of the environment.
    pub async fn create(table: &str, bucket: &str) -> Result<Cloud, String> {
        let dynamodb = store_dynamodb::client_from_env().await;
        store_dynamodb::create_table_for_tests(&dynamodb, table)
            .await
            .map_err(|e| format!("create table {table}: {e}"))?;
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable {table}: {e:?}"))?;
        let t = described
            .table()
            .ok_or(format!("DescribeTable {table}: no table"))?;
        let view = t
            .stream_specification()
            .and_then(|s| s.stream_view_type().cloned());
        if view != Some(StreamViewType::NewAndOldImages) {
            return Err(format!(
                "table {table} streams {view:?}, not NEW_AND_OLD_IMAGES"
            ));
        }
        let stream_arn = t
            .latest_stream_arn()
            .ok_or(format!("table {table} has no stream"))?
            .to_owned();

        let s3 = blob_s3::client_from_env().await;
        let mut create = s3.create_bucket().bucket(bucket);
        if let Some(region) = s3
            .config()
            .region()
            .map(|r| r.to_string())
            .filter(|r| r != "us-east-1")
        {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(region.as_str().into())
                    .build(),
            );
        }
        create
            .send()
            .await
            .map_err(|e| format!("CreateBucket {bucket}: {e:?}"))?;

        Ok(Cloud {
            table: table.to_owned(),
            bucket: bucket.to_owned(),
            stream_arn,
            dynamodb,
            streams: streams_client().await,
            s3,
        })
    }

    /// Every item of the table, by (pk, sk), each as its attributes' JSON.
    pub async fn items(&self) -> Result<BTreeMap<(String, String), String>, String> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| format!("Scan {}: {e:?}", self.table))?;
            for item in page.items() {
                let key = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    _ => String::new(),
                };
                let sorted: BTreeMap<&String, String> =
                    item.iter().map(|(k, v)| (k, format!("{v:?}"))).collect();
                out.insert((key("pk"), key("sk")), format!("{sorted:?}"));
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Every object of the bucket: key → (size, ETag).
    pub async fn objects(&self) -> Result<BTreeMap<String, (i64, String)>, String> {
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| format!("ListObjectsV2 {}: {e:?}", self.bucket))?;
            for o in page.contents() {
                out.insert(
                    o.key().unwrap_or_default().to_owned(),
                    (
                        o.size().unwrap_or_default(),
                        o.e_tag().unwrap_or_default().to_owned(),
                    ),
                );
            }
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }
}

/// A DynamoDB Streams client configured as `store_dynamodb::client_from_env`
/// configures the table's: same region, the `IISBULK_DYNAMODB_ENDPOINT`
/// override (moto serves DynamoDB and its streams on one endpoint), dummy
/// keys for the emulator.
pub async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    let endpoint = store_dynamodb::endpoint_for(None);
    let credentials = aws_setup::Credentials::for_endpoint(endpoint.as_deref());
    let sdk = aws_setup::sdk_config(None, credentials).await;
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&sdk);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}
