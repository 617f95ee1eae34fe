//! Kinesis Data Streams in this process, and Lambda's Kinesis event source over them, for
//! `Transport=kinesis`. The semantics the ingest path relies on, and nothing else:
//!
//! - a record goes to the shard its partition key hashes to, and a shard keeps its records
//!   in order (the telemetry rule keys by device id: one device's readings stay in order);
//! - one consumer per shard invokes the function with up to `BatchSize` records, waiting at
//!   most the batching window once the first arrived;
//! - with `ReportBatchItemFailures`, the shard's checkpoint moves up to the first failed
//!   record, and the batch is retried from there (the records after it come again: ingest's
//!   writes are idempotent); without it, any failure retries the whole batch;
//! - a batch that fails from its first record is retried on the same shard, which waits (order
//!   is kept), halved each time with `BisectBatchOnFunctionError`; once
//!   `MaximumRetryAttempts` or `MaximumRecordAgeInSeconds` is reached it is skipped and its
//!   place (shard, first and last sequence number) is sent to the on-failure queue in Lambda's
//!   document, as the deployed mapping does.
//!
//! Not emulated: retention (records stay until consumed), resharding, enhanced fan-out, and
//! `ParallelizationFactor` (one consumer per shard).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify, watch};
use tokio::time::Instant;

use crate::provision::{LOCAL_ACCOUNT, LOCAL_REGION, StreamSpec, StreamTrigger};
use crate::queues::QueueBackend;

/// A stream name that is none of the template's streams.
#[derive(Debug, thiserror::Error)]
#[error("no stream named {stream_name}")]
pub struct NoSuchStream {
    pub stream_name: String,
}

/// One record in a shard.
#[derive(Debug, Clone)]
struct StreamRecord {
    sequence_number: u64,
    partition_key: String,
    data: Vec<u8>,
    arrived_at: Instant,
    arrived_at_ms: i64,
}

#[derive(Debug, Default)]
struct ShardState {
    next_sequence_number: u64,
    /// Records from the consumer's checkpoint on (what was processed is trimmed).
    records: VecDeque<StreamRecord>,
}

#[derive(Debug)]
struct Shard {
    id: String,
    state: Mutex<ShardState>,
    arrived: Notify,
}

#[derive(Debug)]
struct Stream {
    arn: String,
    shards: Vec<Shard>,
}

/// Every in-process stream, by name.
#[derive(Debug, Default)]
pub struct InProcessStreams {
    streams: HashMap<String, Stream>,
}

impl InProcessStreams {
    pub fn new(specs: impl IntoIterator<Item = StreamSpec>) -> Self {
        let streams = specs
            .into_iter()
            .map(|spec| {
                let shards = (0..spec.shards.max(1))
                    .map(|i| Shard {
                        id: format!("shardId-{i:012}"),
                        state: Mutex::default(),
                        arrived: Notify::new(),
                    })
                    .collect();
                (
                    spec.name,
                    Stream {
                        arn: spec.arn,
                        shards,
                    },
                )
            })
            .collect();
        Self { streams }
    }

    /// `PutRecord`: the record's shard and sequence number.
    pub async fn put(
        &self,
        stream_name: &str,
        partition_key: &str,
        data: Vec<u8>,
    ) -> Result<(usize, String), NoSuchStream> {
        let stream = self.stream(stream_name)?;
        let shard_index = shard_for(partition_key, stream.shards.len());
        let shard = &stream.shards[shard_index];
        let mut state = shard.state.lock().await;
        state.next_sequence_number += 1;
        let sequence_number = state.next_sequence_number;
        state.records.push_back(StreamRecord {
            sequence_number,
            partition_key: partition_key.to_owned(),
            data,
            arrived_at: Instant::now(),
            arrived_at_ms: chrono::Utc::now().timestamp_millis(),
        });
        drop(state);
        shard.arrived.notify_one();
        Ok((shard_index, sequence_string(sequence_number)))
    }

    /// Records not yet processed, over every shard: the backlog an outage builds.
    pub async fn depth(&self, stream_name: &str) -> Option<usize> {
        let stream = self.streams.get(stream_name)?;
        let mut total = 0;
        for shard in &stream.shards {
            total += shard.state.lock().await.records.len();
        }
        Some(total)
    }

    pub fn shard_count(&self, stream_name: &str) -> Option<usize> {
        self.streams.get(stream_name).map(|s| s.shards.len())
    }

