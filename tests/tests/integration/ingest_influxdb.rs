//! The deployed ingest path with `TIME_SERIES_STORE=influxdb`: configuration from the
//! environment, the API token read from Secrets Manager (moto), readings written to a real
//! `influxd`, a type conflict quarantined in S3 (moto) with InfluxDB's message.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use iotdp::config::FromEnvironment;
use iotdp::config::IngestConfig;
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::service::Invocation;
use iotdp::wiring::{ingest_service_with, s3_client};
use iotdp_integration_tests::{InfluxServer, MotoServer, quarantine_lines};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_go_to_influxdb_with_the_token_from_secrets_manager() {
    let moto = MotoServer::start();
    let influx = InfluxServer::start();
    let sdk = iotdp_local::platform::local_sdk_config(&moto.endpoint).await;
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("iotdp/influxdb-token")
        .secret_string(r#"{"token":"local-token","note":"influx auth create --write-bucket …"}"#)
        .send()
        .await
        .unwrap();
    s3_client(&sdk)
        .create_bucket()
        .bucket("quarantine")
        .send()
        .await
        .unwrap();
    let env = [
        ("TIME_SERIES_STORE", "influxdb".to_owned()),
        ("INFLUXDB_URL", influx.process.url.clone()),
        ("INFLUXDB_DATABASE", "iotdp".to_owned()),
        (
            "INFLUXDB_TOKEN_SECRET_ARN",
            secret.arn().unwrap().to_owned(),
        ),
        ("QUARANTINE_BUCKET", "quarantine".to_owned()),
    ];
    let config = IngestConfig::from_lookup(|name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let service = ingest_service_with(&sdk, &config).await.unwrap();
    assert_eq!(service.store().inner().describe(), "InfluxDB");

    let now = chrono::Utc::now().timestamp_millis();
    let message = |id: &str, payload: String| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(encode_envelope(
            payload.as_bytes(),
            "dt/ac-1/telemetry",
            now,
            Some("ac-1"),
        ));
        m
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        message(
            "m1",
            format!(
                r#"{{"ts":{},"metrics":{{"temperature":21.5,"mode":"eco"}}}}"#,
                now - 2000
            ),
        ),
        message(
            "m2",
            format!(
                r#"{{"ts":{},"metrics":{{"temperature":21.7,"mode":"eco"}}}}"#,
                now - 1000
            ),
        ),
    ];
    let invocation = Invocation {
        request_id: "influx-1".into(),
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        started_at: chrono::Utc::now(),
    };
    let report = iotdp::lambda::ingest::handle_sqs_event(&service, &event, &invocation).await;
    assert!(report.failed_items.is_empty(), "{report:?}");
    assert_eq!(report.metrics.records_written, 2);

    // `mode` is a string now; a device sending it as a number is quarantined, its other
    // reading in the same batch stored.
    event.records = vec![
        message(
            "m3",
            format!(r#"{{"ts":{now},"metrics":{{"temperature":21.9,"mode":3}}}}"#),
        ),
        message(
            "m4",
            format!(r#"{{"ts":{},"metrics":{{"temperature":22.0}}}}"#, now + 1),
        ),
    ];
    let report = iotdp::lambda::ingest::handle_sqs_event(&service, &event, &invocation).await;
    assert!(report.failed_items.is_empty(), "{report:?}");
    let stored = influx.series("SELECT COUNT(temperature) FROM telemetry WHERE device_id = 'ac-1'");
    assert_eq!(stored[0]["values"][0][1], 3);

    let lines = quarantine_lines(&sdk, "quarantine").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].reason, "rejected_by_store");
    assert_eq!(lines[0].message_id, "m3");
    assert!(
        lines[0].detail.contains("field type conflict"),
        "{}",
        lines[0].detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_without_a_token_fails_start_up_naming_the_secret() {
    let moto = MotoServer::start();
    let sdk = iotdp_local::platform::local_sdk_config(&moto.endpoint).await;
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("influx-admin")
        .secret_string(r#"{"username":"admin","password":"x"}"#)
        .send()
        .await
        .unwrap();
    let arn = secret.arn().unwrap().to_owned();
    let config = IngestConfig::from_lookup(|name| match name {
        "TIME_SERIES_STORE" => Some("influxdb".to_owned()),
        "INFLUXDB_URL" => Some("http://127.0.0.1:1".to_owned()),
        "INFLUXDB_DATABASE" => Some("iotdp".to_owned()),
        "INFLUXDB_TOKEN_SECRET_ARN" => Some(arn.clone()),
        "QUARANTINE_BUCKET" => Some("q".to_owned()),
        _ => None,
    })
    .unwrap();
    let err = ingest_service_with(&sdk, &config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("influx-admin") && err.contains("token"),
        "{err}"
    );
}
