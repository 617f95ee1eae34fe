//! `iotdp stream replay`: with `Transport=kinesis`, a batch the ingest function failed on for
//! `IngestStreamMaxRecordAgeSeconds` is skipped, and Lambda names its place (shard, first and
//! last sequence number) in the failure queue; the records themselves stay in the stream for
//! `KinesisRetentionHours`. This reads each named batch back from the stream and puts its
//! records on the stream again (same data, same partition key: ingest's writes are idempotent),
//! then deletes the failure message. Run it once the cause is fixed, before the retention ends.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_sdk_sqs::error::DisplayErrorContext;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::deployment::{Deployment, DeploymentError, INGEST_STREAM, INGEST_STREAM_FAILURE_QUEUE};
use crate::output::OutputFormat;

/// Why a replay stopped; the failure message of a batch not put back is kept.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("not an on-failure document (JSON: {0})")]
    NotJson(serde_json::Error),
    #[error("not a Kinesis on-failure document: KinesisBatchInfo.{0} is missing")]
    MissingField(&'static str),
    /// An AWS call's error with what was being done, in the SDK's full wording.
    #[error("{doing}: {}", DisplayErrorContext(.source.as_ref()))]
    Aws {
        doing: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("finding the batch ({0}): no shard iterator")]
    NoShardIterator(SkippedBatch),
    #[error("copying a record ({0}): it has no partition key")]
    NoPartitionKey(SkippedBatch),
    #[error("copying a record ({batch}): {source}")]
    Uncopyable {
        batch: SkippedBatch,
        source: aws_sdk_kinesis::error::BuildError,
    },
    #[error(
        "putting the records back ({batch}): {refused} records still refused after 5 attempts; the failure message is kept"
    )]
    StillRefused { batch: SkippedBatch, refused: usize },
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
}

/// An AWS call's error, with what was being done.
fn failed<E: std::error::Error + Send + Sync + 'static>(
    doing: String,
) -> impl FnOnce(E) -> StreamError {
    move |e| StreamError::Aws {
        doing,
        source: Box::new(e),
    }
}

/// PutRecords takes at most 500 records a call.
const PUT_RECORDS_MAX: usize = 500;

#[derive(Args, Debug)]
pub struct StreamArgs {
    #[command(subcommand)]
    action: StreamAction,
}

#[derive(Subcommand, Debug)]
enum StreamAction {
    /// Put every batch the failure queue names back on the stream, then delete its message
    Replay {
        /// The Kinesis stream [stack output: IngestStreamName]
        #[arg(long, env = "IOTDP_INGEST_STREAM")]
        stream: Option<String>,
        /// The failure queue's URL [stack output: IngestStreamFailureQueueUrl]
        #[arg(long, env = "IOTDP_INGEST_STREAM_FAILURE_QUEUE")]
        failure_queue: Option<String>,
    },
}

/// Where a skipped batch is, from Lambda's on-failure document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedBatch {
    pub shard_id: String,
    pub first: String,
    pub last: String,
}

impl std::fmt::Display for SkippedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} … {}", self.shard_id, self.first, self.last)
    }
}

/// The batch an on-failure document names, or why it names none.
pub fn skipped_batch(document: &str) -> Result<SkippedBatch, StreamError> {
    let value: Value = serde_json::from_str(document).map_err(StreamError::NotJson)?;
    let info = &value["KinesisBatchInfo"];
    let field = |name: &'static str| {
        info[name]
            .as_str()
            .map(str::to_owned)
            .ok_or(StreamError::MissingField(name))
    };
    Ok(SkippedBatch {
        shard_id: field("shardId")?,
        first: field("startSequenceNumber")?,
        last: field("endSequenceNumber")?,
    })
}

/// Kinesis sequence numbers are decimal strings of up to 128 bits: compared as numbers.
pub fn sequence_at_most(sequence: &str, last: &str) -> bool {
    let (a, b) = (
        sequence.trim_start_matches('0'),
        last.trim_start_matches('0'),
    );
    (a.len(), a) <= (b.len(), b)
}

pub async fn run(
    args: StreamArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), StreamError> {
    let StreamAction::Replay {
        stream,
        failure_queue,
    } = args.action;
    let replay = Replay {
        stream: deployment.require(stream, &INGEST_STREAM).await?,
        queue: deployment
            .require(failure_queue, &INGEST_STREAM_FAILURE_QUEUE)
            .await?,
        kinesis: aws_sdk_kinesis::Client::new(deployment.sdk()),
        sqs: aws_sdk_sqs::Client::new(deployment.sdk()),
    };
    let (mut replayed_batches, mut replayed_records) = (0, 0);
    loop {
        let received = replay
            .sqs
            .receive_message()
            .queue_url(&replay.queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(failed(format!("reading {}", replay.queue)))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let (batch, records) = replay.message(message).await?;
            replayed_batches += 1;
            replayed_records += records;
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    json!({
                        "shard": batch.shard_id, "first": batch.first, "last": batch.last, "records": records,
                    })
                ),
                OutputFormat::Table => println!(
                    "replayed {records} records of {} ({} … {})",
                    batch.shard_id, batch.first, batch.last
                ),
            }
        }
    }
    if output == OutputFormat::Table {
        println!(
            "{replayed_batches} batches, {replayed_records} records put back on {}",
            replay.stream
        );
    }
    Ok(())
}

