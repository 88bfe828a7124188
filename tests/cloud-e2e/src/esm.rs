//! Lambda's DynamoDB event source mappings, played in-process.
//!
//! Each stream function of `infra/template.yaml` has one mapping: a batch
//! size and filter patterns. [`Pump`] reads the table's stream through the
//! DynamoDB Streams API (DescribeStream → shards → GetShardIterator →
//! GetRecords), turns each record into the JSON Lambda delivers, keeps the
//! records a mapping's filters match, and invokes that function's handler
//! with batches of them. Like a mapping with `ReportBatchItemFailures`, it
//! checkpoints past a batch that succeeds, retries from the first record a
//! batch names as failed (the records before it are not delivered again),
//! retries a whole batch whose invocation failed, and gives up on a record
//! after the mapping's attempts (the on-failure destination: here, an error).
//! Records no filter matches are skipped, as Lambda drops them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{json, Map, Value};

/// One function's event source mapping, as the template declares it.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The template's logical id (`MatcherFunction`).
    pub function: String,
    pub batch_size: usize,
    /// `MaximumRetryAttempts` (retries after the first attempt).
    pub max_retries: u32,
    /// The `FilterCriteria` patterns (any one admits a record); none: all.
    pub filters: Vec<Value>,
}

/// The template this repository deploys.
pub fn template() -> Result<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The DynamoDB event source mapping of `function` (a logical id) in the
/// template's text. The template's CloudFormation tags (`!GetAtt`, `!Ref`)
/// are not plain YAML, so the few properties needed are read line by line
/// from the function's resource block; a mapping the harness could not play
/// faithfully (no batch failure reports, several stream events) is an error.
pub fn mapping(template: &str, function: &str) -> Result<Mapping, String> {
    let header = format!("  {function}:");
    let mut lines = template.lines().skip_while(|l| l.trim_end() != header);
    lines
        .next()
        .ok_or(format!("{function} is not a resource of the template"))?;
    // The resource's block: every line indented deeper than its header.
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.starts_with("   "))
        .collect();
    let value = |name: &str| -> Vec<&str> {
        block
            .iter()
            .filter_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .collect()
    };
    if value("Type: DynamoDB").len() != 1 {
        return Err(format!("{function} has not exactly one DynamoDB event"));
    }
    if !value("FunctionResponseTypes:")
        .iter()
        .any(|v| v.contains("ReportBatchItemFailures"))
    {
        return Err(format!("{function} does not report batch item failures"));
    }
    let number = |name: &str| -> Result<u64, String> {
        value(name)
            .first()
            .ok_or(format!("{function} has no {name}"))?
            .parse()
            .map_err(|e| format!("{function} {name}: {e}"))
    };
    let batch_size = usize::try_from(number("BatchSize:")?).map_err(|e| e.to_string())?;
    let max_retries = u32::try_from(number("MaximumRetryAttempts:")?).map_err(|e| e.to_string())?;
    let filters = value("- Pattern:")
        .iter()
        .map(|p| {
            // A YAML single-quoted scalar: '' stands for one quote.
            let inner = p
                .strip_prefix('\'')
                .and_then(|p| p.strip_suffix('\''))
                .ok_or(format!("{function}: pattern {p} is not single-quoted"))?
                .replace("''", "'");
            serde_json::from_str(&inner).map_err(|e| format!("{function}: pattern {inner}: {e}"))
        })
        .collect::<Result<Vec<Value>, String>>()?;
    Ok(Mapping {
        function: function.to_owned(),
        batch_size,
        max_retries,
        filters,
    })
}

