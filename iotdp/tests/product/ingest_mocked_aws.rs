//! The ingest use case end to end through the real Timestream and S3 adapters, with the AWS
//! clients mocked by aws-smithy-mocks.

use iotdp::lambda::ingest::handle_sqs_event;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_timestreamwrite::operation::write_records::{
    WriteRecordsError, WriteRecordsInput, WriteRecordsOutput,
};
use aws_sdk_timestreamwrite::types::RejectedRecord;
use aws_sdk_timestreamwrite::types::error::{
    RejectedRecordsException, ResourceNotFoundException, ThrottlingException, ValidationException,
};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use iotdp::adapters::s3_quarantine::S3Quarantine;
use iotdp::adapters::timestream::TimestreamStore;
use iotdp::alerting::ports::NoAlerts;
use iotdp::devices::admission::UnknownDevicePolicy;
use iotdp::devices::ports::NoRegistry;
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::quarantine::QuarantineLine;
use iotdp::ingest::service::{IngestReport, IngestService, IngestSettings, Invocation};
use iotdp::ingest::store_writer::WritePolicy;
use iotdp::ingest::validation::TimeWindow;
use iotdp::retry::RetryPolicy;
use tokio::time::Instant;

const RECEIVED: i64 = 1_764_000_000_000;

type Service = IngestService<TimestreamStore, S3Quarantine, NoRegistry, NoAlerts>;

fn settings(max_attempts: u32) -> IngestSettings {
    IngestSettings {
        window: TimeWindow::with_retention_days(365),
        write: WritePolicy {
            concurrency: 4,
            retry: RetryPolicy {
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
                max_attempts,
            },
            deadline_margin: Duration::from_millis(100),
        },
        unknown_devices: UnknownDevicePolicy::Accept,
    }
}

fn invocation(time_left: Duration) -> Invocation {
    Invocation {
        request_id: "req-1".into(),
        deadline: Instant::now() + time_left,
        started_at: chrono::DateTime::from_timestamp_millis(RECEIVED).unwrap(),
    }
}

fn event(messages: &[(String, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, body) in messages {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.clone());
        message.body = Some(body.clone());
        event.records.push(message);
    }
    event
}

/// `(message id, SQS body)` for one publish of `payload` on `device`'s topic.
fn publish(id: &str, device: &str, payload: &str) -> (String, String) {
    let topic = iotdp::domain::topic::telemetry_topic(device);
    (
        id.to_owned(),
        encode_envelope(payload.as_bytes(), &topic, RECEIVED, Some(device)),
    )
}

fn reading(ts_offset: i64) -> String {
    format!(
        "{{\"ts\":{},\"metrics\":{{\"temperature\":21.5,\"on\":true}}}}",
        RECEIVED - ts_offset
    )
}

/// What each WriteRecords call carried.
#[derive(Default, Clone)]
struct Calls(Arc<Mutex<Vec<WriteRecordsInput>>>);

impl Calls {
    fn record(&self, input: &WriteRecordsInput) {
        self.0.lock().unwrap().push(input.clone());
    }
    fn sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.records().len())
            .collect();
        sizes.sort_unstable();
        sizes
    }
}

/// Quarantine objects PUT to S3, as `(key, lines)`.
#[derive(Default, Clone)]
struct Puts(Arc<Mutex<Vec<QuarantineObject>>>);

/// An object's key and its parsed lines.
type QuarantineObject = (String, Vec<QuarantineLine>);

impl Puts {
    fn lines(&self) -> Vec<QuarantineLine> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, l)| l.iter().map(clone_line))
            .collect()
    }
}

fn clone_line(line: &QuarantineLine) -> QuarantineLine {
    serde_json::from_value(serde_json::to_value(line).unwrap()).unwrap()
}

fn s3_capturing(puts: &Puts) -> aws_sdk_s3::Client {
    let puts = puts.clone();
    let rule = mock!(aws_sdk_s3::Client::put_object).then_compute_output(move |req| {
        let body = req.body().bytes().expect("in-memory body");
        let lines = std::str::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is a quarantine line"))
            .collect();
        puts.0
            .lock()
            .unwrap()
            .push((req.key().unwrap().to_owned(), lines));
        PutObjectOutput::builder().build()
    });
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&rule])
}

