//! The query API against its own contract, checked by a tool nobody here wrote: schemathesis
//! (pinned in requirements-schemathesis.txt) generates requests from openapi.yaml, valid and
//! invalid, runs them against the local API (the `api` function's handlers over HTTP, a real
//! influxd behind them, the registry, rules and alert states in moto) with every check, and
//! must find nothing: no server error, no undocumented status or shape, no schema-valid request
//! refused (beyond the 422s tests/schemathesis.toml lists) and no invalid one accepted.
//! `SCHEMATHESIS_SEED` picks the generated cases (default: a fixed seed, so CI repeats itself).

use std::path::PathBuf;
use std::time::Duration;

use iotdp::adapters::dynamodb::alerts::DynamoDbRules;
use iotdp::alerting::rule::AlertRule;
use iotdp::devices::ports::DeviceRegistry;
use iotdp::devices::record::DeviceRecord;
use iotdp::domain::LocationPath;
use iotdp_local::platform::LocalPlatform;
use rumqttc::{AsyncClient, MqttOptions, QoS};

fn repository() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn schemathesis() -> PathBuf {
    std::env::var_os("IOTDP_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join(".venv-schemathesis/bin/st"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_difference_between_openapi_yaml_and_the_api() {
    let st = schemathesis();
    assert!(st.exists(), "{} not found: run `make tools`", st.display());
    let data_dir = iotdp_integration_tests::fresh_influxd_dir("contract");
    let platform = LocalPlatform::start(iotdp_integration_tests::local_options(
        "iotdp-contract",
        Some(data_dir.clone()),
    ))
    .await
    .expect("local platform starts");
    // Something to find: devices at places, rules, readings, and an alert in ALARM.
    let registry = iotdp::wiring::device_registry(
        &platform.sdk,
        platform.physical("DeviceRegistryTable").unwrap(),
    );
    let now = chrono::Utc::now().timestamp_millis();
    for (id, kind, path) in [
        ("ac-1", "thermostat", "home-1"),
        ("battery-1", "battery-box", "farm-1"),
        ("spot-1", "plant-sensor", "wall-1/zone-a/section-1/spot-1"),
    ] {
        let mut record = DeviceRecord::new(id, kind, now);
        record.path = LocationPath::parse(path).unwrap();
        registry.create(&record).await.unwrap();
    }
    let rules = DynamoDbRules::new(
        aws_sdk_dynamodb::Client::new(&platform.sdk),
        platform.physical("AlertRulesTable").unwrap(),
    );
    rules
        .put(
            &AlertRule::from_json(
                r#"{"rule_id":"too-hot","name":"Too hot","scope":"all","metric":"temperature",
                    "condition":{"above":30},"clear":28,"severity":"warning"}"#,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let mut options = MqttOptions::new("ac-1", "127.0.0.1", platform.mqtt_addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for (i, t) in [22.0, 31.5, 32.0].iter().enumerate() {
        client
            .publish(
                "dt/ac-1/telemetry",
                QoS::AtLeastOnce,
                false,
                format!(
                    r#"{{"ts":{},"metrics":{{"temperature":{t}}}}}"#,
                    now - 60_000 + i as i64 * 1000
                ),
            )
            .await
            .unwrap();
    }
    let api = platform.api_addr.expect("the api function is served");
    for _ in 0..60 {
        if platform.stats.ingest.lock().await.records_written >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261203".into());
    let output = tokio::process::Command::new(&st)
        .current_dir(repository())
        .args([
            "--config-file",
            "tests/schemathesis.toml",
            "--no-color",
            "run",
            "openapi.yaml",
        ])
        .args(["--url", &format!("http://{api}")])
        .args(["--checks", "all", "--workers", "1", "--seed", &seed])
        .output()
        .await
        .expect("schemathesis runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text
        .lines()
        .skip_while(|l| !l.contains("Test cases:"))
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    println!("schemathesis (seed {seed}): {summary}");
    platform.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    assert!(
        output.status.success(),
        "schemathesis found differences between openapi.yaml and the API:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        summary.contains("generated") && !summary.contains("found"),
        "{summary}"
    );
}
