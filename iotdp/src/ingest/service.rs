//! The ingest use case, top to bottom:
//! SQS batch → envelopes → readings (or rejections) → device admission (registry) → store
//! writes → last seen → alert evaluation → quarantine → SQS batch response. Nothing is dropped: every reading ends stored, quarantined
//! with a reason, or with its message reported failed so SQS redelivers it.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::alerting::ports::ReadingsObserver;
use crate::devices::admission::{UnknownDevicePolicy, admit};
use crate::devices::ports::DeviceLookup;
use crate::domain::Reading;
use crate::domain::reason::{ReasonCode, Rejection};
use crate::ingest::batch::{PreparedBatch, prepare_batch};
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::ports::{QuarantineSink, TimeSeriesStore};
use crate::ingest::quarantine::{count_by_reason, quarantine_key, render_quarantine};
use crate::ingest::store_writer::{WriteOutcome, WritePolicy, write_readings};
use crate::ingest::validation::TimeWindow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestSettings {
    pub window: TimeWindow,
    pub write: WritePolicy,
    pub unknown_devices: UnknownDevicePolicy,
}

/// One invocation's identity and time budget.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline: Instant,
    pub started_at: DateTime<Utc>,
}

impl Invocation {
    /// From Lambda's context: `deadline` is epoch milliseconds.
    pub fn from_lambda(context: &lambda_runtime::Context) -> Self {
        let now = Utc::now();
        let remaining_ms = (context.deadline as i64 - now.timestamp_millis()).max(0);
        Self {
            request_id: context.request_id.clone(),
            deadline: Instant::now() + Duration::from_millis(remaining_ms as u64),
            started_at: now,
        }
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

#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    pub response: SqsBatchResponse,
    pub metrics: IngestMetrics,
}

/// The ingest use case over its ports: a time-series store, a quarantine, the device registry
/// (through its cache), and an observer of stored readings (alert evaluation).
pub struct IngestService<S, Q, D, O> {
    store: S,
    quarantine: Q,
    devices: D,
    observer: O,
    settings: IngestSettings,
}

impl<S, Q, D, O> IngestService<S, Q, D, O>
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    D: DeviceLookup,
    O: ReadingsObserver,
{
    pub fn new(store: S, quarantine: Q, devices: D, observer: O, settings: IngestSettings) -> Self {
        Self {
            store,
            quarantine,
            devices,
            observer,
            settings,
        }
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn devices(&self) -> &D {
        &self.devices
    }

    pub async fn handle(&self, event: &SqsEvent, invocation: &Invocation) -> IngestReport {
        let messages = event.records.iter().map(|m| {
            (
                m.message_id.as_deref().unwrap_or_default(),
                m.body.as_deref().unwrap_or_default(),
            )
        });
        self.handle_messages(messages, invocation).await
    }

    /// The same for the Lambda binary's own event type, from either transport. A Kinesis
    /// batch is redelivered from its first failed record on, so there a failure also returns
    /// every record after it (see [`Redelivery`]).
    pub async fn handle_batch(&self, event: &IngestBatch, invocation: &Invocation) -> IngestReport {
        let messages = event.messages();
        let redelivery = if event.records.iter().any(|r| r.kinesis.is_some()) {
            Redelivery::FromFirstFailure
        } else {
            Redelivery::EachFailed
        };
        self.handle_messages_with(
            messages.iter().map(|(id, body)| (*id, body.as_ref())),
            invocation,
            redelivery,
        )
        .await
    }

    /// `(message id, body)` pairs of an SQS batch → stored, quarantined or returned for retry.
    pub async fn handle_messages<'a>(
        &self,
        messages: impl Iterator<Item = (&'a str, &'a str)>,
        invocation: &Invocation,
    ) -> IngestReport {
        self.handle_messages_with(messages, invocation, Redelivery::EachFailed)
            .await
    }

    async fn handle_messages_with<'a>(
        &self,
        messages: impl Iterator<Item = (&'a str, &'a str)>,
        invocation: &Invocation,
        redelivery: Redelivery,
    ) -> IngestReport {
        let mut batch = prepare_batch(messages, self.settings.window);
        let mut failures = MessageFailures::new(batch.messages.len(), redelivery);

        let registry_reads = self.admit_devices(&mut batch, &mut failures).await;
        // Readings of a message that will be redelivered are written on redelivery.
        batch.retain_readings(|_, origin| !failures.has(origin.message));
        batch.sort_by_series();

        let (outcomes, write_stats) = write_readings(
            &self.store,
            &batch.readings,
            &self.settings.write,
            invocation.deadline,
        )
        .await;
        let mut stored = Vec::with_capacity(batch.readings.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let origin = batch.origins[i];
            match outcome {
                WriteOutcome::Stored => stored.push(i),
                WriteOutcome::RejectedByStore(reason) => {
                    batch.reject(origin, Rejection::new(ReasonCode::RejectedByStore, reason));
                }
                WriteOutcome::Failed(why) => failures.fail(origin.message, &why),
            }
        }
        if redelivery == Redelivery::FromFirstFailure {
            // Records after a failed one come again: they are evaluated then, in order.
            stored.retain(|&i| !failures.has(batch.origins[i].message));
        }

        let seen = self.record_last_seen(&batch, &stored).await;

        // Alerts see what was stored, in series/time order. A reading whose evaluation could
        // not complete sends its message back: redelivery rewrites it (an idempotent no-op)
        // and evaluates it again.
        let alerts = if stored.len() == batch.readings.len() {
            self.observer.observe(&batch.readings).await
        } else {
            let subset: Vec<Reading> = stored.iter().map(|&i| batch.readings[i].clone()).collect();
            self.observer.observe(&subset).await
        };
        for i in alerts.retry {
            failures.fail(
                batch.origins[stored[i]].message,
                "alert evaluation did not complete",
            );
        }

        let quarantined = self
            .quarantine_rejections(&batch, &mut failures, invocation)
            .await;

        let mut metrics = IngestMetrics {
            messages: batch.messages.len() as u64,
            readings_accepted: batch.readings.len() as u64,
            rejected_by_reason: count_by_reason(
                batch
                    .rejections
                    .iter()
                    .filter(|r| !failures.has(r.origin.message)),
            ),
            records_written: write_stats.records_written,
            write_calls: write_stats.write_calls,
            write_retries: write_stats.retries,
            write_latencies_ms: write_stats.latencies_ms,
            quarantine_lines: quarantined,
            alerts: alerts.stats,
            registry_reads,
            registry_writes: seen.writes,
            heard_log_entries: seen.heard,
            registry_write_failures: seen.failures,
            ..Default::default()
        };
        let response = failures.into_response(&batch);
        metrics.failed_messages = response.batch_item_failures.len() as u64;
        IngestReport { response, metrics }
    }