fn timestream(rule: &aws_smithy_mocks::Rule) -> aws_sdk_timestreamwrite::Client {
    mock_client!(aws_sdk_timestreamwrite, RuleMode::MatchAny, [rule], |c| c
        .retry_config(
            aws_sdk_timestreamwrite::config::retry::RetryConfig::disabled()
        ))
}

fn service(
    ts: aws_sdk_timestreamwrite::Client,
    s3: aws_sdk_s3::Client,
    max_attempts: u32,
) -> Service {
    IngestService::new(
        TimestreamStore::new(ts, "iotdp", "telemetry"),
        S3Quarantine::new(s3, "quarantine-bucket"),
        NoRegistry,
        NoAlerts,
        settings(max_attempts),
    )
}

async fn run(service: &Service, messages: &[(String, String)]) -> IngestReport {
    handle_sqs_event(
        service,
        &event(messages),
        &invocation(Duration::from_secs(30)),
    )
    .await
}

fn failed_ids(report: &IngestReport) -> Vec<String> {
    let mut ids: Vec<_> = report.failed_items.clone();
    ids.sort();
    ids
}

/// WriteRecords throttled forever for any request carrying `device`, answered for the rest.
fn throttled_for(device: &'static str) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_timestreamwrite::Client::write_records).then_compute_response(move |req| {
        let names = |dimensions: &[aws_sdk_timestreamwrite::types::Dimension]| {
            dimensions.iter().any(|d| d.value() == device)
        };
        let carries = req
            .common_attributes()
            .is_some_and(|c| names(c.dimensions()))
            || req.records().iter().any(|r| names(r.dimensions()));
        if carries {
            MockResponse::Error(WriteRecordsError::ThrottlingException(
                ThrottlingException::builder()
                    .message("slow down")
                    .build()
                    .unwrap(),
            ))
        } else {
            MockResponse::Output(WriteRecordsOutput::builder().build())
        }
    })
}

fn succeed(calls: &Calls) -> aws_smithy_mocks::Rule {
    let calls = calls.clone();
    mock!(aws_sdk_timestreamwrite::Client::write_records).then_compute_output(move |req| {
        calls.record(req);
        WriteRecordsOutput::builder().build()
    })
}

#[tokio::test]
async fn writes_are_chunked_at_100_records() {
    for (n, expected) in [
        (99, vec![99]),
        (100, vec![100]),
        (101, vec![1, 100]),
        (250, vec![50, 100, 100]),
    ] {
        let calls = Calls::default();
        let service = service(
            timestream(&succeed(&calls)),
            s3_capturing(&Puts::default()),
            3,
        );
        let messages: Vec<_> = (0..n)
            .map(|i| publish(&format!("m{i}"), &format!("dev-{}", i % 7), &reading(i)))
            .collect();
        let report = run(&service, &messages).await;
        assert_eq!(calls.sizes(), expected, "{n} readings");
        assert!(report.failed_items.is_empty());
        assert_eq!(report.metrics.records_written, n as u64);
        assert_eq!(report.metrics.write_calls, expected.len() as u64);
    }
}

