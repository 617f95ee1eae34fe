//! `iotdp lake import`: a day of InfluxDB history copied into the lake (moto's S3) reads back
//! exactly as InfluxDB holds it, and a second run copies nothing twice.

use std::process::Command;
use std::time::Duration;

use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::adapters::lake::LakeStore;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::store_writer::{WritePolicy, write_readings};
use iotdp::query::model::TimeRange;
use iotdp::rollup::ports::RollupStore;
use iotdp_integration_tests::{InfluxServer, MotoServer, REGION};
use serde_json::Value;

fn import(moto: &MotoServer, influx: &InfluxServer, from: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_iotdp"))
        .args([
            "--output",
            "json",
            "lake",
            "--lake-bucket",
            "history",
            "--influxdb-url",
            &influx.process.url,
            "--influxdb-database",
            &influx.database,
            "import",
            "--source",
            "influxdb",
            "--from",
            from,
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run iotdp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A reading as `(device, time, metric values)`.
type FlatReading = (String, i64, Vec<(String, String)>);

/// Every reading flattened, sorted.
fn flat(readings: Vec<Reading>) -> Vec<FlatReading> {
    let mut out: Vec<_> = readings
        .into_iter()
        .map(|r| {
            let mut values: Vec<(String, String)> = r
                .metrics
                .iter()
                .map(|m| (m.name.clone(), format!("{:?}", m.value)))
                .collect();
            values.sort();
            (r.device_id, r.time_ms, values)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn influxdb_history_lands_in_the_lake_once() {
    let moto = MotoServer::start();
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let start = now - 86_400_000;
    let readings: Vec<Reading> = (0..(24 * 12))
        .flat_map(|i| {
            ["box-1", "box-2"].map(|device| {
                Reading::new(
                    device,
                    start + i * 300_000,
                    [
                        (
                            "voltage",
                            MetricValue::Number(12.0 + (i % 10) as f64 / 10.0),
                        ),
                        ("charging", MetricValue::Bool(i % 3 == 0)),
                    ],
                )
                .with_place("battery-box", LocationPath::parse("site-3").unwrap())
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    write_readings(&store, &readings, &WritePolicy::default(), deadline).await;
    let sdk = moto.sdk_config().await;
    let s3 = iotdp::wiring::s3_client(&sdk);
    s3.create_bucket().bucket("history").send().await.unwrap();

    let first = import(&moto, &influx, "-25h");
    assert_eq!(first["readings"], readings.len(), "{first}");
    let lake = LakeStore::new(s3.clone(), "history");
    let everything = TimeRange {
        from_ms: start - 3_600_000,
        to_ms: now + 60_000,
    };
    let root = LocationPath::default();
    let from_influx = flat(store.raw_readings(everything, &root).await.unwrap());
    assert_eq!(from_influx.len(), readings.len());
    assert_eq!(
        flat(lake.raw_readings(everything, &root).await.unwrap()),
        from_influx
    );

    let objects = |listed: aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output| {
        listed.key_count().unwrap_or_default()
    };
    let before = objects(s3.list_objects_v2().bucket("history").send().await.unwrap());
    let second = import(&moto, &influx, "-25h");
    assert_eq!(second["readings"], readings.len());
    let after = objects(s3.list_objects_v2().bucket("history").send().await.unwrap());
    assert_eq!(after, before, "a second import wrote new objects");
    assert_eq!(
        flat(lake.raw_readings(everything, &root).await.unwrap()),
        from_influx
    );
}
