//! `iotdp stream replay`: with `Transport=kinesis`, a batch the ingest function failed on for
//! `IngestStreamMaxRecordAgeSeconds` is skipped, and Lambda names its place (shard, first and
//! last sequence number) in the failure queue; the records themselves stay in the stream for
//! `KinesisRetentionHours`. This reads each named batch back from the stream and puts its
//! records on the stream again (same data, same partition key: ingest's writes are idempotent),
//! then deletes the failure message. Run it once the cause is fixed, before the retention ends.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::deployment::{Deployment, INGEST_STREAM, INGEST_STREAM_FAILURE_QUEUE};
use crate::output::OutputFormat;

/// An AWS call's error with what was being done, in the SDK's full wording.
fn failed<E: std::error::Error>(what: String) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {}", aws_sdk_sqs::error::DisplayErrorContext(e))
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

/// The batch an on-failure document names, or why it names none.
pub fn skipped_batch(document: &str) -> Result<SkippedBatch, String> {
    let value: Value = serde_json::from_str(document)
        .map_err(|e| format!("not an on-failure document (JSON: {e})"))?;
    let info = &value["KinesisBatchInfo"];
    let field = |name: &str| {
        info[name].as_str().map(str::to_owned).ok_or_else(|| {
            format!("not a Kinesis on-failure document: KinesisBatchInfo.{name} is missing")
        })
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
) -> Result<(), String> {
    let StreamAction::Replay {
        stream,
        failure_queue,
    } = args.action;
    let stream = deployment.require(stream, &INGEST_STREAM).await?;
    let queue = deployment
        .require(failure_queue, &INGEST_STREAM_FAILURE_QUEUE)
        .await?;
    let kinesis = aws_sdk_kinesis::Client::new(deployment.sdk());
    let sqs = aws_sdk_sqs::Client::new(deployment.sdk());
    let mut replayed_batches = 0;
    let mut replayed_records = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(failed(format!("reading {queue}")))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let batch = skipped_batch(message.body().unwrap_or_default())?;
            let records = replay(&kinesis, &stream, &batch).await?;
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(failed("deleting the replayed message".into()))?;
            replayed_batches += 1;
            replayed_records += records;
            let line = json!({
                "shard": batch.shard_id, "first": batch.first, "last": batch.last, "records": records,
            });
            match output {
                OutputFormat::Json => println!("{line}"),
                OutputFormat::Table => println!(
                    "replayed {records} records of {} ({} … {})",
                    batch.shard_id, batch.first, batch.last
                ),
            }
        }
    }
    if output == OutputFormat::Table {
        println!("{replayed_batches} batches, {replayed_records} records put back on {stream}");
    }
    Ok(())
}

/// Read the batch's records from its shard and put them on the stream again; how many.
async fn replay(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    batch: &SkippedBatch,
) -> Result<usize, String> {
    let place = |what: &str| {
        format!(
            "{what} ({} {} … {})",
            batch.shard_id, batch.first, batch.last
        )
    };
    let error = |what: &str, e: String| format!("{}: {e}", place(what));
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&batch.first)
        .send()
        .await
        .map_err(failed(place("finding the batch")))?
        .shard_iterator
        .ok_or_else(|| error("finding the batch", "no shard iterator".into()))?;
    let mut entries = Vec::new();
    'read: loop {
        let page = kinesis
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .map_err(failed(place("reading the batch")))?;
        for record in page.records() {
            if !sequence_at_most(record.sequence_number(), &batch.last) {
                break 'read;
            }
            // The same key: the same shard, so each device's readings stay in order.
            let key = record
                .partition_key()
                .ok_or_else(|| error("copying a record", "it has no partition key".into()))?;
            entries.push(
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(record.data().as_ref()))
                    .partition_key(key)
                    .build()
                    .map_err(|e| error("copying a record", e.to_string()))?,
            );
        }
        // The end of what the shard holds: the batch's last record is behind us or gone.
        let caught_up = page.millis_behind_latest() == Some(0) && page.records().is_empty();
        match page.next_shard_iterator {
            Some(next) if !caught_up => iterator = next,
            _ => break,
        }
    }
    for chunk in entries.chunks(PUT_RECORDS_MAX) {
        let mut pending = chunk.to_vec();
        for attempt in 0..5 {
            let answer = kinesis
                .put_records()
                .stream_name(stream)
                .set_records(Some(pending.clone()))
                .send()
                .await
                .map_err(failed(place("putting the records back")))?;
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
            return Err(error(
                "putting the records back",
                format!(
                    "{} records still refused after 5 attempts; the failure message is kept",
                    pending.len()
                ),
            ));
        }
    }
    Ok(entries.len())
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
                .contains("shardId")
        );
        assert!(skipped_batch("nope").unwrap_err().contains("JSON"));
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