/// Where batches are replayed from and to.
struct Replay {
    stream: String,
    queue: String,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Replay {
    /// Replay the batch a failure message names, then delete the message: the batch and how
    /// many records went back.
    async fn message(
        &self,
        message: &aws_sdk_sqs::types::Message,
    ) -> Result<(SkippedBatch, usize), StreamError> {
        let batch = skipped_batch(message.body().unwrap_or_default())?;
        let entries = self.read_batch(&batch).await?;
        self.put_back(&batch, &entries).await?;
        self.sqs
            .delete_message()
            .queue_url(&self.queue)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(failed("deleting the replayed message".into()))?;
        Ok((batch, entries.len()))
    }

    /// The batch's records, read from its shard, as entries to put on the stream again.
    async fn read_batch(
        &self,
        batch: &SkippedBatch,
    ) -> Result<Vec<PutRecordsRequestEntry>, StreamError> {
        let mut iterator = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(&batch.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(&batch.first)
            .send()
            .await
            .map_err(failed(format!("finding the batch ({batch})")))?
            .shard_iterator
            .ok_or_else(|| StreamError::NoShardIterator(batch.clone()))?;
        let mut entries = Vec::new();
        'read: loop {
            let page = self
                .kinesis
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .map_err(failed(format!("reading the batch ({batch})")))?;
            for record in page.records() {
                if !sequence_at_most(record.sequence_number(), &batch.last) {
                    break 'read;
                }
                entries.push(copy(record, batch)?);
            }
            // The end of what the shard holds: the batch's last record is behind us or gone.
            let caught_up = page.millis_behind_latest() == Some(0) && page.records().is_empty();
            match page.next_shard_iterator {
                Some(next) if !caught_up => iterator = next,
                _ => break,
            }
        }
        Ok(entries)
    }

    /// Put the entries on the stream, retrying those throttled, in calls of at most 500.
    async fn put_back(
        &self,
        batch: &SkippedBatch,
        entries: &[PutRecordsRequestEntry],
    ) -> Result<(), StreamError> {
        for chunk in entries.chunks(PUT_RECORDS_MAX) {
            let mut pending = chunk.to_vec();
            for attempt in 0..5 {
                let answer = self
                    .kinesis
                    .put_records()
                    .stream_name(&self.stream)
                    .set_records(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(failed(format!("putting the records back ({batch})")))?;
                if answer.failed_record_count().unwrap_or(0) == 0 {
                    pending.clear();
                    break;
                }
                // Throttled records are retried; the rest went in.
                pending = pending
                    .into_iter()
                    .zip(answer.records())
                    .filter(|(_, result)| result.error_code().is_some())
                    .map(|(entry, _)| entry)
                    .collect();
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(StreamError::StillRefused {
                    batch: batch.clone(),
                    refused: pending.len(),
                });
            }
        }
        Ok(())
    }
}

/// A record as an entry for PutRecords. The same key: the same shard, so each device's
/// readings stay in order.
fn copy(
    record: &aws_sdk_kinesis::types::Record,
    batch: &SkippedBatch,
) -> Result<PutRecordsRequestEntry, StreamError> {
    let key = record
        .partition_key()
        .ok_or_else(|| StreamError::NoPartitionKey(batch.clone()))?;
    PutRecordsRequestEntry::builder()
        .data(Blob::new(record.data().as_ref()))
        .partition_key(key)
        .build()
        .map_err(|source| StreamError::Uncopyable {
            batch: batch.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_on_failure_document_names_its_batch() {
        let document = r#"{"requestContext":{"condition":"RecordAgeExceeded"},"version":"1.0",
            "KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"4959","endSequenceNumber":"49610","batchSize":3,"streamArn":"arn"}}"#;
        assert_eq!(
            skipped_batch(document).unwrap(),
            SkippedBatch {
                shard_id: "shardId-000000000001".into(),
                first: "4959".into(),
                last: "49610".into()
            }
        );
        assert!(
            skipped_batch(r#"{"KinesisBatchInfo":{}}"#)
                .unwrap_err()
                .to_string()
                .contains("shardId")
        );
        assert!(
            skipped_batch("nope")
                .unwrap_err()
                .to_string()
                .contains("JSON")
        );
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_at_most("9", "10"));
        assert!(sequence_at_most(
            "49590338271490256608559692538361571095921575989136588898",
            "49590338271490256608559692538361571095921575989136588898"
        ));
        assert!(!sequence_at_most(
            "49590338271490256608559692538361571095921575989136588899",
            "49590338271490256608559692538361571095921575989136588898"
        ));
        assert!(sequence_at_most("000000000000000000007", "8"));
    }
}