    fn stream(&self, stream_name: &str) -> Result<&Stream, NoSuchStream> {
        self.streams.get(stream_name).ok_or_else(|| NoSuchStream {
            stream_name: stream_name.to_owned(),
        })
    }
}

/// Which of `shards` a partition key goes to: a stable 64-bit hash (FNV-1a, its bits mixed by
/// MurmurHash3's finalizer so that similar keys spread) split into equal ranges, as Kinesis
/// splits the MD5 range of its keys.
pub fn shard_for(partition_key: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in partition_key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    ((u128::from(hash) * shards as u128) >> 64) as usize
}

/// Kinesis sequence numbers are decimal strings that grow within a shard.
fn sequence_string(sequence_number: u64) -> String {
    format!("{sequence_number:021}")
}

/// What a shard's consumer did, for the tests and the live view.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub invocations: std::sync::atomic::AtomicU64,
    /// Batches skipped after their retries ran out, named in the on-failure queue.
    pub skipped_batches: std::sync::atomic::AtomicU64,
}

/// Run Lambda's Kinesis event source for `trigger` until `shutdown`: one consumer per shard.
/// `handler` gets the event as Lambda delivers it (JSON) and answers `batchItemFailures` by
/// sequence number.
pub fn spawn_consumers<H, F>(
    streams: &Arc<InProcessStreams>,
    trigger: &StreamTrigger,
    queues: &QueueBackend,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, NoSuchStream>
where
    H: Fn(Value) -> F + Send + Sync + 'static,
    F: Future<Output = SqsBatchResponse> + Send + 'static,
{
    let shards = streams
        .shard_count(&trigger.stream_name)
        .ok_or_else(|| NoSuchStream {
            stream_name: trigger.stream_name.clone(),
        })?;
    Ok((0..shards)
        .map(|shard| {
            tokio::spawn(consume_shard(
                streams.clone(),
                shard,
                trigger.clone(),
                queues.clone(),
                handler.clone(),
                stats.clone(),
                shutdown.clone(),
            ))
        })
        .collect())
}

async fn consume_shard<H, F>(
    streams: Arc<InProcessStreams>,
    shard_index: usize,
    trigger: StreamTrigger,
    queues: QueueBackend,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Value) -> F + Send + Sync + 'static,
    F: Future<Output = SqsBatchResponse> + Send + 'static,
{
    let Ok(stream) = streams.stream(&trigger.stream_name) else {
        return;
    };
    let shard = &stream.shards[shard_index];
    let mut limit = trigger.batch_size.max(1);
    let mut attempts: u32 = 0;
    while !*shutdown.borrow() {
        let batch = tokio::select! {
            batch = gather(shard, limit, Duration::from_secs(trigger.window_seconds)) => batch,
            _ = shutdown.changed() => return,
        };
        if batch.is_empty() {
            continue;
        }
        let response = handler(lambda_event(&batch, &stream.arn, &shard.id)).await;
        stats
            .invocations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let failed: std::collections::HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        // How many records at the head are done: all, those before the first failure, or
        // none (no partial responses, or a failure naming no record of the batch).
        let done = if failed.is_empty() {
            batch.len()
        } else if trigger.report_batch_item_failures {
            batch
                .iter()
                .position(|r| failed.contains(sequence_string(r.sequence_number).as_str()))
                .unwrap_or(0)
        } else {
            0
        };
        if done > 0 {
            trim(shard, done).await;
            attempts = 0;
            limit = trigger.batch_size.max(1);
            continue;
        }
        attempts += 1;
        let too_old = trigger
            .max_record_age
            .is_some_and(|age| batch[0].arrived_at.elapsed() >= age);
        let exhausted = trigger.max_retries.is_some_and(|max| attempts > max);
        if too_old || exhausted {
            let condition = if too_old {
                "RecordAgeExceeded"
            } else {
                "RetryAttemptsExhausted"
            };
            let document = on_failure_document(&batch, &stream.arn, &shard.id, condition, attempts);
            if let Some(url) = &trigger.on_failure_queue_url
                && let Err(e) = queues.send(url, vec![document.to_string()]).await
            {
                // Lambda keeps retrying a batch it could not report; so does this.
                tracing::warn!(error = %e, "on-failure destination unreachable; retrying the batch");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            tracing::error!(
                shard = %shard.id,
                first = %sequence_string(batch[0].sequence_number),
                records = batch.len(),
                condition,
                "stream batch skipped and named in the on-failure queue"
            );
            trim(shard, batch.len()).await;
            stats
                .skipped_batches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            attempts = 0;
            limit = trigger.batch_size.max(1);
            continue;
        }
        if trigger.bisect_on_error && batch.len() > 1 {
            limit = batch.len().div_ceil(2);
        }
        // The shard waits for its failed batch (order is kept); back off while it fails.
        let backoff = Duration::from_millis(100 * u64::from(attempts.min(10)));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Up to `limit` records from the checkpoint on, waiting at most `window` once one is there.
async fn gather(shard: &Shard, limit: usize, window: Duration) -> Vec<StreamRecord> {
    let mut deadline: Option<Instant> = None;
    loop {
        let notified = shard.arrived.notified();
        {
            let state = shard.state.lock().await;
            let available = state.records.len();
            if available > 0 && deadline.is_none() {
                deadline = Some(Instant::now() + window);
            }
            let closed = deadline.is_some_and(|d| Instant::now() >= d);
            if available >= limit || (available > 0 && closed) {
                return state.records.iter().take(limit).cloned().collect();
            }
        }
        let wait = deadline.map_or(Duration::from_secs(1), |d| {
            d.saturating_duration_since(Instant::now())
        });
        if tokio::time::timeout(wait, notified).await.is_err() && deadline.is_none() {
            return Vec::new(); // idle: let the caller look at shutdown
        }
    }
}

async fn trim(shard: &Shard, processed: usize) {
    let mut state = shard.state.lock().await;
    let n = processed.min(state.records.len());
    state.records.drain(..n);
}

/// The event Lambda's Kinesis event source delivers.
fn lambda_event(batch: &[StreamRecord], stream_arn: &str, shard_id: &str) -> Value {
    let records: Vec<Value> = batch
        .iter()
        .map(|r| {
            let sequence_number = sequence_string(r.sequence_number);
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.arrived_at_ms as f64 / 1000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard_id}:{sequence_number}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/local"),
                "awsRegion": LOCAL_REGION,
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// What Lambda sends an on-failure destination for a stream batch: where the records are, not
/// the records (they stay in the stream for its retention, to be replayed).
fn on_failure_document(
    batch: &[StreamRecord],
    stream_arn: &str,
    shard_id: &str,
    condition: &str,
    attempts: u32,
) -> Value {
    let first = &batch[0];
    let last = &batch[batch.len() - 1];
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    json!({
        "requestContext": {
            "requestId": format!("local-{shard_id}-{}", first.sequence_number),
            "functionArn": format!("arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:ingest"),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": null},
        "version": "1.0",
        "timestamp": time(chrono::Utc::now().timestamp_millis()),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence_string(first.sequence_number),
            "endSequenceNumber": sequence_string(last.sequence_number),
            "approximateArrivalOfFirstRecord": time(first.arrived_at_ms),
            "approximateArrivalOfLastRecord": time(last.arrived_at_ms),
            "batchSize": batch.len(),
            "streamArn": stream_arn,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::BatchItemFailure;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn spec(shards: usize) -> StreamSpec {
        StreamSpec {
            name: "s".into(),
            arn: "arn:aws:kinesis:us-east-1:123456789012:stream/s".into(),
            shards,
        }
    }

    fn trigger(batch_size: usize) -> StreamTrigger {
        StreamTrigger {
            stream_name: "s".into(),
            batch_size,
            window_seconds: 0,
            report_batch_item_failures: true,
            bisect_on_error: true,
            max_retries: None,
            max_record_age: None,
            on_failure_queue_url: Some("failures".into()),
        }
    }

    fn queues() -> QueueBackend {
        QueueBackend::InProcess(Arc::new(crate::queues::InProcessQueues::new([
            crate::provision::QueueSpec {
                url: "failures".into(),
                visibility_timeout: Duration::from_secs(30),
                redrive: None,
            },
        ])))
    }

    /// Each record's data (a device id and a number), in the order the handler saw them.
    fn bodies(event: &Value) -> Vec<(String, String)> {
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["kinesis"]["data"].as_str().unwrap())
                    .unwrap();
                (
                    r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned(),
                    String::from_utf8(data).unwrap(),
                )
            })
            .collect()
    }

    fn failure(id: &str) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut item = BatchItemFailure::default();
        item.item_identifier = id.to_owned();
        response.batch_item_failures.push(item);
        response
    }

    /// Run the consumers until the stream is drained (or 4 s pass), then stop them.
    async fn drain(
        streams: &Arc<InProcessStreams>,
        trigger: &StreamTrigger,
        queues: &QueueBackend,
        handler: Arc<
            impl Fn(Value) -> std::future::Ready<SqsBatchResponse> + Send + Sync + 'static,
        >,
        stats: Arc<ConsumerStats>,
    ) {
        let (stop, shutdown) = watch::channel(false);
        let tasks = spawn_consumers(streams, trigger, queues, handler, stats, &shutdown).unwrap();
        for _ in 0..200 {
            if streams.depth("s").await == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        for task in tasks {
            task.await.unwrap();
        }
    }

    #[test]
    fn keys_spread_over_shards_and_stay_on_theirs() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let key = format!("ac-{i}");
            assert_eq!(shard_for(&key, 4), shard_for(&key, 4));
            counts[shard_for(&key, 4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(shard_for("anything", 1), 0);
    }

    /// A partial failure moves the checkpoint to the first failed record: what came before is
    /// never redelivered, the failed record and everything after it are, in order.
    #[tokio::test]
    async fn a_partial_failure_retries_from_the_first_failed_record_in_order() {
        let streams = Arc::new(InProcessStreams::new([spec(1)]));
        for i in 0..6 {
            streams
                .put("s", "dev-1", format!("r{i}").into_bytes())
                .await
                .unwrap();
        }
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicU32::new(0));
        let handler = {
            let (seen, calls) = (seen.clone(), calls.clone());
            Arc::new(move |event: Value| {
                let records = bodies(&event);
                seen.lock().unwrap().push(
                    records
                        .iter()
                        .map(|(_, body)| body.clone())
                        .collect::<Vec<_>>(),
                );
                let first_call = calls.fetch_add(1, Ordering::SeqCst) == 0;
                std::future::ready(if first_call {
                    failure(&records[2].0) // r2 fails the first time
                } else {
                    SqsBatchResponse::default()
                })
            })
        };
        let stats = Arc::new(ConsumerStats::default());
        drain(&streams, &trigger(4), &queues(), handler, stats).await;
        assert_eq!(
            *seen.lock().unwrap(),
            [vec!["r0", "r1", "r2", "r3"], vec!["r2", "r3", "r4", "r5"]]
        );
    }

    /// A batch that keeps failing from its first record is halved (bisect), the shard waits
    /// for it, and past the retry limit it is skipped and named in the on-failure queue.
    #[tokio::test]
    async fn a_batch_that_keeps_failing_is_bisected_then_named_in_the_failure_queue() {
        let streams = Arc::new(InProcessStreams::new([spec(1)]));
        for i in 0..4 {
            streams
                .put("s", "dev-1", format!("r{i}").into_bytes())
                .await
                .unwrap();
        }
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler = {
            let sizes = sizes.clone();
            Arc::new(move |event: Value| {
                let records = bodies(&event);
                sizes.lock().unwrap().push(records.len());
                // r0 can never be stored; the others can.
                let poisoned = records
                    .iter()
                    .find(|(_, body)| body == "r0")
                    .map(|(id, _)| id.clone());
                std::future::ready(
                    poisoned.map_or_else(SqsBatchResponse::default, |id| failure(&id)),
                )
            })
        };
        let mut limited = trigger(4);
        limited.max_retries = Some(2);
        let queues = queues();
        let stats = Arc::new(ConsumerStats::default());
        drain(&streams, &limited, &queues, handler, stats.clone()).await;
        // 4 (fails) → 2 (fails) → 1 (fails: retries exhausted, skipped) → the rest, 3.
        assert_eq!(*sizes.lock().unwrap(), [4, 2, 1, 3]);
        assert_eq!(stats.skipped_batches.load(Ordering::Relaxed), 1);
        let QueueBackend::InProcess(q) = &queues else {
            unreachable!()
        };
        let named = q
            .receive("failures", 10, Duration::from_millis(10))
            .await
            .unwrap();
        assert_eq!(named.len(), 1);
        let document: Value = serde_json::from_str(&named[0].body).unwrap();
        let info = &document["KinesisBatchInfo"];
        assert_eq!(info["batchSize"], 1);
        assert_eq!(info["startSequenceNumber"], sequence_string(1));
        assert_eq!(info["endSequenceNumber"], sequence_string(1));
        assert_eq!(info["shardId"], "shardId-000000000000");
        assert_eq!(
            document["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
    }
}
