//! Alerting end to end against moto's server: a rule fires and clears through the real ingest
//! handler; the notifications reach an SQS queue subscribed to the SNS topic, as a real
//! subscriber sees them; the device shadow gets the command; two racing evaluators notify once;
//! a forecast fires and clears; a latched alarm waits for its acknowledgement.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use iotdp::adapters::dynamodb::alerts::{DynamoDbAlertStates, DynamoDbRules};
use iotdp::adapters::sns_notifier::SnsNotifier;
use iotdp::alerting::evaluator::{AlertEvaluator, AlertSettings};
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::rule::AlertRule;
use iotdp::config::AlertingConfig;
use iotdp::domain::{Metric, MetricValue, Reading};
use iotdp::ingest::envelope::encode_envelope;
use iotdp::lambda::ingest::{IngestBatch, handle_lambda_event};
use iotdp::wiring::ingest_service_with;
use iotdp_integration_tests::{
    MotoServer, create_alert_tables, create_command_table, create_ingest_resources,
    drain_sns_envelopes, ingest_config, subscribed_queue,
};
use iotdp_memory::RacingReads;
use lambda_runtime::{Context, LambdaEvent};

const RULE: &str = r#"{"rule_id":"dry-soil","name":"Soil too dry","scope":{"device_id":"valve-ctl-1"},
    "metric":"moisture","condition":{"below":0.2},"clear":0.25,"severity":"critical",
    "actions":{"on_alarm":{"valve":"open"},"on_ok":{"valve":"closed"}}}"#;

/// moto with the ingest resources, the rules and state tables, the alerts topic and an
/// operator's queue subscribed to it.
struct Fixture {
    sdk: aws_config::SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    topic_arn: String,
    queue_url: String,
}

async fn fixture(moto: &MotoServer) -> Fixture {
    let sdk = moto.sdk_config().await;
    create_ingest_resources(&sdk).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_alert_tables(&dynamodb, "rules", "states").await;
    create_command_table(&dynamodb, "commands").await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic_arn = sns
        .create_topic()
        .name("alerts")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = subscribed_queue(&sdk, &topic_arn, "operator-inbox").await;
    Fixture {
        sdk,
        dynamodb,
        sns,
        sqs,
        topic_arn,
        queue_url,
    }
}

fn message(id: &str, device: &str, payload: &str, received_at: i64) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(encode_envelope(
        payload.as_bytes(),
        &iotdp::domain::topic::telemetry_topic(device),
        received_at,
        Some(device),
    ));
    message
}