    /// Every reading needs the registry's yes (see [`admit`]): its publisher (the topic's
    /// device) and the device it is for must be active, and a gateway must be the device's
    /// registered gateway. Admitted readings get the device's dimensions. Returns the
    /// registry reads made. If the registry cannot be read, the messages are retried.
    async fn admit_devices(
        &self,
        batch: &mut PreparedBatch,
        failures: &mut MessageFailures,
    ) -> u64 {
        if batch.readings.is_empty() {
            return 0;
        }
        let publishers: Vec<&str> = batch
            .messages
            .iter()
            .map(|m| m.publisher().unwrap_or_default())
            .collect();
        let mut ids: Vec<&str> = batch
            .readings
            .iter()
            .map(|r| r.device_id.as_str())
            .chain(batch.origins.iter().map(|o| publishers[o.message]))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let snapshot = match self.devices.lookup(&ids).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(error = %why, "device registry unavailable; messages will be retried");
                for origin in &batch.origins {
                    failures.fail(origin.message, &why);
                }
                return 0;
            }
        };
        let verdicts: Vec<_> = batch
            .readings
            .iter()
            .zip(&batch.origins)
            .map(|(reading, origin)| {
                admit(
                    &reading.device_id,
                    publishers[origin.message],
                    &snapshot.devices,
                    self.settings.unknown_devices,
                )
            })
            .collect();
        drop(publishers);
        let mut admitted = Vec::with_capacity(verdicts.len());
        for (i, verdict) in verdicts.into_iter().enumerate() {
            match verdict {
                Ok(dimensions) => {
                    batch.readings[i].dimensions = dimensions;
                    admitted.push(true);
                }
                Err(rejection) => {
                    let origin = batch.origins[i];
                    batch.reject(origin, rejection);
                    admitted.push(false);
                }
            }
        }
        batch.retain_readings(|i, _| admitted[i]);
        snapshot.registry_reads
    }

    /// `last_seen` of every device whose readings were stored (and of the gateways that
    /// published them): IoT Core's latest receive time, written by the cache only when it
    /// moved by more than its interval.
    async fn record_last_seen(
        &self,
        batch: &PreparedBatch,
        stored: &[usize],
    ) -> crate::devices::ports::SeenReport {
        let mut latest: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        for &i in stored {
            let reading = &batch.readings[i];
            let publisher = batch.messages[batch.origins[i].message].publisher();
            for device in std::iter::once(reading.device_id.as_str()).chain(publisher) {
                let at = latest.entry(device).or_insert(reading.version);
                *at = (*at).max(reading.version);
            }
        }
        if latest.is_empty() {
            return crate::devices::ports::SeenReport::default();
        }
        let seen: Vec<(&str, i64)> = latest.into_iter().collect();
        self.devices.record_seen(&seen).await
    }

    /// Write every rejection of a message that is not being retried; if that fails, the
    /// messages concerned are retried instead, so a rejection is never lost untraced.
    async fn quarantine_rejections(
        &self,
        batch: &PreparedBatch,
        failures: &mut MessageFailures,
        invocation: &Invocation,
    ) -> u64 {
        let lines: Vec<_> = batch
            .rejections
            .iter()
            .filter(|r| !failures.has(r.origin.message))
            .collect();
        if lines.is_empty() {
            return 0;
        }
        let body = render_quarantine(batch, &lines);
        let key = quarantine_key(&invocation.request_id, invocation.started_at);
        match self.quarantine.put(&key, body).await {
            Ok(()) => lines.len() as u64,
            Err(error) => {
                let why = error.to_string();
                tracing::error!(error = %why, key, "quarantine write failed; messages will be retried");
                for line in lines {
                    failures.fail(line.origin.message, &why);
                }
                0
            }
        }
    }
}