/// Whether `record` (Lambda's JSON) matches a filter `pattern`: every key of
/// the pattern present, objects matched recursively, a leaf array matched
/// when any of its values equals the record's or any `{"prefix": …}` starts
/// it. Other filter operators are not used by the template and are refused.
pub fn matches(pattern: &Value, record: &Value) -> Result<bool, String> {
    let Value::Object(p) = pattern else {
        return Err(format!("a filter pattern is an object, not {pattern}"));
    };
    for (k, want) in p {
        let got = record.get(k);
        let ok = match want {
            Value::Object(_) => match got {
                Some(g @ Value::Object(_)) => matches(want, g)?,
                _ => false,
            },
            Value::Array(alternatives) => {
                let mut any = false;
                if let Some(g) = got {
                    for alt in alternatives {
                        any |= match alt {
                            Value::Object(op) => match (op.get("prefix"), op.len()) {
                                (Some(Value::String(prefix)), 1) => {
                                    g.as_str().is_some_and(|s| s.starts_with(prefix.as_str()))
                                }
                                _ => return Err(format!("filter operator {alt} is not supported")),
                            },
                            scalar => g == scalar,
                        };
                    }
                }
                any
            }
            other => return Err(format!("a filter leaf is an array, not {other}")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A stream attribute value in the JSON of Lambda's stream events.
fn attribute(v: &AttributeValue) -> Result<Value, String> {
    Ok(match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b.as_ref())}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(n) => json!({"NULL": n}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::Bs(v) => {
            json!({"BS": v.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(v) => {
            json!({"L": v.iter().map(attribute).collect::<Result<Vec<_>, _>>()?})
        }
        AttributeValue::M(m) => json!({"M": image(m)?}),
        other => return Err(format!("an attribute of an unknown type: {other:?}")),
    })
}

fn image(m: &HashMap<String, AttributeValue>) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in m {
        out.insert(k.clone(), attribute(v)?);
    }
    Ok(Value::Object(out))
}

/// A record of the DynamoDB Streams API as the record of a Lambda
/// DynamoDB event (`Records[n]`).
pub fn lambda_record(r: &Record, stream_arn: &str) -> Result<Value, String> {
    let d = r.dynamodb().ok_or("a stream record without dynamodb")?;
    let mut ddb = Map::new();
    if let Some(t) = d.approximate_creation_date_time() {
        ddb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
    }
    if let Some(k) = d.keys() {
        ddb.insert("Keys".into(), image(k)?);
    }
    if let Some(i) = d.new_image() {
        ddb.insert("NewImage".into(), image(i)?);
    }
    if let Some(i) = d.old_image() {
        ddb.insert("OldImage".into(), image(i)?);
    }
    ddb.insert(
        "SequenceNumber".into(),
        json!(d
            .sequence_number()
            .ok_or("a stream record without a sequence number")?),
    );
    if let Some(n) = d.size_bytes() {
        ddb.insert("SizeBytes".into(), json!(n));
    }
    if let Some(v) = d.stream_view_type() {
        ddb.insert("StreamViewType".into(), json!(v.as_str()));
    }
    Ok(json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": r.event_source().unwrap_or("aws:dynamodb"),
        "awsRegion": r.aws_region(),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }))
}

fn sequence(record: &Value) -> &str {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_default()
}

/// The table's stream, read through the DynamoDB Streams API.
#[derive(Clone)]
pub struct StreamReader {
    pub client: aws_sdk_dynamodbstreams::Client,
    pub arn: String,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// The stream's shards, parents before children (DescribeStream pages).
    pub async fn shards(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let d = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| format!("DescribeStream: {e:?}"))?;
            let desc = d
                .stream_description()
                .ok_or("DescribeStream: no description")?;
            for s in desc.shards() {
                if let Some(id) = s.shard_id() {
                    out.push(id.to_owned());
                }
            }
            match desc.last_evaluated_shard_id() {
                Some(id) => start = Some(id.to_owned()),
                None => return Ok(out),
            }
        }
    }

    /// Every record of `shard` after sequence number `after` (from the trim
    /// horizon when `None`), as Lambda event records.
    ///
    /// moto: a transaction that fails (a conditional check, which our
    /// idempotent writes rely on) puts back a deep copy of the whole table,
    /// stream shard included, so an iterator handed out before it reads a
    /// shard nothing writes to any more. Each page therefore asks for a new
    /// iterator after the last record read, rather than following
    /// `NextShardIterator` (AWS's iterators are good for 15 minutes; this is
    /// only more requests there). An empty page ends the read: moto's shard
    /// holds every record, while AWS may answer an open shard with empty
    /// pages before later records, which a harness for AWS would poll past.
    pub async fn records_after(
        &self,
        shard: &str,
        after: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let mut out: Vec<Value> = Vec::new();
        let mut after = after.map(str::to_owned);
        loop {
            let mut it = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(shard);
            it = match &after {
                Some(seq) => it
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => it.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = it
                .send()
                .await
                .map_err(|e| format!("GetShardIterator: {e:?}"))?
                .shard_iterator()
                .ok_or("GetShardIterator: no iterator")?
                .to_owned();
            let page = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(1000)
                .send()
                .await
                .map_err(|e| format!("GetRecords: {e:?}"))?;
            if page.records().is_empty() {
                return Ok(without_moto_phantoms(out));
            }
            for r in page.records() {
                out.push(lambda_record(r, &self.arn)?);
            }
            after = out.last().map(|r| sequence(r).to_owned());
        }
    }
}

/// moto: an UpdateItem of an absent item first puts the bare key (a stream
/// INSERT whose NewImage holds only the key attributes), then applies the
/// update and streams a second INSERT with the item. DynamoDB streams one
/// INSERT with the item, so the first is dropped here: the record right
/// before an INSERT of the same key, when it is an INSERT whose new image
/// has nothing but the key.
pub fn without_moto_phantoms(records: Vec<Value>) -> Vec<Value> {
    let bare_insert = |r: &Value| {
        r["eventName"] == "INSERT"
            && r["dynamodb"]["NewImage"]
                .as_object()
                .zip(r["dynamodb"]["Keys"].as_object())
                .is_some_and(|(image, keys)| image.keys().all(|k| keys.contains_key(k)))
    };
    let mut out: Vec<Value> = Vec::with_capacity(records.len());
    for r in records {
        if let Some(prev) = out.last() {
            if bare_insert(prev)
                && r["eventName"] == "INSERT"
                && prev["dynamodb"]["Keys"] == r["dynamodb"]["Keys"]
            {
                out.pop();
            }
        }
        out.push(r);
    }
    out
}

/// A function's handler as its Lambda runs it: the event JSON in, the JSON
/// answer (`{"batchItemFailures": [...]}`) or a function error out.
pub type Handler = Box<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, String>>>>>;

/// One mapping's state: the handler, its checkpoint in each shard, the
/// attempts of the record it is stuck on, and what it delivered.
pub struct Consumer {
    pub mapping: Mapping,
    handler: Handler,
    checkpoints: HashMap<String, String>,
    attempts: HashMap<String, u32>,
    /// Every event delivered, in order (retries included).
    pub delivered: Vec<Value>,
    /// Batch failures and function errors seen.
    pub failures: usize,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("function", &self.mapping.function)
            .field("checkpoints", &self.checkpoints)
            .field("delivered", &self.delivered.len())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    pub fn new(mapping: Mapping, handler: Handler) -> Consumer {
        Consumer {
            mapping,
            handler,
            checkpoints: HashMap::new(),
            attempts: HashMap::new(),
            delivered: Vec::new(),
            failures: 0,
        }
    }

    /// Invokes the handler with `event` (outside the stream: a redelivery).
    pub async fn invoke(&self, event: Value) -> Result<Value, String> {
        (self.handler)(event).await
    }

    fn admits(&self, record: &Value) -> Result<bool, String> {
        if self.mapping.filters.is_empty() {
            return Ok(true);
        }
        for f in &self.mapping.filters {
            if matches(f, record)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Delivers the new records of one shard; the number of invocations.
    async fn poll(&mut self, reader: &StreamReader, shard: &str) -> Result<usize, String> {
        let after = self.checkpoints.get(shard).cloned();
        let records = reader.records_after(shard, after.as_deref()).await?;
        let Some(last) = records.last().map(|r| sequence(r).to_owned()) else {
            return Ok(0);
        };
        let mut wanted = Vec::new();
        for r in records {
            if self.admits(&r)? {
                wanted.push(r);
            }
        }
        let mut invocations = 0;
        for batch in wanted.chunks(self.mapping.batch_size.max(1)) {
            let event = json!({ "Records": batch });
            self.delivered.push(event.clone());
            invocations += 1;
            let failed_at = match (self.handler)(event).await {
                // A function error: Lambda retries the whole batch.
                Err(_) => Some(0),
                Ok(answer) => failed_index(&self.mapping.function, &answer, batch)?,
            };
            let Some(i) = failed_at else {
                self.checkpoints.insert(
                    shard.to_owned(),
                    sequence(&batch[batch.len() - 1]).to_owned(),
                );
                continue;
            };
            self.failures += 1;
            let seq = sequence(&batch[i]).to_owned();
            let n = self.attempts.entry(seq.clone()).or_insert(0);
            *n += 1;
            if *n > self.mapping.max_retries {
                return Err(format!(
                    "{}: record {seq} failed {n} times (Lambda would send it to the on-failure destination)",
                    self.mapping.function
                ));
            }
            if i > 0 {
                self.checkpoints
                    .insert(shard.to_owned(), sequence(&batch[i - 1]).to_owned());
            }
            // Retried from the failed record in the next round.
            return Ok(invocations);
        }
        // Past the records no filter admitted, too.
        self.checkpoints.insert(shard.to_owned(), last);
        Ok(invocations)
    }
}

/// The index of the first record a `{"batchItemFailures": [...]}` answer
/// names, or `None` when it names none. Naming a record outside the batch
/// (or answering something else) is a defect of the function, and an error.
fn failed_index(function: &str, answer: &Value, batch: &[Value]) -> Result<Option<usize>, String> {
    let failures = match answer.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(f)) => f,
        Some(other) => return Err(format!("{function}: batchItemFailures is {other}")),
    };
    let mut first: Option<usize> = None;
    for f in failures {
        let id = f["itemIdentifier"].as_str().ok_or(format!(
            "{function}: a batch item failure without itemIdentifier: {f}"
        ))?;
        let i = batch.iter().position(|r| sequence(r) == id).ok_or(format!(
            "{function}: batch item failure {id} is not a record of the batch"
        ))?;
        first = Some(first.map_or(i, |f| f.min(i)));
    }
    Ok(first)
}

/// Every mapping of the table's stream, delivered round by round.
#[derive(Debug)]
pub struct Pump {
    pub reader: StreamReader,
    pub consumers: Vec<Consumer>,
}

/// Rounds after which a stream that keeps producing work is an error.
pub const MAX_ROUNDS: usize = 200;

impl Pump {
    pub fn consumer(&self, function: &str) -> Option<&Consumer> {
        self.consumers
            .iter()
            .find(|c| c.mapping.function == function)
    }

    /// Delivers new records to every mapping, round after round, until a
    /// round invokes nothing: the stream is quiet. Returns the invocations.
    pub async fn until_quiet(&mut self) -> Result<usize, String> {
        let mut total = 0;
        for _ in 0..MAX_ROUNDS {
            let shards = self.reader.shards().await?;
            let mut round = 0;
            for c in &mut self.consumers {
                for shard in &shards {
                    round += c.poll(&self.reader, shard).await?;
                }
            }
            if round == 0 {
                return Ok(total);
            }
            total += round;
        }
        Err(format!(
            "the stream is still busy after {MAX_ROUNDS} rounds"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(event: &str, pk: &str, sk: &str, seq: &str) -> Value {
        json!({"eventName": event, "dynamodb": {"SequenceNumber": seq,
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}})
    }

    /// The template's mappings, and their filters on the item families each
    /// function owns (the same cases as the Rust decision functions' tests
    /// and scripts/check_infra_consistency.py).
    #[test]
    fn the_template_mappings_admit_what_each_function_owns() {
        let t = template().unwrap();
        let cases = [
            ("MatcherFunction", "INSERT", "IN#m1", "HEAD", true),
            ("MatcherFunction", "MODIFY", "IN#m1", "HEAD", false),
            ("MatcherFunction", "INSERT", "IN#m1", "MATCHED", false),
            ("MembershipFunction", "INSERT", "IN#m1", "MATCHED", true),
            ("MembershipFunction", "INSERT", "QRY#q1", "QRY", true),
            ("MembershipFunction", "MODIFY", "SRC#s1", "SRC", true),
            ("MembershipFunction", "INSERT", "SRC#s1", "SRC", false),
            ("MembershipFunction", "MODIFY", "PAT#p1", "PROFILE", true),
            ("MembershipFunction", "INSERT", "IN#m1", "HEAD", false),
            ("ExportWorkerFunction", "INSERT", "JOB#j1", "JOB", true),
            ("ExportWorkerFunction", "MODIFY", "JOB#j1", "JOB", false),
            (
                "ExportWorkerFunction",
                "INSERT",
                "JOBSHARD#j1#1",
                "SHARD",
                true,
            ),
            ("ExportWorkerFunction", "INSERT", "JOB#j1", "POLL", false),
            ("ExportWorkerFunction", "INSERT", "BMJOB#b1", "BMJOB", true),
            ("ExportWorkerFunction", "MODIFY", "BMJOB#b1", "BMJOB", false),
            ("ExportWorkerFunction", "INSERT", "BMSLOT#au", "0", false),
            (
                "ExportWorkerFunction",
                "INSERT",
                "BMQUEUE",
                "0000000000001#b1",
                false,
            ),
        ];
        for (function, event, pk, sk, admitted) in cases {
            let m = mapping(&t, function).unwrap();
            assert!(m.batch_size >= 1 && m.max_retries >= 1, "{m:?}");
            let r = record(event, pk, sk, "1");
            let mut any = false;
            for f in &m.filters {
                any |= matches(f, &r).unwrap();
            }
            assert_eq!(any, admitted, "{function} {event} {pk} / {sk}");
        }
        assert!(mapping(&t, "IngestFunction").is_err(), "no stream event");
        assert!(mapping(&t, "NoSuchFunction").is_err());
    }

    #[test]
    fn filters_refuse_operators_they_do_not_know() {
        let r = record("INSERT", "IN#1", "HEAD", "1");
        let numeric = json!({"dynamodb": {"Keys": {"pk": {"S": [{"anything-but": "x"}]}}}});
        assert!(matches(&numeric, &r).is_err());
        assert!(!matches(&json!({"eventName": ["REMOVE"]}), &r).unwrap());
        assert!(!matches(&json!({"userIdentity": {"type": ["Service"]}}), &r).unwrap());
    }

    #[test]
    fn batch_failures_name_records_of_the_batch() {
        let batch = [
            record("INSERT", "IN#1", "HEAD", "10"),
            record("INSERT", "IN#2", "HEAD", "11"),
        ];
        let f = |v: Value| failed_index("F", &v, &batch);
        assert_eq!(f(json!({"batchItemFailures": []})).unwrap(), None);
        assert_eq!(f(json!({})).unwrap(), None);
        assert_eq!(
            f(json!({"batchItemFailures": [{"itemIdentifier": "11"}, {"itemIdentifier": "10"}]}))
                .unwrap(),
            Some(0)
        );
        assert!(f(json!({"batchItemFailures": [{"itemIdentifier": "12"}]})).is_err());
        assert!(f(json!({"batchItemFailures": [{}]})).is_err());
    }

    #[test]
    fn only_motos_bare_key_inserts_are_dropped() {
        let bare = |seq: &str| {
            let mut r = record("INSERT", "IN#1", "HEAD", seq);
            r["dynamodb"]["NewImage"] = json!({"pk": {"S": "IN#1"}, "sk": {"S": "HEAD"}});
            r
        };
        let full = |seq: &str| {
            let mut r = bare(seq);
            r["dynamodb"]["NewImage"]["d"] = json!({"B": "e30="});
            r
        };
        let seqs =
            |v: Vec<Value>| -> Vec<String> { v.iter().map(|r| sequence(r).to_owned()).collect() };
        assert_eq!(
            seqs(without_moto_phantoms(vec![bare("1"), full("2")])),
            ["2"]
        );
        // A bare insert followed by another key, or standing alone, stays.
        let other = record("INSERT", "IN#2", "HEAD", "2");
        assert_eq!(
            seqs(without_moto_phantoms(vec![bare("1"), other])),
            ["1", "2"]
        );
        assert_eq!(
            seqs(without_moto_phantoms(vec![full("1"), full("2")])),
            ["1", "2"]
        );
        assert_eq!(seqs(without_moto_phantoms(vec![bare("1")])), ["1"]);
    }
}
