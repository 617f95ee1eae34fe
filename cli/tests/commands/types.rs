//! `iotdp types …` against moto: a bad definition is refused offline naming the field; a put
//! is versioned; the dry run shows a device's stored readings with the derived metrics added;
//! and the registry cache ingest runs reads the definitions back from the same table.

use std::time::Duration;

use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::adapters::dynamodb::types::DynamoDbDeviceTypes;
use iotdp::adapters::lake::LakeStore;
use iotdp::devices::cache::{CachedRegistry, RegistryCacheSettings};
use iotdp::devices::ports::{DeviceLookup, DeviceRegistry};
use iotdp::devices::record::DeviceRecord;
use iotdp::domain::{MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp_integration_tests::MotoServer;
use serde_json::Value;

use super::cli::{iotdp, text};

/// `iotdp --output json types show NAME`, parsed.
fn show(moto: &MotoServer, name: &str) -> Value {
    serde_json::from_slice(&iotdp(Some(moto), &["--output", "json", "types", "show", name]).stdout)
        .unwrap()
}

fn file(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("iotdp-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_owned()
}

const BATTERY: &str = r#"{"device_type":"battery-box","metrics":["voltage","current"],
  "derived":[{"name":"power_w","expression":"voltage * current"},
             {"name":"power_kw","expression":"power_w / 1000"}]}"#;

#[test]
fn a_bad_definition_is_refused_naming_the_field_and_the_reason_without_touching_aws() {
    let bad = file(
        "bad.json",
        r#"{"device_type":"battery-box","metrics":["voltage"],"derived":[{"name":"power_w","expression":"voltage * amps"}]}"#,
    );
    let out = iotdp(None, &["types", "put", &bad]);
    assert!(!out.status.success());
    let error = text(&out.stderr);
    assert!(
        error.contains("derived[0].expression")
            && error.contains("unknown_metric")
            && error.contains("'amps'"),
        "{error}"
    );
    let zero = file(
        "zero.json",
        r#"{"device_type":"battery-box","metrics":["voltage"],"derived":[{"name":"x","expression":"voltage / (1 - 1)"}]}"#,
    );
    let error = text(&iotdp(None, &["types", "put", &zero]).stderr);
    assert!(error.contains("division_by_zero"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_are_put_in_versions_dry_run_on_stored_readings_and_read_by_ingest() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for (table, key) in [("types", "device_type"), ("registry", "device_id")] {
        dynamodb
            .create_table()
            .table_name(table)
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let battery = file("battery.json", BATTERY);
    let put = iotdp(Some(&moto), &["types", "put", &battery]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    assert!(
        text(&put.stdout).contains("version 1"),
        "{}",
        text(&put.stdout)
    );
    let again = iotdp(Some(&moto), &["types", "put", &battery]);
    assert!(
        text(&again.stdout).contains("version 2"),
        "{}",
        text(&again.stdout)
    );
    let shown = show(&moto, "battery-box");
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["derived"][1]["name"], "power_kw");
    let list = text(&iotdp(Some(&moto), &["types", "list"]).stdout);
    assert!(
        list.contains("battery-box") && list.contains("power_w,power_kw"),
        "{list}"
    );
    let missing = iotdp(Some(&moto), &["types", "show", "thermostat"]);
    assert!(text(&missing.stderr).contains("no device type 'thermostat'"));

    // The dry run: the device's readings from the lake, derived values added, nothing stored.
    let s3 = iotdp::wiring::s3_client(&sdk);
    s3.create_bucket().bucket("lake").send().await.unwrap();
    let lake = LakeStore::new(s3, "lake");
    let now = chrono::Utc::now().timestamp_millis();
    let readings: Vec<Reading> = (0..3)
        .map(|i| {
            Reading::new(
                "bb-1",
                now - 600_000 + i * 60_000,
                [
                    ("voltage", MetricValue::Number(12.0)),
                    ("current", MetricValue::Number(f64::from(i as i32) - 1.0)),
                ],
            )
        })
        .collect();
    lake.write(&readings).await.unwrap();
    let dry = iotdp(
        Some(&moto),
        &[
            "--output",
            "json",
            "types",
            "put",
            &battery,
            "--dry-run",
            "--device",
            "bb-1",
            "--from",
            "-1h",
            "--store",
            "lake",
            "--lake-bucket",
            "lake",
        ],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let rows: Vec<Value> = text(&dry.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let power: Vec<f64> = rows
        .iter()
        .map(|r| r["metrics"]["power_w"].as_f64().unwrap())
        .collect();
    assert_eq!(power, [-12.0, 0.0, 12.0]);
    assert_eq!(rows[2]["metrics"]["power_kw"].as_f64(), Some(0.012));
    assert!(text(&dry.stderr).contains("nothing stored"));
    let shown = show(&moto, "battery-box");
    assert_eq!(shown["version"], 2, "the dry run stored nothing");

    // Ingest's registry cache reads the definitions from the same table.
    let registry = DynamoDbRegistry::new(dynamodb.clone(), "registry");
    assert!(
        registry
            .create(&DeviceRecord::new("bb-1", "battery-box", now))
            .await
            .unwrap()
    );
    let cache = CachedRegistry::new(
        registry,
        RegistryCacheSettings {
            ttl: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .with_types(Some(DynamoDbDeviceTypes::new(dynamodb, "types")));
    let snapshot = cache.lookup(&["bb-1"]).await.unwrap();
    let derived = &snapshot.derived["battery-box"];
    assert_eq!(derived.version, 2);
    assert_eq!(derived.names().collect::<Vec<_>>(), ["power_w", "power_kw"]);
}