#[tokio::test]
async fn records_are_multi_measure_sorted_by_series_with_shared_fields_in_common_attributes() {
    let calls = Calls::default();
    let service = service(
        timestream(&succeed(&calls)),
        s3_capturing(&Puts::default()),
        3,
    );
    let messages = vec![
        publish("m1", "ac-1", &reading(0)),
        publish(
            "m2",
            "ac-1",
            r#"{"ts":1763999990000,"seq":7,"metrics":{"temperature":20,"mode":"eco"}}"#,
        ),
    ];
    run(&service, &messages).await;
    let calls = calls.0.lock().unwrap();
    let call = &calls[0];
    let common = call.common_attributes().unwrap();
    assert_eq!(common.measure_name(), Some("telemetry"));
    assert_eq!(
        common
            .measure_value_type()
            .map(aws_sdk_timestreamwrite::types::MeasureValueType::as_str),
        Some("MULTI")
    );
    assert_eq!(
        common
            .time_unit()
            .map(aws_sdk_timestreamwrite::types::TimeUnit::as_str),
        Some("MILLISECONDS")
    );
    assert_eq!(common.dimensions()[0].name(), "device_id");
    assert_eq!(common.dimensions()[0].value(), "ac-1");
    assert_eq!(common.version(), Some(RECEIVED));
    let records = call.records();
    // Oldest first within the series.
    assert_eq!(records[0].time(), Some("1763999990000"));
    assert_eq!(records[1].time(), Some("1764000000000"));
    let measures: Vec<_> = records[0]
        .measure_values()
        .iter()
        .map(|m| (m.name(), m.value(), m.r#type().as_str()))
        .collect();
    assert_eq!(
        measures,
        vec![
            ("temperature", "20.0", "DOUBLE"),
            ("mode", "eco", "VARCHAR"),
            ("seq", "7", "BIGINT")
        ]
    );
    assert!(
        records[0].dimensions().is_empty(),
        "device is in CommonAttributes"
    );
}

#[tokio::test]
async fn a_throttled_write_is_retried_until_it_succeeds() {
    let rule = mock!(aws_sdk_timestreamwrite::Client::write_records)
        .sequence()
        .error(|| {
            WriteRecordsError::ThrottlingException(
                ThrottlingException::builder()
                    .message("slow down")
                    .build()
                    .unwrap(),
            )
        })
        .times(2)
        .output(|| WriteRecordsOutput::builder().build())
        .build();
    let service = service(timestream(&rule), s3_capturing(&Puts::default()), 5);
    let report = run(&service, &[publish("m1", "ac-1", &reading(0))]).await;
    assert!(report.failed_items.is_empty());
    assert_eq!(rule.num_calls(), 3);
    assert_eq!(report.metrics.write_retries, 2);
    assert_eq!(report.metrics.records_written, 1);
}

#[tokio::test]
async fn exhausted_retries_fail_exactly_the_affected_messages() {
    // Device "b" is throttled forever; device "a" writes fine. 100 readings each, so each
    // device fills one WriteRecords call of its own.
    let rule = throttled_for("b");
    let service = service(timestream(&rule), s3_capturing(&Puts::default()), 3);
    let mut messages = Vec::new();
    for i in 0..100 {
        messages.push(publish(&format!("a{i:03}"), "a", &reading(i)));
        messages.push(publish(&format!("b{i:03}"), "b", &reading(i)));
    }
    let report = run(&service, &messages).await;
    let expected: Vec<_> = (0..100).map(|i| format!("b{i:03}")).collect();
    assert_eq!(failed_ids(&report), expected);
    assert_eq!(report.metrics.records_written, 100);
    assert_eq!(rule.num_calls(), 1 + 3, "a once, b three attempts");
}

#[tokio::test]
async fn no_retry_once_the_invocation_is_out_of_time() {
    let rule = mock!(aws_sdk_timestreamwrite::Client::write_records).then_error(|| {
        WriteRecordsError::ThrottlingException(
            ThrottlingException::builder()
                .message("slow down")
                .build()
                .unwrap(),
        )
    });
    let service = service(timestream(&rule), s3_capturing(&Puts::default()), 50);
    let report = handle_sqs_event(
        &service,
        &event(&[publish("m1", "ac-1", &reading(0))]),
        &invocation(Duration::from_millis(50)),
    )
    .await;
    assert_eq!(failed_ids(&report), vec!["m1"]);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn rejected_records_are_mapped_to_their_reading_and_message() {
    // Five readings of one device; after time-sorting, record 3 is the one sent by message m1
    // (ts offset 1 → fourth oldest), record 1 is m3's.
    let rule = mock!(aws_sdk_timestreamwrite::Client::write_records).then_error(|| {
        WriteRecordsError::RejectedRecordsException(
            RejectedRecordsException::builder()
                .rejected_records(
                    RejectedRecord::builder()
                        .record_index(3)
                        .reason("A record with the same dimensions, timestamp, and measure name already exists with a different measure value.")
                        .existing_version(RECEIVED + 5)
                        .build(),
                )
                .rejected_records(RejectedRecord::builder().record_index(1).reason("Something unexplained happened").build())
                .build(),
        )
    });
    let puts = Puts::default();
    let service = service(timestream(&rule), s3_capturing(&puts), 3);
    let messages: Vec<_> = (0..5)
        .map(|i| publish(&format!("m{i}"), "ac-1", &reading(i)))
        .collect();
    let report = run(&service, &messages).await;
    // The unexplained rejection is retried through SQS; the data rejection is quarantined.
    assert_eq!(failed_ids(&report), vec!["m3"]);
    let lines = puts.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].message_id, "m1");
    assert_eq!(lines[0].reason, "rejected_by_store");
    assert!(
        lines[0].detail.contains("already exists") && lines[0].detail.contains("existing version")
    );
    assert_eq!(lines[0].payload.as_deref(), Some(reading(1).as_str()));
    assert_eq!(report.metrics.records_written, 3);
}

#[tokio::test]
async fn an_invalid_request_is_split_until_the_bad_reading_is_found() {
    let calls = Calls::default();
    let seen = calls.clone();
    let rule =
        mock!(aws_sdk_timestreamwrite::Client::write_records).then_compute_response(move |req| {
            seen.record(req);
            let poisoned = req
                .records()
                .iter()
                .any(|r| r.measure_values().iter().any(|m| m.name() == "poison"));
            if poisoned {
                MockResponse::Error(WriteRecordsError::ValidationException(
                    ValidationException::builder()
                        .message("Measure value poison is too long")
                        .build()
                        .unwrap(),
                ))
            } else {
                MockResponse::Output(WriteRecordsOutput::builder().build())
            }
        });
    let puts = Puts::default();
    let service = service(timestream(&rule), s3_capturing(&puts), 3);
    let mut messages: Vec<_> = (0..7)
        .map(|i| publish(&format!("m{i}"), "ac-1", &reading(i + 10)))
        .collect();
    messages.push(publish("bad", "ac-1", r#"{"metrics":{"poison":1}}"#));
    let report = run(&service, &messages).await;
    assert!(report.failed_items.is_empty());
    assert_eq!(report.metrics.records_written, 7);
    let lines = puts.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].message_id.as_str(), lines[0].reason.as_str()),
        ("bad", "rejected_by_store")
    );
    assert!(lines[0].detail.contains("too long"));
    // 8 → 4+4 → 2+2 → 1+1: logarithmic, not one call per reading.
    assert!(calls.sizes().len() <= 7, "{:?}", calls.sizes());
}