#[tokio::test]
async fn alerts_fire_and_clear_notify_subscribers_command_devices_and_never_double_notify() {
    let moto = MotoServer::start();
    let Fixture {
        sdk,
        dynamodb,
        sns,
        sqs,
        topic_arn,
        queue_url,
    } = fixture(&moto).await;
    let iot = aws_sdk_iot::Client::new(&sdk);
    iot.create_thing()
        .thing_name("valve-ctl-1")
        .send()
        .await
        .unwrap();

    DynamoDbRules::new(dynamodb.clone(), "rules")
        .put(&AlertRule::from_json(RULE).unwrap())
        .await
        .unwrap();

    let mut config = ingest_config();
    config.alerting = Some(alerting_config(&topic_arn));
    let service = ingest_service_with(&sdk, &config).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let invoke = |messages: Vec<SqsMessage>| lambda_event(messages, now + 60_000);
    // Dry: fires. Wet again, but not past the clear threshold: stays. Wetter: clears.
    let first = handle_lambda_event(
        &service,
        invoke(vec![
            message(
                "m1",
                "valve-ctl-1",
                &format!(r#"{{"ts":{},"metrics":{{"moisture":0.30}}}}"#, now - 3000),
                now,
            ),
            message(
                "m2",
                "valve-ctl-1",
                &format!(r#"{{"ts":{},"metrics":{{"moisture":0.12}}}}"#, now - 2000),
                now,
            ),
            message(
                "m3",
                "valve-ctl-1",
                &format!(r#"{{"ts":{},"metrics":{{"moisture":0.22}}}}"#, now - 1000),
                now,
            ),
        ]),
    )
    .await
    .unwrap();
    assert!(first.batch_item_failures.is_empty());
    let shadow = aws_sdk_iotdataplane::Client::new(&sdk);
    let desired = |payload: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(payload).unwrap()["state"]["desired"].clone()
    };
    let document = shadow
        .get_thing_shadow()
        .thing_name("valve-ctl-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        desired(document.payload().unwrap().as_ref()),
        serde_json::json!({"valve": "open"})
    );

    let second = handle_lambda_event(
        &service,
        invoke(vec![message(
            "m4",
            "valve-ctl-1",
            &format!(r#"{{"ts":{now},"metrics":{{"moisture":0.31}}}}"#),
            now + 1,
        )]),
    )
    .await
    .unwrap();
    assert!(second.batch_item_failures.is_empty());
    let document = shadow
        .get_thing_shadow()
        .thing_name("valve-ctl-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        desired(document.payload().unwrap().as_ref()),
        serde_json::json!({"valve": "closed"})
    );
    // Both actions are in the device's command history, from the rule, at the shadow versions
    // they were written at; the second superseded the first (same key, not yet applied).
    let history = iotdp::wiring::commands(&sdk, &alerting_config(&topic_arn).commands)
        .history("valve-ctl-1")
        .await
        .unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|c| {
            (
                serde_json::Value::Object(c.desired.clone()),
                c.status.as_str(),
                c.source.as_str(),
                c.issued_by.as_str(),
                c.shadow_version,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                serde_json::json!({"valve": "closed"}),
                "pending",
                "rule",
                "rule:dry-soil",
                Some(2)
            ),
            (
                serde_json::json!({"valve": "open"}),
                "superseded",
                "rule",
                "rule:dry-soil",
                Some(1)
            ),
        ]
    );

    // What an operator's queue received: one message per transition, with filterable attributes.
    let received = drain_sns_envelopes(&sqs, &queue_url).await;
    assert_eq!(received.len(), 2, "{received:#?}");
    let bodies: Vec<serde_json::Value> = received
        .iter()
        .map(|e| serde_json::from_str(e["Message"].as_str().unwrap()).unwrap())
        .collect();
    let transitions: Vec<_> = bodies
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap(),
                b["new_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(transitions, vec![("alarm", "ALARM"), ("ok", "OK")]);
    assert_eq!(bodies[0]["schema"], "iotdp.alert/v1");
    assert_eq!(bodies[0]["value"], 0.12);
    assert_eq!(
        received[0]["Subject"],
        "[CRITICAL] ALARM valve-ctl-1: Soil too dry (moisture 0.12)"
    );
    let attributes = &received[0]["MessageAttributes"];
    assert_eq!(attributes["severity"]["Value"], "critical");
    assert_eq!(attributes["device_id"]["Value"], "valve-ctl-1");
    assert_eq!(attributes["rule_id"]["Value"], "dry-soil");
    assert_eq!(attributes["state"]["Value"], "ALARM");

    // Two evaluators (two Lambda instances) race on the same transition: one notification.
    let racing = |states| {
        AlertEvaluator::new(
            DynamoDbRules::new(dynamodb.clone(), "rules"),
            states,
            SnsNotifier::new(sns.clone(), &topic_arn),
            iotdp::wiring::commands(&sdk, &alerting_config(&topic_arn).commands),
            AlertSettings::default(),
        )
    };
    // Both evaluators read the state before either writes; moto's conditional write decides.
    let shared = std::sync::Arc::new(RacingReads::new(
        DynamoDbAlertStates::new(dynamodb.clone(), "states"),
        2,
    ));
    let a = racing(shared.clone());
    let b = racing(shared);
    let dry = vec![Reading {
        device_id: "valve-ctl-1".into(),
        time_ms: now + 10_000,
        seq: None,
        metrics: vec![Metric {
            name: "moisture".into(),
            value: MetricValue::Number(0.05),
        }],
        version: now + 10_000,
        dimensions: None,
    }];
    let at = chrono::Utc::now();
    let (ra, rb) = tokio::join!(a.evaluate(&dry, at), b.evaluate(&dry, at));
    assert!(ra.retry.is_empty() && rb.retry.is_empty());
    assert_eq!(ra.stats.conflicts + rb.stats.conflicts, 1);
    let received = drain_sns_envelopes(&sqs, &queue_url).await;
    assert_eq!(received.len(), 1, "{received:#?}");
    let states = DynamoDbAlertStates::new(dynamodb.clone(), "states")
        .list(Some(AlarmState::Alarm))
        .await
        .unwrap();
    assert_eq!(states.len(), 1);
}

/// Forecast and latched rules through the real ingest handler and moto: the forecast fires
/// hours before the battery is empty and clears when the trend turns; the latched alarm stays
/// raised after its condition clears, until an operator acknowledges it.
#[tokio::test]
async fn a_forecast_fires_and_clears_and_a_latched_alarm_waits_for_its_acknowledgement() {
    let moto = MotoServer::start();
    let Fixture {
        sdk,
        dynamodb,
        sns: _,
        sqs,
        topic_arn,
        queue_url,
    } = fixture(&moto).await;
    let rules = DynamoDbRules::new(dynamodb.clone(), "rules");
    for rule in [
        r#"{"rule_id":"soc-forecast","name":"Battery empty within a day","scope":{"device_id":"box-1"},
            "metric":"soc","condition":{"forecast":{"below":0.2,"within_seconds":86400,"window_seconds":7200}},
            "severity":"warning"}"#,
        r#"{"rule_id":"overheat","name":"Cabinet overheating","scope":{"device_id":"box-1"},
            "metric":"temperature","condition":{"above":60},"severity":"critical","latched":true}"#,
    ] {
        rules
            .put(&AlertRule::from_json(rule).unwrap())
            .await
            .unwrap();
    }
    let mut config = ingest_config();
    config.alerting = Some(alerting_config(&topic_arn));
    let service = ingest_service_with(&sdk, &config).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let invoke = |messages: Vec<SqsMessage>| lambda_event(messages, now + 60_000);
    // Five hours, a reading every two minutes: state of charge falling 0.2 an hour for 2.5 h
    // (empty in 4.5 h), then a recharged battery holding at 0.95. The cabinet overheats once,
    // early, and cools down.
    let start = now - 5 * 3_600_000;
    let readings: Vec<(i64, f64, f64)> = (0..150i64)
        .map(|i| {
            let hours = i as f64 / 30.0;
            let soc = if hours < 2.5 { 0.9 - 0.2 * hours } else { 0.95 };
            let temperature = if (10..14).contains(&i) { 70.0 } else { 35.0 };
            (start + i * 120_000, soc, temperature)
        })
        .collect();
    for (batch, chunk) in readings.chunks(10).enumerate() {
        let messages = chunk
            .iter()
            .enumerate()
            .map(|(i, (ts, soc, temperature))| {
                message(
                    &format!("f-{batch}-{i}"),
                    "box-1",
                    &format!(
                        r#"{{"ts":{ts},"metrics":{{"soc":{soc},"temperature":{temperature}}}}}"#
                    ),
                    now,
                )
            })
            .collect();
        let response = handle_lambda_event(&service, invoke(messages))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let bodies: Vec<serde_json::Value> = drain_sns_envelopes(&sqs, &queue_url)
        .await
        .iter()
        .map(|e| serde_json::from_str(e["Message"].as_str().unwrap()).unwrap())
        .collect();
    let told = |rule: &str| -> Vec<(String, String)> {
        bodies
            .iter()
            .filter(|b| b["rule_id"] == rule)
            .map(|b| {
                (
                    b["kind"].as_str().unwrap().to_owned(),
                    b["new_state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        told("soc-forecast"),
        [("alarm".into(), "ALARM".into()), ("ok".into(), "OK".into())]
    );
    assert_eq!(told("overheat"), [("alarm".into(), "ALARM".into())]);
    let forecast = bodies
        .iter()
        .find(|b| b["rule_id"] == "soc-forecast" && b["kind"] == "alarm")
        .unwrap();
    let prediction = &forecast["prediction"];
    assert!(
        prediction["r_squared"].as_f64().unwrap()
            >= iotdp::alerting::state_machine::MIN_FORECAST_R_SQUARED,
        "{forecast}"
    );
    assert!(prediction["points"].as_u64().unwrap() >= 16, "{forecast}");
    assert_eq!(forecast["measured"], "predicted_value");
    let crossing =
        chrono::DateTime::parse_from_rfc3339(prediction["crossing_time"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
    let event = chrono::DateTime::parse_from_rfc3339(forecast["event_time"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let warning_hours = (crossing - event) as f64 / 3_600_000.0;
    assert!(
        (1.0..=4.0).contains(&warning_hours),
        "the battery was forecast empty {warning_hours:.1} h ahead"
    );

    // The cabinet cooled down unacknowledged: still raised, LATCHED, until acknowledged.
    let states = DynamoDbAlertStates::new(dynamodb.clone(), "states");
    let key = iotdp::alerting::ports::AlertKey {
        device_id: "box-1".into(),
        rule_id: "overheat".into(),
    };
    let listed = states.list(Some(AlarmState::Latched)).await.unwrap();
    assert_eq!(listed.iter().map(|(k, _)| k).collect::<Vec<_>>(), [&key]);
    let acknowledged = iotdp::alerting::admin::acknowledge_alert(&states, &key)
        .await
        .unwrap();
    assert_eq!(acknowledged.state, AlarmState::Ok);
    // A stale version is refused and changes nothing.
    let stale = iotdp::alerting::admin::act_on_alert(
        &states,
        &key,
        iotdp::alerting::state_machine::OperatorAction::Disable,
        Some(acknowledged.version - 1),
        false,
    )
    .await;
    assert!(
        matches!(stale, Err(iotdp::alerting::admin::AlertActionError::VersionMismatch { current, .. }) if current == acknowledged.version),
        "{stale:?}"
    );
    // A cool reading after the acknowledgement tells nobody anything.
    let response = handle_lambda_event(
        &service,
        invoke(vec![message(
            "after-ack",
            "box-1",
            &format!(r#"{{"ts":{now},"metrics":{{"temperature":30}}}}"#),
            now,
        )]),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(drain_sns_envelopes(&sqs, &queue_url).await.is_empty());
}

/// Alerting on the fixture's tables and topic.
fn alerting_config(topic_arn: &str) -> AlertingConfig {
    AlertingConfig {
        rules_table: "rules".into(),
        state_table: "states".into(),
        topic_arn: topic_arn.to_owned(),
        rules_ttl: std::time::Duration::from_secs(60),
        commands: iotdp::config::CommandsConfig {
            table: "commands".into(),
            iot_data_endpoint: None,
        },
    }
}

/// An SQS batch as Lambda delivers it: JSON, read into the binary's own event type.
fn lambda_event(messages: Vec<SqsMessage>, deadline_ms: i64) -> LambdaEvent<IngestBatch> {
    let mut event = SqsEvent::default();
    event.records = messages;
    let mut context = Context::default();
    context.request_id = format!("req-{}", next_request_number());
    context.deadline = deadline_ms as u64;
    let event = serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
    LambdaEvent::new(event, context)
}

fn next_request_number() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
