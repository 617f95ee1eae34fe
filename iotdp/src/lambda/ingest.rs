//! The `ingest` function's Lambda shapes: the event it reads from either transport, the
//! invocation's deadline from Lambda's context, and the `batchItemFailures` it answers. The
//! use case (`ingest::service`) sees `(message id, body)` pairs and plain reports.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use tokio::time::Instant;

use crate::alerting::ports::ReadingsObserver;
use crate::devices::ports::DeviceLookup;
use crate::ingest::ports::{QuarantineSink, TimeSeriesStore};
use crate::ingest::service::{IngestReport, IngestService, Invocation, Redelivery};

use super::{batch_response, sqs_messages};

/// The invocation's identity and time budget from Lambda's context (`deadline` is epoch
/// milliseconds).
pub fn invocation_of(context: &lambda_runtime::Context) -> Invocation {
    let now = Utc::now();
    let remaining_ms = (context.deadline as i64 - now.timestamp_millis()).max(0);
    Invocation {
        request_id: context.request_id.clone(),
        deadline: Instant::now() + Duration::from_millis(remaining_ms as u64),
        started_at: now,
    }
}

/// The event as the ingest function reads it: an SQS batch (each message's id and body) or a
/// Kinesis batch (each record's sequence number and base64 data), nothing else. Both
/// transports answer with the same `batchItemFailures` document, naming a message id or a
/// sequence number. `aws_lambda_events::SqsEvent` builds two attribute maps and eight more
/// strings for every message; this reads the same JSON in one pass and skips what the function
/// never looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct IngestBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<BatchRecord>,
}

/// One record of either transport: SQS fills `message_id` and `body`, Kinesis `kinesis`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct BatchRecord {
    #[serde(rename = "messageId", default)]
    pub message_id: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub kinesis: Option<KinesisRecord>,
}

/// What Lambda's Kinesis event source puts under `kinesis`: the rule action's document,
/// base64-encoded, and where it sits in its shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct KinesisRecord {
    #[serde(rename = "sequenceNumber", default)]
    pub sequence_number: String,
    #[serde(default)]
    pub data: String,
}

impl IngestBatch {
    /// `(item identifier, body)` for every record, in order. A Kinesis record whose data is
    /// not base64 of UTF-8 gets an empty body, which validation quarantines as a malformed
    /// envelope: never dropped, never a panic.
    pub fn messages(&self) -> Vec<(&str, std::borrow::Cow<'_, str>)> {
        use base64::Engine as _;
        self.records
            .iter()
            .map(|record| match &record.kinesis {
                None => (
                    record.message_id.as_str(),
                    std::borrow::Cow::Borrowed(record.body.as_str()),
                ),
                Some(kinesis) => {
                    let body = base64::engine::general_purpose::STANDARD
                        .decode(kinesis.data.as_bytes())
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .unwrap_or_default();
                    (
                        kinesis.sequence_number.as_str(),
                        std::borrow::Cow::Owned(body),
                    )
                }
            })
            .collect()
    }
}

/// An SQS event as `aws_lambda_events` reads it (the local platform's and the tests' shape)
/// through the use case.
pub async fn handle_sqs_event<S, Q, D, O>(
    service: &IngestService<S, Q, D, O>,
    event: &SqsEvent,
    invocation: &Invocation,
) -> IngestReport
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    D: DeviceLookup,
    O: ReadingsObserver,
{
    service
        .handle_messages(sqs_messages(event), invocation)
        .await
}

/// The function's own event type, from either transport, through the use case. A Kinesis
/// batch is redelivered from its first failed record on, so there a failure also returns
/// every record after it (see [`Redelivery`]).
pub async fn handle_batch<S, Q, D, O>(
    service: &IngestService<S, Q, D, O>,
    event: &IngestBatch,
    invocation: &Invocation,
) -> IngestReport
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    D: DeviceLookup,
    O: ReadingsObserver,
{
    let messages = event.messages();
    let redelivery = if event.records.iter().any(|r| r.kinesis.is_some()) {
        Redelivery::FromFirstFailure
    } else {
        Redelivery::EachFailed
    };
    service
        .handle_messages_with(
            messages.iter().map(|(id, body)| (*id, body.as_ref())),
            invocation,
            redelivery,
        )
        .await
}