/// What the event source redelivers when a batch reports failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// SQS: exactly the messages reported.
    EachFailed,
    /// Kinesis: the shard's checkpoint stops at the first reported record, and it and every
    /// record after it come again. Those later records are then returned unfinished (stored
    /// readings are rewritten idempotently; alerts and quarantine wait for the redelivery), so
    /// nothing is quarantined twice and a device's readings reach alert evaluation in order.
    FromFirstFailure,
}

/// Which messages must go back to the event source, and the first reason why (for the logs).
struct MessageFailures {
    reasons: Vec<Option<String>>,
    redelivery: Redelivery,
    /// With [`Redelivery::FromFirstFailure`]: the first failed message; every later one is
    /// returned too (derived, not written into each).
    first: Option<usize>,
}

impl MessageFailures {
    fn new(messages: usize, redelivery: Redelivery) -> Self {
        Self {
            reasons: vec![None; messages],
            redelivery,
            first: None,
        }
    }

    fn fail(&mut self, message: usize, why: &str) {
        if self.reasons[message].is_none() {
            self.reasons[message] = Some(why.to_owned());
        }
        if self.redelivery == Redelivery::FromFirstFailure {
            self.first = Some(self.first.map_or(message, |f| f.min(message)));
        }
    }

    fn has(&self, message: usize) -> bool {
        self.reasons[message].is_some() || self.first.is_some_and(|f| message > f)
    }

    fn into_response(self, batch: &PreparedBatch) -> SqsBatchResponse {
        const AFTER_FIRST: &str = "an earlier record of the shard failed; redelivered after it";
        let mut response = SqsBatchResponse::default();
        for (message, why) in self.reasons.iter().enumerate() {
            let why = match why {
                Some(why) => why.as_str(),
                None if self.first.is_some_and(|f| message > f) => AFTER_FIRST,
                None => continue,
            };
            let id = batch.messages[message].message_id.clone();
            tracing::warn!(message_id = %id, reason = %why, "message returned for retry");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        response
    }
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
    let invocation = Invocation::from_lambda(&event.context);
    let report = service.handle_batch(&event.payload, &invocation).await;
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
    Ok(report.response)
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
