//! An SQS batch of good and bad messages through the real `ingest` handler, built exactly as
//! the Lambda builds it (environment config, AWS clients via `AWS_ENDPOINT_URL`), against
//! moto's server: records land in the Timestream table, rejections in the quarantine bucket.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::quarantine::QuarantineLine;
use iotdp::lambda::ingest::handle_lambda_event;
use iotdp::wiring::{ingest_service_with, s3_client};
use iotdp_integration_tests::{MotoServer, create_ingest_resources, ingest_config};
use lambda_runtime::{Context, LambdaEvent};

fn message(id: &str, body: String) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(body);
    message
}

#[tokio::test]
async fn a_mixed_batch_lands_in_timestream_and_the_quarantine_bucket() {
    let moto = MotoServer::start();

    let sdk = moto.sdk_config().await;
    create_ingest_resources(&sdk).await;
    let config = ingest_config();
    let service = ingest_service_with(&sdk, &config)
        .await
        .expect("service wired to moto");

    let now = chrono::Utc::now().timestamp_millis();
    let publish = |device: &str, payload: &str| {
        encode_envelope(
            payload.as_bytes(),
            &iotdp::domain::topic::telemetry_topic(device),
            now,
            Some(device),
        )
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        message(
            "thermostat",
            publish(
                "ac-1",
                r#"{"seq":1,"metrics":{"temperature":21.4,"mode":"eco"}}"#,
            ),
        ),
        message(
            "gateway",
            publish(
                "wall-gw",
                &format!(
                    r#"{{"readings":[{{"ts":{},"metrics":{{"moisture":0.31}}}},{{"metrics":{{"moisture":true,"9x":1}}}},{{"ts":{},"metrics":{{"moisture":0.29}}}}]}}"#,
                    now - 5 * 3_600_000,
                    now - 4 * 3_600_000
                ),
            ),
        ),
        message("garbage", publish("ac-2", "}{ not json")),
        message(
            "future",
            publish(
                "ac-3",
                &format!(r#"{{"ts":{},"metrics":{{"t":1}}}}"#, now + 3_600_000),
            ),
        ),
    ];
    let mut context = Context::default();
    context.request_id = "integration-1".into();
    context.deadline = (now + 60_000) as u64;
    // The event as Lambda delivers it (JSON), read into the binary's own event type.
    let event = serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
    let response = handle_lambda_event(&service, LambdaEvent::new(event, context))
        .await
        .unwrap();
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );

    // Three good readings stored, as multi-measure records, numbers as DOUBLE.
    let records = moto.timestream_records("telemetry");
    assert_eq!(records.len(), 3, "{records:#?}");
    let thermostat = records
        .iter()
        .find(|r| {
            r["MeasureValues"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["Name"] == "temperature")
        })
        .expect("the thermostat reading");
    let measures: Vec<_> = thermostat["MeasureValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap(),
                m["Value"].as_str().unwrap(),
                m["Type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        measures,
        vec![
            ("temperature", "21.4", "DOUBLE"),
            ("mode", "eco", "VARCHAR"),
            ("seq", "1", "BIGINT")
        ]
    );
    assert_eq!(thermostat["Time"], now.to_string());
    let late: Vec<_> = records
        .iter()
        .map(|r| r["Time"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        late.contains(&(now - 5 * 3_600_000).to_string()),
        "5-hour-old gateway reading stored"
    );

    // Three rejections, one quarantine object, each line with its reason and what was sent.
    let s3 = s3_client(&sdk);
    let listed = s3
        .list_objects_v2()
        .bucket("quarantine")
        .prefix("quarantine/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("/integration-1.jsonl"));
    let object = s3
        .get_object()
        .bucket("quarantine")
        .key(keys[0])
        .send()
        .await
        .unwrap();
    let body = object.body.collect().await.unwrap().into_bytes();
    let lines: Vec<QuarantineLine> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<_> = lines
        .iter()
        .map(|l| (l.message_id.as_str(), l.reason.as_str(), l.reading_index))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("gateway", "invalid_metric_name", Some(1)),
            ("garbage", "malformed_json", None),
            ("future", "timestamp_in_future", None),
        ]
    );
    assert_eq!(lines[1].payload.as_deref(), Some("}{ not json"));
    assert_eq!(lines[1].topic.as_deref(), Some("dt/ac-2/telemetry"));
}