/// The Lambda entry point: run the use case, print its EMF metrics, answer SQS.
pub async fn handle_lambda_event<S, Q, D, O>(
    service: &IngestService<S, Q, D, O>,
    event: lambda_runtime::LambdaEvent<IngestBatch>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    D: DeviceLookup,
    O: ReadingsObserver,
{
    let invocation = invocation_of(&event.context);
    let report = handle_batch(service, &event.payload, &invocation).await;
    let function = &event.context.env_config.function_name;
    for document in report
        .metrics
        .to_emf(function, Utc::now().timestamp_millis())
    {
        // EMF must reach stdout as its own line; CloudWatch Logs extracts the metrics.
        println!("{document}");
    }
    tracing::info!(
        messages = report.metrics.messages,
        accepted = report.metrics.readings_accepted,
        rejected = report.metrics.readings_rejected(),
        written = report.metrics.records_written,
        failed_messages = report.metrics.failed_messages,
        "batch ingested"
    );
    Ok(batch_response(&report.failed_items))
}

#[cfg(test)]
mod batch_event_tests {
    use super::*;

    /// `(item identifier, body)` of each record of an event as Lambda delivers it.
    fn read(event: &str) -> Vec<(String, String)> {
        let batch: IngestBatch = serde_json::from_str(event).unwrap();
        batch
            .messages()
            .into_iter()
            .map(|(id, body)| (id.to_owned(), body.into_owned()))
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(id, body)| ((*id).to_owned(), (*body).to_owned()))
            .collect()
    }

    /// An SQS event exactly as Lambda delivers it: the batch type keeps ids and bodies, in
    /// order, and skips every other field.
    #[test]
    fn the_lambda_event_is_read_into_ids_and_bodies() {
        let event = r#"{"Records":[
            {"messageId":"059f36b4-87a3-44ab-83d2-661975830a7d","receiptHandle":"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
             "body":"{\"payload\":\"e30=\",\"topic\":\"dt/ac-1/telemetry\",\"received_at\":1}",
             "attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"1545082649183","SenderId":"AIDAIENQZJOLO23YVJ4VO","ApproximateFirstReceiveTimestamp":"1545082649185"},
             "messageAttributes":{"a":{"stringValue":"x","dataType":"String","stringListValues":[],"binaryListValues":[]}},
             "md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs",
             "eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:my-queue","awsRegion":"us-east-2"},
            {"messageId":"2e1424d4-f796-459a-8184-9c92662be6da","body":"second"}
        ]}"#;
        assert_eq!(
            read(event),
            owned(&[
                (
                    "059f36b4-87a3-44ab-83d2-661975830a7d",
                    r#"{"payload":"e30=","topic":"dt/ac-1/telemetry","received_at":1}"#
                ),
                ("2e1424d4-f796-459a-8184-9c92662be6da", "second"),
            ])
        );
        let empty: IngestBatch = serde_json::from_str("{}").unwrap();
        assert!(empty.records.is_empty());
    }

    /// A Kinesis event exactly as Lambda delivers it: each record is named by its sequence
    /// number (what `batchItemFailures` must name for Kinesis) and its data is decoded.
    #[test]
    fn a_kinesis_event_is_read_into_sequence_numbers_and_bodies() {
        let event = r#"{"Records":[
            {"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"ac-1",
              "sequenceNumber":"49590338271490256608559692538361571095921575989136588898",
              "data":"eyJwYXlsb2FkIjoiZTMwPSIsInRvcGljIjoiZHQvYWMtMS90ZWxlbWV0cnkiLCJyZWNlaXZlZF9hdCI6MX0=",
              "approximateArrivalTimestamp":1545084650.987},
             "eventSource":"aws:kinesis","eventVersion":"1.0",
             "eventID":"shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
             "eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/lambda-role",
             "awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"},
            {"kinesis":{"sequenceNumber":"2","data":"not base64!"},"eventSource":"aws:kinesis"},
            {"kinesis":{"sequenceNumber":"3","data":"//79"},"eventSource":"aws:kinesis"}
        ]}"#;
        assert_eq!(
            read(event),
            owned(&[
                (
                    "49590338271490256608559692538361571095921575989136588898",
                    r#"{"payload":"e30=","topic":"dt/ac-1/telemetry","received_at":1}"#
                ),
                // Undecodable data and bytes that are not UTF-8 keep their record, with a
                // body validation will quarantine.
                ("2", ""),
                ("3", ""),
            ])
        );
    }
}