#[tokio::test]
async fn a_store_failure_that_is_not_retryable_returns_every_message() {
    let rule = mock!(aws_sdk_timestreamwrite::Client::write_records).then_error(|| {
        WriteRecordsError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("no such table")
                .build(),
        )
    });
    let service = service(timestream(&rule), s3_capturing(&Puts::default()), 3);
    let messages = vec![
        publish("m1", "a", &reading(0)),
        publish("m2", "b", &reading(0)),
    ];
    let report = run(&service, &messages).await;
    assert_eq!(failed_ids(&report), vec!["m1", "m2"]);
    assert_eq!(
        rule.num_calls(),
        1,
        "not retried in the invocation: SQS redelivers"
    );
}

#[tokio::test]
async fn the_quarantine_object_holds_one_line_per_rejection_with_what_was_sent() {
    let calls = Calls::default();
    let puts = Puts::default();
    let service = service(timestream(&succeed(&calls)), s3_capturing(&puts), 3);
    let gateway = r#"{"readings":[{"metrics":{"m":1}},{"metrics":{"m":"x","m":2}},{"device_id":"spot-9","metrics":{"m":3}}]}"#;
    let messages = vec![
        publish("good", "ac-1", &reading(0)),
        publish("broken", "ac-2", "{\"metrics\": {"),
        publish("gw", "gw-1", gateway),
        ("raw".to_owned(), "hello".to_owned()),
        publish("binary", "ac-3", "\u{0}\u{1}"),
    ];
    let report = run(&service, &messages).await;
    assert!(report.failed_items.is_empty());
    assert_eq!(report.metrics.records_written, 2);
    let objects = puts.0.lock().unwrap();
    assert_eq!(objects.len(), 1, "one object per invocation");
    assert_eq!(
        objects[0].0,
        "quarantine/year=2025/month=11/day=24/hour=16/req-1.jsonl"
    );
    let lines: Vec<_> = objects[0]
        .1
        .iter()
        .map(|l| {
            (
                l.message_id.as_str(),
                l.reason.as_str(),
                l.reading_index,
                l.payload.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("broken", "malformed_json", None, Some("{\"metrics\": {")),
            (
                "gw",
                "invalid_metric_name",
                Some(1),
                Some(r#"{"metrics":{"m":"x","m":2}}"#)
            ),
            ("raw", "malformed_json", None, Some("hello")),
            ("binary", "malformed_json", None, Some("\u{0}\u{1}")),
            (
                "gw",
                "not_authorized_for_device",
                Some(2),
                Some(r#"{"device_id":"spot-9","metrics":{"m":3}}"#)
            ),
        ]
    );
    let broken = &objects[0].1[0];
    assert_eq!(broken.topic.as_deref(), Some("dt/ac-2/telemetry"));
    assert_eq!(broken.client_id.as_deref(), Some("ac-2"));
    assert_eq!(broken.received_at, Some(RECEIVED));
    assert_eq!(report.metrics.readings_rejected(), 4 + 1);
}

#[tokio::test]
async fn when_quarantine_fails_the_rejected_messages_are_retried_and_the_rest_are_not() {
    let calls = Calls::default();
    let s3_rule = mock!(aws_sdk_s3::Client::put_object)
        .then_error(|| PutObjectError::unhandled("S3 is down"));
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&s3_rule], |c| c
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()));
    let service = service(timestream(&succeed(&calls)), s3, 3);
    let messages = vec![
        publish("good", "ac-1", &reading(0)),
        publish("bad", "ac-2", r#"{"metrics":{}}"#),
    ];
    let report = run(&service, &messages).await;
    assert_eq!(failed_ids(&report), vec!["bad"]);
    assert_eq!(report.metrics.records_written, 1);
}

/// A Kinesis batch is redelivered from its first failed record on: device "b"'s writes fail,
/// so the handler returns b's record and every record after it, stores what it could (an
/// idempotent rewrite on redelivery), and quarantines nothing past the failure: the bad
/// message after it is quarantined once, when it comes again. The one before it is
/// quarantined now.
#[tokio::test]
async fn a_kinesis_batch_returns_everything_from_its_first_failed_record() {
    use base64::Engine as _;
    use iotdp::lambda::ingest::IngestBatch;
    let rule = throttled_for("b");
    let puts = Puts::default();
    let stream_service = service(timestream(&rule), s3_capturing(&puts), 2);
    let bad = "{\"metrics\":{\"9x\":1}}";
    // A hundred of a's readings fill a request of their own; the rest share one with b's.
    let mut messages: Vec<_> = (0..100)
        .map(|i| publish(&format!("a{i:03}"), "a", &reading(1000 + i)))
        .collect();
    messages.extend([
        publish("bad-1", "a", bad),
        publish("b", "b", &reading(4)),
        publish("a100", "a", &reading(3)),
        publish("bad-2", "a", bad),
    ]);
    let records: Vec<_> = messages
        .iter()
        .map(|(sequence, body)| {
            serde_json::json!({
                "kinesis": {
                    "sequenceNumber": sequence,
                    "partitionKey": "k",
                    "data": base64::engine::general_purpose::STANDARD.encode(body),
                },
                "eventSource": "aws:kinesis",
            })
        })
        .collect();
    let batch: IngestBatch =
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    let report = iotdp::lambda::ingest::handle_batch(
        &stream_service,
        &batch,
        &invocation(Duration::from_secs(30)),
    )
    .await;
    assert_eq!(failed_ids(&report), ["a100", "b", "bad-2"]);
    assert_eq!(report.metrics.records_written, 100);
    let quarantined: Vec<_> = puts
        .lines()
        .iter()
        .map(|l| (l.message_id.clone(), l.reason.clone()))
        .collect();
    assert_eq!(
        quarantined,
        [("bad-1".to_owned(), "invalid_metric_name".to_owned())]
    );

    // The same messages from SQS: the two in the failed request go back, and both bad ones
    // are quarantined.
    let puts = Puts::default();
    let service = service(timestream(&rule), s3_capturing(&puts), 2);
    let report = run(&service, &messages).await;
    assert_eq!(failed_ids(&report), ["a100", "b"]);
    assert_eq!(puts.lines().len(), 2);
}
